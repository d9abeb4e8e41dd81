#!/usr/bin/env bash
# Runs the criterion micro-benchmarks with short measurement times and writes a summary
# table to benches/results/micro.md (criterion's own output goes to the terminal).
#
#   benches/micro.sh                 # all five: verify parse page rate_limit stage
#   benches/micro.sh parse           # one of them
#   MICRO_ARGS="--warm-up-time 3 --measurement-time 5" benches/micro.sh   # longer, steadier
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
benches=("$@")
[ "${#benches[@]}" -gt 0 ] || benches=(verify parse page rate_limit stage)
args=${MICRO_ARGS:---warm-up-time 1 --measurement-time 2}
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
for bench in "${benches[@]}"; do
  # shellcheck disable=SC2086
  cargo bench --bench "$bench" -- $args --noplot | tee -a "$raw"
done
mkdir -p benches/results
python3 - "$raw" "benches/micro.sh ${*:-}" "$args" >benches/results/micro.md <<'EOF'
import datetime, os, re, sys

raw, command, args = sys.argv[1], sys.argv[2].strip(), sys.argv[3]
rows, name = [], None
for line in open(raw):
    line = line.rstrip()
    head = re.match(r"^(\S+/\S+)(?:\s+time:\s+\[(.*)\])?$", line)
    if head and not line.startswith(("Benchmarking", "Found")):
        name = head.group(1)
        if head.group(2):
            rows.append([name, " ".join(head.group(2).split()[2:4]), ""])
        continue
    time = re.match(r"^\s+time:\s+\[\S+ \S+ (\S+ \S+) \S+ \S+\]", line)
    if time and name:
        rows.append([name, time.group(1), ""])
        continue
    thrpt = re.match(r"^\s+thrpt:\s+\[\S+ \S+ (\S+ \S+) \S+ \S+\]", line)
    if thrpt and rows and rows[-1][0] == name and not rows[-1][2] and "%" not in thrpt.group(1):
        rows[-1][2] = thrpt.group(1)
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("# hookpipe micro-benchmarks (criterion)\n")
print(f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
print(f"- machine: {os.cpu_count()} cores, {model}")
print(f"- command: `{command}` (criterion args: `{args}`)")
print("- time is criterion's point estimate per iteration; throughput is body bytes (MiB/s) or operations (elem/s)\n")
print("| benchmark | time | throughput |")
print("|---|---|---|")
for name, time, thrpt in rows:
    print(f"| {name} | {time} | {thrpt} |")
EOF
echo "wrote benches/results/micro.md" >&2
