#!/usr/bin/env bash
# The test command: makes sure the Tansu broker binary the tests start and the CloudEvents
# Python SDK are installed (cached outside the checkout), then runs the whole suite with nextest.
#
#   scripts/test.sh              # everything
#   scripts/test.sh ingest       # extra arguments go to cargo nextest run
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/install-tansu.sh"
export HOOKPIPE_TANSU="${HOOKPIPE_TANSU:-$HOME/.cache/hookpipe/tansu/bin/tansu}"
# The CloudEvents SDK the CloudEvents tests parse hookpipe's events with.
"$(dirname "$0")/install-cloudevents-sdk.sh"
export HOOKPIPE_CLOUDEVENTS_PYTHON="${HOOKPIPE_CLOUDEVENTS_PYTHON:-$HOME/.cache/hookpipe/cloudevents-sdk/bin/python}"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
exec cargo nextest run --workspace --no-fail-fast "$@"
