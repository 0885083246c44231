#!/bin/sh
# Agent attestation policies (docs/attestation-policies.md): the policy
# document (seed 004 shape, strict validation naming the path, versions,
# audit), every attestor with evidence made here in its real format
# (JWTs signed by local keys behind a local issuer, PKCS#7 by local
# stand-ins for AWS/Azure certificates, OpenSSH host certificates from
# ssh-keygen, X.509 chains from openssl, swtpm for tpm_ek), AND inside a
# policy and OR across policies, the issued identity token, hot apply on
# two replicas, and bad input.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"
command -v ssh-keygen >/dev/null 2>&1 || { echo "Bail out! ssh-keygen not installed (scripts/deps.sh)"; exit 1; }

start_attestd ITL_AGENT_TOKEN_TTL_SECONDS=600 ITL_AGENT_TRUST_DOMAIN=example.org
A_BASE=$BASE
W="$TMP/w"; mkdir -p "$W/srv/k8s" "$W/srv/.well-known/attestation-agent"
python3 "$SRCDIR/tests/helpers/agent-stub.py" "$W/srv" "$W/port" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$W/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
SP=$(cat "$W/port")
ISS="http://127.0.0.1:$SP/k8s"
NOW=$(date +%s)

b64() { base64 -w0 "$1"; }
jstr() { jq -Rs . "$1"; }	# a file as a JSON string
# put_policy CLUSTER FILE [content-type]
put_policy() {
	STATUS=$(curl -sS -o "$TMP/resp.body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
		-H "Content-Type: ${3:-application/yaml}" --data-binary @"$2" "$BASE/api/v1/clusters/$1/config/AgentAttestation")
	BODY=$(cat "$TMP/resp.body")
}
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NONCE=$(jget .nonce); }
# popmsg TYPE FILE: the proof-of-possession message for the current nonce
popmsg() { { printf 'attestation agent proof of possession v1\000%s\000' "$1"; printf '%s' "$NONCE" | base64 -d; } > "$2"; }
# attest CLUSTER EVIDENCE-JSON [with-nonce]
attest() {
	if [ "${3:-}" = nonce ]; then api POST /api/v1/agents/attest "{\"cluster_id\":\"$1\",\"nonce_id\":\"$NID\",\"evidence\":$2}"
	else api POST /api/v1/agents/attest "{\"cluster_id\":\"$1\",\"evidence\":$2}"; fi
}

# ---- policy documents --------------------------------------------------------
cat > "$W/bad-aws.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: eks_cluster_policy
      requiredAttestors:
        - type: k8s_token
          config:
            issuerURL: $ISS
        - type: aws_iid
EOF
put_policy c1 "$W/bad-aws.yaml"
expect 422 "aws_iid without certificates: 422 naming the path" \
	'.detail | startswith("spec.policies[0].requiredAttestors[1].config: required for attestor type aws_iid")'
bad() { # bad DESC JQ-DETAIL-REGEX  (document in $W/bad.yaml)
	put_policy c1 "$W/bad.yaml"
	expect 422 "$1" ".detail | test(\"$2\")"
}
printf 'section: AgentAttestation\nschema: v1\nspec: {policies: [\n' > "$W/bad.yaml"; bad "unparsable YAML" '^document: not valid YAML'
printf 'section: Other\nschema: v1\nspec: {}\n' > "$W/bad.yaml"; bad "wrong section" '^section: must be AgentAttestation'
printf 'section: AgentAttestation\nschema: v2\nspec: {}\n' > "$W/bad.yaml"; bad "wrong schema" '^schema: must be v1'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies: []\n' > "$W/bad.yaml"; bad "no policies" '^spec.policies: required'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors:\n        - type: gpu_magic\n' > "$W/bad.yaml"
bad "unknown attestor type" 'spec.policies\\[0\\].requiredAttestors\\[0\\].type: unknown attestor type'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors:\n        - type: k8s_token\n' > "$W/bad.yaml"
bad "k8s_token without config" 'requiredAttestors\\[0\\].config: required for attestor type k8s_token'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors:\n        - type: k8s_token\n          config: {issuerURL: %s, colour: red}\n' "$ISS" > "$W/bad.yaml"
bad "unknown config key" 'config.colour: unknown key for attestor type k8s_token'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors:\n        - type: k8s_token\n          config: {issuerURL: 42}\n' > "$W/bad.yaml"
bad "config value of the wrong type" 'config.issuerURL: must be an http'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: p\n      requiredAttestors: [{type: ssh_pop, config: {certAuthorities: [nonsense]}}]\n' > "$W/bad.yaml"
bad "a CA key that does not parse" 'config.certAuthorities\\[0\\]: not an OpenSSH public key line'
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - {name: p, requiredAttestors: [{type: http_dns, config: {allowedDomains: [a]}}]}\n    - {name: p, requiredAttestors: [{type: http_dns, config: {allowedDomains: [b]}}]}\n' > "$W/bad.yaml"
bad "two policies with one name" "spec.policies\\\\[1\\\\].name: 'p' is used by another policy"
printf 'section: AgentAttestation\nschema: v1\nextra: 1\nspec: {}\n' > "$W/bad.yaml"; bad "unknown top-level key" '^extra: unknown key'
printf 'a: &x [1]\nb: *x\n' > "$W/bad.yaml"; bad "YAML aliases refused" 'aliases are not accepted'
printf '%%ax$\377\377\377\t: *x\n' > "$W/bad.yaml"; bad "invalid UTF-8 (a document that hangs libfyaml's directive scanner)" '^document: must be UTF-8'
printf '%%YAML 1.2\n---\nsection: AgentAttestation\n' > "$W/bad.yaml"; bad "YAML directives refused" '^document: YAML directives'
printf 'section: Agent\033[2JAttestation\n' > "$W/bad.yaml"; bad "control characters refused" '^document: must be UTF-8'
head -c 70000 /dev/zero | tr '\0' 'a' > "$W/bad.yaml"; bad "oversized document" 'larger than 65536 bytes'
printf 'section: AgentAttestation\n' > "$W/small.yaml"
put_policy c1 "$W/small.yaml" text/html
expect 415 "a policy document as text/html: 415"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$W/small.yaml" "$BASE/api/v1/clusters/c1/config/AgentAttestation")
check "PUT without operator credentials: 401" test "$STATUS" = 401
put_policy BAD_ID "$W/small.yaml"
expect 404 "a malformed cluster id: 404"
check "nothing stored by refused documents" test "$(sql 'SELECT COUNT(*) FROM agent_policies')" = 0

