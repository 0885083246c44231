#!/bin/sh
# Hardening at the edges (issue 19): no input makes a 5xx, identifiers
# have their documented shape, HTTP framing is strict, hostile bytes are
# refused on input and escaped on output.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
make_ek a rsa
A63=$(printf 'a%.0s' $(seq 63))
A31=$(printf 'a%.0s' $(seq 31))

# ---- hole 11: truncating a client's key must not split a UTF-8 character ----
api POST /api/v1/register "{\"${A63}é\":1}"
expect 422 "unknown field of 63 bytes + a 2-byte character: 422, not 500" '.detail | endswith(": unknown field")'
api POST /api/v1/register "{\"${A63}€€\":1}"
expect 422 "unknown field cut inside a 3-byte character: 422"
# a TPMS_ATTEST that parses (quote, nothing selected): the values are read next
Q=$(printf 'ff54434780180000000000000000000000000000000000000000000000000000000000000000000000' | xxd -r -p | base64 -w0)
api GET /api/v1/attest/challenge
NID=$(jget .nonce_id)
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$Q\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{\"${A31}é\":1}")"
expect 422 "non-string pcr_values under a key split at 32 bytes: 422" '.detail | startswith("pcr_values:")'
api POST /api/v1/attest "$(node_body ",\"nonce_id\":\"$NID\",\"pcr_quote\":\"$Q\",\"pcr_signature\":\"AAAA\",\"pcr_values\":{\"${A31}é\":\"00\"}")"
expect 422 "bad pcr_values key split at 32 bytes: 422" '.detail | startswith("pcr_values:")'
admin GET /api/v1/machines/%ff
expect 404 "%ff in an operator path id: 404, not 500"
admin POST /api/v1/machines/%ff%fe/lock '{"reason":"x"}'
expect 404 "%ff%fe in a lock path id: 404"
api POST /api/v1/machines/%ff/ak-activate '{}'
case $STATUS in 4??) pass "%ff in the unauthenticated ak-activate id: $STATUS" ;; *) fail "ak-activate %ff: 4xx" ;; esac
admin GET /api/v1/pcr-policies/%c3
expect 404 "half a character as a role: 404"

# ---- hole 18: identifiers taken from a client have their documented shape ----
before=$(counts)
for id in .. . -x ../etc "a/b" "$(printf 'a%.0s' $(seq 65))"; do
	admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"machine_id\":\"$id\"}"
	expect 422 "import machine_id '$id' refused" '.detail | startswith("machine_id:")'
done
check "refused imports wrote nothing" test "$(counts)" = "$before"
for aid in ../../etc "$(printf 'a%.0s' $(seq 31))" "$(printf 'g%.0s' $(seq 32))"; do
	api POST /api/v1/machines/00000000-0000-4000-8000-000000000000/ak-activate/complete "{\"activation_id\":\"$aid\",\"secret\":\"AAAA\"}"
	expect 422 "activation_id '$aid' refused for its shape" '.detail | test("32 hex")'
done
admin GET /api/v1/machines/..
case $STATUS in 404|400) pass "'..' as a path id: $STATUS" ;; *) fail "'..' as a path id" ;; esac

