#!/bin/sh
# A new AK activation never replaces a live one (issue 19, hole 6): with
# real software TPMs, a machine starts its activation, others (anyone
# holding the public EK certificate, with another TPM's AK) start theirs,
# concurrently too — the machine still completes its own and binds its
# AK.  Live activations are bounded per machine.
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
