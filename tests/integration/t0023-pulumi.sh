#!/bin/sh
# The pulumi_state built-in extension (docs/pulumi-backend.md): an
# unmodified `pulumi` CLI's traffic, replayed request by request by
# tests/helpers/pulumi-cli.py (pulumi.md §7/§9: headers, gzip bodies,
# update tokens, verbatim + delta checkpoints): login, stack init, secrets,
# preview, up with the lock (409), cancel, export/import, history, destroy,
# stack rm; hostile input (4xx with "code", nothing changed: malformed
# JSON and gzip, a gzip bomb, oversized bodies, bad deltas, wrong
# tokens); concurrent starts; lease expiry; an operator's OIDC token as
# the Pulumi token; ITL_PULUMI_ENABLED=false.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/glewlwyd.sh"

TOK=pulumi-token-$$-0123456789
head -c 32 /dev/urandom > "$TMP/master.key"
PENV="ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PULUMI_MASTER_KEY=$TMP/master.key"

# replay SCENARIO [args]: run the stand-in CLI, one TAP line per check
replay() {
	sc=$1; shift
	python3 "$SRCDIR/tests/helpers/pulumi-cli.py" "$sc" --base "$BASE" --token "$TOK" "$@" >"$TMP/replay.out" 2>&1
	rc=$?
	n=0
	while IFS= read -r line; do
		case $line in
		"PASS "*) pass "$sc: ${line#PASS }"; n=$((n + 1)) ;;
		"FAIL "*) fail "$sc: ${line#FAIL }"; n=$((n + 1)) ;;
		*) say "$line" ;;
		esac
	done <"$TMP/replay.out"
	[ "$rc" = 0 ] || [ "$n" -gt 0 ] || fail "$sc: the replay ran" "exit $rc"
}

# ---- the walkthrough, deltas forced by a 1-byte cutoff ----------------------
# shellcheck disable=SC2086
start_attestd $PENV ITL_PULUMI_DELTA_CUTOFF_BYTES=1
check "log: pulumi_state is loaded as a built-in" \
	grep -q "Extension pulumi_state 1.0.0 loaded from builtin: 39 route(s), 0 hook(s), 3 migration(s)" "$DATA/attestd.log"
api GET /api/v1/extensions
expect 200 "GET /api/v1/extensions lists it as a built-in" \
	'(.extensions[] | select(.name == "pulumi_state") | .source == "builtin" and (.prefixes | index("/api/stacks/")))'
replay walkthrough
check "its tables are extension_pulumi_state_*" \
	test "$(sql "SELECT COUNT(*) FROM extension_pulumi_state_stacks WHERE stack = 'other'")" = 1
check "stack keys are stored wrapped, never the raw 32 bytes" \
	test "$(sql "SELECT length(secrets_key) FROM extension_pulumi_state_stacks WHERE stack = 'other'")" = 80
check "audit: the update lifecycle" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action IN ('pulumi.update.create', 'pulumi.update.start', 'pulumi.update.complete', 'pulumi.update.cancel', 'pulumi.stack.import', 'pulumi.stack.delete')")" -ge 15
check "audit: decryptions say who, which stack and how many" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'pulumi.decrypt' AND operator_cn = 'pulumi' AND detail LIKE '%acme/proj/dev: 2 secret value(s) decrypted%'")" -ge 1
admin GET /api/v1/audit/verify
expect 200 "the audit chain still verifies" '.valid == true'
stop_attestd

# ---- many deltas, then a restart in the middle of the update (no cache) -----------
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/deltas.db"; fi
LISTEN=127.0.0.1:$(free_port)
# shellcheck disable=SC2086
start_attestd $PENV ITL_PULUMI_DELTA_CUTOFF_BYTES=1
replay deltas-a --state "$TMP/deltas.json"
DB="$TMP/deltas.db"
check "deltas are rows on the stored text (at most 64)" \
	test "$(sql "SELECT COUNT(*) FROM extension_pulumi_state_deltas")" -lt 64
