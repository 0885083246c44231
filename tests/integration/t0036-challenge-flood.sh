#!/bin/sh
# Challenges cost no storage until used (issue 19, hole 4): a flood of
# GET /attest/challenge writes nothing and cannot lock machines out; a
# challenge from one replica is consumed on another, and single use holds
# across replicas.
. "$SRCDIR/tests/lib/test-lib.sh"

if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL
else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
start_attestd; R1=$BASE; P1=$ATTESTD_PID
start_attestd; R2=$BASE
DB=$TMP/shared.db

N=12000
seq "$N" | sed "s|.*|url = \"$R1/api/v1/attest/challenge\"\noutput = /dev/null|" > "$TMP/flood.cfg"
curl -s -w '%{http_code}\n' -K "$TMP/flood.cfg" > "$TMP/flood.codes"
check "$N challenges (more than the old 10,000 capacity): all 200" \
	test "$(grep -c '^200$' "$TMP/flood.codes")" = "$N"
check "issuing challenges wrote nothing" test "$(sql 'SELECT COUNT(*) FROM nonces')" = 0

make_ek a rsa
BASE=$R1; api GET /api/v1/attest/challenge
expect 200 "a legitimate machine still gets a challenge" '.nonce_id | test("^[0-9a-f]{64}$")'
check "the nonce is 32 bytes, base64" test "$(jget .nonce | base64 -d | wc -c)" = 32
NID=$(jget .nonce_id)
BASE=$R2; api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\"")"
expect 200 "the challenge of replica 1 is accepted by replica 2" '.status == "pending_approval"'
check "its use is recorded" test "$(sql "SELECT COUNT(*) FROM nonces WHERE nonce_id = '$NID' AND consumed_at IS NOT NULL")" = 1
BASE=$R1; api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\"")"
expect 409 "replayed on replica 1: 409" '.detail == "Attestation nonce has already been used — replay detected"'
UP=$(printf '%s' "$NID" | tr a-f A-F)
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$UP\"")"
expect 422 "the same challenge in uppercase is not a new one"
api GET /api/v1/attest/challenge
FORGED=$(jget .nonce_id | sed 's/.$/0/;t'); [ "$FORGED" = "$(jget .nonce_id)" ] && FORGED=$(jget .nonce_id | sed 's/.$/1/')
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$FORGED\"")"
expect 422 "a challenge with a forged tag is unknown" '.detail == "Unknown nonce_id — request a fresh challenge first"'
api POST /api/v1/attest "$(node_body ',"nonce_id":"00000000000000000000000000000000"')"
expect 422 "an old-style or made-up id is unknown"

# six concurrent uses of one challenge across both replicas: exactly one wins
api GET /api/v1/attest/challenge
node_body ",\"nonce_id\":\"$(jget .nonce_id)\"" > "$TMP/race-body.json"
cpids=""
for i in 1 2 3 4 5 6; do
	if [ $((i % 2)) = 0 ]; then R=$R1; else R=$R2; fi
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/race-body.json" "$R/api/v1/attest" > "$TMP/race.$i" &
	cpids="$cpids $!"
done
wait $cpids
check "six concurrent uses on two replicas: one 200" test "$(cat "$TMP"/race.[1-6] | grep -cx 200)" = 1
check "six concurrent uses on two replicas: five 409" test "$(cat "$TMP"/race.[1-6] | grep -cx 409)" = 5
stop_attestd
ATTESTD_PID=$P1; stop_attestd
done_testing
