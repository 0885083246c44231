#!/bin/sh
# TPM proof of possession with real software TPMs (swtpm + tpm2-tools):
# EK certificate from NV, AK credential activation, challenge, quote,
# attest, PCR policy, TPM-bound config decrypted by the TPM; and the ways
# each step must fail.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/swtpm.sh"

for t in swtpm swtpm_setup tpm2_createak; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done

tpm_manufacture A
tpm_manufacture B
tpm_manufacture C other		# a TPM from another "manufacturer"
CAROOT="$TMP/tpmca-ca/swtpm-localca-rootca-cert.pem"
CAINT="$TMP/tpmca-ca/issuercert.pem"
mkdir -p "$TMP/bundle"
cp "$CAROOT" "$TMP/bundle/root.pem"

start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_CA_BUNDLE_DIR="$TMP/bundle" ITL_NONCE_TTL_SECONDS=10

b64() { base64 -w0 "$1"; }

# register + approve the current EK; sets MID
enroll() { # enroll HOSTNAME [extra node fields]
	api POST /api/v1/register "$(node_body "${2:-}")"
	MID=$(jget .machine_id)
	admin POST "/api/v1/machines/$MID/approve" "{\"role\":\"worker-app\",\"hostname\":\"$1\"}" >/dev/null
}

# activate AK-NAME [ek_public-file]: both steps; leaves STATUS/BODY of step 2
activate() {
	extra=""
	[ -n "${2:-}" ] && extra=",\"ek_public\":\"$(b64 "$2")\""
	api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/$1.pub")\"$extra}"
	[ "$STATUS" = 200 ] || return 1
	ACT=$(jget .activation_id)
	jget .credential_blob | base64 -d > "$TW/cred.blob"
	tpm_activate "$1" "$TW/cred.blob" "$TW/secret.bin" || return 1
	api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
}

challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n'); }

quote_body() { # quote_body [pcr-json] [quote-file] [sig-file]
	node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "${2:-$TW/quote.msg}")\",\"pcr_signature\":\"$(b64 "${3:-$TW/quote.sig}")\",\"pcr_values\":${1:-$PCR_JSON}"
}

SEL=sha256:0,1,2,3,7

say "--- RSA-2048 EK (TPM A): chain from the TPM's NV range, template path"
tpm_use A
tpm_ek rsa
check "swtpm EK certificate verifies with openssl against the local CA" \
	sh -c "openssl x509 -inform der -in '$TW/ek-rsa.der' | openssl verify -CAfile '$CAROOT' -untrusted '$CAINT' >/dev/null"
openssl x509 -in "$CAINT" -outform der > "$TMP/int.der"
head -c 40 /dev/zero | tr '\0' '\377' >> "$TMP/int.der"	# NV ranges are padded
enroll tpm-a-rsa ",\"ek_chain_nv\":\"$(b64 "$TMP/int.der")\""
admin GET "/api/v1/machines/$MID"
expect 200 "EK chain built with the intermediate from the NV chain range" \
	'.ek_verified == true and .status == "registered" and .ak_bound == false and (.ek_issuer | test("swtpm-localca"))'
check "the intermediate is cached in the database" test "$(sql 'SELECT COUNT(*) FROM ek_intermediates')" = 1
MID_A=$MID; EKB_A=$EK_B64; EKF_A=$EK_FP

tpm_ak rsa ak
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_pub_pem\":\"-----BEGIN PUBLIC KEY-----\"}"
expect 422 "an SPKI PEM alone cannot bind an AK" '.detail | startswith("ak_public: required")'
head -c $(( $(wc -c < "$TW/ak.pub") - 1 )) "$TW/ak.pub" > "$TW/ak-trunc.pub"
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak-trunc.pub")\"}"
expect 422 "truncated AK public area" '.detail | startswith("ak_public: TPM2B_PUBLIC")'
{ cat "$TW/ak.pub"; printf '\000'; } > "$TW/ak-pad.pub"
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak-pad.pub")\"}"
expect 422 "padded AK public area" '.detail | startswith("ak_public: TPM2B_PUBLIC")'
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ek-rsa.pub")\"}"
expect 422 "the EK itself is not an AK (not a signing key)" '.detail | test("lack .sign.")'

