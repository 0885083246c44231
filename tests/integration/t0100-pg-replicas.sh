#!/bin/sh
# Scale-out on PostgreSQL: three replicas on one database, driven in
# parallel; concurrent migrations; a database outage mid-load.
. "$SRCDIR/tests/lib/test-lib.sh"
[ "$ATTEST_DB" = postgresql ] || { echo "1..0 # SKIP PostgreSQL only"; exit 0; }

# concurrent migrate of one fresh database: applied exactly once
new_db
for i in 1 2 3 4; do ITL_DB_URL="$DB_URL" "$ATTESTD" migrate > "$TMP/mig.$i" 2>&1 & done
wait
check "four concurrent migrates: the schema is applied exactly once" test "$(cat "$TMP"/mig.* | grep -c '([1-9][0-9]* migration(s) applied)')" = 1
check "four concurrent migrates: all succeed at the same version" test "$(cat "$TMP"/mig.* | grep '^schema version' | cut -d' ' -f3 | sort -u | wc -l):$(cat "$TMP"/mig.* | grep -c '^schema version')" = 1:4

# three replicas, one database
new_db
SHARED_DB_URL=$DB_URL
DC="BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES=controlplane"
start_attestd $DC; R1=$BASE; P1=$ATTESTD_PID; D1=$DATA
start_attestd $DC; R2=$BASE; P2=$ATTESTD_PID
start_attestd $DC; R3=$BASE; P3=$ATTESTD_PID
REPLICAS="$R1 $R2 $R3"

# parallel: POST body-file to each replica twice; collects status codes in $TMP/par.N
parallel() { # parallel METHOD PATH BODYFILE [curl args]
	m=$1; p=$2; f=$3; shift 3
	rm -f "$TMP"/par.*; cp=""; n=0
	for r in $REPLICAS $REPLICAS; do
		n=$((n + 1))
		curl -s -o "$TMP/par.$n.body" -w '%{http_code}\n' -X "$m" -H 'Content-Type: application/json' \
			--data-binary @"$f" "$@" "$r$p" > "$TMP/par.$n" &
		cp="$cp $!"
	done
	wait $cp
}
count() { cat "$TMP"/par.[0-9] 2>/dev/null | grep -c "^$1$"; }

# the same new EK registered on every replica at once: one machine
make_ek same ec
node_body > "$TMP/same.json"
parallel POST /api/v1/register "$TMP/same.json"
check "six concurrent registrations of one EK: all answered 200" test "$(count 200)" = 6
check "six concurrent registrations of one EK: one machine" test "$(sql 'SELECT COUNT(*) FROM machines')" = 1
check "... and every answer names it" test "$(cat "$TMP"/par.*.body | jq -r .machine_id | sort -u | wc -l)" = 1
MID=$(sql 'SELECT machine_id FROM machines')

# concurrent approvals with different hostnames: serialized, no impossible state
i=0; cp=""
for r in $REPLICAS $REPLICAS; do
	i=$((i + 1))
	curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		-d "{\"role\":\"worker-app\",\"hostname\":\"host-$i\"}" "$r/api/v1/machines/$MID/approve" > "$TMP/appr.$i" &
	cp="$cp $!"
done
wait $cp
check "concurrent approvals: every one answered 200 or 409" test "$(cat "$TMP"/appr.* | grep -vc -e '^200$' -e '^409$')" = 0
check "machine ends registered with one of the hostnames" test "$(sql "SELECT status || ' ' || substr(hostname, 1, 5) FROM machines")" = "registered host-"
check "one approve audit entry per 200" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'approve'")" = "$(cat "$TMP"/appr.* | grep -c '^200$')"

# concurrent attests of the registered machine: one transition
parallel POST /api/v1/attest "$TMP/same.json"
check "six concurrent attests: all 200" test "$(count 200)" = 6
check "exactly one registered -> attested transition" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'attest'")" = 1
check "exactly one live config token" test "$(sql "SELECT COUNT(*) FROM config_tokens")" = 1
live=$(sql "SELECT token_hash FROM config_tokens")
TOKEN=""
for t in $(cat "$TMP"/par.*.body | jq -r 'select(.config_token != null) | .config_token'); do
	[ "$(printf '%s' "$t" | sha256sum | cut -d' ' -f1)" = "$live" ] && TOKEN=$t
