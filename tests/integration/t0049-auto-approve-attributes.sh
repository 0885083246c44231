#!/bin/sh
# Auto-approval by agent identity attributes (docs/auto-approval.md):
# a k8s_token agent (projected-SA-like JWTs signed by a local key behind
# a local discovery/JWKS server, as in t0027) attests, then registers a
# machine with the identity it was issued; rules match the identity's
# attributes, policy and cluster.  Refused identities (forged, expired,
# other issuer/audience, alg none, replayed, bound to another EK) leave
# the machine pending with the reason audited; rule validation; hourly
# limit; dual-control roles never; attest-agent --agent-identity (swtpm).
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

RULES=$TMP/rules.json
rules() { printf '%s' "$1" > "$RULES"; }
refuses() { # DESC PATTERN [VAR=value ...]: attestd does not start and says why
	desc=$1; pat=$2; shift 2
	d=$(mktemp -d "$TMP/refuse.XXXXXX")
	if env ITL_DB_URL="sqlite:///$d/m.db" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_DUAL_CONTROL_ROLES=controlplane "$@" \
		"$ATTESTD" --listen 127.0.0.1:0 >"$d/log" 2>&1; then fail "$desc" "attestd started"
	else check "$desc" grep -q "$pat" "$d/log"; fi
}

say "--- rules with identity matchers that must not load"
rules '{"rules":[{"name":"x","match":{"attributes":{"namespace":"ci"}},"approve":{"role":"worker-app"}}]}'
refuses "an attribute matcher without <attestor type>. names the path" \
	"rule 'x' match.attributes.namespace: not <attestor type>.<attribute>" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"attributes":{"k8s.namespace":"ci"}},"approve":{"role":"worker-app"}}]}'
refuses "an attribute matcher of an unknown attestor type" "match.attributes.k8s.namespace: not" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"attributes":{"k8s_token.namespace":["ci"]}},"approve":{"role":"worker-app"}}]}'
refuses "an attribute matcher that is not a string" "match.attributes.k8s_token.namespace: a non-empty string" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"attributes":{"k8s_token.namespace":"ci"},"claims":{}},"approve":{"role":"worker-app"}}]}'
refuses "an unknown match key next to attributes" "unknown field 'claims'" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"policy":42},"approve":{"role":"worker-app"}}]}'
refuses "policy must be a string" "match.policy: a non-empty string" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"cp","match":{"attributes":{"k8s_token.namespace":"ci"}},"approve":{"role":"controlplane"}}]}'
refuses "an identity rule approving a dual-control role refuses the start" "is under dual control" ITL_AUTO_APPROVE_RULES_FILE="$RULES"

say "--- a k8s_token agent policy and identity rules"
rules '{"rules":[
 {"name":"ci-k8s","match":{"policy":"k8s","cluster":"c1",
   "attributes":{"k8s_token.namespace":"ci","k8s_token.service_account":"runner"}},
   "approve":{"role":"worker-app","hostname":"ci-{id8}"},"max_per_hour":100},
 {"name":"batch","match":{"attributes":{"k8s_token.namespace":"batch"}},"approve":{"role":"worker-app"},"max_per_hour":1}]}'
start_attestd ITL_AUTO_APPROVE_RULES_FILE="$RULES" ITL_DUAL_CONTROL_ROLES=controlplane ITL_AGENT_TOKEN_TTL_SECONDS=600
check "the rules are loaded" grep -q "Auto-approval: 2 rule(s)" "$DATA/attestd.log"
W="$TMP/w"; mkdir -p "$W/srv/k8s/.well-known"
python3 "$SRCDIR/tests/helpers/agent-stub.py" "$W/srv" "$W/port" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$W/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
ISS="http://127.0.0.1:$(cat "$W/port")/k8s"
NOW=$(date +%s)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/k8s.key" 2>/dev/null
printf '{"keys":[%s]}' "$("$JWTMINT" jwk --key "$W/k8s.key" --kid k1)" > "$W/srv/k8s/jwks.json"
printf '{"issuer":"%s","jwks_uri":"%s/jwks.json"}' "$ISS" "$ISS" > "$W/srv/k8s/.well-known/openid-configuration"
cat > "$W/policy.yaml" <<EOF
section: AgentAttestation
schema: v1
spec:
  policies:
    - name: k8s
      requiredAttestors:
        - type: k8s_token
          config:
            issuerURL: $ISS
            allowedNamespaces: [ci, prod, batch]
