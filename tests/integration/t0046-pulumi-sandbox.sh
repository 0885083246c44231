#!/bin/sh
# Sandboxed server-side Pulumi deployments (docs/pulumi-backend.md,
# "Sandbox"): with ITL_PULUMI_DEPLOY_SANDBOX=bwrap the stand-in `pulumi`
# (tests/helpers/pulumi-standin.sh) cannot read attestd's database, CA key,
# master key, log or config directory, cannot write outside its work
# directory, sees none of attestd's environment, and still calls back into
# the backend; cancel kills everything in the sandbox. `none` sees those
# files (so the probes mean something). bwrap required but missing: the
# deployment fails with the reason. ITL_PULUMI_DEPLOY_USER=nobody (user
# mode, and auto with a user) runs it as nobody: attestd runs as root here
# and in CI; without root these checks fail, they are not skipped.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/glewlwyd.sh"	# free_port

TOK=pulumi-token-$$-0123456789
auth() { printf 'Authorization: token %s' "$TOK"; }
S=/api/stacks/acme/proj/dev

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q --bare -b main "$TMP/infra.git"
git init -q -b main "$TMP/work"
for d in ok slow; do mkdir -p "$TMP/work/$d"; printf 'name: proj\nruntime: yaml\n' > "$TMP/work/$d/Pulumi.yaml"; done
echo 60 > "$TMP/work/slow/sleep"
git -C "$TMP/work" add -A && git -C "$TMP/work" commit -qm infra && git -C "$TMP/work" push -q "$TMP/infra.git" main
REPO="file://$TMP/infra.git"
# what the stand-in must not reach: the master key, attestd's files (below)
openssl rand -hex 32 > "$TMP/master.key"
chmod 600 "$TMP/master.key"

PORT=$(free_port)
LISTEN=127.0.0.1:$PORT
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else mkdir -m 700 "$TMP/db"; SHARED_DB_URL="sqlite:///$TMP/db/shared.db"; fi
PENV="ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PULUMI_CLI=$SRCDIR/tests/helpers/pulumi-standin.sh
 ITL_PULUMI_MASTER_KEY=$TMP/master.key ITL_PULUMI_DEPLOY_ALLOW_FILE=true
 ITL_PULUMI_DEPLOY_BACKEND_URL=http://$LISTEN ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS=30"
start() { # start MODE [more env]
	m=$1; shift
	# shellcheck disable=SC2086
	start_attestd $PENV ITL_PULUMI_DEPLOY_SANDBOX="$m" "$@"
	api GET /api/stacks/acme/proj/dev "" -H "$(auth)"
	if [ "$STATUS" = 404 ]; then
		api POST /api/stacks/acme/proj '{"stackName":"dev"}' -H "$(auth)"
		expect 200 "stack dev created"
	fi
	# the CA is created at start: its key, the database, the master key, the log, a config
	PROBE="$TMP/master.key $DATA/attestd.log $(find "$DATA/ca" "$DATA/configs" -type f | head -20 | tr '\n' ' ')"
	[ "$ATTEST_DB" = postgresql ] || PROBE="$PROBE $TMP/db/shared.db"
}
deploy() { # deploy DIR [extra env json] -> ID
	api POST "$S/deployments" "{\"operation\":\"update\",\"source\":{\"repoURL\":\"$REPO\",\"branch\":\"main\",\"repoDir\":\"$1\"},\"environmentVariables\":{\"STANDIN_PROBE_READ\":\"$PROBE\",\"STANDIN_PROBE_WRITE\":\"$TMP/escaped\"${2:-}}}" -H "$(auth)"
	ID=$(jget .id)
}
wait_status() { # wait_status ID STATUS SECONDS
	i=0
	while [ $i -lt $(($3 * 5)) ]; do
		api GET "$S/deployments/$1" "" -H "$(auth)"
		[ "$(jget .status)" = "$2" ] && return 0
		sleep 0.2; i=$((i + 1))
	done
	return 1
}
LOG="$TMP/deploy.log"
fetch_log() { api GET "$S/deployments/$1" "" -H "$(auth)"; printf '%s' "$BODY" | jq -r .log > "$LOG"; }
has() { grep -q -- "$1" "$LOG"; }
count() { grep -c -- "$1" "$LOG"; }
probes_are() { # probes_are readable|unreadable: every file the stand-in tried
	n=$(count "^probe read .*: $1\$")
	[ "$n" -ge 5 ] && [ "$n" = "$(count '^probe read ')" ]
}
# processes (bwrap and everything in the sandbox) whose environment carries MARK
marked() { grep -qsl "STANDIN_MARK=$1" /proc/[0-9]*/environ; }
checkpoint_from_deployment() {
	api GET "$S/export" "" -H "$(auth)"
	[ "$(jget .deployment.resources[0].outputs.from)" = deployment ]
}

