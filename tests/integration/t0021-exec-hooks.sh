#!/bin/sh
# Exec hooks (docs/exec-hooks.md): a configured argv run with the event on
# stdin and a fixed environment, no shell between event fields and a
# command line, exit codes (0 done, 100 give up, others retry), the
# timeout (killed), bad configurations refused at start; and the SPIRE
# example (examples/extensions/spire/spire-entry.sh) against a spire-server
# stand-in that accepts only what the real CLI accepts.
. "$SRCDIR/tests/lib/test-lib.sh"

wait_for() { # wait_for SQL EXPECTED SECONDS
	i=0; while [ "$(sql "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(sql "$1")" = "$2" ]
}
wait_file() { i=0; while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done; [ -s "$1" ]; }

REC="$TMP/recorder.sh"
cat >"$REC" <<EOS
#!/bin/sh
# records what it got; answers per $TMP/rec.mode
d="$TMP/rec/\$ITL_EVENT_ID"; mkdir -p "\$d"
cat >"\$d/stdin"; env | sort >"\$d/env"; printf '%s\n' "\$@" >"\$d/argv"
case \$(cat "$TMP/rec.mode" 2>/dev/null) in
fail) echo "cannot reach the inventory" >&2; exit 3 ;;
giveup) echo "no such node" >&2; exit 100 ;;
esac
exit 0
EOS
chmod +x "$REC"
SLOW="$TMP/slow.sh"; printf '#!/bin/sh\ncat >/dev/null\necho started >&2\nsleep 31.5\n' >"$SLOW"; chmod +x "$SLOW"
mkdir -p "$TMP/spire"
HOOKS=$(jq -cn --arg rec "$REC" --arg slow "$SLOW" --arg spire "$SRCDIR/examples/extensions/spire/spire-entry.sh" \
	--arg server "$SRCDIR/tests/standins/spire-server" --arg sd "$TMP/spire" '[
	{name: "recorder", command: [$rec, "--literal", "$(id)"], events: ["node.registered", "node.locked"]},
	{name: "slow", command: [$slow], events: ["node.unlocked"], timeout_seconds: 1},
	{name: "spire", command: [$spire], events: ["node.provisioned", "node.decommissioned"],
	 env: {SPIRE_SERVER: $server, SPIRE_STANDIN_DIR: $sd, SPIRE_TRUST_DOMAIN: "itlusions.com"}}]')

start_attestd ITL_EXEC_HOOKS="$HOOKS" ITL_EVENT_RETRY_BASE_MS=100 ITL_EVENT_MAX_ATTEMPTS=3 ITL_EVENT_POLL_MS=50
make_ek x1
api POST /api/v1/register "$(node_body ',"hw_product":"$(touch '"$TMP"'/pwned); `id`"')"
expect 200 "a machine registers (its hw_product full of shell syntax)"
M1=$(jget .machine_id)
E1=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M1' AND event = 'node.registered'")
check "the recorder ran with the event on stdin" wait_file "$TMP/rec/$E1/stdin" 10
check "... the event JSON, shell syntax and all, as data" test "$(jq -r '.hardware.hw_product' "$TMP/rec/$E1/stdin")" = "\$(touch $TMP/pwned); \`id\`"
check "... nothing of it was executed" test ! -e "$TMP/pwned"
check "... its argv exactly as configured" test "$(tr '\n' '|' <"$TMP/rec/$E1/argv")" = "--literal|\$(id)|"
check "... the documented environment" sh -c 'grep -qx "ITL_EVENT=node.registered" "$1" && grep -qx "ITL_EVENT_ID=$2" "$1" && grep -qx "ITL_MACHINE_ID=$3" "$1" && grep -qx "ITL_DELIVERY_ATTEMPT=1" "$1" && grep -q "^ITL_EK_FINGERPRINT=[0-9a-f]\{96\}$" "$1" && grep -qx "ITL_SERVICE_URL=http://attest.test" "$1"' _ "$TMP/rec/$E1/env" "$E1" "$M1"
check "... and nothing of attestd's own (no ITL_ADMIN_TOKEN, no DB URL)" sh -c '! grep -q "ITL_ADMIN_TOKEN\|ITL_DB_URL" "$1"' _ "$TMP/rec/$E1/env"
check "the delivery is done" wait_for "SELECT status FROM event_deliveries WHERE event_id = $E1 AND consumer = 'exec/*:recorder'" delivered 5

# SPIRE: approval creates the entry, revocation deletes it
admin POST "/api/v1/machines/$M1/approve" '{"role":"worker-app","hostname":"x-1"}'
FP=$(sql "SELECT ek_fingerprint FROM machines WHERE machine_id = '$M1'")
SHORT=$(printf '%.16s' "$FP")
check "node.provisioned: spire-server entry create with the seed's SPIFFE ID, parent and selector" \
	wait_for "SELECT status FROM event_deliveries WHERE consumer = 'exec/*:spire' AND event_id = (SELECT id FROM outbox_events WHERE machine_id = '$M1' AND event = 'node.provisioned')" delivered 10
