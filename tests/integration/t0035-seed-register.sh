#!/bin/sh
# The seed's own register example (issue 19, hole 16a): ek_cert_pem,
# hw_uuid, hw_serial and no ek_fingerprint — the fingerprint is computed
# from the certificate; a fingerprint that is sent must still match.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek seed rsa
api POST /api/v1/register "{\"ek_cert_pem\":\"$EK_B64\",\"hw_uuid\":\"4c4c4544-0042-3510-8052-b4c04f333233\",\"hw_serial\":\"SVC1284AB\"}"
expect 200 "the seed's register body (no ek_fingerprint) registers" \
	".status == \"pending_approval\" and .ek_fingerprint == \"$EK_FP\""
MID=$(jget .machine_id)
admin GET "/api/v1/machines/$MID"
expect 200 "the computed canonical fingerprint and the hardware are stored" \
	".ek_fingerprint == \"$EK_FP\" and .hw_serial == \"SVC1284AB\""
make_ek pem ec
api POST /api/v1/register "{\"ek_cert_pem\":\"$EK_B64\"}"
expect 200 "an ECC certificate without a fingerprint registers" ".ek_fingerprint == \"$EK_FP\""
api POST /api/v1/attest "{\"ek_cert_pem\":\"$EK_B64\"}"
expect 200 "attest without ek_fingerprint finds the same machine" '.status == "pending_approval"'
check "one machine per EK" test "$(sql 'SELECT COUNT(*) FROM machines')" = 2
api POST /api/v1/register "{\"ek_cert_pem\":\"$EK_B64\",\"ek_fingerprint\":\"$(printf '0%.0s' $(seq 96))\"}"
expect 422 "a fingerprint that is sent must match" '.detail | startswith("ek_fingerprint: EK fingerprint mismatch")'
api POST /api/v1/register "{\"ek_cert_pem\":\"$EK_B64\",\"ek_fingerprint\":\"xyz\"}"
expect 422 "a malformed fingerprint is still refused" '.detail | startswith("ek_fingerprint: must be")'
done_testing