# ---- trust material ---------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/k8s.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/evil.key" 2>/dev/null
printf '{"keys":[%s]}' "$("$JWTMINT" jwk --key "$W/k8s.key" --kid k1)" > "$W/srv/k8s/jwks.json"
printf '{"issuer":"%s","jwks_uri":"%s/jwks.json"}' "$ISS" "$ISS" > "$W/srv/k8s/.well-known-openid"
mkdir -p "$W/srv/k8s/.well-known"; mv "$W/srv/k8s/.well-known-openid" "$W/srv/k8s/.well-known/openid-configuration"
k8s_claims() { # NAMESPACE [AUD] [EXP]
	printf '{"iss":"%s","sub":"system:serviceaccount:%s:runner","aud":["%s"],"iat":%s,"exp":%s,"kubernetes.io":{"namespace":"%s","serviceaccount":{"name":"runner","uid":"u-1"},"pod":{"name":"runner-0","uid":"p-1"},"node":{"name":"n1","uid":"n-1"}}}' \
		"$ISS" "$1" "${2:-attestation}" "$NOW" "${3:-$((NOW + 600))}" "$1"
}
K8S_OK=$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims "$(k8s_claims ci)")
# AWS: a stand-in for the region's public certificate, and a signed document
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/aws.key" -out "$W/aws.pem" -days 30 -subj "/CN=AWS stand-in" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/aws2.key" -out "$W/aws2.pem" -days 30 -subj "/CN=not AWS" 2>/dev/null
printf '{"accountId":"123456789012","region":"eu-west-1","instanceId":"i-0abc","instanceType":"m5.large","imageId":"ami-1","availabilityZone":"eu-west-1a","architecture":"x86_64","pendingTime":"2026-12-01T10:00:00Z"}' > "$W/iid.json"
openssl smime -sign -binary -in "$W/iid.json" -signer "$W/aws.pem" -inkey "$W/aws.key" -outform DER -out "$W/iid.p7" -noattr 2>/dev/null
openssl smime -sign -binary -in "$W/iid.json" -signer "$W/aws2.pem" -inkey "$W/aws2.key" -outform DER -out "$W/iid-evil.p7" -noattr 2>/dev/null
IID_EV="{\"document\":$(jstr "$W/iid.json"),\"signature\":\"$(b64 "$W/iid.p7")\"}"
# SSH: a host CA and a host certificate
ssh-keygen -q -t ed25519 -N '' -f "$W/ssh_ca" -C ca
ssh-keygen -q -t ed25519 -N '' -f "$W/ssh_ca2" -C other-ca
ssh-keygen -q -t ed25519 -N '' -f "$W/host" -C host
ssh-keygen -q -s "$W/ssh_ca" -I host1 -h -n host1.example.org,host1 -z 77 -V -5m:+1h "$W/host.pub"
cp "$W/host.pub" "$W/user.pub"; cp "$W/host" "$W/user"
ssh-keygen -q -s "$W/ssh_ca" -I user1 -n alice -V -5m:+1h "$W/user.pub"
# X.509: a CA and a leaf with a SPIFFE-style URI SAN
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/xca.key" -out "$W/xca.pem" -days 30 -subj "/CN=x509pop CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/leaf.key" -out "$W/leaf.csr" -subj "/CN=agent-1" 2>/dev/null
printf 'subjectAltName=URI:spiffe://example.org/host/agent-1\n' > "$W/leaf.ext"
openssl x509 -req -in "$W/leaf.csr" -CA "$W/xca.pem" -CAkey "$W/xca.key" -CAcreateserial -days 5 -extfile "$W/leaf.ext" -out "$W/leaf.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/fca.key" -out "$W/fca.pem" -days 30 -subj "/CN=foreign CA" 2>/dev/null
openssl x509 -req -in "$W/leaf.csr" -CA "$W/fca.pem" -CAkey "$W/fca.key" -CAcreateserial -days 5 -out "$W/leaf-foreign.pem" 2>/dev/null

