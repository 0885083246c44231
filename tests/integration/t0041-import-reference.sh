#!/bin/sh
# attestd import-reference: a database of the reference service (its
# schema from tests/helpers/reference-schema.sql, audit entries hashed by
# an independent Python implementation of its recipe) is taken over into
# an empty database: machines (EK material re-fingerprinted, fingerprint-
# only receipts), approval requests and the audit chain, verified and kept
# verifiable, anchored by the first new entry.  Imported machines attest.
# Inconsistent input is refused with a report and nothing is written.
. "$SRCDIR/tests/lib/test-lib.sh"
SCHEMA=$SRCDIR/tests/helpers/reference-schema.sql
AUDITPY=$SRCDIR/tests/helpers/reference-audit.py

M1=11111111-1111-4111-8111-111111111111; M2=22222222-2222-4222-8222-222222222222
M3=33333333-3333-4333-8333-333333333333; M4=44444444-4444-4444-8444-444444444444
make_ek node1 rsa; B1=$EK_B64; FP1=$EK_FP; L1=$(sha384sum "$TMP/node1.pem" | cut -d' ' -f1)
make_ek node2 ec; B2=$EK_B64; L2=$(sha384sum "$TMP/node2.pem" | cut -d' ' -f1)
make_ek node3 rsa; B3=$EK_B64; A3=$(sha256sum "$TMP/node3.pem" | cut -d' ' -f1)
make_ek node4 rsa; B4=$EK_B64; L4=$(sha384sum "$TMP/node4.pem" | cut -d' ' -f1)

# reference_db FILE: the reference installation the tests start from
reference_db() {
	rm -f "$1"; sqlite3 "$1" < "$SCHEMA"
	sqlite3 "$1" <<EOS
INSERT INTO machine (machine_id, ek_fingerprint, ek_source, hw_uuid, hw_mac, hw_serial, hw_product, role, status,
  hostname, assigned_ip, config_token, token_consumed, registered_at, attested_at, locked_at, revoked_at,
  wipe_pending, ak_pub, ek_cert_pem, ek_fingerprint_sha384, cluster_id) VALUES
 ('$M1', '$L1', 'cert', 'uuid-1', '52:54:00:00:00:01', 'S1', 'PowerEdge', 'controlplane', 'attested', 'cp-01',
  '10.0.0.1/24', 'tok-1-plaintext', 1, '2026-01-10 09:00:00.000000', '2026-01-10 09:05:00.250000', NULL, NULL,
  0, NULL, '$B1', '$L1', 'prod'),
 ('$M2', '$L2', 'cert', 'uuid-2', '52-54-00-00-00-02', 'S2', 'PowerEdge', 'WORKER_APP', 'PENDING_APPROVAL', NULL,
  NULL, NULL, 0, '2026-01-11 10:00:00.000001', NULL, NULL, NULL, 0, NULL, '$B2', '$L2', 'default'),
 ('$M3', '$A3', 'offline-import', 'unknown', 'unknown', 'unknown', 'unknown', 'worker_infra', 'registered',
  'infra-1', NULL, 'tok-3', 0, '2026-01-12 11:00:00.000000', NULL, NULL, NULL, 0, NULL, NULL, NULL, 'default'),
 ('$M4', '$L4', 'cert', 'uuid-4', 'unknown', 'S4', 'PowerEdge', 'worker-app', 'revoked', 'app-9', NULL, NULL, 1,
  '2026-01-13 12:00:00.000000', '2026-01-13 12:01:00.000000', '2026-02-01 08:00:00.000000',
  '2026-02-02 08:00:00.000000', 1, NULL, '$B4', '$L4', 'default');
INSERT INTO approval_request (machine_id, operator_cn, role, hostname, assigned_ip, created_at, expires_at, consumed)
 VALUES ('$M2', 'alice', 'controlplane', 'cp-02', '10.0.0.2/24', '2099-01-01 00:00:00.000000', '2099-01-01 00:10:00.000000', 0);
EOS
	printf '%s\n' \
		"2026-01-10 09:01:00.000000	bob	approve	$M1	registered	registered	Rack 3 expansion" \
		"2026-01-12 11:00:00.500000	SYSTEM	import	$M3	-	registered	imported from offline receipt" \
		"2026-02-01 08:00:00.000000	alice	lock	$M4	attested	locked	Scheduled maintenance — disk replacement" \
		"2026-02-02 08:00:00.000000	alice	revoke	$M4	locked	revoked	decommissioned; wipe=true" \
		"2098-12-31 23:59:59.999999	alice	approve_vote	$M2	-	-	vote 1/2 for role controlplane" |
		python3 "$AUDITPY" "$1" "$@"
}
target() { # a fresh, empty database: T_URL (and PG_DB)
	if [ "$ATTEST_DB" = postgresql ]; then new_db; T_URL=$DB_URL
	else T_URL="sqlite:///$(mktemp -d "$TMP/target.XXXXXX")/machines.db"; fi
}
tsql() {
	if [ "$ATTEST_DB" = postgresql ]; then "$PG_BIN/psql" -h "$PG_DIR" -U postgres -d "$PG_DB" -qAt -c "$1"
	else sqlite3 "${T_URL#sqlite:///}" "$1"; fi
}
empty() { # no rows (or not even the tables)
	[ "$(tsql 'SELECT COUNT(*) FROM machines' 2>/dev/null || echo 0)" = 0 ] &&
		[ "$(tsql 'SELECT COUNT(*) FROM audit_log' 2>/dev/null || echo 0)" = 0 ]
}
imp() { # imp ARGS...: attestd import-reference into T_URL
	env ITL_DB_URL="$T_URL" "$ATTESTD" import-reference "$@" >"$TMP/out" 2>&1
	RC=$?
}
said() { grep -qF -- "$1" "$TMP/out"; }

