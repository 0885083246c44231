#!/bin/sh
# Auto-approval: declarative rules (via, hw_product, desired_role, EK
# verdict, registration token), naming patterns, audit as
# AUTO_APPROVE:<rule>, never a dual-control role, hourly limits; and the
# external decision webhook against a local recording receiver (signed
# requests, retries, declines, invalid answers).
. "$SRCDIR/tests/lib/test-lib.sh"

TOKEN=runner-pool-token-$$
TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
RULES=$TMP/rules.json
SECRET=webhook-secret-0123456789

# refuses DESC PATTERN [VAR=value ...]: attestd does not start and says why
refuses() {
	desc=$1; pat=$2; shift 2
	d=$(mktemp -d "$TMP/refuse.XXXXXX")
	if env ITL_DB_URL="sqlite:///$d/m.db" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_DUAL_CONTROL_ROLES=controlplane "$@" \
		"$ATTESTD" --listen 127.0.0.1:0 >"$d/log" 2>&1; then fail "$desc" "attestd started"
	else check "$desc" grep -q "$pat" "$d/log"; fi
}
rules() { printf '%s' "$1" > "$RULES"; }

say "--- rules that must not load"
rules '{"rules":[{"name":"cp","match":{"registration_token_sha256":["'"$TOKEN_SHA"'"]},"approve":{"role":"controlplane"}}]}'
refuses "a rule approving a dual-control role refuses the start" "is under dual control" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"open","match":{"hw_product":"Virtual Machine"},"approve":{"role":"worker-app"}}]}'
refuses "a rule matching only client claims needs allow_unauthenticated" "matches only on what a client claims" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"ek_verdict":"verified","colour":"blue"},"approve":{"role":"worker-app"}}]}'
refuses "an unknown match field" "unknown field 'colour'" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"ek_verdict":"verified"},"approve":{"role":"worker-app","hostname":"ci-{nope}"}}]}'
refuses "a naming pattern with an unknown placeholder" "hostname: the pattern" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"registration_token_sha256":["abc"]},"approve":{"role":"worker-app"}}]}'
refuses "a token digest that is not SHA-256 hex" "registration_token_sha256\[0\]" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"Bad Name","match":{},"approve":{"role":"worker-app"}}]}'
refuses "a rule name outside [a-z0-9-]" "rules\[0\].name" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x","match":{"ek_verdict":"verified"},"approve":{"role":"worker-app"}},{"name":"x","match":{"ek_verdict":"verified"},"approve":{"role":"worker-app"}}]}'
refuses "a rule name used twice" "used twice" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
rules '{"rules":[{"name":"x",'
refuses "a rules file that is not JSON" "not valid JSON" ITL_AUTO_APPROVE_RULES_FILE="$RULES"
refuses "a rules file that cannot be read" "cannot read" ITL_AUTO_APPROVE_RULES_FILE="$TMP/missing.json"
refuses "a plain-http webhook without ITL_AUTO_APPROVE_WEBHOOK_ALLOW_HTTP" "must be an https:// URL" \
	ITL_AUTO_APPROVE_WEBHOOK_URL=http://127.0.0.1:9/x ITL_AUTO_APPROVE_WEBHOOK_SECRET=$SECRET
refuses "a webhook without a secret" "ITL_AUTO_APPROVE_WEBHOOK_SECRET: required" ITL_AUTO_APPROVE_WEBHOOK_URL=https://127.0.0.1:9/x

say "--- rules"
# EKs under trusted "manufacturer" roots (infra1, 3, 4) and one under an unknown root (infra2)
mkdir -p "$TMP/bundle"
for n in 1 2 3 4; do make_cert_window infra$n 20200101000000Z 20991231000000Z; done
for n in 1 3 4; do cp "$TMP/ca-infra$n/ca.pem" "$TMP/bundle/root$n.pem"; done
rules '{"rules":[
 {"name":"ci-runners","match":{"via":"self-register","hw_product":"Virtual Machine","desired_role":"worker-app",
   "registration_token_sha256":["'"$TOKEN_SHA"'"]},"approve":{"role":"worker-app","hostname":"ci-{id8}"},"max_per_hour":2},
 {"name":"verified-infra","match":{"ek_verdict":"verified","desired_role":"worker-infra"},
   "approve":{"role":"worker-infra","hostname":"infra-{serial}"}},
 {"name":"lab","match":{"via":"register","hw_product":"Lab *"},"approve":{"role":"worker-app"},"allow_unauthenticated":true}]}'