ind() { sed 's/^/              /' "$1"; }	# a PEM file as a YAML block scalar body
cat > "$W/policy.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: eks_cluster_policy
      requiredAttestors:
        - type: k8s_token
          config:
            issuerURL: $ISS
            allowedNamespaces: [ci]
        - type: aws_iid
          config:
            certificates: |
$(ind "$W/aws.pem")
    - name: ssh_policy
      requiredAttestors:
        - type: ssh_pop
          config:
            certAuthorities:
              - "$(cat "$W/ssh_ca.pub")"
    - name: pki_policy
      requiredAttestors:
        - type: x509pop
          config:
            caBundle: |
$(ind "$W/xca.pem")
EOF
put_policy c1 "$W/policy.yaml"
expect 200 "the seed-shaped document (AND + OR) is stored as version 1" \
	'.version == 1 and .cluster_id == "c1" and (.document.spec.policies | length) == 3'
admin GET /api/v1/clusters/c1/config/AgentAttestation
expect 200 "GET returns the YAML as sent and the parsed document" \
	'.version == 1 and (.yaml | startswith("section: AgentAttestation")) and .document.spec.policies[1].name == "ssh_policy"'

# ---- k8s_token + aws_iid (AND) ----------------------------------------------
attest c1 "{\"k8s_token\":{\"token\":\"$K8S_OK\"}}"
expect 403 "AND: k8s_token alone does not satisfy eks_cluster_policy" \
	'(.failures | map(select(.policy == "eks_cluster_policy")) | .[0] | .type == "aws_iid" and .attestor == 1 and (.reason | startswith("missing evidence")))'
attest c1 "{\"k8s_token\":{\"token\":\"$K8S_OK\"},\"aws_iid\":$IID_EV}"
expect 200 "AND: k8s_token + aws_iid pass eks_cluster_policy" \
	'.policy == "eks_cluster_policy" and .attributes["k8s_token.namespace"] == "ci" and .attributes["k8s_token.service_account"] == "runner" and .attributes["aws_iid.account_id"] == "123456789012" and .attributes["aws_iid.region"] == "eu-west-1"'
TOKEN=$(jget .token); SID=$(jget .session_id)
check "the identity is a SPIFFE ID under the trust domain" test "$(jget .spiffe_id)" = "spiffe://example.org/agent/c1/eks_cluster_policy/$SID"
k8s_neg() { # DESC TOKEN REASON-REGEX
	attest c1 "{\"k8s_token\":{\"token\":\"$2\"},\"aws_iid\":$IID_EV}"
	expect 403 "$1" "(.failures[0] | .type == \"k8s_token\" and (.reason | test(\"$3\")))"
}
k8s_neg "k8s_token: another audience" "$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims "$(k8s_claims ci other)")" '^invalid token'
k8s_neg "k8s_token: expired" "$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims "$(k8s_claims ci attestation $((NOW - 3600)))")" '^invalid token'
k8s_neg "k8s_token: signed by another key (same kid)" "$("$JWTMINT" sign --key "$W/evil.key" --kid k1 --alg RS256 --claims "$(k8s_claims ci)")" '^invalid token'
k8s_neg "k8s_token: alg none" "$("$JWTMINT" sign --alg none --claims "$(k8s_claims ci)")" '^invalid token'
k8s_neg "k8s_token: namespace not allowed" "$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims "$(k8s_claims prod)")" '^service account not allowed'
k8s_neg "k8s_token: not a JWT" "garbage" '^invalid token'
attest c1 "{\"k8s_token\":{\"token\":\"$K8S_OK\"},\"aws_iid\":{\"document\":$(jstr "$W/iid.json"),\"signature\":\"$(b64 "$W/iid-evil.p7")\"}}"
expect 403 "aws_iid: signed by another certificate" '.failures[0] | .type == "aws_iid" and (.reason | startswith("bad signature"))'
sed 's/123456789012/999999999999/' "$W/iid.json" > "$W/iid-t.json"
attest c1 "{\"k8s_token\":{\"token\":\"$K8S_OK\"},\"aws_iid\":{\"document\":$(jstr "$W/iid-t.json"),\"signature\":\"$(b64 "$W/iid.p7")\"}}"
expect 403 "aws_iid: tampered document" '.failures[0] | .type == "aws_iid" and (.reason | startswith("bad signature"))'
attest c1 "{\"k8s_token\":{\"token\":\"$K8S_OK\"},\"aws_iid\":{\"document\":\"x\",\"signature\":\"!!!\"}}"
expect 403 "aws_iid: a signature that is not PKCS#7" '.failures[0].reason | startswith("malformed evidence")'

