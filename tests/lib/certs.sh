# certs.sh - machine-certificate test helpers (source after test-lib.sh and
# swtpm.sh): onboard a swtpm machine up to attested with a bound AK, build
# enroll requests, make CSRs.
b64() { base64 -w0 "$1"; }
challenge() { api GET /api/v1/attest/challenge; NID=$(jget .nonce_id); NHEX=$(jget .nonce | base64 -d | od -An -v -tx1 | tr -d ' \n'); }
SEL=sha256:0,1,2,3,7

# onboard HOSTNAME ROLE: register, approve, bind an ECC AK "ak", attest with a quote; sets MID
onboard() {
	tpm_ek ecc
	api POST /api/v1/register "$(node_body)"
	MID=$(jget .machine_id)
	admin POST "/api/v1/machines/$MID/approve" "{\"role\":\"$2\",\"hostname\":\"$1\"}" >/dev/null
	tpm_ak ecc ak
	api POST "/api/v1/machines/$MID/ak-activate" "{\"ek_cert_pem\":\"$EK_B64\",\"ak_public\":\"$(b64 "$TW/ak.pub")\"}"
	ACT=$(jget .activation_id)
	jget .credential_blob | base64 -d > "$TW/cred.blob"
	tpm_activate ak "$TW/cred.blob" "$TW/secret.bin"
	api POST "/api/v1/machines/$MID/ak-activate/complete" "{\"activation_id\":\"$ACT\",\"secret\":\"$(b64 "$TW/secret.bin")\"}"
	challenge
	tpm_quote ak "$NHEX" "$SEL"
	api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$(b64 "$TW/quote.msg")\",\"pcr_signature\":\"$(b64 "$TW/quote.sig")\",\"pcr_values\":$PCR_JSON")"
}

# enroll_body CSR-FILE: a fresh challenge quoted by the current TPM's AK
enroll_body() {
	challenge
	tpm_quote ak "$NHEX" "$SEL"
	jq -nc --rawfile csr "$1" --arg n "$NID" --arg q "$(b64 "$TW/quote.msg")" --arg s "$(b64 "$TW/quote.sig")" \
		--argjson p "$PCR_JSON" '{csr_pem: $csr, nonce_id: $n, pcr_quote: $q, pcr_signature: $s, pcr_values: $p}'
}
ov() { openssl verify "$@" >/dev/null 2>&1; }
ncerts() { sql "SELECT COUNT(*) FROM issued_certs"; }
newcsr() { # newcsr NAME KEYSPEC...
	n=$1; shift
	openssl req -new "$@" -nodes -keyout "$TMP/$n.key" -out "$TMP/$n.csr" \
		-subj "/C=XX/O=Attacker/CN=someone-else" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "subjectAltName=DNS:evil.example" -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1
}

