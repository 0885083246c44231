#!/bin/sh
# Agent X.509-SVIDs (docs/attestation-policies.md): a CSR in
# POST /api/v1/agents/attest gets a certificate from the enrollment CA
# for the session's SPIFFE ID when a policy passes (k8s_token with a JWT
# signed by a local key, x509pop with a chain made by openssl and a
# signature over the nonce); the certificate checked with openssl
# (verify against GET /api/v1/ca, SAN, key usage, EKU, validity, the
# attributes extension), listed, revoked (CRL with -crl_check, OCSP,
# self-revocation by proof of possession), and bad CSRs refused with
# nothing written.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd ITL_AGENT_TOKEN_TTL_SECONDS=900 ITL_AGENT_TRUST_DOMAIN=example.org
W="$TMP/w"; mkdir -p "$W"
NOW=$(date +%s)
ATTR_OID=2.25.1984162024243569353524101599406443297

b64() { base64 -w0 "$1"; }
jstr() { jq -Rs . "$1"; }
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NONCE=$(jget .nonce); }
popmsg() { { printf 'attestation agent proof of possession v1\000%s\000' "$1"; printf '%s' "$NONCE" | base64 -d; } > "$2"; }
ov() { openssl verify "$@" >/dev/null 2>&1; }
ncerts() { sql "SELECT COUNT(*) FROM issued_certs"; }
nsess() { sql "SELECT COUNT(*) FROM agent_sessions"; }
# attest_csr EVIDENCE CSR-FILE [nonce]: the request body in $W/req.json
attest_csr() {
	if [ "${3:-}" = nonce ]; then n=$NID; else n=""; fi
	jq -nc --argjson ev "$1" --rawfile csr "$2" --arg n "$n" \
		'{cluster_id: "svid", evidence: $ev, csr_pem: $csr} + (if $n == "" then {} else {nonce_id: $n} end)' > "$W/req.json"
	api POST /api/v1/agents/attest "$(cat "$W/req.json")"
}
newcsr() { # NAME KEYSPEC...: a CSR asking for things the service must ignore
	n=$1; shift
	openssl req -new "$@" -nodes -keyout "$W/$n.key" -out "$W/$n.csr" \
		-subj "/C=XX/O=Attacker/CN=someone-else" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "subjectAltName=URI:spiffe://evil.example/x,DNS:evil.example" >/dev/null 2>&1
}

# ---- trust material and the policy -------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/k8s.key" 2>/dev/null
JWKS_JSON=$(printf '{"keys":[%s]}' "$("$JWTMINT" jwk --key "$W/k8s.key" --kid k1)" | jq -Rs .)
K8S=$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims \
	"{\"iss\":\"https://k8s.test\",\"sub\":\"system:serviceaccount:ci:runner\",\"aud\":[\"attestation\"],\"iat\":$NOW,\"exp\":$((NOW + 600)),\"kubernetes.io\":{\"namespace\":\"ci\",\"serviceaccount\":{\"name\":\"runner\",\"uid\":\"u-1\"},\"pod\":{\"name\":\"runner-0\",\"uid\":\"p-1\"}}}")
K8S_EV="{\"k8s_token\":{\"token\":\"$K8S\"}}"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/xca.key" -out "$W/xca.pem" -days 30 -subj "/CN=x509pop CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/leaf.key" -out "$W/leaf.csr" -subj "/CN=host-7" 2>/dev/null
printf 'subjectAltName=URI:spiffe://example.org/host/host-7\n' > "$W/leaf.ext"
openssl x509 -req -in "$W/leaf.csr" -CA "$W/xca.pem" -CAkey "$W/xca.key" -CAcreateserial -days 5 -extfile "$W/leaf.ext" -out "$W/leaf.pem" 2>/dev/null
cat > "$W/policy.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: runners
      requiredAttestors:
        - type: k8s_token
          config: {issuerURL: "https://k8s.test", allowedNamespaces: [ci], jwks: $JWKS_JSON}
    - name: hosts
      requiredAttestors:
        - type: x509pop
          config:
            caBundle: |
