#!/bin/sh
# Background sweeps under a lease: expired nonces and tokens are removed by
# exactly one replica; a dead replica's lease is taken over.
. "$SRCDIR/tests/lib/test-lib.sh"

expired_rows() {
	sql "INSERT INTO nonces (nonce_id, nonce, created_at, expires_at) VALUES ('$1', 'AAAA', 1, 1)"
	sql "INSERT INTO config_tokens (token_hash, machine_id, state, created_at, expires_at) VALUES ('$1', 'm', 'attested', 'x', 1)"
}
wait_for() { # wait_for SQL EXPECTED SECONDS
	i=0; while [ "$(sql "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(sql "$1")" = "$2" ]
}

if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; fi
start_attestd ITL_SWEEP_INTERVAL_SECONDS=1; P1=$ATTESTD_PID; D1=$DATA
SHARED_DB_URL=${SHARED_DB_URL:-$DB_URL}
api GET /api/v1/attest/challenge
LIVE=$(jget .nonce_id)
make_ek live ec
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$LIVE\"")"
sql "INSERT INTO rate_limits (source, window_start, hits) VALUES ('192.0.2.1', 1, 5)"
expired_rows aaaa
check "expired nonces and tokens are swept" wait_for "SELECT COUNT(*) FROM nonces WHERE nonce_id = 'aaaa'" 0 8
check "expired config tokens are swept" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE token_hash = 'aaaa'")" = 0
check "records of used, unexpired nonces are kept" test "$(sql "SELECT COUNT(*) FROM nonces WHERE nonce_id = '$LIVE'")" = 1
check "counters of closed rate-limit windows are swept" test "$(sql "SELECT COUNT(*) FROM rate_limits WHERE source = '192.0.2.1'")" = 0
check "the sweep records its result" sh -c "[ -n \"\$1\" ]" _ "$(sql "SELECT last_result FROM leases WHERE name = 'sweep'")"
check "log line: lease acquired" grep -q "Acquired the sweep lease" "$D1/attestd.log"

if [ "$ATTEST_DB" = postgresql ]; then
	start_attestd ITL_SWEEP_INTERVAL_SECONDS=1; P2=$ATTESTD_PID
	start_attestd ITL_SWEEP_INTERVAL_SECONDS=1; P3=$ATTESTD_PID
	sleep 2.5
	H=$(sql "SELECT holder FROM leases WHERE name = 'sweep'")
	check "one replica holds the lease: the first one, still alive" sh -c "printf '%s' \"\$1\" | grep -q ':$P1:'" _ "$H"
	check "the other replicas never acquired it" sh -c "! grep -q 'Acquired the sweep lease' \"\$1\"/../attestd.*/attestd.log 2>/dev/null || [ \$(grep -l 'Acquired the sweep lease' \"\$1\"/../attestd.*/attestd.log | wc -l) = 1 ]" _ "$D1"
	# the holder dies without releasing: another replica takes over after the lease expires
	kill -9 "$P1"; wait "$P1" 2>/dev/null
	PIDS=$(echo "$PIDS" | sed "s/ $P1//")
	check "after the holder dies another replica takes the lease" wait_for "SELECT CASE WHEN holder LIKE '%:$P1:%' THEN 'old' ELSE 'new' END FROM leases WHERE name = 'sweep'" new 10
	expired_rows bbbb
	check "... and sweeps" wait_for "SELECT COUNT(*) FROM nonces WHERE nonce_id = 'bbbb'" 0 8
	for p in $P2 $P3; do ATTESTD_PID=$p; DATA=$D1; stop_attestd; done
else
	ATTESTD_PID=$P1; DATA=$D1
fi
done_testing
