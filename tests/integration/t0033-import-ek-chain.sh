#!/bin/sh
# The EK chain checks of /register apply to /machines/import too (issue 19,
# hole 8): ITL_TPM_VERIFY_CA_STRICT refuses a self-signed EK in a receipt,
# and the non-strict verdict is recorded on the imported machine.
. "$SRCDIR/tests/lib/test-lib.sh"

CA=$SRCDIR/tests/data/tpm-ca
EKS=$SRCDIR/tests/fuzz/corpus/ek
ROOTS=$TMP/roots; mkdir -p "$ROOTS"
cp "$CA/globalsign-tpm-ecc-root-ca.der" "$CA/stm-tpm-ecc-root-ca-01.pem" "$CA/stm-tpm-ecc-intermediate-ca-01.pem" "$ROOTS/"
receipt() { printf '{"ek_fingerprint":"%s","ek_cert_pem":"%s"%s}' "$EK_FP" "$EK_B64" "${1:-}"; }

start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_VERIFY_CA_STRICT=true ITL_TPM_CA_BUNDLE_DIR="$ROOTS"
make_ek self rsa
admin POST /api/v1/machines/import "$(receipt)"
expect 422 "strict: import of a self-signed EK is refused" '.detail | test("EK certificate chain does not verify")'
PUB_B64=$(openssl x509 -in "$TMP/self.pem" -pubkey -noout | base64 -w0)
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\"}"
expect 422 "strict: import of a bare public key is refused"
check "strict refusals wrote nothing" test "$(counts)" = "0:0"
EK_B64=$(base64 -w0 "$EKS/ek-stm-st33htphahb4-eccp256.der")
EK_FP=$(openssl x509 -inform DER -in "$EKS/ek-stm-st33htphahb4-eccp256.der" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
admin POST /api/v1/machines/import "$(receipt)"
expect 200 "strict: a vendor EK that chains is imported" '.status == "registered"'
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "... with the verified chain recorded" '.ek_verified == true and .ek_manufacturer == "STM"'
stop_attestd

start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_CA_BUNDLE_DIR="$ROOTS"
make_ek self2 rsa
admin POST /api/v1/machines/import "$(receipt)"
expect 200 "non-strict: an unverifiable EK is imported"
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "... with the verdict recorded" '.ek_verified == false and (.ek_chain_error | test("self-signed"))'
done_testing