EOF
put_policy() {
	STATUS=$(curl -sS -o "$TMP/resp.body" -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" \
		-H "Content-Type: application/yaml" --data-binary @"$W/policy.yaml" "$BASE/api/v1/clusters/c1/config/AgentAttestation")
	BODY=$(cat "$TMP/resp.body")
	expect 200 "the cluster's agent policy is stored"
}
put_policy
# agent NAMESPACE: attest as a pod in NAMESPACE; sets IDT (the identity token) and SID
agent() {
	claims=$(printf '{"iss":"%s","sub":"system:serviceaccount:%s:runner","aud":["attestation"],"iat":%s,"exp":%s,"kubernetes.io":{"namespace":"%s","serviceaccount":{"name":"runner","uid":"u-1"},"pod":{"name":"runner-0","uid":"p-1"},"node":{"name":"n1","uid":"n-1"}}}' \
		"$ISS" "$1" "$NOW" $((NOW + 600)) "$1")
	sa=$("$JWTMINT" sign --key "$W/k8s.key" --kid k1 --alg RS256 --claims "$claims")
	api POST /api/v1/agents/attest "{\"cluster_id\":\"c1\",\"evidence\":{\"k8s_token\":{\"token\":\"$sa\"}}}"
	IDT=$(jget .token); SID=$(jget .session_id)
}
# reg ENDPOINT NAME [IDENTITY]: register a new machine (new EK NAME); sets MID
reg() {
	make_ek "$2"
	if [ -n "${3:-}" ]; then extra=",\"hw_product\":\"Virtual Machine\",\"agent_identity\":\"$3\""
	else extra=',"hw_product":"Virtual Machine"'; fi
	api POST "/api/v1/$1" "$(node_body "$extra")"
	MID=$(jget .machine_id)
}
audits() { sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$1' AND action='$2' AND detail LIKE '$3'"; }

agent ci
expect 200 "the agent in namespace ci attests (policy k8s)" '.policy == "k8s" and .attributes["k8s_token.namespace"] == "ci"'
CI_IDT=$IDT; CI_SID=$SID
reg self-register r1 "$CI_IDT"
expect 200 "a machine presenting the ci identity is approved at once" '.status == "registered"'
M1=$MID
admin GET "/api/v1/machines/$M1"
expect 200 "with the rule's role and naming pattern" ".status == \"registered\" and .role == \"worker-app\" and .hostname == \"ci-$(echo "$M1" | cut -c1-8)\""
check "audited as AUTO_APPROVE:ci-k8s with the identity's jti, SPIFFE ID, policy and attributes" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$M1' AND operator_cn='AUTO_APPROVE:ci-k8s' AND new_state='registered' AND detail LIKE '%jti=$CI_SID sub=spiffe://%/agent/c1/k8s/$CI_SID%' AND detail LIKE '%policy=k8s k8s_token.namespace=\"ci\" k8s_token.service_account=\"runner\"%'")" = 1
check "the identity's use is recorded" test "$(sql "SELECT machine_id || ':' || rule FROM agent_identity_uses WHERE jti='$CI_SID'")" = "$M1:ci-k8s"
check "a node.provisioned event as for an operator's approval" test "$(sql "SELECT COUNT(*) FROM outbox_events WHERE machine_id='$M1' AND event='node.provisioned'")" = 1

say "--- the same identity again, and other agents"
reg self-register r2 "$CI_IDT"
expect 200 "a replayed identity does not approve a second machine" '.status == "pending_approval"'
check "the replay is recorded and audited" test "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$MID'"):$(audits "$MID" auto_approve_identity_refused "%jti=$CI_SID was already used (machine $M1)%")" = "refused:1"
agent ci
RACE_SID=$SID
for n in 1 2 3 4 5 6; do
	make_ek race$n
	node_body ",\"agent_identity\":\"$IDT\"" > "$W/race$n.json"
done
RACERS=""
for n in 1 2 3 4 5 6; do
	curl -sS -o "$W/race$n.out" -H 'Content-Type: application/json' --data-binary @"$W/race$n.json" "$BASE/api/v1/self-register" &
	RACERS="$RACERS $!"
done
for p in $RACERS; do wait "$p"; done
check "six machines racing with one identity: exactly one approved" \
	test "$(cat "$W"/race?.out | jq -r .status | sort | uniq -c | tr -s ' ' | tr '\n' ,)" = " 5 pending_approval, 1 registered,"
check "... and one use recorded" test "$(sql "SELECT COUNT(*) FROM agent_identity_uses WHERE jti='$RACE_SID'")" = 1
agent ci
reg register r3 "$IDT"
expect 200 "a fresh ci identity on POST /register is approved too" '.status == "registered"'
agent prod
expect 200 "the agent in namespace prod attests" '.attributes["k8s_token.namespace"] == "prod"'
reg self-register r4 "$IDT"
expect 200 "namespace prod matches no rule: pending" '.status == "pending_approval"'
check "an unused identity is not consumed" test "$(sql "SELECT COUNT(*) FROM agent_identity_uses WHERE jti='$SID'")" = 0
reg self-register r5
expect 200 "no identity: pending" '.status == "pending_approval"'
check "nothing about an identity is audited for it" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID' AND action LIKE 'auto_approve%'")" = 0

say "--- identities the service did not issue as presented"
CAKEY="$DATA/ca/enrollment-ca.key"
api GET /api/v1/agents/jwks
KID=$(jget '.keys[0].kid')
# idclaims [ISS] [AUD] [EXP] [EXTRA-ATTRS]: identity claims as identity.c writes them, fresh jti
idclaims() {
	jti=$(cat /proc/sys/kernel/random/uuid)
	printf '{"iss":"%s","sub":"spiffe://attest.local/agent/c1/k8s/%s","aud":"%s","iat":%s,"nbf":%s,"exp":%s,"jti":"%s","cluster":"c1","policy":"k8s","attrs":{"k8s_token.namespace":"ci","k8s_token.service_account":"runner"%s}}' \
		"${1:-http://attest.test}" "$jti" "${2:-attestation-agent}" "$NOW" "$NOW" "${3:-$((NOW + 600))}" "$jti" "${4:-}"
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/evil.key" 2>/dev/null
refused() { # DESC TOKEN AUDIT-LIKE
	reg self-register "n$(date +%s%N)" "$2"
	if [ "$STATUS" = 200 ] && [ "$(jget .status)" = pending_approval ] && [ "$(audits "$MID" auto_approve_identity_refused "$3")" = 1 ]; then
		pass "$1"
	else fail "$1" "status $STATUS $(jget .status); audit: $(sql "SELECT detail FROM audit_log WHERE machine_id='$MID'")"; fi
}
GOOD=$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --typ JWT --claims "$(idclaims)")
refused "signed by another key (the CA's kid): pending, 'bad signature' audited" \
	"$("$JWTMINT" sign --key "$W/evil.key" --kid "$KID" --alg ES384 --claims "$(idclaims)")" '%not accepted: bad signature%'
refused "expired: pending, audited" \
	"$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "$(idclaims '' '' $((NOW - 120)))")" '%token expired%'
refused "another issuer: pending, audited" \
	"$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "$(idclaims http://other.test)")" '%issuer mismatch%'
refused "another audience: pending, audited" \
	"$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "$(idclaims '' other)")" '%audience mismatch%'
NONE=$("$JWTMINT" sign --alg none --claims "$(idclaims)")
refused "alg none (unsigned): pending, audited" "$NONE" '%unsigned or empty token part%'
refused "alg none with a signature part: pending, audited" "${NONE}AAAA" '%algorithm none not allowed%'
refused "an unexpected algorithm (ES256 key): pending, audited" \
	"$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/p256.key" 2>/dev/null; "$JWTMINT" sign --key "$W/p256.key" --kid "$KID" --alg ES256 --claims "$(idclaims)")" '%algorithm ES256 not allowed%'
refused "not a JWT: pending, audited" "garbage" '%not a JWS compact token%'
refused "a token of the right key without attrs: pending, audited" \
	"$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "{\"iss\":\"http://attest.test\",\"aud\":\"attestation-agent\",\"exp\":$((NOW + 600)),\"jti\":\"$(cat /proc/sys/kernel/random/uuid)\",\"sub\":\"spiffe://x/y\",\"cluster\":\"c1\",\"policy\":\"k8s\"}")" '%missing attrs%'
reg self-register g1 "$GOOD"
expect 200 "the control: the same claims signed by the CA key are approved" '.status == "registered"'

say "--- an identity bound to an EK"
make_ek other; OTHER_FP=$EK_FP
reg self-register b1 "$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "$(idclaims '' '' '' ",\"tpm_ek.fingerprint\":\"$OTHER_FP\"")")"
check "an identity whose tpm_ek.fingerprint is another EK: pending, audited" test \
	"$(jget .status):$(audits "$MID" auto_approve_identity_refused '%is bound to another EK%')" = "pending_approval:1"
make_ek b2
TOK=$("$JWTMINT" sign --key "$CAKEY" --kid "$KID" --alg ES384 --claims "$(idclaims '' '' '' ",\"tpm_ek.fingerprint\":\"$EK_FP\"")")
api POST /api/v1/self-register "$(node_body ",\"agent_identity\":\"$TOK\"")"
expect 200 "an identity bound to the registering EK is approved" '.status == "registered"'

