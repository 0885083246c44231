#!/bin/sh
# Event delivery with three replicas on one PostgreSQL database: the
# partition leases and the held, SKIP LOCKED claims make each delivery
# happen once in the normal case; killing a replica hands its partitions
# to the others and nothing is lost.
. "$SRCDIR/tests/lib/test-lib.sh"
[ "$ATTEST_DB" = postgresql ] || { echo "1..0 # SKIP PostgreSQL only"; exit 0; }
: "${WEBHOOK_RECEIVER:?}"

SECRET=whsec-0123456789abcdef
wait_until() { t=$1; shift; i=0; while ! "$@" && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done; "$@"; }
"$WEBHOOK_RECEIVER" "$TMP/r.ready" "$TMP/r.log" "$SECRET" 2>"$TMP/r.err" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/r.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
touch "$TMP/r.log"
RURL="http://127.0.0.1:$(cat "$TMP/r.ready")/r"
CONF="ITL_WEBHOOK_ALLOW_PRIVATE=true ITL_EVENT_POLL_MS=50 ITL_EVENT_PARTITIONS=4 ITL_EVENT_RETRY_BASE_MS=100"

new_db
SHARED_DB_URL=$DB_URL
# shellcheck disable=SC2086
start_attestd $CONF; B1=$BASE; P1=$ATTESTD_PID
# shellcheck disable=SC2086
start_attestd $CONF; B2=$BASE; P2=$ATTESTD_PID
# shellcheck disable=SC2086
start_attestd $CONF; B3=$BASE; P3=$ATTESTD_PID
BASE=$B1
admin POST /api/v1/webhooks "{\"url\":\"$RURL\",\"secret\":\"$SECRET\"}"
expect 201 "a webhook"

# 30 machines registered, spread over the replicas, in parallel
n=0; cp=""
for b in $B1 $B2 $B3; do
	for k in 1 2 3 4 5 6 7 8 9 10; do
		n=$((n + 1))
		make_ek "m$n" >/dev/null
		node_body >"$TMP/m$n.json"
		curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/m$n.json" "$b/api/v1/register" &
		cp="$cp $!"
	done
done
wait $cp	# only the curls: attestd and the receiver are children too
check "30 events committed" test "$(sql "SELECT COUNT(*) FROM outbox_events")" = 30
received() { test "$(jq -r 'select(.mode == "ok") | .delivery' "$TMP/r.log" | sort -u | wc -l | tr -d ' ')" = "$1"; }
settled() { test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL")" = 0; }
check "all 30 reach the receiver" wait_until 30 received 30
sleep 1
check "... each exactly once (no duplicate request)" test "$(wc -l <"$TMP/r.log" | tr -d ' ')" = 30
check "... with one attempt each" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE attempts = 1 AND status = 'delivered'")" = 30
check "the partitions are held by replicas (one holder per lease)" \
	test "$(sql "SELECT COUNT(*) FROM leases WHERE name LIKE 'events.%' AND expires_at > 0")" = 4
check "log: the events lease is held by one replica at a time" \
	test "$(grep -l "Acquired the events lease" "$TMP"/attestd.*/attestd.log | wc -l | tr -d ' ')" = 1

# one replica dies: the others take its partitions over
kill -9 "$P1"; wait "$P1" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $P1//")
BASE=$B2
for k in 1 2 3 4 5 6 7 8 9 10; do
	make_ek "z$k" >/dev/null
	api POST /api/v1/register "$(node_body)"
done
check "after a replica is killed the 10 new events are delivered by the others" \
	wait_until 30 received 40
check "... every event settled" wait_until 10 settled
ATTESTD_PID=$P2; stop_attestd
ATTESTD_PID=$P3; stop_attestd
SHARED_DB_URL=""

done_testing