$(sed 's/^/              /' "$W/xca.pem")
EOF
STATUS=$(curl -sS -o "$TMP/resp.body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
	-H "Content-Type: application/yaml" --data-binary @"$W/policy.yaml" "$BASE/api/v1/clusters/svid/config/AgentAttestation")
BODY=$(cat "$TMP/resp.body")
expect 200 "policy: k8s_token runners OR x509pop hosts"
api GET /api/v1/ca; printf '%s\n' "$BODY" > "$W/bundle.pem"
check "GET /api/v1/ca: the trust bundle" grep -q "BEGIN CERTIFICATE" "$W/bundle.pem"

# ---- k8s_token + CSR ------------------------------------------------------------------
newcsr a1 -newkey ec -pkeyopt ec_paramgen_curve:P-384
attest_csr "$K8S_EV" "$W/a1.csr"
expect 200 "k8s_token + CSR: a token and an X.509-SVID" \
	'.policy == "runners" and (.token | length) > 0 and .token_type == "JWT" and .svid.serial != null and .svid.spiffe_id == .spiffe_id and .svid.key_type == "ecdsa-p384" and (.svid.bundle_pem | startswith("-----BEGIN CERTIFICATE"))'
SID=$(jget .session_id); SPIFFE=$(jget .spiffe_id); S1=$(jget .svid.serial); EXP=$(jget .expires_at)
jget .svid.cert_pem > "$W/a1.crt"
check "the SPIFFE ID is the JWT's" test "$SPIFFE" = "spiffe://example.org/agent/svid/runners/$SID"
check "openssl verify: the SVID chains to GET /api/v1/ca" ov -CAfile "$W/bundle.pem" "$W/a1.crt"
check "openssl verify -purpose sslclient" ov -purpose sslclient -CAfile "$W/bundle.pem" "$W/a1.crt"
check "openssl verify -purpose sslserver" ov -purpose sslserver -CAfile "$W/bundle.pem" "$W/a1.crt"
X=$(openssl x509 -in "$W/a1.crt" -noout -text)
has() { printf '%s' "$X" | grep -q -- "$1"; }
check "URI SAN: exactly the SPIFFE ID (the CSR's SANs are not copied)" sh -c \
	"printf '%s' \"\$1\" | grep -A1 'Subject Alternative Name' | tail -1 | grep -qx ' *URI:$SPIFFE'" _ "$X"
check "no CSR name anywhere" sh -c "! printf '%s' \"\$1\" | grep -q 'evil.example\|Attacker\|someone-else'" _ "$X"
check "subject decided by the service (OU = agent, CN = session)" has "Subject: C = NL, O = ITL Usions, OU = agent, CN = $SID"
check "key usage: digitalSignature, critical" sh -c "printf '%s' \"\$1\" | grep -A1 'X509v3 Key Usage: critical' | grep -qx ' *Digital Signature'" _ "$X"
check "EKU: serverAuth and clientAuth" sh -c "printf '%s' \"\$1\" | grep -A1 'Extended Key Usage' | grep -qx ' *TLS Web Server Authentication, TLS Web Client Authentication'" _ "$X"
check "CA:FALSE although the CSR asked for CA:TRUE" sh -c "printf '%s' \"\$1\" | grep -A1 'Basic Constraints: critical' | grep -q 'CA:FALSE'" _ "$X"
check "CRL distribution point" has "URI:http://attest.test/api/v1/ca/crl"
check "OCSP responder" has "OCSP - URI:http://attest.test/api/v1/ca/ocsp"
check "the key is the CSR's" sh -c "[ \"\$(openssl x509 -in '$W/a1.crt' -pubkey -noout)\" = \"\$(openssl pkey -in '$W/a1.key' -pubout)\" ]"
na=$(date -d "$(openssl x509 -in "$W/a1.crt" -noout -enddate | cut -d= -f2)" +%s)
nb=$(date -d "$(openssl x509 -in "$W/a1.crt" -noout -startdate | cut -d= -f2)" +%s)
left=$((na - $(date +%s)))
check "validity: ITL_AGENT_TOKEN_TTL_SECONDS (900 s), notBefore 5 min back" sh -c "[ $left -ge 880 ] && [ $left -le 900 ] && [ $((na - nb)) = 1200 ]"
d=$(( $(date -d "$EXP" +%s) - na ))
check "notAfter = the token's expires_at (within the second the two are computed in)" sh -c "[ $d -ge -1 ] && [ $d -le 1 ]"
# the attributes extension: non-critical, a UTF8String of the JSON attributes
check "attributes extension present, not critical" sh -c "printf '%s' \"\$1\" | grep -q '^ *$ATTR_OID: *\$'" _ "$X"
openssl x509 -in "$W/a1.crt" -outform DER -out "$W/a1.der"
python3 - "$W/a1.der" "$ATTR_OID" > "$W/a1.attrs" <<'PY'
import subprocess, sys
# find the extension with openssl asn1parse: OBJECT line, then the OCTET STRING holding a UTF8String
out = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", sys.argv[1]], capture_output=True, text=True).stdout.splitlines()
for i, l in enumerate(out):
    if sys.argv[2] in l or ("OBJECT" in l and l.rstrip().endswith(":" + sys.argv[2])):
        nxt = out[i + 1]
        assert "OCTET STRING" in nxt and "BOOLEAN" not in nxt, nxt
        off = int(nxt.split(":")[0].strip())
        inner = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", sys.argv[1], "-strparse", str(off)],
                               capture_output=True, text=True).stdout
        assert "UTF8STRING" in inner, inner
        print(inner.split("UTF8STRING", 1)[1].split(":", 1)[1].strip())
        break