say "--- hourly limit, bad input, re-registration"
agent batch; B1=$IDT; agent batch; B2=$IDT
reg self-register l1 "$B1"
expect 200 "rule batch approves its first machine" '.status == "registered"'
reg self-register l2 "$B2"
expect 200 "the hourly limit still applies to identity rules" '.status == "pending_approval"'
check "recorded rate_limited" test "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$MID'")" = rate_limited
check "a rate-limited identity is not consumed" test "$(sql "SELECT COUNT(*) FROM agent_identity_uses WHERE machine_id='$MID'")" = 0
make_ek bad1
C0=$(counts)
api POST /api/v1/self-register "$(node_body ',"agent_identity":42')"
expect 422 "agent_identity must be a string" '.detail | test("agent_identity")'
api POST /api/v1/self-register "$(node_body ',"agent_identity_x":"a"')"
expect 422 "unknown fields are still refused" '.detail | test("agent_identity_x: unknown field")'
api POST /api/v1/self-register "$(node_body ",\"agent_identity\":\"$(head -c 17000 /dev/zero | tr '\0' a)\"")"
expect 422 "an oversized identity is refused" '.detail | test("agent_identity: longer than")'
check "nothing written by refused requests" test "$(counts)" = "$C0"
agent ci
api POST /api/v1/attest "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\",\"agent_identity\":\"$IDT\"}"
expect 422 "POST /attest does not take agent_identity" '.detail | test("agent_identity: unknown field")'
EK_B64=$(base64 -w0 "$TMP/r1.pem"); EK_FP=$(openssl x509 -in "$TMP/r1.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
api POST /api/v1/self-register "$(node_body ",\"agent_identity\":\"$IDT\"")"
expect 200 "re-registering a known machine with an identity changes nothing" ".machine_id == \"$M1\""
check "the identity is not consumed by a re-registration" test "$(sql "SELECT COUNT(*) FROM agent_identity_uses WHERE jti='$(jget .machine_id >/dev/null; printf '%s' "$IDT" | cut -d. -f2 | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d | jq -r .jti)'")" = 0
admin GET /api/v1/auto-approval
expect 200 "the status lists both rules with their use this hour" '(.rules | map(.name)) == ["ci-k8s","batch"] and .rules[0].approved_last_hour == 5 and .rules[1].approved_last_hour == 1 and .rules[0].agent_identity == true'

