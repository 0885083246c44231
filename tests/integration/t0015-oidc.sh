#!/bin/sh
# Operator identity with a real OIDC provider (glewlwyd on loopback):
# the service validating real and forged tokens, 401/403/503, key rotation
# picked up without restart, and the CLI's three login methods, refresh,
# logout with revocation, and dual-control approval by two operators.
. "$SRCDIR/tests/lib/test-lib.sh"
. "$SRCDIR/tests/lib/glewlwyd.sh"
: "${ATTESTATION_CLI:?}" "${JWTMINT:?}"
CLI=$ATTESTATION_CLI
if [ ! -x "$GLEW_BIN" ]; then echo "Bail out! glewlwyd is not installed (scripts/deps.sh installs it)"; exit 1; fi

CLIPORT=$(free_port)
glew_start "$CLIPORT"
AUD="https://attestation.test/"
OIDC_ENV="ITL_OIDC_ISSUER=$ISS ITL_OIDC_AUDIENCE=$AUD,attestation ITL_OIDC_ROLE_CLAIMS=/roles ITL_OIDC_JWKS_MIN_REFRESH_SECONDS=2"
# shellcheck disable=SC2086
start_attestd $OIDC_ENV BREAK_GLASS_TOKEN=glass ITL_DUAL_CONTROL_ROLES=controlplane

bearer() { printf 'Authorization: Bearer %s' "$1"; }
metric() { curl -s "$BASE/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# ---- the service with real tokens ---------------------------------------------
OP1=$(glew_token operator1 operator1-pass)
OP2=$(glew_token operator2 operator2-pass)
VIEW=$(glew_token viewer1 viewer1-pass)
check "glewlwyd issued three access tokens" test -n "$OP1" -a -n "$OP2" -a -n "$VIEW" -a "$OP1" != null
api GET /api/v1/machines "" -H "$(bearer "$OP1")"
expect 200 "operator1's token is accepted"
api GET /api/v1/machines "" -H "$(bearer "$VIEW")"
expect 403 "viewer1 (no operator role): 403" '.detail | test("viewer1 does not hold the operator role attestation-operator")'
case $HEADERS in *'error="insufficient_scope"'*) pass "403 carries WWW-Authenticate insufficient_scope" ;; *) fail "403 header" "$HEADERS" ;; esac
api GET /api/v1/auth/whoami "" -H "$(bearer "$VIEW")"
expect 200 "whoami answers a valid non-operator" '.identity == "viewer1" and .operator == false and .roles == ["attestation-viewer"]'
api GET /api/v1/auth/whoami "" -H "$(bearer "$OP1")"
expect 200 "whoami: operator1 via oidc" '.identity == "operator1" and .operator == true and .method == "oidc"'

# ---- forged and unsuitable tokens, minted with the provider's real key --------
KID=$(curl -s "$ISS/jwks" | jq -r '.keys[0].kid')
NOW=$(date +%s)
claims() { # extra jq assignments on a valid claim set
	jq -cn --arg iss "$ISS" --arg aud "$AUD" --argjson now "$NOW" \
		"{iss:\$iss, aud:\$aud, sub:\"s-forge\", preferred_username:\"operator1\", roles:\"attestation-operator\",
		  type:\"access_token\", iat:\$now, nbf:\$now, exp:(\$now + 300)} | $1"
}
mint() { "$JWTMINT" sign --key "$GW/rsa.key" --alg RS256 --kid "$KID" --typ at+jwt --claims "$1"; }
T=$(mint "$(claims .)")
api GET /api/v1/machines "" -H "$(bearer "$T")"
expect 200 "control: a well-formed token signed by the provider's key is accepted"
reject() { # DESC TOKEN REASON-REGEX
	api GET /api/v1/machines "" -H "$(bearer "$2")"
	expect 401 "$1" ".detail | test(\"$3\")"
}
reject "expired token: 401" "$(mint "$(claims '.exp = $now - 3600 | .iat = $now - 4000 | .nbf = $now - 4000')")" "expired"
reject "wrong audience: 401" "$(mint "$(claims '.aud = "https://other.test/"')")" "audience"
reject "wrong issuer: 401" "$(mint "$(claims '.iss = "http://127.0.0.1:1/api/oidc"')")" "issuer"
reject "not yet valid (nbf +1h): 401" "$(mint "$(claims '.nbf = $now + 3600')")" "not yet valid"
reject "unsigned (alg none): 401" "$("$JWTMINT" sign --alg none --kid "$KID" --claims "$(claims .)")" "unsigned|none"
reject "HS256 keyed with the provider's public key: 401" \
	"$("$JWTMINT" sign --alg HS256 --kid "$KID" --hs-secret-file "$GW/rsa.pub" --claims "$(claims .)")" "HS256 not allowed"
