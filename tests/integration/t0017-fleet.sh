#!/bin/sh
# The fleet API behind the dashboard: list filters, sort, X-Total-Count,
# paging bounds, the summary and the timeline (their numbers against the
# list), last-contact stamps and their resolution, the audit cursor and
# operator filter, conditional reads (ETag / 304), and bad input (422).
. "$SRCDIR/tests/lib/test-lib.sh"
start_attestd ITL_CONTACT_RESOLUTION_SECONDS=0

total() { printf '%s' "$HEADERS" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-total-count" { print $2 }'; }

# ---- a small fleet: 3 pending, 4 approved (2 attested, 1 locked, 1 revoked) --
for i in 1 2 3 4 5 6 7; do
	make_ek "m$i" ec
	api POST /api/v1/register "$(node_body ",\"hw_product\":\"Box $i\"")"
	eval "FP$i=\$EK_FP B$i=\$EK_B64 M$i=\$(jget .machine_id)"
done
for i in 4 5 6 7; do
	eval "mid=\$M$i"
	role=worker-app; [ $i = 4 ] && role=controlplane
	admin POST "/api/v1/machines/$mid/approve" "{\"role\":\"$role\",\"hostname\":\"node-$i\"}"
done
body_of() { eval "printf '{\"ek_fingerprint\":\"%s\",\"ek_cert_pem\":\"%s\"}' \"\$FP$1\" \"\$B$1\""; }
api POST /api/v1/attest "$(body_of 4)"; expect 200 "machine 4 attests"
api POST /api/v1/attest "$(body_of 5)"; expect 200 "machine 5 attests"
admin POST "/api/v1/machines/$M6/lock" '{"reason":"maintenance"}'; expect 200 "machine 6 locked"
admin POST "/api/v1/machines/$M7/revoke" '{"wipe":false,"reason":"gone"}'; expect 200 "machine 7 revoked"
sql "UPDATE machines SET ek_manufacturer = 'IFX', ek_verified = 1 WHERE machine_id IN ('$M1','$M4')"
sql "UPDATE machines SET ek_manufacturer = 'STM', ek_verified = 0 WHERE machine_id = '$M5'"

# ---- the list ----------------------------------------------------------------
admin GET /api/v1/machines
expect 200 "unfiltered list: every machine" 'length == 7'
check "X-Total-Count: 7" test "$(total)" = 7
admin GET "/api/v1/machines?per_page=2&page=2"
expect 200 "page 2 of 2 per page" 'length == 2'
check "X-Total-Count is the total, not the page (7)" test "$(total)" = 7
admin GET "/api/v1/machines?per_page=5&page=2"
expect 200 "the last page holds the remainder" 'length == 2'
admin GET "/api/v1/machines?per_page=5&page=3"
expect 200 "a page past the end is empty" 'length == 0'
admin GET "/api/v1/machines?status=pending_approval"
expect 200 "status filter" 'length == 3 and all(.status == "pending_approval")'
admin GET "/api/v1/machines?manufacturer=IFX"
expect 200 "manufacturer filter" "length == 2 and ([.[].machine_id] | sort) == ([\"$M1\",\"$M4\"] | sort)"
admin GET "/api/v1/machines?manufacturer="
expect 200 "manufacturer= (empty): machines without one" 'length == 4 and all(.ek_manufacturer == null)'
admin GET "/api/v1/machines?ek_verified=false"
expect 200 "ek_verified=false" "length == 1 and .[0].machine_id == \"$M5\""
admin GET "/api/v1/machines?ek_verified=unchecked"
expect 200 "ek_verified=unchecked" 'length == 4 and all(.ek_verified == null)'
admin GET "/api/v1/machines?ek_verified=true&manufacturer=IFX&status=attested"
expect 200 "filters combine with AND" "length == 1 and .[0].machine_id == \"$M4\""
admin GET "/api/v1/machines?q=NODE-"
expect 200 "q: case-insensitive hostname prefix" 'length == 4 and all(.hostname | startswith("node-"))'
P=$(printf %s "$M2" | cut -c1-8)
admin GET "/api/v1/machines?q=$P"
expect 200 "q: machine id prefix" "any(.machine_id == \"$M2\")"
admin GET "/api/v1/machines?machine_id=$M3"
expect 200 "machine_id filter" "length == 1 and .[0].machine_id == \"$M3\" and (.[0] | has(\"last_contact_at\"))"
admin GET "/api/v1/machines?sort=hostname"
expect 200 "sort=hostname: ascending, machines without one last" '[.[].hostname] == ["node-4","node-5","node-6","node-7",null,null,null]'
admin GET "/api/v1/machines?sort=-hostname"
expect 200 "sort=-hostname: descending, still missing last" '[.[].hostname] == ["node-7","node-6","node-5","node-4",null,null,null]'
admin GET "/api/v1/machines?sort=-id&per_page=1"
expect 200 "sort=-id: newest first" ".[0].machine_id == \"$M7\""
admin GET "/api/v1/machines?sort=status&per_page=3"
expect 200 "sort=status" '[.[].status] == ["attested","attested","locked"]'