say "--- attest-agent --agent-identity FILE"
mkdir -p "$W/sys"; : > "$W/cmdline"
aa() { # CMD STATE [args]: attest-agent on the current swtpm; sets RC, AOUT, AERR
	cmd=$1; st=$2; shift 2
	"$ATTEST_AGENT" "$cmd" --server "$BASE" --tcti "$TPM2TOOLS_TCTI" --state-dir "$W/$st" --sysfs-root "$W/sys" \
		--cmdline "$W/cmdline" --timeout 10 "$@" >"$W/agent.out" 2>"$W/agent.err"
	RC=$?; AOUT=$(cat "$W/agent.out"); AERR=$(cat "$W/agent.err")
}
tpm_manufacture A
aa register sa --agent-identity "$W/missing.jwt"
check "register: an unreadable identity file is a local failure (exit 1), nothing sent" sh -c "test $RC = 1 && printf '%s' '$AERR' | grep -q -- '--agent-identity $W/missing.jwt: cannot read it'"
printf 'not a token\n' > "$W/bad.jwt"
aa register sa --agent-identity "$W/bad.jwt"
check "register: a file that is not one JWT is refused locally (exit 1)" sh -c "test $RC = 1 && printf '%s' '$AERR' | grep -q 'not one JWT'"
agent ci; printf '%s\n' "$IDT" > "$W/identity.jwt"
aa register sa --agent-identity "$W/identity.jwt" --output json
check "attest-agent register --agent-identity: approved by the attribute rule" sh -c "test $RC = 0 && printf '%s' '$AOUT' | jq -e '.status == \"registered\"' >/dev/null"
check "... and audited with that identity" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE operator_cn='AUTO_APPROVE:ci-k8s' AND detail LIKE '%jti=$SID %'")" = 1
tpm_manufacture B
agent ci; printf '%s\n' "$IDT" > "$W/identity.jwt"
aa run sb --once --agent-identity "$W/identity.jwt"
check "attest-agent run --agent-identity: its self-registration is approved by the attribute rule" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE operator_cn='AUTO_APPROVE:ci-k8s' AND detail LIKE '%jti=$SID %'")" = 1
check "no dual-control role was ever approved automatically" test "$(sql "SELECT COUNT(*) FROM machines WHERE role='controlplane' AND status <> 'pending_approval'")" = 0
stop_attestd

