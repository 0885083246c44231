#!/bin/sh
# Registration: states by credential, EK checks, and every class of bad input.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd ITL_REGISTRATION_TOKEN=usb-agent-token ITL_MAX_UNAUTH_BODY_BYTES=16384
make_ek a rsa

api POST /api/v1/register "$(node_body ',"hw_mac":"52-54-00-AA-BB-01","hw_serial":"SVC1284AB"')"
expect 200 "unauthenticated register lands in pending_approval" \
	'.status == "pending_approval" and .config_token == null and .config_url == null and (.machine_id | length) == 36'
MID=$(jget .machine_id)
check "response carries the canonical fingerprint" test "$(jget .ek_fingerprint)" = "$EK_FP"
check "iso_url comes from the locally computed schematic" sh -c "printf '%s' \"\$1\" | jq -e '.iso_url == \"http://127.0.0.1:9/image/\" + .schematic_id + \"/v1.9.5/metal-amd64.iso\"' >/dev/null" _ "$BODY"
admin GET "/api/v1/machines/$MID"
expect 200 "machine detail stored" '.hw_mac == "52:54:00:aa:bb:01" and .hw_serial == "SVC1284AB" and .hw_uuid == "unknown" and .ek_key_type == "rsa-2048" and .ek_issuer == "CN=test EK a"'
check "log line: New machine registered" grep -q "INFO attestd.registration — New machine registered: id=$MID role=worker-app ek=" "$DATA/attestd.log"

# re-registration of the same EK: same record, hw refreshed
api POST /api/v1/register "$(node_body ',"hw_product":"R650"')"
expect 200 "re-registration returns the same machine" ".machine_id == \"$MID\" and .status == \"pending_approval\""
check "log line: Re-registration" grep -q "Re-registration of machine $MID (ek=" "$DATA/attestd.log"

# legacy fingerprint forms: SHA-384 of the bytes as sent, SHA-256 of the PEM (USB agent)
LEG=$(base64 -d <<EOB | sha384sum | cut -d' ' -f1
$EK_B64
EOB
)
AG=$(sha256sum "$TMP/a.pem" | cut -d' ' -f1)
api POST /api/v1/register "{\"ek_fingerprint\":\"$LEG\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 200 "legacy SHA-384-of-bytes fingerprint accepted" ".machine_id == \"$MID\" and .ek_fingerprint == \"$EK_FP\""
api POST /api/v1/register "{\"ek_fingerprint\":\"$(echo "$AG" | tr a-f A-F)\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 200 "USB agent SHA-256-of-PEM fingerprint accepted (any case)" ".machine_id == \"$MID\""

# pre-approved registration with a registration token or operator credential
make_ek b ec
api POST /api/v1/register "$(node_body)" -H "X-Registration-Token: usb-agent-token"
expect 200 "registration token pre-approves: registered" '.status == "registered"'
make_ek c ec384
api POST /api/v1/register "$(node_body ',"desired_role":"controlplane"')" -H "Authorization: Bearer usb-agent-token"
expect 200 "registration token as Bearer; desired_role honoured" '.status == "registered" and .role == "controlplane"'
make_ek d rsa3072
api POST /api/v1/register "$(node_body ',"desired_role":"worker-infra"')" -H "Authorization: Bearer $ADMIN"
expect 200 "operator credential pre-approves; worker-infra kept" '.status == "registered" and .role == "worker-infra"'
make_ek e rsa
before=$(counts)
api POST /api/v1/register "$(node_body)" -H "X-Registration-Token: wrong"
expect 401 "wrong registration token is 401, not a silent downgrade"
api POST /api/v1/register "$(node_body)" -H "Authorization: Bearer wrong"
expect 401 "wrong bearer on register is 401"
check "rejected registrations wrote nothing" test "$(counts)" = "$before"

# self-register is always pending
api POST /api/v1/self-register "$(node_body)" -H "X-Registration-Token: usb-agent-token"
expect 200 "self-register: pending_approval, no token" '.status == "pending_approval" and .config_token == null'

