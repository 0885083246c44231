#!/bin/sh
# Signed audit checkpoints (docs/audit.md): issued periodically (only when
# the log grew) and on demand, signed by the Enrollment CA's document-signing
# certificate (checked with openssl cms), exported, and checked by
# `attestation audit verify --checkpoint`: a log cut back to an earlier,
# internally valid state, or cut back and rewritten, no longer matches.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${ATTESTATION_CLI:?}"
CLI=$ATTESTATION_CLI

start_attestd ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS=1
CA="$DATA/ca/enrollment-ca.crt"
export ATTESTATION_API_URL="$BASE" ATTESTATION_TOKEN="$ADMIN" HOME="$TMP"
run() { "$CLI" "$@" >"$TMP/out" 2>"$TMP/err"; RC=$?; OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err"); }
rc_is() { # WANT DESC
	if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2" "exit $RC, want $1" "stdout: $OUT" "stderr: $ERR"; fi
}
wait_for() { # wait_for SQL EXPECTED SECONDS
	i=0; while [ "$(sql "$1")" != "$2" ] && [ $i -lt $(($3 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(sql "$1")" = "$2" ]
}

make_ek cp1 ec
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
admin POST "/api/v1/machines/$MID/approve" '{"role":"worker-app"}'
expect 200 "a machine to act on"
bump() { # bump N: 2N audit entries (lock, unlock)
	n=0
	while [ $n -lt "$1" ]; do
		admin POST "/api/v1/machines/$MID/lock" '{"reason":"test"}'; admin POST "/api/v1/machines/$MID/unlock"
		n=$((n + 1))
	done
}
audit_n() { sql 'SELECT COUNT(*) FROM audit_log'; }

# ---- periodic ---------------------------------------------------------------
N0=$(audit_n)
check "a periodic checkpoint names the current head" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = $N0 AND issuer LIKE 'attestd:%'" 1 10
P0=$(sql "SELECT COUNT(*) FROM audit_checkpoints")
sleep 2.5
check "no new periodic checkpoint while the log does not grow" \
	test "$(sql "SELECT COUNT(*) FROM audit_checkpoints")" = "$P0"
bump 1
check "the next one follows the growth" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = $((N0 + 2))" 1 10
check "log line: checkpoint issued" grep -q "Signed audit checkpoint issued" "$DATA/attestd.log"

# ---- on demand, export, signature -------------------------------------------
api POST /api/v1/audit/checkpoints
expect 401 "issuing needs an operator"
admin POST /api/v1/audit/checkpoints
expect 201 "on-demand checkpoint" \
	".format == \"itl-audit-checkpoint/1\" and .entries == $((N0 + 2)) and (.head_hash | length) == 64 and (.issuer | startswith(\"operator:\")) and .timestamp_token == null"
CPID=$(jget .id)
printf '%s' "$BODY" > "$TMP/cp-api.json"
check "payload repeats the fields and names the log" sh -c \
	'jq -r .payload "$1" | jq -e --argjson d "$(cat "$1")" ".entries == \$d.entries and .head_hash == \$d.head_hash and .head_id == \$d.head_id and .type == \"itl-audit-checkpoint\" and .version == 1 and .log == \"http://attest.test\"" >/dev/null' _ "$TMP/cp-api.json"
check "head_hash is the newest entry's hash" test "$(jq -r .head_hash "$TMP/cp-api.json")" = "$(sql 'SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1')"
jq -j .payload "$TMP/cp-api.json" > "$TMP/payload"
jq -r .signature "$TMP/cp-api.json" | base64 -d > "$TMP/sig.der"
check "openssl cms verifies the signature against enrollment-ca.crt" \
	openssl cms -verify -binary -inform DER -in "$TMP/sig.der" -content "$TMP/payload" -CAfile "$CA" -purpose any -out /dev/null
sed 's/"entries":[0-9]*/"entries":99999/' "$TMP/payload" > "$TMP/payload.bad"
check "... and refuses an altered payload" sh -c '! openssl cms -verify -binary -inform DER -in "$1" -content "$2" -CAfile "$3" -purpose any -out /dev/null 2>/dev/null' _ "$TMP/sig.der" "$TMP/payload.bad" "$CA"
admin GET /api/v1/audit/checkpoints/latest
expect 200 "latest is the one just issued" ".id == $CPID"
check "served as an attachment" sh -c "printf '%s' \"\$1\" | grep -qi 'Content-Disposition: attachment; filename=\"audit-checkpoint-$CPID.json\"'" _ "$HEADERS"
admin GET "/api/v1/audit/checkpoints/$CPID"
expect 200 "by id" ".id == $CPID and .signature != null"
admin GET /api/v1/audit/checkpoints/99999
expect 404 "unknown id: 404"
admin GET /api/v1/audit/checkpoints/abc
expect 404 "malformed id: 404"
admin GET "/api/v1/audit/checkpoints?per_page=2"
expect 200 "list, newest first" "length == 2 and .[0].id == $CPID and .[0].timestamped == false and (.[0] | has(\"signature\") | not)"
admin GET "/api/v1/audit/checkpoints?per_page=0"
expect 422 "list paging checked"

# ---- the CLI ----------------------------------------------------------------
run audit checkpoint create --file "$TMP/cp1.json"
rc_is 0 "audit checkpoint create"
check "... writes the export document" sh -c 'jq -e "$1" "$2" >/dev/null' _ ".entries == $((N0 + 2)) and .payload != null" "$TMP/cp1.json"
run audit checkpoint get latest --file -
rc_is 0 "audit checkpoint get latest"
check "... prints the document with --file -" sh -c 'printf "%s" "$1" | jq -e ".format == \"itl-audit-checkpoint/1\"" >/dev/null' _ "$OUT"
run audit checkpoint get nope
rc_is 2 "audit checkpoint get needs an id or latest"
run audit checkpoint list
rc_is 0 "audit checkpoint list"
check "... as a table" sh -c 'printf "%s" "$1" | head -1 | grep -q "^ID *ISSUED *ENTRIES"' _ "$OUT"
run audit verify --checkpoint "$TMP/cp1.json" --enrollment-ca "$CA"
rc_is 0 "verify against the checkpoint: the log extends it"
check "... says so" sh -c 'printf "%s" "$1" | grep -q "the log extends it"' _ "$OUT"
run audit verify --checkpoint "$TMP/cp1.json"
rc_is 2 "--checkpoint without --enrollment-ca is a usage error"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/other.key" -out "$TMP/other.crt" \
	-subj "/CN=other" -days 2 >/dev/null 2>&1
run audit verify --checkpoint "$TMP/cp1.json" --enrollment-ca "$TMP/other.crt"
rc_is 1 "a checkpoint not signed under the given CA is refused"
check "... saying why" sh -c 'printf "%s" "$1" | grep -q "CHECKPOINT REFUSED: signature does not verify"' _ "$OUT"
jq '.payload |= sub("\"entries\":[0-9]+"; "\"entries\":99999")' "$TMP/cp1.json" > "$TMP/cp-forged.json"
run audit verify --checkpoint "$TMP/cp-forged.json" --enrollment-ca "$CA"
rc_is 1 "an altered checkpoint is refused"
printf 'not json' > "$TMP/garbage.json"
run audit verify --checkpoint "$TMP/garbage.json" --enrollment-ca "$CA"
rc_is 1 "a file that is no checkpoint is refused"

bump 2
run audit checkpoint create --file "$TMP/cp2.json"
N2=$(jq .entries "$TMP/cp2.json"); H1=$(jq .head_id "$TMP/cp1.json"); C1=$(jq .id "$TMP/cp1.json")
run --output json audit verify --checkpoint "$TMP/cp1.json" --enrollment-ca "$CA"
rc_is 0 "an older checkpoint still matches a grown log"

# ---- truncation: back to cp1's state, checkpoints after it removed too -------
sql "DELETE FROM audit_log WHERE id > $H1"
admin GET /api/v1/audit/verify
expect 200 "the server sees the cut against its newest stored checkpoint" \
	".valid == false and .checkpoint.matches == false and (.checkpoint.error | test(\"log truncated\"))"
admin POST /api/v1/audit/checkpoints
expect 409 "a log that no longer extends the newest checkpoint is not signed on demand" '.detail | test("^Not signing: log truncated")'
check "... nor periodically" sh -c 'sleep 2; grep -q "ERROR attestd.audit — Not signing an audit checkpoint: log truncated" "$1"' _ "$DATA/attestd.log"
check "... so the stored checkpoints still show the cut" test "$(sql "SELECT MAX(entries) FROM audit_checkpoints")" = "$N2"
sql "DELETE FROM audit_checkpoints WHERE id > $C1"
admin GET /api/v1/audit/verify
expect 200 "with the newer checkpoints gone too the chain alone looks valid" \
	'.valid == true and .checkpoint.matches == true'
run audit verify
rc_is 0 "... so does the client-side chain check"
run audit verify --checkpoint "$TMP/cp2.json" --enrollment-ca "$CA"
rc_is 1 "the exported checkpoint detects the cut"
check "... as a truncation" sh -c 'printf "%s" "$1" | grep -q "CHECKPOINT MISMATCH: log truncated: .* attests '"$N2"' entries"' _ "$OUT"
run --output json audit verify --checkpoint "$TMP/cp2.json" --enrollment-ca "$CA"
check "... JSON verdict" sh -c 'printf "%s" "$1" | jq -e ".valid == false and .checkpoint.signature_valid == true and .checkpoint.matches == false" >/dev/null' _ "$OUT"

# ---- rewritten: cut back, then as many new entries as before -------------------
bump 3
check "the rewritten log is longer than the checkpoint" test "$(audit_n)" -ge "$N2"
run audit verify
rc_is 0 "the rewritten chain verifies on its own"
run audit verify --checkpoint "$TMP/cp2.json" --enrollment-ca "$CA"
rc_is 1 "the exported checkpoint detects the rewrite"
check "... as a rewrite" sh -c 'printf "%s" "$1" | grep -q "CHECKPOINT MISMATCH: log rewritten: entry '"$N2"' hashes to"' _ "$OUT"

done_testing