# ---- ssh_pop (OR) -------------------------------------------------------------
ssh_ev() { # CERT-FILE KEY-FILE: sign the pop message of the current nonce
	popmsg ssh_pop "$W/msg"; rm -f "$W/msg.sig"
	ssh-keygen -q -Y sign -f "$2" -n "${3:-attestation-agent}" "$W/msg" 2>/dev/null
	SSH_EV="{\"certificate\":$(jstr "$1"),\"signature\":$(jstr "$W/msg.sig")}"
}
challenge; ssh_ev "$W/host-cert.pub" "$W/host"
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 200 "OR: ssh_pop alone satisfies ssh_policy" \
	'.policy == "ssh_policy" and .attributes["ssh_pop.serial"] == "77" and .attributes["ssh_pop.key_id"] == "host1" and (.attributes["ssh_pop.principals"] | index("host1.example.org")) != null'
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 409 "ssh_pop: a replayed nonce is refused" '.detail | test("replay")'
challenge; attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: a signature over another nonce" '.failures[1] | .type == "ssh_pop" and (.reason | startswith("bad signature"))'
attest c1 "{\"ssh_pop\":$SSH_EV}"
expect 403 "ssh_pop: no nonce" '.failures[1].reason | startswith("nonce required")'
challenge; ssh_ev "$W/user-cert.pub" "$W/user"
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: a user certificate is not a host certificate" '.failures[1].reason | startswith("not a host certificate")'
ssh-keygen -q -s "$W/ssh_ca2" -I host1 -h -n host1 -V -5m:+1h "$W/host.pub"
challenge; ssh_ev "$W/host-cert.pub" "$W/host"
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: a certificate from another CA" '.failures[1].reason | startswith("untrusted certificate")'
ssh-keygen -q -s "$W/ssh_ca" -I host1 -h -n host1 -V 20200101:20200201 "$W/host.pub"
challenge; ssh_ev "$W/host-cert.pub" "$W/host"
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: an expired certificate" '.failures[1].reason | startswith("expired certificate")'
ssh-keygen -q -s "$W/ssh_ca" -I host1 -h -n host1 -V -5m:+1h "$W/host.pub"
challenge; ssh_ev "$W/host-cert.pub" "$W/host" other-namespace
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: a signature in another namespace" '.failures[1].reason | startswith("wrong namespace")'
challenge; ssh_ev "$W/host-cert.pub" "$W/ssh_ca"
attest c1 "{\"ssh_pop\":$SSH_EV}" nonce
expect 403 "ssh_pop: signed by a key other than the certified one" '.failures[1].reason | startswith("wrong key")'

# ---- x509pop ------------------------------------------------------------------
x509_ev() { # CHAIN-FILE KEY-FILE
	popmsg x509pop "$W/msg"
	openssl dgst -sha256 -sign "$2" -out "$W/msg.sig" "$W/msg"
	X509_EV="{\"certificate_chain\":$(jstr "$1"),\"signature\":\"$(b64 "$W/msg.sig")\"}"
}
challenge; x509_ev "$W/leaf.pem" "$W/leaf.key"
attest c1 "{\"x509pop\":$X509_EV}" nonce
expect 200 "x509pop: chain to caBundle + signature over the nonce" \
	'.policy == "pki_policy" and .attributes["x509pop.uri_sans"] == ["spiffe://example.org/host/agent-1"] and (.attributes["x509pop.subject"] | test("agent-1"))'
challenge; x509_ev "$W/leaf-foreign.pem" "$W/leaf.key"
attest c1 "{\"x509pop\":$X509_EV}" nonce
expect 403 "x509pop: a certificate from a foreign CA" '.failures[2].reason | startswith("untrusted certificate")'
challenge; x509_ev "$W/leaf.pem" "$W/fca.key"
attest c1 "{\"x509pop\":$X509_EV}" nonce
expect 403 "x509pop: signature by another key" '.failures[2].reason | startswith("bad signature")'