say "--- bwrap required"
start bwrap
check "attestd log: the sandbox is bubblewrap" grep -q "deployments sandbox: bubblewrap" "$DATA/attestd.log"
check "the probes include the CA key, the master key${ATTEST_DB:+ ($ATTEST_DB)} and the log" sh -c "
	echo '$PROBE' | grep -q '/ca/enrollment-ca.key' && echo '$PROBE' | grep -q 'master.key' && echo '$PROBE' | grep -q 'attestd.log'
	[ '$ATTEST_DB' = postgresql ] || echo '$PROBE' | grep -q 'db/shared.db'"
deploy ok
OK=$ID
check "a deployment in bubblewrap succeeds" wait_status "$OK" succeeded 40
fetch_log "$OK"
check "its log names the sandbox" has "^sandbox: bubblewrap"
say "$(grep -E '^(probe|whoami)' "$LOG" | tr '\n' ';')"
check "the stand-in called back into the backend: its checkpoint is the stack's state" checkpoint_from_deployment
check "it could not read the database, CA key, master key, log or configs" probes_are unreadable
check "it could not write outside its work directory" has "^probe write $TMP/escaped: refused"
check "... and nothing was written there" test ! -e "$TMP/escaped"
check "it could write in its work directory (HOME=/deploy)" has "^probe write work dir: written"
check "it saw none of attestd's environment (no ITL_ variables)" has "^whoami: uid=0 home=/deploy itl-vars=0"

MARK=d$$x$(date +%s)
deploy ok ",\"STANDIN_MARK\":\"$MARK\",\"STANDIN_DAEMON\":\"1\""
check "a deployment that leaves a daemon (setsid, background) behind succeeds" wait_status "$ID" succeeded 40
i=0; while marked "$MARK" && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
check "... and the daemon did not outlive it (bwrap's PID namespace)" sh -c "! grep -qsl 'STANDIN_MARK=$MARK' /proc/[0-9]*/environ"

MARK=m$$x$(date +%s)
deploy slow ",\"STANDIN_MARK\":\"$MARK\""
SLOW=$ID
check "the slow one runs" wait_status "$SLOW" running 30
i=0; while ! marked "$MARK" && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
check "its sandboxed processes are there" marked "$MARK"
for f in $(grep -lsa "attestd-deploy-" /proc/[0-9]*/cmdline); do tr '\0' ' ' 2>/dev/null < "$f"; echo; done > "$TMP/bwrap.cmdline"
check "bwrap runs with the work directory bound at /deploy" grep -q -- "--bind .*/attestd-deploy-[^ ]* /deploy" "$TMP/bwrap.cmdline"
check "... and its command line holds no environment (the token is not in /proc/*/cmdline)" \
	sh -c "! grep -qE -- '--setenv|PULUMI_ACCESS_TOKEN|pd-[0-9a-f]' '$TMP/bwrap.cmdline'"
api DELETE "$S/deployments/$SLOW/cancel" "" -H "$(auth)"
expect 204 "cancel: 204"
check "it ends cancelled" wait_status "$SLOW" cancelled 20
i=0; while marked "$MARK" && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
check "bwrap and everything in its sandbox are gone" sh -c "! grep -qsl 'STANDIN_MARK=$MARK' /proc/[0-9]*/environ"
stop_attestd

