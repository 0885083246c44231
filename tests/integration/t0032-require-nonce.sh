#!/bin/sh
# ITL_REQUIRE_NONCE means a verified quote over the nonce (issue 19,
# hole 2): a nonce alone proves nothing, so an EK-only attest with a
# fresh nonce (certificate or bare SPKI) gets no config token.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd ITL_REQUIRE_NONCE=true
make_ek a rsa
admin POST /api/v1/register "$(node_body)"
expect 200 "pre-approved registration" '.status == "registered"'
MID=$(jget .machine_id)
api GET /api/v1/attest/challenge
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$(jget .nonce_id)\"")"
expect 422 "a nonce without a quote is refused" '.detail | test("ITL_REQUIRE_NONCE is enabled — a nonce proves freshness only with a TPM quote")'
PUB_B64=$(openssl x509 -in "$TMP/a.pem" -pubkey -noout | base64 -w0)
api GET /api/v1/attest/challenge
api POST /api/v1/attest "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\",\"nonce_id\":\"$(jget .nonce_id)\"}"
expect 422 "a bare SPKI with a nonce is refused" '.detail | test("ITL_REQUIRE_NONCE")'
check "no config token was issued" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE machine_id = '$MID'")" = 0
admin GET "/api/v1/machines/$MID"
expect 200 "the machine is still registered, not attested" '.status == "registered"'
done_testing