# an unrestricted signing key in the same TPM
tpm2_createprimary -C o -c "$TW/prim.ctx" >/dev/null 2>&1; tpm_flush
tpm2_create -C "$TW/prim.ctx" -G rsa2048:rsassa-sha256 -u "$TW/k.pub" -r "$TW/k.priv" \
	-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null 2>&1; tpm_flush
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/k.pub")\"}"
expect 422 "a key without the restricted attribute is refused as AK" '.detail | test("lack .restricted.")'

api POST "/api/v1/machines/00000000-0000-4000-8000-000000000000/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
expect 404 "activation for an unknown machine" '.detail == "Machine not found"'

# wrong secret: one guess per activation
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
expect 200 "activation step 1: a credential for the AK's Name" \
	".ak_accepted == false and (.activation_id | test(\"^[0-9a-f]{32}$\")) and .ak_name == \"$(hex_of "$TW/ak.name")\""
ACT=$(jget .activation_id)
check "credential blob is in tpm2-tools format (0xBADCC0DE, ID object 68 bytes, secret 2+256)" \
	test "$(jget .credential_blob | base64 -d | wc -c)" = 336
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(head -c 32 /dev/urandom | base64 -w0)\"}"
expect 422 "a wrong activation secret is refused" '.detail | startswith("secret: does not match")'
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(head -c 32 /dev/urandom | base64 -w0)\"}"
expect 409 "the activation is consumed by the failed attempt" '.detail | startswith("Activation already used")'
check "the failed activation is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='ak_activation_failed' AND machine_id='$MID'")" = 1
admin GET "/api/v1/machines/$MID"
expect 200 "no AK bound after a failed activation" '.ak_bound == false'

# the real thing
activate ak
expect 200 "TPM2_ActivateCredential recovers the secret: AK bound" ".ak_accepted == true and .ak_name == \"$(hex_of "$TW/ak.name")\""
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
expect 409 "an AK binding is permanent" '.detail | test("already bound")'
api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"AAAA\"}"
expect 409 "the used activation cannot be replayed"

# attest
api POST /api/v1/attest "$(node_body)"
expect 422 "a machine with a bound AK cannot attest without a quote" '.detail | test("bound attestation key")'
challenge
tpm_quote ak "$NHEX" "$SEL"
api POST /api/v1/attest "$(node_body ",\"pcr_quote\":\"$(b64 "$TW/quote.msg")\",\"pcr_signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON")"
expect 422 "a quote without nonce_id is refused" '.detail | startswith("nonce_id:")'
BAD=$(printf '%s' "$PCR_JSON" | jq -c --arg v "$(printf '%064d' 0 | tr 0 1)" '.["sha256:7"] = $v')
api POST /api/v1/attest "$(quote_body "$BAD")"
expect 422 "altered PCR values" '.detail | test("pcrDigest does not match")'
api POST /api/v1/attest "$(quote_body)"
expect 409 "the nonce was consumed by the failed attempt (replay)" '.detail | test("replay detected")'
challenge
tpm_quote ak "$NHEX" "$SEL"
MISSING=$(printf '%s' "$PCR_JSON" | jq -c 'del(.["sha256:3"])')
api POST /api/v1/attest "$(quote_body "$MISSING")"
expect 422 "a quoted PCR without a reported value" '.detail | test("sha256:3 is in the quote")'
challenge
tpm_quote ak "$NHEX" "$SEL"
EXTRA=$(printf '%s' "$PCR_JSON" | jq -c --arg v "$(printf '%064d' 0)" '.["sha256:9"] = $v')
api POST /api/v1/attest "$(quote_body "$EXTRA")"
expect 422 "a reported PCR that is not quoted" '.detail | test("sha256:9 was reported but is not in the quote")'
challenge
tpm_quote ak "$NHEX" "$SEL"
head -c $(( $(wc -c < "$TW/quote.msg") - 1 )) "$TW/quote.msg" > "$TW/q-trunc"
api POST /api/v1/attest "$(quote_body "" "$TW/q-trunc")"
expect 422 "truncated TPMS_ATTEST (nonce not burnt)" '.detail | test("truncated or malformed TPMS_ATTEST")'
{ cat "$TW/quote.msg"; printf '\000'; } > "$TW/q-pad"
api POST /api/v1/attest "$(quote_body "" "$TW/q-pad")"
expect 422 "padded TPMS_ATTEST" '.detail | test("trailing bytes")'
challenge
tpm_quote ak "$NHEX" "$SEL"
head -c 100 "$TW/quote.sig" > "$TW/s-trunc"
api POST /api/v1/attest "$(quote_body "" "" "$TW/s-trunc")"
expect 422 "truncated signature" '.detail | test("signature:")'
challenge
tpm_quote ak "$NHEX" "$SEL"
{ cat "$TW/quote.sig"; printf '\000'; } > "$TW/s-pad"
api POST /api/v1/attest "$(quote_body "" "" "$TW/s-pad")"
expect 422 "padded signature" '.detail | test("signature:")'
# TPM2_Sign posing as a quote: the restricted AK refuses to sign TPM-generated data,
# an unrestricted key can, but it is not the bound AK
tpm2_sign -c "$TW/ak.ctx" -g sha256 -o "$TW/ak-forged.sig" "$TW/quote.msg" >/dev/null 2>"$TW/sign.log"
tpm_flush
check "the restricted AK refuses TPM2_Sign over a forged TPMS_ATTEST (TPM_RC_TICKET)" \
	sh -c "[ ! -s '$TW/ak-forged.sig' ] && grep -qi 'ticket' '$TW/sign.log'"
