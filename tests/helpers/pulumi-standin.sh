#!/bin/sh
# pulumi-standin.sh - what a server-side deployment runs instead of the
# real `pulumi` CLI (which cannot be installed here): invoked as
#   pulumi <update|preview|refresh|destroy> --non-interactive [--yes] --stack org/project/stack
# in the cloned repoDir, it behaves like the CLI on the wire: checks its
# login (GET /api/user) with PULUMI_ACCESS_TOKEN against PULUMI_BACKEND_URL,
# creates and starts an update, saves a gzip verbatim checkpoint (not for
# previews), completes it, and exits with the code in ./exit-code (0 if
# absent).  ./sleep makes it sleep first (cancel and timeout tests);
# STANDIN_PIDFILE receives its PID, STANDIN_TOKENFILE its token.
# Sandbox probes (t0046): it tries to read each file of STANDIN_PROBE_READ
# and to create STANDIN_PROBE_WRITE, and prints what it could;
# STANDIN_DAEMON=1 leaves a process behind in a session of its own.
op=$1; shift
stack=""
while [ $# -gt 0 ]; do
	case $1 in --stack) stack=$2; shift 2 ;; *) shift ;; esac
done
B=$PULUMI_BACKEND_URL
T=$PULUMI_ACCESS_TOKEN
S=/api/stacks/$stack
[ -n "${STANDIN_PIDFILE:-}" ] && echo $$ > "$STANDIN_PIDFILE"
[ -n "${STANDIN_TOKENFILE:-}" ] && printf '%s' "$T" > "$STANDIN_TOKENFILE"
api() { curl -sS -f -H "Authorization: token $T" -H 'Content-Type: application/json' \
	-H 'Accept: application/vnd.pulumi+9' -H "User-Agent: pulumi-cli/1 (v3.260.0; linux; cmd=$op)" "$@"; }
echo "stand-in pulumi $op --stack $stack in $(basename "$(pwd)")"
echo "GREETING=${GREETING:-}"
echo "whoami: uid=$(id -u) home=$HOME itl-vars=$(env | grep -c '^ITL_')"
for f in ${STANDIN_PROBE_READ:-}; do
	if head -c 1 "$f" >/dev/null 2>&1; then echo "probe read $f: readable"; else echo "probe read $f: unreadable"; fi
done
if [ -n "${STANDIN_PROBE_WRITE:-}" ]; then
	if (echo escaped > "$STANDIN_PROBE_WRITE") 2>/dev/null; then echo "probe write $STANDIN_PROBE_WRITE: written"
	else echo "probe write $STANDIN_PROBE_WRITE: refused"; fi
	if (echo mine > "$HOME/probe") 2>/dev/null; then echo "probe write work dir: written"; else echo "probe write work dir: refused"; fi
fi
[ -f Pulumi.yaml ] || { echo "error: no Pulumi.yaml in $(pwd)"; exit 2; }
api "$B/api/user" >/dev/null || { echo "error: login failed"; exit 3; }
[ -n "${STANDIN_DAEMON:-}" ] && setsid sleep 300 </dev/null >/dev/null 2>&1 &
if [ -f sleep ]; then echo "sleeping $(cat sleep)s"; sleep "$(cat sleep)"; fi
dry=false
[ "$op" = preview ] && dry=true
kind=$op
[ "$op" = preview ] && kind=update
U=$(api -X POST "$B$S/$kind" -d '{"name":"proj","runtime":"yaml","main":"","description":"","options":{"dryRun":'$dry'},"config":{},"metadata":{"message":"server-side deployment","environment":{}}}' | jq -r .updateID) || exit 4
UT=$(api -X POST "$B$S/update/$U" -d '{"tags":{}}' | jq -r .token) || exit 5
if [ $dry = false ]; then
	printf '{"version":3,"untypedDeployment":{"version":3,"deployment":{"manifest":{"time":"2026-01-01T00:00:00Z","magic":"","version":"v3.260.0"},"metadata":{},"resources":[{"urn":"urn:pulumi:%s::proj::pulumi:pulumi:Stack::proj-%s","custom":false,"type":"pulumi:pulumi:Stack","outputs":{"from":"deployment"}}]}},"sequenceNumber":1}' \
		"${stack##*/}" "${stack##*/}" | gzip -c |
		curl -sS -f -X PATCH -H "Authorization: update-token $UT" -H 'Content-Type: application/json' \
			-H 'Content-Encoding: gzip' --data-binary @- "$B$S/update/$U/checkpointverbatim" >/dev/null || exit 6
fi
code=$(cat exit-code 2>/dev/null || echo 0)
status=succeeded
[ "$code" = 0 ] || status=failed
curl -sS -f -X POST -H "Authorization: update-token $UT" -H 'Content-Type: application/json' \
	-d '{"status":"'$status'"}' "$B$S/update/$U/complete" >/dev/null || exit 7
echo "another stack with this token: $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: token $T" "$B${S%/*}/other")"
echo "done: $status"
exit "$code"