openssl genrsa -out "$TMP/foreign.key" 2048 2>/dev/null
reject "foreign key with the provider's kid: 401" \
	"$("$JWTMINT" sign --key "$TMP/foreign.key" --alg RS256 --kid "$KID" --typ at+jwt --claims "$(claims .)")" "bad signature"
reject "an ID token (typ ID) used as access token: 401" "$(mint "$(claims '.typ = "ID"')")" "not an access token"
reject "identity SYSTEM is reserved: 401" "$(mint "$(claims '.preferred_username = "SYSTEM"')")" "reserved"
reject "garbage bearer: 401" "not.a.jwt" "malformed|JWS"
T=$(mint "$(claims 'del(.roles)')")
api GET /api/v1/machines "" -H "$(bearer "$T")"
expect 403 "a valid token without any role: 403"
# elapsed time on the monotonic clock (the service rate-limits on it too)
mono_ns() { awk '{ printf "%.0f", $1 * 1000000000 }' /proc/uptime; }
F1=$(metric 'attestd_oidc_jwks_fetches_total{result="ok"}')
T1=$("$JWTMINT" sign --key "$TMP/foreign.key" --alg RS256 --kid unknown-1 --typ at+jwt --claims "$(claims .)")
T2=$("$JWTMINT" sign --key "$TMP/foreign.key" --alg RS256 --kid unknown-2 --typ at+jwt --claims "$(claims .)")
sleep 2
B0=$(mono_ns)
api GET /api/v1/machines "" -H "$(bearer "$T1")"
expect 401 "unknown kid: 401 after a forced JWKS refetch" '.detail | test("unknown signing key")'
for i in 1 2 3 4 5; do api GET /api/v1/machines "" -H "$(bearer "$T2")"; done
B1=$(mono_ns)
F2=$(metric 'attestd_oidc_jwks_fetches_total{result="ok"}')
ALLOWED=$(( 1 + (B1 - B0) / 2000000000 ))
check "six requests with unknown kids: $((F2 - F1)) JWKS fetch(es), at most one per 2 s interval ($ALLOWED)" \
	test "$((F2 - F1))" -ge 1 -a "$((F2 - F1))" -le "$ALLOWED"
# twenty concurrent requests with unknown kids after the interval: one fetch per
# interval (single flight + rate limit); tokens are minted first so the burst is short
for i in $(seq 1 20); do
	"$JWTMINT" sign --key "$TMP/foreign.key" --alg RS256 --kid "burst-$i" --typ at+jwt --claims "$(claims .)" > "$TMP/burst-$i.jwt"
done
sleep 2
PIDS_C=""
B0=$(mono_ns)
for i in $(seq 1 20); do
	curl -s -o /dev/null -H "$(bearer "$(cat "$TMP/burst-$i.jwt")")" "$BASE/api/v1/machines" &
	PIDS_C="$PIDS_C $!"
done
# shellcheck disable=SC2086
wait $PIDS_C
B1=$(mono_ns)
F3=$(metric 'attestd_oidc_jwks_fetches_total{result="ok"}')
ALLOWED=$(( 1 + (B1 - B0) / 2000000000 ))	# one per 2 s interval the burst spanned
check "a burst of unknown kids from 20 clients: $((F3 - F2)) fetch(es), at most $ALLOWED" test "$((F3 - F2))" -ge 1 -a "$((F3 - F2))" -le "$ALLOWED"

# ---- dual-control votes are keyed on issuer + sub, not the username ------------
make_ek dc rsa
api POST /api/v1/register "$(node_body)"
MDC=$(jget .machine_id)
TA=$(mint "$(claims '.sub = "s-same" | .preferred_username = "alice"')")
TB=$(mint "$(claims '.sub = "s-same" | .preferred_username = "alice2"')")
api POST "/api/v1/machines/$MDC/approve" '{"role":"controlplane"}' -H "$(bearer "$TA")"
expect 202 "a first vote (alice, sub s-same)" '.approvals_received == 1'
api POST "/api/v1/machines/$MDC/approve" '{"role":"controlplane"}' -H "$(bearer "$TB")"
expect 409 "the same sub under another username is the same voter: 409" '.detail | test("already voted")'
admin GET "/api/v1/machines/$MDC"
expect 200 "no quorum from one subject with two usernames" '.status == "pending_approval"'
admin GET "/api/v1/machines/$MDC/approvals"
expect 200 "the vote shows the username with issuer and subject" ".[0].operator_cn == \"alice (oidc:$ISS#s-same)\""
reject "identity 'SYSTEM ' (trailing space) is reserved: 401" "$(mint "$(claims '.preferred_username = "SYSTEM "')")" "reserved"
reject "identity 'Machine' is reserved: 401" "$(mint "$(claims '.preferred_username = "Machine"')")" "reserved"

