#!/bin/sh
# Dual-control approval: votes in the database, 202 until the quorum of
# distinct operators, 409 for a repeat vote, expiry, conflicting votes.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES=controlplane ITL_DUAL_CONTROL_QUORUM=2
BG="X-Break-Glass: glass"
make_ek cp1 ec
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)

admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24"}'
expect 202 "first vote: 202 pending_second_approval" \
	".machine_id == \"$MID\" and .status == \"pending_second_approval\" and .approvals_received == 1 and .approvals_required == 2 and (.expires_at | length) > 0 and (.message | test(\"operator .SYSTEM.\"))"
admin GET "/api/v1/machines/$MID"
expect 200 "the machine is still pending after one vote" '.status == "pending_approval"'
admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24"}'
expect 409 "the same operator voting again: 409" '.detail | test("already voted")'
api POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-99"}' -H "$BG"
expect 409 "a vote for another hostname: 409 naming the pending values" '.detail | test("hostname=cp-01")'
api POST "/api/v1/machines/$MID/approve" '{"role":"controlplane"}' -H "$BG"
expect 200 "second operator completes the quorum; hostname and IP inherited" \
	'.status == "registered" and .role == "controlplane" and .hostname == "cp-01" and .assigned_ip == "10.0.0.1/24"'
admin GET "/api/v1/machines/$MID/approvals"
expect 200 "approvals: both votes, newest first, consumed" \
	'length == 2 and .[0].operator_cn == "BREAK_GLASS" and .[1].operator_cn == "SYSTEM" and all(.[]; .consumed == true)'
admin GET "/api/v1/audit?machine_id=$MID"
expect 200 "audit: approve_vote, approve_vote, approve" \
	'([.[].action] | reverse) == ["register","approve_vote","approve_vote","approve"] and (.[1].detail | test("quorum reached \\(with SYSTEM\\)"))'
admin GET "/api/v1/machines/nope/approvals"
expect 404 "approvals of an unknown machine"

# roles outside the list need one approval
make_ek w1 ec
api POST /api/v1/register "$(node_body)"
admin POST "/api/v1/machines/$(jget .machine_id)/approve" '{"role":"worker-app"}'
expect 200 "worker-app is not under dual control"

# an expired vote does not count
make_ek cp2 ec
api POST /api/v1/register "$(node_body)"
M2=$(jget .machine_id)
admin POST "/api/v1/machines/$M2/approve" '{"role":"controlplane","hostname":"cp-02"}'
expect 202 "first vote on a second machine"
sql "UPDATE approval_votes SET expires_at = 1 WHERE machine_id = '$M2'"
api POST "/api/v1/machines/$M2/approve" '{"role":"controlplane","hostname":"cp-02"}' -H "$BG"
expect 202 "after the first vote expired, the next vote starts a new window" '.approvals_received == 1'
admin POST "/api/v1/machines/$M2/approve" '{"role":"controlplane","hostname":"cp-02"}'
expect 200 "and a second operator completes it" '.status == "registered"'
stop_attestd

# quorum 3 cannot be met by two identities
start_attestd BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES='["controlplane","worker-infra"]' ITL_DUAL_CONTROL_QUORUM=3
make_ek q3 ec
api POST /api/v1/register "$(node_body)"
M3=$(jget .machine_id)
admin POST "/api/v1/machines/$M3/approve" '{"role":"worker-infra"}'
expect 202 "quorum 3: first vote" '.approvals_received == 1 and .approvals_required == 3'
api POST "/api/v1/machines/$M3/approve" '{"role":"worker-infra"}' -H "$BG"
expect 202 "quorum 3: second distinct operator still pending" '.approvals_received == 2 and .approvals_required == 3'
admin GET "/api/v1/machines/$M3"
expect 200 "machine still pending" '.status == "pending_approval"'
done_testing
