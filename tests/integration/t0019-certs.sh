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
tpm_manufacture C
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
CADIR="$TMP/ca"
run_attestd() {
	start_attestd ITL_ENROLLMENT_CA_DIR="$CADIR" ITL_SPIFFE_TRUST_DOMAIN=fleet.example \
		ITL_ENROLLMENT_CERT_HOURS=worker-infra=8 ITL_REQUIRE_TPM_KEY_ROLES=controlplane "$@"
	DB="$TMP/shared.db"
}
run_attestd
. "$SRCDIR/tests/lib/certs.sh"

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
SB=$(jget .serial); jget .certificate_pem > "$TMP/b1.crt"

say "--- a machine revokes its own certificate (CI runner shutting down)"
# self_revoke CERT KEY [sha256|sha384]: sign the server nonce (its base64 text) with KEY
self_revoke() {
	api GET /api/v1/attest/challenge; SNID=$(jget .nonce_id)
	sig=$(printf '%s' "$(jget .nonce)" | openssl dgst -"${3:-sha256}" -sign "$2" | base64 -w0)
	SRBODY=$(jq -nc --rawfile c "$1" --arg n "$SNID" --arg s "$sig" '{certificate_pem: $c, nonce_id: $n, signature: $s}')
	api POST /api/v1/certificates/self-revoke "$SRBODY"
}
self_revoke "$TMP/b1.crt" "$TMP/m1.key" sha384
expect 422 "a signature by another key" '.detail | startswith("signature:")'
openssl req -x509 -newkey rsa:3072 -nodes -keyout "$TMP/own.key" -out "$TMP/own.crt" -subj "/CN=$MID" -days 1 >/dev/null 2>&1
self_revoke "$TMP/own.crt" "$TMP/own.key"
expect 403 "a certificate this service did not issue" '.detail | test("not a certificate this service issued")'
check "nothing revoked so far" test "$(sql "SELECT COUNT(*) FROM issued_certs WHERE serial = '$SB' AND revoked_at IS NULL")" = 1
self_revoke "$TMP/b1.crt" "$TMP/b1.key"
expect 200 "proof of possession over a server nonce revokes it, no operator token" \
	".serial == \"$SB\" and .status == \"revoked\" and .revocation_reason == \"cessationOfOperation\""
