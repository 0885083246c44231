#!/bin/sh
# Operator authentication: 401 / 403 / 503, break-glass, constant answers.
. "$SRCDIR/tests/lib/test-lib.sh"

# nothing configured: operator endpoints are 503
start_attestd ITL_ADMIN_TOKEN=
api GET /api/v1/machines
expect 503 "no operator auth configured: 503" '.detail | test("not configured")'
api GET /api/v1/machines "" -H "Authorization: Bearer anything"
expect 503 "no operator auth configured, bearer given: still 503"
api GET /api/v1/machines "" -H "X-Break-Glass: anything"
expect 503 "no operator auth configured, X-Break-Glass given: 503, not 401" '.detail | test("not configured")'
api GET /api/v1/attest/challenge
expect 200 "machine endpoints still work without operator auth"
check "start-up warns that operator auth is missing" grep -q "No operator authentication configured" "$DATA/attestd.log"
stop_attestd

start_attestd BREAK_GLASS_TOKEN=glass-123
api GET /api/v1/machines
expect 401 "missing credential: 401" '.detail | startswith("Operator authentication required")'
check "401 carries WWW-Authenticate" sh -c "printf '%s' \"\$1\" | grep -qi '^WWW-Authenticate: Bearer realm=\"attestation\"'" _ "$HEADERS"
api GET /api/v1/machines "" -H "Authorization: Bearer wrong"
expect 401 "wrong admin token: 401" '.detail == "Invalid or expired bearer token"'
check "invalid_token error in WWW-Authenticate" sh -c "printf '%s' \"\$1\" | grep -qi 'error=\"invalid_token\"'" _ "$HEADERS"
api GET /api/v1/machines "" -H "Authorization: Basic Zm9vOmJhcg=="
expect 401 "non-Bearer scheme: 401"
api GET /api/v1/machines "" -H "Authorization: Bearer $ADMIN"
expect 200 "admin token: 200"
api GET /api/v1/machines "" -H "Authorization: bearer $ADMIN"
expect 200 "Bearer scheme is case-insensitive"
api GET /api/v1/machines "" -H "Authorization: Bearer ${ADMIN}x"
expect 401 "admin token with a suffix: 401"
api GET /api/v1/machines "" -H "X-Break-Glass: glass-123"
expect 200 "break-glass header: 200"
api GET /api/v1/machines "" -H "X-Break-Glass: glass-12"
expect 401 "wrong break-glass token: 401" '.detail == "Invalid break-glass token"'

make_ek a rsa
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
api POST "/api/v1/machines/$MID/lock" '{"reason":"Emergency isolation — suspected compromise"}' -H "X-Break-Glass: glass-123"
expect 409 "break-glass can act (pending machine cannot be locked)"
api POST "/api/v1/machines/$MID/approve" '{"role":"worker-app"}' -H "X-Break-Glass: glass-123"
expect 200 "break-glass approve"
api POST "/api/v1/machines/$MID/lock" '{"reason":"Emergency isolation — suspected compromise"}' -H "X-Break-Glass: glass-123"
expect 200 "break-glass lock"
admin GET "/api/v1/audit?machine_id=$MID&action=lock"
expect 200 "break-glass actions are audited as BREAK_GLASS" '.[0].operator_cn == "BREAK_GLASS" and (.[0].detail | contains("Emergency isolation"))'
admin GET "/api/v1/audit?machine_id=$MID&action=approve"
expect 200 "admin-token actions are audited" '.[0].operator_cn == "BREAK_GLASS"'
check "break-glass use is logged as a warning" grep -q "WARNING attestd.http — Break-glass credential used for POST /api/v1/machines/$MID/lock" "$DATA/attestd.log"

# operator body caps are separate from (and larger than) the machine caps
big=$(head -c 70000 /dev/zero | tr '\0' a)
admin POST "/api/v1/machines/$MID/unlock" "{\"reason\":\"$big\"}"
expect 422 "operator body over the unauthenticated cap reaches validation" '.detail == "reason: longer than 1024 characters"'
huge=$(head -c 1100000 /dev/zero | tr '\0' a)
printf '{"reason":"%s"}' "$huge" > "$TMP/huge.json"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' --data-binary @"$TMP/huge.json" "$BASE/api/v1/machines/$MID/unlock")
check "operator body over ITL_MAX_BODY_BYTES: 413" test "$STATUS" = 413
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/huge.json" "$BASE/api/v1/attest")
check "chunked body (no Content-Length): 411 before a byte of it is read" test "$STATUS" = 411
admin GET "/api/v1/machines/$MID"
expect 200 "machine still locked after the rejected requests" '.status == "locked"'
stop_attestd

# an OIDC issuer configured but unreachable (no keys ever loaded): bearer JWTs get 503, never accepted
start_attestd ITL_OIDC_ISSUER=http://127.0.0.1:9/realms/itl
api GET /api/v1/machines "" -H "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
expect 503 "unverifiable bearer token (provider unreachable): 503" '.detail | startswith("OIDC provider unavailable")'
case $HEADERS in *Retry-After*) pass "503 carries Retry-After" ;; *) fail "Retry-After" "$HEADERS" ;; esac
api GET /api/v1/machines "" -H "Authorization: Bearer $ADMIN"
expect 200 "admin token still works next to OIDC"
done_testing
