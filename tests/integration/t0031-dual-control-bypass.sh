#!/bin/sh
# Dual control cannot be bypassed (issue 19, hole 1): a registration with
# the registration token or an operator's bearer, and an import, of a role
# in ITL_DUAL_CONTROL_ROLES land in pending_approval; the machine gets no
# config until the quorum of distinct operators approved it.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES=controlplane ITL_DUAL_CONTROL_QUORUM=2 \
	ITL_REGISTRATION_TOKEN=reg-token-0123456789
BG="X-Break-Glass: glass"

make_ek tok ec
api POST /api/v1/register "$(node_body ',"desired_role":"controlplane"')" -H "X-Registration-Token: reg-token-0123456789"
expect 200 "register with the registration token for a dual-control role: pending_approval" \
	'.status == "pending_approval" and .role == "controlplane" and (.message | test("dual control"))'
M1=$(jget .machine_id)
api POST /api/v1/attest "$(node_body)"
expect 200 "its attest gets no config" '.status == "pending_approval" and .config_url == null and .action == "none"'
check "no config token was issued" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE machine_id = '$M1'")" = 0
admin GET "/api/v1/machines/$M1"
expect 200 "the machine is pending, with the requested role" '.status == "pending_approval" and .role == "controlplane"'

make_ek bearer ec
admin POST /api/v1/register "$(node_body ',"desired_role":"controlplane"')"
expect 200 "register with an operator bearer for a dual-control role: pending_approval" '.status == "pending_approval"'
M2=$(jget .machine_id)
admin GET "/api/v1/audit?machine_id=$M2"
expect 200 "the audit entry says the role awaits the quorum" '.[0].action == "register" and (.[0].detail | test("dual control"))'
admin POST "/api/v1/machines/$M2/approve" '{"role":"controlplane"}'
expect 202 "the registering operator's approval is only the first vote" '.approvals_received == 1'
api POST "/api/v1/machines/$M2/approve" '{"role":"controlplane"}' -H "$BG"
expect 200 "a second operator completes the quorum" '.status == "registered" and .role == "controlplane"'

make_ek worker ec
api POST /api/v1/register "$(node_body ',"desired_role":"worker-app"')" -H "X-Registration-Token: reg-token-0123456789"
expect 200 "the registration token still pre-approves a role outside dual control" '.status == "registered"'

make_ek imp ec
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\",\"role\":\"controlplane\"}"
expect 200 "import of a dual-control role: pending_approval" '.status == "pending_approval" and .role == "controlplane"'
M3=$(jget .machine_id)
api POST /api/v1/attest "$(node_body)"
expect 200 "the imported machine gets no config" '.status == "pending_approval" and .config_url == null'
admin GET "/api/v1/audit?machine_id=$M3"
expect 200 "import audited with the pending state" '.[0].action == "import" and .[0].new_state == "pending_approval"'
admin POST "/api/v1/machines/$M3/approve" '{"role":"controlplane"}'
expect 202 "the imported machine needs the quorum" '.approvals_received == 1'

make_ek impw ec
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"ek_cert_pem\":\"$EK_B64\",\"role\":\"worker-infra\"}"
expect 200 "import of a role outside dual control: registered" '.status == "registered"'
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$(printf 'ab%.0s' $(seq 48))\"}"
expect 200 "import without role or EK material (worker-app): registered" '.status == "registered"'
done_testing
