#!/bin/sh
# EK certificate chains to the TPM manufacturer roots (ITL_TPM_VERIFY_CA),
# with real EK certificates of several vendors.
. "$SRCDIR/tests/lib/test-lib.sh"

CA=$SRCDIR/tests/data/tpm-ca
EKS=$SRCDIR/tests/fuzz/corpus/ek
real_ek() { # real_ek FILE [pem|der]: sets EK_B64 and EK_FP from a vendor certificate
	EK_B64=$(base64 -w0 "$EKS/$1")
	if [ "${2:-pem}" = der ]; then
		EK_FP=$(head -c "${3:-100000}" "$EKS/$1" | openssl x509 -inform DER -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
	else
		EK_FP=$(openssl x509 -in "$EKS/$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
	fi
}

start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_CA_BUNDLE_DIR="$CA"
check "log line: trust store loaded" grep -q "Loaded 7 TPM manufacturer root(s) and 10 intermediate(s) from $CA" "$DATA/attestd.log"
for spec in "ek-google-vtpm-eccp256.pem pem GOOG vTPM" "ek-intel-ptt-spt-rsa2048.pem pem INTC SPT" \
	"ek-stm-st33htphahb4-eccp256.der der STM ST33HTPHAHB4" "ek-nuvoton-npct75x-rsa2048-nonder.der der NTC NPCT75x" \
	"ek-stm-st33htphahb4-rsa2048-ffpadded.der der STM ST33HTPHAHB4 1169"; do
	set -- $spec
	real_ek "$1" "$2" "${5:-100000}"
	api POST /api/v1/register "$(node_body)"
	expect 200 "$1 registers" '.status == "pending_approval"'
	admin GET "/api/v1/machines/$(jget .machine_id)"
	expect 200 "$1: chain verified, manufacturer $3, model $4" \
		".ek_verified == true and .ek_chain_error == null and .ek_manufacturer == \"$3\" and .ek_model == \"$4\""
done

# a certificate that chains nowhere: recorded, not refused (non-strict)
make_ek self rsa
api POST /api/v1/register "$(node_body)"
expect 200 "non-strict: an unverifiable EK still registers"
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "... with the verdict recorded" '.ek_verified == false and (.ek_chain_error | test("self-signed"))'
check "non-strict failure is logged" grep -q "EK certificate chain does not verify (ITL_TPM_VERIFY_CA, non-strict)" "$DATA/attestd.log"
api POST /api/v1/register "$(node_body ',"ek_chain_pem":"not a certificate"')"
expect 422 "malformed ek_chain_pem" '.detail == "ek_chain_pem: expected one or more PEM certificates"'
stop_attestd

# strict: refused before anything is written; intermediates may come with the request
ROOTS=$TMP/roots; mkdir -p "$ROOTS"
cp "$CA/globalsign-tpm-ecc-root-ca.der" "$CA/stm-tpm-ecc-root-ca-01.pem" "$ROOTS/"
start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_VERIFY_CA_STRICT=true ITL_TPM_CA_BUNDLE_DIR="$ROOTS"
make_ek self2 rsa
api POST /api/v1/register "$(node_body)"
expect 422 "strict: an EK that does not chain is refused" '.detail | test("EK certificate chain does not verify")'
api POST /api/v1/attest "$(node_body)"
expect 422 "strict: attest of an unknown unverifiable EK is refused too"
check "strict refusals wrote nothing" test "$(sql 'SELECT COUNT(*) FROM machines'):$(sql 'SELECT COUNT(*) FROM audit_log')" = "0:0"
real_ek ek-stm-st33htphahb4-eccp256.der der
api POST /api/v1/register "$(node_body)"
expect 422 "strict: the intermediate is missing from the bundle" '.detail | test("unable to get local issuer certificate")'
INTER=$(jq -Rs . < "$CA/stm-tpm-ecc-intermediate-ca-01.pem")
api POST /api/v1/register "$(node_body ",\"ek_chain_pem\":$INTER")"
expect 200 "strict: intermediate supplied in ek_chain_pem completes the chain"
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "... and the machine records the verified chain" '.ek_verified == true and .ek_manufacturer == "STM"'
stop_attestd

start_attestd ITL_TPM_VERIFY_CA=false
real_ek ek-google-vtpm-eccp256.pem
api POST /api/v1/register "$(node_body)"
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "verification off: verdict null, TPM identity still shown" '.ek_verified == null and .ek_manufacturer == "GOOG"'
done_testing
