#!/bin/sh
# The built-in webhooks module (docs/webhooks.md) against real receivers
# on loopback that check what a careful receiver checks (both signatures,
# the timestamp's age, duplicates): CRUD with bad definitions refused
# (422), the secret shown once and sealed at rest, subscriptions by event,
# a receiver that is down and comes back, a dead receiver next to a live
# one, 4xx and redirects given up, disable, test, deliveries, delete, the
# audit trail, and the address policy without ITL_WEBHOOK_ALLOW_PRIVATE.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${WEBHOOK_RECEIVER:?}"

SECRET=whsec-0123456789abcdef
wait_for() { # wait_for COMMAND-OUTPUT EXPECTED SECONDS (COMMAND is evaluated)
	i=0; while [ "$(eval "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(eval "$1")" = "$2" ]
}
# start_receiver NAME: a receiver writing $TMP/NAME.log, answering per $TMP/NAME.mode; sets RURL
start_receiver() {
	echo ok >"$TMP/$1.mode"
	"$WEBHOOK_RECEIVER" "$TMP/$1.ready" "$TMP/$1.log" "$SECRET" "$TMP/$1.mode" 2>"$TMP/$1.err" &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$TMP/$1.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	RURL="http://127.0.0.1:$(cat "$TMP/$1.ready")/hooks/$1"
	touch "$TMP/$1.log"
}
got() { # got NAME JQ-FILTER: matching log lines
	jq -c "select($2)" "$TMP/$1.log" 2>/dev/null | wc -l | tr -d ' '
}

start_receiver r1; R1=$RURL
start_receiver r2; R2=$RURL
start_attestd ITL_WEBHOOK_ALLOW_PRIVATE=true ITL_EVENT_RETRY_BASE_MS=100 ITL_EVENT_RETRY_MAX_SECONDS=1 ITL_EVENT_MAX_ATTEMPTS=60 \
	ITL_EVENT_POLL_MS=50

api POST /api/v1/webhooks "{\"url\":\"$R1\"}"
expect 401 "POST /api/v1/webhooks needs an operator credential"
big=$(head -c 300 /dev/zero | tr '\0' 's')
for bad in '{}|url: required' \
	'{"url":"ftp://example.com/x"}|url: must start with https:// or http://' \
	'{"url":"http://user:pw@example.com/"}|url: needs a host and no user:password@' \
	'{"url":"http://"}|url: needs a host' \
	'{"url":"http://example.com/a b"}|url: spaces' \
	'{"url":"http://169.254.169.254/latest/meta-data/"}|url: address 169.254.169.254 is not allowed' \
	'{"url":"http://[fe80::1]:8080/"}|url: address fe80::1 is not allowed' \
	'{"url":"http://0.0.0.0:8080/"}|url: address 0.0.0.0 is not allowed' \
	"{\"url\":\"$R1\",\"secret\":\"short\"}|secret: 16 to 256 characters" \
	"{\"url\":\"$R1\",\"secret\":\"$big\"}|secret: 16 to 256 characters" \
	"{\"url\":\"$R1\",\"events\":[\"node.exploded\"]}|events: unknown event node.exploded" \
	"{\"url\":\"$R1\",\"events\":\"*\"}|events: must be a list" \
	"{\"url\":\"$R1\",\"events\":[]}|events: must be a list" \
	"{\"url\":\"$R1\",\"colour\":\"red\"}|colour: unknown field" \
	"{\"url\":\"$R1\",\"active\":\"yes\"}|active: wrong type" \
	"{\"url\":\"$R1\",\"name\":\"\"}|name: 1 to 128 characters" \
	'[1]|body: expected a JSON object'; do
	admin POST /api/v1/webhooks "${bad%%|*}"
	expect 422 "bad definition -> 422: ${bad#*|}" ".detail | startswith(\"${bad#*|}\")"
done
check "nothing was stored by the refused definitions" test "$(sql "SELECT COUNT(*) FROM extension_webhooks_hooks")" = 0

admin POST /api/v1/webhooks "{\"name\":\"cmdb\",\"url\":\"$R1\",\"events\":[\"node.registered\",\"node.provisioned\"],\"secret\":\"$SECRET\"}"
expect 201 "a webhook is created; its secret is shown once" ".name == \"cmdb\" and .url == \"$R1\" and .events == [\"node.registered\",\"node.provisioned\"] and .active == true and .secret == \"$SECRET\" and (.id | length) == 32 and .created_by == \"SYSTEM\""
W1=$(jget .id)
admin GET "/api/v1/webhooks/$W1"
expect 200 "GET one: never the secret again" "has(\"secret\") | not"
admin GET /api/v1/webhooks
expect 200 "GET the list" ".total == 1 and .webhooks[0].id == \"$W1\" and (.webhooks[0] | has(\"secret\") | not)"
check "the secret is sealed at rest, not stored in plaintext" test "$(sql "SELECT COUNT(*) FROM extension_webhooks_hooks WHERE secret_sealed LIKE '%$SECRET%'")" = 0
admin POST /api/v1/webhooks "{\"url\":\"$R2\"}"
expect 201 "a second webhook without a secret gets a generated one (64 hex)" '(.secret | test("^[0-9a-f]{64}$")) and .events == ["*"]'
W2=$(jget .id)
admin DELETE "/api/v1/webhooks/$W2"
expect 200 "... and is deleted" ".deleted == true"

make_ek w1
api POST /api/v1/register "$(node_body ',"hw_product":"R650"')"
M1=$(jget .machine_id)
check "the receiver gets node.registered" wait_for "got r1 '.event == \"node.registered\"'" 1 10
line=$(jq -c 'select(.event == "node.registered")' "$TMP/r1.log" | head -1)
check "... X-Webhook-Signature (HMAC-SHA256 of the body) verifies" test "$(printf '%s' "$line" | jq .sig_ok)" = true
check "... so does the timestamped X-Webhook-Signature-256, and the timestamp is fresh" test "$(printf '%s' "$line" | jq '.tsig_ok and .fresh')" = true
check "... the body is the event: id, machine_id, context" test "$(printf '%s' "$line" | jq -r "[.body.machine_id == \"$M1\", .body.id > 0, .body.hardware.hw_product == \"R650\", .delivery == \"\(.body.id)-$W1\", .path == \"/hooks/r1\"] | all")" = true
admin POST "/api/v1/machines/$M1/approve" '{"role":"worker-infra","hostname":"w-1"}'
check "node.provisioned follows; node.role_changed is not subscribed" wait_for "got r1 '.event == \"node.provisioned\"'" 1 10
check "... nothing else arrived" test "$(got r1 'true')" = 2
check "the deliveries are recorded" wait_for "sql \"SELECT COUNT(*) FROM extension_webhooks_deliveries WHERE webhook_id = '$W1' AND outcome = 'delivered'\"" 2 5

# a receiver that is down for a while gets everything once it is back
echo fail >"$TMP/r1.mode"
make_ek w2; api POST /api/v1/register "$(node_body)"; M2=$(jget .machine_id)
make_ek w3; api POST /api/v1/register "$(node_body)"; M3=$(jget .machine_id)
check "while the receiver answers 503 the deliveries are retried" wait_for "sql \"SELECT CASE WHEN COUNT(*) >= 2 THEN 'yes' ELSE 'no' END FROM extension_webhooks_deliveries WHERE outcome = 'retry' AND error = 'HTTP 503'\"" yes 10
admin GET "/api/v1/events?machine_id=$M2"
expect 200 "... and the event is pending" '.events[0].status == "pending"'
echo ok >"$TMP/r1.mode"
check "once it is back every event arrives" wait_for "got r1 \".event == \\\"node.registered\\\" and (.body.machine_id == \\\"$M2\\\" or .body.machine_id == \\\"$M3\\\") and .mode == \\\"ok\\\"\"" 2 15
check "... each attempt is recorded" wait_for "sql \"SELECT COUNT(*) FROM extension_webhooks_deliveries WHERE webhook_id = '$W1' AND outcome = 'delivered'\"" 4 5
admin GET "/api/v1/webhooks/$W1/deliveries"
expect 200 "GET /{id}/deliveries shows the failed and the successful attempts" \
	'([.deliveries[] | select(.outcome == "retry" and .status_code == 503)] | length) >= 2 and ([.deliveries[] | select(.outcome == "delivered")] | length) == 4'
check "retries of one delivery carry the same X-Webhook-Delivery (receivers de-duplicate)" \
	test "$(jq -r "select(.body.machine_id == \"$M2\") | .delivery" "$TMP/r1.log" | sort -u | wc -l | tr -d ' ')" = 1

# a dead receiver next to a live one: the live one is not held up
admin POST /api/v1/webhooks '{"name":"dead","url":"http://127.0.0.1:9/nothing","secret":"0123456789abcdef"}'
expect 201 "a webhook to a port nobody listens on"
WD=$(jget .id)
make_ek w4; api POST /api/v1/register "$(node_body)"; M4=$(jget .machine_id)
check "the live receiver still gets the event at once" wait_for "got r1 '.body.machine_id == \"$M4\"'" 1 5
E4=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M4'")
check "the dead one's delivery is retried on its own" wait_for "sql \"SELECT status FROM event_deliveries WHERE event_id = $E4 AND consumer = 'webhooks/*:$WD' AND attempts >= 2\"" pending 10
admin PATCH "/api/v1/webhooks/$WD" '{"active":false}'
expect 200 "PATCH active=false disables a webhook" '.active == false'
check "... its pending delivery is given up" wait_for "sql \"SELECT status || ':' || last_error FROM event_deliveries WHERE event_id = $E4 AND consumer = 'webhooks/*:$WD'\"" \
	"dead:webhook $WD was deleted or disabled" 10

# 4xx other than 408/429 is permanent; redirects are not followed
echo reject >"$TMP/r1.mode"
make_ek w5; api POST /api/v1/register "$(node_body)"; M5=$(jget .machine_id)
E5=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M5'")
check "a receiver answering 400 -> dead after one attempt" wait_for "sql \"SELECT status || ':' || attempts || ':' || last_error FROM event_deliveries WHERE event_id = $E5 AND consumer = 'webhooks/*:$W1'\"" "dead:1:HTTP 400" 10
echo redirect >"$TMP/r1.mode"
make_ek w6; api POST /api/v1/register "$(node_body)"; M6=$(jget .machine_id)
E6=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M6'")
check "a redirect is not followed (dead, HTTP 302)" wait_for "sql \"SELECT status || ':' || last_error FROM event_deliveries WHERE event_id = $E6 AND consumer = 'webhooks/*:$W1'\"" "dead:HTTP 302: redirects are not followed" 10
echo ok >"$TMP/r1.mode"
admin POST "/api/v1/events/$E5/replay" '{"consumer":"webhooks/*:'"$W1"'"}'
expect 202 "the given-up delivery is replayed"
check "... and arrives" wait_for "got r1 '.body.machine_id == \"$M5\" and .sig_ok'" 2 10

# PATCH, test, delete
admin PATCH "/api/v1/webhooks/$W1" '{"url":"http://169.254.169.254/"}'
expect 422 "PATCH to a forbidden address -> 422" '.detail | startswith("url: address 169.254.169.254")'
admin PATCH "/api/v1/webhooks/$W1" '{"events":["nope"]}'
expect 422 "PATCH with an unknown event -> 422"
admin PATCH /api/v1/webhooks/0123456789abcdef0123456789abcdef '{"active":true}'
expect 404 "PATCH of an unknown webhook -> 404"
admin GET /api/v1/webhooks/not-an-id
expect 404 "a malformed id -> 404"
admin POST "/api/v1/webhooks/$W1/test" ''
expect 202 "POST /{id}/test queues a test delivery" '.status == "queued" and (.delivery | startswith("test-"))'
check "the receiver gets webhook.test, signed" wait_for "got r1 '.event == \"webhook.test\" and .sig_ok and .tsig_ok'" 1 10
admin POST /api/v1/webhooks/0123456789abcdef0123456789abcdef/test ''
expect 404 "test of an unknown webhook -> 404"
admin DELETE "/api/v1/webhooks/$W1"
expect 200 "DELETE"
admin GET "/api/v1/webhooks/$W1"
expect 404 "... then it is gone"
admin DELETE "/api/v1/webhooks/$W1"
expect 404 "... and a second DELETE is 404"
check "create, update, delete are audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action IN ('webhook_created', 'webhook_updated', 'webhook_deleted')")" = 6
stop_attestd

# without ITL_WEBHOOK_ALLOW_PRIVATE the service's own loopback and private ranges are refused
start_attestd ITL_WEBHOOK_DENIED_CIDRS=203.0.113.0/24
for u in "$R1" http://10.1.2.3/ http://192.168.0.1/ "http://[::1]:8080/" "http://[::ffff:127.0.0.1]:80/" http://localhost:8080/; do
	admin POST /api/v1/webhooks "{\"url\":\"$u\"}"
	expect 422 "default policy: $u -> 422" '.detail | contains("loopback or private")'
done
admin POST /api/v1/webhooks '{"url":"http://203.0.113.7/"}'
expect 422 "ITL_WEBHOOK_DENIED_CIDRS -> 422" '.detail | contains("ITL_WEBHOOK_DENIED_CIDRS")'
admin POST /api/v1/webhooks '{"url":"https://198.51.100.7/hook"}'
expect 201 "a public address is accepted"
stop_attestd

done_testing
