#!/bin/sh
# The attestation secret vault with real software TPMs: operators write
# (metadata only comes back), values are encrypted at rest, only the
# machine reads them after a quote verified against its bound AK, sealed
# to its TPM; limits, audit, expiry, locks, PCR policy, key mismatch.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_createak; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done

KEY=$(openssl rand -hex 32)
b64() { base64 -w0 "$1"; }
SEL=sha256:0,1,2,3,7
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n'); }
quote_fields() { printf '"nonce_id":"%s","pcr_quote":"%s","pcr_signature":"%s","pcr_values":%s' \
	"$NID" "$(b64 "$TW/quote.msg")" "$(b64 "$TW/quote.sig")" "$PCR_JSON"; }
# deliver MID AK: a fresh challenge, a quote by AK, POST .../delivery
deliver() { challenge; tpm_quote "$2" "$NHEX" "$SEL"; api POST "/api/v1/secrets/machines/$1/delivery" "{$(quote_fields)}"; }
# open_delivery AK OUT: the sealed answer in BODY opened by the current TPM
open_delivery() {
	printf '%s' "$BODY" > "$TW/sec.json"
	jget .credential_blob | base64 -d > "$TW/sec.blob"
	tpm_activate "$1" "$TW/sec.blob" "$TW/sec.key" && "$GCM_OPEN" "$TW/sec.key" "$TW/sec.json" > "$2"
}
S=/api/v1/secrets/machines

say "--- no master key: the vault is off"
start_attestd
admin POST "$S/00000000-0000-4000-8000-000000000000/secrets" '{"name":"x","value":"y"}'
expect 503 "without ITL_SHARED_SECRET_MASTER_KEY writes answer 503" '.detail | test("ITL_SHARED_SECRET_MASTER_KEY")'
stop_attestd
DATA_BAD=$(mktemp -d "$TMP/bad.XXXXXX")
if env ITL_DB_URL="sqlite:///$DATA_BAD/m.db" ITL_ENROLLMENT_CA_DIR="$DATA_BAD/ca" ITL_SHARED_SECRET_MASTER_KEY=abcd \
	"$ATTESTD" --listen 127.0.0.1:0 >"$DATA_BAD/log" 2>&1; then fail "a malformed master key refuses to start"
else check "a malformed master key refuses to start, naming the variable" grep -q "ITL_SHARED_SECRET_MASTER_KEY: expected 64 hex" "$DATA_BAD/log"; fi

start_attestd ITL_SHARED_SECRET_MASTER_KEY="$KEY" ITL_SECRET_MAX_BYTES=2048 ITL_SECRETS_PER_MACHINE=4
VAULT_DB=$DB_URL
check "the vault logs its key id, never the key" sh -c "grep -q 'Secret vault enabled (master key id [0-9a-f]\{16\})' '$DATA/attestd.log' && ! grep -q '$KEY' '$DATA/attestd.log'"

tpm_manufacture A
tpm_manufacture B
tpm_use A
tpm_ek rsa
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"vault-a"}' >/dev/null