# ---- bad input: each class gets a clear 4xx and writes nothing ----
make_ek f rsa
before=$(counts)
api POST /api/v1/register '{"ek_fingerprint": "abc", "ek_cert_pem": '
expect 422 "malformed JSON" '.detail | startswith("body: malformed JSON")'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "duplicate keys" '.detail | test("duplicate")'
api POST /api/v1/register '[1,2]'
expect 422 "non-object body" '.detail == "body: expected a JSON object"'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":42}"
expect 422 "wrong type names the field" '.detail == "ek_cert_pem: expected a string"'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\"}"
expect 422 "missing field names the field" '.detail == "ek_cert_pem: field required"'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":null}"
expect 422 "null for a required field" '.detail | startswith("ek_cert_pem: field required")'
api POST /api/v1/register "$(node_body ',"surprise":1')"
expect 422 "unknown field" '.detail == "surprise: unknown field"'
api POST /api/v1/register "{\"ek_fingerprint\":\"zz$(printf '%094d' 0)\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "bad hex fingerprint" '.detail | startswith("ek_fingerprint: must be a 64-char")'
api POST /api/v1/register "{\"ek_fingerprint\":\"abc123\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "short fingerprint" '.detail | startswith("ek_fingerprint:")'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"not*base64!\"}"
expect 422 "bad base64" '.detail == "ek_cert_pem: Invalid EK material: Invalid base64 encoding in EK material"'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$(printf 'hello world' | base64 -w0)\"}"
expect 422 "base64 of something that is no certificate" '.detail | startswith("ek_cert_pem: Invalid EK material: Cannot parse EK certificate")'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$(head -c 300 "$TMP/f.pem" | base64 -w0)\"}"
expect 422 "truncated PEM" '.detail | startswith("ek_cert_pem: Invalid EK material")'
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"   \"}"
expect 422 "empty EK material" '.detail | test("without TPM evidence is not permitted")'
api POST /api/v1/register "$(node_body ',"ek_source":"tpm"')"
expect 422 "bad ek_source" '.detail == "ek_source: must be '"'"'cert'"'"' or '"'"'pub'"'"'"'
api POST /api/v1/register "$(node_body ',"desired_role":"worker_infra"')"
expect 422 "bad desired_role (no silent default)" '.detail | startswith("desired_role:")'
api POST /api/v1/register "$(node_body ',"hw_mac":"not-a-mac"')"
expect 422 "bad hw_mac" '.detail | startswith("hw_mac:")'
api POST /api/v1/register "$(node_body ',"cluster_id":"Bad_Cluster"')"
expect 422 "bad cluster_id" '.detail | startswith("cluster_id:")'
api POST /api/v1/register "$(node_body ",\"hw_serial\":\"$(head -c 300 /dev/zero | tr '\0' x)\"")"
expect 422 "oversized string names the field" '.detail == "hw_serial: longer than 256 characters"'
make_ek other rsa
OTHER_FP=$EK_FP
make_ek f rsa
api POST /api/v1/register "{\"ek_fingerprint\":\"$OTHER_FP\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "fingerprint of another EK" '.detail | startswith("ek_fingerprint: EK fingerprint mismatch")'
# expired and not-yet-valid EK certificates
make_cert_window old 20200101000000Z 20210101000000Z
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "expired EK certificate" '.detail | test("EK certificate expired at 2021-01-01T00:00:00")'
make_cert_window future 20900101000000Z 20910101000000Z
api POST /api/v1/register "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\"}"
expect 422 "not-yet-valid EK certificate" '.detail | test("EK certificate not yet valid \\(valid from 2090-01-01T00:00:00\\)")'
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/s.key" -out "$TMP/s.pem" -days 5 -subj "/CN=sign" \
	-addext "keyUsage=critical,digitalSignature" >/dev/null 2>&1
SFP=$(openssl x509 -in "$TMP/s.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
api POST /api/v1/register "{\"ek_fingerprint\":\"$SFP\",\"ek_cert_pem\":\"$(base64 -w0 "$TMP/s.pem")\"}"
expect 422 "RSA EK without keyEncipherment" '.detail | test("does not include keyEncipherment")'
openssl req -x509 -newkey rsa:1024 -nodes -keyout "$TMP/w.key" -out "$TMP/w.pem" -days 5 -subj "/CN=weak" >/dev/null 2>&1
WFP=$(openssl x509 -in "$TMP/w.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
api POST /api/v1/register "{\"ek_fingerprint\":\"$WFP\",\"ek_cert_pem\":\"$(base64 -w0 "$TMP/w.pem")\"}"
expect 422 "1024-bit RSA EK refused" '.detail | test("unsupported RSA EK size 1024")'
# size and media type
big=$(head -c 20000 /dev/zero | tr '\0' a)
api POST /api/v1/register "{\"pad\":\"$big\"}"
expect 413 "body over the unauthenticated cap is 413"
make_ek h rsa
STATUS=$(curl -s -o "$TMP/resp.body" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary "$(node_body)" "$BASE/api/v1/register")
BODY=$(cat "$TMP/resp.body")
expect 415 "wrong content type is 415" '.detail | startswith("Unsupported Media Type")'
STATUS=$(curl -s -o "$TMP/resp.body" -w '%{http_code}' -X POST --data-binary "$(node_body)" "$BASE/api/v1/register")
BODY=$(cat "$TMP/resp.body")
expect 415 "missing content type with a body is 415"
check "none of the bad requests wrote anything" test "$(counts)" = "$before"

# public key (ek_source=pub) gives the same canonical fingerprint as the certificate
make_ek g rsa
CERT_FP=$EK_FP
PUB_B64=$(openssl x509 -in "$TMP/g.pem" -pubkey -noout | base64 -w0)
api POST /api/v1/register "{\"ek_fingerprint\":\"$CERT_FP\",\"ek_cert_pem\":\"$PUB_B64\",\"ek_source\":\"pub\"}"
expect 200 "EK public key registers with the canonical fingerprint" ".ek_fingerprint == \"$CERT_FP\""
PUBMID=$(jget .machine_id)
api POST /api/v1/register "$(node_body)"
expect 200 "the certificate of the same key finds the same machine" ".machine_id == \"$PUBMID\""
DER_B64=$(openssl x509 -in "$TMP/g.pem" -outform DER | base64 -w0)
api POST /api/v1/register "{\"ek_fingerprint\":\"$CERT_FP\",\"ek_cert_pem\":\"$DER_B64\"}"
expect 200 "DER form of the same certificate finds the same machine" ".machine_id == \"$PUBMID\""
done_testing