challenge
tpm_quote ak "$NHEX" "$SEL"
tpm2_load -C "$TW/prim.ctx" -u "$TW/k.pub" -r "$TW/k.priv" -c "$TW/k.ctx" >/dev/null 2>&1
tpm2_sign -c "$TW/k.ctx" -g sha256 -s rsassa -o "$TW/forged.sig" "$TW/quote.msg" >/dev/null 2>&1; tpm_flush
check "an unrestricted key signed the forged quote with TPM2_Sign" test -s "$TW/forged.sig"
api POST /api/v1/attest "$(quote_body "" "" "$TW/forged.sig")"
expect 422 "a TPM2_Sign signature by another key is not a quote" '.detail | test("does not verify with the machine.s attestation key")'
# TPM2_Sign by the bound AK itself over a TPMS_ATTEST without the magic: TPM2_Hash gives a
# ticket for data not starting with TPM_GENERATED_VALUE, so the restricted AK signs it; with
# the right nonce and PCR digest only the magic check tells it from a quote (issue 19)
challenge
tpm_quote ak "$NHEX" "$SEL"
{ printf '\000\000\000\000'; tail -c +5 "$TW/quote.msg"; } > "$TW/nomagic.msg"
tpm2_sign -c "$TW/ak.ctx" -g sha256 -o "$TW/nomagic.sig" "$TW/nomagic.msg" >/dev/null 2>"$TW/sign2.log"; tpm_flush
check "the restricted AK signs a magic-less TPMS_ATTEST (TPM2_Hash ticket)" test -s "$TW/nomagic.sig"
check "... and the signature verifies with the AK" \
	sh -c "tpm2_verifysignature -c '$TW/ak.ctx' -g sha256 -m '$TW/nomagic.msg' -s '$TW/nomagic.sig' >/dev/null 2>&1"
tpm_flush
api POST /api/v1/attest "$(quote_body "" "$TW/nomagic.msg" "$TW/nomagic.sig")"
expect 422 "a magic-less TPMS_ATTEST signed by the AK is refused: not a quote" '.detail | test("magic is not TPM_GENERATED_VALUE")'
# another TPM's quote for this machine's EK
tpm_use B
tpm_ek rsa
tpm_ak rsa ak
challenge
tpm_quote ak "$NHEX" "$SEL"
QB=$TW/quote.msg; SB=$TW/quote.sig; PB=$PCR_JSON
tpm_use A
EK_B64=$EKB_A; EK_FP=$EKF_A
api POST /api/v1/attest "$(quote_body "$PB" "$QB" "$SB")"
expect 422 "another TPM's quote is refused" '.detail | test("does not verify with the machine.s attestation key")'
# a quote over another nonce
challenge
OLD=$NHEX
tpm_quote ak "$OLD" "$SEL"
challenge
api POST /api/v1/attest "$(quote_body)"
expect 422 "a quote over another nonce" '.detail | test("extraData is not the challenge nonce")'
# expired nonce
challenge
tpm_quote ak "$NHEX" "$SEL"
sleep 11	# the expiry is part of the HMAC-authenticated challenge
api POST /api/v1/attest "$(quote_body)"
expect 410 "an expired nonce" '.detail | test("expired")'
check "no failed attempt attested the machine" test "$(sql "SELECT status FROM machines WHERE machine_id='$MID'")" = registered

