#!/bin/sh
# k8s-node-label.sh - an exec hook (docs/exec-hooks.md) keeping the
# node-role.kubernetes.io/ label of a Kubernetes node in line with the
# machine's role (seed 000, "Kubernetes label sync"): a JSON merge patch
# of /api/v1/nodes/<hostname> with a bearer token, the old role's label
# removed (null), the new one set.
#
#   ITL_EXEC_HOOKS='[{"name":"k8s-labels","command":["/usr/local/lib/attestd/k8s-node-label.sh"],
#                     "events":["node.role_changed"],
#                     "env":{"K8S_API":"https://10.0.0.1:6443","K8S_TOKEN_FILE":"/etc/attestd/k8s.token",
#                            "K8S_CA_FILE":"/etc/attestd/k8s-ca.crt"}}]'
#
# The token needs RBAC `patch` on `nodes`.  The hostname must be a DNS-1123
# subdomain (else the event is given up: exit 100); 404 (no such node yet)
# is retried, in case the node joins the cluster later.
set -eu
: "${K8S_API:?K8S_API is not set}"
TOKEN_FILE=${K8S_TOKEN_FILE:-/var/run/secrets/kubernetes.io/serviceaccount/token}
event=$(cat)
[ "$(printf '%s' "$event" | jq -r .event)" = node.role_changed ] || exit 0
node=$(printf '%s' "$event" | jq -r '.hostname // empty')
if ! printf '%s' "$node" | grep -Eqx '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*' || [ ${#node} -gt 253 ]; then
	echo "hostname is not a Kubernetes node name" >&2; exit 100
fi
patch=$(printf '%s' "$event" | jq -c '
	def rolelabel: {"controlplane": "control-plane", "worker-infra": "worker", "worker-app": "worker"}[.];
	(.previous_role | rolelabel) as $old | (.new_role | rolelabel) as $new
	| if $new == null then empty else
	  {metadata: {labels: ((if $old != null and $old != $new then {("node-role.kubernetes.io/" + $old): null} else {} end)
	                       + {("node-role.kubernetes.io/" + $new): ""})}} end')
[ -n "$patch" ] || exit 0
code=$(printf '%s' "$patch" | curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X PATCH \
	${K8S_CA_FILE:+--cacert "$K8S_CA_FILE"} -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
	-H 'Content-Type: application/merge-patch+json' --data-binary @- "$K8S_API/api/v1/nodes/$node") || exit 1
case $code in
2??) exit 0 ;;
404 | 408 | 429 | 5??) echo "Kubernetes API answered $code" >&2; exit 1 ;;
*) echo "Kubernetes API refused the patch: HTTP $code" >&2; exit 100 ;;
esac
