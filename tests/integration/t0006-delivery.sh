#!/bin/sh
# Config delivery: tokens (hashed, bound, expiring), MAC lookups,
# the encrypted envelope and ITL_REQUIRE_ENCRYPTED_DELIVERY.
. "$SRCDIR/tests/lib/test-lib.sh"

attested_machine() { # attested_machine NAME KIND: sets MID, TOKEN
	make_ek "$1" "$2"
	api POST /api/v1/register "$(node_body ',"hw_mac":"52:54:00:12:34:56"')" -H "Authorization: Bearer $ADMIN"
	MID=$(jget .machine_id)
	admin POST "/api/v1/machines/$MID/approve" "{\"role\":\"worker-app\",\"hostname\":\"$1\"}" >/dev/null
	api POST /api/v1/attest "$(node_body)"
	TOKEN=$(jget .config_token)
}

start_attestd
attested_machine n1 rsa
check "config tokens are stored hashed" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE token_hash = '$TOKEN'")" = 0
check "stored hash is SHA-256 of the token" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE token_hash = '$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)'")" = 1
api GET /api/v1/config/not-a-token-at-all-x
expect 404 "unknown token" '.detail == "Config token not found"'
api GET "/api/v1/config/short"
expect 404 "malformed token" '.detail == "Config token not found"'
api GET "/api/v1/config/$(printf '%0100d' 0)"
expect 404 "long token"

# the generic ISO's talos.config= URL: always 200 with the same partial
# config (never a machine's own), whatever the query says; Talos retries
# anything else for three hours and reboots (talos.md 2.5)
partial_ok() { # partial_ok DESC: the last body is the partial config
	printf '%s' "$BODY" > "$TMP/partial.yaml"
	check "$1" sh -c "'$YAML2JSON' '$TMP/partial.yaml' | jq -e '. == {\"apiVersion\":\"v1alpha1\",\"kind\":\"ExtensionServiceConfig\",\"name\":\"itl-tpm-register\",\"environment\":[\"ITL_REG_URL=http://attest.test\"]}' >/dev/null"
}
api GET "/api/v1/config"
expect 200 "generic config without query variables"
partial_ok "it is the partial config: one ExtensionServiceConfig for the agent carrying the service URL"
check "generic config is YAML, not cached" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/yaml' && printf '%s' \"\$1\" | grep -qi '^Cache-Control: no-store'" _ "$HEADERS"
api GET "/api/v1/config?mac=52:54:00:12:34:56"
expect 200 "generic config with a MAC"
partial_ok "a known machine's MAC still gets only the partial config"
check "the machine config is never served by MAC" sh -c "! printf '%s' \"\$1\" | grep -q 'example-machine-token'" _ "$BODY"
api GET "/api/v1/config?serial=SVC1284AB&mac=52%3A54%3A00%3A12%3A34%3A56&uuid=4c4c4544-0031-3510-8052-b4c04f4e3232"
expect 200 "Talos' re-sorted, URL-encoded uuid/mac/serial"
partial_ok "variables in any order give the same partial config"
api GET "/api/v1/config?uuid=%24%7Buuid%7D&mac=%24%7Bmac%7D&serial=%24%7Bserial%7D"
expect 200 "unfilled placeholders (Talos gave up waiting for the variables)"
api GET "/api/v1/config?mac=zz&uuid=&junk=%00%1b"
expect 200 "malformed and unknown variables never make Talos retry"
check "the fetch is logged with the variables, control characters replaced" \
	grep -q 'Generic config served (uuid=4c4c4544-0031-3510-8052-b4c04f4e3232 mac=52:54:00:12:34:56 serial=SVC1284AB)' "$DATA/attestd.log"

# encrypted envelope for an RSA EK
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 200 "encrypted delivery" ".format == \"ek-aes256gcm-v1\" and .machine_id == \"$MID\""
check "envelope media type" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/vnd.itl.config.encrypted+json'" _ "$HEADERS"
printf '%s' "$BODY" | jq -r .wrapped_key | base64 -d > "$TMP/wk.bin"
openssl pkeyutl -decrypt -inkey "$TMP/n1.key" -in "$TMP/wk.bin" -out "$TMP/aes.key" \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 2>/dev/null
check "wrapped key opens with the EK private key (RSA-OAEP-SHA256) to 32 bytes" test "$(wc -c < "$TMP/aes.key" 2>/dev/null)" = 32
check "iv is 12 bytes" test "$(printf '%s' "$BODY" | jq -r .iv | base64 -d | wc -c)" = 12

# expiry: a token past its lifetime is 410
sql "UPDATE config_tokens SET expires_at = 1"
api GET "/api/v1/config/$TOKEN"
expect 410 "expired token" '.detail | startswith("Config token expired")'
api POST /api/v1/attest "$(node_body)"
expect 200 "an attested machine whose config was delivered gets no new token" '.status == "already_attested"'

# a machine that attested but never fetched its config gets a new token on the next poll
attested_machine n2 rsa
FIRST=$TOKEN
api POST /api/v1/attest "$(node_body)"
expect 200 "undelivered config: the poll re-issues a token" '.status == "attested" and .action == "apply-config" and .config_token != null'
SECOND=$(jget .config_token)
api GET "/api/v1/config/$FIRST"
expect 404 "the older token is gone"
api GET "/api/v1/config/$SECOND"
expect 200 "the new token works"

# base config missing: 503, nothing recorded as delivered
attested_machine n3 rsa
mv "$DATA/configs/worker-app-final.yaml" "$DATA/configs/worker-app-final.yaml.off"
before=$(sql 'SELECT COUNT(*) FROM audit_log')
api GET "/api/v1/config/$TOKEN"
expect 503 "missing base config" '.detail == "Base config not available — ensure CI configs are downloaded"'
check "a failed delivery records nothing" test "$(sql 'SELECT COUNT(*) FROM audit_log'):$(sql "SELECT CASE WHEN config_delivered_at IS NULL THEN 1 ELSE 0 END FROM machines WHERE machine_id='$MID'")" = "$before:1"
mv "$DATA/configs/worker-app-final.yaml.off" "$DATA/configs/worker-app-final.yaml"
api GET "/api/v1/config/$TOKEN"
expect 200 "delivery works once the base config is back"
stop_attestd

start_attestd ITL_REQUIRE_ENCRYPTED_DELIVERY=true
attested_machine e1 rsa
api GET "/api/v1/config/$TOKEN"
expect 406 "plaintext refused when encryption is required" '.detail | test("Accept: application/vnd.itl.config.encrypted\\+json")'
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 200 "encrypted delivery allowed" '.format == "ek-aes256gcm-v1"'
attested_machine e2 ec
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 406 "an ECC EK cannot receive the RSA-OAEP envelope: 406"
done_testing