# ---- the identity token ---------------------------------------------------------
api GET /api/v1/agents/jwks
expect 200 "the JWK set that signs identities is public" '.keys[0].kty == "EC" and .keys[0].crv == "P-384" and .keys[0].alg == "ES384"'
KID=$(jget '.keys[0].kid')
payload() { printf '%s' "$1" | cut -d. -f"$2" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d; }
check "token header: ES384 with the JWK's kid" sh -c "test \"\$(printf '%s' '$(payload "$TOKEN" 1)' | jq -r '.alg + \" \" + .kid')\" = 'ES384 $KID'"
CL=$(payload "$TOKEN" 2)
check "token claims: sub, aud, jti, cluster, policy, attrs, 600 s life" sh -c "printf '%s' '$CL' | jq -e '.sub == \"spiffe://example.org/agent/c1/eks_cluster_policy/$SID\" and .aud == \"attestation-agent\" and .jti == \"$SID\" and .cluster == \"c1\" and .attrs[\"k8s_token.pod_name\"] == \"runner-0\" and (.exp - .iat) == 600' >/dev/null"
# verify the ES384 signature with openssl and the CA's public key (raw r||s -> DER)
printf '%s' "$TOKEN" | cut -d. -f1,2 | tr -d '\n' > "$W/jws.in"
printf '%s' "$TOKEN" | cut -d. -f3 | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d > "$W/jws.raw"
python3 - "$W/jws.raw" "$W/jws.der" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(raw[:48]) + integer(raw[48:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
openssl x509 -in "$DATA/ca/enrollment-ca.crt" -pubkey -noout > "$W/ca.pub"
check "the token's signature verifies under the enrollment CA key (openssl)" \
	sh -c "openssl dgst -sha384 -verify '$W/ca.pub' -signature '$W/jws.der' '$W/jws.in' >/dev/null"

# ---- sessions, audit ---------------------------------------------------------------
admin GET "/api/v1/agents?cluster_id=c1"
expect 200 "sessions: every issued identity, newest first" \
	".total == 3 and .sessions[0].policy == \"pki_policy\" and (.sessions | map(.session_id) | index(\"$SID\")) != null"
api GET /api/v1/agents
expect 401 "sessions are for operators"
check "audit: policy set, identities issued, refusals that spent a nonce" test \
	"$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'agent_policy_set'"):$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'agent_attested'"):$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'agent_attest_refused'" | awk '{print ($1 >= 8)}')" = "1:3:1"

# ---- JWT attestors with inline keys: gcp_iit, azure_msi, aws_token ---------------
JWK=$("$JWTMINT" jwk --key "$W/k8s.key" --kid g1)
JWKS_JSON=$(printf '{"keys":[%s]}' "$JWK" | jq -Rs .)
cat > "$W/clouds.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: gcp
      requiredAttestors:
        - type: gcp_iit
          config: {audience: "https://attest.test", projectIDs: [proj-1], jwks: $JWKS_JSON}
    - name: azure
      requiredAttestors:
        - type: azure_msi
          config: {tenantID: t-1, jwks: $JWKS_JSON}
    - name: aws
      requiredAttestors:
        - type: aws_token
          config: {issuerURL: "https://sts.example", audience: attest, accounts: ["1111"], jwks: $JWKS_JSON}
EOF
put_policy clouds "$W/clouds.yaml"
expect 200 "cloud JWT attestors with inline JWK sets"
sign() { "$JWTMINT" sign --key "$W/k8s.key" --kid g1 --alg RS256 --claims "$1"; }
GCP=$(sign "{\"iss\":\"https://accounts.google.com\",\"aud\":\"https://attest.test\",\"iat\":$NOW,\"exp\":$((NOW + 600)),\"email\":\"sa@proj-1.iam\",\"google\":{\"compute_engine\":{\"project_id\":\"proj-1\",\"zone\":\"europe-west4-a\",\"instance_id\":\"42\",\"instance_name\":\"vm-1\"}}}")
attest clouds "{\"gcp_iit\":{\"token\":\"$GCP\"}}"
expect 200 "gcp_iit: project, zone, instance" '.policy == "gcp" and .attributes["gcp_iit.zone"] == "europe-west4-a" and .attributes["gcp_iit.instance_name"] == "vm-1"'
GCP2=$(sign "{\"iss\":\"https://accounts.google.com\",\"aud\":\"https://attest.test\",\"iat\":$NOW,\"exp\":$((NOW + 600)),\"google\":{\"compute_engine\":{\"project_id\":\"proj-2\"}}}")
attest clouds "{\"gcp_iit\":{\"token\":\"$GCP2\"}}"
expect 403 "gcp_iit: project not allowed" '.failures[0].reason | startswith("project not allowed")'
AZ=$(sign "{\"iss\":\"https://sts.windows.net/t-1/\",\"aud\":\"https://management.azure.com/\",\"iat\":$NOW,\"exp\":$((NOW + 600)),\"tid\":\"t-1\",\"oid\":\"obj-1\",\"sub\":\"obj-1\",\"xms_mirid\":\"/subscriptions/s/rg/vm\"}")
attest clouds "{\"azure_msi\":{\"token\":\"$AZ\"}}"
expect 200 "azure_msi: tenant and principal" '.policy == "azure" and .attributes["azure_msi.principal_id"] == "obj-1" and .attributes["azure_msi.tenant_id"] == "t-1"'
AZ2=$(sign "{\"iss\":\"https://sts.windows.net/t-2/\",\"aud\":\"https://management.azure.com/\",\"iat\":$NOW,\"exp\":$((NOW + 600)),\"tid\":\"t-2\"}")
attest clouds "{\"azure_msi\":{\"token\":\"$AZ2\"}}"
expect 403 "azure_msi: another tenant's token" '.failures[1].reason | startswith("invalid token")'
AWS=$(sign "{\"iss\":\"https://sts.example\",\"aud\":\"attest\",\"sub\":\"arn:aws:iam::1111:role/r\",\"iat\":$NOW,\"exp\":$((NOW + 600)),\"https://sts.amazonaws.com/\":{\"aws_account\":\"1111\",\"org_id\":\"o-1\"}}")
attest clouds "{\"aws_token\":{\"token\":\"$AWS\"}}"
expect 200 "aws_token: account and org" '.policy == "aws" and .attributes["aws_token.account"] == "1111" and .attributes["aws_token.org_id"] == "o-1"'