say "--- operators write; metadata only comes back"
api POST "$S/$MID/secrets" '{"name":"vault-token","value":"s.topsecret-1"}'
expect 401 "writing needs an operator credential"
admin POST "$S/$MID/secrets" '{"name":"vault-token","value":"s.topsecret-1","description":"Vault token for disk unseal","reason":"ticket 42"}'
expect 201 "secret created" '.name == "vault-token" and .version == 1 and .size == 13 and .created_by == "SYSTEM" and (has("value") | not) and .expires_at == null'
check "the created answer carries no value" sh -c "! printf '%s' \"\$1\" | grep -q topsecret" _ "$BODY"
admin POST "$S/$MID/secrets" '{"name":"vault-token","value":"again"}'
expect 409 "POST of an existing name is a conflict" '.detail | test("already exists")'
admin PUT "$S/$MID/secrets/vault-token" '{"value":"s.topsecret-2"}'
expect 200 "PUT replaces: version 2, description kept" '.version == 2 and .description == "Vault token for disk unseal"'
printf '\000\001\002\377binary' > "$TMP/bin"
admin PUT "$S/$MID/secrets/disk.key" "{\"value_b64\":\"$(b64 "$TMP/bin")\",\"ttl_seconds\":3600}"
expect 201 "PUT of a new name creates it; bytes via value_b64; expiry" '.version == 1 and .size == 10 and .expires_at != null and .expired == false'
admin PUT "$S/$MID/secrets/other" '{"name":"different","value":"x"}'
expect 422 "a body name that differs from the path" '.detail | startswith("name:")'
admin POST "$S/$MID/secrets" '{"name":"-bad","value":"x"}'
expect 422 "a name must start with a letter or digit" '.detail | startswith("name:")'
admin POST "$S/$MID/secrets" '{"name":"a/b","value":"x"}'
expect 422 "a name with a slash" '.detail | startswith("name:")'
admin POST "$S/$MID/secrets" "{\"name\":\"$(printf '%065d' 0)\",\"value\":\"x\"}"
expect 422 "a name of 65 characters" '.detail | startswith("name:")'
admin POST "$S/$MID/secrets" '{"name":"both","value":"x","value_b64":"eA=="}'
expect 422 "value and value_b64 together" '.detail | startswith("value:")'
admin POST "$S/$MID/secrets" '{"name":"neither"}'
expect 422 "no value at all" '.detail | startswith("value:")'
admin POST "$S/$MID/secrets" '{"name":"b64","value_b64":"not base64!"}'
expect 422 "value_b64 that is not base64" '.detail | startswith("value_b64:")'
admin POST "$S/$MID/secrets" "{\"name\":\"big\",\"value\":\"$(head -c 2049 /dev/zero | tr '\0' a)\"}"
expect 422 "a value over ITL_SECRET_MAX_BYTES" '.detail | test("exceed ITL_SECRET_MAX_BYTES")'
admin POST "$S/$MID/secrets" '{"name":"ttl","value":"x","ttl_seconds":0}'
expect 422 "ttl_seconds 0" '.detail | startswith("ttl_seconds:")'
admin POST "$S/$MID/secrets" '{"name":"ttl","value":"x","ttl_seconds":"60"}'
expect 422 "ttl_seconds as a string" '.detail | startswith("ttl_seconds")'
admin POST "$S/$MID/secrets" '{"name":"x","value":"x","extra":1}'
expect 422 "unknown fields are refused"
admin POST "$S/00000000-0000-4000-8000-000000000000/secrets" '{"name":"x","value":"y"}'
expect 404 "a secret for an unknown machine" '.detail == "Machine not found"'
admin POST "$S/$MID/secrets" '{"name":"third","value":"3"}'
admin POST "$S/$MID/secrets" '{"name":"fourth","value":"4"}'
expect 201 "the fourth secret fits ITL_SECRETS_PER_MACHINE=4"
admin POST "$S/$MID/secrets" '{"name":"fifth","value":"5"}'
expect 422 "a fifth secret is over ITL_SECRETS_PER_MACHINE" '.detail | test("ITL_SECRETS_PER_MACHINE")'
admin PUT "$S/$MID/secrets/fourth" '{"value":"4b"}'
expect 200 "replacing at the limit is allowed" '.version == 2'
admin DELETE "$S/$MID/secrets/fourth"
expect 200 "secret deleted" '.deleted == true and .name == "fourth"'
admin DELETE "$S/$MID/secrets/fourth"
expect 404 "deleting it again" '.detail == "Secret not found"'

admin GET "$S/$MID/secrets"
expect 200 "listed by name, metadata only" '.total == 3 and ([.secrets[].name] == ["disk.key","third","vault-token"]) and ([.secrets[] | has("value") or has("value_b64") or has("ciphertext")] | any | not)'
check "the listing carries no value" sh -c "! printf '%s' \"\$1\" | grep -q topsecret" _ "$BODY"
admin GET "$S/$MID/secrets/vault-token"
expect 200 "one secret's metadata" '.version == 2 and .updated_by == "SYSTEM" and .delivered_at == null'
admin GET "$S/$MID/secrets/nope"
expect 404 "an unknown secret" '.detail == "Secret not found"'
api GET "$S/$MID/secrets"
expect 401 "listing needs an operator credential"

check "values are encrypted at rest" test "$(sql "SELECT COUNT(*) FROM machine_secrets WHERE ciphertext LIKE '%topsecret%' OR ciphertext LIKE '%$(printf 's.topsecret-2' | base64 -w0 | cut -c1-12)%'")" = 0
check "each row names the key that sealed it" test "$(sql "SELECT COUNT(DISTINCT key_id) FROM machine_secrets WHERE machine_id='$MID'")" = 1
check "writes are audited without values" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_put' AND machine_id='$MID' AND detail NOT LIKE '%topsecret%'")" = 6
check "the reason is in the audit entry" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_put' AND detail LIKE '%ticket 42%'")" = 1
check "the delete is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_delete' AND machine_id='$MID'")" = 1