REF=$TMP/reference.db
ROOT=$(reference_db "$REF")
cp "$REF" "$TMP/reference.orig"
check "the reference database is built from the study's schema, its chain hashed by Python" \
	test "$(sqlite3 "$REF" 'SELECT COUNT(*) FROM audit_log'):${#ROOT}" = 5:64

say "--- dry run, then the import"
target
imp --dry-run "$REF"
check "--dry-run: exit 0, the report, nothing written" \
	sh -c "[ $RC = 0 ] && grep -q '^checked, nothing written: ' $TMP/out" && check "... the database stays empty" empty
imp "$REF"
check "import: exit 0; 4 machines (3 with EK material, 1 by fingerprint), 1 approval request, 5 entries, the root" \
	sh -c "[ $RC = 0 ] && grep -qF '4 machines (3 with EK material, 1 by fingerprint until their next contact), 1 approval requests, 5 audit entries (chain verified, root $ROOT)' $TMP/out"
check "the reference file is not modified (read from a private copy)" cmp -s "$REF" "$TMP/reference.orig"
check "the report names the file's SHA-256" said "(SHA-256 $(sha256sum "$REF" | cut -d' ' -f1))"
imp "$REF"
check "importing again into the now non-empty database: exit 1" sh -c "[ $RC = 1 ] && grep -q 'is not empty' $TMP/out"

# the reference's Enrollment CA as it writes it (ECDSA P-384, "TraditionalOpenSSL" key, 0600)
REFCA=$TMP/reference-ca; mkdir -p "$REFCA"
openssl ecparam -name secp384r1 -genkey -noout -out "$REFCA/enrollment-ca.key" && chmod 600 "$REFCA/enrollment-ca.key"
openssl req -x509 -new -key "$REFCA/enrollment-ca.key" -sha384 -days 3650 -subj "/C=NL/O=ITL Usions/CN=ITL Machine Enrollment CA" \
	-addext "basicConstraints=critical,CA:true,pathlen:0" -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
	-out "$REFCA/enrollment-ca.crt" 2>/dev/null
SHARED_DB_URL=$T_URL start_attestd ITL_ENROLLMENT_CA_DIR="$REFCA"
check "the reference's Enrollment CA files, copied into ITL_ENROLLMENT_CA_DIR, are loaded as they are" \
	grep -q "Enrollment CA loaded from $REFCA" "$DATA/attestd.log"
