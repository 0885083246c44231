#!/bin/sh
# Run the meson test suites of each build directory given, then print
# one closing line "N passed, N failed" over all of them.
set -u
passed=0
failed=0
rc=0
for b in "$@"; do
	echo "=== meson test in $b ==="
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C "$b" --print-errorlogs --num-processes 2 || rc=1
	log="$b/meson-logs/testlog.json"
	if [ -f "$log" ]; then
		p=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")
		f=$(jq -s '[.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP")] | length' "$log")
		passed=$((passed + p))
		failed=$((failed + f))
	else
		failed=$((failed + 1))
	fi
done
if [ "$passed" -eq 0 ]; then
	echo "no tests ran" >&2
	rc=1
fi
[ "$failed" -gt 0 ] && rc=1
echo "$passed passed, $failed failed"
exit $rc
