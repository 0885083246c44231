#!/bin/sh
# make bench, Pulumi state backend: a 1 KiB checkpoint delta on a 10 MiB
# checkpoint must cost at most 0.1 of a full 10 MiB checkpoint PATCH
# (bench/pulumi-delta.py measures both in one run, SQLite).
set -eu
BUILD=${1:-build}
ATTESTD=$(pwd)/$BUILD/attestd
OUT=$(mktemp -d /tmp/attest-bench-pulumi.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
TOK=bench-pulumi-token-0123456789
ITL_DB_URL="sqlite:///$OUT/m.db" ITL_CONFIG_CACHE_DIR="$OUT" ITL_ENROLLMENT_CA_DIR="$OUT/ca" ITL_LOG_LEVEL=warning \
ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_THREADS=2 "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$OUT/ready" 2>"$OUT/log" &
PID=$!
i=0; while [ ! -s "$OUT/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$OUT/ready" ] || { echo "bench: attestd did not start:" >&2; cat "$OUT/log" >&2; exit 1; }
rc=0
python3 bench/pulumi-delta.py "http://$(cat "$OUT/ready")" "$(pwd)" "$TOK" "${BENCH_PULUMI_ROUNDS:-5}" >"$OUT/out" || rc=$?
grep -v '^PASS' "$OUT/out"
exit $rc