# PCR policy (operator API)
PCR7=$(printf '%s' "$PCR_JSON" | jq -r '.["sha256:7"]')
api PUT /api/v1/pcr-policies/worker-app '{"pcrs":{"sha256:7":"00"}}'
expect 401 "PCR policies need an operator"
admin PUT /api/v1/pcr-policies/worker-app '{"pcrs":{"sha256:7":"00"}}'
expect 422 "a PCR policy value of the wrong length" '.detail | startswith("pcrs:")'
admin PUT /api/v1/pcr-policies/worker-app '{"pcrs":{"sha999:7":"00"}}'
expect 422 "a PCR policy with an unknown bank" '.detail | startswith("pcrs:")'
admin PUT /api/v1/pcr-policies/nosuchrole '{"pcrs":{"sha256:7":"00"}}'
expect 404 "a PCR policy for an unknown role"
admin PUT /api/v1/pcr-policies/worker-app "{\"pcrs\":{\"sha256:7\":\"$(printf '%064d' 0 | tr 0 a)\",\"sha256:0\":[\"$(printf '%064d' 0)\"]},\"reason\":\"golden values\"}"
expect 200 "PCR policy set" '.role == "worker-app" and (.pcrs["sha256:7"] | length) == 1 and .updated_by == "SYSTEM"'
admin GET /api/v1/pcr-policies
expect 200 "PCR policies listed" '.total == 1 and .policies[0].role == "worker-app"'
challenge
tpm_quote ak "$NHEX" "$SEL"
api POST /api/v1/attest "$(quote_body)"
expect 422 "a quote that misses the policy names the failing PCRs" \
	'(.detail | test("sha256:7 is [0-9a-f]{16}")) and (.detail | test("sha256:0") | not)'
check "the refusal is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='attest_rejected' AND machine_id='$MID'")" = 1
admin PUT /api/v1/pcr-policies/worker-app "{\"pcrs\":{\"sha256:7\":[\"$(printf '%064d' 0)\",\"$PCR7\"]}}"
expect 200 "PCR policy updated with the golden PCR 7"
challenge
tpm_quote ak "$NHEX" "sha256:0,1"
api POST /api/v1/attest "$(quote_body)"
expect 422 "a quote that leaves out a policy PCR" '.detail | test("sha256:7 not in the quote")'
challenge
tpm_quote ak "$NHEX" "$SEL"
api POST /api/v1/attest "$(quote_body)"
expect 200 "a verified quote attests the machine" '.status == "attested" and .action == "apply-config" and .quote_verified == true'
TOKEN=$(jget .config_token)
admin GET "/api/v1/machines/$MID"
expect 200 "boot counters recorded from the quote" '.tpm_reset_count != null and .last_quote_at != null and .ak_bound == true'
RESET1=$(jget .tpm_reset_count)
check "attest audit entry says the quote was verified" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action='attest' AND machine_id='$MID' AND detail LIKE '%quote verified%'")" = 1

# TPM-bound config: only this TPM can open it
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 200 "config sealed to the TPM" ".format == \"tpm-credential-aes256gcm-v1\" and .machine_id == \"$MID\""
printf '%s' "$BODY" > "$TW/env.json"
jget .credential_blob | base64 -d > "$TW/env.blob"
check "the config key is recovered by TPM2_ActivateCredential" tpm_activate ak "$TW/env.blob" "$TW/env.key"
api GET "/api/v1/config/$TOKEN"
cp "$TMP/resp.body" "$TW/plain.yaml"
check "the envelope decrypts to the MachineConfig" sh -c "'$GCM_OPEN' '$TW/env.key' '$TW/env.json' | cmp -s - '$TW/plain.yaml'"
ENV_BLOB=$TW/env.blob
tpm_use B
if tpm_activate ak "$ENV_BLOB" "$TW/stolen.key"; then fail "another TPM cannot recover the config key"
else pass "another TPM cannot recover the config key"; fi
tpm_use A
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json; format=ek-aes256gcm-v1"
expect 200 "the reference envelope can still be asked for" '.format == "ek-aes256gcm-v1"'

