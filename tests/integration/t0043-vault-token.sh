#!/bin/sh
# examples/extensions/vault-token: a lifecycle event makes the extension
# create a node-scoped token with Vault's token API (checked byte for byte
# on a recording stand-in: POST /v1/auth/token/create, X-Vault-Token,
# policies/ttl/meta), store it in the secret vault as EXTENSION:vault_token,
# and the machine's TPM - only it - opens it after a verified quote.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_createak; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done

EXT=$EXT_DIR/vault_token.so
ROOT_TOKEN=hvs.root-$$
VAULT=$(mktemp -d "$TMP/vault.XXXXXX")
"$STAND_IN_HTTP" "$VAULT/ready" "$VAULT" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$VAULT/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
VAULT_URL="http://127.0.0.1:$(cat "$VAULT/ready")"
vault_answer() { printf '%s' "$1" > "$VAULT/status"; printf '%s' "$2" > "$VAULT/answer"; }
# Vault's documented answer to POST /v1/auth/token/create
vault_ok() {
	vault_answer 200 "{\"request_id\":\"r-$1\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,\"data\":null,\"auth\":{\"client_token\":\"hvs.CAESI-node-$1\",\"accessor\":\"acc-$1\",\"policies\":[\"default\",\"node-disk-unseal\"],\"token_policies\":[\"default\",\"node-disk-unseal\"],\"metadata\":{},\"lease_duration\":3600,\"renewable\":true,\"entity_id\":\"\",\"token_type\":\"service\",\"orphan\":false}}"
}
wait_file() { i=0; while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; [ -s "$1" ]; }
b64() { base64 -w0 "$1"; }

say "--- configuration"
d=$(mktemp -d "$TMP/noenv.XXXXXX")
if env ITL_DB_URL="sqlite:///$d/m.db" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_EXTENSIONS="$EXT" \
	"$ATTESTD" --listen 127.0.0.1:0 >"$d/log" 2>&1; then fail "without VAULT_ADDR the extension refuses the start"
else check "without VAULT_ADDR the extension refuses the start" grep -q "VAULT_ADDR and VAULT_TOKEN must be set" "$d/log"; fi

vault_ok 1
start_attestd ITL_EXTENSIONS="$EXT" ITL_SHARED_SECRET_MASTER_KEY="$(openssl rand -hex 32)" \
	VAULT_ADDR="$VAULT_URL/" VAULT_TOKEN="$ROOT_TOKEN" VAULT_TOKEN_EVENT=node.provisioned
admin GET /api/v1/extensions
expect 200 "the extension is listed" '.extensions | map(select(.name == "vault_token")) | length == 1'

say "--- the token request"
tpm_manufacture A
tpm_use A
tpm_ek rsa
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"node-a"}' >/dev/null
check "the event reached Vault" wait_file "$VAULT/req-1.body"
check "POST /v1/auth/token/create (no double slash from VAULT_ADDR's trailing /)" sh -c "head -1 '$VAULT/req-1.head' | grep -qx 'POST /v1/auth/token/create'"
check "authenticated with X-Vault-Token" grep -qix "X-Vault-Token: $ROOT_TOKEN" "$VAULT/req-1.head"
check "a JSON body" grep -qix "Content-Type: application/json" "$VAULT/req-1.head"
check "policies, ttl, renewable, display_name as Vault's API takes them" \
	jq -e '.policies == ["node-disk-unseal"] and .ttl == "1h" and .renewable == true and .display_name == "attest-node-a"' "$VAULT/req-1.body"
check "meta: string values scoping the token to the node" \
	jq -e ".meta == {\"ek_fingerprint\":\"$EK_FP\",\"hostname\":\"node-a\",\"machine_id\":\"$MID\"}" "$VAULT/req-1.body"
