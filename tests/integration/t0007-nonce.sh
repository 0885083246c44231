#!/bin/sh
# Challenge nonces: stateless HMAC challenges, single use recorded in the
# database, expiry;
# ITL_REQUIRE_NONCE and ITL_REQUIRE_QUOTE.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd ITL_NONCE_CAPACITY=3 ITL_NONCE_TTL_SECONDS=5
api GET /api/v1/attest/challenge
expect 200 "challenge" '(.nonce_id | test("^[0-9a-f]{64}$")) and (.expires_at | endswith("+00:00"))'
N1=$(jget .nonce_id)
check "nonce is 32 bytes, base64" test "$(jget .nonce | base64 -d | wc -c)" = 32
check "issuing a challenge stores nothing" test "$(sql 'SELECT COUNT(*) FROM nonces')" = 0
make_ek a rsa
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$N1\"")"
expect 200 "attest consumes the nonce" '.status == "pending_approval"'
check "the use is recorded in the database" test "$(sql "SELECT COUNT(*) FROM nonces WHERE nonce_id='$N1'")" = 1
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$N1\"")"
expect 409 "replayed nonce" '.detail == "Attestation nonce has already been used — replay detected"'
api POST /api/v1/attest "$(node_body ',"nonce_id":"00000000000000000000000000000000"')"
expect 422 "unknown nonce" '.detail == "Unknown nonce_id — request a fresh challenge first"'
api GET /api/v1/attest/challenge
N2=$(jget .nonce_id)
api GET /api/v1/attest/challenge
N3=$(jget .nonce_id)
api POST /api/v1/attest "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"garbage!\",\"nonce_id\":\"$N3\"}"
expect 422 "a malformed request does not burn its nonce"
check "nonce still unconsumed" test "$(sql "SELECT COUNT(*) FROM nonces WHERE nonce_id='$N3'")" = 0
api GET /api/v1/attest/challenge
api GET /api/v1/attest/challenge
expect 200 "ITL_NONCE_CAPACITY no longer limits challenges (they are stateless)"
sleep 6
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$N2\"")"
expect 410 "expired nonce" '.detail == "Attestation nonce has expired — request a new challenge"'
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$N3\"")"
expect 410 "the unburnt nonce expired too"
stop_attestd
start_attestd

# concurrent use of one nonce: exactly one wins
api GET /api/v1/attest/challenge
N4=$(jget .nonce_id)
node_body ",\"nonce_id\":\"$N4\"" > "$TMP/n4.json"
cpids=""
for i in 1 2 3 4 5 6; do
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' --data-binary @"$TMP/n4.json" "$BASE/api/v1/attest" > "$TMP/race.$i" &
	cpids="$cpids $!"
done
wait $cpids
check "six concurrent uses of one nonce: one 200" test "$(cat "$TMP"/race.* | grep -c 200)" = 1
check "six concurrent uses of one nonce: five 409" test "$(cat "$TMP"/race.* | grep -c 409)" = 5
stop_attestd

start_attestd ITL_REQUIRE_NONCE=true ITL_REQUIRE_QUOTE=true
make_ek b rsa
api POST /api/v1/attest "$(node_body)"
expect 422 "ITL_REQUIRE_NONCE without nonce_id" '.detail | test("ITL_REQUIRE_NONCE is enabled")'
api GET /api/v1/attest/challenge
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$(jget .nonce_id)\"")"
expect 422 "ITL_REQUIRE_NONCE (and _QUOTE) without a quote" '.detail | test("ITL_REQUIRE_NONCE is enabled — a nonce proves freshness only")'
api GET /api/v1/attest/challenge
NQ=$(jget .nonce_id)
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NQ\",\"pcr_quote\":\"AAAA\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{}")"
expect 422 "a quote that is not a TPMS_ATTEST is refused" '.detail | test("not a TPMS_ATTEST")'
# a well-formed quote (recorded from swtpm) for an EK without a bound AK
Q=$(tail -c +2 "$SRCDIR/tests/fuzz/corpus/tpm-quote/attest-rsa" | base64 -w0)
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NQ\",\"pcr_quote\":\"$Q\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{}")"
expect 422 "a quote without a bound AK is refused" '.detail | test("no AK registered")'
check "no machine was created by refused attests" test "$(sql 'SELECT COUNT(*) FROM machines')" = 0
done_testing
