#!/bin/sh
# attestd --check-config, migrate, and configuration errors.
. "$SRCDIR/tests/lib/test-lib.sh"

out=$("$ATTESTD" --check-config 2>&1); rc=$?
check "--check-config accepts defaults" test "$rc" = 0
check "--check-config prints every variable" sh -c "printf '%s' \"\$1\" | grep -q '^ITL_DUAL_CONTROL_WINDOW_SECONDS=600$'" _ "$out"
check "--check-config masks secrets" sh -c "ITL_ADMIN_TOKEN=s3cret \"\$1\" --check-config | grep -q '^ITL_ADMIN_TOKEN=(set)$'" _ "$ATTESTD"

bad() { # bad VAR VALUE EXPECTED-TEXT
	out=$(env "$1=$2" "$ATTESTD" --check-config 2>&1); rc=$?
	if [ "$rc" = 1 ] && printf '%s' "$out" | grep -q "$1: $3"; then pass "invalid $1='$2' is rejected naming the variable"
	else fail "invalid $1='$2' is rejected naming the variable" "rc=$rc out=$out"; fi
}
bad ITL_REQUIRE_NONCE maybe "expected a boolean"
bad ITL_DUAL_CONTROL_QUORUM 1 "expected an integer between 2"
bad ITL_DUAL_CONTROL_QUORUM two "expected an integer"
bad ITL_DUAL_CONTROL_ROLES "controlplane,chef" "unknown role 'chef'"
bad ITL_DUAL_CONTROL_ROLES '["controlplane",3]' "expected a comma-separated list or a JSON array"
bad ITL_SERVICE_URL "ftp://x" "expected an http:// or https:// URL"
bad ITL_ENROLLMENT_CA_ALGORITHM dsa "expected one of ecdsa-p384|rsa-4096"
bad ITL_DB_URL "mysql://x" "expected sqlite:///<path> or postgresql://"
bad ITL_LOG_FORMAT xml "expected one of text|json"

check "list accepts a,b" sh -c "ITL_DUAL_CONTROL_ROLES='controlplane, worker-infra' \"\$1\" --check-config | grep -q '^ITL_DUAL_CONTROL_ROLES=controlplane,worker-infra$'" _ "$ATTESTD"
check "list accepts a JSON array" sh -c "ITL_DUAL_CONTROL_ROLES='[\"controlplane\",\"worker-app\"]' \"\$1\" --check-config | grep -q '^ITL_DUAL_CONTROL_ROLES=controlplane,worker-app$'" _ "$ATTESTD"
check "trailing slash stripped from ITL_SERVICE_URL" sh -c "ITL_SERVICE_URL=https://a.example/ \"\$1\" --check-config | grep -q '^ITL_SERVICE_URL=https://a.example$'" _ "$ATTESTD"

# start-up refuses an invalid value
out=$(ITL_HIGH_ASSURANCE=perhaps "$ATTESTD" --listen 127.0.0.1:0 2>&1); rc=$?
check "service start-up stops on an invalid variable" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'ITL_HIGH_ASSURANCE'" _ "$out"
out=$("$ATTESTD" --bogus 2>&1); rc=$?
check "unknown argument is an error" test "$rc" = 2

# migrate: idempotent, creates the schema
D=$TMP/mig; mkdir -p "$D"
out=$(ITL_DB_URL="sqlite:///$D/m.db" "$ATTESTD" migrate 2>&1)
# versions are reserved per feature and applied by set, so the count of
# migrations (NMIG) and the latest version differ
LATEST=$(printf '%s' "$out" | sed -n 's/^schema version \([0-9]*\) .*/\1/p')
NMIG=$(printf '%s' "$out" | sed -n 's/^schema version [0-9]* (\([0-9]*\) migration.*/\1/p')
check "migrate applies every migration ($NMIG, up to version $LATEST)" test "$(sqlite3 "$D/m.db" 'SELECT COUNT(*) FROM schema_migrations')" = "$NMIG"
out=$(ITL_DB_URL="sqlite:///$D/m.db" "$ATTESTD" migrate 2>&1)
check "migrate is idempotent" sh -c "printf '%s' \"\$1\" | grep -q '0 migration(s) applied'" _ "$out"
check "schema_migrations records every version up to the latest" test "$(sqlite3 "$D/m.db" 'SELECT COUNT(*) || ":" || MAX(version) FROM schema_migrations')" = "$NMIG:$LATEST"
check "WAL journal mode" test "$(sqlite3 "$D/m.db" 'PRAGMA journal_mode')" = wal
sqlite3 "$D/m.db" "INSERT INTO schema_migrations VALUES (99, 'future', 'x')"
out=$(ITL_DB_URL="sqlite:///$D/m.db" "$ATTESTD" migrate 2>&1); rc=$?
check "a database from a newer attestd is refused" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'newer than this attestd'" _ "$out"

# concurrent migrate of one fresh database: exactly one applies
D2=$TMP/mig2; mkdir -p "$D2"
for i in 1 2 3 4; do ITL_DB_URL="sqlite:///$D2/m.db" "$ATTESTD" migrate > "$D2/out.$i" 2>&1 & done
wait
check "concurrent migrate applies the schema exactly once" test "$(cat "$D2"/out.* | grep -c "($NMIG migration(s) applied)")" = 1
check "concurrent migrate: all succeed" test "$(cat "$D2"/out.* | grep -c "^schema version $LATEST ")" = 4
done_testing
