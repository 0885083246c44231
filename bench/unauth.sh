#!/bin/sh
# Unauthenticated-write part of make bench: what each limiter lets one
# source address do (issue 19, hole 5), measured against a real attestd on
# SQLite with the default limits.
#  1. GET /attest/challenge: stateless, so the rate is bounded only by the
#     HTTP stack and nothing is written (rows in `nonces` afterwards).
#  2. a re-registration of a known EK that changes nothing: no write.
#  3. the write budget (ITL_UNAUTH_WRITE_LIMIT per window): as many
#     challenge uses as possible from one source in one window; accepted
#     writes vs 429s, against the configured budget (fixed windows: a run
#     that crosses a window boundary sees up to two budgets).
#  4. ITL_MAX_PENDING: new unauthenticated machines beyond the cap.
set -eu
BUILD=${1:-build}
ATTESTD=$(pwd)/$BUILD/attestd
DURATION=${BENCH_UNAUTH_SECONDS:-5}
ATTEMPTS=${BENCH_UNAUTH_ATTEMPTS:-400}
OUT=$(mktemp -d /tmp/attest-unauthbench.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

start() { # start [VAR=value ...]
	[ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; }
	rm -f "$OUT/ready" "$OUT/m.db"*
	mkdir -p "$OUT/configs"; cp examples/configs/*.yaml "$OUT/configs/"
	env ITL_DB_URL="sqlite:///$OUT/m.db" ITL_CONFIG_CACHE_DIR="$OUT/configs" ITL_ENROLLMENT_CA_DIR="$OUT/ca" \
		ITL_FACTORY_URL=http://127.0.0.1:9 ITL_FACTORY_TIMEOUT_SECONDS=1 ITL_LOG_LEVEL=error \
		ITL_THREADS=${ITL_THREADS:-2} "$@" "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$OUT/ready" 2>"$OUT/log" &
	PID=$!
	i=0; while [ ! -s "$OUT/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$OUT/ready" ] || { echo "bench: attestd did not start:" >&2; cat "$OUT/log" >&2; exit 1; }
	BASE="http://$(cat "$OUT/ready")"
}
ek() { # ek NAME: EK certificate; sets BODY
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/$1.key" -out "$OUT/$1.pem" \
		-days 30 -subj "/CN=bench EK $1" -addext "keyUsage=critical,keyAgreement" >/dev/null 2>&1
	BODY="{\"ek_cert_pem\":\"$(base64 -w0 "$OUT/$1.pem")\"}"
}
rate() { # rate LUA PATH: req/s of wrk
	wrk -t2 -c32 -d"${DURATION}s" --timeout 5s -s "$1" "$BASE$2" 2>&1 | awk '/^Requests\/sec/ {printf "%.0f", $2}'
}

echo
echo "Unauthenticated writes per source (one source address: 127.0.0.1; default limits)"
printf '%-52s %14s %s\n' "limiter" "allowed" "measured"
start
ek known
curl -s -o /dev/null -H 'Content-Type: application/json' -d "$BODY" "$BASE/api/v1/register"
printf 'wrk.method = "GET"\n' > "$OUT/get.lua"
C_RPS=$(rate "$OUT/get.lua" /api/v1/attest/challenge)
printf '%-52s %14s %s\n' "challenges (stateless HMAC, no storage)" "unbounded" \
	"$C_RPS challenges/s, $(sqlite3 "$OUT/m.db" 'SELECT COUNT(*) FROM nonces') rows written"
before=$(sqlite3 "$OUT/m.db" 'SELECT COUNT(*) FROM audit_log')
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '"'"'%s'"'"'\n' "$BODY" > "$OUT/reg.lua"
R_RPS=$(rate "$OUT/reg.lua" /api/v1/register)
printf '%-52s %14s %s\n' "unchanged re-registration (no write)" "unbounded" \
	"$R_RPS req/s, $(( $(sqlite3 "$OUT/m.db" 'SELECT COUNT(*) FROM audit_log') - before )) audit rows written"

# the write budget: ATTEMPTS challenge uses by one source, as fast as curl sends them
LIMIT=$("$ATTESTD" --check-config 2>/dev/null | awk -F= '$1 == "ITL_UNAUTH_WRITE_LIMIT" {print $2}')
WINDOW=$("$ATTESTD" --check-config 2>/dev/null | awk -F= '$1 == "ITL_UNAUTH_WRITE_WINDOW_SECONDS" {print $2}')
seq "$ATTEMPTS" | sed "s|.*|url = \"$BASE/api/v1/attest/challenge\"|" > "$OUT/ch.cfg"
curl -s -K "$OUT/ch.cfg" | jq -r .nonce_id > "$OUT/ids"
PEM=$(base64 -w0 "$OUT/known.pem")
: > "$OUT/use.cfg"; n=0
while read -r id; do
	n=$((n + 1))
	printf '{"ek_cert_pem":"%s","nonce_id":"%s"}' "$PEM" "$id" > "$OUT/use.$n.json"
	[ "$n" = 1 ] || echo next >> "$OUT/use.cfg"
	printf 'url = "%s/api/v1/attest"\nheader = "Content-Type: application/json"\ndata-binary = "@%s"\noutput = /dev/null\nwrite-out = "%%{http_code}\\n"\n' \
		"$BASE" "$OUT/use.$n.json" >> "$OUT/use.cfg"
done < "$OUT/ids"
t0=$(date +%s.%N)
curl -s -K "$OUT/use.cfg" > "$OUT/codes"
t1=$(date +%s.%N)
OK=$(grep -c '^200$' "$OUT/codes" || true); LIM=$(grep -c '^429$' "$OUT/codes" || true)
printf '%-52s %14s %s\n' "write budget (ITL_UNAUTH_WRITE_LIMIT, shared by replicas)" "$LIMIT per ${WINDOW} s" \
	"$OK (+1: the registration above) of $ATTEMPTS writes accepted in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, $LIM answered 429"
awk -v l="$LIMIT" -v w="$WINDOW" 'BEGIN { printf "%-52s %14s\n", "  = sustained unauthenticated writes per source", sprintf("%.2f/s", l / w) }'

# ITL_MAX_PENDING (small cap so the bench stays short)
start ITL_MAX_PENDING=20
ok=0; refused=0
for i in $(seq 25); do
	ek "p$i"
	c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$BODY" "$BASE/api/v1/register")
	[ "$c" = 200 ] && ok=$((ok + 1)); [ "$c" = 429 ] && refused=$((refused + 1))
done
printf '%-52s %14s %s\n' "pending machines (ITL_MAX_PENDING, here 20)" "20 in total" \
	"$ok of 25 new unauthenticated machines created, $refused answered 429"
[ "$OK" -le "$LIMIT" ] && [ "$ok" = 20 ] && echo "limits hold: met" || echo "limits hold: NOT met"
