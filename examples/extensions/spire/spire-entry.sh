#!/bin/sh
# spire-entry.sh - an exec hook (docs/exec-hooks.md): a SPIRE registration
# entry for every provisioned node, deleted when the node is decommissioned
# (seed 000, "SPIFFE / SPIRE — Automatic workload identity").
#
#   ITL_EXEC_HOOKS='[{"name":"spire","command":["/usr/local/lib/attestd/spire-entry.sh"],
#                     "events":["node.provisioned","node.decommissioned"]}]'
#
# Environment (set for attestd): SPIRE_TRUST_DOMAIN (default itlusions.com),
# SPIRE_SERVER (default spire-server), SPIRE_SOCKET (optional -socketPath).
# The event arrives on stdin; its fields are passed to spire-server as
# separate arguments (never through a shell) and checked first: a
# fingerprint that is not hex, or a trust domain that is not a name, is
# refused for good (exit 100), a failing spire-server is retried (exit 1).
set -eu
TD=${SPIRE_TRUST_DOMAIN:-itlusions.com}
SERVER=${SPIRE_SERVER:-spire-server}
event=$(cat)
name=$(printf '%s' "$event" | jq -r '.event')
fp=$(printf '%s' "$event" | jq -r '.ek_fingerprint // empty')
case $fp in
'' | *[!0-9a-f]*) echo "no usable ek_fingerprint in event $(printf '%s' "$event" | jq -r .id)" >&2; exit 100 ;;
esac
case $TD in
'' | *[!a-z0-9.-]*) echo "SPIRE_TRUST_DOMAIN is not a trust domain name" >&2; exit 100 ;;
esac
short=$(printf '%.16s' "$fp")
spiffe_id="spiffe://$TD/nodes/$short"
set -- "$SERVER" entry
sock() { if [ -n "${SPIRE_SOCKET:-}" ]; then printf '%s\n' -socketPath "$SPIRE_SOCKET"; fi; }

case $name in
node.provisioned)
	# idempotent: at-least-once delivery may bring the event twice
	existing=$("$SERVER" entry show $(sock) -spiffeID "$spiffe_id" -output json | jq -r '.entries[]?.id')
	if [ -n "$existing" ]; then exit 0; fi
	exec "$SERVER" entry create $(sock) \
		-spiffeID "$spiffe_id" \
		-parentID "spiffe://$TD/spire/agent/tpm/$short" \
		-selector "tpm:ek_fingerprint:$fp"
	;;
node.decommissioned)
	# `entry delete` takes entry IDs only: look them up by SPIFFE ID
	for id in $("$SERVER" entry show $(sock) -spiffeID "$spiffe_id" -output json | jq -r '.entries[]?.id'); do
		case $id in *[!A-Za-z0-9-]*) echo "unexpected entry id" >&2; exit 1 ;; esac
		"$SERVER" entry delete $(sock) -entryID "$id"
	done
	;;
*) ;;	# not ours
esac
