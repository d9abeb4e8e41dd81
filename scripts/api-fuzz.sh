#!/usr/bin/env bash
# Property-based tests of the management API from its OpenAPI document (schemathesis, from
# PyPI) against a running `hookpipe serve` on the embedded Kafka cluster: no 5xx, and every
# status code, content type and body as docs/openapi.json says. Bounded: examples per
# operation and a time budget (HOOKPIPE_FUZZ_EXAMPLES, HOOKPIPE_FUZZ_SECONDS).
#
#   scripts/api-fuzz.sh                  # builds the binary, runs ~2 minutes
#   HOOKPIPE_FUZZ_SECONDS=600 scripts/api-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${HOOKPIPE_FUZZ_EXAMPLES:-30}"
seconds="${HOOKPIPE_FUZZ_SECONDS:-120}"
token="fuzz-admin-token-0123456789"

if ! command -v schemathesis >/dev/null 2>&1; then
  # Debian's own python3 refuses pip installs outside a venv (PEP 668); a user install is fine.
  python3 -m pip install --quiet schemathesis 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages schemathesis
  export PATH="$HOME/.local/bin:$PATH"
fi
# With --tests the features are those of the test build (dev-dependencies unified), so after
# scripts/test.sh this reuses its binary instead of building the crate a second time.
cargo build --quiet --bin hookpipe --tests

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
cat >"$work/hookpipe.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
public_id_secret = "fuzz-public-id-secret-0123456789"
admin_token = "$token"
secrets_key = "aG9va3BpcGUtdGVzdC1zZWNyZXRzLWtleS0zMmJ5dGU="
[[listeners]]
id = "orders"
resource_path = "items"
TOML
target/debug/hookpipe serve --config "$work/hookpipe.toml" >"$work/serve.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
# /readyz, not /healthz: /healthz answers 200 from the first moment, while the API still
# answers 503 until Kafka is available (the two-phase start).
for _ in $(seq 1 120); do
  curl -fs "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "$base/readyz" >/dev/null || { cat "$work/serve.log"; echo "api-fuzz: the server did not become ready" >&2; exit 1; }

# Something for the operations to find: an API listener with a secret, a sample, mock output.
auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")
curl -fs "${auth[@]}" -X POST "$base/api/v1/listeners" \
  -d '{"id":"api-made","verification":{"type":"hmac","algorithm":"sha256","encoding":"hex","header":"X-Sig","secrets":["fuzz-secret-1"]}}' >/dev/null
curl -fs "${auth[@]}" -X PUT "$base/api/v1/listeners/orders/sample" -d '{"records":[{"order_id":"1"}]}' >/dev/null
curl -fs "${auth[@]}" -X PUT "$base/api/v1/listeners/orders/mock" -d '{"records":[{"order_id":"1"}]}' >/dev/null

status=0
timeout "$((seconds + 120))" schemathesis run docs/openapi.json \
  --url "$base/api/v1" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" \
  --max-time "$seconds" \
  --request-timeout 20 \
  --workers 1 \
  --seed 17 \
  --report junit --report-dir target/schemathesis || status=$?
if [ "$status" -ne 0 ]; then
  echo "api-fuzz: schemathesis found problems (exit $status); server log:" >&2
  tail -n 50 "$work/serve.log" >&2
fi
exit "$status"
