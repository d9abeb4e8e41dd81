#!/usr/bin/env bash
# Proves that redaction fails closed at compile time (issue 12): a verification variant that
# carries a secret cannot be added without saying how it is redacted.
#
# It copies the crate (src/, Cargo.toml, Cargo.lock, benches/ for the manifest's bench targets)
# into target/redaction-exhaustive/, adds a dummy variant `Dummy { api_key: Secret }` to
# `VerificationConfig`, and runs `cargo check --lib` there with CARGO_TARGET_DIR set to this
# repository's target/ (so every dependency is reused; only hookpipe itself is checked). It
# succeeds only if that check FAILS with E0004 (non-exhaustive patterns) in each function that
# must know where a variant keeps its secrets:
#   VerificationConfig::secrets_mut, VerificationConfig::secrets  (src/config/verification.rs)
#   VerificationConfig::redacted, secret_field                      (src/redact.rs)
# How: those functions match every variant by name with no `_` arm (and destructure every field
# without `..`); `#[deny(clippy::wildcard_enum_match_arm)]` on them refuses a later `_ =>`.
#
#   scripts/check-redaction-exhaustive.sh            # exit 0: enforced; 1: not enforced
#   scripts/check-redaction-exhaustive.sh --verbose  # also print the compiler's errors
#
# Needs cargo and python3; well under 2 minutes with a warm target/ (about 20 s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
verbose=false
case "${1:-}" in
  --verbose) verbose=true ;;
  "") ;;
  *) echo "usage: $0 [--verbose]" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
# A fixed place (not mktemp): cargo keys the crate's artifacts by its path, so a stable path
# reuses them from one run to the next instead of piling up a new set each time.
copy="$target_dir/redaction-exhaustive/crate"
rm -rf "$copy"
mkdir -p "$copy"
cp -R src benches Cargo.toml Cargo.lock "$copy/"

python3 - "$copy/src/config/verification.rs" <<'PY'
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
enum = re.search(r"pub enum VerificationConfig \{\n", text)
if not enum:
    sys.exit("check-redaction-exhaustive: `pub enum VerificationConfig {` not found in " + path)
dummy = (
    "    /// A dummy secret-bearing variant added by scripts/check-redaction-exhaustive.sh.\n"
    "    Dummy {\n"
    "        /// A secret under a name no list of field names would know.\n"
    "        api_key: Secret,\n"
    "    },\n"
)
open(path, "w", encoding="utf-8").write(text[: enum.end()] + dummy + text[enum.end() :])
PY

log="$target_dir/redaction-exhaustive/check.log"
set +e
(cd "$copy" && CARGO_TARGET_DIR="$target_dir" cargo check --lib --locked --message-format=short --color=never) >"$log" 2>&1
status=$?
set -e
if $verbose; then
  cat "$log"
fi
if [ "$status" -eq 0 ]; then
  echo "FAIL: the crate compiles with an unredacted secret-bearing variant: redaction is not exhaustive" >&2
  exit 1
fi

python3 - "$copy" "$log" <<'PY'
import re
import sys

copy, log = sys.argv[1], sys.argv[2]
required = {
    ("src/config/verification.rs", "secrets_mut"),
    ("src/config/verification.rs", "secrets"),
    ("src/redact.rs", "redacted"),
    ("src/redact.rs", "secret_field"),
}
errors = re.findall(r"^(src/[^:\s]+\.rs):(\d+):\d+: error\[(E\d+)\]", open(log, encoding="utf-8").read(), re.M)
fn_re = re.compile(r"\bfn\s+([A-Za-z_]\w*)")


def enclosing_fn(rel, line):
    lines = open(f"{copy}/{rel}", encoding="utf-8").read().split("\n")
    for number in range(line - 1, -1, -1):
        found = fn_re.search(lines[number])
        if found:
            return found.group(1)
    return "?"


non_exhaustive = {(rel, enclosing_fn(rel, int(line))) for rel, line, code in errors if code == "E0004"}
other = sorted({code for _, _, code in errors if code != "E0004"})
for rel, name in sorted(non_exhaustive):
    print(f"E0004 in {rel}: fn {name}")
missing = required - non_exhaustive
if other:
    print(f"FAIL: other errors than E0004 ({', '.join(other)}): see {log}", file=sys.stderr)
    sys.exit(1)
if missing:
    for rel, name in sorted(missing):
        print(f"FAIL: {rel}: fn {name} compiled with the dummy variant unhandled", file=sys.stderr)
    print(f"(compiler output: {log})", file=sys.stderr)
    sys.exit(1)
print("ok: a secret-bearing verification variant does not compile until secrets_mut, secrets, "
      "redacted and secret_field handle it")
PY
