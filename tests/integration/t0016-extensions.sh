#!/bin/sh
# The extension ABI (include/attest/extension.h): the example extension is
# loaded with dlopen, its migration creates its own table, its route
# answers under its prefix with operator auth, its hook sees lifecycle
# events; extensions that break a rule stop attestd with a clear message;
# a failing hook is retried until the event is delivered.
. "$SRCDIR/tests/lib/test-lib.sh"

HELLO="$EXT_DIR/hello.so"

wait_for() { # wait_for SQL EXPECTED SECONDS
	i=0; while [ "$(sql "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(sql "$1")" = "$2" ]
}

# refused EXT MESSAGE: attestd with EXT exits non-zero and logs MESSAGE
refused() {
	d=$(mktemp -d "$TMP/refused.XXXXXX")
	if [ "$ATTEST_DB" = postgresql ]; then new_db; u=$DB_URL; else u="sqlite:///$d/machines.db"; fi
	mkdir -p "$d/configs"
	env ITL_DB_URL="$u" ITL_CONFIG_CACHE_DIR="$d/configs" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_ADMIN_TOKEN="$ADMIN" \
		ITL_EXTENSIONS="$1" timeout 20 "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$d/ready" >"$d/log" 2>&1
	rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ ! -s "$d/ready" ] && grep -qF "$2" "$d/log"; then
		pass "refused: $(basename "$1") ($2)"
	else
		fail "refused: $(basename "$1") ($2)" "exit $rc; log:" "$(tail -5 "$d/log")"
	fi
}

start_attestd ITL_EXTENSIONS="$HELLO"
check "log: the extension is loaded" grep -q "Extension hello 1.0.0 loaded from $HELLO: 1 route(s), 1 hook(s), 1 migration(s)" "$DATA/attestd.log"
api GET /api/v1/extensions
expect 200 "GET /api/v1/extensions lists hello after the built-in webhooks and exec modules" \
	'.total == 3 and .extensions[0].name == "webhooks" and .extensions[0].source == "builtin" and .extensions[1].name == "exec" and .extensions[2].name == "hello" and .extensions[2].version == "1.0.0" and .extensions[2].hooks == ["*"] and .extensions[2].routes == [{"method":"GET","path":"/api/v1/ext/hello/greeting"}] and .extensions[2].prefixes == ["/api/v1/ext/hello/"]'
check "its migration is recorded" test "$(sql "SELECT extension || ':' || version FROM extension_migrations WHERE extension = 'hello'")" = "hello:1"
check "its table exists and is empty" test "$(sql "SELECT COUNT(*) FROM extension_hello_events")" = 0

api GET /api/v1/ext/hello/greeting
expect 401 "its route requires an operator credential"
admin GET "/api/v1/ext/hello/greeting?name=ops"
expect 200 "its route answers an operator" '.greeting == "hello, ops" and .caller == "operator" and .events_seen == 0'
admin GET "/api/v1/ext/hello/greeting?name=%3Cscript%3E"
expect 422 "its route refuses a bad name with its own detail" '.detail | startswith("name:")'
admin POST /api/v1/ext/hello/greeting '{}'
expect 405 "another method on its path is 405"
admin GET /api/v1/ext/hello/nothing
expect 404 "a path it did not register is 404"

make_ek hx
api POST /api/v1/register "$(node_body)"
expect 200 "a machine registers"
MID=$(jget .machine_id)
check "the hook records node.registered" wait_for "SELECT event || ':' || machine_id FROM extension_hello_events" "node.registered:$MID" 10
check "the outbox event is marked delivered" wait_for "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL" 0 5
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app","hostname":"hx-1"}'
expect 200 "the operator approves it"
check "the hook records node.provisioned too" wait_for "SELECT COUNT(*) FROM extension_hello_events WHERE event = 'node.provisioned'" 1 10
check "log: the hook ran in the extension's logger" grep -q "attestd.ext.hello .*saw node.registered for machine $MID" "$DATA/attestd.log"
admin GET /api/v1/ext/hello/greeting
expect 200 "the route sees what the hook stored" '.events_seen == 2'

stop_attestd

# the same database twice: the migration is applied once
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
start_attestd ITL_EXTENSIONS="$HELLO"; stop_attestd
start_attestd ITL_EXTENSIONS="$HELLO"
DB="$TMP/shared.db"
check "a second start does not re-apply the migration" test "$(sql "SELECT COUNT(*) FROM extension_migrations WHERE extension = 'hello'")" = 1
stop_attestd
SHARED_DB_URL=""

refused "$EXT_DIR/ext-bad_abi.so" "built for extension ABI 99, this attestd speaks 1"
refused "$EXT_DIR/ext-bad_name.so" "invalid name 'Bad-Name'"
refused "$EXT_DIR/ext-bad_route.so" "route GET /api/v1/machines/{id}/steal is outside its prefixes"
refused "$EXT_DIR/ext-bad_table.so" "failed to initialise: migration refused (migration 1: 'TABLE machines_copy': extension objects must be named extension_variant_*)"
refused "$EXT_DIR/ext-fail_init.so" "failed to initialise: the frobnicator is not configured"
refused "$TMP/missing.so" "cannot load extension $TMP/missing.so"
refused "$SRCDIR/tests/data/base/multidoc.yaml" "cannot load extension"
refused "$HELLO,$HELLO" "name hello is already loaded"

# a hook that fails twice per event still gets every event, in order per machine
start_attestd ITL_EXTENSIONS="$EXT_DIR/ext-flaky.so" ITL_EVENT_RETRY_BASE_MS=100
make_ek f1; api POST /api/v1/register "$(node_body)"; M1=$(jget .machine_id)
admin POST "/api/v1/machines/$M1/approve" '{"role":"worker-infra","hostname":"f1"}'
make_ek f2; api POST /api/v1/register "$(node_body)"; M2=$(jget .machine_id)
check "a failing hook is retried until every event is delivered" wait_for "SELECT COUNT(*) FROM extension_flaky_seen" 4 20
check "... one machine's events in the order they happened" \
	test "$(sql "SELECT s.event FROM outbox_events o JOIN extension_flaky_seen s ON s.event_id = o.id WHERE o.machine_id = '$M1' ORDER BY s.n" | tr '\n' ' ')" = "node.registered node.provisioned node.role_changed "
check "... and each delivery records its attempts" \
	test "$(sql "SELECT MIN(attempts) FROM event_deliveries WHERE consumer = 'flaky/*' AND status = 'delivered'")" -ge 1
check "log: the failure is reported and retried" grep -q "Event .* (node.registered) to flaky/\*: attempt 1 failed (the hook returned an error); retried in" "$DATA/attestd.log"
check "every event is settled" wait_for "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL" 0 10
stop_attestd

done_testing
