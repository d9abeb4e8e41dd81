#!/usr/bin/env bash
# Installs the CloudEvents Python SDK (PyPI `cloudevents` 2.2.0) into a virtual environment at
# $HOME/.cache/hookpipe/cloudevents-sdk once; tests/integration/cloudevents.rs parses the events
# hookpipe publishes with it (tests/cloudevents/sdk_check.py). Later runs reuse it.
set -euo pipefail
root="$HOME/.cache/hookpipe/cloudevents-sdk"
if "$root/bin/python" -c 'import cloudevents.core.bindings.kafka, cloudevents.v1.kafka' 2>/dev/null; then
  exit 0
fi
echo "installing the CloudEvents Python SDK into $root..." >&2
rm -rf "$root"
mkdir -p "$(dirname "$root")"
# python3-venv is Debian's separate package for `python3 -m venv`.
if ! python3 -m venv "$root" 2>/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-venv
  python3 -m venv "$root"
fi
"$root/bin/pip" install --quiet 'cloudevents==2.2.0'
