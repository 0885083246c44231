#!/bin/sh
# Batched delivery keeps the guarantees (docs/events.md "Performance"):
# a backlog of 600 events of 20 machines goes out in batches of 256 whose
# outcomes are committed with the next claim.  kill -9 in the middle of a
# batch, then restart: every event reaches the receiver (at least once),
# and each machine's events first arrive in commit order.  Then the
# receiver goes down with a backlog and comes back: everything arrives,
# in order per machine, none dead.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${WEBHOOK_RECEIVER:?}"

SECRET=whsec-0123456789abcdef
wait_until() { # wait_until SECONDS COMMAND...
	t=$1; shift; i=0
	while ! "$@" && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	"$@"
}
echo lag >"$TMP/r.mode"
"$WEBHOOK_RECEIVER" "$TMP/r.ready" "$TMP/r.log" "$SECRET" "$TMP/r.mode" 2>"$TMP/r.err" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$TMP/r.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
touch "$TMP/r.log"
RURL="http://127.0.0.1:$(cat "$TMP/r.ready")/r"
CONF="ITL_WEBHOOK_ALLOW_PRIVATE=true ITL_EVENT_HOOK_TIMEOUT_SECONDS=10 ITL_EVENT_RETRY_BASE_MS=100 ITL_EVENT_RETRY_MAX_SECONDS=1 ITL_EVENT_MAX_ATTEMPTS=1000 ITL_EVENT_POLL_MS=50 ITL_EVENT_PARTITIONS=1"

# shellcheck disable=SC2086
start_attestd $CONF
SHARED_DB_URL=$DB_URL
DB1=$DB
admin POST /api/v1/webhooks "{\"url\":\"$RURL\",\"secret\":\"$SECRET\"}"
expect 201 "a webhook to a receiver that answers in 20 ms"

insert() { # insert FIRST LAST: events FIRST..LAST (seq numbers), machine batch-m-(seq % 20)
	if [ "$ATTEST_DB" = postgresql ]; then
		sql "INSERT INTO outbox_events (event, machine_id, payload, created_at)
			SELECT 'node.registered', 'batch-m-' || (i % 20), '{\"event\":\"node.registered\",\"seq\":' || i || ',\"raw\":{}}',
			'2026-01-01T00:00:00' FROM generate_series($1, $2) AS i ORDER BY i" >/dev/null
	else
		sql "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
			INSERT INTO outbox_events (event, machine_id, payload, created_at)
			SELECT 'node.registered', 'batch-m-' || (i % 20), '{\"event\":\"node.registered\",\"seq\":' || i || ',\"raw\":{}}',
			'2026-01-01T00:00:00' FROM n ORDER BY i" >/dev/null
	fi
}
arrivals() { wc -l <"$TMP/r.log" | tr -d ' '; }
# every event of seq FIRST..LAST answered 200 with a good signature at least once
all_arrived() { # all_arrived FIRST LAST
	test "$(jq -r "select(.sig_ok and .tsig_ok and .mode != \"down\" and .body.seq >= $1 and .body.seq <= $2) | .body.seq" \
		"$TMP/r.log" | sort -un | wc -l | tr -d ' ')" = $(($2 - $1 + 1))
}
# per machine, the first arrival of each event is in commit (id) order
in_order() {
	jq -r 'select(.body.seq != null) | "\(.body.machine_id) \(.id)"' "$TMP/r.log" |
		awk '!seen[$2]++ { if (($1 in last) && $2 + 0 < last[$1]) bad++; last[$1] = $2 + 0 } END { exit bad > 0 }'
}
arrived_at_least() { test "$(arrivals)" -ge "$1"; }
retrying() { test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE attempts >= 2 AND status = 'pending'")" -ge 1; }
settled() { test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL")" = 0; }

insert 1 600
check "600 events committed" test "$(sql "SELECT COUNT(*) FROM outbox_events")" = 600
check "the first batch is being delivered" wait_until 20 arrived_at_least 60
kill -9 "$ATTESTD_PID"
wait "$ATTESTD_PID" 2>/dev/null
PIDS=$(echo "$PIDS" | sed "s/ $ATTESTD_PID//")
got=$(arrivals)
say "killed after $got arrivals"
check "attestd was killed with most of the backlog pending" test "$got" -lt 500
check "... and deliveries held by the killed batch" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE holder IS NOT NULL AND status = 'pending'")" -ge 1

echo ok >"$TMP/r.mode"
# shellcheck disable=SC2086
start_attestd $CONF
DB=$DB1
check "after the restart every event reaches the receiver" wait_until 60 all_arrived 1 600
check "... and every event is settled" wait_until 20 settled
check "... none dead, none failed" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE status <> 'delivered'")" = 0
check "each machine's events first arrived in commit order" in_order
dups=$(jq -r 'select(.dup) | .delivery' "$TMP/r.log" | wc -l | tr -d ' ')
say "$dups deliveries repeated after the kill (at least once: the killed batch's unrecorded outcomes)"
check "repeats are bounded by one batch" test "$dups" -le 256
check "the batches after the restart repeated nothing" \
	test "$(jq -r 'select(.dup) | .delivery' "$TMP/r.log" | sort | uniq -d | wc -l | tr -d ' ')" = 0

# the receiver down with a backlog, then back
echo down >"$TMP/r.mode"
insert 601 900
check "with the receiver down, deliveries are retried" \
	wait_until 20 retrying
sleep 1
check "... and the events of a machine wait behind its first (no later one was attempted)" \
	test "$(sql "SELECT COUNT(*) FROM event_deliveries d WHERE d.status = 'pending' AND d.attempts > 0 AND EXISTS
		(SELECT 1 FROM event_deliveries e WHERE e.machine_id = d.machine_id AND e.status = 'pending' AND e.event_id < d.event_id)")" = 0
echo ok >"$TMP/r.mode"
check "when it is back, every event arrives" wait_until 60 all_arrived 601 900
check "... settled, none dead" wait_until 20 settled
check "... none dead" test "$(sql "SELECT COUNT(*) FROM event_deliveries WHERE status <> 'delivered'")" = 0
check "... still in commit order per machine" in_order
stop_attestd
SHARED_DB_URL=""

done_testing
