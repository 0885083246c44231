#!/bin/sh
# Regression tests for behaviour that was right but untested (issue 19,
# item 19): lock drops config tokens (an old token stays dead after
# unlock); a token is bound to the machine's state; an audit row deleted
# from the middle of the log breaks the chain.
. "$SRCDIR/tests/lib/test-lib.sh"

attested_machine() { # attested_machine NAME: sets MID, TOKEN
	make_ek "$1" ec
	admin POST /api/v1/register "$(node_body)"
	MID=$(jget .machine_id)
	admin POST "/api/v1/machines/$MID/approve" "{\"role\":\"worker-app\",\"hostname\":\"$1\"}" >/dev/null
	api POST /api/v1/attest "$(node_body)"
	TOKEN=$(jget .config_token)
}

start_attestd
attested_machine n1
check "attested with a config token" test -n "$TOKEN" -a "$TOKEN" != null
admin POST "/api/v1/machines/$MID/lock" '{"reason":"test"}'
expect 200 "locked" '.status == "locked"'
admin POST "/api/v1/machines/$MID/unlock" '{"reason":"test"}'
expect 200 "unlocked back to attested" '.status == "attested"'
api GET "/api/v1/config/$TOKEN"
expect 404 "the token issued before the lock stays dead after the unlock"
check "lock removed the machine's tokens" test "$(sql "SELECT COUNT(*) FROM config_tokens WHERE machine_id = '$MID'")" = 0

# the token lookup's state binding: a live token, the machine's state changed under it
attested_machine n2
sql "UPDATE machines SET status = 'registered' WHERE machine_id = '$MID'"
api GET "/api/v1/config/$TOKEN"
expect 404 "a token bound to 'attested' is refused once the machine is 'registered'" '.detail == "Config token not found"'
sql "UPDATE machines SET status = 'locked' WHERE machine_id = '$MID'"
api GET "/api/v1/config/$TOKEN"
expect 404 "... or 'locked' (state changed without dropping the token)"
sql "UPDATE machines SET status = 'attested' WHERE machine_id = '$MID'"
api GET "/api/v1/config/$TOKEN"
expect 200 "the same token in the state it was bound to is served (the refusals were the binding)"

# an audit row deleted from the middle of the chain
admin GET /api/v1/audit/verify
expect 200 "the chain verifies" '.valid == true'
N=$(jget .entries)
MIDDLE=$(sql "SELECT id FROM audit_log ORDER BY id LIMIT 1 OFFSET $((N / 2))")
sql "DELETE FROM audit_log WHERE id = $MIDDLE"
admin GET /api/v1/audit/verify
expect 200 "with a row deleted from the middle the chain does not verify" \
	".valid == false and .first_invalid_id > $MIDDLE"
done_testing
