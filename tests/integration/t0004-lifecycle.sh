#!/bin/sh
# The README tour end to end: register, approve, attest, fetch config,
# lock, unlock, revoke with wipe, hardware replacement, audit chain.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek node1 rsa
api POST /api/v1/register "$(node_body ',"hw_mac":"52:54:00:00:00:01"')"
expect 200 "register" '.status == "pending_approval"'
MID=$(jget .machine_id)

api POST /api/v1/attest "$(node_body)"
expect 200 "attest while pending: no config, no promotion" \
	'.status == "pending_approval" and .action == "none" and .config_url == null and .config_token == null'
admin GET "/api/v1/machines/$MID"
expect 200 "still pending after attest" '.status == "pending_approval"'

admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24","reason":"Rack 3 expansion"}'
expect 200 "approve returns MachineDetail" \
	'.status == "registered" and .role == "controlplane" and .hostname == "cp-01" and .assigned_ip == "10.0.0.1/24" and .approved_at != null'
admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01"}'
expect 200 "re-approve while registered (correcting the assignment)" '.status == "registered" and .assigned_ip == null'
admin POST "/api/v1/machines/$MID/approve" '{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24"}'

api POST /api/v1/attest "$(node_body)"
expect 200 "attest after approval: apply-config with a token" \
	'.status == "attested" and .action == "apply-config" and .hostname == "cp-01" and .role == "controlplane" and (.config_token | length) == 43 and .config_url == "http://attest.test/api/v1/config/" + .config_token'
TOKEN=$(jget .config_token)
check "log line: Machine attested" grep -q "INFO attestd.attestation — Machine attested: id=$MID role=controlplane" "$DATA/attestd.log"

api GET "/api/v1/config/$TOKEN"
expect 200 "config fetch by token"
check "config is YAML with the machine patches" sh -c "printf '%s' \"\$1\" | grep -q 'hostname: \"cp-01\"' && printf '%s' \"\$1\" | grep -q 'itl.io/machine-id: \"$MID\"' && printf '%s' \"\$1\" | grep -q 'type: controlplane'" _ "$BODY"
check "config served as application/yaml, not cached" sh -c "printf '%s' \"\$1\" | grep -qi '^Content-Type: application/yaml' && printf '%s' \"\$1\" | grep -qi '^Cache-Control: no-store'" _ "$HEADERS"
check "log line: Config token consumed" grep -q "Config token consumed for machine $MID" "$DATA/attestd.log"
api GET "/api/v1/config/$TOKEN"
expect 200 "re-fetch within the token lifetime"
check "log line: Config re-fetch" grep -q "Config re-fetch for machine $MID (token already consumed)" "$DATA/attestd.log"

# the poll of an attested machine is read-only
a1=$(sql 'SELECT COUNT(*) FROM audit_log'); u1=$(sql "SELECT updated_at FROM machines WHERE machine_id='$MID'")
api POST /api/v1/attest "$(node_body)"
expect 200 "later polls: already_attested, action none" '.status == "already_attested" and .action == "none" and .config_token == null'
api POST /api/v1/attest "$(node_body)"
check "polls append no audit entries and do not rewrite the row" test "$(sql 'SELECT COUNT(*) FROM audit_log'):$(sql "SELECT updated_at FROM machines WHERE machine_id='$MID'")" = "$a1:$u1"

