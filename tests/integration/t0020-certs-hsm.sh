#!/bin/sh
# The Enrollment CA key in a PKCS#11 token (SoftHSM2 through libp11):
# the CA certificate is made with the token's key, certificates, CRLs and
# OCSP answers are signed by it, the PIN stays out of logs, a wrong PIN or
# object stops start-up, and `attestd ca rotate` refuses an HSM key.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"
. "$SRCDIR/tests/lib/certs.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
for t in swtpm softhsm2-util openssl; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done
[ -f "$MODULE" ] || { echo "Bail out! $MODULE missing (softhsm2)"; exit 1; }

# a token with an imported P-384 key
mkdir -p "$TMP/hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP/hsm/tokens" > "$TMP/hsm/softhsm2.conf"
SOFTHSM2_CONF=$TMP/hsm/softhsm2.conf; export SOFTHSM2_CONF
PIN=471142
softhsm2-util --init-token --free --label itl-ca --pin $PIN --so-pin 99999999 >/dev/null 2>&1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$TMP/hsm/ca.key" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$TMP/hsm/ca.key" -out "$TMP/hsm/ca.p8"
softhsm2-util --import "$TMP/hsm/ca.p8" --token itl-ca --label enrollment-ca --id 01 --pin $PIN >/dev/null 2>&1
check "SoftHSM2 token with the CA key" sh -c "softhsm2-util --show-slots 2>/dev/null | grep -q itl-ca"
openssl pkey -in "$TMP/hsm/ca.key" -pubout > "$TMP/hsm/ca.pub"
rm "$TMP/hsm/ca.key" "$TMP/hsm/ca.p8"	# from here on the key exists only in the token

URI="pkcs11:token=itl-ca;object=enrollment-ca?pin-value=$PIN"
CADIR=$TMP/ca
start_attestd ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_ENROLLMENT_CA_KEY="$URI" ITL_PKCS11_MODULE="$MODULE"
check "log: the CA key is held by a PKCS#11 token" grep -q "Enrollment CA key held by a PKCS#11 token" "$DATA/attestd.log"
check "log: CA generated" grep -q "Enrollment CA generated (serial=" "$DATA/attestd.log"
check "the PIN is not logged" sh -c "! grep -q $PIN '$DATA/attestd.log'"
check "no key file in the CA directory" test ! -e "$CADIR/enrollment-ca.key"
check "the CA certificate carries the token's key" sh -c "openssl x509 -in '$CADIR/enrollment-ca.crt' -pubkey -noout | cmp -s - '$TMP/hsm/ca.pub'"
check "the CA certificate's self-signature (made by the token) verifies" ov -CAfile "$CADIR/enrollment-ca.crt" "$CADIR/enrollment-ca.crt"
SERIAL=$(openssl x509 -in "$CADIR/enrollment-ca.crt" -noout -serial | cut -d= -f2)

tpm_manufacture A
tpm_use A
onboard node-h worker-app
expect 200 "machine attested"
newcsr h1 -newkey ec -pkeyopt ec_paramgen_curve:P-384
api POST "/api/v1/machines/$MID/enroll" "$(enroll_body "$TMP/h1.csr")"
expect 200 "enrollment signed by the token's key"
jget .certificate_pem > "$TMP/h1.crt"
S1=$(jget .serial)
check "openssl verify: the certificate chains to the HSM-held CA" ov -CAfile "$CADIR/enrollment-ca.crt" "$TMP/h1.crt"
admin POST "/api/v1/certificates/$S1/revoke" '{"reason":"keyCompromise"}'
expect 200 "revoked"
api GET "/api/v1/ca/crl?format=pem"
printf '%s\n' "$BODY" > "$TMP/crl.pem"
cat "$CADIR/enrollment-ca.crt" "$TMP/crl.pem" > "$TMP/chain.pem"
check "the CRL (signed in the token) says revoked" sh -c "openssl verify -crl_check -CAfile '$TMP/chain.pem' '$TMP/h1.crt' 2>&1 | grep -q 'certificate revoked'"
check "openssl ocsp: the token-signed answer verifies and says revoked" sh -c "out=\$(openssl ocsp -issuer '$CADIR/enrollment-ca.crt' -cert '$TMP/h1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$CADIR/enrollment-ca.crt' 2>&1); printf '%s' \"\$out\" | grep -q 'Response verify OK' && printf '%s' \"\$out\" | grep -q ': revoked'"
stop_attestd

out=$(env ITL_DB_URL="sqlite:///$TMP/r.db" ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_ENROLLMENT_CA_KEY="$URI" "$ATTESTD" ca rotate 2>&1); rc=$?
check "attestd ca rotate refuses a PKCS#11 key" sh -c "[ $rc = 2 ] && printf '%s' \"\$1\" | grep -q 'PKCS#11'" _ "$out"

start_attestd ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_ENROLLMENT_CA_KEY="$URI" ITL_PKCS11_MODULE="$MODULE"
check "restart: the CA is loaded, not regenerated" grep -q "Enrollment CA loaded from $CADIR (serial=$SERIAL)" "$DATA/attestd.log"
stop_attestd

nostart() { # nostart DESC PATTERN ENV...: attestd must refuse to start, saying PATTERN, never the PIN
	desc=$1; pat=$2; shift 2
	out=$(env ITL_DB_URL="sqlite:///$TMP/n.db" ITL_CONFIG_CACHE_DIR="$TMP" ITL_ENROLLMENT_CA_DIR="$CADIR" "$@" \
		"$ATTESTD" --listen 127.0.0.1:0 2>&1); rc=$?
	check "$desc" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q \"\$2\" && ! printf '%s' \"\$1\" | grep -q 'pin-value\|$PIN\|000000'" _ "$out" "$pat"
}
nostart "a wrong PIN stops start-up" "login to token 'itl-ca' failed" \
	ITL_ENROLLMENT_CA_KEY="pkcs11:token=itl-ca;object=enrollment-ca?pin-value=000000" ITL_PKCS11_MODULE="$MODULE"
nostart "an unknown object stops start-up" "no private key 'nosuch'" \
	ITL_ENROLLMENT_CA_KEY="pkcs11:token=itl-ca;object=nosuch?pin-value=$PIN" ITL_PKCS11_MODULE="$MODULE"
nostart "an unknown token stops start-up" "no PKCS#11 token labelled 'other'" \
	ITL_ENROLLMENT_CA_KEY="pkcs11:token=other;object=enrollment-ca?pin-value=$PIN" ITL_PKCS11_MODULE="$MODULE"
nostart "a missing module stops start-up" "cannot load the PKCS#11 module" \
	ITL_ENROLLMENT_CA_KEY="pkcs11:token=itl-ca;object=enrollment-ca?pin-value=$PIN" ITL_PKCS11_MODULE=/nonexistent.so
nostart "a key that is not a pkcs11: URI" "expected a pkcs11: URI" ITL_ENROLLMENT_CA_KEY="/etc/ca.key"
echo "$PIN" > "$TMP/pin"
start_attestd ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_ENROLLMENT_CA_KEY="pkcs11:token=itl-ca;object=enrollment-ca?pin-source=file:$TMP/pin&module-path=$MODULE"
check "pin-source=file: and module-path= in the URI" grep -q "Enrollment CA loaded from $CADIR (serial=$SERIAL)" "$DATA/attestd.log"
stop_attestd
done_testing
