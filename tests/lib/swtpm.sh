# swtpm.sh - software TPMs for integration tests (source after test-lib.sh).
#
# tpm_manufacture NAME [CA] [nocert]: a swtpm with an RSA-2048 EK (persistent
#   0x81010001, certificate in NV 0x01c00002) and an ECC P-384 EK
#   (0x81010016, certificate in NV 0x01c00016), certificates issued by the
#   local CA "CA" (default "ca": TPMs sharing a CA share a manufacturer
#   root); with "nocert" the EKs have no certificates (like older Intel
#   PTT and AMD fTPM); starts it on 127.0.0.1 and records its PID for cleanup.
# tpm_use NAME: point tpm2-tools at that TPM; sets TW (its work dir).
# The CA root is $TMP/tpmca-CA/swtpm-localca-rootca-cert.pem, the
# intermediate $TMP/tpmca-CA/issuercert.pem.
# There is no resource manager: every step flushes transient objects.

tpm_manufacture() {
	tname=$1; tca=${2:-ca}
	tcerts="--create-ek-cert --create-platform-cert"
	[ "${3:-}" = nocert ] && tcerts=""
	TW="$TMP/tpm-$tname"; tcadir="$TMP/tpmca-$tca"
	mkdir -p "$TW/state" "$tcadir"
	cat > "$TW/localca.conf" <<EOF
statedir = $tcadir
signingkey = $tcadir/signkey.pem
issuercert = $tcadir/issuercert.pem
certserial = $tcadir/certserial
EOF
	printf -- '--platform-manufacturer Test\n--platform-version 2.1\n--platform-model Test\n' > "$TW/localca.options"
	cat > "$TW/setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $TW/localca.conf
create_certs_tool_options = $TW/localca.options
active_pcr_banks = sha256
EOF
	if ! swtpm_setup --tpm2 --tpmstate "$TW/state" --config "$TW/setup.conf" \
		--createek --decryption $tcerts --lock-nvram \
		--overwrite --pcr-banks sha1,sha256 >"$TW/setup.log" 2>&1; then
		echo "Bail out! swtpm_setup failed"; cat "$TW/setup.log" >&2; exit 1
	fi
	# swtpm cannot listen on port 0: try random high ports until one binds
	n=0
	while :; do
		n=$((n + 1))
		tport=$(( 20000 + ($(od -An -N2 -tu2 /dev/urandom) % 20000) * 2 ))
		rm -f "$TW/swtpm.pid"
		swtpm socket --tpm2 --tpmstate dir="$TW/state" \
			--server type=tcp,port=$tport,bindaddr=127.0.0.1 \
			--ctrl type=tcp,port=$((tport + 1)),bindaddr=127.0.0.1 \
			--flags not-need-init,startup-clear --pid file="$TW/swtpm.pid" --daemon >"$TW/swtpm.log" 2>&1 &&
			[ -s "$TW/swtpm.pid" ] && break
		if [ $n -ge 10 ]; then echo "Bail out! swtpm did not start"; cat "$TW/swtpm.log" >&2; exit 1; fi
	done
	PIDS="$PIDS $(cat "$TW/swtpm.pid")"
	echo "$tport" > "$TW/port"
	tpm_use "$tname"
	i=0
	until tpm2_getcap properties-fixed >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && { echo "Bail out! swtpm not answering"; exit 1; }
		sleep 0.05
	done
}

tpm_use() {
	TW="$TMP/tpm-$1"
	TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$(cat "$TW/port")"
	export TPM2TOOLS_TCTI
}

tpm_flush() { tpm2_flushcontext -t >/dev/null 2>&1; tpm2_flushcontext -s >/dev/null 2>&1; true; }