# lock / unlock
admin POST "/api/v1/machines/$MID/lock" '{"reason":"Scheduled maintenance — disk replacement"}'
expect 200 "lock" '.status == "locked" and .locked_at != null and .locked_from == "attested"'
api GET "/api/v1/config/$TOKEN"
expect 404 "lock invalidates the config token" '.detail == "Config token not found"'
api POST /api/v1/attest "$(node_body)"
expect 200 "attest while locked: action lock" '.status == "locked" and .action == "lock"'
check "log line: Locked machine contacted" grep -q "WARNING attestd.attestation — Locked machine contacted: id=$MID" "$DATA/attestd.log"
admin POST "/api/v1/machines/$MID/lock" '{}'
expect 409 "lock twice is 409 naming the state" '.detail | test("state .locked.")'
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app"}'
expect 409 "approve while locked is 409" '.detail | test("locked")'
admin POST "/api/v1/machines/$MID/unlock"
expect 200 "unlock restores the previous state" '.status == "attested" and .locked_at == null'
admin POST "/api/v1/machines/$MID/unlock"
expect 409 "unlock when not locked" ".detail == \"Machine $MID is not locked (status=attested)\""

# revoke with wipe
admin POST "/api/v1/machines/$MID/revoke" '{"wipe":true,"reason":"Security incident — node suspected compromised"}'
expect 200 "revoke with wipe" '.status == "revoked" and .wipe_pending == true and .revoked_at != null'
admin POST "/api/v1/machines/$MID/revoke" '{"wipe":false}'
expect 409 "revoke twice is 409" ".detail == \"Machine $MID is already revoked\""
admin POST "/api/v1/machines/$MID/lock" '{}'
expect 409 "lock a revoked machine is 409" '.detail | test("already revoked")'
admin POST "/api/v1/machines/$MID/revoke" '{"wipe":"yes"}'
expect 422 "revoke with a wrong type" '.detail == "wipe: expected a boolean"'
api POST /api/v1/attest "$(node_body)"
expect 200 "next contact: action wipe" '.status == "revoked" and .action == "wipe"'
check "log line: Revoked machine contacted (wipe)" grep -q "Revoked machine contacted: id=$MID action=wipe" "$DATA/attestd.log"
api POST /api/v1/attest "$(node_body)"
expect 200 "wipe is delivered once, then action none" '.status == "revoked" and .action == "none"'
admin GET "/api/v1/machines/$MID"
expect 200 "wipe_pending cleared after delivery" '.wipe_pending == false'
api POST /api/v1/register "$(node_body)"
expect 409 "a revoked TPM cannot re-register into its old record" '.detail | test("revoked")'

# hardware replacement: new TPM, same hostname and role
make_ek node2 ec384
api POST /api/v1/register "$(node_body)"
expect 200 "replacement registers as a new machine" ".machine_id != \"$MID\" and .status == \"pending_approval\""
NEW=$(jget .machine_id)
admin POST "/api/v1/machines/$NEW/approve" '{"role":"controlplane","hostname":"cp-01","assigned_ip":"10.0.0.1/24"}'
expect 200 "replacement approved with the old hostname and IP" '.hostname == "cp-01"'
api POST /api/v1/attest "$(node_body)"
expect 200 "replacement attests" '.action == "apply-config"'
api GET "/api/v1/config/$(jget .config_token)"
expect 200 "replacement fetches its config"
admin GET "/api/v1/audit?machine_id=$MID&per_page=200"
expect 200 "old machine's chain of custody" \
	'[.[].action] | reverse == ["register","approve","approve","approve","attest","config_fetch","config_fetch","lock","unlock","revoke","wipe_delivered"]'
admin GET "/api/v1/audit?machine_id=$NEW"
expect 200 "new machine's chain of custody" '[.[].action] | reverse == ["register","approve","attest","config_fetch"]'
admin GET "/api/v1/audit?action=revoke"
expect 200 "audit filter by action" 'length == 1 and .[0].operator_cn == "SYSTEM" and (.[0].detail | test("wipe scheduled"))'

