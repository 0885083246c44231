#!/bin/sh
# A flood of unauthenticated audit entries cannot push operator actions
# out of the signed PDF report (issue 19, hole 5): beyond 20,000 entries
# the report lists every operator action and the newest entries and
# states exactly what it omits.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek a ec
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"flooded"}'
expect 200 "approved (an old operator action)"
# 20,100 re-registrations by unauthenticated callers (written directly: the
# chain is broken by them, which the report also says)
if [ "$ATTEST_DB" = postgresql ]; then
	sql "INSERT INTO audit_log (timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash, source_ip)
	     SELECT '2026-01-01T00:00:00', 'machine', 're_register', '$MID', 'registered', 'registered', 'flood',
	            md5('p' || i) || md5('q' || i), md5('e' || i) || md5('f' || i), '192.0.2.7' FROM generate_series(1, 20100) i"
else
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20100)
	     INSERT INTO audit_log (timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash, source_ip)
	     SELECT '2026-01-01T00:00:00', 'machine', 're_register', '$MID', 'registered', 'registered', 'flood',
	            lower(hex(randomblob(32))), lower(hex(randomblob(32))), '192.0.2.7' FROM n"
fi
admin POST "/api/v1/machines/$MID/lock" '{"reason":"after the flood"}'
expect 200 "the operator locks the machine after the flood"
admin GET "/api/v1/machines/$MID/audit-report"
expect 200 "the report is made"
curl -s -H "Authorization: Bearer $ADMIN" -o "$TMP/r.pdf" "$BASE/api/v1/machines/$MID/audit-report"
pdftotext -layout "$TMP/r.pdf" "$TMP/r.txt"
check "the newest operator action (lock) is listed" grep -q "SYSTEM  *lock" "$TMP/r.txt"
check "the old operator action (approve) is listed" grep -q "SYSTEM  *approve" "$TMP/r.txt"
check "the heading says how many of how many are listed" grep -q "Events (2001 of 20103 listed)" "$TMP/r.txt"
check "the omission is stated per action with counts and ids" sh -c \
	"grep -q 'omitted re_register  *18101 entries, ids #' '$TMP/r.txt' && grep -q 'omitted register  *1 entries' '$TMP/r.txt'"
check "what is listed is stated" grep -q "every operator action (2) and the newest 2000 entries" "$TMP/r.txt"
done_testing