hex_of() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# tpm_ek rsa|ecc: the EK certificate (DER) and public area of the
# current TPM into $TW/ek-KIND.der, $TW/ek-KIND.pub; sets EK_B64, EK_FP,
# EK_HANDLE.
tpm_ek() {
	case $1 in
	rsa) EK_HANDLE=0x81010001; nv=0x01c00002 ;;
	ecc) EK_HANDLE=0x81010016; nv=0x01c00016 ;;
	esac
	tpm2_nvread $nv -C $nv -o "$TW/ek-$1.der" >/dev/null 2>&1 || { echo "Bail out! nvread $nv"; exit 1; }
	tpm2_readpublic -c $EK_HANDLE -o "$TW/ek-$1.pub" >/dev/null 2>&1
	EK_B64=$(base64 -w0 "$TW/ek-$1.der")
	EK_FP=$(openssl x509 -inform der -in "$TW/ek-$1.der" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
}

# tpm_ak rsa|ecc NAME [scheme]: an AK under the current EK ($EK_HANDLE):
# $TW/NAME.pub (TPM2B_PUBLIC), .priv, .ctx, .name.
tpm_ak() {
	case $1 in
	rsa) alg="-G rsa -g sha256 -s ${3:-rsassa}" ;;
	ecc) alg="-G ecc -g sha256 -s ecdsa" ;;
	esac
	# shellcheck disable=SC2086
	tpm2_createak -C $EK_HANDLE -c "$TW/$2.ctx" $alg -u "$TW/$2.pub" -r "$TW/$2.priv" -n "$TW/$2.name" -f tss \
		>/dev/null 2>"$TW/createak.log" || { cat "$TW/createak.log" >&2; return 1; }
	tpm_flush
}

# tpm_activate AK-NAME BLOB-FILE OUT: TPM2_ActivateCredential with the
# current EK (a low-range RSA EK needs PolicySecret(TPM_RH_ENDORSEMENT)).
tpm_activate() {
	if [ "$EK_HANDLE" = 0x81010001 ]; then
		tpm2_startauthsession --policy-session -S "$TW/s.ctx" >/dev/null 2>&1
		tpm2_policysecret -S "$TW/s.ctx" -c e >/dev/null 2>&1
		tpm2_activatecredential -c "$TW/$1.ctx" -C $EK_HANDLE -i "$2" -o "$3" -P "session:$TW/s.ctx" \
			>/dev/null 2>"$TW/activate.log"
		rc=$?
		tpm2_flushcontext "$TW/s.ctx" >/dev/null 2>&1
	else
		tpm2_activatecredential -c "$TW/$1.ctx" -C $EK_HANDLE -i "$2" -o "$3" >/dev/null 2>"$TW/activate.log"
		rc=$?
	fi
	tpm_flush
	return $rc
}

# tpm_quote AK-NAME NONCE-HEX SELECTION: quote into $TW/quote.msg/.sig and
# PCR_JSON ({"sha256:0": "<hex>", ...}, selection order).
tpm_quote() {
	tpm2_quote -c "$TW/$1.ctx" -l "$3" -q "$2" -m "$TW/quote.msg" -s "$TW/quote.sig" \
		-o "$TW/quote.pcrs" -F values -g sha256 >/dev/null 2>"$TW/quote.log" || { cat "$TW/quote.log" >&2; return 1; }
	tpm_flush
	vals=$(hex_of "$TW/quote.pcrs")
	bank=${3%%:*}; list=${3#*:}
	PCR_JSON="{"; off=0; sep=""
	for i in $(echo "$list" | tr ',' ' '); do
		PCR_JSON="$PCR_JSON$sep\"$bank:$i\":\"$(echo "$vals" | cut -c$((off + 1))-$((off + 64)))\""
		off=$((off + 64)); sep=","
	done
	PCR_JSON="$PCR_JSON}"
}

# tpm_reboot: a TPM reset of the current TPM, as a machine reboot does
# (TPM2_Init through swtpm's control channel, then TPM2_Startup(CLEAR)):
# transient objects are gone and resetCount goes up.
tpm_reboot() {
	swtpm_ioctl --tcp "127.0.0.1:$(( $(cat "$TW/port") + 1 ))" -i >/dev/null 2>&1
	tpm2_startup -c >/dev/null 2>&1
}