PY
check "openssl asn1parse: the extension is the JSON of the attributes" sh -c \
	"jq -e '.[\"k8s_token.namespace\"] == \"ci\" and .[\"k8s_token.service_account\"] == \"runner\" and .[\"k8s_token.pod_name\"] == \"runner-0\"' '$W/a1.attrs' >/dev/null"
check "the extension's JSON is the response's attributes" sh -c "[ \"\$(jq -cS . '$W/a1.attrs')\" = \"\$(printf '%s' '$BODY' | jq -cS .attributes)\" ]"
check "issued_certs: kind agent-svid, no machine, the session" test \
	"$(sql "SELECT kind || ' ' || key_type || ' ' || COALESCE(machine_id, '-') || ' ' || agent_session FROM issued_certs WHERE serial = '$S1'")" = "agent-svid ecdsa-p384 - $SID"
check "the session records the serial" test "$(sql "SELECT cert_serial FROM agent_sessions WHERE session_id = '$SID'")" = "$S1"
check "audited (agent_cert_issued)" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'agent_cert_issued' AND detail LIKE '%serial=$S1%'")" = 1
check "log line" grep -q "Agent SVID issued: session=$SID spiffe_id=$SPIFFE serial=$S1" "$DATA/attestd.log"

# ---- x509pop + CSR (RSA 3072) ---------------------------------------------------------------
newcsr a2 -newkey rsa:3072
challenge; popmsg x509pop "$W/msg"; openssl dgst -sha256 -sign "$W/leaf.key" -out "$W/msg.sig" "$W/msg"
X509_EV="{\"x509pop\":{\"certificate_chain\":$(jstr "$W/leaf.pem"),\"signature\":\"$(b64 "$W/msg.sig")\"}}"
attest_csr "$X509_EV" "$W/a2.csr" nonce
expect 200 "x509pop + CSR: an SVID for an RSA-3072 key" '.policy == "hosts" and .svid.key_type == "rsa-3072"'
SID2=$(jget .session_id); S2=$(jget .svid.serial); jget .svid.cert_pem > "$W/a2.crt"; jget .attributes > "$W/a2.want"
check "openssl verify: the second SVID" ov -CAfile "$W/bundle.pem" "$W/a2.crt"
check "its URI SAN is its own session's" sh -c "openssl x509 -in '$W/a2.crt' -noout -ext subjectAltName | grep -qx ' *URI:spiffe://example.org/agent/svid/hosts/$SID2'"
openssl x509 -in "$W/a2.crt" -outform DER -out "$W/a2.der"
off=$(openssl asn1parse -inform DER -in "$W/a2.der" | grep -A1 ":$ATTR_OID\$" | tail -1 | cut -d: -f1 | tr -d ' ')
openssl asn1parse -inform DER -in "$W/a2.der" -strparse "$off" | sed -n 's/.*UTF8STRING *://p' > "$W/a2.attrs"
check "attributes extension: x509pop subject, SANs, fingerprint" sh -c \
	"jq -e '.[\"x509pop.uri_sans\"] == [\"spiffe://example.org/host/host-7\"] and (.[\"x509pop.subject\"] | test(\"host-7\"))' '$W/a2.attrs' >/dev/null && [ \"\$(jq -cS . '$W/a2.attrs')\" = \"\$(jq -cS . '$W/a2.want')\" ]"