say "--- the CLI"
cli() { ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN ATTESTATION_CACHE_DIR=$TMP/cli-cache "$ATTESTATION_CLI" "$@" >"$TMP/cli.out" 2>"$TMP/cli.err"; CRC=$?; }
printf 'from a file\n' > "$TMP/cli.val"
cli secret put "$MID" cli-secret --file "$TMP/cli.val" --description "via the CLI" --ttl 600 --reason "cli test"
check "secret put --file: created" sh -c "[ $CRC = 0 ] && grep -q \"Secret 'cli-secret' of machine $MID created: version 1, 12 bytes.\" '$TMP/cli.out'"
printf 'from stdin' | { ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN ATTESTATION_CACHE_DIR=$TMP/cli-cache "$ATTESTATION_CLI" secret put "$MID" cli-secret --file - >"$TMP/cli.out" 2>&1; }
check "secret put --file - (stdin): replaced" grep -q "replaced: version 2, 10 bytes" "$TMP/cli.out"
cli secret create "$MID" cli-secret --value x
check "secret create of an existing name: exit 6 (conflict)" test "$CRC" = 6
cli secret put "$MID" cli-secret
check "secret put without a value: usage (exit 2)" test "$CRC" = 2
cli secret list "$MID"
check "secret list: a table of metadata" sh -c "[ $CRC = 0 ] && grep -q '^NAME' '$TMP/cli.out' && grep -q 'cli-secret' '$TMP/cli.out' && ! grep -q 'from stdin' '$TMP/cli.out'"
cli secret get "$MID" cli-secret --output json
check "secret get --output json: metadata, no value" sh -c "[ $CRC = 0 ] && jq -e '.version == 2 and .description == \"via the CLI\" and (has(\"value\") | not)' '$TMP/cli.out' >/dev/null"
cli secret delete "$MID" cli-secret --reason "cli test done"
check "secret delete" sh -c "[ $CRC = 0 ] && grep -q 'deleted' '$TMP/cli.out'"
cli secret get "$MID" cli-secret
check "a deleted secret: exit 5 (not found)" test "$CRC" = 5

say "--- only the machine reads, after a verified quote"
challenge
api POST "$S/$MID/delivery" "{\"nonce_id\":\"$NID\"}"
expect 422 "a delivery request without a quote" '.detail | startswith("pcr_quote")'
tpm_quote_dummy=$(printf 'x' | base64)
api POST "$S/$MID/delivery" "{\"nonce_id\":\"$NID\",\"pcr_quote\":\"$tpm_quote_dummy\",\"pcr_signature\":\"$tpm_quote_dummy\",\"pcr_values\":{}}"
expect 422 "a malformed quote (nonce not burnt)" '.detail | startswith("pcr_quote")'
api POST "$S/$MID/delivery" "{\"nonce_id\":\"$NID\",\"pcr_quote\":\"$tpm_quote_dummy\",\"pcr_signature\":\"$tpm_quote_dummy\",\"pcr_values\":{},\"x\":1}"
expect 422 "unknown fields in a delivery request"
tpm_ak rsa ak
deliver "$MID" ak
expect 409 "no delivery before an AK is bound" '.detail | test("no bound attestation key")'
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
ACT=$(jget .activation_id); jget .credential_blob | base64 -d > "$TW/cred.blob"
tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
expect 200 "AK bound by credential activation" '.ak_accepted == true'
deliver "$MID" ak
expect 409 "a registered (not yet attested) machine gets nothing" '.detail | test("is registered")'
check "the refusal is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_delivery_refused' AND machine_id='$MID'")" = 1
challenge; tpm_quote ak "$NHEX" "$SEL"
api POST /api/v1/attest "$(node_body ",$(quote_fields)")"
expect 200 "the machine attests with its quote" '.status == "attested" and .quote_verified == true'