# ---- azure_imds, http_dns, extension -----------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/azroot.key" -out "$W/azroot.pem" -days 30 -subj "/CN=Azure root stand-in" \
	-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$W/azleaf.key" -out "$W/azleaf.csr" -subj "/CN=metadata.azure.com" 2>/dev/null
openssl x509 -req -in "$W/azleaf.csr" -CA "$W/azroot.pem" -CAkey "$W/azroot.key" -CAcreateserial -days 5 -out "$W/azleaf.pem" 2>/dev/null
cat > "$W/other.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: azure_vm
      requiredAttestors:
        - type: azure_imds
          config:
            subscriptions: [sub-1]
            certificates: |
$(ind "$W/azroot.pem")
    - name: dns
      requiredAttestors:
        - type: http_dns
          config: {allowedDomains: [localhost], port: $SP, allowPrivate: true}
    - name: dns_strict
      requiredAttestors:
        - type: http_dns
          config: {allowedDomains: [localhost], port: $SP}
    - name: ext
      requiredAttestors:
        - type: extension
          config: {url: "http://127.0.0.1:$SP/decide"}
EOF
put_policy other "$W/other.yaml"
expect 200 "azure_imds, http_dns and extension policies"
imds() { # NONCE10 EXPIRES: signed attested data
	printf '{"nonce":"%s","plan":{},"timeStamp":{"createdOn":"12/01/26 10:00:00 -0000","expiresOn":"%s"},"vmId":"vm-42","subscriptionId":"sub-1","sku":"22_04-lts"}' "$1" "$2" > "$W/imds.json"
	openssl smime -sign -binary -nodetach -in "$W/imds.json" -signer "$W/azleaf.pem" -inkey "$W/azleaf.key" -outform DER -out "$W/imds.p7" 2>/dev/null
	IMDS_EV="{\"signature\":\"$(b64 "$W/imds.p7")\"}"
}
nonce10() { printf '%s' "$NONCE" | base64 -d | head -c 8 | python3 -c 'import sys; print("%010d" % (int.from_bytes(sys.stdin.buffer.read(), "big") % 10**10))'; }
FUT=$(date -u -d '+1 hour' '+%m/%d/%y %H:%M:%S -0000')
challenge; imds "$(nonce10)" "$FUT"
attest other "{\"azure_imds\":$IMDS_EV}" nonce
expect 200 "azure_imds: attested data with this request's nonce" '.policy == "azure_vm" and .attributes["azure_imds.vm_id"] == "vm-42"'
challenge; imds "0000000001" "$FUT"
attest other "{\"azure_imds\":$IMDS_EV}" nonce
expect 403 "azure_imds: attested data made for another nonce" '.failures[0].reason | startswith("wrong nonce")'
challenge; imds "$(nonce10)" "$(date -u -d '-1 hour' '+%m/%d/%y %H:%M:%S -0000')"
attest other "{\"azure_imds\":$IMDS_EV}" nonce
expect 403 "azure_imds: expired attested data" '.failures[0].reason | startswith("expired")'
challenge
printf '%s' "$NONCE" > "$W/srv/.well-known/attestation-agent/$NID"
attest other '{"http_dns":{"hostname":"localhost"}}' nonce
expect 200 "http_dns: the named host serves the nonce" '.policy == "dns" and .attributes["http_dns.hostname"] == "localhost"'
challenge
attest other '{"http_dns":{"hostname":"localhost"}}' nonce
expect 403 "http_dns: the host does not serve this nonce" '.failures[1].reason | startswith("challenge not served")'
check "http_dns: without allowPrivate a loopback address is refused" sh -c "printf '%s' '$BODY' | jq -e '.failures[2].reason | startswith(\"address refused\")' >/dev/null"
challenge; attest other '{"http_dns":{"hostname":"evil.example.com"}}' nonce
expect 403 "http_dns: a hostname outside allowedDomains" '.failures[1].reason | startswith("hostname not allowed")'
printf '{"allow":true,"attributes":{"team":"ci","nested":{"x":1}}}' > "$W/srv/decide.json"
attest other '{"extension":{"runner":"r-1"}}'
expect 200 "extension: the webhook allows and adds attributes" '.policy == "ext" and .attributes["extension.team"] == "ci" and (.attributes | has("extension.nested") | not)'
check "extension: the webhook received the evidence and cluster" sh -c "jq -e '.cluster_id == \"other\" and .evidence.runner == \"r-1\" and .nonce_id == null' '$W/srv/decide.req' >/dev/null"
printf '{"allow":false,"reason":"not on the list"}' > "$W/srv/decide.json"
attest other '{"extension":{"runner":"r-2"}}'
expect 403 "extension: the webhook denies" '.failures[3].reason | startswith("denied by extension")'
printf 'not json' > "$W/srv/decide.json"
attest other '{"extension":{"runner":"r-2"}}'
expect 403 "extension: a webhook answering garbage denies" '.failures[3].reason | startswith("extension failed")'

