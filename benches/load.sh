#!/usr/bin/env bash
# The load benchmark, one command: installs the load generators, builds hookpipe and the
# benchmark helpers in release mode, and runs scenarios A–F against hookpipe and the bare
# actix-web ceiling. Writes benches/results/latest.json and benches/results/latest.md.
#
#   benches/load.sh                          # everything (~16 minutes on 2 cores)
#   benches/load.sh --scenarios A,D          # a subset (D needs A)
#   benches/load.sh --duration 5 --reps 1    # a quick look
#   benches/load.sh --profile accepted       # perf profile of hookpipe under scenario A's load
#   benches/load.sh --profile rejected       # ... of 429s; `accepted:json-16KB` for another payload
#
# Arguments go to benches/load.py (see `python3 benches/load.py --help`). Loopback only;
# every generator run is bounded by --duration; one load run at a time on this machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
command_line="benches/load.sh${*:+ $*}"

# One load at a time: two runs on a shared 2-core machine would measure each other.
exec 9>"${TMPDIR:-/tmp}/hookpipe-load.lock"
if ! flock -n 9; then
  echo "another benches/load.sh is running; wait for it" >&2
  exit 1
fi

tools="$HOME/.cache/hookpipe/bench-tools"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"

# Closed-loop generator: wrk (Debian package).
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
# Open-loop generator (fixed request rate, latency from the scheduled send time): oha.
if ! command -v oha >/dev/null 2>&1; then
  echo "installing oha into $tools (one time, a few minutes)..." >&2
  cargo install oha --locked --root "$tools"
fi
# What this run needs: Tansu for scenario B, perf for --profile.
scenarios="A,L,B,C,D,E,F"; profiling=0
previous=""
for arg in "$@"; do
  case "$previous" in --scenarios) scenarios="$arg" ;; esac
  case "$arg" in --scenarios=*) scenarios="${arg#*=}" ;; --profile|--profile=*) profiling=1 ;; esac
  previous="$arg"
done
# The real broker of scenario B (one time, ~15 minutes); BENCH_SKIP_TANSU=1 skips B instead.
tansu="${HOOKPIPE_TANSU:-$HOME/.cache/hookpipe/tansu/bin/tansu}"
if [ "$profiling" = 1 ] || [[ "${scenarios^^}" != *B* ]]; then
  :
elif [ "${BENCH_SKIP_TANSU:-0}" != 1 ]; then
  scripts/install-tansu.sh
else
  tansu=""
fi
if [ "$profiling" = 1 ] && ! command -v perf >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq linux-perf
fi

# Release builds. CARGO_TARGET_DIR is honoured (use your own to avoid fighting over the lock).
target="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release --bin hookpipe
helpers_json="$(cargo bench --no-run --bench ceiling --bench idle_conns --message-format=json)"
executable() {
  python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name and msg.get("executable"):
        print(msg["executable"])
' "$1" <<<"$helpers_json" | tail -n 1
}
ceiling="$(executable ceiling)"
idle_conns="$(executable idle_conns)"
[ -x "$ceiling" ] && [ -x "$idle_conns" ] || { echo "could not build the benchmark helpers" >&2; exit 1; }

# 10,000 idle connections need more than the default 1024 file descriptors (server and holder).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec python3 benches/load.py \
  --repo "$repo" \
  --hookpipe "$target/release/hookpipe" \
  --ceiling "$ceiling" \
  --idle-conns "$idle_conns" \
  --wrk "$(command -v wrk)" \
  --oha "$(command -v oha)" \
  --tansu "$tansu" \
  --command "$command_line" \
  "$@"