start_attestd ITL_AUTO_APPROVE_RULES_FILE="$RULES" ITL_DUAL_CONTROL_ROLES=controlplane ITL_TPM_VERIFY_CA=true \
	ITL_TPM_CA_BUNDLE_DIR="$TMP/bundle"
check "the rules are loaded" grep -q "Auto-approval: 3 rule(s)" "$DATA/attestd.log"
vm() { printf ',"hw_product":"%s","hw_serial":"%s","desired_role":"%s"' "$1" "$2" "$3"; }

make_ek r1
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s1 worker-app)")" -H "X-Registration-Token: $TOKEN"
expect 200 "a CI runner with the pool's token is approved at once" '.status == "registered"'
MID=$(jget .machine_id)
admin GET "/api/v1/machines/$MID"
expect 200 "role and the naming pattern applied" ".status == \"registered\" and .role == \"worker-app\" and .hostname == \"ci-$(echo "$MID" | cut -c1-8)\""
check "audited as the operator AUTO_APPROVE:ci-runners" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID' AND operator_cn='AUTO_APPROVE:ci-runners' AND new_state='registered'")" = 1
check "the decision is recorded" test "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$MID'")" = approved

make_ek r2
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s2 worker-app)")" -H "X-Registration-Token: wrong-$TOKEN"
expect 200 "a wrong pool token stays pending" '.status == "pending_approval"'
make_ek r3
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s3 worker-app)")"
expect 200 "no token stays pending" '.status == "pending_approval"'
make_ek r4
api POST /api/v1/self-register "$(node_body "$(vm 'Bare Metal' s4 worker-app)")" -H "X-Registration-Token: $TOKEN"
expect 200 "another hw_product stays pending" '.status == "pending_approval"'
make_ek r5
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s5 controlplane)")" -H "X-Registration-Token: $TOKEN"
expect 200 "another desired_role stays pending" '.status == "pending_approval" and .role == "controlplane"'
make_ek r6
api POST /api/v1/register "$(node_body "$(vm 'Virtual Machine' s6 worker-app)")"
expect 200 "register (not self-register) does not match a self-register rule" '.status == "pending_approval"'
make_ek r7
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s7 worker-app)")" -H "X-Registration-Token: $TOKEN"
expect 200 "the second runner this hour is approved" '.status == "registered"'
make_ek r8
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' s8 worker-app)")" -H "X-Registration-Token: $TOKEN"
expect 200 "the third runner this hour exceeds max_per_hour: pending" '.status == "pending_approval"'
MID8=$(jget .machine_id)
check "the rate limit is audited" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID8' AND action='auto_approve_rate_limited' AND operator_cn='AUTO_APPROVE:ci-runners'")" = 1
admin POST "/api/v1/machines/$MID8/approve" '{"role":"worker-app","hostname":"manual-8"}'
expect 200 "an operator approves the rate-limited runner" '.status == "registered"'