stop_attestd
# shellcheck disable=SC2086
start_attestd $PENV ITL_PULUMI_DELTA_CUTOFF_BYTES=1
replay deltas-b --state "$TMP/deltas.json"
DB="$TMP/deltas.db"
check "complete wrote the full text and dropped the delta rows" \
	test "$(sql "SELECT COUNT(*) FROM extension_pulumi_state_deltas")" = 0
stop_attestd
SHARED_DB_URL=""
LISTEN=""

# ---- hostile input, concurrency and leases with small limits -----------------
# shellcheck disable=SC2086
start_attestd $PENV ITL_PULUMI_MAX_BODY_BYTES=1048576 ITL_PULUMI_MAX_CHECKPOINT_BYTES=1048576 ITL_PULUMI_LEASE_SECONDS=10
replay bad-input --max-inflated 1048576
replay concurrency
replay lease
check "attestd is still up after the gzip bomb" kill -0 "$ATTESTD_PID"
stop_attestd

# ---- an operator's OIDC access token as the Pulumi token ----------------------
if [ -x "$GLEW_BIN" ]; then
	glew_start "$(free_port)"
	# shellcheck disable=SC2086
	start_attestd $PENV ITL_OIDC_ISSUER="$ISS" ITL_OIDC_AUDIENCE=attestation ITL_OIDC_ROLE_CLAIMS=/roles
	OP1=$(glew_token operator1 operator1-pass)
	VIEW=$(glew_token viewer1 viewer1-pass)
	TOK=$OP1 replay user --expect-login operator1
	api POST /api/stacks/acme/proj "{\"stackName\":\"oidc\"}" -H "Authorization: token $OP1"
	expect 200 "operator1 creates a stack with their OIDC token"
	check "the audit log names operator1" \
		test "$(sql "SELECT operator_cn FROM audit_log WHERE action = 'pulumi.stack.create'")" = operator1
	api GET /api/user "" -H "Authorization: token $VIEW"
	expect 403 "a valid token without the operator role: 403 with code" '.code == 403'
	api GET /api/user "" -H "Authorization: token $ADMIN"
	expect 200 "the admin token works too (SYSTEM)" '.githubLogin == "SYSTEM"'
	stop_attestd
else
	say "glewlwyd not installed: OIDC part skipped"
fi

# ---- disabled ------------------------------------------------------------------
# shellcheck disable=SC2086
start_attestd $PENV ITL_PULUMI_ENABLED=false
api GET /api/user "" -H "Authorization: token $TOK"
expect 404 "ITL_PULUMI_ENABLED=false: the routes answer 404 (with code)" '.code == 404'
api GET /api/capabilities "" -H "Authorization: token $TOK"
expect 404 "ITL_PULUMI_ENABLED=false: capabilities too"
stop_attestd

# no operator authentication configured at all: a wrong token is still a 401 (not 503)
# shellcheck disable=SC2086
start_attestd $PENV ITL_ADMIN_TOKEN=
api GET /api/user "" -H "Authorization: token wrong-token-wrong-token"
expect 401 "without ITL_ADMIN_TOKEN or OIDC a wrong token is 401 with code" '.code == 401'
api GET /api/user "" -H "Authorization: token $TOK"
expect 200 "... and ITL_PULUMI_TOKEN works"
stop_attestd

d=$(mktemp -d "$TMP/refused.XXXXXX")
env ITL_DB_URL="sqlite:///$d/m.db" ITL_CONFIG_CACHE_DIR="$d" ITL_ENROLLMENT_CA_DIR="$d/ca" ITL_ADMIN_TOKEN="$ADMIN" \
	ITL_PULUMI_MASTER_KEY="$TMP/nonexistent" timeout 20 "$ATTESTD" --listen 127.0.0.1:0 --ready-file "$d/ready" >"$d/log" 2>&1
check "a missing ITL_PULUMI_MASTER_KEY file stops attestd with a message" grep -q "ITL_PULUMI_MASTER_KEY: cannot open" "$d/log"

done_testing
