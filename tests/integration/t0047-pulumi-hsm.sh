#!/bin/sh
# Pulumi stack keys wrapped by an HSM key (docs/pulumi-backend.md
# "Secrets", docs/extensions.md "Wrapping keys"): a SoftHSM2 token with an
# EC P-384 wrapping key made inside it (pkcs11-tool --keypairgen); the
# secrets routes round-trip through it; the stored stack key is an
# 'hsm1:' blob that a file master key cannot open; a restart still
# decrypts; a file master key migrates to the HSM key
# (ITL_PULUMI_PREVIOUS_MASTER_KEY); the CA's token is the default; wrong
# PIN, missing object or token stop start-up with a clear message and
# never the PIN.
. "$SRCDIR/tests/lib/test-lib.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
for t in softhsm2-util pkcs11-tool openssl; do
	command -v $t >/dev/null 2>&1 || { echo "Bail out! $t not installed (scripts/deps.sh)"; exit 1; }
done
[ -f "$MODULE" ] || { echo "Bail out! $MODULE missing (softhsm2)"; exit 1; }

mkdir -p "$TMP/hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$TMP/hsm/tokens" > "$TMP/hsm/softhsm2.conf"
SOFTHSM2_CONF=$TMP/hsm/softhsm2.conf; export SOFTHSM2_CONF
PIN=583920
p11() { pkcs11-tool --module "$MODULE" "$@" >/dev/null 2>&1; }
softhsm2-util --init-token --free --label itl-ca --pin $PIN --so-pin 99999999 >/dev/null 2>&1
p11 --token-label itl-ca --login --pin $PIN --keypairgen --key-type EC:secp384r1 --label attestation-pulumi-wrap --id 50 --usage-derive
p11 --token-label itl-ca --login --pin $PIN --keypairgen --key-type EC:secp384r1 --label enrollment-ca --id 01 --usage-sign
softhsm2-util --init-token --free --label other-ca --pin $PIN --so-pin 99999999 >/dev/null 2>&1
p11 --token-label other-ca --login --pin $PIN --keypairgen --key-type EC:secp384r1 --label enrollment-ca --id 01 --usage-sign
# a key made outside (software) and imported with derive, only for the
# format check against tests/helpers/wrapkey-interop.py, which needs the private key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$TMP/hsm/interop.pem" 2>/dev/null
openssl pkey -in "$TMP/hsm/interop.pem" -outform DER -out "$TMP/hsm/interop.der"
openssl pkey -in "$TMP/hsm/interop.pem" -pubout -out "$TMP/hsm/interop.pub"
openssl pkey -in "$TMP/hsm/interop.pem" -pubout -outform DER -out "$TMP/hsm/interop-pub.der"
p11 --token-label itl-ca --login --pin $PIN --write-object "$TMP/hsm/interop.der" --type privkey --label interop --id 70 --usage-derive
p11 --token-label itl-ca --login --pin $PIN --write-object "$TMP/hsm/interop-pub.der" --type pubkey --label interop --id 70
# a key softhsm2-util imports without CKA_DERIVE: refused at start-up
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$TMP/hsm/nd.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$TMP/hsm/nd.pem" -out "$TMP/hsm/nd.p8"
softhsm2-util --import "$TMP/hsm/nd.p8" --token itl-ca --label noderive --id 71 --pin $PIN >/dev/null 2>&1
check "SoftHSM2 token with the wrapping key, made in the token" \
	sh -c "pkcs11-tool --module $MODULE --token-label itl-ca --login --pin $PIN --list-objects --type privkey 2>/dev/null | grep -q attestation-pulumi-wrap"

TOK=pulumi-token-$$-0123456789
head -c 32 /dev/urandom > "$TMP/master.key"
head -c 32 /dev/urandom > "$TMP/other.key"
URI="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-value=$PIN"
HSMENV="ITL_PULUMI_TOKEN=$TOK ITL_PULUMI_ORG=acme ITL_PKCS11_MODULE=$MODULE"
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/p.db"; fi