admin GET /api/v1/audit/verify
expect 200 "the whole chain verifies: the reference's 5 entries and the import entry" '.valid == true and .entries == 6'
admin GET "/api/v1/audit?per_page=50"
expect 200 "the import entry is chained to the reference's root and names it" \
	"any(.[]; .action == \"import_reference\" and .operator_cn == \"SYSTEM\" and .prev_hash == \"$ROOT\" and (.detail | contains(\"root $ROOT\")))"
expect 200 "the reference entries keep their hashes and isoformat timestamps (zero fraction omitted)" \
	"any(.[]; .entry_hash == \"$ROOT\" and .timestamp == \"2098-12-31T23:59:59.999999\") and any(.[]; .action == \"lock\" and .timestamp == \"2026-02-01T08:00:00\" and (.detail | contains(\"—\")))"
admin GET "/api/v1/machines/$M1"
expect 200 "an attested machine: state, role, hostname, address, cluster, canonical EK fingerprint" \
	".status == \"attested\" and .role == \"controlplane\" and .hostname == \"cp-01\" and .assigned_ip == \"10.0.0.1/24\" and .cluster_id == \"prod\" and .ek_fingerprint == \"$FP1\""
admin GET "/api/v1/machines/$M2"
expect 200 "enum names (PENDING_APPROVAL, WORKER_APP) and a dashed MAC normalised" \
	'.status == "pending_approval" and .role == "worker-app" and .hw_mac == "52:54:00:00:00:02"'
admin GET "/api/v1/machines/$M4"
expect 200 "a revoked machine keeps its wipe flag and times" '.status == "revoked" and .wipe_pending == true and .revoked_at != null'
check "the open approval request became a dual-control vote" \
	test "$(tsql "SELECT operator_cn || ' ' || role || ' ' || consumed FROM approval_votes WHERE machine_id = '$M2'")" = "alice controlplane 0"
check "config tokens are not carried over (the reference keeps them in plaintext)" \
	test "$(tsql 'SELECT COUNT(*) FROM config_tokens')" = 0