# ---- hole 9: control characters refused on input, escaped on output ----
make_ek t9 rsa
before=$(counts)
api POST /api/v1/register "$(node_body ',"hw_product":"R650\u001b]52;c;ZXZpbA==\u0007"')"
expect 422 "ESC]52 (clipboard write) in hw_product: 422" '.detail == "hw_product: must not contain control characters"'
api POST /api/v1/register "$(node_body ',"hw_serial":"\u001b[2J"')"
expect 422 "ESC[2J in hw_serial: 422" '.detail | startswith("hw_serial:")'
api POST /api/v1/register "$(node_body ',"hw_uuid":"a\u009b2J"')"
expect 422 "C1 CSI in hw_uuid: 422" '.detail | startswith("hw_uuid:")'
api POST /api/v1/register "$(node_body ',"hw_uuid":"a\u007f"')"
expect 422 "DEL in hw_uuid: 422" '.detail | startswith("hw_uuid:")'
admin POST /api/v1/machines/import "{\"ek_fingerprint\":\"$EK_FP\",\"hw_product\":\"x\\ny\"}"
expect 422 "newline in an imported hw_product: 422" '.detail | startswith("hw_product:")'
check "refused hardware fields wrote nothing" test "$(counts)" = "$before"
api POST /api/v1/register "$(node_body ',"hw_product":"PowerEdge R650 — Ü"')"
expect 200 "printable non-ASCII text is still accepted"
T9=$(jget .machine_id)
# a row written before this check existed (or by hand) is still shown safely
ESC=$(printf '\033')
sql "UPDATE machines SET hw_product = 'R650${ESC}]52;c;ZXZpbA==$(printf '\007')', hw_serial = '${ESC}[2J' WHERE machine_id = '$T9'"
ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN HOME=$TMP "$ATTESTATION_CLI" machine get "$T9" > "$TMP/get.out" 2>&1
check "CLI machine get prints no raw ESC or BEL" sh -c "! grep -q \"\$(printf '[\\033\\007]')\" \"\$1\"" _ "$TMP/get.out"
check "CLI machine get shows them escaped" grep -q 'R650\\x1b\]52;c;ZXZpbA==\\x07' "$TMP/get.out"
ATTESTATION_API_URL=$BASE ATTESTATION_TOKEN=$ADMIN HOME=$TMP "$ATTESTATION_CLI" machine list > "$TMP/list.out" 2>&1
check "CLI machine list prints no raw ESC" sh -c "! grep -q \"\$(printf '\\033')\" \"\$1\"" _ "$TMP/list.out"
stop_attestd
start_attestd BREAK_GLASS_TOKEN=glass
api GET "/api/v1/machines/x%1b%5d52%3bc%3bZXZpbA%3d%3d%07" "" -H "X-Break-Glass: glass"
check "text log: a path with ESC/BEL is logged escaped" grep -q 'Break-glass credential used for GET /api/v1/machines/x\\x1b\]52;c;ZXZpbA==\\x07' "$DATA/attestd.log"
check "text log: no raw ESC" sh -c "! grep -q \"\$(printf '\\033')\" \"\$1\"" _ "$DATA/attestd.log"
stop_attestd
start_attestd BREAK_GLASS_TOKEN=glass ITL_LOG_FORMAT=json
api GET "/api/v1/machines/x%1b%c2%9b%ff" "" -H "X-Break-Glass: glass"
check "JSON log: every line is JSON, C1 escaped" sh -c "jq -e . \"\$1\" >/dev/null && grep -q 'x\\\\u001b\\\\u009b?' \"\$1\"" _ "$DATA/attestd.log"
stop_attestd
start_attestd

# ---- hole 16: the CLI reads a .env file ----
isarray() { jq -e 'type == "array"' "$1" >/dev/null; }
mkdir -p "$TMP/envdir"
cat > "$TMP/envdir/.env" <<EOT
# seed 002: "Create a .env file or export environment variables"
export ATTESTATION_API_URL=$BASE
ATTESTATION_TOKEN="$ADMIN"
BROWSER=/bin/false
EOT
(cd "$TMP/envdir" && env -u ATTESTATION_API_URL -u ATTESTATION_TOKEN HOME="$TMP" "$ATTESTATION_CLI" machine list -o json) > "$TMP/env.out" 2>"$TMP/env.err"
check "CLI takes ATTESTATION_API_URL and ATTESTATION_TOKEN from ./.env" isarray "$TMP/env.out"
(cd "$TMP/envdir" && env ATTESTATION_API_URL=http://127.0.0.1:9 -u ATTESTATION_TOKEN HOME="$TMP" "$ATTESTATION_CLI" machine list -o json) > /dev/null 2>&1
check "an exported variable wins over .env" test $? -ne 0
cp "$TMP/envdir/.env" "$TMP/other.env"
(cd "$TMP" && env -u ATTESTATION_API_URL -u ATTESTATION_TOKEN ATTESTATION_ENV_FILE="$TMP/other.env" HOME="$TMP" "$ATTESTATION_CLI" machine list -o json) > "$TMP/env2.out" 2>&1
check "ATTESTATION_ENV_FILE names another file" isarray "$TMP/env2.out"
(cd "$TMP" && env ATTESTATION_ENV_FILE="$TMP/missing.env" "$ATTESTATION_CLI" machine list) > /dev/null 2>&1
check "a named .env that cannot be read: exit 2" test $? -eq 2

# ---- hole 18: HTTP framing ----
H=${BASE#http://}
raw() { printf "$1" | "$HTTP_FUZZ" raw "$H" "${2:-3}"; }
check "two different Content-Length headers: 400" test "$(raw 'POST /api/v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}')" = 400
check "Content-Length with Transfer-Encoding: 400" test "$(raw 'POST /api/v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}')" = 400
t0=$(date +%s)
st=$(raw 'POST /api/v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n{"a":' 5)
check "chunk size FFFF...: refused at once ($st in $(( $(date +%s) - t0 )) s), not waited for" test "$st" = 411
check "two equal Content-Length headers are one length" test "$(raw 'POST /api/v1/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')" = 422
stop_attestd

# ---- hole 14: X-Forwarded-Proto only from ITL_TRUSTED_PROXIES ----
start_attestd ITL_HIGH_ASSURANCE=true ITL_TRUSTED_PROXIES=192.0.2.10
check "high assurance without this client as a trusted proxy: start-up still works" test -n "$BASE"
api GET /api/v1/attest/challenge "" -H "X-Forwarded-Proto: https"
expect 403 "X-Forwarded-Proto: https from an untrusted client: 403" '.detail | test("ITL_TRUSTED_PROXIES")'
stop_attestd
start_attestd ITL_HIGH_ASSURANCE=true ITL_TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.0/8"
H=${BASE#http://}
api GET /api/v1/attest/challenge "" -H "X-Forwarded-Proto: https"
expect 200 "X-Forwarded-Proto: https from a trusted proxy (CIDR): accepted"
check "duplicate X-Forwarded-Proto: 400" test "$(raw 'GET /api/v1/attest/challenge HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n\r\n')" = 400
check "duplicate X-Forwarded-Proto, both https: 400" test "$(raw 'GET /api/v1/attest/challenge HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\n\r\n')" = 400
api GET /api/v1/attest/challenge "" -H "X-Forwarded-Proto: https, http"
expect 400 "a list in X-Forwarded-Proto: 400"
stop_attestd
out=$(ITL_TRUSTED_PROXIES=not-an-ip ITL_DB_URL="sqlite:///$TMP/x.db" ITL_ENROLLMENT_CA_DIR="$TMP/xca" "$ATTESTD" --listen 127.0.0.1:0 2>&1); rc=$?
check "an invalid ITL_TRUSTED_PROXIES entry stops start-up" sh -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'ITL_TRUSTED_PROXIES'" _ "$out"

# ---- hole 7: connection exhaustion ----
start_attestd ITL_CONNECTION_LIMIT_PER_CLIENT=20 ITL_HEADER_TIMEOUT_SECONDS=2
H=${BASE#http://}
mkfifo "$TMP/hold"
"$HTTP_FUZZ" hold "$H" 200 < "$TMP/hold" > "$TMP/hold.out" &
HOLD=$!
exec 7>"$TMP/hold"
i=0; while [ ! -s "$TMP/hold.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "one client holds at most ITL_CONNECTION_LIMIT_PER_CLIENT connections ($(cat "$TMP/hold.out") of 200)" test "$(cat "$TMP/hold.out")" -le 20
st=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --interface 127.0.0.2 --max-time 5 "$BASE/healthz")
check "another client is served meanwhile ($st)" awk -v h="$st" 'BEGIN { split(h, a, " "); exit !(a[1] == 200 && a[2] < 1) }'
exec 7>&-
wait "$HOLD"
d=$("$HTTP_FUZZ" drip "$H" 8)
check "headers dripped one byte every 0.5 s are cut off by the header deadline (closed after $d s)" \
	awk -v d="$d" 'BEGIN { exit !(d != "open" && d + 0 >= 1.5 && d + 0 < 5) }'
api GET /healthz
expect 200 "a normal request afterwards"
done_testing