done
api GET "/api/v1/config/$TOKEN"
expect 200 "the surviving token delivers the config"

# one nonce, six replicas-wide uses: one wins
api GET /api/v1/attest/challenge
node_body ",\"nonce_id\":\"$(jget .nonce_id)\"" > "$TMP/nonce.json"
parallel POST /api/v1/attest "$TMP/nonce.json"
check "one nonce used on three replicas at once: one 200" test "$(count 200)" = 1
check "... five 409 (replay)" test "$(count 409)" = 5

# one config token fetched everywhere at once: every fetch counted once, first delivery once
make_ek tok ec
node_body > "$TMP/tok.json"
api POST /api/v1/register "$(cat "$TMP/tok.json")" -H "Authorization: Bearer $ADMIN"
api POST /api/v1/attest "$(cat "$TMP/tok.json")"
T2=$(jget .config_token); M2=$(jget .machine_id)
rm -f "$TMP"/par.*; cp=""; n=0
for r in $REPLICAS $REPLICAS; do
	n=$((n + 1)); curl -s -o /dev/null -w '%{http_code}\n' "$r/api/v1/config/$T2" > "$TMP/par.$n" & cp="$cp $!"
done
wait $cp
check "six concurrent fetches of one token: all 200" test "$(count 200)" = 6
check "fetch_count is exact" test "$(sql "SELECT fetch_count FROM config_tokens WHERE machine_id = '$M2'")" = 6
check "the first delivery is recorded exactly once" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id = '$M2' AND detail = 'config delivered'")" = 1

# dual control: two operators (and their repeats) vote on three replicas at once
make_ek dual ec
api POST /api/v1/register "$(node_body)"
MD=$(jget .machine_id)
cp=""; n=0
for pair in "$R1|Authorization: Bearer $ADMIN" "$R2|X-Break-Glass: glass" "$R3|Authorization: Bearer $ADMIN" "$R1|X-Break-Glass: glass"; do
	n=$((n + 1)); r=${pair%%|*}; h=${pair#*|}
	curl -s -o /dev/null -w '%{http_code}\n' -H "$h" -H 'Content-Type: application/json' \
		-d '{"role":"controlplane","hostname":"cp-dual"}' "$r/api/v1/machines/$MD/approve" > "$TMP/vote.$n" &
	cp="$cp $!"
done
wait $cp
check "concurrent votes: only 200, 202 and 409 answers" test "$(cat "$TMP"/vote.* | grep -vc -e '^200$' -e '^202$' -e '^409$')" = 0
check "concurrent votes: one approval per completed quorum (each 200)" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id = '$MD' AND action = 'approve'")" = "$(cat "$TMP"/vote.* | grep -c '^200$')"
check "concurrent votes: at least one quorum completed" test "$(cat "$TMP"/vote.* | grep -c '^200$')" -ge 1
check "concurrent votes: every approval had a vote from each of the two operators" test "$(sql "SELECT COUNT(DISTINCT operator_cn) FROM approval_votes WHERE machine_id = '$MD' AND consumed = 1")" = 2
check "concurrent votes: every accepted vote is audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE machine_id = '$MD' AND action = 'approve_vote'")" = "$(cat "$TMP"/vote.* | grep -c -e '^200$' -e '^202$')"
check "concurrent votes: the machine is registered" test "$(sql "SELECT status FROM machines WHERE machine_id = '$MD'")" = registered

# many audit-producing actions on all replicas at once
cp=""; n=0
for k in 1 2 3 4 5 6 7 8; do
	make_ek "m$k" ec
	node_body > "$TMP/m$k.json"
done
for k in 1 2 3 4 5 6 7 8; do
	for r in $REPLICAS; do
		curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$TMP/m$k.json" "$r/api/v1/register" & cp="$cp $!"
	done
done
wait $cp
check "24 concurrent registrations of 8 EKs: 8 machines" test "$(sql 'SELECT COUNT(*) FROM machines')" = 11
api GET /api/v1/audit/verify "" -H "Authorization: Bearer $ADMIN"
expect 200 "the audit chain verifies after concurrent appends from three replicas" '.valid == true'
check "no fork: every prev_hash is used once" test "$(sql 'SELECT COUNT(*) - COUNT(DISTINCT prev_hash) FROM audit_log')" = 0

