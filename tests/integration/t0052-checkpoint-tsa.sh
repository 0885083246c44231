#!/bin/sh
# RFC 3161 timestamps on signed audit checkpoints (docs/audit.md): a local
# TSA (`openssl ts -reply` behind tests/helpers/tsa-bridge) stamps every
# checkpoint; `attestation audit verify --checkpoint` checks the token's
# imprint and, with --tsa-ca, the TSA's signature; a token moved to another
# checkpoint or checked against a foreign TSA CA is refused; a TSA that fails
# is retried until it answers.
. "$SRCDIR/tests/lib/test-lib.sh"
: "${ATTESTATION_CLI:?}" "${TSA_BRIDGE:?}"
CLI=$ATTESTATION_CLI

# ---- a local TSA -------------------------------------------------------------
T="$TMP/tsa"; mkdir -p "$T/work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" -out "$T/ca.crt" \
	-subj "/CN=test TSA CA" -days 30 -addext "basicConstraints=critical,CA:true" >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tsa.key" -out "$T/tsa.csr" \
	-subj "/CN=test TSA" >/dev/null 2>&1
printf 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n' > "$T/ext"
openssl x509 -req -in "$T/tsa.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 30 \
	-extfile "$T/ext" -out "$T/tsa.crt" >/dev/null 2>&1
echo 01 > "$T/serial"
cat > "$T/tsa.cnf" <<EOF
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = $T/serial
signer_cert = $T/tsa.crt
certs = $T/ca.crt
signer_key = $T/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
EOF
cat > "$T/reply.sh" <<EOF
#!/bin/sh
[ -f "$T/fail" ] && exit 1
exec openssl ts -reply -config "$T/tsa.cnf" -queryfile "\$1" -out "\$2" 2>>"$T/errors"
EOF
chmod 755 "$T/reply.sh"
"$TSA_BRIDGE" "$T/ready" "$T/work" "$T/reply.sh" 2>"$T/bridge.log" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$T/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
TSA="http://127.0.0.1:$(cat "$T/ready")"

ITL_AUDIT_TSA_URL=ftp://tsa.example timeout 20 "$ATTESTD" --listen 127.0.0.1:0 >"$TMP/badurl.log" 2>&1
check "a TSA URL that is not http(s) is refused at start" sh -c '[ $1 != 0 ] && grep -q "ITL_AUDIT_TSA_URL: expected an http:// or https:// URL" "$2"' _ $? "$TMP/badurl.log"

start_attestd ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS=1 "ITL_AUDIT_TSA_URL=$TSA"
export ATTESTATION_API_URL="$BASE" ATTESTATION_TOKEN="$ADMIN" HOME="$TMP"
CA="$DATA/ca/enrollment-ca.crt"
run() { "$CLI" "$@" >"$TMP/out" 2>"$TMP/err"; RC=$?; OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err"); }
rc_is() {
	if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2" "exit $RC, want $1" "stdout: $OUT" "stderr: $ERR"; fi
}
wait_for() { # wait_for SQL EXPECTED SECONDS
	end=$(($(date +%s) + $3))
	while [ "$(sql "$1")" != "$2" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
	[ "$(sql "$1")" = "$2" ]
}
new_entry() { make_ek "e$1" ec; api POST /api/v1/register "$(node_body)"; }

new_entry 1
check "the periodic checkpoint gets an RFC 3161 timestamp" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = 1 AND timestamp_token IS NOT NULL" 1 15
check "log line: timestamped" grep -q "audit checkpoint(s) timestamped by $TSA" "$DATA/attestd.log"
admin POST /api/v1/audit/checkpoints
expect 201 "an on-demand checkpoint is issued at once, unstamped" '.timestamp_token == null'
CP2=$(jget .id)
check "... and stamped by the next periodic run" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE id = $CP2 AND timestamp_token IS NOT NULL" 1 15
admin GET /api/v1/audit/checkpoints
expect 200 "the list says which are timestamped" 'all(.[]; .timestamped == true)'

run audit checkpoint get "$CP2" --file "$TMP/cp.json"
rc_is 0 "export the stamped checkpoint"
jq -j .payload "$TMP/cp.json" > "$TMP/payload"
jq -r .timestamp_token "$TMP/cp.json" | base64 -d > "$TMP/tok.der"
check "openssl ts -verify accepts the token for the payload" \
	openssl ts -verify -token_in -in "$TMP/tok.der" -data "$TMP/payload" -CAfile "$T/ca.crt"
run audit verify --checkpoint "$TMP/cp.json" --enrollment-ca "$CA" --tsa-ca "$T/ca.crt"
rc_is 0 "verify with --tsa-ca"
check "... reports the TSA time, signature verified" sh -c 'printf "%s" "$1" | grep -q "RFC 3161 timestamp: 20[0-9]*Z (TSA signature verified with --tsa-ca)"' _ "$OUT"
run audit verify --checkpoint "$TMP/cp.json" --enrollment-ca "$CA"
rc_is 0 "verify without --tsa-ca"
check "... says only the imprint was checked" sh -c 'printf "%s" "$1" | grep -q "imprint only; pass --tsa-ca"' _ "$OUT"
run audit verify --checkpoint "$TMP/cp.json" --enrollment-ca "$CA" --tsa-ca "$CA"
rc_is 1 "a TSA signature under another CA is refused"
check "... saying so" sh -c 'printf "%s" "$1" | grep -q "TIMESTAMP REFUSED: timestamp does not verify"' _ "$OUT"

# a token taken from another checkpoint
new_entry 2
check "a third checkpoint, stamped" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = 2 AND timestamp_token IS NOT NULL" 1 15
run audit checkpoint get latest --file "$TMP/cp3.json"
jq --arg t "$(jq -r .timestamp_token "$TMP/cp3.json")" '.timestamp_token = $t' "$TMP/cp.json" > "$TMP/cp-swapped.json"
run audit verify --checkpoint "$TMP/cp-swapped.json" --enrollment-ca "$CA" --tsa-ca "$T/ca.crt"
rc_is 1 "a token moved from another checkpoint is refused"
jq '.timestamp_token = "AAAA"' "$TMP/cp.json" > "$TMP/cp-junk.json"
run --output json audit verify --checkpoint "$TMP/cp-junk.json" --enrollment-ca "$CA"
rc_is 1 "a token that is no TimeStampToken is refused"
check "... JSON verdict" sh -c 'printf "%s" "$1" | jq -e ".valid == false and .checkpoint.matches == true and .checkpoint.timestamp.valid == false" >/dev/null' _ "$OUT"

# the TSA fails, then recovers
touch "$T/fail"
new_entry 3
check "with the TSA failing the checkpoint is still issued" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = 3 AND timestamp_token IS NULL" 1 15
check "log line: the TSA failure" sh -c 'sleep 1.5; grep -q "WARNING attestd.audit — checkpoint timestamp: TSA .* answered HTTP 500" "$1"' _ "$DATA/attestd.log"
rm -f "$T/fail"
check "once the TSA answers again it is stamped" \
	wait_for "SELECT COUNT(*) FROM audit_checkpoints WHERE entries = 3 AND timestamp_token IS NOT NULL" 1 15
done_testing
