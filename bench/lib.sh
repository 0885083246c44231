# Sourced by the make bench scripts (run.sh, certs.sh); needs OUT (a
# private temporary directory) and ATTESTD.

# bench_attestd [VAR=value ...]: attestd on 127.0.0.1 port 0 with SQLite
# $OUT/m.db, the example role configs, the Enrollment CA in $OUT/ca, an
# unreachable Image Factory and ITL_THREADS (2); sets PID and BASE.
bench_attestd() {
	mkdir -p "$OUT/configs"; cp examples/configs/*.yaml "$OUT/configs/"
	env ITL_DB_URL="sqlite:///$OUT/m.db" ITL_CONFIG_CACHE_DIR="$OUT/configs" ITL_ENROLLMENT_CA_DIR="$OUT/ca" \
		ITL_FACTORY_URL=http://127.0.0.1:9 ITL_FACTORY_TIMEOUT_SECONDS=1 ITL_THREADS="${ITL_THREADS:-2}" "$@" \
		"$ATTESTD" --listen 127.0.0.1:0 --ready-file "$OUT/ready" 2>"$OUT/log" &
	# shellcheck disable=SC2034 # PID: the caller's cleanup ends it
	PID=$!
	i=0; while [ ! -s "$OUT/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$OUT/ready" ] || { echo "bench: attestd did not start:" >&2; cat "$OUT/log" >&2; exit 1; }
	BASE="http://$(cat "$OUT/ready")"
}

# bench_machine ADMIN_TOKEN: a machine with a software RSA-2048 EK
# certificate ($OUT/ek.pem), registered and approved as worker-app; sets
# MID and BODY (its attest/register body).
bench_machine() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/ek.key" -out "$OUT/ek.pem" -days 30 \
		-subj "/CN=bench EK" -addext "keyUsage=critical,keyEncipherment" >/dev/null 2>&1
	fp=$(openssl x509 -in "$OUT/ek.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
	BODY="{\"ek_fingerprint\":\"$fp\",\"ek_cert_pem\":\"$(base64 -w0 "$OUT/ek.pem")\"}"
	MID=$(curl -s -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$BODY" \
		"$BASE/api/v1/register" | jq -r .machine_id)
	curl -s -o /dev/null -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		-d '{"role":"worker-app","hostname":"bench-1"}' "$BASE/api/v1/machines/$MID/approve"
}
