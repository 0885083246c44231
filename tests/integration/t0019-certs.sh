#!/bin/sh
# Machine certificates with a real software TPM (swtpm + tpm2-tools):
# CSR enrollment proven by a quote of the bound AK, the certificate
# checked by openssl, bad requests refused with nothing written,
# revocation seen by `openssl verify -crl_check` and `openssl ocsp`
# (operator revoke, hold while locked, machine revoke), and CA rotation.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_createak openssl; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done

tpm_manufacture A
tpm_manufacture B
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
CADIR="$TMP/ca"
run_attestd() {
	start_attestd ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_SPIFFE_TRUST_DOMAIN=fleet.example \
		ITL_ENROLLMENT_CERT_HOURS=worker-infra=8 "$@"
	DB="$TMP/shared.db"
}
run_attestd
b64() { base64 -w0 "$1"; }
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n'); }
SEL=sha256:0,1,2,3,7

# onboard HOSTNAME ROLE: register, approve, bind an ECC AK "ak", attest with a quote; sets MID
onboard() {
	tpm_ek ecc
	api POST /api/v1/register "$(node_body)"
	MID=$(jget .machine_id)
	admin POST "/api/v1/machines/$MID/approve" "{\"role\":\"$2\",\"hostname\":\"$1\"}" >/dev/null
	tpm_ak ecc ak
	api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
	ACT=$(jget .activation_id)
	jget .credential_blob | base64 -d > "$TW/cred.blob"
	tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
	api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
	challenge
	tpm_quote ak "$NHEX" "$SEL"
	api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "$TW/quote.msg")\",\"pcr_signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON")"
}

# enroll_body CSR-FILE: a fresh challenge quoted by the current TPM's AK
enroll_body() {
	challenge
	tpm_quote ak "$NHEX" "$SEL"
	jq -nc --rawfile csr "$1" --arg n "$NID" --arg q "$(b64 "$TW/quote.msg")" --arg s "$(b64 "$TW/quote.sig")" \
		--argjson p "$PCR_JSON" '{csr_pem: $csr, nonce_id: $n, pcr_quote: $q, pcr_signature: $s, pcr_values: $p}'
}
ov() { openssl verify "$@" >/dev/null 2>&1; }
ncerts() { sql "SELECT COUNT(*) FROM issued_certs"; }
newcsr() { # newcsr NAME KEYSPEC...
	n=$1; shift
	openssl req -new "$@" -nodes -keyout "$TMP/$n.key" -out "$TMP/$n.csr" \
		-subj "/C=XX/O=Attacker/CN=someone-else" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "subjectAltName=DNS:evil.example" -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1
}

say "--- enrollment"
tpm_use A
onboard node-a worker-app
expect 200 "machine A attested with a quote" '.status == "attested" and .quote_verified == true'
MID_A=$MID; FP_A=$EK_FP
newcsr m1 -newkey ec -pkeyopt ec_paramgen_curve:P-384
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr")"
expect 200 "CSR + nonce + quote by the bound AK: certificate issued" \
	".machine_id == \"$MID_A\" and .role == \"worker-app\" and .key_type == \"ecdsa-p384\" and .tpm_resident == false and .valid_days == 30"