check "... exactly that command line reached spire-server" \
	test "$(grep '^create' "$TMP/spire/calls")" = "create spiffe://itlusions.com/nodes/$SHORT spiffe://itlusions.com/spire/agent/tpm/$SHORT tpm:ek_fingerprint:$FP"
check "... and the entry exists" test "$(ls "$TMP/spire/entries" | wc -l | tr -d ' ')" = 1

# exit codes and the timeout
echo fail >"$TMP/rec.mode"
admin POST "/api/v1/machines/$M1/lock" '{}'
EL=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M1' AND event = 'node.locked'")
check "a command exiting 3 is retried, its stderr recorded, dead after 3 attempts" \
	wait_for "SELECT status || ':' || attempts || ':' || last_error FROM event_deliveries WHERE event_id = $EL AND consumer = 'exec/*:recorder'" \
	"dead:3:recorder exited with 3: cannot reach the inventory " 10
echo giveup >"$TMP/rec.mode"
admin POST "/api/v1/events/$EL/replay" '{"consumer":"exec/*:recorder"}'
check "exit 100 gives the event up at once" \
	wait_for "SELECT status || ':' || attempts FROM event_deliveries WHERE event_id = $EL AND consumer = 'exec/*:recorder'" "dead:1" 10
admin POST "/api/v1/machines/$M1/unlock" '{}'
EU=$(sql "SELECT id FROM outbox_events WHERE machine_id = '$M1' AND event = 'node.unlocked'")
check "a command past timeout_seconds is killed and retried" \
	wait_for "SELECT last_error FROM event_deliveries WHERE event_id = $EU AND consumer = 'exec/*:slow' AND attempts >= 1" "slow timed out after 1 s (killed): started " 10
check "... dead after 3 timeouts" wait_for "SELECT status || ':' || attempts FROM event_deliveries WHERE event_id = $EU AND consumer = 'exec/*:slow'" dead:3 15
sleep 0.3
check "... and no process of it is left (the whole process group was killed)" sh -c '! pgrep -fx "sleep 31.5" >/dev/null && ! pgrep -fx "/bin/sh $1" >/dev/null' _ "$SLOW"

admin POST "/api/v1/machines/$M1/revoke" '{"reason":"retired"}'
check "node.decommissioned: the SPIRE entry is looked up and deleted by -entryID" \
	wait_for "SELECT status FROM event_deliveries WHERE consumer = 'exec/*:spire' AND event_id = (SELECT id FROM outbox_events WHERE machine_id = '$M1' AND event = 'node.decommissioned')" delivered 10
check "... spire-server saw show, then delete" test "$(grep -c '^delete ' "$TMP/spire/calls")" = 1
check "... no entry left" test "$(ls "$TMP/spire/entries" | wc -l | tr -d ' ')" = 0
check "... and spire-server refused nothing" test "$(grep -c REFUSED "$TMP/spire/calls")" = 0
stop_attestd

# bad configurations stop attestd with a clear message
refused() {
	d=$(mktemp -d "$TMP/refused.XXXXXX")
	if [ "$ATTEST_DB" = postgresql ]; then new_db; u=$DB_URL; else u="sqlite:///$d/machines.db"; fi
	mkdir -p "$d/configs"
	env ITL_DB_URL="$u" ITL_CONFIG_CACHE_DIR="$d/configs" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_ADMIN_TOKEN="$ADMIN" \
		ITL_EXEC_HOOKS="$1" timeout 20 "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$d/ready" >"$d/log" 2>&1
	rc=$?
	if [ "$rc" != 0 ] && [ ! -s "$d/ready" ] && grep -qF "$2" "$d/log"; then pass "refused: $2"
	else fail "refused: $2" "exit $rc; log:" "$(tail -3 "$d/log")"; fi
}
refused 'not json' 'ITL_EXEC_HOOKS: expected a JSON list'
refused '[{"name":"x","command":["relative/path"]}]' 'the first an absolute path'
refused '[{"name":"x y","command":["/bin/true"]}]' 'needs a "name" of [A-Za-z0-9._-]{1,64}'
refused '[{"name":"x","command":["/nonexistent/hook"]}]' '/nonexistent/hook is not an executable file'
refused '[{"name":"x","command":["/bin/true"]},{"name":"x","command":["/bin/true"]}]' 'hook x is defined twice'
refused '[{"name":"x","command":["/bin/true"],"timeout_seconds":0}]' '"timeout_seconds" must be 1-3600'
refused '[{"name":"x","command":["/bin/true"],"env":{"LD_PRELOAD":"/tmp/x.so"}}]' 'env LD_PRELOAD'

done_testing