check "audited as the machine" test "$(sql "SELECT operator_cn FROM audit_log WHERE action = 'cert_revoked' ORDER BY id DESC LIMIT 1")" = "machine:$MID"
api POST /api/v1/certificates/self-revoke "$SRBODY"
expect 409 "the nonce cannot be replayed" '.detail | test("replay")'
self_revoke "$TMP/b1.crt" "$TMP/b1.key"
expect 409 "revoking twice"
say "--- the operator CLI"
cli() { ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN "$ATTESTATION_CLI" "$@" >"$TMP/cli.out" 2>"$TMP/cli.err"; CRC=$?; }
cli cert list "$MID_A"
check "attestation cert list: a table of the machine's certificates" sh -c "[ $CRC = 0 ] && grep -q '^SERIAL' '$TMP/cli.out' && grep -q '$S1 .*revoked' '$TMP/cli.out'"
cli machine certs "$MID" --output json
check "attestation machine certs ID --output json" sh -c "[ $CRC = 0 ] && jq -e '.[0].serial == \"$SB\"' '$TMP/cli.out' >/dev/null"
cli cert get "$SB"
check "attestation cert get" sh -c "[ $CRC = 0 ] && grep -q 'revocation_reason *cessationOfOperation' '$TMP/cli.out'"
api POST "/api/v1/machines/$MID/enroll" "$(enroll_body "$TMP/b1.csr")"
SB2=$(jget .serial)
cli cert revoke "$SB2" --reason superseded --detail "rotated by the operator"
check "attestation cert revoke" sh -c "[ $CRC = 0 ] && grep -q 'revoked (superseded)' '$TMP/cli.out'"
cli cert revoke "$SB2"
check "attestation cert revoke twice: exit 6 (conflict)" test "$CRC" = 6
cli cert revoke "$SB2" --reason bogus
check "attestation cert revoke --reason bogus: exit 7 (rejected)" test "$CRC" = 7
cli cert get ABCDEF
check "attestation cert get of an unknown serial: exit 5" test "$CRC" = 5
cli cert
check "attestation cert without a command: usage (exit 2)" sh -c "[ $CRC = 2 ] && grep -q 'attestation cert COMMAND' '$TMP/cli.err'"
check "openssl ocsp: revoked by the machine" sh -c "openssl ocsp -issuer '$TMP/bundle.pem' -cert '$TMP/b1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$TMP/bundle.pem' 2>&1 | grep -q ': revoked'"
say "--- request-cert (reference compatibility: the CA makes the key), with the TPM proof"
rc_body() { # rc_body [extra jq filter]
	enroll_body "$TMP/b1.csr" | jq -c --arg fp "$EK_FP" "del(.csr_pem) | .ek_fingerprint = \$fp ${1:+| $1}"
}
tpm_use B; tpm_ek ecc
before="$(ncerts):$(counts)"
api POST "/api/v1/machines/$MID/request-cert" "$(rc_body 'del(.pcr_quote)')"
expect 422 "request-cert without a quote" '.detail | startswith("pcr_quote")'
api POST "/api/v1/machines/$MID/request-cert" "$(rc_body '.ek_fingerprint = ("0" * 96)')"
expect 403 "request-cert with another EK fingerprint" '.detail == "EK fingerprint does not match registered machine"'
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout > "$TMP/ecwrap.pub"
api POST "/api/v1/machines/$MID/request-cert" "$(enroll_body "$TMP/b1.csr" | jq -c --arg fp "$EK_FP" --rawfile w "$TMP/ecwrap.pub" 'del(.csr_pem) | .ek_fingerprint = $fp | .wrapping_key_pem = $w')"
expect 422 "a wrapping key that is not RSA" '.detail | test("Wrapping key encryption failed")'
api POST "/api/v1/machines/00000000-0000-4000-8000-000000000000/request-cert" "$(rc_body)"
expect 404 "request-cert for an unknown machine"
check "nothing written by refused request-cert calls" test "$(ncerts):$(counts)" = "$before"
api POST "/api/v1/machines/$MID/request-cert" "$(rc_body)"
expect 200 "request-cert: certificate and a fresh P-384 key" '(.enrollment_key_pem | startswith("-----BEGIN PRIVATE KEY")) and .enrollment_key_encrypted_b64 == ""'
jget .enrollment_cert_pem > "$TMP/rc.crt"; jget .enrollment_key_pem > "$TMP/rc.key"
check "the key is the certificate's" sh -c "[ \"\$(openssl x509 -in '$TMP/rc.crt' -pubkey -noout)\" = \"\$(openssl pkey -in '$TMP/rc.key' -pubout)\" ]"
check "... with the EK SAN" sh -c "openssl x509 -in '$TMP/rc.crt' -noout -text | grep -q 'URI:urn:itl:ek:$EK_FP'"
check "recorded as kind request-cert" test "$(sql "SELECT COUNT(*) FROM issued_certs WHERE machine_id = '$MID' AND kind = 'request-cert'")" = 1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/wrap.key" 2>/dev/null
openssl pkey -in "$TMP/wrap.key" -pubout > "$TMP/wrap.pub"
api POST "/api/v1/machines/$MID/request-cert" "$(enroll_body "$TMP/b1.csr" | jq -c --arg fp "$EK_FP" --rawfile w "$TMP/wrap.pub" 'del(.csr_pem) | .ek_fingerprint = $fp | .wrapping_key_pem = $w')"
expect 200 "request-cert with an RSA-2048 wrapping key" '.enrollment_key_pem == "" and (.enrollment_key_encrypted_b64 | length) > 300'
jget .enrollment_cert_pem > "$TMP/rcw.crt"
jget .enrollment_key_encrypted_b64 | base64 -d > "$TMP/rcw.enc"
openssl pkeyutl -decrypt -inkey "$TMP/wrap.key" -in "$TMP/rcw.enc" -out "$TMP/rcw.der" -pkeyopt rsa_padding_mode:oaep \
	-pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 2>/dev/null