# ---- key rotation at the provider, picked up without restart ------------------
glew_rotate
KID2=$(curl -s "$ISS/jwks" | jq -r '.keys[0].kid')
check "the provider now signs with a new kid" test -n "$KID2" -a "$KID2" != "$KID"
sleep 2
NEW=$(glew_token operator1 operator1-pass)
api GET /api/v1/machines "" -H "$(bearer "$NEW")"
expect 200 "a token signed with the rotated key is accepted without restarting attestd"
api GET /api/v1/machines "" -H "$(bearer "$OP1")"
expect 401 "a token of the retired key is refused once the JWKS no longer has it"
OP1=$NEW
OP2=$(glew_token operator2 operator2-pass)

# ---- the CLI: password, browser (PKCE), device --------------------------------
export HOME="$TMP/home" ATTESTATION_API_URL="$BASE" ATTESTATION_OIDC_ISSUER="$ISS"
mkdir -p "$HOME"
unset ATTESTATION_TOKEN ATTESTATION_BREAK_GLASS_TOKEN BROWSER DISPLAY WAYLAND_DISPLAY 2>/dev/null || true
run() { # [--env "A=b C=d"] args...
	if [ "$1" = "--env" ]; then shift; e=$1; shift; else e=""; fi
	# shellcheck disable=SC2086
	env $e "$CLI" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	RC=$?
	OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
}
rc_is() { if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2" "exit $RC, want $1" "stdout: $OUT" "stderr: $ERR"; fi; }
CI="KEYCLOAK_CLIENT_ID=attestation-ci KEYCLOAK_CLIENT_SECRET=$CI_SECRET ATTESTATION_OIDC_SCOPE=attestation"

echo operator1-pass | env $CI "$CLI" auth login --method password -u operator1 --password-stdin >"$TMP/out" 2>"$TMP/err"
RC=$?; ERR=$(cat "$TMP/err")
rc_is 0 "auth login --method password (confidential client)"
case $ERR in *"Logged in as operator1"*) pass "password login names the user" ;; *) fail "login msg" "$ERR" ;; esac
CF=$(ls "$HOME/.itl/attestation-cache/"*.json | head -1)
check "token cache file is 0600 in a 0700 directory" test "$(stat -c %a "$CF"):$(stat -c %a "$HOME/.itl/attestation-cache")" = "600:700"
run --env "$CI" machine list --output json
rc_is 0 "machine list with the cached token"
run --env "$CI" auth whoami --output json
printf '%s' "$OUT" | jq -e '.username == "operator1" and .service_identity == "operator1" and .service_operator == true and .roles == ["attestation-operator"] and .method == "password"' >/dev/null &&
	pass "auth whoami: local claims and the service's verdict" || fail "whoami" "$OUT" "$ERR"
echo wrong | env $CI "$CLI" auth login --method password -u operator1 --password-stdin >/dev/null 2>"$TMP/err"
RC=$?; ERR=$(cat "$TMP/err")
rc_is 3 "a wrong password: exit 3"

# browser: the fake browser logs in as operator2 and follows the redirect
run --env "BROWSER=$GLEW_BROWSER FAKE_BROWSER_USER=operator2 ATTESTATION_OIDC_RESOURCE=$AUD" \
	auth login --listen-port "$CLIPORT" --scope "openid attestation" --timeout 30
rc_is 0 "auth login (browser, PKCE on the loopback listener)"
case $(cat "$GW/browser-url") in *code_challenge_method=S256*state=*|*state=*code_challenge_method=S256*) pass "the authorization URL carries S256 PKCE and state" ;; *) fail "auth url" "$(cat "$GW/browser-url")" ;; esac
grep -q "You are logged in" "$GW/callback.html" && pass "the browser sees a success page" || fail "callback page" "$(cat "$GW/callback.html")"
run auth whoami --output json
printf '%s' "$OUT" | jq -e '.username == "operator2" and .method == "browser" and .refresh_token == true and .service_operator == true' >/dev/null &&
	pass "browser login cached operator2 with a refresh token" || fail "browser whoami" "$OUT" "$ERR"
BCF=$(ls -t "$HOME/.itl/attestation-cache/"*.json | head -1)
IDT=$(jq -r .id_token "$BCF")
api GET /api/v1/machines "" -H "$(bearer "$IDT")"
expect 401 "the real ID token from the code flow is refused as a bearer token" '.detail | test("not an access token|audience")'

