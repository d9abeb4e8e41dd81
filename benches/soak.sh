#!/usr/bin/env bash
# The soak, one command: builds hookpipe in release mode, installs the load generators (as
# benches/load.sh does), raises the file-descriptor limit and runs benches/soak.py: 10 minutes at
# 50 % of the calibrated maximum load, 1 % hostile requests, a slowloris of 2,000 connections,
# RSS / fds / threads / producer queue depth sampled every second; exits 1 when they grow.
# Paired by default: a second, identical hookpipe (the control) gets half of the load and no
# slowloris, and the attacked server's p99 is checked against the control's, segment by segment
# (docs/benchmarks.md#the-paired-starvation-check; `--no-pair` for one server).
#
#   benches/soak.sh                        # the full soak (~11 minutes), results in benches/results/soak.*
#   SOAK_SECS=60 benches/soak.sh           # a quick check (results in the log directory)
#   SOAK_RATE=15000 benches/soak.sh        # a fixed rate instead of calibrating
#   SOAK_KAFKA=tansu benches/soak.sh       # against a Tansu broker process instead of the embedded cluster
#   benches/soak.sh --slowloris 5000 --slowloris-mode body    # other arguments go to benches/soak.py
#   HOOKPIPE_BIN=target/release/hookpipe benches/soak.sh      # that binary, no build (a README edit
#                                                            # alone rebuilds the crate: its docs include it)
#
# Loopback only. Takes the load benchmark's lock: one load at a time on this machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
command_line="$(for v in SOAK_SECS SOAK_RATE SOAK_KAFKA HOOKPIPE_BIN; do [ -z "${!v:-}" ] || printf '%s=%s ' "$v" "${!v}"; done)benches/soak.sh${*:+ $*}"

exec 9>"${TMPDIR:-/tmp}/hookpipe-load.lock"
if ! flock -n 9; then
  echo "a load run (benches/load.sh or soak.sh) is running; wait for it" >&2
  exit 2
fi

tools="$HOME/.cache/hookpipe/bench-tools"
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"
# Calibration: wrk (Debian package), as scenario A of the load benchmark.
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
# The soak's open-loop load: oha.
if ! command -v oha >/dev/null 2>&1; then
  echo "installing oha into $tools (one time, a few minutes)..." >&2
  cargo install oha --locked --root "$tools"
fi
args=()
[ -z "${SOAK_SECS:-}" ] || args+=(--secs "$SOAK_SECS")
[ -z "${SOAK_RATE:-}" ] || args+=(--rate "$SOAK_RATE")
tansu="${HOOKPIPE_TANSU:-$HOME/.cache/hookpipe/tansu/bin/tansu}"
if [ "${SOAK_KAFKA:-embedded}" = tansu ]; then
  [ -x "$tansu" ] || scripts/install-tansu.sh
  args+=(--kafka tansu)
fi

binary="${HOOKPIPE_BIN:-}"
if [ -z "$binary" ]; then
  cargo build --release --bin hookpipe
  binary="${CARGO_TARGET_DIR:-$repo/target}/release/hookpipe"
fi

# 2,000 slowloris connections, the hostile mix's and oha's: the server and the generators each
# need more than the default 1024 file descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec python3 benches/soak.py \
  --repo "$repo" \
  --hookpipe "$binary" \
  --wrk "$(command -v wrk)" \
  --oha "$(command -v oha)" \
  --tansu "$tansu" \
  --command "$command_line" \
  "${args[@]}" "$@"
