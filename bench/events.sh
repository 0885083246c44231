#!/bin/sh
# make bench, part: lifecycle event delivery end to end (docs/events.md).
# usage: bench/events.sh [BUILD] [sqlite|postgresql]
#  1. throughput: EVENTS outbox events committed at once (as transitions
#     write them), delivered to one webhook on a local receiver that checks
#     every signature; events/s from the commit to the last one settled.
#  2. lag: events committed at 1,000/s for LAG_SECONDS; p50/p99 of the time
#     from commit to the receiver's arrival.
# The machine may be shared, so the run also measures, in the same run,
# the receiver-only ceiling (wrk posting signed events to a second
# receiver) and the CPU time attestd and the receiver spend per event.
# PostgreSQL: a throwaway cluster like bench/pg.sh (fsync and
# synchronous_commit on, the defaults).
set -eu
BUILD=${1:-build}
BACKEND=${2:-sqlite}
ATTESTD=${BENCH_ATTESTD:-$(pwd)/$BUILD/attestd}	# BENCH_ATTESTD: compare another binary
RECEIVER=$(pwd)/$BUILD/tests/webhook-receiver
EVENTS=${BENCH_EVENTS:-20000}
LAG_SECONDS=${BENCH_LAG_SECONDS:-10}
OUT=$(mktemp -d /tmp/attest-bench-events.XXXXXX)
PIDS=""
PG_BIN=""
RUNAS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -z "$PG_BIN" ] || $RUNAS "$PG_BIN/pg_ctl" -D "$OUT/data" -m fast -w stop >/dev/null 2>&1 || true
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if [ "$BACKEND" = postgresql ]; then
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -n "$PG_BIN" ] || { echo "bench: PostgreSQL not installed, skipping the PostgreSQL event run"; exit 0; }
	if [ "$(id -u)" = 0 ]; then RUNAS="runuser -u postgres --"; fi
	chmod 755 "$OUT"; [ -z "$RUNAS" ] || chown postgres "$OUT"
	$RUNAS "$PG_BIN/initdb" -D "$OUT/data" -U postgres --auth=trust >/dev/null
	$RUNAS "$PG_BIN/pg_ctl" -D "$OUT/data" -l "$OUT/pg.log" -w \
		-o "-c listen_addresses='' -c unix_socket_directories='$OUT' -c max_connections=100 -c shared_buffers=128MB ${BENCH_PG_STATS:+-c shared_preload_libraries=pg_stat_statements}" start >/dev/null
	"$PG_BIN/psql" -h "$OUT" -U postgres -qAt -d postgres -c "CREATE DATABASE bench" >/dev/null
	[ -z "${BENCH_PG_STATS:-}" ] || "$PG_BIN/psql" -h "$OUT" -U postgres -qAt -d bench -c "CREATE EXTENSION pg_stat_statements" >/dev/null
	DB_URL="postgresql:///bench?host=$OUT&user=postgres"
	DB_NAME=PostgreSQL
	db() { "$PG_BIN/psql" -h "$OUT" -U postgres -qAt -d bench "$@"; }
else
	DB_URL="sqlite:///$OUT/m.db"
	DB_NAME=SQLite
	db() { sqlite3 "$OUT/m.db" "$@"; }
fi
SECRET=bench-secret-0123456789