# a callback with a forged state stores nothing
cp "$BCF" "$TMP/before.json"
run --env "BROWSER=$GLEW_BROWSER FAKE_BROWSER_TAMPER=state ATTESTATION_OIDC_RESOURCE=$AUD" \
	auth login --listen-port "$CLIPORT" --scope "openid attestation" --timeout 30
rc_is 3 "a callback with a forged state: exit 3"
case $ERR in *"state does not match"*) pass "forged state is named" ;; *) fail "state msg" "$ERR" ;; esac
check "forged-state login left the cache untouched" cmp -s "$BCF" "$TMP/before.json"

# --no-browser prints the URL; a person (the fake browser) opens it by hand
env "$CLI" auth login --no-browser --listen-port "$CLIPORT" --scope "openid attestation" --resource "$AUD" --timeout 30 \
	>"$TMP/nb.out" 2>"$TMP/nb.err" </dev/null &
NBPID=$!
i=0; until grep -q "^  http" "$TMP/nb.err" || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
URL=$(sed -n 's/^  \(http.*\)$/\1/p' "$TMP/nb.err" | head -1)
FAKE_BROWSER_USER=operator1 "$GLEW_BROWSER" "$URL"
wait "$NBPID"; RC=$?
ERR=$(cat "$TMP/nb.err")
rc_is 0 "--no-browser: the printed URL completes the login"

# device flow approved while the CLI polls; a zero interval provokes slow_down
env ATTESTATION_DEVICE_INTERVAL=0 ATTESTATION_OIDC_RESOURCE="$AUD" "$CLI" auth login --method device \
	--scope "openid attestation" --timeout 120 >"$TMP/dev.out" 2>"$TMP/dev.err" </dev/null &
DPID=$!
i=0; until grep -q "^  [A-Z0-9]*-[A-Z0-9]*$" "$TMP/dev.err" || [ $i -gt 50 ]; do sleep 0.1; i=$((i + 1)); done
UC=$(sed -n 's/^  \([A-Z0-9]*-[A-Z0-9]*\)$/\1/p' "$TMP/dev.err" | head -1)
check "device login shows a user code ($UC)" test -n "$UC"
sleep 1
LOC=$(glew_approve_device operator1 operator1-pass "$UC")
case $LOC in *deviceComplete*) pass "operator1 approved the device code in the provider" ;; *) fail "device approval" "$LOC" ;; esac
wait "$DPID"; RC=$?
ERR=$(cat "$TMP/dev.err")
rc_is 0 "auth login --method device completes after approval"
case $ERR in *"slow down; polling every 5 s"*) pass "slow_down adds 5 s to the interval" ;; *) fail "slow_down" "$ERR" ;; esac
run auth whoami --output json
printf '%s' "$OUT" | jq -e '.username == "operator1" and .method == "device"' >/dev/null && pass "device login cached operator1" || fail "device whoami" "$OUT"

# refresh: an access token past its expiry is refreshed transparently
AT1=$(jq -r .access_token "$BCF")
jq '.expires_at = 1' "$BCF" > "$BCF.new" && cat "$BCF.new" > "$BCF" && rm -f "$BCF.new"
run machine list
rc_is 0 "an expired access token is refreshed automatically"
AT2=$(jq -r .access_token "$BCF")
check "the cache holds a new access token after refresh" test "$AT1" != "$AT2"
check "the cache keeps the refresh token (glewlwyd rolls it)" test "$(jq -r .refresh_token "$BCF")" != null

# logout revokes the refresh token at the provider
RT=$(jq -r .refresh_token "$BCF")
run auth logout
rc_is 0 "auth logout"
case $ERR in *"Refresh token revoked"*) pass "logout reports the revocation" ;; *) fail "logout revoke" "$ERR" ;; esac
check "the cache file is gone" test ! -e "$BCF"
code=$(curl -s -o /dev/null -w '%{http_code}' -d grant_type=refresh_token -d "refresh_token=$RT" -d client_id=attestation-cli "$ISS/token")
check "the revoked refresh token no longer works at the provider (HTTP $code)" test "$code" != 200
run machine list
rc_is 3 "after logout: not logged in (exit 3)"