deliver "$MID" ak
expect 200 "delivery: sealed to the TPM" ".format == \"tpm-credential-aes256gcm-v1\" and .machine_id == \"$MID\" and (has(\"secrets\") | not)"
check "the answer is not cacheable" sh -c "printf '%s' \"\$1\" | grep -qi '^Cache-Control: no-store'" _ "$HEADERS"
check "the answer's media type" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/vnd.itl.secrets.encrypted+json'" _ "$HEADERS"
check "no value in the sealed answer's clear text" sh -c "! printf '%s' \"\$1\" | grep -q topsecret" _ "$BODY"
SEALED=$BODY
check "TPM2_ActivateCredential in the machine's TPM opens it" open_delivery ak "$TW/plain.json"
check "the machine receives every secret, newest versions" sh -c "jq -e '.machine_id == \"$MID\" and ([.secrets[].name] == [\"disk.key\",\"third\",\"vault-token\"]) and (.secrets[2].version == 2) and (.secrets[0].expires_at != null)' '$TW/plain.json' >/dev/null"
check "text values arrive exactly" test "$(jq -r '.secrets[] | select(.name == "vault-token") | .value_b64' "$TW/plain.json" | base64 -d)" = "s.topsecret-2"
jq -r '.secrets[] | select(.name == "disk.key") | .value_b64' "$TW/plain.json" | base64 -d > "$TW/bin.out"
check "binary values arrive byte for byte" cmp -s "$TMP/bin" "$TW/bin.out"
check "the delivery is audited with the names, not the values" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secrets_delivered' AND machine_id='$MID' AND detail LIKE '%3 secret(s)%vault-token%' AND detail NOT LIKE '%topsecret%'")" = 1
admin GET "$S/$MID/secrets/vault-token"
expect 200 "operators see when and which version was delivered" '.delivered_at != null and .delivered_version == 2'
BODY=$SEALED
tpm_use B
tpm_ek rsa
if open_delivery ak "$TW/stolen.json" 2>/dev/null; then fail "another TPM cannot open the delivery"
else pass "another TPM cannot open the delivery"; fi
tpm_ak rsa akb
challenge; tpm_quote akb "$NHEX" "$SEL"
cp "$TW/quote.msg" "$TMP/qb.msg"; cp "$TW/quote.sig" "$TMP/qb.sig"; PB=$PCR_JSON
tpm_use A
api POST "$S/$MID/delivery" "{\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "$TMP/qb.msg")\",\"pcr_signature\":\"$(b64 "$TMP/qb.sig")\",\"pcr_values\":$PB}"
expect 422 "another TPM's quote is refused" '.detail | test("does not verify with the machine.s attestation key")'
challenge; tpm_quote ak "$NHEX" "$SEL"
api POST "$S/$MID/delivery" "{$(quote_fields)}"
expect 200 "a fresh quote delivers again"
api POST "$S/$MID/delivery" "{$(quote_fields)}"
expect 409 "a replayed nonce is refused" '.detail | test("replay")'
api POST "$S/00000000-0000-4000-8000-000000000000/delivery" "{$(quote_fields)}"
expect 404 "delivery for an unknown machine" '.detail == "Machine not found"'

say "--- expiry, lock, PCR policy"
sql "UPDATE machine_secrets SET expires_at = 1 WHERE machine_id = '$MID' AND name = 'disk.key'"
admin GET "$S/$MID/secrets/disk.key"
expect 200 "an expired secret shows as expired" '.expired == true'
deliver "$MID" ak
open_delivery ak "$TW/plain2.json"
check "an expired secret is no longer delivered" sh -c "jq -e '[.secrets[].name] == [\"third\",\"vault-token\"]' '$TW/plain2.json' >/dev/null"
admin POST "/api/v1/machines/$MID/lock" '{"reason":"investigation"}' >/dev/null
deliver "$MID" ak
expect 409 "a locked machine gets nothing" '.detail | test("is locked")'
admin POST "/api/v1/machines/$MID/unlock" '{"reason":"cleared"}' >/dev/null
admin PUT /api/v1/pcr-policies/worker-app "{\"pcrs\":{\"sha256:7\":\"$(printf '%064d' 0 | tr 0 a)\"}}" >/dev/null
deliver "$MID" ak
expect 403 "a quote that misses the role's PCR policy gets nothing" '.detail | test("sha256:7")'
check "the PCR refusal is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_delivery_refused' AND machine_id='$MID' AND detail LIKE '%sha256:7%'")" = 1
admin DELETE /api/v1/pcr-policies/worker-app >/dev/null