say "--- ECC P-384 EK (TPM A), EK public area sent by the node, reboot"
tpm_ek ecc
enroll tpm-a-ecc ",\"ek_chain_pem\":\"$(awk '{printf "%s\\n", $0}' "$CAINT")\""
admin GET "/api/v1/machines/$MID"
expect 200 "P-384 EK chain verifies" '.ek_verified == true and .ek_key_type == "ecc-p384"'
tpm_ak ecc ak2
head -c 20 "$TW/ek-ecc.pub" > "$TW/ek-trunc.pub"
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak2.pub")\",\"ek_public\":\"$(b64 "$TW/ek-trunc.pub")\"}"
expect 422 "truncated EK public area" '.detail | startswith("ek_public:")'
api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak2.pub")\",\"ek_public\":\"$(b64 "$TW/ek-rsa.pub")\"}"
expect 422 "an EK public area that is not the certificate's key" '.detail | test("not the key of the machine.s EK certificate")'
api POST "/api/v1/machines/$MID_A/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak2.pub")\"}"
expect 409 "activation with another machine's EK" '.detail | test("does not belong")'
activate ak2 "$TW/ek-ecc.pub"
expect 200 "ECC P-384 EK (SHA-384, AES-256): AK bound" '.ak_accepted == true'
challenge
tpm_quote ak2 "$NHEX" "$SEL"
api POST /api/v1/attest "$(quote_body)"
expect 200 "ECDSA quote (TPMT_SIGNATURE) attests" '.status == "attested" and .quote_verified == true'
TOKEN=$(jget .config_token)
# two banks in one quote: pcrDigest over sha1 then sha256 values, in selection order
challenge
tpm2_quote -c "$TW/ak2.ctx" -l "sha1:0,7+sha256:0,7" -q "$NHEX" -m "$TW/quote.msg" -s "$TW/quote.sig" \
	-o "$TW/quote.pcrs" -F values -g sha256 >/dev/null 2>&1
tpm_flush
V=$(hex_of "$TW/quote.pcrs")
MIXED="{\"sha1:0\":\"$(echo "$V" | cut -c1-40)\",\"sha1:7\":\"$(echo "$V" | cut -c41-80)\",\"sha256:0\":\"$(echo "$V" | cut -c81-144)\",\"sha256:7\":\"$(echo "$V" | cut -c145-208)\"}"
api POST /api/v1/attest "$(quote_body "$MIXED")"
expect 200 "a quote over the sha1 and sha256 banks verifies" '.quote_verified == true'
TOKEN=$(jget .config_token)
# the reference's signature form: DER ECDSA instead of a TPMT_SIGNATURE
challenge
tpm2_quote -c "$TW/ak2.ctx" -l "$SEL" -q "$NHEX" -m "$TW/quote.msg" -s "$TW/quote.der" -f plain \
	-o "$TW/quote.pcrs" -F values -g sha256 >/dev/null 2>&1
tpm_flush
check "tpm2_quote -f plain writes a DER ECDSA signature" sh -c "openssl asn1parse -inform der -in '$TW/quote.der' >/dev/null 2>&1"
api POST /api/v1/attest "$(quote_body "" "" "$TW/quote.der")"
expect 200 "a DER ECDSA signature (reference form) verifies" '.quote_verified == true'
TOKEN=$(jget .config_token)
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 200 "P-384 EK: config sealed to the TPM" '.format == "tpm-credential-aes256gcm-v1"'
printf '%s' "$BODY" > "$TW/env2.json"
jget .credential_blob | base64 -d > "$TW/env2.blob"
tpm_activate ak2 "$TW/env2.blob" "$TW/env2.key"
api GET "/api/v1/config/$TOKEN"
cp "$TMP/resp.body" "$TW/plain2.yaml"
check "P-384 EK: the envelope decrypts to the MachineConfig" sh -c "'$GCM_OPEN' '$TW/env2.key' '$TW/env2.json' | cmp -s - '$TW/plain2.yaml'"
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json; format=ek-aes256gcm-v1"
check "an EC EK gets no RSA envelope (plaintext fallback)" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/yaml'" _ "$HEADERS"