# ---- outage: PostgreSQL stops mid-load, comes back; nothing acknowledged is lost
REPLICAS="$R1"
BASE=$R1
for k in $(seq 1 12); do make_ek "f$k" ec; node_body > "$TMP/f$k.json"; done
ok_ids=""
for k in 1 2 3 4; do
	id=$(curl -s -H 'Content-Type: application/json' --data-binary @"$TMP/f$k.json" "$R1/api/v1/register" | jq -r .machine_id)
	ok_ids="$ok_ids $id"
done
pg_stop
t0=$(date +%s)
code=$(curl -s -o "$TMP/down.body" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' --data-binary @"$TMP/f5.json" "$R1/api/v1/register")
t1=$(date +%s)
check "during the outage a write answers 503" test "$code" = 503
check "... fast (within 5 s)" test $((t1 - t0)) -le 5
check "... with a clear detail" grep -qE 'Database (unreachable|unavailable) — try again' "$TMP/down.body"
api GET /readyz
expect 503 "readyz reports the outage"
check "the outage is logged" grep -q "ERROR attestd.registration — registration failed: database unavailable" "$D1/attestd.log"
pg_restart
ok=0
for k in 6 7 8 9 10 11 12; do
	out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/f$k.json" "$R1/api/v1/register")
	if [ "$(printf '%s' "$out" | tail -1)" = 200 ]; then
		ok=$((ok + 1)); ok_ids="$ok_ids $(printf '%s' "$out" | head -1 | jq -r .machine_id)"
	fi
done
check "after the restart the replica recovers by itself (7 of 7 writes succeed)" test "$ok" = 7
api GET /readyz
expect 200 "readyz recovers"
lost=0
for id in $ok_ids; do [ "$(sql "SELECT COUNT(*) FROM machines WHERE machine_id = '$id'")" = 1 ] || lost=$((lost + 1)); done
check "no acknowledged registration was lost (11 checked)" test "$lost:$(echo $ok_ids | wc -w)" = "0:11"
check "the refused registration left nothing behind" test "$(sql "SELECT COUNT(*) FROM machines WHERE ek_fingerprint = '$(jq -r .ek_fingerprint "$TMP/f5.json")'")" = 0
api GET /api/v1/audit/verify "" -H "Authorization: Bearer $ADMIN"
expect 200 "audit chain verifies after the outage" '.valid == true'

# the same under load: a writer keeps registering while PostgreSQL goes away and comes back
for k in $(seq 1 30); do make_ek "l$k" ec; node_body > "$TMP/l$k.json"; done
(
	for k in $(seq 1 30); do
		curl -s -o "$TMP/l$k.out" -w '%{http_code}\n' --max-time 10 -H 'Content-Type: application/json' \
			--data-binary @"$TMP/l$k.json" "$R2/api/v1/register" > "$TMP/l$k.code"
		sleep 0.1
	done
) &
LOADER=$!
sleep 0.8
pg_stop
sleep 1
pg_restart
wait $LOADER
acked=0; lost=0; failed=0
for k in $(seq 1 30); do
	if [ "$(cat "$TMP/l$k.code")" = 200 ]; then
		acked=$((acked + 1))
		[ "$(sql "SELECT COUNT(*) FROM machines WHERE machine_id = '$(jq -r .machine_id "$TMP/l$k.out")'")" = 1 ] || lost=$((lost + 1))
	else
		failed=$((failed + 1))
		[ "$(cat "$TMP/l$k.code")" = 503 ] || failed=1000
		[ "$(sql "SELECT COUNT(*) FROM machines WHERE ek_fingerprint = '$(jq -r .ek_fingerprint "$TMP/l$k.json")'")" = 0 ] || lost=$((lost + 100))
	fi
done
say "under load: $acked acknowledged, $failed refused with 503"
check "outage under load: some writes were refused (503) and some acknowledged" sh -c "[ $acked -gt 0 ] && [ $failed -gt 0 ] && [ $failed -lt 1000 ]"
check "outage under load: every acknowledged write is there, every refused one left nothing" test "$lost" = 0
api GET /api/v1/audit/verify "" -H "Authorization: Bearer $ADMIN"
expect 200 "audit chain verifies after the outage under load" '.valid == true'
for p in $P2 $P3; do ATTESTD_PID=$p; stop_attestd; done
ATTESTD_PID=$P1
done_testing
