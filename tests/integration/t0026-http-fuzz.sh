#!/bin/sh
# Every unauthenticated route under malformed and hostile input for a
# bounded time (HTTP_FUZZ_SECONDS, default 20; seed HTTP_FUZZ_SEED): no
# 5xx, no request left unanswered, no sanitizer report, a clean exit.
. "$SRCDIR/tests/lib/test-lib.sh"

SECS=${HTTP_FUZZ_SECONDS:-20}
SEED=${HTTP_FUZZ_SEED:-$(date +%s)}
say "seed $SEED, $SECS s (HTTP_FUZZ_SEED=$SEED reproduces)"
start_attestd ITL_REGISTRATION_TOKEN=fuzz-token
H=${BASE#http://}
out=$("$HTTP_FUZZ" fuzz "$H" "$SECS" "$SEED" 2>"$TMP/fuzz.err"); rc=$?
say "$out"
if [ $rc -eq 0 ]; then pass "no 5xx and no stalled request ($out)"
else fail "no 5xx and no stalled request" "$(head -20 "$TMP/fuzz.err")"; fi
api GET /healthz
expect 200 "still healthy afterwards"
check "no sanitizer report in the log" sh -c "! grep -Eq 'Sanitizer|runtime error:|LeakSanitizer' \"\$1\"" _ "$DATA/attestd.log"
check "no 5xx recorded in the metrics" sh -c "! curl -s \"\$1/metrics\" | grep -E '^attestd_http_requests_total.*status=\"5' | grep -vq ' 0\$'" _ "$BASE"
done_testing