api POST /api/v1/agents/attest "{\"cluster_id\":\"svid\",\"evidence\":$K8S_EV}"
expect 200 "without csr_pem: the token only, as before" '(has("svid") | not) and .token_type == "JWT"'
SID3=$(jget .session_id)
check "... and no certificate recorded for that session" test "$(sql "SELECT COALESCE(cert_serial, 'none') FROM agent_sessions WHERE session_id = '$SID3'")" = none

# ---- listing ----------------------------------------------------------------------------------
admin GET "/api/v1/agents?cluster_id=svid"
expect 200 "agents list: the sessions carry their certificate serial" \
	"(.sessions | map(select(.session_id == \"$SID\")) | .[0].cert_serial) == \"$S1\" and (.sessions | map(select(.session_id == \"$SID3\")) | .[0].cert_serial) == null"
admin GET "/api/v1/certificates/$S1"
expect 200 "GET /api/v1/certificates/{serial}: the agent's certificate" \
	".kind == \"agent-svid\" and .machine_id == null and .agent_session == \"$SID\" and .status == \"valid\""
admin GET "/api/v1/agents/$SID/certificates"
expect 200 "GET /api/v1/agents/{session}/certificates" ".[0].serial == \"$S1\" and .[0].kind == \"agent-svid\""
cli() { ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN ATTESTATION_CACHE_DIR="$TMP/cli-cache" "$ATTESTATION_CLI" "$@"; }
OUT=$(cli agents list --cluster svid)
check "cli: agents list shows the certificate serial" sh -c "printf '%s' '$OUT' | grep -q '$(printf '%s' "$S1" | cut -c1-10)'"
OUT=$(cli cert list --agent "$SID")
check "cli: cert list --agent SESSION" sh -c "printf '%s' '$OUT' | grep -q '$S1'"

# ---- revocation: operator, CRL, OCSP --------------------------------------------------------
api GET "/api/v1/ca/crl?format=pem"; printf '%s\n' "$BODY" > "$W/crl0.pem"
cat "$W/bundle.pem" "$W/crl0.pem" > "$W/chain0.pem"
check "openssl verify -crl_check: valid before the revoke" ov -crl_check -CAfile "$W/chain0.pem" "$W/a1.crt"
check "openssl ocsp: good" sh -c "openssl ocsp -issuer '$W/bundle.pem' -cert '$W/a1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$W/bundle.pem' 2>&1 | grep -q ': good'"
OUT=$(cli cert revoke "$S1" --reason keyCompromise --detail "runner image leaked" 2>&1)
check "cli: cert revoke of an agent's certificate" sh -c "printf '%s' '$OUT' | grep -q 'revoked (keyCompromise)'"
admin GET "/api/v1/certificates/$S1"
expect 200 "the record says revoked" '.status == "revoked" and .revocation_reason == "keyCompromise"'
admin POST "/api/v1/certificates/$S1/revoke" '{"reason":"superseded"}'
expect 409 "revoking twice: 409"
check "audited (agent_cert_revoked)" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'agent_cert_revoked' AND detail LIKE '%serial=$S1%'")" = 1
api GET "/api/v1/ca/crl?format=pem"; printf '%s\n' "$BODY" > "$W/crl1.pem"
cat "$W/bundle.pem" "$W/crl1.pem" > "$W/chain1.pem"
check "openssl verify -crl_check: revoked" sh -c "openssl verify -crl_check -CAfile '$W/chain1.pem' '$W/a1.crt' 2>&1 | grep -q 'certificate revoked'"
check "... the other SVID still verifies" ov -crl_check -CAfile "$W/chain1.pem" "$W/a2.crt"
check "openssl ocsp: revoked" sh -c "openssl ocsp -issuer '$W/bundle.pem' -cert '$W/a1.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$W/bundle.pem' 2>&1 | grep -q ': revoked'"
# self-revocation by proof of possession over a nonce (ECDSA/RSA SHA-256 for RSA keys)
challenge
printf '%s' "$NONCE" > "$W/n.txt"
openssl dgst -sha256 -sign "$W/a2.key" -out "$W/n.sig" "$W/n.txt"
api POST /api/v1/certificates/self-revoke "$(jq -nc --rawfile c "$W/a2.crt" --arg n "$NID" --arg s "$(b64 "$W/n.sig")" '{certificate_pem: $c, nonce_id: $n, signature: $s}')"
expect 200 "self-revoke: the agent revokes its own SVID with proof of possession" \
	".serial == \"$S2\" and .agent_session == \"$SID2\" and .status == \"revoked\" and .revocation_reason == \"cessationOfOperation\""