say "--- imported machines at their next contact"
EK_B64=$B1; EK_FP=$FP1
api POST /api/v1/attest "$(node_body)"
expect 200 "the attested machine attests with its EK" ".machine_id == \"$M1\" and (.status == \"already_attested\" or .status == \"attested\")"
make_ek node3b rsa; EK_B64=$B3; EK_FP=$(openssl x509 -in "$TMP/node3.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
api POST /api/v1/attest "$(node_body)"
expect 200 "the fingerprint-only receipt is found by its agent fingerprint and attests" ".machine_id == \"$M3\" and .status == \"attested\" and .action == \"apply-config\""
check "... its EK is bound now (canonical fingerprint stored)" test "$(tsql "SELECT ek_fingerprint FROM machines WHERE machine_id = '$M3'")" = "$EK_FP"
EK_B64=$B4; EK_FP=$(openssl x509 -in "$TMP/node4.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha384sum | cut -d' ' -f1)
api POST /api/v1/attest "$(node_body)"
expect 200 "the revoked machine is told so" ".machine_id == \"$M4\" and .status == \"revoked\""
admin POST "/api/v1/machines/$M2/approve" '{"role":"worker-app","hostname":"app-2"}'
expect 200 "the pending machine is approved"
admin GET /api/v1/audit/verify
expect 200 "the chain goes on and still verifies from the reference's first entry" '.valid == true and .entries > 6'
stop_attestd

say "--- refused, with a report, nothing written"
bad() { # bad NAME SQL...: a damaged copy of the reference database
	BAD=$TMP/$1.db; cp "$REF" "$BAD"; shift
	for q in "$@"; do sqlite3 "$BAD" "$q"; done
	target
}
bad altered "UPDATE audit_log SET detail = 'Rack 4' WHERE id = 1"
imp "$BAD"
check "an altered audit entry: exit 1, its id named" sh -c "[ $RC = 1 ] && grep -q 'audit_log id=1: entry_hash does not recompute' $TMP/out && grep -q 'nothing imported' $TMP/out" && check "... nothing written" empty
bad deleted "DELETE FROM audit_log WHERE id = 2"
imp "$BAD"
check "a deleted audit entry: the next one does not link" sh -c "[ $RC = 1 ] && grep -q 'audit_log id=3: prev_hash does not link' $TMP/out" && check "... nothing written" empty
bad status "UPDATE machine SET status = 'rejected', role = 'windows' WHERE machine_id = '$M2'"
imp "$BAD"
check "a status and a role without equivalent: both reported" \
	sh -c "[ $RC = 1 ] && grep -q \"status 'rejected' has no equivalent\" $TMP/out && grep -q \"role 'windows' has no equivalent\" $TMP/out && grep -q 'problem(s); nothing imported' $TMP/out" && check "... nothing written" empty
bad fp "UPDATE machine SET ek_fingerprint = 'x' WHERE machine_id = '$M2'" \
	"UPDATE machine SET ek_fingerprint = '$L2' WHERE machine_id = '$M4'" \
	"UPDATE machine SET ek_fingerprint = '$L4' WHERE machine_id = '$M2'"
imp "$BAD"
check "fingerprints that do not belong to their EK material: reported per machine" \
	sh -c "[ $RC = 1 ] && grep -q '($M2): ek_fingerprint .* is not the fingerprint of its ek_cert_pem' $TMP/out && grep -q '($M4): ek_fingerprint' $TMP/out"
bad garbage "UPDATE machine SET ek_cert_pem = 'bm90IGFuIEVL' WHERE machine_id = '$M1'"
imp "$BAD"
check "EK material that does not parse: reported" sh -c "[ $RC = 1 ] && grep -q '($M1): ek_cert_pem: ' $TMP/out"
bad orphan "UPDATE approval_request SET machine_id = 'ffffffff-0000-4000-8000-000000000000'"
imp "$BAD"
check "an approval request for an unknown machine: reported" sh -c "[ $RC = 1 ] && grep -q 'approval_request id=1: machine_id ffffffff' $TMP/out"
bad badtime "UPDATE machine SET registered_at = 'yesterday' WHERE machine_id = '$M1'" "UPDATE machine SET assigned_ip = '10.0.0.300' WHERE machine_id = '$M3'"
imp "$BAD"
check "a time and an address that do not parse: reported" \
	sh -c "[ $RC = 1 ] && grep -q 'registered_at is not a time' $TMP/out && grep -q 'assigned_ip is not an address' $TMP/out"
bad notable "DROP TABLE audit_log"
imp "$BAD"
check "no audit_log table: not a reference database" sh -c "[ $RC = 1 ] && grep -q 'no table machine or audit_log' $TMP/out"
bad nocol "ALTER TABLE machine DROP COLUMN status"
imp "$BAD"
check "a required column missing: named" sh -c "[ $RC = 1 ] && grep -q 'table machine has no column status' $TMP/out"
target; head -c 4096 /dev/urandom > "$TMP/random.db"
imp "$TMP/random.db"
check "a file that is not SQLite: refused" sh -c "[ $RC = 1 ] && grep -q 'not an SQLite database' $TMP/out" && check "... nothing written" empty
imp "$TMP/no-such.db"
check "a file that does not exist: refused" sh -c "[ $RC = 1 ] && grep -q 'No such file' $TMP/out"
cp "$REF" "$TMP/live.db"; echo x > "$TMP/live.db-wal"
imp "$TMP/live.db"
check "a database with a write-ahead log (service still running): refused" sh -c "[ $RC = 1 ] && grep -q 'stop the reference service first' $TMP/out"
SDK=$TMP/sdk.db; rm -f "$SDK"; sqlite3 "$SDK" < "$SCHEMA"
printf '2026-01-10 09:01:00.000000\tbob\tapprove\t-\t-\t-\tx\n' | python3 "$AUDITPY" "$SDK" --with-source-ip >/dev/null
target; imp "$SDK"
check "a chain hashed with source_ip (the reference SDK's variant): refused, the reason suggested" \
	sh -c "[ $RC = 1 ] && grep -q 'hashed with source_ip' $TMP/out"
imp
check "no file: usage, exit 2" sh -c "[ $RC = 2 ] && grep -q 'usage: attestd import-reference' $TMP/out"
done_testing
