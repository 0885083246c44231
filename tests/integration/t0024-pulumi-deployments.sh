#!/bin/sh
# Server-side Pulumi deployments (docs/pulumi-backend.md): queued (202),
# run by the worker from a local bare git repository with a stand-in
# `pulumi` (tests/helpers/pulumi-standin.sh) that calls back into the
# backend with the deployment's token; status, exit code and log; the
# token limited to its stack and to the run; cancel kills the process
# group; timeouts; refused repository URLs; a restart fails the running
# deployment and runs the queued ones.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/glewlwyd.sh"

TOK=pulumi-token-$$-0123456789
auth() { printf 'Authorization: token %s' "$TOK"; }
S=/api/stacks/acme/proj/dev

# the repository: ok/ exits 0, fail/ exits 3, slow/ sleeps
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q --bare -b main "$TMP/infra.git"
git init -q -b main "$TMP/work"
for d in ok fail slow; do mkdir -p "$TMP/work/$d"; printf 'name: proj\nruntime: yaml\n' > "$TMP/work/$d/Pulumi.yaml"; done
echo 3 > "$TMP/work/fail/exit-code"
echo 60 > "$TMP/work/slow/sleep"
git -C "$TMP/work" add -A && git -C "$TMP/work" commit -qm infra && git -C "$TMP/work" push -q "$TMP/infra.git" main
REPO="file://$TMP/infra.git"

PORT=$(free_port)
LISTEN=127.0.0.1:$PORT
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
start() { start_attestd "$@"; DB="$TMP/shared.db"; }	# sql() reads the shared database
PENV="ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PULUMI_CLI=$SRCDIR/tests/helpers/pulumi-standin.sh
 ITL_PULUMI_DEPLOY_ALLOW_FILE=true ITL_PULUMI_DEPLOY_BACKEND_URL=http://$LISTEN ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS=20
 ITL_PULUMI_DEPLOY_SANDBOX=none"	# unconfined, as before: t0046 covers the sandboxes
# shellcheck disable=SC2086
start $PENV
for st in dev other; do
	api POST /api/stacks/acme/proj "{\"stackName\":\"$st\"}" -H "$(auth)"
	expect 200 "stack $st created"
done