check "openssl ocsp: the self-revoked SVID is revoked" sh -c "openssl ocsp -issuer '$W/bundle.pem' -cert '$W/a2.crt' -url '$BASE/api/v1/ca/ocsp' -CAfile '$W/bundle.pem' 2>&1 | grep -q ': revoked'"

# ---- bad input: 4xx and nothing written ---------------------------------------------------------
C0=$(ncerts); N0=$(nsess); A0=$(sql "SELECT COUNT(*) FROM audit_log")
refuse() { # STATUS DESC DETAIL-REGEX (request: attest_csr already sent)
	expect "$1" "$2" ".detail | test(\"$3\")"
}
printf 'not a csr\n' > "$W/junk.csr"; attest_csr "$K8S_EV" "$W/junk.csr"
refuse 422 "a malformed CSR: 422" '^csr_pem: not a PEM certificate request'
sed -n '1p;$p' "$W/a1.csr" > "$W/empty.csr"; attest_csr "$K8S_EV" "$W/empty.csr"
refuse 422 "a PEM CSR without a body: 422" '^csr_pem: '
{ sed '$d' "$W/a1.csr" | sed '$d'; printf 'AAAA\n-----END CERTIFICATE REQUEST-----\n'; } > "$W/trunc.csr"; attest_csr "$K8S_EV" "$W/trunc.csr"
refuse 422 "a corrupted CSR: 422" '^csr_pem: '
openssl req -in "$W/a1.csr" -outform DER -out "$W/a1.csr.der"
python3 - "$W/a1.csr.der" "$W/badsig.der" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read()); d[-3] ^= 0x01   # inside the signature value
open(sys.argv[2], "wb").write(d)
PY
openssl req -inform DER -in "$W/badsig.der" -out "$W/badsig.csr" 2>/dev/null || { printf -- '-----BEGIN CERTIFICATE REQUEST-----\n'; base64 -w64 "$W/badsig.der"; printf -- '-----END CERTIFICATE REQUEST-----\n'; } > "$W/badsig.csr"
attest_csr "$K8S_EV" "$W/badsig.csr"
refuse 422 "a CSR whose signature does not verify: 422" "signature does not verify"
newcsr p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256; attest_csr "$K8S_EV" "$W/p256.csr"
refuse 422 "a P-256 key (software keys: P-384 or RSA 3072-8192): 422" 'key type ecdsa-p256 is not accepted'
newcsr r2k -newkey rsa:2048; attest_csr "$K8S_EV" "$W/r2k.csr"
refuse 422 "an RSA-2048 key: 422" 'key type rsa-2048 is not accepted'
newcsr ed -newkey ed25519; attest_csr "$K8S_EV" "$W/ed.csr"
refuse 422 "an Ed25519 key: 422" 'is not accepted'
{ cat "$W/a1.csr"; head -c 20000 /dev/zero | tr '\0' ' '; } > "$W/huge.csr"; attest_csr "$K8S_EV" "$W/huge.csr"
refuse 422 "a CSR over 16 KiB: 422" 'csr_pem'
api POST /api/v1/agents/attest "{\"cluster_id\":\"svid\",\"evidence\":$K8S_EV,\"csr_pem\":42}"
expect 422 "csr_pem of the wrong type: 422"
cat "$W/a1.csr" "$W/a1.csr" > "$W/two.csr"; attest_csr "$K8S_EV" "$W/two.csr"
refuse 422 "two CSRs in one field: 422" 'trailing data'
# a good CSR with evidence that fails every policy: 403, no certificate, no session
BADK8S=$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims \
	"{\"iss\":\"https://k8s.test\",\"sub\":\"x\",\"aud\":[\"attestation\"],\"iat\":$NOW,\"exp\":$((NOW + 600)),\"kubernetes.io\":{\"namespace\":\"prod\",\"serviceaccount\":{\"name\":\"r\",\"uid\":\"u\"}}}")
