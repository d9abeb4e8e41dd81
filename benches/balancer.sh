#!/usr/bin/env bash
# The scaling benchmark behind a load balancer, one command: 1, 2 and 3 `hookpipe serve`
# instances (release build) on one Tansu broker behind haproxy, wrk through haproxy; reports
# accepted requests per server CPU-second and its ratio to one instance, for a closed loop that
# saturates the machine, for a paced load (the same total offered rate at every N, unsaturated:
# strong scaling) and for a paced load per instance (10 x N connections: weak scaling), with the
# idle CPU of each instance and the servers' CPU per request by thread. Writes
# benches/results/balancer.json and benches/results/balancer.md.
#
#   benches/balancer.sh                              # 3 reps of 15 s at N = 1, 2, 3
#   benches/balancer.sh --paced-delay-ms 0           # the closed loop only
#   benches/balancer.sh --duration 5 --reps 1        # a quick look
#   benches/balancer.sh --server-workers 2           # HTTP threads per instance
#   benches/balancer.sh --weak-connections-per-instance 0   # no weak-scaling run
#   HOOKPIPE_BIN=/tmp/hookpipe benches/balancer.sh   # that binary, no build (a README edit alone
#                                                    # rebuilds the crate: its docs include it)
#
# Arguments go to benches/balancer.py. Loopback only; one load run at a time on this machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
command_line="${HOOKPIPE_BIN:+HOOKPIPE_BIN=$HOOKPIPE_BIN }benches/balancer.sh${*:+ $*}"

exec 9>"${TMPDIR:-/tmp}/hookpipe-load.lock"
if ! flock -n 9; then
  echo "another load benchmark is running; wait for it" >&2
  exit 1
fi

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
haproxy="$(command -v haproxy || echo /usr/sbin/haproxy)"
scripts/install-tansu.sh
tansu="${HOOKPIPE_TANSU:-$HOME/.cache/hookpipe/tansu/bin/tansu}"

binary="${HOOKPIPE_BIN:-}"
if [ -z "$binary" ]; then
  # The same build command as deploy/Dockerfile's.
  cargo build --release --locked --bin hookpipe
  binary="${CARGO_TARGET_DIR:-$repo/target}/release/hookpipe"
fi

exec python3 benches/balancer.py --binary "$binary" --tansu "$tansu" \
  --haproxy "$haproxy" --wrk "$(command -v wrk)" --command-line "$command_line" "$@"
