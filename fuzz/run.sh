#!/usr/bin/env bash
# hookpipe's fuzz targets (cargo-fuzz, libFuzzer); see docs/fuzzing.md.
#
#   fuzz/run.sh [SECONDS]   build, then run each target for SECONDS (default 60), one at a time,
#                           from the committed seeds plus the inputs earlier runs kept
#                           (fuzz/corpus-work/, not committed); prints execs, exec/s, coverage and
#                           crashes per target, and exits 1 if a target crashed
#   fuzz/run.sh --replay    build, then run every committed input once (fast: what CI does)
#   fuzz/run.sh --build     build only
#   fuzz/run.sh --cmin      merge fuzz/corpus-work/ into a minimal committed corpus (fuzz/corpus/),
#                           each file at most FUZZ_MAX_LEN bytes
#
# Environment: FUZZ_TARGETS="parse_json verify" picks targets (default: all); FUZZ_RUNS=N stops
# each target after N executions instead of SECONDS; FUZZ_TARGET_DIR (default
# ~/.cache/hookpipe/fuzz-target, outside the checkout so that a fresh clone builds warm);
# FUZZ_NICE (default 19); FUZZ_MAX_LEN (default 4096); CARGO_FUZZ (default: cargo-fuzz on PATH,
# else ~/.cache/hookpipe/bench-tools/bin/cargo-fuzz, installed there if missing).
set -euo pipefail
cd "$(dirname "$0")"

mode=run
seconds=60
case "${1:-}" in
  --replay) mode=replay ;;
  --build) mode=build ;;
  --cmin) mode=cmin ;;
  "") ;;
  *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS | --replay | --build | --cmin]" >&2; exit 2 ;;
  *) seconds="$1" ;;
esac

tools="$HOME/.cache/hookpipe/bench-tools"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/hookpipe/fuzz-target}"
nice_level="${FUZZ_NICE:-19}"
max_len="${FUZZ_MAX_LEN:-4096}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

cargo_fuzz="${CARGO_FUZZ:-}"
if [ -z "$cargo_fuzz" ]; then
  if command -v cargo-fuzz >/dev/null 2>&1; then
    cargo_fuzz="$(command -v cargo-fuzz)"
  else
    cargo_fuzz="$tools/bin/cargo-fuzz"
    if [ ! -x "$cargo_fuzz" ]; then
      echo "installing cargo-fuzz into $tools" >&2
      CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 19 cargo install cargo-fuzz --locked --root "$tools"
    fi
  fi
fi

all_targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^hookpipe-fuzz$')
targets="${FUZZ_TARGETS:-$all_targets}"

# Release, with debug assertions (and so overflow checks); no sanitizer: the code fuzzed is
# safe Rust, and AddressSanitizer would halve the executions a campaign gets.
build() {
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" nice -n 10 "$cargo_fuzz" fuzz build --sanitizer none --debug-assertions \
    --target-dir "$target_dir" "$@" >&2
}
if [ -z "${FUZZ_TARGETS:-}" ]; then
  build
else
  for target in $targets; do build "$target"; done
fi
bin_dir="$target_dir/$triple/release"
[ "$mode" = build ] && exit 0

mkdir -p artifacts
failed=0
printf '%-16s %12s %10s %8s %8s %8s %s\n' target execs exec/s cov ft corpus crashes
for target in $targets; do
  seeds="corpus/$target"
  work="corpus-work/$target"
  mkdir -p "$seeds" "$work" "artifacts/$target"
  log="artifacts/$target/last-run.log"
  args=(-artifact_prefix="artifacts/$target/" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1)
  case "$mode" in
    replay) args+=(-runs=0 "$seeds") ;;
    cmin)
      fresh="corpus-min/$target"
      rm -rf "$fresh"
      mkdir -p "$fresh"
      args+=(-merge=1 "$fresh" "$seeds" "$work")
      ;;
    run)
      if [ -n "${FUZZ_RUNS:-}" ]; then args+=(-runs="$FUZZ_RUNS"); else args+=(-max_total_time="$seconds"); fi
      args+=("$work" "$seeds")
      ;;
  esac
  status=0
  nice -n "$nice_level" "$bin_dir/$target" "${args[@]}" >"$log" 2>&1 || status=$?
  if [ "$mode" = cmin ] && [ "$status" = 0 ]; then
    find "$fresh" -type f -size +"$max_len"c -delete
    rm -rf "$seeds"
    mv "$fresh" "$seeds"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  corpus=$(find "$seeds" -type f | wc -l)
  if [ "$status" != 0 ]; then
    written=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tr '\n' ' ')
    crashes="FAILED (exit $status) ${written:-see fuzz/$log}"
    failed=1
  else
    crashes=0
  fi
  printf '%-16s %12s %10s %8s %8s %8s %s\n' "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done
exit "$failed"