# ---- dual control with two operators and one non-operator, via the CLI ---------
as() { # USER: password login into a per-user cache
	echo "$1-pass" | env $CI ATTESTATION_CACHE_DIR="$TMP/cache-$1" "$CLI" auth login --method password -u "$1" --password-stdin >/dev/null 2>&1
}
as operator1; as operator2; as viewer1
by() { u=$1; shift; run --env "$CI ATTESTATION_CACHE_DIR=$TMP/cache-$u" "$@"; }
make_ek cp1 ec
api POST /api/v1/register "$(node_body)"
MID=$(jget .machine_id)
by viewer1 machine approve "$MID" --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24
rc_is 4 "viewer1 cannot vote: exit 4 (403)"
by operator1 machine approve "$MID" --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24 --reason "rack A"
rc_is 0 "operator1 votes"
case $OUT in *"1 of 2"*) pass "first vote: 1 of 2" ;; *) fail "vote 1" "$OUT" ;; esac
by operator1 machine approve "$MID" --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24
rc_is 6 "operator1 voting again: exit 6 (409)"
by operator2 machine approve "$MID" --role controlplane --hostname cp-01 --assigned-ip 10.0.0.1/24 --output json
rc_is 0 "operator2 completes the quorum"
printf '%s' "$OUT" | jq -e '.status == "registered"' >/dev/null && pass "machine registered after two operators" || fail "quorum" "$OUT"
by operator1 machine approvals "$MID" --output json
printf '%s' "$OUT" | jq -e --arg iss "$ISS" '[.[].operator_cn | sub(" \\(oidc:.*\\)$"; "")] == ["operator2","operator1"] and all(.[].operator_cn; contains(" (oidc:" + $iss + "#"))' >/dev/null &&
	pass "votes carry the OIDC identities (username, issuer and subject)" || fail "vote identities" "$OUT"
by operator2 audit list --machine-id "$MID" --output json
printf '%s' "$OUT" | jq -e '[.entries[] | select(.action == "approve_vote") | .operator_cn] == ["operator2","operator1"] and .entries[0].operator_cn == "operator2"' >/dev/null &&
	pass "audit entries name operator1 and operator2" || fail "audit identities" "$OUT"
by viewer1 auth whoami --output json
printf '%s' "$OUT" | jq -e '.username == "viewer1" and .service_operator == false' >/dev/null && pass "whoami tells viewer1 it is not an operator" || fail "viewer whoami" "$OUT"
# a vote that expired does not count towards the quorum
make_ek cp2 ec
api POST /api/v1/register "$(node_body)"
M2=$(jget .machine_id)
by operator1 machine approve "$M2" --role controlplane --hostname cp-02
sql "UPDATE approval_votes SET expires_at = 1 WHERE machine_id = '$M2'"
by operator2 machine approve "$M2" --role controlplane --hostname cp-02
rc_is 0 "operator2 votes after operator1's vote expired"
case $OUT in *"1 of 2"*) pass "the expired vote did not count (1 of 2 again)" ;; *) fail "expiry" "$OUT" ;; esac

# ---- the provider goes away --------------------------------------------------
api GET /api/v1/machines "" -H "$(bearer "$OP2")"
expect 200 "before the outage: operator2 accepted"
kill "$GLEW_PID"; i=0; while kill -0 "$GLEW_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
api GET /api/v1/machines "" -H "$(bearer "$OP2")"
expect 200 "provider down: cached keys still verify tokens"
stop_attestd
# shellcheck disable=SC2086
start_attestd $OIDC_ENV BREAK_GLASS_TOKEN=glass
api GET /api/v1/machines "" -H "$(bearer "$OP2")"
expect 503 "restarted with the provider down and no keys: 503 for bearer tokens" '.detail | test("OIDC provider unavailable")'
api GET /api/v1/machines "" -H "X-Break-Glass: glass"
expect 200 "break-glass still works while the provider is down"
make_ek bg1 ec
api POST /api/v1/register "$(node_body)"
M3=$(jget .machine_id)
api POST "/api/v1/machines/$M3/approve" '{"role":"worker-app"}' -H "X-Break-Glass: glass"
expect 200 "break-glass approval while the provider is down"
api POST "/api/v1/machines/$M3/lock" '{"reason":"emergency isolation"}' -H "X-Break-Glass: glass"
expect 200 "break-glass lock while the provider is down"
api GET "/api/v1/audit?machine_id=$M3" "" -H "X-Break-Glass: glass"
expect 200 "break-glass use is audited as BREAK_GLASS" '[.[0].action, .[0].operator_cn, .[1].action, .[1].operator_cn] == ["lock","BREAK_GLASS","approve","BREAK_GLASS"]'
stop_attestd
# shellcheck disable=SC2086
start_attestd $OIDC_ENV ITL_OIDC_ENABLED=false
api GET /api/v1/machines "" -H "$(bearer "$OP2")"
expect 401 "ITL_OIDC_ENABLED=false: JWTs are not accepted"

done_testing