# reboot: TPM reset raises resetCount; the AK is reloaded from its blobs
tpm_reboot
tpm2_load -C 0x81010016 -u "$TW/ak2.pub" -r "$TW/ak2.priv" -c "$TW/ak2.ctx" >/dev/null 2>&1; tpm_flush
admin GET "/api/v1/machines/$MID"
R0=$(jget .tpm_reset_count)
challenge
tpm_quote ak2 "$NHEX" "$SEL"
api POST /api/v1/attest "$(quote_body)"
expect 200 "after a reboot the machine attests again" '.status == "already_attested" and .quote_verified == true'
admin GET "/api/v1/machines/$MID"
expect 200 "the reboot shows in the TPM resetCount" ".tpm_reset_count > $R0"
check "the reboot is logged" grep -q "rebooted: TPM resetCount" "$DATA/attestd.log"

say "--- EK chains that do not verify"
tpm_use C
tpm_ek rsa
api POST /api/v1/register "$(node_body)"
expect 200 "non-strict: a foreign manufacturer's EK registers"
MID_C=$(jget .machine_id)
admin GET "/api/v1/machines/$MID_C"
expect 200 "non-strict: the failed chain is recorded" '.ek_verified == false and (.ek_chain_error | length) > 0'
tpm_use B
tpm_ek ecc
api POST /api/v1/register "$(node_body)"
MID_B=$(jget .machine_id)
admin GET "/api/v1/machines/$MID_B"
expect 200 "the cached intermediate completes a chain the node did not send" '.ek_verified == true'
stop_attestd

start_attestd ITL_TPM_VERIFY_CA=true ITL_TPM_VERIFY_CA_STRICT=true ITL_TPM_CA_BUNDLE_DIR="$TMP/bundle"
tpm_use C
tpm_ek ecc
before=$(counts)
api POST /api/v1/register "$(node_body)"
expect 422 "strict: an EK that does not chain is refused" '.detail | test("does not verify against the TPM manufacturer CAs")'
check "strict: nothing written" test "$(counts)" = "$before"
tpm_use A
tpm_ek rsa
api POST /api/v1/register "$(node_body ",\"ek_chain_nv\":\"$(b64 "$TMP/int.der")\"")"
expect 200 "strict: a chaining EK registers"
stop_attestd

say "--- ITL_REQUIRE_ENCRYPTED_DELIVERY with a TPM-bound machine"
start_attestd ITL_REQUIRE_ENCRYPTED_DELIVERY=true ITL_REQUIRE_NONCE=true ITL_REQUIRE_QUOTE=true
tpm_use B
tpm_ek rsa
enroll tpm-b
tpm_ak rsa ak3 rsapss
activate ak3
expect 200 "RSAPSS AK bound"
challenge
tpm2_quote -c "$TW/ak3.ctx" -l "$SEL" -q "$NHEX" -m "$TW/quote.msg" -s "$TW/quote.sig" -o "$TW/quote.pcrs" -F values -g sha256 --scheme rsapss >/dev/null 2>&1
tpm_flush
tpm_quote_json() { vals=$(hex_of "$TW/quote.pcrs"); PCR_JSON="{"; off=0; sep=""; for i in 0 1 2 3 7; do PCR_JSON="$PCR_JSON$sep\"sha256:$i\":\"$(echo "$vals" | cut -c$((off + 1))-$((off + 64)))\""; off=$((off + 64)); sep=","; done; PCR_JSON="$PCR_JSON}"; }
tpm_quote_json
api POST /api/v1/attest "$(quote_body)"
expect 200 "RSAPSS quote attests under ITL_REQUIRE_NONCE + ITL_REQUIRE_QUOTE" '.status == "attested"'
TOKEN=$(jget .config_token)
api GET "/api/v1/config/$TOKEN"
expect 406 "plaintext refused" '.detail | startswith("Plaintext config delivery is disabled")'
api GET "/api/v1/config/$TOKEN" "" -H "Accept: application/vnd.itl.config.encrypted+json"
expect 200 "TPM-bound envelope delivered" '.format == "tpm-credential-aes256gcm-v1"'
stop_attestd
done_testing