newcsr ok -newkey ec -pkeyopt ec_paramgen_curve:P-384
attest_csr "{\"k8s_token\":{\"token\":\"$BADK8S\"}}" "$W/ok.csr"
expect 403 "a valid CSR but no policy passes: 403" '.failures[0].reason | startswith("service account not allowed")'
# a bad CSR must not spend the nonce
challenge; popmsg x509pop "$W/msg"; openssl dgst -sha256 -sign "$W/leaf.key" -out "$W/msg.sig" "$W/msg"
X509_EV="{\"x509pop\":{\"certificate_chain\":$(jstr "$W/leaf.pem"),\"signature\":\"$(b64 "$W/msg.sig")\"}}"
attest_csr "$X509_EV" "$W/junk.csr" nonce
refuse 422 "a bad CSR with a nonce: 422" '^csr_pem: '
check "nothing written by any refusal (certificates, sessions, audit)" test \
	"$(ncerts):$(nsess):$(sql "SELECT COUNT(*) FROM audit_log")" = "$C0:$N0:$A0"
attest_csr "$X509_EV" "$W/ok.csr" nonce
expect 200 "... and the nonce is still good for a corrected request" '.policy == "hosts" and .svid.key_type == "ecdsa-p384"'
check "exactly one certificate and one session more" test "$(ncerts):$(nsess)" = "$((C0 + 1)):$((N0 + 1))"

# ---- attributes too large for a certificate (an extension webhook's) ------------------------------
mkdir -p "$W/srv"
python3 "$SRCDIR/tests/helpers/agent-stub.py" "$W/srv" "$W/port" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$W/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: ext\n      requiredAttestors:\n        - type: extension\n          config: {url: "http://127.0.0.1:%s/decide"}\n' "$(cat "$W/port")" > "$W/big.yaml"
STATUS=$(curl -sS -o "$TMP/resp.body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
	-H "Content-Type: application/yaml" --data-binary @"$W/big.yaml" "$BASE/api/v1/clusters/big/config/AgentAttestation")
check "policy: an extension webhook" test "$STATUS" = 200
python3 -c 'import json; print(json.dumps({"allow": True, "attributes": {"k%d" % i: "v" * 1000 for i in range(9)}}))' > "$W/srv/decide.json"
C0=$(ncerts); N0=$(nsess)
api POST /api/v1/agents/attest "$(jq -nc --rawfile csr "$W/ok.csr" '{cluster_id: "big", evidence: {extension: {}}, csr_pem: $csr}')"
expect 422 "attributes over 8 KiB cannot go into a certificate: 422" '.detail | test("exceed the 8192 bytes")'
check "... nothing written" test "$(ncerts):$(nsess)" = "$C0:$N0"
api POST /api/v1/agents/attest '{"cluster_id":"big","evidence":{"extension":{}}}'
expect 200 "... the token alone carries them" '(.attributes["extension.k8"] | length) == 1000'

# ---- migration 15 on a database that has machine certificates (SQLite rebuilds the table) ------
ROW="INSERT INTO issued_certs (serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint, issued_at, issued_by,
 not_after, not_after_epoch, pem, revoked_at, revoked_epoch, revocation_reason, revocation_detail)
 VALUES ('0A', 'm-1', 'worker', 'CA', 'csr', 'ecdsa-p384', 'fp', 't', 'admin', 'n', 9, 'PEM', 'r', 3, 'keyCompromise', 'd');
 INSERT INTO agent_sessions (session_id, cluster_id, policy, spiffe_id, attributes, issued_at, expires_at)
 VALUES ('s-1', 'c', 'p', 'spiffe://x/y', '{}', 'a', 'b');"