ek_of() { EK_B64=$(base64 -w0 "$TMP/$1.pem"); EK_FP=$(openssl x509 -in "$TMP/$1.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1); }
ek_of infra1
api POST /api/v1/self-register "$(node_body "$(vm 'Server' rack1 worker-infra)")"
expect 200 "a verified EK chain approves worker-infra" '.status == "registered"'
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "named from its serial" '.hostname == "infra-rack1" and .ek_verified == true and .role == "worker-infra"'
ek_of infra2
api POST /api/v1/self-register "$(node_body "$(vm 'Server' rack2 worker-infra)")"
expect 200 "an EK from an unknown root is not verified: pending" '.status == "pending_approval"'
ek_of infra3
api POST /api/v1/self-register "$(node_body "$(vm 'Server' rack9 worker-infra)")"
expect 200 "a machine named infra-rack9" '.status == "registered"'
ek_of infra4
api POST /api/v1/self-register "$(node_body "$(vm 'Server' rack9 worker-infra)")"
expect 200 "a naming collision leaves the machine pending (the registration itself succeeds)" '.status == "pending_approval"'
check "the failed approval is recorded" test "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$(jget .machine_id)'")" = failed

make_ek lab1
api POST /api/v1/register "$(node_body "$(vm 'Lab 7' l1 worker-app)")"
expect 200 "an explicitly unauthenticated lab rule approves via register" '.status == "registered"'
admin GET "/api/v1/machines/$(jget .machine_id)"
expect 200 "a rule without a naming pattern sets no hostname" '.hostname == null'
admin GET /api/v1/auto-approval
expect 200 "operators see the rules, their limits and use this hour" \
	'[.rules[] | [.name, .role, .max_per_hour, .approved_last_hour]] == [["ci-runners","worker-app",2,2],["verified-infra","worker-infra",60,2],["lab","worker-app",60,1]] and .webhook.configured == false'
expect 200 "and the latest decisions" '([.recent[].decision] | sort) == ["approved","approved","approved","approved","approved","failed","rate_limited"]'
admin GET "/api/v1/auto-approval?limit=2"
expect 200 "limit" '(.recent | length) == 2'
admin GET "/api/v1/auto-approval?limit=0"
expect 422 "limit 0" '.detail | startswith("limit:")'
api GET /api/v1/auto-approval
expect 401 "the status needs an operator"
stop_attestd

say "--- the decision webhook"
HOOK=$(mktemp -d "$TMP/hook.XXXXXX")
"$STAND_IN_HTTP" "$HOOK/ready" "$HOOK" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$HOOK/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
HOOK_URL="http://127.0.0.1:$(cat "$HOOK/ready")/decide"
answer() { printf '%s' "$2" > "$HOOK/answer"; printf '%s' "$1" > "$HOOK/status"; }
# wait_status MID STATUS: poll the machine (the webhook job runs every second)
wait_status() {
	i=0
	while [ $i -lt 60 ]; do
		[ "$(sql "SELECT status FROM machines WHERE machine_id='$1'")" = "$2" ] && return 0
		sleep 0.25; i=$((i + 1))
	done
	return 1
}
wait_decision() {
	i=0
	while [ $i -lt 80 ]; do
		[ "$(sql "SELECT decision FROM auto_approvals WHERE machine_id='$1'")" = "$2" ] && return 0
		sleep 0.25; i=$((i + 1))
	done
	return 1
}
answer 200 '{"approve":true,"role":"worker-app","hostname":"hook-runner-1","reason":"pool A has capacity"}'
start_attestd ITL_AUTO_APPROVE_WEBHOOK_URL="$HOOK_URL" ITL_AUTO_APPROVE_WEBHOOK_ALLOW_HTTP=true \
	ITL_AUTO_APPROVE_WEBHOOK_SECRET="$SECRET" ITL_AUTO_APPROVE_WEBHOOK_MAX_PER_HOUR=2 ITL_DUAL_CONTROL_ROLES=controlplane
make_ek w1
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' w1 worker-app)")" -H "X-Registration-Token: anything"
expect 200 "the request thread does not wait for the webhook" '.status == "pending_approval"'
MID=$(jget .machine_id)
check "the webhook approves it shortly after" wait_status "$MID" registered
admin GET "/api/v1/machines/$MID"
expect 200 "with the webhook's role and hostname" '.hostname == "hook-runner-1" and .role == "worker-app"'
check "audited as AUTO_APPROVE:webhook with the reason" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID' AND operator_cn='AUTO_APPROVE:webhook' AND detail LIKE '%pool A has capacity%'")" = 1
check "the receiver got a POST" sh -c "head -1 '$HOOK/req-1.head' | grep -qx 'POST /decide'"
check "the request describes the machine" sh -c "jq -e '.machine_id == \"$MID\" and .hw_product == \"Virtual Machine\" and .via == \"self-register\" and .registration_token_presented == true and .desired_role == \"worker-app\" and .ek_fingerprint == \"$EK_FP\"' '$HOOK/req-1.body' >/dev/null"
TS=$(sed -n 's/^X-Attest-Timestamp: //Ip' "$HOOK/req-1.head" | tr -d '\r')
SIG=$(sed -n 's/^X-Attest-Signature: sha256=//Ip' "$HOOK/req-1.head" | tr -d '\r')
WANT=$({ printf '%s.' "$TS"; cat "$HOOK/req-1.body"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
check "the receiver verifies the HMAC over timestamp.body" test -n "$SIG" -a "$SIG" = "$WANT"
WRONG=$({ printf '%s.' "$TS"; cat "$HOOK/req-1.body"; } | openssl dgst -sha256 -hmac "not-the-secret" -r | cut -d' ' -f1)
check "a receiver with another secret would reject it" test "$SIG" != "$WRONG"

answer 200 '{"approve":true,"role":"controlplane","hostname":"cp-9"}'
make_ek w2
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' w2 controlplane)")"
MID2=$(jget .machine_id)
attempts() { sql "SELECT attempts FROM auto_approvals WHERE machine_id='$1'"; }
# wait_attempts MID N: until the machine has had more than N failed attempts
wait_attempts() { i=0; while [ "$(attempts "$1")" -le "$2" ] && [ $i -lt 80 ]; do sleep 0.1; i=$((i + 1)); done; [ "$(attempts "$1")" -gt "$2" ]; }
wait_attempts "$MID2" 0
check "a webhook approving a dual-control role is refused and retried" \
	test "$(sql "SELECT status || ':' || decision FROM machines JOIN auto_approvals USING (machine_id) WHERE machine_id='$MID2'")" = "pending_approval:webhook"
check "the refusal is logged" grep -q "auto-approval webhook for machine $MID2 failed (attempt 1): role: 'controlplane' is under dual control" "$DATA/attestd.log"
answer 500 'oops'
A0=$(attempts "$MID2")
sql "UPDATE auto_approvals SET next_at = 0 WHERE machine_id = '$MID2'"
check "a failing receiver is retried" wait_attempts "$MID2" "$A0"
check "the failure is logged" grep -q "auto-approval webhook for machine $MID2 failed (attempt [0-9]*): HTTP 500" "$DATA/attestd.log"
check "with backoff: the next attempt is scheduled later" \
	test "$(sql "SELECT next_at FROM auto_approvals WHERE machine_id='$MID2'")" -gt "$(date +%s)"
answer 200 '{"approve":false,"reason":"controlplane nodes need two operators"}'
sql "UPDATE auto_approvals SET next_at = 0 WHERE machine_id = '$MID2'"
check "a decline is recorded" wait_decision "$MID2" declined
check "the decline is audited and the machine stays pending" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id='$MID2' AND action='auto_approve_declined'"):$(sql "SELECT status FROM machines WHERE machine_id='$MID2'")" = "1:pending_approval"

answer 200 'not json'
make_ek w3
api POST /api/v1/register "$(node_body "$(vm 'Virtual Machine' w3 worker-app)")"
MID3=$(jget .machine_id)
wait_attempts "$MID3" 0
check "an answer that is not JSON is a failed attempt" grep -q "machine $MID3 failed (attempt 1): the answer is not" "$DATA/attestd.log"
answer 200 '{"approve":true,"role":"worker-app","hostname":"hook-runner-3"}'
sql "UPDATE auto_approvals SET next_at = 0 WHERE machine_id = '$MID3'"
check "after the receiver recovers the machine is approved" wait_status "$MID3" registered
check "the request said register" sh -c "jq -e '.via == \"register\" and .registration_token_presented == false' \"\$(grep -l '$MID3' '$HOOK'/req-*.body | head -1)\" >/dev/null"
answer 200 '{"approve":true,"role":"worker-app"}'
make_ek w4
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' w4 worker-app)")"
MID4=$(jget .machine_id)
check "over ITL_AUTO_APPROVE_WEBHOOK_MAX_PER_HOUR the machine stays pending" wait_decision "$MID4" rate_limited
answer 503 'busy'
make_ek w5
api POST /api/v1/self-register "$(node_body "$(vm 'Virtual Machine' w5 worker-app)")"
MID5=$(jget .machine_id)
admin POST "/api/v1/machines/$MID5/approve" '{"role":"worker-app","hostname":"by-hand-5"}' >/dev/null
sql "UPDATE auto_approvals SET next_at = 0 WHERE machine_id = '$MID5'"
check "a machine an operator approved first is not asked about" wait_decision "$MID5" superseded
admin GET /api/v1/auto-approval
expect 200 "the webhook's use this hour" '.rules == [] and .webhook.configured == true and .webhook.approved_last_hour == 2 and .webhook.max_per_hour == 2'
stop_attestd
done_testing
