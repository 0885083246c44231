#!/bin/sh
# Unauthenticated writes are bounded (issue 19, hole 5): a re-registration
# that changes nothing writes nothing; an approved machine's hardware
# details change only by an operator; a per-source budget of writes,
# stored in the database so replicas share it; ITL_MAX_PENDING.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd ITL_REGISTRATION_TOKEN=reg-token-0123456789
make_ek a ec
api POST /api/v1/register "$(node_body ',"hw_serial":"S1","hw_uuid":"u-1"')"
expect 200 "first registration" '.status == "pending_approval"'
MID=$(jget .machine_id)
before=$(counts); upd=$(sql "SELECT updated_at FROM machines WHERE machine_id = '$MID'")
for i in 1 2 3 4 5; do api POST /api/v1/register "$(node_body ',"hw_serial":"S1","hw_uuid":"u-1"')"; done
expect 200 "re-registering with the same details answers as before" '.status == "pending_approval"'
api POST /api/v1/register "$(node_body)"
check "five unchanged re-registrations (and one without details) wrote no audit row" test "$(counts)" = "$before"
check "... and did not touch the row" test "$(sql "SELECT updated_at FROM machines WHERE machine_id = '$MID'")" = "$upd"
api POST /api/v1/self-register "$(node_body ',"hw_serial":"S1"')"
check "an unchanged self-registration writes nothing either" test "$(counts)" = "$before"
api POST /api/v1/register "$(node_body ',"hw_serial":"S2"')"
expect 200 "a pending machine's details may change"
check "the change is written and audited, naming the fields" \
	test "$(sql "SELECT hw_serial FROM machines WHERE machine_id = '$MID'"):$(sql "SELECT detail FROM audit_log ORDER BY id DESC LIMIT 1")" = "S2:re-registration of a known EK; hardware details changed: hw_serial"

admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app"}'
expect 200 "approved"
before=$(counts)
api POST /api/v1/register "$(node_body ',"hw_serial":"EVIL","hw_product":"EVIL"')"
expect 200 "an unauthenticated re-registration of an approved machine with other details: answered" \
	'.status == "registered" and (.message | test("NOT changed"))'
check "... but nothing changed and nothing was written" \
	test "$(sql "SELECT hw_serial || ':' || hw_product FROM machines WHERE machine_id = '$MID'"):$(counts)" = "S2:unknown:$before"
api POST /api/v1/register "$(node_body ',"hw_serial":"EVIL"')" -H "X-Registration-Token: reg-token-0123456789"
check "the registration token is not an operator: unchanged" test "$(sql "SELECT hw_serial FROM machines WHERE machine_id = '$MID'")" = S2
admin POST /api/v1/register "$(node_body ',"hw_serial":"S3"')"
expect 200 "an operator's re-registration changes them"
check "... written and audited" test "$(sql "SELECT hw_serial FROM machines WHERE machine_id = '$MID'"):$(sql "SELECT operator_cn FROM audit_log ORDER BY id DESC LIMIT 1")" = "S3:SYSTEM"
stop_attestd

# the per-source budget, shared by two replicas through the database
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL
else SHARED_DB_URL="sqlite:///$TMP/shared.db"; fi
LIM="ITL_UNAUTH_WRITE_LIMIT=4 ITL_UNAUTH_WRITE_WINDOW_SECONDS=3600"
start_attestd $LIM; R1=$BASE; P1=$ATTESTD_PID
start_attestd $LIM; R2=$BASE
DB=$TMP/shared.db
for i in 1 2; do make_ek "r1$i" ec; BASE=$R1 api POST /api/v1/register "$(node_body)"; expect 200 "replica 1: new machine $i"; done
for i in 1 2; do make_ek "r2$i" ec; BASE=$R2 api POST /api/v1/register "$(node_body)"; expect 200 "replica 2: new machine $i"; done
make_ek over ec
before=$(counts)
BASE=$R1 api POST /api/v1/register "$(node_body)"
expect 429 "the fifth unauthenticated write from this source is refused (the replicas share the budget)" \
	'.detail | test("Too many unauthenticated writes from 127.0.0.1: the limit is 4 per 3600 s")'
BASE=$R2 api POST /api/v1/attest "$(node_body)"
expect 429 "attest of an unknown EK is such a write too"
BASE=$R2 api GET /api/v1/attest/challenge
NID=$(jget .nonce_id)
make_ek chal ec
BASE=$R2 api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\"")"
expect 429 "so is recording a challenge's use"
check "refused writes wrote nothing" test "$(counts)" = "$before"
EK_B64=$(base64 -w0 "$TMP/r11.pem")	# the first machine again
EK_FP=$(openssl x509 -in "$TMP/r11.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
BASE=$R1 api POST /api/v1/register "$(node_body)"
expect 200 "an unchanged re-registration needs no budget"
check "the counter lives in the database" test "$(sql "SELECT hits FROM rate_limits WHERE source = '127.0.0.1'")" = 4
make_ek op ec
BASE=$R1 admin POST /api/v1/register "$(node_body)"
expect 200 "operators are not limited" '.status == "registered"'
stop_attestd
ATTESTD_PID=$P1; stop_attestd
SHARED_DB_URL=""

# ITL_MAX_PENDING
start_attestd ITL_MAX_PENDING=2
for i in 1 2; do make_ek "p$i" ec; api POST /api/v1/register "$(node_body)"; expect 200 "pending machine $i"; done
make_ek p3 ec
api POST /api/v1/register "$(node_body)"
expect 429 "a third pending machine is refused" '.detail | test("2 machines are awaiting approval \\(ITL_MAX_PENDING\\)")'
api POST /api/v1/self-register "$(node_body)"
expect 429 "self-register too"
api POST /api/v1/attest "$(node_body)"
expect 429 "and attest of an unknown EK"
check "nothing was created" test "$(sql 'SELECT COUNT(*) FROM machines')" = 2
admin POST /api/v1/register "$(node_body)"
expect 200 "an operator still registers (pre-approved)" '.status == "registered"'
done_testing