say "--- tampering at rest"
sql "UPDATE machine_secrets SET iv = (SELECT iv FROM machine_secrets WHERE machine_id = '$MID' AND name = 'vault-token'), ciphertext = (SELECT ciphertext FROM machine_secrets WHERE machine_id = '$MID' AND name = 'vault-token') WHERE machine_id = '$MID' AND name = 'third'"
deliver "$MID" ak
expect 503 "a ciphertext moved to another name does not open (AAD binds machine, name, version)" '.detail | test("does not decrypt")'
admin DELETE "$S/$MID/secrets/third" >/dev/null
stop_attestd

say "--- another master key"
SHARED_DB_URL=$VAULT_DB start_attestd ITL_SHARED_SECRET_MASTER_KEY="$(openssl rand -hex 32)"
deliver "$MID" ak
expect 503 "secrets sealed under another master key are refused, not garbled" '.detail | test("key mismatch")'
check "the mismatch names both key ids in the log" grep -q "sealed under master key [0-9a-f]\{16\}, not the configured" "$DATA/attestd.log"
stop_attestd

say "--- revoked machines"
SHARED_DB_URL=$VAULT_DB start_attestd ITL_SHARED_SECRET_PASSPHRASE="correct horse battery staple"
admin POST "/api/v1/machines/$MID/revoke" '{"reason":"decommissioned"}' >/dev/null
admin PUT "$S/$MID/secrets/vault-token" '{"value":"late"}'
expect 409 "a revoked machine's secrets cannot be written" '.detail | test("revoked")'
deliver "$MID" ak
expect 409 "a revoked machine gets nothing" '.detail | test("is revoked")'
stop_attestd

say "--- all of a machine's values fit one delivery; the extension host functions"
start_attestd ITL_SHARED_SECRET_MASTER_KEY="$KEY" ITL_SECRET_MAX_BYTES=262144 ITL_EXTENSIONS="$EXT_DIR/ext-vault.so"
make_ek big
api POST /api/v1/register "$(node_body)"
MIDB=$(jget .machine_id)
P=/api/v1/ext/vault_probe
admin POST "$P/$MIDB/from-ext?value=abc&ttl=60"
expect 200 "host->secret_put writes a secret" '.rc == 0'
admin GET "$S/$MIDB/secrets/from-ext"
expect 200 "audited and attributed to EXTENSION:<name>" '.created_by == "EXTENSION:vault_probe" and .size == 3 and .expires_at != null'
check "the extension's write is in the audit log" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_put' AND operator_cn='EXTENSION:vault_probe' AND machine_id='$MIDB'")" = 1
admin POST "$P/$MIDB/-bad?value=x"
expect 200 "a bad name: ATT_EXT_INVALID" '.rc == -3'
admin POST "$P/00000000-0000-4000-8000-000000000000/x?value=x"
expect 200 "an unknown machine: ATT_EXT_NOTFOUND" '.rc == -6'
admin POST "$P/$MIDB/neg?value=x&ttl=-1"
expect 200 "a negative ttl: ATT_EXT_INVALID" '.rc == -3'
admin DELETE "$P/$MIDB/from-ext"
expect 200 "host->secret_delete" '.rc == 0'
admin DELETE "$P/$MIDB/from-ext"
expect 200 "deleting it again: ATT_EXT_NOTFOUND" '.rc == -6'
check "the extension's delete is audited" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='secret_delete' AND operator_cn='EXTENSION:vault_probe'")" = 1
printf '{"value_b64":"%s"}' "$(head -c 262144 /dev/zero | base64 -w0)" > "$TMP/big.json"
put_big() { curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
	--data-binary @"$TMP/big.json" "$BASE$S/$MIDB/secrets/$1"; }
ok=0; for n in $(seq 1 16); do [ "$(put_big "big$n")" = 201 ] && ok=$((ok + 1)); done
check "16 values of 256 KiB (4 MiB) are accepted" test "$ok" = 16
check "a 17th is refused: the machine's values would exceed 4 MiB" test "$(put_big big17)" = 422
check "replacing one of the 16 is still allowed" test "$(put_big big16)" = 200
admin POST "/api/v1/machines/$MIDB/revoke" '{"reason":"gone"}' >/dev/null
admin POST "$P/$MIDB/late?value=x"
expect 200 "a revoked machine: ATT_EXT_CONFLICT" '.rc == -4'
stop_attestd
done_testing
