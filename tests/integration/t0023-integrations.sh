#!/bin/sh
# The seeds' integrations shipped in examples/extensions/, run as exec
# hooks against local stand-ins that accept only what the real services
# accept (tests/helpers/standin-httpd.c): Slack and Teams messages for a
# node pending approval, the Kubernetes node label patch on a role change,
# CMDB PUT when the node comes online and PATCH when it is decommissioned.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${STANDIN_HTTPD:?}"

EX="$SRCDIR/examples/extensions"
wait_until() { t=$1; shift; i=0; while ! "$@" && [ $i -lt $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done; "$@"; }
standin() { # standin NAME MODE [TOKEN NODES...]: sets SURL
	n=$1; shift
	"$STANDIN_HTTPD" "$TMP/$n.ready" "$TMP/$n.log" "$@" 2>"$TMP/$n.err" &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$TMP/$n.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	touch "$TMP/$n.log"
	SURL="http://127.0.0.1:$(cat "$TMP/$n.ready")"
}
lines() { jq -c "select($2)" "$TMP/$1.log" | wc -l | tr -d ' '; }
has() { [ "$(lines "$1" "$2")" -ge "${3:-1}" ]; }

standin slack slack; SLACK=$SURL
standin teams teams; TEAMS=$SURL
echo "k8s-token-0123" >"$TMP/k8s.token"
standin k8s k8s k8s-token-0123 int-1 int-2; K8S=$SURL
standin cmdb cmdb; CMDB=$SURL

HOOKS=$(jq -cn --arg ex "$EX" --arg slack "$SLACK/services/T000/B000/XXXX" --arg teams "$TEAMS/webhookb2/abc" \
	--arg k8s "$K8S" --arg tok "$TMP/k8s.token" --arg cmdb "$CMDB/api" '[
	{name: "chat", command: [$ex + "/chat/notify-pending.sh"], events: ["node.registered"],
	 env: {SLACK_WEBHOOK_URL: $slack, TEAMS_WEBHOOK_URL: $teams}},
	{name: "k8s", command: [$ex + "/k8s-labels/k8s-node-label.sh"], events: ["node.role_changed"],
	 env: {K8S_API: $k8s, K8S_TOKEN_FILE: $tok}},
	{name: "cmdb", command: [$ex + "/cmdb/cmdb-sync.sh"], events: ["node.online", "node.decommissioned"],
	 env: {CMDB_BASE: $cmdb}}]')
start_attestd ITL_EXEC_HOOKS="$HOOKS" ITL_EVENT_POLL_MS=50 ITL_EVENT_RETRY_BASE_MS=100 ITL_EVENT_MAX_ATTEMPTS=3

make_ek i1
api POST /api/v1/register "$(node_body ',"hw_product":"PowerEdge <R650> & co","hw_mac":"aa:bb:cc:00:00:01"')"
M1=$(jget .machine_id)
check "Slack gets the pending-approval message, accepted (200 ok)" wait_until 10 has slack '.status == 200 and .method == "POST" and .path == "/services/T000/B000/XXXX"'
check "... its text as the seed writes it (MAC, TPM, product with <, >, & escaped)" \
	has slack '.body.text | (contains("*New node pending approval*") and contains("MAC: `aa:bb:cc:00:00:01`") and contains("TPM: yes") and contains("Product: PowerEdge &lt;R650&gt; &amp; co"))'
check "Teams gets a MessageCard, accepted (200)" wait_until 10 has teams '.status == 200 and .body["@type"] == "MessageCard" and .body.summary == "New node pending approval"'

admin POST "/api/v1/machines/$M1/approve" '{"role":"controlplane","hostname":"int-1"}'
check "Kubernetes: PATCH /api/v1/nodes/int-1 with a bearer token and a merge patch, accepted" \
	wait_until 10 has k8s '.status == 200 and .method == "PATCH" and .path == "/api/v1/nodes/int-1" and .auth == "Bearer k8s-token-0123" and .ctype == "application/merge-patch+json"'
check "... the old role's label removed, the new one set" \
	has k8s '.status == 200 and .body == {"metadata":{"labels":{"node-role.kubernetes.io/worker":null,"node-role.kubernetes.io/control-plane":""}}}'

api POST /api/v1/attest "$(node_body)"
expect 200 "the machine attests (node.online)" '.status == "attested"'
FP=$(sql "SELECT ek_fingerprint FROM machines WHERE machine_id = '$M1'")
check "CMDB: PUT /api/nodes/<fp> with the seed's fields, accepted" \
	wait_until 10 has cmdb ".status == 200 and .method == \"PUT\" and .path == \"/api/nodes/$FP\" and .body.hostname == \"int-1\" and .body.role == \"controlplane\" and .body.status == \"active\" and .body.ek_fingerprint == \"$FP\" and (.body.first_seen | length) > 0"
admin POST "/api/v1/machines/$M1/revoke" '{"reason":"rack decommissioned"}'
check "CMDB: PATCH status decommissioned with the reason, accepted" \
	wait_until 10 has cmdb ".status == 200 and .method == \"PATCH\" and .body == {\"status\":\"decommissioned\",\"reason\":\"rack decommissioned\"}"

# a node the cluster does not know (yet): 404 is retried, then dead-lettered
make_ek i2
api POST /api/v1/register "$(node_body)"; M2=$(jget .machine_id)
admin POST "/api/v1/machines/$M2/approve" '{"role":"worker-infra","hostname":"not-in-cluster"}'
k8s_dead() { test "$(sql "SELECT status || ':' || attempts FROM event_deliveries WHERE consumer = 'exec/*:k8s' AND event_id = (SELECT id FROM outbox_events WHERE machine_id = '$M2' AND event = 'node.role_changed')")" = dead:3; }
check "a role change for a node Kubernetes does not have: 404, retried, dead after 3 attempts" wait_until 15 k8s_dead
check "the stand-ins refused nothing else the examples sent" \
	test "$(lines k8s '.status != 200 and .path != "/api/v1/nodes/not-in-cluster" and .auth != null and .ctype != "application/json"'):$(lines slack '.status != 200'):$(lines teams '.status != 200'):$(lines cmdb '.status != 200')" = 0:0:0:0
check "... while they do refuse what the real services refuse (no token -> 401)" \
	test "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{"metadata":{"labels":{}}}' "$K8S/api/v1/nodes/int-1")" = 401
check "... (a JSON patch body sent as application/json -> 415)" \
	test "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Authorization: Bearer k8s-token-0123' -H 'Content-Type: application/json' -d '{"metadata":{"labels":{}}}' "$K8S/api/v1/nodes/int-1")" = 415
check "... (Slack without text -> 400)" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"username":"x"}' "$SLACK/services/x")" = 400
stop_attestd

done_testing