check "RSA-OAEP-SHA256 unwraps the PKCS#8 key of the certificate" sh -c "[ \"\$(openssl x509 -in '$TMP/rcw.crt' -pubkey -noout)\" = \"\$(openssl pkey -inform der -in '$TMP/rcw.der' -pubout)\" ]"
api POST "/api/v1/machines/$MID_A/request-cert" "$(rc_body)"
expect 403 "request-cert for a revoked machine" '.detail | test("cert issuance denied")'

say "--- TPM-resident key: attest-agent enroll (TPM2_Certify by the AK, CSR signed by the TPM)"
tpm_use C
AST=$TMP/agent-C
agent() { "$ATTEST_AGENT" "$@" --server "$BASE" --tcti "$TPM2TOOLS_TCTI" --state-dir "$AST" --apply-cmd cat \
	--timeout 10 >"$TMP/agent.out" 2>"$TMP/agent.err"; RC=$?; }
agent run --once
MID_C=$(jq -r .machine_id "$AST/state.json" 2>/dev/null)
[ -n "$MID_C" ] && [ "$MID_C" != null ] || MID_C=$(sql "SELECT machine_id FROM machines WHERE status = 'pending_approval' LIMIT 1")
admin POST "/api/v1/machines/$MID_C/approve" '{"role":"controlplane","hostname":"cp-1"}'
expect 200 "the agent's machine approved as controlplane"
agent run --once
check "attest-agent run: AK bound and attested" test "$(sql "SELECT status FROM machines WHERE machine_id = '$MID_C'")" = attested
mkdir -p "$TMP/agent-certs"
agent enroll --file "$TMP/agent-certs/node.crt"
check "attest-agent enroll exits 0" test "$RC" = 0
X=$(openssl x509 -in "$TMP/agent-certs/node.crt" -noout -text 2>/dev/null)
check "openssl verify: the TPM key's certificate chains to the CA bundle it wrote" \
	ov -CAfile "$TMP/agent-certs/enrollment-ca.crt" "$TMP/agent-certs/node.crt"