deploy() { # deploy DIR [extra env json] -> ID
	api POST "$S/deployments" "{\"operation\":\"update\",\"source\":{\"repoURL\":\"$REPO\",\"branch\":\"main\",\"repoDir\":\"$1\"},\"environmentVariables\":{\"GREETING\":\"hello\"${2:-}}}" -H "$(auth)"
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

deploy ok ",\"STANDIN_TOKENFILE\":\"$TMP/token\""
expect 202 "POST deployments: 202 queued" '.status == "queued" and (.id | length) == 36'
OK=$ID
check "it runs and succeeds" wait_status "$OK" succeeded 30
expect 200 "GET deployment: exit code 0, the log, who asked" \
	'.exitCode == 0 and .operation == "update" and .source.repoDir == "ok" and .requestedBy == "pulumi" and .finished >= .started and (.log | contains("GREETING=hello")) and (.log | contains("done: succeeded")) and (.log | contains("git clone --depth 1 --branch main")) and (.log | contains("sandbox: none"))'
log_has() { printf '%s' "$BODY" | jq -r .log | grep -q "$1"; }
check "its token was refused on another stack (the stand-in saw 401)" log_has 'another stack with this token: 401'
api GET "$S/export" "" -H "$(auth)"
expect 200 "the stand-in's checkpoint is the stack's state" '.deployment.resources[0].outputs.from == "deployment"'
api GET "$S/updates" "" -H "$(auth)"
expect 200 "its update is in the history" '.updates[0].message == "server-side deployment" and .updates[0].result == "succeeded"'
api GET /api/user "" -H "Authorization: token $(cat "$TMP/token")"
expect 401 "the deployment's token dies with it" '.code == 401'

deploy fail
FAIL=$ID
check "a failing program: failed" wait_status "$FAIL" failed 30
expect 200 "its exit code is kept" '.exitCode == 3 and .reason == "pulumi exited with an error"'

deploy slow ",\"STANDIN_PIDFILE\":\"$TMP/slow.pid\""
SLOW=$ID
check "the slow one runs" wait_status "$SLOW" running 30
i=0; while [ ! -s "$TMP/slow.pid" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
api DELETE "$S/deployments/$SLOW/cancel" "" -H "$(auth)"
expect 204 "DELETE .../cancel: 204"
check "it ends cancelled" wait_status "$SLOW" cancelled 15
check "its process group is gone" sh -c "! kill -0 $(cat "$TMP/slow.pid") 2>/dev/null"
api DELETE "$S/deployments/$SLOW/cancel" "" -H "$(auth)"
expect 409 "cancelling a finished deployment: 409" '.code == 409'
api DELETE "$S/deployments/00000000-0000-4000-8000-000000000000/cancel" "" -H "$(auth)"
expect 404 "cancelling an unknown deployment: 404"

rm -f "$TMP/slow.pid"
deploy slow
check "a deployment over ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS fails" wait_status "$ID" failed 40
expect 200 "... with the reason" '.reason | startswith("timed out")'

deploy missing-dir
check "a repoDir that does not exist fails" wait_status "$ID" failed 30

api GET "$S/deployments" "" -H "$(auth)"
expect 200 "GET deployments lists them, newest first, without logs" '(.deployments | length) == 5 and all(.deployments[]; has("log") | not)'

refuse() { # DESC BODY
	api POST "$S/deployments" "$2" -H "$(auth)"
	expect 400 "refused: $1" '.code == 400'
}
src() { printf '{"operation":"update","source":{"repoURL":"%s","branch":"main","repoDir":"%s"}%s}' "$1" "${2:-ok}" "${3:-}"; }
refuse "ssh URL" "$(src "ssh://git@example.com/x.git")"
refuse "scp-style URL" "$(src "git@example.com:x.git")"
refuse "git:// URL" "$(src "git://example.com/x.git")"
refuse "http:// URL" "$(src "http://example.com/x.git")"
refuse "credentials in the URL" "$(src "https://user:pw@example.com/x.git")"
refuse "repoDir leaving the repository" "$(src "$REPO" "../etc")"
refuse "an absolute repoDir" "$(src "$REPO" "/etc")"
refuse "PULUMI_ACCESS_TOKEN in the environment" "$(src "$REPO" ok ',"environmentVariables":{"PULUMI_ACCESS_TOKEN":"x"}')"
refuse "LD_PRELOAD in the environment" "$(src "$REPO" ok ',"environmentVariables":{"LD_PRELOAD":"/x.so"}')"
refuse "any LD_ name in the environment (LD_AUDIT)" "$(src "$REPO" ok ',"environmentVariables":{"LD_AUDIT":"/x.so"}')"
refuse "an unknown operation" '{"operation":"rm","source":{"repoURL":"https://example.com/x.git"}}'
refuse "a branch starting with -" "$(printf '{"operation":"update","source":{"repoURL":"%s","branch":"--upload-pack=x"}}' "$REPO")"
api POST "$S/deployments" "$(src "$REPO")"
expect 401 "queueing needs the token" '.code == 401'

# a restart: the running one fails, the queued one runs afterwards
deploy slow
RUN=$ID
check "before the restart: one running" wait_status "$RUN" running 30
deploy ok
QUEUED=$ID
check "... and one queued behind it" test "$(sql "SELECT status FROM extension_pulumi_state_deployments WHERE id = '$QUEUED'")" = queued
stop_attestd
check "stopping attestd failed the running deployment" \
	test "$(sql "SELECT status || ': ' || reason FROM extension_pulumi_state_deployments WHERE id = '$RUN'")" = "failed: attestd stopped while it ran"
# shellcheck disable=SC2086
start $PENV
check "after the restart the queued one runs" wait_status "$QUEUED" succeeded 30
check "audit: queued, cancelled and finished deployments" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'pulumi.deployment.%'")" -ge 14
stop_attestd

# without ITL_PULUMI_DEPLOY_ALLOW_FILE, file:// is refused
# shellcheck disable=SC2086
LISTEN="" start_attestd ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PULUMI_CLI=$SRCDIR/tests/helpers/pulumi-standin.sh
api POST "$S/deployments" "$(src "$REPO")" -H "$(auth)"
expect 400 "file:// without ITL_PULUMI_DEPLOY_ALLOW_FILE: 400" '.message | contains("ITL_PULUMI_DEPLOY_ALLOW_FILE")'
stop_attestd

# without a pulumi CLI the replica runs no deployments: queueing is 503
# shellcheck disable=SC2086
LISTEN="" start_attestd ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PULUMI_CLI=/nonexistent/pulumi
api POST "$S/deployments" "$(src "https://example.com/x.git")" -H "$(auth)"
expect 503 "no pulumi CLI installed: 503 with code" '.code == 503 and (.message | contains("ITL_PULUMI_CLI"))'
check "log: deployments are off on this replica" grep -q "server-side deployments are off here" "$DATA/attestd.log"
stop_attestd

done_testing
