#!/bin/sh
# cmdb-sync.sh - an exec hook (docs/exec-hooks.md) keeping a CMDB in sync
# (seed 000, "CMDB / Asset inventory sync"): PUT the node when it first
# comes online, PATCH it to decommissioned when it is revoked.
#
#   ITL_EXEC_HOOKS='[{"name":"cmdb","command":["/usr/local/lib/attestd/cmdb-sync.sh"],
#                     "events":["node.online","node.decommissioned"],
#                     "env":{"CMDB_BASE":"https://cmdb.example.com/api","CMDB_TOKEN_FILE":"/etc/attestd/cmdb.token"}}]'
#
# The body is built with jq from the event on stdin (no string pasting);
# the fingerprint, the only event value in the URL, is checked to be hex.
# HTTP 4xx other than 408/429 gives the event up (exit 100); anything else
# that fails is retried.
set -eu
: "${CMDB_BASE:?CMDB_BASE is not set}"
event=$(cat)
name=$(printf '%s' "$event" | jq -r .event)
fp=$(printf '%s' "$event" | jq -r '.ek_fingerprint // empty')
case $fp in '' | *[!0-9a-f]*) echo "no usable ek_fingerprint" >&2; exit 100 ;; esac
auth=""
if [ -n "${CMDB_TOKEN_FILE:-}" ]; then auth="Authorization: Bearer $(cat "$CMDB_TOKEN_FILE")"; fi

case $name in
node.online)
	method=PUT
	body=$(printf '%s' "$event" | jq -c '{hostname, role, status: "active", first_seen: .first_seen_at, ek_fingerprint}') ;;
node.decommissioned)
	method=PATCH
	body=$(printf '%s' "$event" | jq -c '{status: "decommissioned", reason}') ;;
*) exit 0 ;;
esac
code=$(printf '%s' "$body" | curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" \
	-H 'Content-Type: application/json' ${auth:+-H "$auth"} --data-binary @- "$CMDB_BASE/nodes/$fp") || exit 1
case $code in
2??) exit 0 ;;
408 | 429 | 5??) echo "CMDB answered $code" >&2; exit 1 ;;
*) echo "CMDB refused the node: HTTP $code" >&2; exit 100 ;;
esac