# ---- last contact --------------------------------------------------------------
admin GET "/api/v1/machines?machine_id=$M4"
C1=$(jget '.[0].last_contact_at')
check "an attest stamps last_contact_at ($C1)" test "$C1" != null
admin GET "/api/v1/machines?machine_id=$M6"
expect 200 "a machine that never attested has no contact" '.[0].last_contact_at == null'
sleep 1
api POST /api/v1/attest "$(body_of 4)"
admin GET "/api/v1/machines?machine_id=$M4"
C2=$(jget '.[0].last_contact_at')
check "resolution 0: the next poll moves it ($C1 -> $C2)" test "$C2" \> "$C1"
sql "UPDATE machines SET last_contact_at = '2020-01-01T00:00:00' WHERE machine_id = '$M5'"
admin GET "/api/v1/machines?status=attested&silent_for=3600"
expect 200 "silent_for: the machine not heard from since 2020" "length == 1 and .[0].machine_id == \"$M5\""
admin GET "/api/v1/machines?sort=last_contact_at"
expect 200 "sort=last_contact_at: oldest first, never last" ".[0].machine_id == \"$M5\" and .[1].machine_id == \"$M4\" and (.[2:] | all(.last_contact_at == null))"

# ---- summary and timeline against the list ------------------------------------
admin GET "/api/v1/fleet/summary?silent_for=3600"
expect 200 "summary" '.total == 7 and .by_status == {"pending_approval":3,"registered":0,"attested":2,"locked":1,"revoked":1}'
SUM=$BODY
for st in pending_approval attested locked revoked; do
	admin GET "/api/v1/machines?status=$st&per_page=1"
	check "summary by_status.$st equals the list's X-Total-Count" test "$(printf %s "$SUM" | jq ".by_status.\"$st\"")" = "$(total)"
done
printf %s "$SUM" | jq -e '.by_role == {"controlplane":1,"worker-infra":0,"worker-app":6}' >/dev/null &&
	pass "summary by_role" || fail "by_role" "$SUM"
printf %s "$SUM" | jq -e '.ek == {"verified":2,"failed":1,"unchecked":4} and (.manufacturers | map({(.manufacturer // "?"): .total}) | add) == {"IFX":2,"STM":1,"?":4}' >/dev/null &&
	pass "summary EK verdicts overall and by manufacturer" || fail "ek summary" "$SUM"
printf %s "$SUM" | jq -e '.contact.attested == 2 and .contact.silent == 1 and .contact.never == 0 and .contact.ages[0].count == 1 and .contact.ages[3].count == 1' >/dev/null &&
	pass "summary contact ages: one fresh, one silent since 2020" || fail "contact" "$SUM"
admin GET "/api/v1/machines?status=attested&silent_for=3600"
check "summary contact.silent equals the silent list's total" test "$(printf %s "$SUM" | jq .contact.silent)" = "$(total)"
admin GET "/api/v1/fleet/timeline?days=7"
TODAY=$(date -u +%Y-%m-%d)
expect 200 "timeline: 7 days, today last, everything registered today" \
	".days == 7 and (.series | length) == 7 and .series[6].date == \"$TODAY\" and .series[6].registered == 7 and .series[6].attested == 2 and (.series[:6] | all(.registered == 0))"