# pl METHOD STACK ROUTE [BODY]: a Pulumi route with the CLI's headers
pl() {
	api "$1" "/api/stacks/acme/proj/$2$3" "${4:-}" -H "Authorization: token $TOK" -H "Accept: application/vnd.pulumi+8"
}
enc() { pl POST "$1" /encrypt "{\"plaintext\":\"$2\"}"; }
dec() { pl POST "$1" /decrypt "{\"ciphertext\":\"$2\"}"; }
row() { sql "SELECT secrets_key FROM extension_pulumi_state_stacks WHERE stack = '$1'"; }
nopin() { ! grep -q "$PIN" "$DATA/attestd.log"; }
# st ENV...: start attestd on the shared database (sql reads it too)
# shellcheck disable=SC2034
st() { start_attestd "$@"; [ "$ATTEST_DB" = postgresql ] || DB=${SHARED_DB_URL#sqlite://}; }

# ---- 1. a file master key: the stack 'mig' gets a file-wrapped key ------------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$TMP/master.key"
api POST /api/stacks/acme/proj '{"stackName":"mig"}' -H "Authorization: token $TOK"
expect 200 "file key: stack 'mig' created"
enc mig czNjcjN0
expect 200 "file key: encrypt"
CT_FILE=$(jget .ciphertext)
check "file key: the stored stack key is the file format (bare base64, 80 chars)" test "$(row mig | wc -c)" = 81
ROWFILE=$(row mig)
stop_attestd

# ---- 2. the HSM key: roundtrips, the stored form ------------------------------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI"
check "log: stack keys are wrapped by the HSM key" grep -q "wrapped by the master key: HSM key [0-9a-f]\{16\}" "$DATA/attestd.log"
check "log: the wrapping key was opened in the token" grep -q "extension pulumi_state: wrapping key [0-9a-f]\{16\} opened in a PKCS#11 token" "$DATA/attestd.log"
check "the PIN is not logged" nopin
KEYID=$(sed -n 's/.*HSM key \([0-9a-f]\{16\}\).*/\1/p' "$DATA/attestd.log" | head -1)
api POST /api/stacks/acme/proj '{"stackName":"hsm"}' -H "Authorization: token $TOK"
expect 200 "HSM key: stack 'hsm' created"
enc hsm czNjcjN0
expect 200 "HSM key: encrypt"
CT1=$(jget .ciphertext)
dec hsm "$CT1"
expect 200 "HSM key: decrypt gives the plaintext back" '.plaintext == "czNjcjN0"'
pl POST hsm /batch-encrypt '{"plaintexts":["ImEi","ImIi",""]}'
expect 200 "HSM key: batch-encrypt" '(.ciphertexts | length) == 3'
CTA=$(jget '.ciphertexts[0]'); CTB=$(jget '.ciphertexts[1]')
pl POST hsm /batch-decrypt "{\"ciphertexts\":[\"$CTA\",\"$CTB\",\"$CT1\"]}"
expect 200 "HSM key: batch-decrypt, keyed by the ciphertexts sent" \
	".plaintexts[\"$CTA\"] == \"ImEi\" and .plaintexts[\"$CTB\"] == \"ImIi\" and .plaintexts[\"$CT1\"] == \"czNjcjN0\""
ROW=$(row hsm)
check "the stored stack key is an hsm1: blob naming the HSM key" sh -c "case '$ROW' in hsm1:$KEYID:*) true ;; *) false ;; esac"
check "the stored blob is the P-384 form (10 + 97 + 12 + 32 + 16 bytes)" \
	test "$(printf '%s' "${ROW#hsm1:*:}" | base64 -d | wc -c)" = 167
dec mig "$CT_FILE"
expect 500 "a file-wrapped stack key without the file key: a clear 500" \
	'(.message | test("wrapped by a master key file that does not unwrap it")) and .code == 500'
check "audit: the key creation names the HSM key" \
	test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'pulumi.secrets.key' AND detail LIKE '%master key HSM key $KEYID%'")" = 1
stop_attestd

# ---- 3. a restart: old ciphertexts still decrypt; a third-party extension ---------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI" ITL_EXTENSIONS="$EXT_DIR/ext-wrap.so" WRAP_PROBE_KEY="$URI"
pl POST hsm /batch-decrypt "{\"ciphertexts\":[\"$CTA\",\"$CT1\"]}"
expect 200 "restart: the old ciphertexts decrypt" ".plaintexts[\"$CT1\"] == \"czNjcjN0\" and .plaintexts[\"$CTA\"] == \"ImEi\""
check "restart: the stored stack key did not change" test "$(row hsm)" = "$ROW"
admin GET /api/v1/ext/wrap_probe/key
expect 200 "a third-party extension opens the same key (one login): the same id" ".rc == 0 and .id == \"$KEYID\""
api POST "/api/v1/ext/wrap_probe/wrap?context=a" "hello" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/octet-stream'
expect 200 "wrapkey_wrap" '.rc == 0 and (.hex | length) == 2 * (10 + 97 + 12 + 5 + 16)'
BLOB=$(jget .hex)
api POST "/api/v1/ext/wrap_probe/unwrap?context=a" "$BLOB" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain'
expect 200 "wrapkey_unwrap in the token gives it back" '.rc == 0 and .hex == "68656c6c6f"'
api POST "/api/v1/ext/wrap_probe/unwrap?context=b" "$BLOB" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain'
expect 200 "another context: ATT_EXT_INVALID" '.rc == -3 and .hex == ""'
# the tag's last byte changed (to 00, or to 01 when it already is 00)
case $BLOB in *00) ALTERED=${BLOB%??}01 ;; *) ALTERED=${BLOB%??}00 ;; esac
api POST "/api/v1/ext/wrap_probe/unwrap?context=a" "$ALTERED" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain'
expect 200 "an altered blob: ATT_EXT_INVALID" '.rc == -3'
SID=$(sql "SELECT id FROM extension_pulumi_state_stacks WHERE stack = 'hsm'")
PHEX=$(printf '%s' "${ROW#hsm1:*:}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
api POST "/api/v1/ext/wrap_probe/unwrap?context=stack-key/$SID" "$PHEX" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain'
expect 200 "pulumi_state's stack key does not unwrap for another extension, same key and context" '.rc == -3'
stop_attestd

# ---- 3b. the blob format, against an implementation written from docs/extensions.md -------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI" ITL_EXTENSIONS="$EXT_DIR/ext-wrap.so" \
	WRAP_PROBE_KEY="pkcs11:token=itl-ca;object=interop?pin-value=$PIN"
INTEROP="python3 $SRCDIR/tests/helpers/wrapkey-interop.py"
api POST "/api/v1/ext/wrap_probe/wrap?context=doc" "hello" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/octet-stream'
expect 200 "interop: attestd wraps with the imported key" '.rc == 0'
check "interop: the documented format unwraps attestd's blob (label ext/wrap_probe/doc)" \
	test "$($INTEROP unwrap "$TMP/hsm/interop.pem" ext/wrap_probe/doc "$(jget .hex)")" = 68656c6c6f
check "interop: ... and not under another extension's label" \
	sh -c "! $INTEROP unwrap '$TMP/hsm/interop.pem' ext/pulumi_state/doc '$(jget .hex)' 2>/dev/null"
BLOB=$($INTEROP wrap "$TMP/hsm/interop.pub" ext/wrap_probe/doc 776f726c64)
api POST "/api/v1/ext/wrap_probe/unwrap?context=doc" "$BLOB" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: text/plain'
expect 200 "interop: a blob made from the documentation unwraps in the token" '.rc == 0 and .hex == "776f726c64"'
stop_attestd

# ---- 4. a file key cannot open the HSM-wrapped stack key ------------------------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$TMP/master.key"
dec hsm "$CT1"
expect 500 "a file master key does not unwrap the hsm1: stack key, and says which key does" \
	"(.message | test(\"wrapped by HSM key $KEYID\")) and .code == 500"
stop_attestd

# ---- 5. migration: file key -> HSM key ------------------------------------------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI" ITL_PULUMI_PREVIOUS_MASTER_KEY="$TMP/master.key"
check "log: the file-wrapped stack key was rewrapped at start-up" \
	grep -q "1 stack key(s) rewrapped with the master key HSM key $KEYID; 0 not unwrappable" "$DATA/attestd.log"
check "the migrated row is an hsm1: blob now" sh -c "case '$(row mig)' in hsm1:$KEYID:*) true ;; *) false ;; esac"
check "the HSM stack's row is untouched" test "$(row hsm)" = "$ROW"
check "audit: the rewrap" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'pulumi.secrets.rewrap'")" = 1
dec mig "$CT_FILE"
expect 200 "migration: the old ciphertext decrypts" '.plaintext == "czNjcjN0"'
sql "UPDATE extension_pulumi_state_stacks SET secrets_key = '$ROWFILE' WHERE stack = 'mig'" >/dev/null
dec mig "$CT_FILE"
expect 200 "a file-wrapped key met after start-up (another replica) decrypts" '.plaintext == "czNjcjN0"'
check "... and is rewrapped on use" sh -c "case '$(row mig)' in hsm1:$KEYID:*) true ;; *) false ;; esac"
check "... audited" test "$(sql "SELECT COUNT(*) FROM audit_log WHERE action = 'pulumi.secrets.rewrap'")" = 2
stop_attestd
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI"
dec mig "$CT_FILE"
expect 200 "migration: without the file key any more, the old ciphertext still decrypts" '.plaintext == "czNjcjN0"'
admin GET /api/v1/audit/verify
expect 200 "the audit chain verifies" '.valid == true'
stop_attestd

# ---- 6. the CA in the token: its 'attestation-pulumi-wrap' is the default -------------
CAURI="pkcs11:token=itl-ca;object=enrollment-ca?pin-value=$PIN"
# shellcheck disable=SC2086
st $HSMENV ITL_ENROLLMENT_CA_KEY="$CAURI"
check "default: the CA token's wrapping key is used" grep -q "wrapped by the master key: HSM key $KEYID" "$DATA/attestd.log"
dec hsm "$CT1"
expect 200 "default: the stack's ciphertext decrypts" '.plaintext == "czNjcjN0"'
check "default: the CA still signs (its session survived the wrapping key's)" \
	sh -c "test -s '$DATA/ca/enrollment-ca.crt' && openssl verify -CAfile '$DATA/ca/enrollment-ca.crt' '$DATA/ca/enrollment-ca.crt' >/dev/null 2>&1"
api GET "/api/v1/ca/crl?format=pem"
expect 200 "default: a CRL signed in the token after the wrapping key was opened"
check "default: the PIN is not logged" nopin
stop_attestd
# shellcheck disable=SC2086
st $HSMENV ITL_ENROLLMENT_CA_KEY="$CAURI" ITL_EXTENSIONS="$EXT_DIR/ext-wrap.so" \
	WRAP_PROBE_KEY="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-value=000000"
admin GET /api/v1/ext/wrap_probe/key
expect 200 "another extension's URI with a wrong PIN for the logged-in token: ATT_EXT_UNAVAILABLE, no PIN in err" \
	'.rc == -5 and (.err | test("login to token .itl-ca. failed")) and (.err | test("000000") | not)'
dec hsm "$CT1"
expect 200 "... and the right PIN keeps working" '.plaintext == "czNjcjN0"'
stop_attestd

# ---- 6b. a stack key copied onto another stack does not unwrap there ---------------------
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI"
api POST /api/stacks/acme/proj '{"stackName":"thief"}' -H "Authorization: token $TOK"
sql "UPDATE extension_pulumi_state_stacks SET secrets_key = '$ROW' WHERE stack = 'thief'" >/dev/null
enc thief czNjcjN0
expect 500 "the hsm stack's key copied to another stack: 500, bound to its stack" \
	"(.message | test(\"does not unwrap with HSM key $KEYID\")) and .code == 500"
stop_attestd

SHARED_DB_URL_KEEP=$SHARED_DB_URL
if [ "$ATTEST_DB" = postgresql ]; then new_db; SHARED_DB_URL=$DB_URL; else SHARED_DB_URL="sqlite:///$TMP/q.db"; fi
# shellcheck disable=SC2086
st $HSMENV ITL_ENROLLMENT_CA_KEY="pkcs11:token=other-ca;object=enrollment-ca?pin-value=$PIN"
check "a CA token without the wrapping key: a warning naming the command" \
	grep -q "holds no key 'attestation-pulumi-wrap' (docs/pulumi-backend.md: pkcs11-tool --keypairgen)" "$DATA/attestd.log"
api POST /api/stacks/acme/proj '{"stackName":"none"}' -H "Authorization: token $TOK"
enc none czNjcjN0
expect 503 "... and encrypt answers 503 saying why" '(.message | test("holds no key .attestation-pulumi-wrap.")) and .code == 503'
check "... nothing was stored" test -z "$(row none)"
stop_attestd
# shellcheck disable=SC2086
st $HSMENV
enc none czNjcjN0
expect 503 "no master key and a CA file: 503 as before" '(.message | test("no ITL_PULUMI_MASTER_KEY is configured")) and .code == 503'
stop_attestd
SHARED_DB_URL=$SHARED_DB_URL_KEEP

# ---- 7. start-up errors: clear, never the PIN ------------------------------------------
nostart() { # nostart DESC PATTERN ENV...
	desc=$1; pat=$2; shift 2
	out=$(env ITL_DB_URL="sqlite:///$TMP/n.db" ITL_CONFIG_CACHE_DIR="$TMP" ITL_ENROLLMENT_CA_DIR="$TMP/nca" \
		ITL_PKCS11_MODULE="$MODULE" "$@" timeout 20 "$ATTESTD" --listen 127.0.0.1:0 2>&1); rc=$?
	check "$desc" sh -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && printf '%s' \"\$1\" | grep -q \"\$2\" && ! printf '%s' \"\$1\" | grep -q '$PIN\|000000'" _ "$out" "$pat"
}
nostart "a wrong PIN stops start-up" "ITL_PULUMI_MASTER_KEY: login to token 'itl-ca' failed" \
	ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-value=000000"
nostart "a wrong PIN for the CA's token (already logged in by the CA) stops start-up" "ITL_PULUMI_MASTER_KEY: login to token 'itl-ca' failed" \
	ITL_ENROLLMENT_CA_DIR="$TMP/nca2" ITL_ENROLLMENT_CA_KEY="$CAURI" ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-value=000000"
nostart "a missing object stops start-up" "ITL_PULUMI_MASTER_KEY: no private key 'nosuch' in token 'itl-ca'" \
	ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=nosuch?pin-value=$PIN"
nostart "a missing token stops start-up" "ITL_PULUMI_MASTER_KEY: no PKCS#11 token labelled 'gone'" \
	ITL_PULUMI_MASTER_KEY="pkcs11:token=gone;object=attestation-pulumi-wrap?pin-value=$PIN"
nostart "a URI without token= and no CA token stops start-up" "ITL_PULUMI_MASTER_KEY: the URI names no token=" \
	ITL_PULUMI_MASTER_KEY="pkcs11:object=attestation-pulumi-wrap"
nostart "a missing module stops start-up" "ITL_PULUMI_MASTER_KEY: cannot load the PKCS#11 module '/nonexistent.so'" \
	ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-value=$PIN" ITL_PKCS11_MODULE=/nonexistent.so
nostart "a key the token will not derive with (no CKA_DERIVE) stops start-up" "ITL_PULUMI_MASTER_KEY: key 'noderive' in token 'itl-ca' does not derive" \
	ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=noderive?pin-value=$PIN"
nostart "a previous key without a current one stops start-up" "there is no ITL_PULUMI_MASTER_KEY to rewrap with" \
	ITL_PULUMI_PREVIOUS_MASTER_KEY="$TMP/master.key"
out=$(env ITL_DB_URL="sqlite:///$TMP/n.db" ITL_PULUMI_MASTER_KEY="$URI" ITL_PULUMI_PREVIOUS_MASTER_KEY="$URI" "$ATTESTD" --check-config 2>&1)
check "--check-config shows the master keys as (set), never the URI's PIN" \
	sh -c "printf '%s' \"\$1\" | grep -q '^ITL_PULUMI_MASTER_KEY=(set)$' && printf '%s' \"\$1\" | grep -q '^ITL_PULUMI_PREVIOUS_MASTER_KEY=(set)$' && ! printf '%s' \"\$1\" | grep -q $PIN" _ "$out"
echo "$PIN" > "$TMP/pin"
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="pkcs11:token=itl-ca;object=attestation-pulumi-wrap?pin-source=file:$TMP/pin&module-path=$MODULE"
dec hsm "$CT1"
expect 200 "pin-source=file: and module-path= in the URI" '.plaintext == "czNjcjN0"'
mv "$TMP/hsm/tokens" "$TMP/hsm/removed"	# the token goes away under a running attestd
dec hsm "$CT1"
expect 503 "the token removed: decrypt answers 503 saying so" '(.message | test("the HSM holding the master key did not answer")) and .code == 503'
enc hsm czNjcjN0
expect 503 "... and so does encrypt (the stack key is unwrapped first)" '.code == 503'
stop_attestd
mv "$TMP/hsm/removed" "$TMP/hsm/tokens"
# shellcheck disable=SC2086
st $HSMENV ITL_PULUMI_MASTER_KEY="$URI"
dec hsm "$CT1"
expect 200 "the token back and attestd restarted: it decrypts again" '.plaintext == "czNjcjN0"'
stop_attestd
done_testing
