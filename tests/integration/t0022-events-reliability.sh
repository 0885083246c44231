#!/bin/sh
# At-least-once delivery when attestd dies: kill -9 while a webhook
# delivery is in flight (its receiver answers slowly), restart on the same
# database: every committed event reaches the receiver; the interrupted
# attempts count, and no event is lost or settled without an answer.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${WEBHOOK_RECEIVER:?}"

SECRET=whsec-0123456789abcdef
wait_until() { # wait_until SECONDS COMMAND...
	t=$1; shift; i=0
	while ! "$@" && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	"$@"
}
echo slow >"$TMP/r.mode"
"$WEBHOOK_RECEIVER" "$TMP/r.ready" "$TMP/r.log" "$SECRET" "$TMP/r.mode" 2>"$TMP/r.err" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/r.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
touch "$TMP/r.log"
RURL="http://127.0.0.1:$(cat "$TMP/r.ready")/r"
CONF="ITL_WEBHOOK_ALLOW_PRIVATE=true ITL_EVENT_HOOK_TIMEOUT_SECONDS=4 ITL_EVENT_RETRY_BASE_MS=100 ITL_EVENT_RETRY_MAX_SECONDS=1 ITL_EVENT_MAX_ATTEMPTS=50 ITL_EVENT_POLL_MS=50 ITL_EVENT_PARTITIONS=2"

# shellcheck disable=SC2086
start_attestd $CONF
SHARED_DB_URL=$DB_URL
DB1=$DB
admin POST /api/v1/webhooks "{\"url\":\"$RURL\",\"secret\":\"$SECRET\"}"
expect 201 "a webhook to a slow receiver"
for n in 1 2 3 4 5 6; do
	make_ek k$n
	api POST /api/v1/register "$(node_body)"
done
check "six events committed" test "$(sql "SELECT COUNT(*) FROM outbox_events")" = 6
check "a delivery is in flight (the receiver has a request)" wait_until 10 test -s "$TMP/r.log"
kill -9 "$ATTESTD_PID"
wait "$ATTESTD_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $ATTESTD_PID//")
check "attestd was killed with deliveries pending" test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL")" -ge 1
check "... and at least one attempt was counted before the hook ran" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE attempts >= 1 AND status = 'pending'")" -ge 1

echo ok >"$TMP/r.mode"
# shellcheck disable=SC2086
start_attestd $CONF
DB=$DB1		# the same database (sqlite: the first instance's file)
delivered() {
	for id in $(sql "SELECT id FROM outbox_events ORDER BY id"); do
		# answered 200: in "ok" mode, or "slow" (200 after 3 s) and settled as delivered
		[ "$(jq -c "select(.id == $id and .sig_ok and .mode == \"ok\")" "$TMP/r.log" | wc -l)" -ge 1 ] ||
			[ "$(sql "SELECT status FROM event_deliveries WHERE event_id = $id")" = delivered ] || return 1
	done
}
check "after the restart every committed event reaches the receiver (answered 200)" wait_until 40 delivered
unsettled() { test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL")" = 0; }
check "... and every event is settled as delivered" wait_until 10 unsettled
check "... none is dead" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE status <> 'delivered'")" = 0
check "the receiver saw each event, retries reusing its X-Webhook-Delivery" \
	test "$(jq -r '.delivery' "$TMP/r.log" | sort -u | wc -l | tr -d ' ')" = 6
stop_attestd
SHARED_DB_URL=""

done_testing
