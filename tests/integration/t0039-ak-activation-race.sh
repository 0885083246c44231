#!/bin/sh
# A new AK activation never replaces a live one (issue 19, hole 6): with
# real software TPMs, a machine starts its activation, others (anyone
# holding the public EK certificate, with another TPM's AK) start theirs,
# concurrently too — the machine still completes its own and binds its
# AK.  Live activations are bounded per machine.  With the AK bound, the
# machine's hardware details change with a verified quote (issue 19,
# hole 5: proof of possession), not with a re-registration.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_createak; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done
tpm_manufacture V
tpm_manufacture E
b64() { base64 -w0 "$1"; }

start_attestd
tpm_use E; tpm_ek rsa; tpm_ak rsa evil; EVIL_PUB=$(b64 "$TW/evil.pub")
tpm_use V; tpm_ek rsa; tpm_ak rsa ak
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"victim"}'
start_body="{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
evil_body="{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$EVIL_PUB\"}"

api POST "/api/v1/machines/$MID/ak-activate" "$start_body"
expect 200 "the machine starts its activation"
ACT=$(jget .activation_id)
jget .credential_blob | base64 -d > "$TW/cred.blob"
api POST "/api/v1/machines/$MID/ak-activate" "$evil_body"
expect 200 "someone else starts another activation for the machine (another TPM's AK)"
printf '%s' "$evil_body" > "$TMP/evil.json"
printf '%s' "$start_body" > "$TMP/replay.json"
cpids=""
for i in 1 2 3 4; do
	f=$TMP/evil.json; [ "$i" = 4 ] && f=$TMP/replay.json	# also the machine's own AK, replayed
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' --data-binary @"$f" \
		"$BASE/api/v1/machines/$MID/ak-activate" > "$TMP/race.$i" &
	cpids="$cpids $!"
done
wait $cpids
check "four concurrent activations by others: all answered 200" test "$(cat "$TMP"/race.* | grep -c 200)" = 4
check "the machine's activation is still live" test "$(sql "SELECT COUNT(*) FROM ak_activations WHERE activation_id = '$ACT' AND consumed_at IS NULL")" = 1
tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
expect 200 "the machine completes its own activation: its AK is bound" ".ak_accepted == true and .ak_name == \"$(hex_of "$TW/ak.name")\""
admin GET "/api/v1/machines/$MID"
expect 200 "the bound AK is the machine's" ".ak_bound == true"
api POST "/api/v1/machines/$MID/ak-activate" "$evil_body"
expect 409 "after binding, no further activation" '.detail | test("already bound")'

# hardware details of an approved machine: not by an unauthenticated
# re-registration, but with a verified quote (proof of possession)
api POST /api/v1/register "$(node_body ',"hw_serial":"NEW-SERIAL"')"
expect 200 "re-registration with another serial: answered" '.message | test("NOT changed")'
admin GET "/api/v1/machines/$MID"
expect 200 "... the serial is unchanged" '.hw_serial != "NEW-SERIAL"'
api GET /api/v1/attest/challenge
NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n')
tpm_quote ak "$NHEX" sha256:0,1,2,3,7
api POST /api/v1/attest "$(node_body ",\"hw_serial\":\"NEW-SERIAL\",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "$TW/quote.msg")\",\"pcr_signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON")"
expect 200 "attest with a verified quote and another serial" '.quote_verified == true'
admin GET "/api/v1/machines/$MID"
expect 200 "the quote changed the serial" '.hw_serial == "NEW-SERIAL"'
check "audited as hw_updated naming the field" test "$(sql "SELECT detail FROM audit_log WHERE machine_id = '$MID' AND action = 'hw_updated'")" = "attestation with a verified quote; hardware details changed: hw_serial"

# at most 8 live activations per machine
tpm_use V; tpm_ek ecc
api POST /api/v1/register "$(node_body)"
M2=$(jget .machine_id)
admin POST "/api/v1/machines/$M2/approve" '{"role":"worker-app"}'
evil2="{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$EVIL_PUB\"}"
ok=0
for i in 1 2 3 4 5 6 7 8; do api POST "/api/v1/machines/$M2/ak-activate" "$evil2"; [ "$STATUS" = 200 ] && ok=$((ok + 1)); done
check "eight live activations are accepted" test "$ok" = 8
api POST "/api/v1/machines/$M2/ak-activate" "$evil2"
expect 429 "the ninth is refused, naming when the oldest expires" '.detail | test("8 activations are outstanding for machine .* retry in [0-9]+ s")'
check "none was replaced" test "$(sql "SELECT COUNT(*) FROM ak_activations WHERE machine_id = '$M2' AND consumed_at IS NULL")" = 8
done_testing
