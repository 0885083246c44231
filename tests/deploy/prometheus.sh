#!/bin/sh
# Monitoring: attestd's /metrics passes promtool check metrics (after
# traffic, with every family present), the rules in packaging/prometheus/
# pass promtool check rules and their unit tests (each alert fires on the
# series that should trigger it), the Grafana dashboard is valid JSON
# whose every query is valid PromQL over metrics attestd exports or the
# rules record.  TAP output.   env: SRCDIR, ATTESTD, VERSION
set -u
: "${SRCDIR:?}" "${ATTESTD:?}" "${VERSION:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
RULES=$SRCDIR/packaging/prometheus/attestation-rules.yml
DASH=$SRCDIR/packaging/grafana/attestation-dashboard.json
command -v promtool >/dev/null 2>&1 || { echo "1..0 # SKIP promtool is not installed (Debian: prometheus)"; exit 0; }

start_attestd ITL_CONTACT_SILENT_SECONDS=60 ITL_CONTACT_RESOLUTION_SECONDS=0
make_ek m1 rsa
api POST /api/v1/register "$(node_body)"
expect 200 "a machine waits for approval"
make_ek m2 rsa
admin POST /api/v1/register "$(node_body)"
api POST /api/v1/attest "$(node_body)"
expect 200 "a machine attests" '.status == "attested"'
# it was last heard of long ago; an event was never delivered
sql "UPDATE machines SET last_contact_at = '2020-01-01T00:00:00' WHERE status = 'attested'"
sql "INSERT INTO outbox_events (event, machine_id, payload, created_at) VALUES ('node.test', NULL, '{}', '2020-01-01T00:00:00')"
api GET /healthz; api GET /nope; admin GET /api/v1/machines
api POST /api/v1/attest '{"ek_fingerprint":"zz"}'
sleep 1.2
api GET /metrics
expect 200 "GET /metrics"
printf '%s\n' "$BODY" > "$TMP/metrics"
check "promtool check metrics: no problems" sh -c "promtool check metrics < $TMP/metrics > $TMP/lint 2>&1 && ! grep -q . $TMP/lint"
m() { grep -q "^$1" "$TMP/metrics"; }
check "attestd_build_info names this version" m "attestd_build_info{version=\"$VERSION\"} 1"
check "attestd_db_up 1" m "attestd_db_up 1"
check "the oldest pending machine's age counts up" sh -c "grep -Eq '^attestd_machines_pending_oldest_seconds [1-9]' $TMP/metrics"
check "requests by route template and status (the failed attest too)" \
	sh -c "grep -q '^attestd_http_requests_total{method=\"POST\",route=\"/api/v1/attest\",status=\"4' $TMP/metrics"
check "the silent attested machine is counted" grep -qx 'attestd_machines_silent 1' "$TMP/metrics"
check "undelivered events are not counted while no extension takes events (nothing would deliver them)" \
	sh -c "grep -qx 'attestd_events_undelivered 0' $TMP/metrics && grep -qx 'attestd_events_oldest_undelivered_seconds 0' $TMP/metrics"
stop_attestd

say "--- rules"
check "promtool check rules" promtool check rules "$RULES"
check "promtool test rules: every alert fires when it should, not before" \
	sh -c "cd '$SRCDIR/packaging/prometheus' && promtool test rules attestation-rules.test.yml > $TMP/t 2>&1 && grep -q SUCCESS $TMP/t"
for a in AttestationDatabaseDown AttestationMachinePendingTooLong AttestationAttestFailures AttestationHeartbeatMissed \
	AttestationEventsStuck AttestationDatabaseErrors; do
	check "the unit tests cover $a" grep -q "alertname: $a\$" "$SRCDIR/packaging/prometheus/attestation-rules.test.yml"
done
# every metric a rule or panel uses is one attestd exports (or a rule records)
names() { grep -ohE 'attestd[:_][a-z0-9_:]+' "$@" | sed 's/_bucket$//' | sort -u; }
# (the OIDC families appear only with OIDC configured: taken from the source)
{ sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$TMP/metrics"; sed -n 's/^ *- record: //p' "$RULES"
  grep -oh '# TYPE attestd_oidc_[a-z_]*' "$SRCDIR/src/attestd/routes/ops.c" | cut -d' ' -f3; } | sort -u > "$TMP/known"
names "$RULES" "$DASH" | grep -vxFf "$TMP/known" > "$TMP/unknown"
check "every metric the rules and the dashboard use exists" sh -c "! grep -q . $TMP/unknown || { cat $TMP/unknown; false; }"

say "--- Grafana dashboard"
check "the dashboard is JSON with a uid, a title and panels" jq -e '.uid == "itl-attestation" and (.title | length > 0) and (.panels | length >= 8)' "$DASH"
check "every panel has a grid position and at least one query on the datasource variable" \
	jq -e 'all(.panels[]; .gridPos.w > 0 and (.targets | length >= 1) and .datasource.uid == "${datasource}")' "$DASH"
check "panel ids are unique" jq -e '[.panels[].id] | length == (unique | length)' "$DASH"
# PromQL syntax: the panels' queries (with $instance filled in) as recording rules for promtool
jq -r '.panels[] | .id as $i | .targets[] | "      - record: dashboard:panel_\($i)_\(.refId)\n        expr: \(.expr | gsub("\\$instance"; ".*") | @json)"' "$DASH" |
	{ printf 'groups:\n  - name: dashboard\n    rules:\n'; cat; } > "$TMP/dash-rules.yml"
check "every dashboard query is valid PromQL (promtool check rules)" promtool check rules "$TMP/dash-rules.yml"
done_testing
