#!/bin/sh
# bench/dashboard.sh - the dashboard and the CLI with 100,000 machines
# (BENCH_FLEET, default 100000) in SQLite: list-page load time and transfer
# size in headless Chromium (tests/browser/measure.mjs), the API calls
# behind it, and `attestation machine list` for comparison.  Medians.
set -eu
BUILD=${1:-build}
N=${BENCH_FLEET:-100000}
RUNS=${BENCH_RUNS:-5}
ROOT=$(pwd)
OUT=$(mktemp -d /tmp/attest-dash.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$OUT/configs"; cp examples/configs/*.yaml "$OUT/configs/"
ITL_DB_URL="sqlite:///$OUT/m.db" "$BUILD/attestd" migrate >/dev/null 2>&1
sh bench/seed-fleet.sh "$OUT/m.db" "$N" >/dev/null
ADMIN=bench-admin
ITL_DB_URL="sqlite:///$OUT/m.db" ITL_CONFIG_CACHE_DIR="$OUT/configs" ITL_ADMIN_TOKEN=$ADMIN ITL_LOG_LEVEL=warning \
ITL_FACTORY_URL=http://127.0.0.1:9 ITL_ENROLLMENT_CA_DIR="$OUT/ca" ITL_THREADS=${ITL_THREADS:-2} \
	"$BUILD/attestd" --listen 127.0.0.1:0 --ready-file "$OUT/ready" 2>"$OUT/log" &
PID=$!
i=0; while [ ! -s "$OUT/ready" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$OUT/ready" ] || { echo "bench: attestd did not start" >&2; cat "$OUT/log" >&2; exit 1; }
BASE="http://$(cat "$OUT/ready")"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
curl_ms() { # PATH -> "ms bytes" (median of RUNS)
	for r in $(seq 1 "$RUNS"); do
		curl -s -o /dev/null -w '%{time_total} %{size_download}\n' -H "Authorization: Bearer $ADMIN" "$BASE$1"
	done | awk '{ printf "%.1f %d\n", $1 * 1000, $2 }' | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}
echo "dashboard benchmark: $(sqlite3 "$OUT/m.db" 'SELECT COUNT(*) FROM machines') machines in SQLite ($(du -m "$OUT/m.db" | cut -f1) MB), medians of $RUNS, $(nproc) cores"
printf '%-58s %10s %12s\n' "request" "ms" "bytes"
for p in "/api/v1/machines?page=1&per_page=50" "/api/v1/machines?page=2000&per_page=50" \
	"/api/v1/machines?status=attested&sort=-last_contact_at&page=1&per_page=50" \
	"/api/v1/machines?q=node-0999&page=1&per_page=50" "/api/v1/machines?manufacturer=IFX&ek_verified=false&page=1&per_page=50" \
	"/api/v1/fleet/summary" "/api/v1/fleet/timeline?days=30"; do
	set -- $(curl_ms "$p")
	printf '%-58s %10s %12s\n' "GET $p" "$1" "$2"
done
set -- $(curl_ms "/api/v1/machines")
printf '%-58s %10s %12s\n' "GET /api/v1/machines (unpaged: the whole fleet)" "$1" "$2"
M=$( (cd tests/browser && node measure.mjs "$BASE" "$ADMIN" "$RUNS") )
printf '%-58s %10s %12s\n' "browser: load the app (fresh profile, every file)" "$(echo "$M" | jq .load_ms)" "$(echo "$M" | jq '.transfer_bytes - .list_json_bytes')"
printf '%-58s %10s %12s\n' "browser: sign in -> first 50 machines on screen" "$(echo "$M" | jq .signin_ms)" "$(echo "$M" | jq .list_json_bytes)"
printf '%-58s %10s %12s\n' "browser: list page, warm (navigation -> 50 rows)" "$(echo "$M" | jq .warm_ms)" "$(echo "$M" | jq .list_json_bytes)"
printf '%-58s %10s %12s\n' "browser: total transfer of a cold list page ($(echo "$M" | jq .requests) requests)" "" "$(echo "$M" | jq .transfer_bytes)"
cli() { # LABEL ARGS...: median ms and output bytes, or the CLI's error
	label=$1; shift
	for r in $(seq 1 "$RUNS"); do
		s=$(date +%s%N)
		if ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN "$BUILD/attestation" "$@" > "$OUT/cli.out" 2> "$OUT/cli.err"; then
			e=$(date +%s%N); echo "$(( (e - s) / 1000000 ))"
		else
			echo "failed"
		fi
	done > "$OUT/cli.times"
	if grep -q failed "$OUT/cli.times"; then
		printf '%-58s %10s %12s\n' "$label" "failed" "$(head -1 "$OUT/cli.err" | cut -c1-40)"
	else
		printf '%-58s %10s %12s\n' "$label" "$(median < "$OUT/cli.times")" "$(wc -c < "$OUT/cli.out")"
	fi
}
cli "CLI: attestation machine list (the whole fleet)" machine list
cli "CLI: attestation machine list --status pending_approval" machine list --status pending_approval
cli "CLI: attestation machine get ID" machine get "$(sqlite3 "$OUT/m.db" 'SELECT machine_id FROM machines LIMIT 1')"
echo "load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg)"