# a second machine cannot take a live machine's hostname
make_ek node3 ec
api POST /api/v1/register "$(node_body)"
N3=$(jget .machine_id)
admin POST "/api/v1/machines/$N3/approve" '{"role":"worker-app","hostname":"cp-01"}'
expect 409 "hostname already assigned to a live machine" '.detail | test("hostname .cp-01. is already assigned")'
admin POST "/api/v1/machines/$N3/approve" '{"role":"worker-app","hostname":"w-3","assigned_ip":"10.0.0.1"}'
expect 409 "IP already assigned to a live machine (any prefix)" '.detail | test("assigned_ip .10.0.0.1/32. is already assigned to machine")'
admin POST "/api/v1/machines/$N3/approve" '{"role":"admin"}'
expect 422 "approve with an unknown role" '.detail | startswith("role:")'
admin POST "/api/v1/machines/$N3/approve" '{"hostname":"w-3"}'
expect 422 "approve without role" '.detail == "role: field required"'
admin POST "/api/v1/machines/$N3/approve" '{"role":"worker-app","hostname":"bad_host!"}'
expect 422 "approve with a bad hostname" '.detail | startswith("hostname:")'
admin POST "/api/v1/machines/$N3/approve" '{"role":"worker-app","assigned_ip":"10.0.0.300/24"}'
expect 422 "approve with a bad IP" '.detail | startswith("assigned_ip:")'
admin POST "/api/v1/machines/no-such-machine/approve" '{"role":"worker-app"}'
expect 404 "approve an unknown machine" '.detail == "Machine no-such-machine not found"'
admin GET "/api/v1/machines/no-such-machine"
expect 404 "get an unknown machine"
admin POST "/api/v1/machines/$N3/unlock"
expect 409 "unlock a pending machine" '.detail | test("not locked")'

# listing and filters
admin GET "/api/v1/machines"
expect 200 "list is a plain array" 'type == "array" and length == 3'
admin GET "/api/v1/machines?status=revoked"
expect 200 "filter by status" "length == 1 and .[0].machine_id == \"$MID\""
admin GET "/api/v1/machines?role=controlplane&status=attested"
expect 200 "filter by role and status" "length == 1 and .[0].machine_id == \"$NEW\""
admin GET "/api/v1/machines?hostname=cp-01"
expect 200 "filter by hostname" 'length == 2'
admin GET "/api/v1/machines?status=bogus"
expect 422 "unknown status filter" '.detail | startswith("status:")'
admin GET "/api/v1/machines?page=2&per_page=2"
expect 200 "pagination" 'length == 1'
admin GET "/api/v1/machines?per_page=0"
expect 422 "per_page out of range" '.detail | startswith("per_page:")'

admin GET /api/v1/audit/verify
expect 200 "audit chain verifies" '.valid == true and .entries > 15 and (.root_hash | length) == 64 and .first_invalid_id == null and .error == null'
ROOT=$(jget .root_hash)
admin GET "/api/v1/audit?per_page=1"
expect 200 "newest audit entry is the root" ".[0].entry_hash == \"$ROOT\""

# a client recomputes the chain itself (reference hash recipe)
admin GET "/api/v1/audit?per_page=200"
printf '%s' "$BODY" > "$TMP/audit.json"
ok=1; prev=0000000000000000000000000000000000000000000000000000000000000000
n=$(jq length "$TMP/audit.json"); i=$((n - 1))
while [ $i -ge 0 ]; do
	e=$(jq -c ".[$i]" "$TMP/audit.json")
	h=$(printf '%s' "$e" | jq -cjSa '{action,detail,machine_id,new_state,operator_cn,prev_hash,prev_state,timestamp}' | sha256sum | cut -d' ' -f1)
	[ "$(printf '%s' "$e" | jq -r .prev_hash)" = "$prev" ] || ok=0
	[ "$(printf '%s' "$e" | jq -r .entry_hash)" = "$h" ] || ok=0
	prev=$h; i=$((i - 1))
done
check "every entry_hash recomputes on the client (sha256 of sorted compact JSON)" test "$ok" = 1

# tampering is detected
sql "UPDATE audit_log SET operator_cn = 'mallory' WHERE id = 3"
admin GET /api/v1/audit/verify
expect 200 "tampered entry detected" '.valid == false and .first_invalid_id == 3 and .error == "entry_hash mismatch at entry id=3"'
done_testing
