#!/usr/bin/env bash
# Fleet-wide rate limits, measured: 1, 2 and 3 `hookpipe serve` instances on one Tansu broker
# share one listener's bucket; round robin and skewed (80/20, 80/15/5) load for a fixed time;
# accepted vs allowed (capacity + rate × t). Writes benches/results/fleet_rate_limit.{json,md}.
#
#   benches/fleet_rate_limit.sh                            # 10 s per case, capacity 100, 200/s
#   benches/fleet_rate_limit.sh --duration 5 --senders 4   # a quick look
#   HOOKPIPE_BIN=target/debug/hookpipe benches/fleet_rate_limit.sh   # without a release build
#
# Arguments go to benches/fleet_rate_limit.py. Loopback only; one load run at a time.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
command_line="benches/fleet_rate_limit.sh${*:+ $*}"

exec 9>"${TMPDIR:-/tmp}/hookpipe-load.lock"
if ! flock -n 9; then
  echo "another load benchmark is running; wait for it" >&2
  exit 1
fi

scripts/install-tansu.sh
tansu="${HOOKPIPE_TANSU:-$HOME/.cache/hookpipe/tansu/bin/tansu}"
target="${CARGO_TARGET_DIR:-$repo/target}"
binary="${HOOKPIPE_BIN:-}"
if [ -z "$binary" ]; then
  # What is measured is accepted vs allowed, not speed: any build will do; release by default.
  cargo build --release --locked --bin hookpipe
  binary="$target/release/hookpipe"
fi

exec python3 benches/fleet_rate_limit.py --binary "$binary" --tansu "$tansu" \
  --command-line "$command_line" "$@"