jget .certificate_pem > "$TMP/m1.crt"
jget .enrollment_ca_pem > "$TMP/ca.pem"
S1=$(jget .serial)
X=$(openssl x509 -in "$TMP/m1.crt" -noout -text)
has() { printf '%s' "$X" | grep -q -- "$1"; }
check "openssl verify: the certificate chains to the Enrollment CA" ov -CAfile "$TMP/ca.pem" "$TMP/m1.crt"
check "subject is decided by the service (CN = machine id, OU = role)" has "Subject: C = NL, O = ITL Usions, OU = worker-app, CN = $MID_A"
check "SAN carries the EK fingerprint" has "URI:urn:itl:ek:$FP_A"
check "SAN carries the SPIFFE ID" has "URI:spiffe://fleet.example/nodes/$(echo "$FP_A" | cut -c1-16)"
check "the CSR's DNS name is not copied" sh -c "! printf '%s' \"\$1\" | grep -q evil.example" _ "$X"
check "EKU is clientAuth only (the CSR asked for serverAuth)" sh -c "printf '%s' \"\$1\" | grep -A1 'Extended Key Usage' | grep -qx ' *TLS Web Client Authentication'" _ "$X"
check "CA:FALSE although the CSR asked for CA:TRUE" sh -c "printf '%s' \"\$1\" | grep -A1 'Basic Constraints: critical' | grep -q 'CA:FALSE'" _ "$X"
check "CRL distribution point from ITL_SERVICE_URL" has "URI:http://attest.test/api/v1/ca/crl"
check "OCSP responder from ITL_SERVICE_URL" has "OCSP - URI:http://attest.test/api/v1/ca/ocsp"
check "the key is the CSR's P-384 key" sh -c "[ \"\$(openssl x509 -in '$TMP/m1.crt' -pubkey -noout)\" = \"\$(openssl pkey -in '$TMP/m1.key' -pubout)\" ]"
check "no TPM-key policy on a software key" sh -c "! printf '%s' \"\$1\" | grep -q 'Certificate Policies'" _ "$X"
days=$(( ($(date -d "$(openssl x509 -in "$TMP/m1.crt" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
check "validity ITL_ENROLLMENT_CERT_DAYS (30)" test "$days" -ge 29 -a "$days" -le 30
check "log line as in the Log Reference" grep -q "Enrollment cert issued: machine_id=$MID_A role=worker-app serial=$S1 valid_days=30" "$DATA/attestd.log"
check "issued-certificate record" test "$(sql "SELECT kind || ' ' || key_type FROM issued_certs WHERE serial = '$S1'")" = "csr ecdsa-p384"
check "audited (cert_issued)" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'cert_issued' AND machine_id = '$MID_A'")" = 1
check "node.cert_issued in the outbox" test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE event = 'node.cert_issued' AND payload LIKE '%$S1%'")" = 1
admin GET "/api/v1/machines/$MID_A/certificates"
expect 200 "the machine's certificates" ".[0].serial == \"$S1\" and .[0].status == \"valid\" and .[0].kind == \"csr\""
admin GET "/api/v1/certificates/$S1"
expect 200 "one certificate with its PEM" ".machine_id == \"$MID_A\" and (.certificate_pem | startswith(\"-----BEGIN CERTIFICATE\"))"
api GET "/api/v1/machines/$MID_A/certificates"
expect 401 "certificate listings need an operator"

say "--- enrollment refused, nothing written"
before="$(ncerts):$(counts)"
newcsr p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/p256.csr")"
expect 422 "a software P-256 key" '.detail | test("key type ecdsa-p256 is not accepted")'
newcsr r2048 -newkey rsa:2048
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/r2048.csr")"
expect 422 "an RSA-2048 key" '.detail | test("rsa-2048 is not accepted")'
newcsr r3072 -newkey rsa:3072
sed '2s/^./A/' "$TMP/r3072.csr" > "$TMP/bad.csr"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/bad.csr")"
expect 422 "a malformed CSR" '.detail | startswith("csr_pem:")'
openssl req -in "$TMP/r3072.csr" -outform der > "$TMP/r.der"
# flip one byte of the signature (the last byte of the DER)
sz=$(wc -c < "$TMP/r.der")
{ head -c $((sz - 1)) "$TMP/r.der"; printf '\001'; } | openssl req -inform der -outform pem -out "$TMP/badsig.csr" 2>/dev/null ||
	{ head -c $((sz - 1)) "$TMP/r.der"; printf '\001'; } > "$TMP/badsig.der"
[ -s "$TMP/badsig.csr" ] || { printf -- '-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n' "$(base64 -w64 "$TMP/badsig.der")" > "$TMP/badsig.csr"; }
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/badsig.csr")"
expect 422 "a CSR whose signature does not verify" '.detail | test("does not verify")'
{ cat "$TMP/m1.csr"; cat "$TMP/m1.csr"; } > "$TMP/two.csr"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/two.csr")"
expect 422 "two CSRs in one" '.detail | test("trailing data")'
head -c 20000 /dev/zero | tr '\0' A > "$TMP/huge.csr"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/huge.csr")"
expect 422 "a huge CSR" '.detail | startswith("csr_pem")'
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr" | jq -c 'del(.pcr_quote)')"
expect 422 "no quote" '.detail | startswith("pcr_quote")'
BODY1=$(enroll_body "$TMP/m1.csr")
api POST "/api/v1/machines/$MID_A/enroll" "$BODY1"
expect 200 "a second certificate for the same machine"
S2=$(jget .serial); jget .certificate_pem > "$TMP/m2.crt"
before="$(ncerts):$(counts)"
api POST "/api/v1/machines/$MID_A/enroll" "$BODY1"
expect 409 "a replayed nonce" '.detail | test("replay detected")'
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr" | jq -c --arg n "$(printf '%032d' 0)" '.nonce_id = $n')"
expect 422 "an unknown nonce" '.detail | test("Unknown nonce_id")'
# a quote by another TPM's AK over a valid nonce
tpm_use B
tpm_ek ecc
tpm_ak ecc ak
BODYB=$(enroll_body "$TMP/m1.csr")
tpm_use A
api POST "/api/v1/machines/$MID_A/enroll" "$BODYB"
expect 422 "a quote by another TPM's AK" '.detail | test("does not verify with the machine.s attestation key")'
api POST "/api/v1/machines/00000000-0000-4000-8000-000000000000/enroll" "$(enroll_body "$TMP/m1.csr")"
expect 404 "an unknown machine"
check "nothing written by the refused requests" test "$(ncerts):$(counts)" = "$before"

say "--- revocation: CRL and OCSP"
api GET /api/v1/ca/crl
expect 200 "CRL served (DER)"
check "CRL is DER (application/pkix-crl)" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/pkix-crl'" _ "$HEADERS"
api GET "/api/v1/ca/crl?format=pem"
printf '%s\n' "$BODY" > "$TMP/crl0.pem"
check "the CRL is signed by the CA" sh -c "openssl crl -in '$TMP/crl0.pem' -CAfile '$TMP/ca.pem' -noout 2>&1 | grep -q 'verify OK'"
cat "$TMP/ca.pem" "$TMP/crl0.pem" > "$TMP/chain0.pem"
check "openssl verify -crl_check: valid before the revoke" ov -crl_check -CAfile "$TMP/chain0.pem" "$TMP/m1.crt"
ocsp() { openssl ocsp -issuer "$TMP/ca.pem" -cert "$1" -url "$BASE/api/v1/ca/ocsp" -CAfile "$TMP/ca.pem" 2>&1; }
check "openssl ocsp: good" sh -c "ocsp_out=\$(openssl ocsp -issuer '$TMP/ca.pem' -cert '$TMP/m1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/ca.pem' 2>&1); printf '%s' \"\$ocsp_out\" | grep -q 'Response verify OK' && printf '%s' \"\$ocsp_out\" | grep -q ': good'"
admin POST "/api/v1/certificates/$S1/revoke" '{"reason":"bogus"}'
expect 422 "an unknown revocation reason" '.detail | startswith("reason:")'
api POST "/api/v1/certificates/$S1/revoke" '{"reason":"keyCompromise"}'
expect 401 "revoking needs an operator"
admin POST "/api/v1/certificates/ABCDEF/revoke" '{}'
expect 404 "revoking an unknown serial"
admin POST "/api/v1/certificates/$S1/revoke" '{"reason":"keyCompromise","detail":"laptop stolen"}'
expect 200 "operator revokes one certificate" '.status == "revoked" and .revocation_reason == "keyCompromise"'
admin POST "/api/v1/certificates/$S1/revoke" '{"reason":"keyCompromise"}'
expect 409 "revoking twice"
api GET "/api/v1/ca/crl?format=pem"
printf '%s\n' "$BODY" > "$TMP/crl1.pem"
cat "$TMP/ca.pem" "$TMP/crl1.pem" > "$TMP/chain1.pem"
check "openssl verify -crl_check: revoked after the revoke" sh -c "openssl verify -crl_check -CAfile '$TMP/chain1.pem' '$TMP/m1.crt' 2>&1 | grep -q 'certificate revoked'"
check "... the other certificate still verifies" ov -crl_check -CAfile "$TMP/chain1.pem" "$TMP/m2.crt"
n0=$(openssl crl -in "$TMP/crl0.pem" -noout -crlnumber | cut -d= -f2); n1=$(openssl crl -in "$TMP/crl1.pem" -noout -crlnumber | cut -d= -f2)
check "the CRL number went up" test "$((n1))" -gt "$((n0))"
check "the CRL states the reason" sh -c "openssl crl -in '$TMP/crl1.pem' -noout -text | grep -q 'Key Compromise'"
check "openssl ocsp: revoked" sh -c "openssl ocsp -issuer '$TMP/ca.pem' -cert '$TMP/m1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/ca.pem' 2>&1 | grep -q ': revoked'"
check "node.cert_revoked in the outbox" test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE event = 'node.cert_revoked' AND payload LIKE '%$S1%'")" = 1
openssl ocsp -issuer "$TMP/ca.pem" -cert "$TMP/m2.crt" -reqout "$TMP/ocsp.req" -no_nonce >/dev/null 2>&1
api GET "/api/v1/ca/ocsp/$(base64 -w0 "$TMP/ocsp.req" | sed 's/+/%2B/g; s,/,%2F,g; s/=/%3D/g')"
check "OCSP over GET (RFC 6960 A.1)" sh -c "[ '$STATUS' = 200 ] && openssl ocsp -respin '$TMP/resp.body' -issuer '$TMP/ca.pem' -cert '$TMP/m2.crt' -CAfile '$TMP/ca.pem' 2>&1 | grep -q ': good'"
curl -s -o "$TMP/ocsp.bad" -H 'Content-Type: application/ocsp-request' --data-binary 'garbage' "$BASE/api/v1/ca/ocsp"
check "a malformed OCSP request gets malformedRequest" sh -c "openssl ocsp -respin '$TMP/ocsp.bad' -resp_text -noverify 2>&1 | grep -q 'malformedrequest'"

say "--- lock (hold), unlock, revoke"
admin POST "/api/v1/machines/$MID_A/lock" '{"reason":"investigating"}'
expect 200 "machine locked"
check "openssl ocsp: on hold while locked" sh -c "openssl ocsp -issuer '$TMP/ca.pem' -cert '$TMP/m2.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/ca.pem' 2>&1 | grep -q 'Reason: certificateHold'"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr")"
expect 403 "a locked machine cannot enroll" '.detail | test("status=locked")'
admin POST "/api/v1/machines/$MID_A/unlock" '{}'
expect 200 "machine unlocked"
check "openssl ocsp: good again after unlock" sh -c "openssl ocsp -issuer '$TMP/ca.pem' -cert '$TMP/m2.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/ca.pem' 2>&1 | grep -q ': good'"
api GET "/api/v1/ca/crl?format=pem"
printf '%s\n' "$BODY" > "$TMP/crl2.pem"; cat "$TMP/ca.pem" "$TMP/crl2.pem" > "$TMP/chain2.pem"
check "openssl verify -crl_check: the hold is lifted" ov -crl_check -CAfile "$TMP/chain2.pem" "$TMP/m2.crt"

say "--- CA rotation"
stop_attestd
out=$(env ITL_DB_URL="$SHARED_DB_URL" ITL_ENROLLMENT_CA_DIR="$CADIR" "$ATTESTD" ca rotate 2>&1); rc=$?
check "attestd ca rotate" sh -c "[ $rc = 0 ] && printf '%s' \"\$1\" | grep -q 'Enrollment CA rotated'" _ "$out"
check "the rotation is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'ca_rotate'")" = 1
run_attestd
api GET /api/v1/ca
expect 200 "trust bundle served"
printf '%s\n' "$BODY" > "$TMP/bundle.pem"
check "the bundle holds the new and the previous CA" test "$(grep -c 'BEGIN CERTIFICATE' "$TMP/bundle.pem")" = 2
check "a certificate of the previous CA still verifies through the bundle" ov -CAfile "$TMP/bundle.pem" "$TMP/m2.crt"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr")"
expect 200 "enrollment after the rotation"
jget .certificate_pem > "$TMP/m3.crt"
check "new certificates come from the new CA" sh -c "! openssl verify -CAfile '$TMP/ca.pem' '$TMP/m3.crt' >/dev/null 2>&1 && openssl verify -CAfile '$TMP/bundle.pem' '$TMP/m3.crt' >/dev/null"
OLDCA=$(openssl x509 -in "$TMP/ca.pem" -noout -serial | cut -d= -f2)
api GET "/api/v1/ca/crl?format=pem&ca=$OLDCA"
printf '%s\n' "$BODY" > "$TMP/crl-old.pem"
cat "$TMP/bundle.pem" "$TMP/crl-old.pem" > "$TMP/chain-old.pem"
check "the previous CA's CRL still lists its revoked certificate" sh -c "openssl verify -crl_check -CAfile '$TMP/chain-old.pem' '$TMP/m1.crt' 2>&1 | grep -q 'certificate revoked'"
check "openssl ocsp for a certificate of the previous CA" sh -c "openssl ocsp -issuer '$TMP/ca.pem' -cert '$TMP/m2.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/bundle.pem' 2>&1 | grep -q ': good'"
admin POST "/api/v1/machines/$MID_A/revoke" '{"reason":"decommissioned"}'
expect 200 "machine revoked"
check "revoking the machine revokes all its certificates" \
	test "$(sql "SELECT COUNT(*) FROM issued_certs WHERE machine_id = '$MID_A' AND revoked_at IS NULL")" = 0
check "... with the reason cessationOfOperation" \
	test "$(sql "SELECT COUNT(*) FROM issued_certs WHERE machine_id = '$MID_A' AND revocation_reason = 'cessationOfOperation'")" = 2
check "openssl ocsp: the newest certificate is revoked" sh -c "openssl ocsp -issuer '$TMP/bundle.pem' -cert '$TMP/m3.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/bundle.pem' 2>&1 | grep -q ': revoked'"
api POST "/api/v1/machines/$MID_A/enroll" "$(enroll_body "$TMP/m1.csr")"
expect 403 "a revoked machine cannot enroll"

say "--- per-role lifetime"
tpm_use B
onboard node-b worker-infra
expect 200 "machine B attested"
newcsr b1 -newkey rsa:3072
api POST "/api/v1/machines/$MID/enroll" "$(enroll_body "$TMP/b1.csr")"
expect 200 "RSA-3072 CSR accepted; ITL_ENROLLMENT_CERT_HOURS=worker-infra=8" '.valid_hours == 8 and .key_type == "rsa-3072"'
check "log line with fractional days" grep -q "Enrollment cert issued: machine_id=$MID role=worker-infra serial=$(jget .serial) valid_days=0.33" "$DATA/attestd.log"
stop_attestd
done_testing