check "the certificate carries the TPM-key policy OID" has "Policy: 2.25.200473119380427306342371569386417166433"
check "... and is a P-256 key (what every TPM has)" has "ASN1 OID: prime256v1"
check "... for the controlplane role" has "OU = controlplane, CN = $MID_C"
check "recorded as kind tpm" test "$(sql "SELECT COUNT(*) FROM issued_certs WHERE machine_id = '$MID_C' AND kind = 'tpm'")" = 1
check "the same TPM derives the same key: a second enroll certifies the same public key" sh -c "
	'$ATTEST_AGENT' enroll --server '$BASE' --tcti '$TPM2TOOLS_TCTI' --state-dir '$AST' --file '$TMP/agent-certs/again.crt' >/dev/null 2>&1 &&
	[ \"\$(openssl x509 -in '$TMP/agent-certs/node.crt' -pubkey -noout)\" = \"\$(openssl x509 -in '$TMP/agent-certs/again.crt' -pubkey -noout)\" ]"
newcsr cp -newkey ec -pkeyopt ec_paramgen_curve:P-384
before="$(ncerts):$(counts)"
agent enroll --dump-request "$TMP/req.json"
check "--dump-request writes the request" sh -c "jq -e '.tpm_key_public and .certify_info and .certify_signature' '$TMP/req.json' >/dev/null"
api POST "/api/v1/machines/$MID_C/enroll" "$(jq -c --rawfile c "$TMP/cp.csr" 'del(.tpm_key_public, .certify_info, .certify_signature) | .csr_pem = $c' "$TMP/req.json")"
expect 422 "ITL_REQUIRE_TPM_KEY_ROLES: a software key for controlplane" '.detail | test("requires a TPM-resident key")'
agent enroll --dump-request "$TMP/req.json"
api POST "/api/v1/machines/$MID_C/enroll" "$(jq -c 'del(.certify_signature)' "$TMP/req.json")"
expect 422 "a TPM key without its certification" '.detail | test("go together")'
api POST "/api/v1/machines/$MID_C/enroll" "$(jq -c --rawfile c "$TMP/cp.csr" '.csr_pem = $c' "$TMP/req.json")"
expect 422 "a CSR whose key differs from the certified TPM key" '.detail | test("not the TPM key")'
agent enroll --dump-request "$TMP/req.json"
# another TPM's AK certifies one of its own keys
tpm_use B
tpm2_createprimary -C o -c "$TW/o.ctx" >/dev/null 2>&1; tpm_flush
tpm2_create -C "$TW/o.ctx" -G ecc256:ecdsa-sha256 -u "$TW/k.pub" -r "$TW/k.priv" \
	-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null 2>&1; tpm_flush
tpm2_load -C "$TW/o.ctx" -u "$TW/k.pub" -r "$TW/k.priv" -c "$TW/k.ctx" >/dev/null 2>&1; tpm_flush
tpm2_certify -c "$TW/k.ctx" -C "$TW/ak.ctx" -g sha256 -o "$TW/cert.att" -s "$TW/cert.sig" -f tss >/dev/null 2>"$TW/certify.log"
tpm_flush
check "tpm2_certify by TPM B's AK" test -s "$TW/cert.att"
api POST "/api/v1/machines/$MID_C/enroll" "$(jq -c --arg i "$(b64 "$TW/cert.att")" --arg s "$(b64 "$TW/cert.sig")" \
	'.certify_info = $i | .certify_signature = $s' "$TMP/req.json")"
expect 422 "a certification by another TPM's AK" '.detail | startswith("certify_signature:")'
tpm2_create -C "$TW/o.ctx" -G ecc256:ecdsa-sha256 -u "$TW/m.pub" -r "$TW/m.priv" \
	-a 'userwithauth|sign|sensitivedataorigin' >/dev/null 2>&1; tpm_flush
tpm_use C
agent enroll --dump-request "$TMP/req.json"
api POST "/api/v1/machines/$MID_C/enroll" "$(jq -c --arg k "$(b64 "$TMP/tpm-B/m.pub")" '.tpm_key_public = $k' "$TMP/req.json")"
expect 422 "a key that is not fixedTPM" '.detail | test("lack .fixedTPM.")'
check "nothing written by the refused TPM-key requests" test "$(ncerts):$(counts)" = "$before"
agent enroll --dump-request "$TMP/req.json"
api POST "/api/v1/machines/$MID_C/enroll" "$(cat "$TMP/req.json")"
expect 200 "the dumped request itself is accepted" '.tpm_resident == true and .key_type == "ecdsa-p256"'
api POST "/api/v1/machines/$MID_C/enroll" "$(cat "$TMP/req.json")"
expect 409 "... once (the nonce is spent)" '.detail | test("replay")'

say "--- offline self-enrollment with a bundled certificate (POST /api/v1/machines/enroll)"
make_ek offline ec384
api POST /api/v1/register "$(node_body)"
MID_D=$(jget .machine_id)
admin POST "/api/v1/machines/$MID_D/approve" '{"role":"worker-app","hostname":"offline-1"}' >/dev/null
admin GET "/api/v1/machines/$MID_D/offline-bundle?include_key=true"
expect 200 "offline bundle (include_key=true) for a registered machine"
jget .enrollment_cert_pem > "$TMP/d.crt"; jget .enrollment_key_pem > "$TMP/d.key"; SD=$(jget .enrollment_cert_serial)
check "the bundle's certificate is recorded (kind bundle)" test "$(sql "SELECT kind FROM issued_certs WHERE serial = '$SD'")" = bundle
check "... and carries the EK SAN" sh -c "openssl x509 -in '$TMP/d.crt' -noout -text | grep -q 'URI:urn:itl:ek:$EK_FP'"
# self_enroll CERT KEY [nonce override]: challenge, sign its nonce text with KEY (SHA-384)
self_enroll() {
	api GET /api/v1/attest/challenge
	n=${3:-$(jget .nonce)}
	sig=$(printf '%s' "$n" | openssl dgst -sha384 -sign "$2" | base64 -w0)
	SEBODY=$(jq -nc --rawfile c "$1" --arg n "$n" --arg i "$(jget .nonce_id)" --arg s "$sig" \
		'{cert_pem: $c, nonce: $n, nonce_signature: $s, nonce_id: $i}')
	api POST /api/v1/machines/enroll "$SEBODY"
}
before="$(counts)"
api POST /api/v1/machines/enroll "$(jq -nc --rawfile c "$TMP/d.crt" '{cert_pem: $c, nonce: ("a" * 40), nonce_signature: "AAAA"}')"
expect 422 "a client-chosen nonce without nonce_id (the reference's replayable form)" '.detail | startswith("nonce_id:")'
api POST /api/v1/machines/enroll "$(jq -nc --rawfile c "$TMP/d.crt" '{cert_pem: $c, nonce: "short", nonce_signature: "AAAA", nonce_id: "x"}')"
expect 422 "a nonce under 32 characters" '.detail == "nonce must be at least 32 characters"'
self_enroll "$TMP/d.crt" "$TMP/d.key" "$(head -c 32 /dev/urandom | base64 -w0)"
expect 403 "a nonce that is not the server's challenge" '.detail | test("not the challenge")'
self_enroll "$TMP/d.crt" "$TMP/m1.key"
expect 403 "a signature by another key" '.detail | startswith("Nonce signature rejected")'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$TMP/f.key" -out "$TMP/f.crt" \
	-subj "/OU=worker-app/CN=$MID_D" -addext "subjectAltName=URI:urn:itl:ek:$EK_FP" -days 1 >/dev/null 2>&1
self_enroll "$TMP/f.crt" "$TMP/f.key"
expect 403 "a certificate from another CA" '.detail | startswith("Enrollment cert rejected")'
check "nothing written by the refused self-enrollments" test "$(counts)" = "$before"
self_enroll "$TMP/d.crt" "$TMP/d.key"
expect 200 "the bundled certificate, signed server nonce: attested with a config token" \
	".machine_id == \"$MID_D\" and .status == \"attested\" and (.config_token | length) > 20"
check "audited as enroll, machine attested" test "$(sql "SELECT status FROM machines WHERE machine_id = '$MID_D'"):$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'enroll' AND machine_id = '$MID_D'")" = "attested:1"
api POST /api/v1/machines/enroll "$SEBODY"
expect 409 "the nonce is single use" '.detail | test("replay")'
admin POST "/api/v1/machines/$MID_D/lock" '{}' >/dev/null
self_enroll "$TMP/d.crt" "$TMP/d.key"
expect 403 "a locked machine (its certificate on hold)" '.detail | test("Enrollment cert rejected: certificate .* is on_hold")'
admin POST "/api/v1/machines/$MID_D/unlock" '{}' >/dev/null
admin POST "/api/v1/certificates/$SD/revoke" '{"reason":"superseded"}' >/dev/null
self_enroll "$TMP/d.crt" "$TMP/d.key"
expect 403 "a revoked certificate" '.detail | test("is revoked")'

say "--- configuration"
for bad in "ITL_ENROLLMENT_CERT_HOURS=worker-app" "ITL_ENROLLMENT_CERT_HOURS=nosuch=8" "ITL_ENROLLMENT_CERT_HOURS=worker-app=0" \
	"ITL_REQUIRE_TPM_KEY_ROLES=admin" "ITL_SPIFFE_TRUST_DOMAIN=Bad/Domain"; do
	out=$(env "$bad" ITL_DB_URL="sqlite:///$TMP/x.db" "$ATTESTD" --check-config 2>&1); rc=$?
	check "$bad is refused at start-up" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q '${bad%%=*}'" _ "$out"
done
stop_attestd
done_testing
