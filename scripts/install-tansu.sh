#!/usr/bin/env bash
# Installs the Tansu Kafka-compatible broker (0.6.0, memory and SQLite storage) once, to
# $HOME/.cache/hookpipe/tansu; later runs reuse it. A cold install compiles for ~15 minutes.
set -euo pipefail
root="$HOME/.cache/hookpipe/tansu"
if [ -x "$root/bin/tansu" ] && "$root/bin/tansu" --version 2>/dev/null | grep -q "0.6.0"; then
  exit 0
fi
echo "installing tansu 0.6.0 into $root (one time, ~15 minutes)..." >&2
mkdir -p "$root"
cargo install tansu@0.6.0 --locked --features dynostore,libsql --root "$root"
