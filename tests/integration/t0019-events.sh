#!/bin/sh
# Lifecycle events (docs/events.md): the typed contexts hooks get, per
# consumer deliveries (a hook that overruns its timeout or keeps failing
# holds up neither other consumers nor other machines), retries with
# backoff and the dead letter, GET /api/v1/events (filters, paging, bad
# input), GET /api/v1/events/{id}, replay (API and CLI), and the audit
# entry a replay leaves.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${ATTESTATION_CLI:?}"

wait_for() { # wait_for SQL EXPECTED SECONDS
	i=0; while [ "$(sql "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(sql "$1")" = "$2" ]
}
seen() { sql "SELECT $1 FROM extension_evtest_seen WHERE kind = '$2' AND event_id = $3"; }
evid() { sql "SELECT id FROM outbox_events WHERE event = '$1' AND machine_id = '$2' ORDER BY id DESC LIMIT 1"; }

start_attestd ITL_EXTENSIONS="$EXT_DIR/ext-events.so" ITL_EVENT_MAX_ATTEMPTS=3 ITL_EVENT_RETRY_BASE_MS=50 \
	ITL_EVENT_HOOK_TIMEOUT_SECONDS=1

make_ek e1
api POST /api/v1/register "$(node_body ',"hw_product":"PowerEdge R650","hw_mac":"aa:bb:cc:dd:ee:01","hw_uuid":"4c4c4544-0001"')"
expect 200 "a machine registers"
M1=$(jget .machine_id)
E=$(evid node.registered "$M1")
check "on_registered: the typed context" wait_for "SELECT a || '|' || b FROM extension_evtest_seen WHERE kind = 'registered' AND event_id = $E" \
	"aa:bb:cc:dd:ee:01|PowerEdge R650" 10
check "... tpm_available, ip_address and hardware.hw_uuid" test "$(seen c registered "$E")" = "tpm=1 ip=127.0.0.1 uuid=4c4c4544-0001"
check "on_any_event: every event carries machine_id, ek_fingerprint, timestamp, raw" \
	test "$(seen "a || '|' || b" any "$E")" = "node.registered|$M1|fp|ts,raw"

admin POST "/api/v1/machines/$M1/approve" '{"role":"worker-infra","hostname":"ev-1"}'
expect 200 "approved with another role than it asked for"
ER=$(evid node.role_changed "$M1")
check "node.role_changed on the first approval: previous and new role" \
	wait_for "SELECT a || '>' || b || '@' || c FROM extension_evtest_seen WHERE kind = 'role_changed' AND event_id = ${ER:-0}" \
	"worker-app>worker-infra@ev-1" 10

# a hook that overruns its timeout: recorded, retried, and it holds up nothing else
admin POST "/api/v1/machines/$M1/lock" '{"reason":"drill"}'
expect 200 "the machine is locked"
EL=$(evid node.locked "$M1")
check "the other consumers get node.locked while the slow hook runs" \
	wait_for "SELECT COUNT(*) FROM extension_evtest_seen WHERE kind = 'any' AND event_id = $EL" 1 10
check "the slow hook's overrun is recorded against its delivery" \
	wait_for "SELECT last_error FROM event_deliveries WHERE event_id = $EL AND consumer = 'evtest/node.locked' AND attempts >= 1" \
	"timed out after 1 s" 15
make_ek e2
api POST /api/v1/register "$(node_body)"
M2=$(jget .machine_id)
E2=$(evid node.registered "$M2")
check "another machine's events are delivered meanwhile" \
	wait_for "SELECT COUNT(*) FROM extension_evtest_seen WHERE kind = 'registered' AND event_id = $E2" 1 10
check "after ITL_EVENT_MAX_ATTEMPTS=3 overruns the slow hook's delivery is dead" \
	wait_for "SELECT status || ':' || attempts FROM event_deliveries WHERE event_id = $EL AND consumer = 'evtest/node.locked'" "dead:3" 30

# a hook that always fails: exponential backoff, then the dead letter
admin POST "/api/v1/machines/$M1/unlock" '{}'
expect 200 "the machine is unlocked"
EU=$(evid node.unlocked "$M1")
check "a failing hook ends in the dead letter after 3 attempts with its own error" \
	wait_for "SELECT status || ':' || attempts || ':' || last_error FROM event_deliveries WHERE event_id = $EU AND consumer = 'evtest/node.unlocked'" \
	"dead:3:receiver said no (attempt 3)" 15
check "log: the retries and the dead letter" grep -q "Event $EU (node.unlocked) to evtest/node.unlocked: attempt 3 failed (receiver said no (attempt 3)); dead-lettered after 3 attempts" "$DATA/attestd.log"
admin POST "/api/v1/machines/$M2/revoke" '{"reason":"gone"}'
ED=$(evid node.decommissioned "$M2")
check "ATT_EXT_PERMANENT: dead after one attempt" \
	wait_for "SELECT status || ':' || attempts || ':' || last_error FROM event_deliveries WHERE event_id = ${ED:-0} AND consumer = 'evtest/node.decommissioned'" \
	"dead:1:no such node in the inventory" 10
check "events after a dead one still reach the consumer of every event, in order" \
	test "$(sql "SELECT a FROM extension_evtest_seen WHERE kind = 'any' AND b LIKE '$M1|%' ORDER BY event_id" | tr '\n' ' ')" = \
	"node.registered node.provisioned node.role_changed node.locked node.unlocked "

# the API
api GET /api/v1/events
expect 401 "GET /api/v1/events needs an operator credential"
check "every event settles" wait_for "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL" 0 10
admin GET "/api/v1/events?machine_id=$M1&per_page=200"
expect 200 "GET /api/v1/events?machine_id= lists the machine's events, newest first" \
	"[.events[].event] == [\"node.unlocked\",\"node.locked\",\"node.role_changed\",\"node.provisioned\",\"node.registered\"] and .page == 1 and .per_page == 200"
admin GET "/api/v1/events?event=node.registered&machine_id=$M1"
expect 200 "... the event as consumers see it" \
	".events | length == 1 and .[0].status == \"delivered\" and .[0].payload.id == $E and .[0].payload.event == \"node.registered\" and .[0].payload.machine_id == \"$M1\" and (.[0].payload.ek_fingerprint | length) == 96 and .[0].payload.hardware.hw_product == \"PowerEdge R650\" and .[0].payload.mac_address == \"aa:bb:cc:dd:ee:01\" and .[0].payload.raw.node.machine_id == \"$M1\" and (.[0].payload.timestamp | test(\"^[0-9]{4}-\"))"
admin GET "/api/v1/events?status=dead"
expect 200 "?status=dead lists the dead-lettered events" "[.events[].id] == [$ED, $EU, $EL]"
admin GET "/api/v1/events?after_id=$E&per_page=2"
expect 200 "?after_id= pages oldest first from a cursor" "[.events[].id] | length == 2 and .[0] > $E and .[0] < .[1]"
admin GET "/api/v1/events?event=node.provisioned&machine_id=$M1"
expect 200 "node.provisioned carries the boot URLs" ".events[0].payload.config_url == \"http://attest.test/api/v1/config?mac=aa:bb:cc:dd:ee:01\" and (.events[0].payload.iso_url | endswith(\"metal-amd64.iso\")) and (.events[0].payload.schematic_id | length) == 64"
for q in "status=lost" "per_page=0" "per_page=201" "after_id=-1" "page=x" "event=" "machine_id=$(printf 'x%.0s' $(seq 70))"; do
	admin GET "/api/v1/events?$q"
	expect 422 "GET /api/v1/events?$(echo "$q" | cut -c1-24) -> 422" '.detail | type == "string"'
done
admin GET "/api/v1/events/$EU"
expect 200 "GET /api/v1/events/{id}: the event and each delivery" \
	".status == \"dead\" and ([.delivery_log[] | select(.consumer == \"evtest/node.unlocked\") | .status] == [\"dead\"]) and ([.delivery_log[] | select(.consumer == \"evtest/*\") | .status] == [\"delivered\"])"
admin GET /api/v1/events/999999
expect 404 "an unknown event is 404"
admin GET /api/v1/events/abc
expect 404 "a malformed event id is 404"

# replay
before=$(sql "SELECT COUNT(*) FROM extension_evtest_seen WHERE kind = 'any'")
admin POST "/api/v1/events/$E/replay" ''
expect 202 "POST /api/v1/events/{id}/replay answers 202" ".id == $E and .status == \"pending\""
check "a replayed event reaches its consumers again" \
	wait_for "SELECT COUNT(*) FROM event_deliveries WHERE event_id = $E AND status = 'delivered' AND attempts = 1" 2 10
check "the replay is audited" test "$(sql "SELECT detail FROM audit_log WHERE action = 'event_replay' ORDER BY id DESC LIMIT 1")" = \
	"event $E replayed to every consumer"
admin POST "/api/v1/events/$EU/replay" '{"consumer":"evtest/node.unlocked"}'
expect 202 "replay to one consumer"
check "... its dead delivery starts over" \
	wait_for "SELECT status || ':' || attempts FROM event_deliveries WHERE event_id = $EU AND consumer = 'evtest/node.unlocked'" "dead:3" 15
check "... and the other consumers are not bothered" test "$(sql "SELECT COUNT(*) FROM extension_evtest_seen WHERE kind = 'any'")" = "$before"
admin POST "/api/v1/events/$EU/replay" '{"consumer":"nobody/*"}'
expect 422 "replay to a consumer the event never had -> 422" '.detail | startswith("consumer:")'
admin POST "/api/v1/events/$EU/replay" '{"consumer":7}'
expect 422 "replay with a malformed body -> 422"
admin POST /api/v1/events/999999/replay ''
expect 404 "replay of an unknown event -> 404"

# the CLI
export HOME="$TMP/home" ATTESTATION_API_URL="$BASE" ATTESTATION_TOKEN="$ADMIN"
out=$("$ATTESTATION_CLI" events list --status dead)
check "attestation events list --status dead" sh -c "printf '%s' \"\$1\" | grep -q \"^$EU .*node.unlocked.*dead\"" _ "$out"
out=$("$ATTESTATION_CLI" --output json events list --machine-id "$M1" --event node.locked)
check "attestation --output json events list --machine-id --event" test "$(printf '%s' "$out" | jq -r '.events[0].id')" = "$EL"
out=$("$ATTESTATION_CLI" events get "$EU")
check "attestation events get shows the deliveries" sh -c "printf '%s' \"\$1\" | grep -q 'evtest/node.unlocked *dead *3'" _ "$out"
"$ATTESTATION_CLI" events replay "$EU" --consumer evtest/node.unlocked >"$TMP/cli.out"
check "attestation events replay --consumer" grep -q "Event $EU queued for delivery again (evtest/node.unlocked)" "$TMP/cli.out"
"$ATTESTATION_CLI" events replay 999999 >/dev/null 2>&1
check "attestation events replay of an unknown event exits 5" test $? = 5
"$ATTESTATION_CLI" events replay abc >/dev/null 2>&1
check "attestation events replay without a numeric id exits 2" test $? = 2
"$ATTESTATION_CLI" events list --status lost >/dev/null 2>&1
check "attestation events list --status lost exits 7 (rejected by the service)" test $? = 7
stop_attestd

# node.heartbeat_missed: an attested machine that stops polling
start_attestd ITL_EXTENSIONS="$EXT_DIR/ext-events.so" ITL_SWEEP_INTERVAL_SECONDS=1 ITL_CONTACT_RESOLUTION_SECONDS=0 \
	ITL_HEARTBEAT_MISSED_SECONDS=2 ITL_EVENT_POLL_MS=50
make_ek hb
api POST /api/v1/register "$(node_body)"
MH=$(jget .machine_id)
admin POST "/api/v1/machines/$MH/approve" '{"role":"worker-app","hostname":"hb-1"}'
api POST /api/v1/attest "$(node_body)"
expect 200 "a machine attests" '.status == "attested"'
hb() { sql "SELECT COUNT(*) FROM outbox_events WHERE event = 'node.heartbeat_missed' AND machine_id = '$MH'"; }
check "no heartbeat event while it is fresh" test "$(hb)" = 0
check "node.heartbeat_missed after 2 s of silence" wait_for "SELECT COUNT(*) FROM outbox_events WHERE event = 'node.heartbeat_missed' AND machine_id = '$MH'" 1 6
check "... and again after the next period, missed_count 2" \
	wait_for "SELECT CASE WHEN COUNT(*) >= 2 THEN 'yes' ELSE 'no' END FROM outbox_events WHERE event = 'node.heartbeat_missed' AND machine_id = '$MH'" yes 6
admin GET "/api/v1/events?event=node.heartbeat_missed&machine_id=$MH"
expect 200 "... its context: last_seen_at and missed_count" \
	"(.events | map(.payload.missed_count) | reverse | .[0:2]) == [1, 2] and (.events[-1].payload.last_seen_at | test(\"^[0-9]{4}-\")) and .events[-1].payload.hostname == \"hb-1\""
check "the hooks get it" wait_for "SELECT CASE WHEN COUNT(*) >= 2 THEN 'yes' ELSE 'no' END FROM extension_evtest_seen WHERE kind = 'any' AND a = 'node.heartbeat_missed'" yes 5
api POST /api/v1/attest "$(node_body)"
n=$(hb)
sleep 1
check "heard from again: no event within the period" test "$(hb)" = "$n"
check "... and the count starts over at 1" \
	wait_for "SELECT COUNT(*) FROM outbox_events WHERE event = 'node.heartbeat_missed' AND machine_id = '$MH' AND payload LIKE '%\"missed_count\":1,%'" 2 6
stop_attestd

done_testing
