#!/bin/sh
# Enrollment CA: generated on first start, loaded afterwards, checked by openssl.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
CA="$DATA/ca"
check "log line: Enrollment CA generated" grep -q "INFO attestd.pki — Enrollment CA generated (serial=" "$DATA/attestd.log"
check "CA key file mode 0600" test "$(stat -c %a "$CA/enrollment-ca.key")" = 600
out=$(openssl x509 -in "$CA/enrollment-ca.crt" -noout -text)
check "CA is ECDSA P-384 by default" sh -c "printf '%s' \"\$1\" | grep -q 'ASN1 OID: secp384r1'" _ "$out"
check "CA subject" sh -c "printf '%s' \"\$1\" | grep -q 'Subject: C = NL, O = ITL Usions, CN = ITL Machine Enrollment CA'" _ "$out"
check "CA basic constraints: critical CA:TRUE, pathlen 0" sh -c "printf '%s' \"\$1\" | grep -A1 'Basic Constraints: critical' | grep -q 'CA:TRUE, pathlen:0'" _ "$out"
check "CA key usage" sh -c "printf '%s' \"\$1\" | grep -A1 'Key Usage: critical' | grep -q 'Certificate Sign, CRL Sign'" _ "$out"
check "CA self-signature verifies" sh -c "openssl verify -CAfile \"$CA/enrollment-ca.crt\" \"$CA/enrollment-ca.crt\" >/dev/null"
check "CA key matches the certificate" sh -c "[ \"\$(openssl pkey -in \"$CA/enrollment-ca.key\" -pubout)\" = \"\$(openssl x509 -in \"$CA/enrollment-ca.crt\" -pubkey -noout)\" ]"
serial=$(openssl x509 -in "$CA/enrollment-ca.crt" -noout -serial | cut -d= -f2)
stop_attestd

# restart with the same directory: loaded, not regenerated
D1=$DATA
start_attestd ITL_ENROLLMENT_CA_DIR="$D1/ca"
check "log line: Enrollment CA loaded" grep -q "Enrollment CA loaded from $D1/ca (serial=$serial)" "$DATA/attestd.log"
stop_attestd

# a half-present CA is refused rather than silently replaced
rm "$D1/ca/enrollment-ca.crt"
out=$(ITL_DB_URL="sqlite:///$TMP/x.db" ITL_ENROLLMENT_CA_DIR="$D1/ca" "$ATTESTD" --listen 127.0.0.1:0 2>&1); rc=$?
check "key without certificate stops start-up" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'restore both or remove both'" _ "$out"
check "the existing key was not overwritten" test -s "$D1/ca/enrollment-ca.key"

start_attestd ITL_ENROLLMENT_CA_ALGORITHM=rsa-4096
check "rsa-4096 CA on request" sh -c "openssl x509 -in \"$DATA/ca/enrollment-ca.crt\" -noout -text | grep -q 'Public-Key: (4096 bit)'"
check "rsa-4096 CA signs with SHA-256" sh -c "openssl x509 -in \"$DATA/ca/enrollment-ca.crt\" -noout -text | grep -q 'sha256WithRSAEncryption'"
done_testing
