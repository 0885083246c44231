#!/bin/sh
# Hardening at the edges (issue 19): no input makes a 5xx, identifiers
# have their documented shape, HTTP framing is strict, hostile bytes are
# refused on input and escaped on output.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek a rsa
A63=$(printf 'a%.0s' $(seq 63))
A31=$(printf 'a%.0s' $(seq 31))

# ---- hole 11: truncating a client's key must not split a UTF-8 character ----
api POST /api/v1/register "{\"${A63}é\":1}"
expect 422 "unknown field of 63 bytes + a 2-byte character: 422, not 500" '.detail | endswith(": unknown field")'
api POST /api/v1/register "{\"${A63}€€\":1}"
expect 422 "unknown field cut inside a 3-byte character: 422"
# a TPMS_ATTEST that parses (quote, nothing selected): the values are read next
Q=$(printf 'ff54434780180000000000000000000000000000000000000000000000000000000000000000000000' | xxd -r -p | base64 -w0)
api GET /api/v1/attest/challenge
NID=$(jget .nonce_id)
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$Q\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{\"${A31}é\":1}")"
expect 422 "non-string pcr_values under a key split at 32 bytes: 422" '.detail | startswith("pcr_values:")'
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$Q\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{\"${A31}é\":\"00\"}")"
expect 422 "bad pcr_values key split at 32 bytes: 422" '.detail | startswith("pcr_values:")'
admin GET /api/v1/machines/%ff
expect 404 "%ff in an operator path id: 404, not 500"
admin POST /api/v1/machines/%ff%fe/lock '{"reason":"x"}'
expect 404 "%ff%fe in a lock path id: 404"
api POST /api/v1/machines/%ff/ak-activate '{}'
case $STATUS in 4??) pass "%ff in the unauthenticated ak-activate id: $STATUS" ;; *) fail "ak-activate %ff: 4xx" ;; esac
admin GET /api/v1/pcr-policies/%c3
expect 404 "half a character as a role: 404"

# ---- hole 18: identifiers taken from a client have their documented shape ----
before=$(counts)
for id in .. . -x ../etc "a/b" "$(printf 'a%.0s' $(seq 65))"; do
	admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"machine_id\":\"$id\"}"
	expect 422 "import machine_id '$id' refused" '.detail | startswith("machine_id:")'
done
check "refused imports wrote nothing" test "$(counts)" = "$before"
admin GET /api/v1/machines/..
case $STATUS in 404|400) pass "'..' as a path id: $STATUS" ;; *) fail "'..' as a path id" ;; esac

done_testing