i=0; until admin GET "/api/v1/secrets/machines/$MID/secrets/vault-token" && [ "$STATUS" = 200 ] || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
expect 200 "the token is in the secret vault, written by the extension" \
	'.created_by == "EXTENSION:vault_token" and .version == 1 and .size == 16 and .expires_at != null'
check "the write is audited as EXTENSION:vault_token" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_put' AND operator_cn='EXTENSION:vault_token' AND machine_id='$MID'")" = 1
check "the accessor (not the token) is remembered per event" \
	test "$(sql "SELECT accessor FROM extension_vault_token_issued WHERE machine_id='$MID'")" = acc-1
check "the token is not in the database in clear" \
	test "$(sql "SELECT COUNT(*) FROM machine_secrets WHERE ciphertext LIKE '%node-1%'")" = 0
check "the token is not in the log" sh -c "! grep -q 'hvs.CAESI' '$DATA/attestd.log'"

say "--- the node opens it with its TPM"
tpm_ak rsa ak
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
ACT=$(jget .activation_id); jget .credential_blob | base64 -d > "$TW/cred.blob"
tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n'); }
qf() { printf '"nonce_id":"%s","pcr_quote":"%s","pcr_signature":"%s","pcr_values":%s' "$NID" "$(b64 "$TW/quote.msg")" "$(b64 "$TW/quote.sig")" "$PCR_JSON"; }
challenge; tpm_quote ak "$NHEX" sha256:0,7
api POST /api/v1/attest "$(node_body ",$(qf)")"
expect 200 "attested with a quote" '.status == "attested"'
challenge; tpm_quote ak "$NHEX" sha256:0,7
api POST "/api/v1/secrets/machines/$MID/delivery" "{$(qf)}"
expect 200 "secrets delivered sealed"
printf '%s' "$BODY" > "$TW/d.json"; jget .credential_blob | base64 -d > "$TW/d.blob"
tpm_activate ak "$TW/d.blob" "$TW/d.key"
"$GCM_OPEN" "$TW/d.key" "$TW/d.json" > "$TW/d.plain"
check "the machine's TPM recovers the Vault token" \
	test "$(jq -r '.secrets[] | select(.name == "vault-token") | .value_b64' "$TW/d.plain" | base64 -d)" = "hvs.CAESI-node-1"

say "--- Vault failures"
vault_answer 403 '{"errors":["permission denied"]}'
make_ek b
api POST /api/v1/register "$(node_body)"
MIDB=$(jget .machine_id)
admin POST "/api/v1/machines/$MIDB/approve" '{"role":"worker-app","hostname":"node-b"}' >/dev/null
check "a 403 from Vault reaches the stand-in" wait_file "$VAULT/req-2.body"
sleep 2
check "a 4xx is not retried" test ! -e "$VAULT/req-3.body"
admin GET "/api/v1/secrets/machines/$MIDB/secrets"
expect 200 "and stores nothing" '.total == 0'
check "the refusal is logged" grep -q "Vault token for machine $MIDB: HTTP 403 (not retried)" "$DATA/attestd.log"
vault_answer 503 '{"errors":["Vault is sealed"]}'
make_ek c
api POST /api/v1/register "$(node_body)"
MIDC=$(jget .machine_id)
admin POST "/api/v1/machines/$MIDC/approve" '{"role":"worker-app","hostname":"node-c"}' >/dev/null
check "a sealed Vault (503) is asked" wait_file "$VAULT/req-3.body"
vault_ok 3
i=0; until admin GET "/api/v1/secrets/machines/$MIDC/secrets/vault-token" && [ "$STATUS" = 200 ] || [ $i -gt 300 ]; do sleep 0.2; i=$((i + 1)); done
expect 200 "after Vault recovers the retried event stores the token" '.created_by == "EXTENSION:vault_token"'
check "exactly one token was stored for it" test "$(sql "SELECT COUNT(*) FROM extension_vault_token_issued WHERE machine_id='$MIDC'")" = 1
stop_attestd
done_testing
