#!/usr/bin/env bash
# The fault campaign (issue #18 §2): runs every fault case (tests/integration/chaos.rs, and the
# broker kill and network cut of tests/integration/outage.rs) one after the other with nextest,
# then writes the table the cases printed into docs/faults.md (or $1).
#
#   tests/chaos/run.sh                 # the whole campaign, table into docs/faults.md
#   tests/chaos/run.sh /tmp/faults.md  # elsewhere
#
# Needs the Tansu broker (scripts/test.sh installs it). Takes about five minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out="${1:-docs/faults.md}"
log="$(mktemp)"
filter='test(/^chaos::/) | test(/^outage::a_killed_and_restarted/) | test(/^outage::a_network_cut/)'
command=(cargo nextest run --test integration --no-capture --no-fail-fast -E "$filter")
status=0
"${command[@]}" 2>&1 | tee "$log" || status=$?
rows="$(grep -a '^FAULT-ROW ' "$log" | sed 's/^FAULT-ROW //' || true)"
{
  echo "# Fault campaign"
  echo
  echo "Produced by \`tests/chaos/run.sh\` (\`${command[*]:0:6} -E '$filter'\`) on $(date -u +%Y-%m-%d), against Tansu (SQLite storage for the broker cases)."
  echo "Each row is one bounded test; every one asserts that no request answered 2xx lacks a record in Kafka (read back by request id)."
  echo
  echo "| case | 2xx | 503 | other | lost | duplicates | seconds to recover |"
  echo "|---|---|---|---|---|---|---|"
  echo "$rows"
  echo
  echo "nextest: $(grep -aE '^\s+Summary' "$log" | tail -1 | sed 's/^ *//')"
} > "$out"
rm -f "$log"
echo "table written to $out"
exit "$status"
