#!/bin/sh
# attestd db copy: SQLite -> PostgreSQL (and back); the audit chain still verifies.
. "$SRCDIR/tests/lib/test-lib.sh"
[ "$ATTEST_DB" = postgresql ] || { echo "1..0 # SKIP PostgreSQL only"; exit 0; }

SQLITE_URL="sqlite:///$TMP/source.db"
SHARED_DB_URL=$SQLITE_URL
start_attestd
make_ek a rsa
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"w-1","reason":"caf\u00e9 \u2014 r\u00e9sum\u00e9"}'
api POST /api/v1/attest "$(node_body)"
api GET "/api/v1/config/$(jget .config_token)"
admin POST "/api/v1/machines/$MID/lock" '{"reason":"maintenance"}'
make_ek b ec
api POST /api/v1/register "$(node_body)"
api GET /api/v1/attest/challenge
admin POST /api/v1/audit/checkpoints
CP=$(jget .id); printf '%s' "$BODY" > "$TMP/cp.json"
admin GET /api/v1/audit/verify
ROOT=$(jget .root_hash); ENTRIES=$(jget .entries)
admin GET /api/v1/machines
printf '%s' "$BODY" | jq -S . > "$TMP/machines.before"

# copy while the source service is still running
new_db
out=$("$ATTESTD" db copy --from "$SQLITE_URL" --to "$DB_URL" 2>&1); rc=$?
check "db copy succeeds" test "$rc" = 0
check "db copy reports the verified chain" sh -c "printf '%s' \"\$1\" | grep -q 'audit chain verified: $ENTRIES entries, root $ROOT'" _ "$out"
stop_attestd

SHARED_DB_URL=$DB_URL
start_attestd
admin GET /api/v1/audit/verify
expect 200 "the copied chain verifies on PostgreSQL with the same root" ".valid == true and .entries == $ENTRIES and .root_hash == \"$ROOT\""
check "... and against the copied checkpoint" sh -c 'printf "%s" "$1" | jq -e ".checkpoint.id == $2 and .checkpoint.matches == true" >/dev/null' _ "$BODY" "$CP"
admin GET "/api/v1/audit/checkpoints/$CP"
check "the signed checkpoint is copied byte for byte" sh -c 'test "$(printf "%s" "$1" | jq -c "{payload,signature}")" = "$(jq -c "{payload,signature}" "$2")"' _ "$BODY" "$TMP/cp.json"
admin POST /api/v1/audit/checkpoints
expect 201 "new checkpoints get fresh ids after the copy" ".id == $((CP + 1))"
admin GET /api/v1/machines
printf '%s' "$BODY" | jq -S . > "$TMP/machines.after"
check "machines are identical after the copy" cmp -s "$TMP/machines.before" "$TMP/machines.after"
admin POST "/api/v1/machines/$MID/unlock"
expect 200 "the copied machine continues its lifecycle" '.status == "attested"'
make_ek c ec
api POST /api/v1/register "$(node_body)"
expect 200 "new rows get fresh ids after the copy"
admin GET /api/v1/audit/verify
expect 200 "the chain keeps verifying as it grows" ".valid == true and .entries == $((ENTRIES + 2))"

out=$("$ATTESTD" db copy --from "$SQLITE_URL" --to "$DB_URL" 2>&1); rc=$?
check "copying into a non-empty database is refused" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'not empty'" _ "$out"
out=$("$ATTESTD" db copy --from "$DB_URL" --to "sqlite:///$TMP/back.db" 2>&1); rc=$?
check "PostgreSQL -> SQLite copy back" test "$rc" = 0
check "the copied-back chain verifies" sh -c "printf '%s' \"\$1\" | grep -q 'audit chain verified: $((ENTRIES + 2)) entries'" _ "$out"
check "... checkpoints included" sh -c "printf '%s' \"\$1\" | grep -qE '^audit_checkpoints +[1-9]'" _ "$out"
# a source cut back below its newest checkpoint is not copied
sqlite3 "$TMP/back.db" "DELETE FROM audit_log WHERE id >= (SELECT head_id FROM audit_checkpoints ORDER BY id DESC LIMIT 1)"
out=$("$ATTESTD" db copy --from "sqlite:///$TMP/back.db" --to "sqlite:///$TMP/back2.db" 2>&1); rc=$?
check "a log cut back below its newest checkpoint is refused by db copy" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'does not extend its newest checkpoint'" _ "$out"
out=$("$ATTESTD" db copy --from "$DB_URL" 2>&1); rc=$?
check "db copy without --to is a usage error" test "$rc" = 2
done_testing