say "--- none: the same probes reach the files"
start none
check "attestd log: sandbox none" grep -q "deployments sandbox: none" "$DATA/attestd.log"
deploy ok
check "a deployment without sandbox succeeds" wait_status "$ID" succeeded 40
fetch_log "$ID"
check "its log says so" has "^sandbox: none"
check "unconfined, it read every probed file (the probes are real)" probes_are readable
check "... and wrote outside its work directory" test -s "$TMP/escaped"
rm -f "$TMP/escaped"
MARK=n$$x$(date +%s)
deploy ok ",\"STANDIN_MARK\":\"$MARK\",\"STANDIN_DAEMON\":\"1\""
check "unconfined, a daemon deployment succeeds" wait_status "$ID" succeeded 40
sleep 1
check "... and its daemon outlives it (documented: only bubblewrap prevents that)" marked "$MARK"
for f in $(grep -lsa "STANDIN_MARK=$MARK" /proc/[0-9]*/environ); do f=${f#/proc/}; kill "${f%/environ}" 2>/dev/null; done
stop_attestd

say "--- bwrap required but missing"
start bwrap ITL_PULUMI_BWRAP=/nonexistent/bwrap
check "attestd log: every deployment will fail, and why" \
	grep -q "every deployment will fail: ITL_PULUMI_DEPLOY_SANDBOX=bwrap cannot work here: bubblewrap" "$DATA/attestd.log"
deploy ok
check "the deployment fails" wait_status "$ID" failed 30
expect 200 "... with the reason in its status and log, and it never ran" \
	'(.reason | startswith("ITL_PULUMI_DEPLOY_SANDBOX=bwrap cannot work here")) and (.log | startswith("not run: ")) and (.log | contains("probe") | not) and .exitCode == null'
stop_attestd

say "--- auto without bwrap: unconfined, with a warning"
start auto ITL_PULUMI_BWRAP=/nonexistent/bwrap
check "attestd log: WARNING deployments are NOT sandboxed" grep -q "deployments are NOT sandboxed" "$DATA/attestd.log"
deploy ok
check "the deployment runs unconfined" wait_status "$ID" succeeded 40
fetch_log "$ID"
check "its log says sandbox none" has "^sandbox: none"
rm -f "$TMP/escaped"
stop_attestd

say "--- an unknown ITL_PULUMI_DEPLOY_USER stops attestd at start"
mkdir "$TMP/bad"
env ITL_DB_URL="sqlite:///$TMP/bad/x.db" ITL_ENROLLMENT_CA_DIR="$TMP/bad/ca" ITL_CONFIG_CACHE_DIR="$TMP/bad" \
	ITL_SERVICE_URL=http://attest.test ITL_PULUMI_CLI="$SRCDIR/tests/helpers/pulumi-standin.sh" \
	ITL_PULUMI_DEPLOY_USER="no-such-user-$$" timeout 30 "$ATTESTD" --listen 127.0.0.1:0 > "$TMP/bad/log" 2>&1
rc=$?
check "attestd exits with an error (not a timeout)" sh -c "[ $rc != 0 ] && [ $rc != 124 ]"
check "... naming the variable" grep -q "ITL_PULUMI_DEPLOY_USER: no user 'no-such-user-$$'" "$TMP/bad/log"
check "... without a sanitizer report" sh -c "! grep -q 'Sanitizer' '$TMP/bad/log'"

say "--- a dedicated user (nobody)"
if [ "$(id -u)" != 0 ]; then
	fail "user mode: attestd must run as root to switch to ITL_PULUMI_DEPLOY_USER" "id -u is $(id -u): not covered here"
fi
# nobody must reach the work directory (TMPDIR), the repository and the CLI, nothing else
mkdir -m 1777 "$TMP/deploytmp"
chmod o+x "$TMP"
chmod -R o+rX "$TMP/infra.git"
for mode in user auto; do
	start "$mode" ITL_PULUMI_DEPLOY_USER=nobody TMPDIR="$TMP/deploytmp"
	check "$mode: attestd log names the sandbox with user nobody" grep -q "deployments sandbox: .*user nobody (uid 65534)" "$DATA/attestd.log"
	deploy ok
	check "$mode: the deployment as nobody succeeds" wait_status "$ID" succeeded 40
	fetch_log "$ID"
	say "$(grep -E '^sandbox' "$LOG")"
	check "$mode: the stand-in ran as uid 65534" has "^whoami: uid=65534 "
	check "$mode: it called back into the backend" checkpoint_from_deployment
	check "$mode: it could not read the database, CA key, master key, log or configs" probes_are unreadable
	check "$mode: it could not write outside its work directory" has "^probe write $TMP/escaped: refused"
	check "$mode: ... and nothing was written there" test ! -e "$TMP/escaped"
	check "$mode: it could write in its work directory" has "^probe write work dir: written"
	check "$mode: its work directory was removed" sh -c "[ -z \"\$(ls '$TMP/deploytmp')\" ]"
	stop_attestd
done
chmod o-x "$TMP"

done_testing
