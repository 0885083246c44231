#!/bin/sh
# The strict profile (issue 19): ITL_STRICT=true turns on quote-required
# attestation, encrypted config delivery and strict EK chains, and refuses
# ek_source "pub"; --check-config and /readyz warn when an instance serves
# configs to machines that proved nothing but an EK certificate.
. "$SRCDIR/tests/lib/test-lib.sh"

CA=$SRCDIR/tests/data/tpm-ca
EKS=$SRCDIR/tests/fuzz/corpus/ek
ROOTS=$TMP/roots; mkdir -p "$ROOTS"
cp "$CA/globalsign-tpm-ecc-root-ca.der" "$CA/stm-tpm-ecc-root-ca-01.pem" "$CA/stm-tpm-ecc-intermediate-ca-01.pem" "$ROOTS/"

OUT=$(env -i PATH="$PATH" "$ATTESTD" --check-config 2>&1); rc=$?
check "--check-config (defaults): exit 0" test "$rc" = 0
check "... warns that configs go to machines that proved nothing but an EK certificate" \
	sh -c "printf '%s' \"\$1\" | grep -q '^WARNING: configs are served to machines that proved nothing but an EK certificate'" _ "$OUT"
OUT=$(env -i PATH="$PATH" ITL_STRICT=true ITL_TPM_CA_BUNDLE_DIR="$ROOTS" "$ATTESTD" --check-config 2>&1); rc=$?
check "--check-config (strict): exit 0" test "$rc" = 0
check "... every part of the profile is on" sh -c "printf '%s' \"\$1\" | grep -q '^ITL_REQUIRE_QUOTE=true' && printf '%s' \"\$1\" | grep -q '^ITL_REQUIRE_ENCRYPTED_DELIVERY=true' && printf '%s' \"\$1\" | grep -q '^ITL_TPM_VERIFY_CA=true' && printf '%s' \"\$1\" | grep -q '^ITL_TPM_VERIFY_CA_STRICT=true'" _ "$OUT"
check "... and nothing is warned about" sh -c "! printf '%s' \"\$1\" | grep -q WARNING" _ "$OUT"
OUT=$(env -i PATH="$PATH" ITL_STRICT=true ITL_REQUIRE_ENCRYPTED_DELIVERY=false "$ATTESTD" --check-config 2>&1); rc=$?
check "a setting that contradicts the profile is an error, not overridden" \
	sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'ITL_STRICT: true contradicts ITL_REQUIRE_ENCRYPTED_DELIVERY=false'" _ "$OUT"

start_attestd
api GET /readyz
expect 200 "/readyz (defaults) lists the warnings" \
	'.status == "ready" and .strict == false and any(.warnings[]; test("proved nothing but an EK certificate"))'
stop_attestd

start_attestd ITL_STRICT=true ITL_TPM_CA_BUNDLE_DIR="$ROOTS"
api GET /readyz
expect 200 "/readyz (strict): no warnings" '.strict == true and .warnings == []'
make_ek self rsa
PUB_B64=$(openssl x509 -in "$TMP/self.pem" -pubkey -noout | base64 -w0)
api POST /api/v1/register "{\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\"}"
expect 422 "strict: ek_source pub is refused" '.detail | test("refused under ITL_STRICT")'
api POST /api/v1/attest "{\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\"}"
expect 422 "... on attest too"
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\"}"
expect 422 "... and on import"
admin POST /api/v1/register "$(node_body)"
expect 422 "strict: a self-signed EK certificate is refused" '.detail | test("does not verify")'
EK_B64=$(base64 -w0 "$EKS/ek-stm-st33htphahb4-eccp256.der")
EK_FP=$(openssl x509 -inform DER -in "$EKS/ek-stm-st33htphahb4-eccp256.der" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
admin POST /api/v1/register "$(node_body)"
expect 200 "a vendor EK that chains registers" '.status == "registered"'
api POST /api/v1/attest "$(node_body)"
expect 422 "strict: an EK certificate alone gets no config (a quote is required)" '.detail | test("ITL_REQUIRE_QUOTE is enabled")'
check "no config token exists" test "$(sql 'SELECT COUNT(*) FROM config_tokens')" = 0
done_testing