# ---- tpm_ek (swtpm) -----------------------------------------------------------------
tpm_manufacture A
tpm_use A; tpm_ek ecc; tpm_ak ecc ak
api POST /api/v1/register "$(node_body)"; MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"tpm-node"}' >/dev/null
api POST /api/v1/attest "$(node_body)"
expect 200 "tpm_ek: the machine attests"
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
ACT=$(jget .activation_id); jget .credential_blob | base64 -d > "$TW/cred.blob"
tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
expect 200 "tpm_ek: the machine's AK is bound"
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: metal\n      requiredAttestors:\n        - type: tpm_ek\n' > "$W/tpm.yaml"
put_policy metal "$W/tpm.yaml"
expect 200 "tpm_ek needs no config"
tpm_ev() { TPM_EV="{\"machine_id\":\"$1\",\"quote\":\"$(b64 "$TW/quote.msg")\",\"signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON}"; }
challenge; tpm_quote ak "$(printf '%s' "$NONCE" | base64 -d | od -An -v -tx1 | tr -d ' \n')" sha256:0,7; tpm_ev "$MID"
attest metal "{\"tpm_ek\":$TPM_EV}" nonce
expect 200 "tpm_ek: a quote by the bound AK over the nonce" \
	".policy == \"metal\" and .attributes[\"tpm_ek.machine_id\"] == \"$MID\" and .attributes[\"tpm_ek.fingerprint\"] == \"$EK_FP\" and .attributes[\"tpm_ek.status\"] == \"attested\""
challenge; attest metal "{\"tpm_ek\":$TPM_EV}" nonce
expect 403 "tpm_ek: an old quote against a new nonce" '.failures[0].reason | startswith("quote refused")'
admin POST "/api/v1/machines/$MID/lock" '{"reason":"test"}' >/dev/null
challenge; tpm_quote ak "$(printf '%s' "$NONCE" | base64 -d | od -An -v -tx1 | tr -d ' \n')" sha256:0,7; tpm_ev "$MID"
attest metal "{\"tpm_ek\":$TPM_EV}" nonce
expect 403 "tpm_ek: a locked machine" '.failures[0].reason | startswith("machine state not allowed")'

# ---- the CLI (seed 004: config set cluster --id <cluster-id> attestation-policy.yaml) ----
cli() { ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN ATTESTATION_CACHE_DIR="$TMP/cli-cache" "$ATTESTATION_CLI" "$@"; }
OUT=$(cli config set cluster --id cli1 "$W/tpm.yaml" 2>&1); rc=$?
check "cli: config set stores a version" sh -c "[ $rc = 0 ] && printf '%s' '$OUT' | grep -q 'Cluster cli1: AgentAttestation version 1 stored (1 policies)'"
cli config get cluster --id cli1 > "$W/got.yaml" 2>&1
check "cli: config get prints the document as it was sent" cmp -s "$W/got.yaml" "$W/tpm.yaml"
OUT=$(cli config set cluster --id cli1 "$W/bad.yaml" 2>&1); rc=$?
check "cli: a refused document exits 7 and names the problem" sh -c "[ $rc = 7 ] && printf '%s' '$OUT' | grep -q 'larger than 65536 bytes'"
cli config set cluster --id cli1 "$W/nonexistent.yaml" >/dev/null 2>&1; rc=$?
check "cli: an unreadable file exits 1" test "$rc" = 1
cli config set cluster "$W/tpm.yaml" >/dev/null 2>&1; rc=$?
check "cli: config set without --id is a usage error" test "$rc" = 2
cli config set cluster --id cli1 - < "$W/tpm.yaml" >/dev/null 2>&1
OUT=$(cli --output json config history cluster --id cli1)
check "cli: config history (--output json)" sh -c "printf '%s' '$OUT' | jq -e '.versions | map(.version) == [2, 1]' >/dev/null"
cli config get cluster --id cli1 --version 9 >/dev/null 2>&1; rc=$?
check "cli: an unknown version exits 5" test "$rc" = 5
OUT=$(cli agents list --cluster c1)
check "cli: agents list shows sessions with policy and attributes" sh -c "printf '%s' '$OUT' | grep -q 'eks_cluster_policy' && printf '%s' '$OUT' | grep -q 'aws_iid.account_id=123456789012' && printf '%s' '$OUT' | grep -q '3 session(s) in all'"
cli agents list --per-page 500 >/dev/null 2>&1; rc=$?
check "cli: agents list --per-page 500 is a usage error" test "$rc" = 2
OUT=$(cli config delete cluster --id cli1)
check "cli: config delete" sh -c "printf '%s' '$OUT' | grep -q 'AgentAttestation deleted'"
for c in "config" "config set" "config get" "agents" "agents list"; do
	# shellcheck disable=SC2086
	cli $c --help 2>&1 | grep -q "Usage: attestation" || fail "--help for '$c'"