say "--- the decision webhook is told the identity (an RSA enrollment CA: RS256 identities)"
HOOK=$(mktemp -d "$TMP/hook.XXXXXX")
"$STAND_IN_HTTP" "$HOOK/ready" "$HOOK" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$HOOK/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
printf '%s' 'busy' > "$HOOK/answer"; printf 503 > "$HOOK/status"
wait_decision() { # MID DECISION: the webhook job runs every second
	i=0
	while [ $i -lt 80 ]; do
		[ "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$1'")" = "$2" ] && return 0
		sleep 0.25; i=$((i + 1))
	done
	return 1
}
start_attestd ITL_AUTO_APPROVE_WEBHOOK_URL="http://127.0.0.1:$(cat "$HOOK/ready")/decide" ITL_AUTO_APPROVE_WEBHOOK_ALLOW_HTTP=true \
	ITL_AUTO_APPROVE_WEBHOOK_SECRET=webhook-secret-0123456789 ITL_DUAL_CONTROL_ROLES=controlplane ITL_AGENT_TOKEN_TTL_SECONDS=600 \
	ITL_ENROLLMENT_CA_ALGORITHM=rsa-4096
put_policy
agent prod
check "the identity is RS256 under the RSA CA" test "$(printf '%s' "$IDT" | cut -d. -f1 | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d | jq -r .alg)" = RS256
reg self-register h1 "$IDT"
expect 200 "no rule: the machine with an identity waits for the webhook" '.status == "pending_approval"'
H1=$MID
i=0; while [ "$(sql "SELECT attempts FROM auto_approvals WHERE machine_id='$H1'")" != 1 ] && [ $i -lt 80 ]; do sleep 0.25; i=$((i + 1)); done
check "a failed webhook call keeps the queued context, with the error" \
	sh -c "printf '%s' '$(sql "SELECT detail FROM auto_approvals WHERE machine_id='$H1'")' | jq -e '.last_error == \"HTTP 503\" and .via == \"self-register\" and .agent_identity.jti == \"$SID\"' >/dev/null"
printf '%s' '{"approve":true,"role":"worker-app","reason":"prod pool"}' > "$HOOK/answer"; printf 200 > "$HOOK/status"
sql "UPDATE auto_approvals SET next_at = 0 WHERE machine_id = '$H1'"
check "the webhook approves it on the retry" wait_decision "$H1" approved
check "the retried request still carries the verified identity: jti, SPIFFE ID, cluster, policy, attributes" sh -c "jq -e '.machine_id == \"$H1\" and .via == \"self-register\" and .agent_identity.jti == \"$SID\" and (.agent_identity.sub | endswith(\"/agent/c1/k8s/$SID\")) and .agent_identity.cluster == \"c1\" and .agent_identity.policy == \"k8s\" and .agent_identity.attributes[\"k8s_token.namespace\"] == \"prod\" and (has(\"last_error\") | not)' \"\$(grep -l '$H1' '$HOOK'/req-*.body | tail -1)\" >/dev/null"
check "two requests were made" test "$(grep -l "$H1" "$HOOK"/req-*.body | wc -l)" = 2
check "the webhook's approval used the identity up" test "$(sql "SELECT machine_id || ':' || rule FROM agent_identity_uses WHERE jti='$SID'")" = "$H1:webhook"
check "... and its audit entry names it" test "$(audits "$H1" approve "%prod pool; agent identity jti=$SID%")" = 1
reg self-register h2 "$IDT"
check "the same identity again: the webhook's yes does not approve a second machine" wait_decision "$MID" refused
check "... audited" test "$(audits "$MID" auto_approve_identity_refused "%jti=$SID was already used (machine $H1)%")" = 1
"$ATTESTD" db copy --from "$DB_URL" --to "sqlite:///$W/copy.db" >"$W/copy.log" 2>&1
check "attestd db copy carries the used identities" test "$(sqlite3 "$W/copy.db" "SELECT jti || ':' || machine_id || ':' || rule FROM agent_identity_uses")" = "$SID:$H1:webhook"
stop_attestd
done_testing