if [ "$ATTEST_DB" = sqlite ]; then
	M="$TMP/m15"; mkdir -p "$M"; MURL="sqlite:///$M/m.db"
	msql() { sqlite3 "$M/m.db" "$1"; }
	ITL_DB_URL="$MURL" "$ATTESTD" migrate >/dev/null 2>&1
	# back to the schema before 15: issued_certs as migration 7 made it, no cert_serial
	msql "DROP TABLE issued_certs; ALTER TABLE agent_sessions DROP COLUMN cert_serial;
		DELETE FROM schema_migrations WHERE version = 15;
		CREATE TABLE issued_certs (serial TEXT PRIMARY KEY, machine_id TEXT NOT NULL, role TEXT, ca_serial TEXT NOT NULL,
		 kind TEXT NOT NULL, key_type TEXT NOT NULL, ek_fingerprint TEXT, issued_at TEXT NOT NULL, issued_by TEXT NOT NULL,
		 not_after TEXT NOT NULL, not_after_epoch BIGINT NOT NULL, pem TEXT NOT NULL, revoked_at TEXT, revoked_epoch BIGINT,
		 revocation_reason TEXT, revocation_detail TEXT);
		CREATE INDEX issued_certs_machine ON issued_certs(machine_id);
		CREATE INDEX issued_certs_revoked ON issued_certs(ca_serial, revoked_epoch); $ROW"
	NIDX="SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'issued_certs' AND name IN ('issued_certs_machine', 'issued_certs_revoked', 'issued_certs_agent')"
else
	SAVED_DB=$PG_DB; SAVED_URL=$DB_URL; new_db; MURL=$DB_URL; M_DB=$PG_DB; PG_DB=$SAVED_DB; DB_URL=$SAVED_URL
	msql() { "$PG_BIN/psql" -h "$PG_DIR" -U postgres -d "$M_DB" -qAt -c "$1"; }
	ITL_DB_URL="$MURL" "$ATTESTD" migrate >/dev/null 2>&1
	msql "ALTER TABLE issued_certs DROP COLUMN agent_session; ALTER TABLE agent_sessions DROP COLUMN cert_serial;
		DELETE FROM schema_migrations WHERE version = 15; $ROW
		ALTER TABLE issued_certs ALTER COLUMN machine_id SET NOT NULL;" >/dev/null
	NIDX="SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'issued_certs' AND indexname IN ('issued_certs_machine', 'issued_certs_revoked', 'issued_certs_agent')"
fi
out=$(ITL_DB_URL="$MURL" "$ATTESTD" migrate 2>&1)
check "migration 15 upgrades a database with machine certificates" sh -c "printf '%s' \"\$1\" | grep -q '(1 migration(s) applied)'" _ "$out"
check "... every column of the existing certificate kept" test \
	"$(msql "SELECT serial || '|' || machine_id || '|' || ek_fingerprint || '|' || revoked_epoch || '|' || revocation_detail || '|' || COALESCE(agent_session, '-') FROM issued_certs")" = "0A|m-1|fp|3|d|-"
msql "INSERT INTO issued_certs (serial, machine_id, ca_serial, kind, key_type, issued_at, issued_by, not_after, not_after_epoch, pem, agent_session) VALUES ('0B', NULL, 'CA', 'agent-svid', 'k', 't', 'agent', 'n', 1, 'P', 's-1')" >/dev/null 2>&1
check "... machine_id now nullable, sessions have cert_serial, indexes in place" test \
	"$(msql "SELECT COUNT(*) FROM issued_certs WHERE machine_id IS NULL"):$(msql "SELECT COUNT(*) FROM agent_sessions WHERE cert_serial IS NULL"):$(msql "$NIDX")" = "1:1:3"

# ---- unknown agent serials / sessions ------------------------------------------------------------
admin GET "/api/v1/agents/00000000-0000-4000-8000-000000000000/certificates"
expect 200 "certificates of an unknown session: an empty list" 'length == 0'
admin GET "/api/v1/agents/not-a-session/certificates"
expect 404 "a malformed session id: 404"
done_testing