done
pass "cli: --help for config and agents"

# ---- hot apply on a second replica ------------------------------------------------------
SHARED_DB_URL=$DB_URL; A_PID=$ATTESTD_PID; A_DATA=$DATA
start_attestd ITL_AGENT_TRUST_DOMAIN=example.org; B_BASE=$BASE; B_PID=$ATTESTD_PID
BASE=$A_BASE
printf 'section: AgentAttestation\nschema: v1\nspec:\n  policies:\n    - name: ext_only\n      requiredAttestors:\n        - type: extension\n          config: {url: "http://127.0.0.1:%s/decide"}\n' "$SP" > "$W/v2.yaml"
printf '{"allow":true}' > "$W/srv/decide.json"
put_policy c1 "$W/v2.yaml"
expect 200 "a new version on replica A" '.version == 2'
BASE=$B_BASE
attest c1 '{"extension":{}}'
expect 200 "replica B applies it at once, without a restart" '.policy == "ext_only"'
BASE=$A_BASE
admin GET /api/v1/clusters/c1/config/AgentAttestation/versions
expect 200 "versions: newest first" '.versions | map(.version) == [2, 1]'
admin GET "/api/v1/clusters/c1/config/AgentAttestation?version=1"
expect 200 "an old version stays readable" '.version == 1 and .document.spec.policies[0].name == "eks_cluster_policy"'
admin DELETE /api/v1/clusters/c1/config/AgentAttestation
expect 200 "DELETE records a deletion"
admin GET /api/v1/clusters/c1/config/AgentAttestation
expect 404 "after deletion the cluster has no document"
attest c1 '{"extension":{}}'
expect 403 "and agents of it are refused" '.detail | test("no agent attestation policy")'
admin DELETE /api/v1/clusters/c1/config/AgentAttestation
expect 404 "deleting twice: 404"

# ---- bad input -----------------------------------------------------------------------------
api POST /api/v1/agents/attest '{"cluster_id":"other"}'
expect 422 "no evidence: 422" '.detail | test("evidence")'
api POST /api/v1/agents/attest '{"cluster_id":"other","evidence":[]}'
expect 422 "evidence of the wrong type: 422"
api POST /api/v1/agents/attest '{"cluster_id":"other","evidence":{}}'
expect 422 "empty evidence: 422"
api POST /api/v1/agents/attest '{"cluster_id":"Bad!","evidence":{"x":{}}}'
expect 422 "a malformed cluster id: 422"
api POST /api/v1/agents/attest '{"cluster_id":"other","evidence":{"extension":1}}'
expect 403 "evidence for an attestor that is not an object" '.failures[3].reason | startswith("malformed evidence")'
api POST /api/v1/agents/attest '{"cluster_id":"other","nonce_id":"nope","evidence":{"extension":{}}}'
expect 422 "an unknown nonce_id: 422"
api POST /api/v1/agents/attest '{"evidence":{"x":{}'
expect 422 "malformed JSON: 422"
printf '{"evidence":{"k8s_token":{"token":"%s"}}}' "$(head -c 1100000 /dev/zero | tr '\0' a)" > "$W/huge.json"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$W/huge.json" "$BASE/api/v1/agents/attest")
check "an oversized body: 413" test "$STATUS" = 413
api POST /api/v1/agents/attest '{"cluster_id":"nobody","evidence":{"x":{}}}'
expect 403 "a cluster without a policy: 403" '.detail | test("no agent attestation policy")'

kill "$B_PID" 2>/dev/null; wait "$B_PID" 2>/dev/null; PIDS=$(echo "$PIDS" | sed "s/ $B_PID//")
ATTESTD_PID=$A_PID; DATA=$A_DATA
done_testing