# ---- bad input ---------------------------------------------------------------------
bad() { # DESC QUERY FIELD
	admin GET "/api/v1/$2"
	expect 422 "$1" ".detail | startswith(\"$3\")"
}
bad "unknown status: 422" "machines?status=online" status
bad "unknown role: 422" "machines?role=worker_infra" role
bad "unknown sort key: 422" "machines?sort=ek_cert_b64" sort
bad "sort key with SQL: 422" "machines?sort=hostname%3BDROP%20TABLE%20machines" sort
bad "double minus: 422" "machines?sort=--hostname" sort
bad "bad ek_verified: 422" "machines?ek_verified=yes" ek_verified
bad "q with a LIKE wildcard: 422" "machines?q=no%25de" q
bad "q with an underscore: 422" "machines?q=a_b" q
bad "q too long: 422" "machines?q=$(printf 'a%.0s' $(seq 1 65))" q
bad "manufacturer with a control character: 422" "machines?manufacturer=%01" manufacturer
bad "machine_id with a slash: 422" "machines?machine_id=a%2Fb" machine_id
bad "silent_for=0: 422" "machines?silent_for=0" silent_for
bad "silent_for not a number: 422" "machines?silent_for=1h" silent_for
bad "page=0: 422" "machines?page=0" page
bad "page too large: 422" "machines?page=1000000001" page
bad "per_page=0: 422" "machines?per_page=0" per_page
bad "per_page=201: 422" "machines?per_page=201" per_page
bad "negative per_page: 422" "machines?per_page=-5" per_page
bad "summary silent_for=0: 422" "fleet/summary?silent_for=0" silent_for
bad "timeline days=0: 422" "fleet/timeline?days=0" days
bad "timeline days=367: 422" "fleet/timeline?days=367" days
bad "audit after_id=-1: 422" "audit?after_id=-1" after_id
bad "audit after_id not a number: 422" "audit?after_id=x" after_id
api GET /api/v1/fleet/summary
expect 401 "summary without a credential: 401"
api GET /api/v1/fleet/timeline
expect 401 "timeline without a credential: 401"
check "machines table intact after the injection attempt" test "$(sql 'SELECT COUNT(*) FROM machines')" = 7

# ---- audit cursor and operator filter -------------------------------------------
admin GET "/api/v1/audit?after_id=0&per_page=3"
expect 200 "after_id=0: oldest first" 'length == 3 and .[0].prev_hash == ("0" * 64) and .[0].id < .[1].id and .[1].prev_hash == .[0].entry_hash'
LAST=$(jget '.[2].id')
admin GET "/api/v1/audit?after_id=$LAST&per_page=200"
N_REST=$(jget length)
check "the cursor continues after id $LAST and reaches the end" test "$((N_REST + 3))" = "$(sql 'SELECT COUNT(*) FROM audit_log')"
admin GET "/api/v1/audit?operator_cn=SYSTEM&action=lock"
expect 200 "operator_cn and action filters" "length == 1 and .[0].machine_id == \"$M6\" and .[0].operator_cn == \"SYSTEM\""
admin GET "/api/v1/audit?operator_cn=nobody"
expect 200 "operator_cn filter without matches" 'length == 0'

# ---- conditional reads -------------------------------------------------------------
admin GET "/api/v1/fleet/summary"
TAG=$(printf '%s' "$HEADERS" | tr -d '\r' | awk -F': ' 'tolower($1) == "etag" { print $2 }')
check "operator reads carry an ETag ($TAG)" test -n "$TAG"
case $HEADERS in *"Cache-Control: no-store"*) pass "and Cache-Control: no-store" ;; *) fail "no-store" "$HEADERS" ;; esac
: > "$TMP/resp.body"
admin GET "/api/v1/fleet/summary" "" -H "If-None-Match: $TAG"
check "If-None-Match with the current tag: 304 without a body" test "$STATUS:$BODY" = "304:"
admin GET "/api/v1/fleet/summary" "" -H "If-None-Match: \"0000\", W/$TAG"
check "a tag list (weak form too) matches: 304" test "$STATUS" = 304
admin POST "/api/v1/machines/$M6/unlock"
admin GET "/api/v1/fleet/summary" "" -H "If-None-Match: $TAG"
expect 200 "after a change the old tag no longer matches: 200" '.by_status.locked == 0'
api GET /healthz "" -H "If-None-Match: *"
expect 200 "public routes are not conditional" '.status == "ok"'

done_testing