"$RECEIVER" "$OUT/r.ready" "$OUT/r.log" "$SECRET" 2>"$OUT/r.err" &
RPID=$!
PIDS="$PIDS $RPID"
i=0; while [ ! -s "$OUT/r.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p "$OUT/configs"; cp examples/configs/*.yaml "$OUT/configs/"
ITL_DB_URL="$DB_URL" "$ATTESTD" migrate >/dev/null
ITL_DB_URL="$DB_URL" ITL_CONFIG_CACHE_DIR="$OUT/configs" ITL_ADMIN_TOKEN=bench-admin \
ITL_FACTORY_URL=http://127.0.0.1:9 ITL_FACTORY_TIMEOUT_SECONDS=1 ITL_LOG_LEVEL=warning ITL_THREADS=2 \
ITL_WEBHOOK_ALLOW_PRIVATE=true ITL_EVENT_POLL_MS=${BENCH_EVENT_POLL_MS:-100} ITL_EVENT_PARTITIONS=${BENCH_EVENT_PARTITIONS:-4} ITL_ENROLLMENT_CA_DIR="$OUT/ca" \
	"$ATTESTD" --listen 127.0.0.1:0 --ready-file "$OUT/ready" 2>"$OUT/log" &
APID=$!
PIDS="$PIDS $APID"
i=0; while [ ! -s "$OUT/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
BASE="http://$(cat "$OUT/ready")"
curl -sf -o /dev/null -H 'Authorization: Bearer bench-admin' -H 'Content-Type: application/json' \
	-d "{\"url\":\"http://127.0.0.1:$(cat "$OUT/r.ready")/bench\",\"secret\":\"$SECRET\"}" "$BASE/api/v1/webhooks"

now_ms() { date +%s%3N; }
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }	# user + system
# the PostgreSQL server's CPU: the postmaster and its children (attestd's pooled backends live on)
pg_cpu_ms() {
	[ "$BACKEND" = postgresql ] || { echo 0; return; }
	pm=$(head -1 "$OUT/data/postmaster.pid")
	t=0
	for p in $pm $(ps -o pid= --ppid "$pm"); do t=$((t + $(cpu_ms "$p" 2>/dev/null || echo 0))); done
	echo "$t"
}

# the receiver-only ceiling, measured now (the machine may be shared): a
# second receiver takes signed POSTs from wrk on 4 keep-alive connections
# (one per partition worker); the end-to-end figure is also given relative
# to it, which stays put when other load comes and goes
ceiling() {
	"$RECEIVER" "$OUT/c.ready" "$OUT/c.log" "$SECRET" 2>/dev/null &
	cpid=$!
	i=0; while [ ! -s "$OUT/c.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	body='{"event":"node.registered","id":1,"machine_id":"bench-machine-1","raw":{"meta":{},"node":{}},"timestamp":"2026-01-01T00:00:00"}'
	ts=$(date +%s)
	sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
	tsig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
	cat >"$OUT/c.lua" <<EOF2
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Webhook-Event"] = "node.registered"
wrk.headers["X-Webhook-Signature"] = "sha256=$sig"
wrk.headers["X-Webhook-Timestamp"] = "$ts"
wrk.headers["X-Webhook-Signature-256"] = "t=$ts,v1=$tsig"
wrk.headers["X-Webhook-Delivery"] = "1-ceiling"
wrk.body = '$body'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %d\n", summary.requests / (summary.duration / 1e6), summary.errors.status))
end
EOF2
	wrk -t1 -c4 -d"${BENCH_CEILING_SECONDS:-3}s" -s "$OUT/c.lua" "http://127.0.0.1:$(cat "$OUT/c.ready")/ceiling" 2>&1 |
		awk '/^RESULT/ && $3 == 0 { print $2 }'
	kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null || true
}
CEIL=$(ceiling); CEIL=${CEIL:-0}
# insert N events for 1000 machines, payload carrying the commit time
insert() { # insert N
	t=$(now_ms)
	payload='{"event":"node.registered","ek_fingerprint":null,"timestamp":"2026-01-01T00:00:00","bench_t":'$t',"raw":{"node":{},"meta":{}}}'
	if [ "$BACKEND" = postgresql ]; then
		db -c "INSERT INTO outbox_events (event, machine_id, payload, created_at)
			SELECT 'node.registered', 'bench-machine-' || (i % 1000), '$payload', '2026-01-01T00:00:00'
			FROM generate_series(1, $1) AS i ORDER BY i" >/dev/null
		return
	fi
	# the generator's own commits need not be durable (synchronous=OFF is per connection)
	db <<SQL >/dev/null
PRAGMA busy_timeout = 10000;
PRAGMA synchronous = OFF;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
INSERT INTO outbox_events (event, machine_id, payload, created_at)
SELECT 'node.registered', 'bench-machine-' || (i % 1000), '$payload', '2026-01-01T00:00:00' FROM n;
SQL
}
pending() {
	if [ "$BACKEND" = postgresql ]; then db -c 'SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL'
	else db 'PRAGMA busy_timeout = 10000; SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL' | tail -1; fi
}

# 1. throughput
a0=$(cpu_ms "$APID"); r0=$(cpu_ms "$RPID"); d0=$(pg_cpu_ms)
t0=$(now_ms)
insert "$EVENTS"
while [ "$(pending)" != 0 ]; do sleep 0.2; done
t1=$(now_ms)
a1=$(cpu_ms "$APID"); r1=$(cpu_ms "$RPID"); d1=$(pg_cpu_ms)
ok=$(jq -c 'select(.sig_ok and .tsig_ok)' "$OUT/r.log" | wc -l)
dups=$(jq -c 'select(.dup)' "$OUT/r.log" | wc -l)
CEIL2=$(ceiling); CEIL2=${CEIL2:-0}	# again after the run: the load may have changed
rate=$(awk -v n="$EVENTS" -v ms="$((t1 - t0))" 'BEGIN { printf "%.0f", n * 1000 / ms }')

# 2. lag at 1,000 events/s (100 every 100 ms)
: >"$OUT/r.log.lag"
before=$(wc -l <"$OUT/r.log")
end=$(( $(now_ms) + LAG_SECONDS * 1000 ))
while [ "$(now_ms)" -lt "$end" ]; do
	s=$(now_ms); insert 100
	d=$((100 - ($(now_ms) - s))); [ $d -gt 0 ] && sleep "$(awk -v d=$d 'BEGIN { printf "%.3f", d / 1000 }')"
done
while [ "$(pending)" != 0 ]; do sleep 0.2; done
tail -n +"$((before + 1))" "$OUT/r.log" | jq -r '.recv_ms - .body.bench_t' | sort -n >"$OUT/lag"
n=$(wc -l <"$OUT/lag")
p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 { printf "%.0f", $1; exit }' "$OUT/lag")
p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 { printf "%.0f", $1; exit }' "$OUT/lag")
achieved=$(awk -v n="$n" -v s="$LAG_SECONDS" 'BEGIN { printf "%.0f", n / s }')

echo
echo "Event delivery end to end ($DB_NAME, one webhook on a local receiver that verifies every signature, $(nproc) cores):"
printf '%-46s %12s\n' "throughput ($EVENTS events committed at once)" "$rate events/s"
printf '%-46s %12s\n' "  signatures verified by the receiver" "$ok / $EVENTS ($dups duplicates)"
printf '%-46s %12s\n' "  CPU per event: attestd, receiver" \
	"$(awk -v a="$((a1 - a0))" -v r="$((r1 - r0))" -v n="$EVENTS" 'BEGIN { printf "%.0f us, %.0f us", a * 1000 / n, r * 1000 / n }')"
[ "$BACKEND" != postgresql ] || printf '%-46s %12s\n' "  CPU per event: PostgreSQL server" \
	"$(awk -v d="$((d1 - d0))" -v n="$EVENTS" 'BEGIN { printf "%.0f us", d * 1000 / n }')"
printf '%-46s %12s\n' "receiver-only ceiling (wrk, 4 connections)" "$CEIL, $CEIL2 req/s"
printf '%-46s %12s\n' "  end to end / ceiling (mean of the two)" \
	"$(awk -v r="$rate" -v a="$CEIL" -v b="$CEIL2" 'BEGIN { printf "%.2f", ((a + b) > 0 ? 2 * r / (a + b) : 0) }')"
printf '%-46s %12s %10s\n' "lag, offered 1,000/s, committed $achieved/s" "p50 ${p50:-?} ms" "p99 ${p99:-?} ms"
echo "(the generator commits 100 events per transaction every 100 ms; it shares the database — on SQLite"
echo " its write lock, taken between attestd's durable commits — so 'committed' is the rate it achieved)"
# BENCH_PG_STATS=1: where the PostgreSQL server's time went (pg_stat_statements, top 8)
[ -z "${BENCH_PG_STATS:-}" ] || [ "$BACKEND" != postgresql ] ||
	db -F ' | ' -c "SELECT round(total_exec_time)::text || ' ms', calls, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8"
load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average during the run: $load on $(nproc) cores (others' processes share them: compare the ratio)"
awk -v r="$rate" -v p="${p99:-999999}" -v db="$DB_NAME" 'BEGIN {
	printf "target on %s (>= 5000 events/s, p99 lag < 1000 ms at 1000/s): %s\n", db, (r >= 5000 && p < 1000) ? "met" : "NOT met" }'
