#!/bin/sh
# PostgreSQL part of make bench: attest polls/s for one and three replicas
# on one database, and the poll's p50 growth from 10,000 to 1,000,000
# machines (target: < 20%).  Starts a throwaway cluster; stops only it.
set -eu
BUILD=${1:-build}
ATTESTD=$(pwd)/$BUILD/attestd
CONNS=${BENCH_CONNECTIONS:-256}
DURATION=${BENCH_DURATION:-10}
BIG=${BENCH_PG_BIG:-1000000}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PG_BIN" ] || { echo "bench: PostgreSQL not installed, skipping the PostgreSQL runs"; exit 0; }
if [ "$(id -u)" = 0 ]; then RUNAS="runuser -u postgres --"; else RUNAS=""; fi
OUT=$(mktemp -d /tmp/attest-pgbench.XXXXXX); chmod 755 "$OUT"; [ -n "$RUNAS" ] && chown postgres "$OUT"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	$RUNAS "$PG_BIN/pg_ctl" -D "$OUT/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
$RUNAS "$PG_BIN/initdb" -D "$OUT/data" -U postgres --auth=trust >/dev/null
$RUNAS "$PG_BIN/pg_ctl" -D "$OUT/data" -l "$OUT/pg.log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories='$OUT' -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
PSQL="$PG_BIN/psql -h $OUT -U postgres -qAt"
$PSQL -d postgres -c "CREATE DATABASE bench" >/dev/null
URL="postgresql:///bench?host=$OUT&user=postgres"
ITL_DB_URL="$URL" "$ATTESTD" migrate >/dev/null

seed() { # seed N: make the machine table hold N rows besides the real one
	$PSQL -d bench -c "DELETE FROM machines WHERE hostname LIKE 'seed-%'" >/dev/null
	$PSQL -d bench -c "INSERT INTO machines (machine_id, ek_fingerprint, ek_source, role, status, registered_at,
		updated_at, attested_at, config_delivered_at, hostname)
		SELECT md5(i::text || 'm'), md5(i::text) || md5(i::text || 'x') || md5(i::text || 'y'), 'cert', 'worker-app',
		'attested', '2026-01-01T00:00:00', '2026-01-01T00:00:00', '2026-01-01T00:00:00', '2026-01-01T00:00:00', 'seed-' || i
		FROM generate_series(1, $1) AS i" >/dev/null
	$PSQL -d bench -c "VACUUM ANALYZE machines" >/dev/null
}

start() { # start N -> READY files $OUT/ready.N
	rm -f "$OUT/ready.$1"
	ITL_DB_URL="$URL" ITL_CONFIG_CACHE_DIR="$(pwd)/examples/configs" ITL_ADMIN_TOKEN=bench ITL_THREADS=2 \
	ITL_ENROLLMENT_CA_DIR="$OUT/ca" ITL_FACTORY_URL=http://127.0.0.1:9 ITL_FACTORY_TIMEOUT_SECONDS=1 \
	ITL_CONNECTION_LIMIT_PER_CLIENT=0 ITL_LOG_LEVEL=warning "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$OUT/ready.$1" 2>>"$OUT/attestd.log" &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$OUT/ready.$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$OUT/ready.$1" ] || { echo "bench: attestd did not start" >&2; cat "$OUT/attestd.log" >&2; exit 1; }
}

start 1
BASE="http://$(cat "$OUT/ready.1")"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OUT/ek.key" -out "$OUT/ek.pem" -days 30 \
	-subj "/CN=bench EK" -addext "keyUsage=critical,keyEncipherment" >/dev/null 2>&1
B64=$(base64 -w0 "$OUT/ek.pem")
FP=$(openssl x509 -in "$OUT/ek.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
BODY="{\"ek_fingerprint\":\"$FP\",\"ek_cert_pem\":\"$B64\"}"
MID=$(curl -s -H "Authorization: Bearer bench" -H 'Content-Type: application/json' -d "$BODY" "$BASE/api/v1/register" | jq -r .machine_id)
curl -s -o /dev/null -H "Authorization: Bearer bench" -H 'Content-Type: application/json' -d '{"role":"worker-app"}' "$BASE/api/v1/machines/$MID/approve"
TOKEN=$(curl -s -H 'Content-Type: application/json' -d "$BODY" "$BASE/api/v1/attest" | jq -r .config_token)
curl -s -o /dev/null "$BASE/api/v1/config/$TOKEN"
cat > "$OUT/attest.lua" <<EOF2
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF2
poll() { # poll URL CONNS -> "rps p50 p99 errors"
	wrk -t1 -c"$2" -d"${DURATION}s" --timeout 5s -s "$OUT/attest.lua" "$1/api/v1/attest" 2>&1 | awk '/^RESULT/ {print $2, $3, $4, $5}'
}

echo "PostgreSQL runs: attest poll, $CONNS connections in total, ${DURATION}s each, on the same $(nproc)-core machine"
printf '%-42s %12s %10s %10s %8s\n' "run" "req/s" "p50 ms" "p99 ms" "errors"
seed 10000
set -- $(poll "$BASE" "$CONNS"); R1=$1; P50_SMALL=$2
printf '%-42s %12s %10s %10s %8s\n' "1 replica, 10,000 machines" "$1" "$2" "$3" "$4"
start 2; start 3
per=$((CONNS / 3))
wp=""
for n in 1 2 3; do poll "http://$(cat "$OUT/ready.$n")" "$per" > "$OUT/r3.$n" & wp="$wp $!"; done
wait $wp
awk '{rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3; err += $4} END {
	printf "%-42s %12.1f %10.3f %10.3f %8d\n", "3 replicas, 10,000 machines (sum / worst)", rps, p50, p99, err }' "$OUT"/r3.*
seed "$BIG"
set -- $(poll "$BASE" "$CONNS"); P50_BIG=$2
printf '%-42s %12s %10s %10s %8s\n' "1 replica, $BIG machines" "$1" "$2" "$3" "$4"
awk -v a="$P50_SMALL" -v b="$P50_BIG" 'BEGIN {
	g = (b - a) / a * 100; printf "p50 growth 10,000 -> big: %+.1f%% (target < 20%%): %s\n", g, g < 20 ? "met" : "NOT met" }'
