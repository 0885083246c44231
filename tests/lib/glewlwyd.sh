# glewlwyd.sh - a real OIDC provider (glewlwyd 2.7, Debian 12) on loopback
# for integration tests (source after test-lib.sh).  Recipe:
# ../shared/reference/oidc.md §5.
#
# glew_start CLI_PORT: fresh SQLite DB, an RSA-2048 signing key, provider on
#   a random 127.0.0.1 port; issuer $ISS.  Provisions scope "attestation",
#   the public client attestation-cli (redirect http://127.0.0.1:CLI_PORT/callback),
#   the confidential client attestation-ci (secret $CI_SECRET), and users
#   operator1, operator2 (role attestation-operator), viewer1 (attestation-viewer).
# glew_token USER PASS: password grant via attestation-ci, scope "attestation"
#   (aud "attestation"); prints the access token.
# glew_rotate: a new signing key (new kid) replaces the old one.
# glew_approve_device USER PASS USER_CODE: approve a device login headlessly.
# $GLEW_BROWSER: a $BROWSER script that logs in as $FAKE_BROWSER_USER and
#   follows the redirect to the CLI's loopback listener.
# GLEW_WEBAPP=1 before glew_start: also serve glewlwyd's own login pages
#   (login.html, for tests that log in with a real browser).
# glew_public_client ID REDIRECT_URI: another public client (code + PKCE,
#   refresh), e.g. the web dashboard.

GLEW_BIN=${GLEW_BIN:-/usr/bin/glewlwyd}
CI_SECRET=ci-secret-$$

# free_port: a TCP port below the ephemeral range that no local socket uses
free_port() {
	while :; do
		fp=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom) % 10000 ))
		hex=$(printf '%04X' "$fp")
		if ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{ print $2 }' | grep -q ":$hex\$"; then
			echo "$fp"; return
		fi
	done
}

glew_api() { # METHOD PATH [JSON]: admin API call; fails the test run on non-200
	gcode=$(curl -s -o "$GW/last.json" -w '%{http_code}' -b "$GW/cj.txt" -X "$1" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "$GLEW/api$2")
	if [ "$gcode" != 200 ]; then
		echo "Bail out! glewlwyd $1 $2 -> $gcode $(head -c 300 "$GW/last.json")"; exit 1
	fi
}

glew_plugin_json() { # KEYFILE PUBFILE
	gkey=$(jq -Rs . < "$1"); gpub=$(jq -Rs . < "$2")
	cat <<EOF
{"module":"oidc","name":"oidc","display_name":"OIDC","enabled":true,"parameters":{
 "iss":"$ISS","jwt-type":"rsa","jwt-key-size":"256","key":$gkey,"cert":$gpub,
 "jwks-show":true,"access-token-duration":300,"refresh-token-duration":86400,"code-duration":600,
 "refresh-token-rolling":true,"allow-non-oidc":true,
 "auth-type-code-enabled":true,"auth-type-token-enabled":false,"auth-type-id-token-enabled":true,
 "auth-type-password-enabled":true,"auth-type-client-enabled":true,"auth-type-refresh-enabled":true,
 "auth-type-device-enabled":true,"device-authorization-expiration":600,"device-authorization-interval":1,
 "pkce-allowed":true,"pkce-method-plain-allowed":false,
 "introspection-revocation-allowed":true,"introspection-revocation-auth-scope":["attestation"],"introspection-revocation-allow-target-client":true,
 "session-management-allowed":true,"session-cookie-name":"GLEWLWYD2_OIDC_SID","session-cookie-expiration":2419200,
 "resource-allowed":true,"resource-scope":{"attestation":["https://attestation.test/"]},
 "additional-parameters":[{"user-parameter":"roles","token-parameter":"roles"},{"user-parameter":"username","token-parameter":"preferred_username"}],
 "name-claim":"on-demand","email-claim":"no","scope-claim":"mandatory",
 "claims":[{"name":"roles","user-property":"roles","type":"string","mandatory":true,"on-demand":false,"scope":[]}]}}
EOF
}

glew_start() {
	CLI_PORT=$1
	GW="$TMP/glewlwyd"
	mkdir -p "$GW"
	GSTATIC="$GW/"
	if [ "${GLEW_WEBAPP:-}" = 1 ]; then
		# Debian's webapp/config.json is a symlink to a directory (oidc.md §3.4 #8)
		cp -rL /usr/share/glewlwyd/webapp "$GW/webapp" 2>/dev/null
		rm -rf "$GW/webapp/config.json"
		cp /etc/glewlwyd/config-2.7.json/config.json "$GW/webapp/config.json"
		GSTATIC="$GW/webapp/"
	fi
	zcat /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz | sqlite3 "$GW/glewlwyd.db"
	openssl genrsa -out "$GW/rsa.key" 2048 2>/dev/null && openssl rsa -in "$GW/rsa.key" -pubout -out "$GW/rsa.pub" 2>/dev/null
	n=0
	while :; do
		n=$((n + 1))
		GPORT=$(free_port)
		[ "$GPORT" = "$CLI_PORT" ] && continue
		cat > "$GW/glewlwyd.conf" <<CONF
port=$GPORT
bind_address="127.0.0.1"
external_url="http://127.0.0.1:$GPORT"
login_url="login.html"
static_files_path="$GSTATIC"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="$GW/glewlwyd.log"
cookie_secure=0
session_expiration=2419200
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie,api_key"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"  path = "$GW/glewlwyd.db" };
static_files_mime_types = ( { extension = ".json" mime_type = "application/json" },
  { extension = ".html" mime_type = "text/html" }, { extension = ".css" mime_type = "text/css" },
  { extension = ".js" mime_type = "application/javascript" }, { extension = ".png" mime_type = "image/png" },
  { extension = ".svg" mime_type = "image/svg+xml" }, { extension = ".ico" mime_type = "image/x-icon" },
  { extension = ".woff" mime_type = "font/woff" }, { extension = ".woff2" mime_type = "font/woff2" },
  { extension = ".ttf" mime_type = "font/ttf" } )
CONF
		setsid "$GLEW_BIN" --config-file="$GW/glewlwyd.conf" >"$GW/stdout.log" 2>&1 &
		GLEW_PID=$!
		GLEW="http://127.0.0.1:$GPORT"
		i=0
		while [ $i -lt 100 ] && kill -0 "$GLEW_PID" 2>/dev/null; do
			curl -sf "$GLEW/config" >/dev/null 2>&1 && break
			sleep 0.1; i=$((i + 1))
		done
		if curl -sf "$GLEW/config" >/dev/null 2>&1; then break; fi
		kill "$GLEW_PID" 2>/dev/null; wait "$GLEW_PID" 2>/dev/null
		if [ $n -ge 5 ]; then echo "Bail out! glewlwyd did not start"; cat "$GW/stdout.log" "$GW/glewlwyd.log" >&2; exit 1; fi
	done
	PIDS="$PIDS $GLEW_PID"
	ISS="$GLEW/api/oidc"
	curl -s -c "$GW/cj.txt" -H 'Content-Type: application/json' -d '{"username":"admin","password":"password"}' "$GLEW/api/auth/" >/dev/null
	glew_api PUT /mod/user/database '{"module":"database","name":"database","display_name":"Database backend","order_rank":0,"readonly":false,"multiple_passwords":false,
 "parameters":{"use-glewlwyd-connection":true,"data-format":{
   "picture":{"multiple":false,"read":true,"write":true,"profile-read":true,"profile-write":true},
   "roles":{"multiple":true,"read":true,"write":true,"profile-read":true,"profile-write":false}}}}'
	glew_api PUT /mod/user/database/reset
	glew_api POST /scope/ '{"name":"attestation","display_name":"Attestation API","description":"attestation admin API","password_required":true,"password_max_age":0,"scheme":{}}'
	glew_api POST /mod/plugin/ "$(glew_plugin_json "$GW/rsa.key" "$GW/rsa.pub")"
	glew_api POST /client/ '{"client_id":"attestation-cli","name":"attestation CLI (public)","enabled":true,"confidential":false,
 "redirect_uri":["http://127.0.0.1:'"$CLI_PORT"'/callback"],
 "authorization_type":["code","refresh_token","device_authorization","password","delete_token"],"scope":[]}'
	glew_api POST /client/ '{"client_id":"attestation-ci","name":"attestation CI (confidential)","enabled":true,"confidential":true,
 "client_secret":"'"$CI_SECRET"'","token_endpoint_auth_method":["client_secret_basic","client_secret_post"],
 "redirect_uri":[],"authorization_type":["password","refresh_token","client_credentials"],"scope":["attestation"]}'
	for u in operator1:attestation-operator operator2:attestation-operator viewer1:attestation-viewer; do
		glew_api POST /user/ '{"username":"'"${u%%:*}"'","name":"'"${u%%:*}"'","password":"'"${u%%:*}"'-pass","enabled":true,"scope":["openid","attestation","g_profile"],"roles":["'"${u#*:}"'"]}'
	done
	GLEW_BROWSER="$GW/browser.sh"
	cat > "$GLEW_BROWSER" <<EOF
#!/bin/sh
# fake browser: log in through glewlwyd's JSON API, grant consent, follow the
# redirect to the CLI's loopback listener (what a user does by hand)
set -eu
URL="\$1"; B=$GLEW/api
U="\${FAKE_BROWSER_USER:-operator1}"; P="\${FAKE_BROWSER_PASS:-\${U}-pass}"
J=\$(mktemp); trap 'rm -f "\$J"' EXIT
echo "\$URL" > "$GW/browser-url"
curl -sf -c "\$J" -H 'Content-Type: application/json' -d "{\"username\":\"\$U\",\"password\":\"\$P\"}" "\$B/auth/" >/dev/null
CID=\$(printf %s "\$URL" | sed -n 's/.*[?&]client_id=\([^&]*\).*/\1/p')
SCOPE=\$(printf %s "\$URL" | sed -n 's/.*[?&]scope=\([^&]*\).*/\1/p' | sed 's/%20/ /g;s/+/ /g')
curl -sf -b "\$J" -X PUT -H 'Content-Type: application/json' -d "{\"scope\":\"\$SCOPE\"}" "\$B/auth/grant/\$CID" >/dev/null
LOC=\$(curl -s -b "\$J" -o /dev/null -w '%{redirect_url}' "\$URL&g_continue")
case "\${FAKE_BROWSER_TAMPER:-}" in
state) LOC=\$(printf %s "\$LOC" | sed 's/state=[^&]*/state=forged/') ;;
esac
case "\$LOC" in http://127.0.0.1:*) curl -s -o "$GW/callback.html" "\$LOC" ;; *) echo "unexpected redirect: \$LOC" >&2; exit 1 ;; esac
EOF
	chmod +x "$GLEW_BROWSER"
}

glew_public_client() { # CLIENT_ID REDIRECT_URI
	glew_api POST /client/ '{"client_id":"'"$1"'","name":"'"$1"' (public)","enabled":true,"confidential":false,
 "redirect_uri":["'"$2"'"],"authorization_type":["code","refresh_token"],"scope":[]}'
}

glew_token() { # USER PASS -> access token (aud "attestation")
	curl -sf -u "attestation-ci:$CI_SECRET" -d grant_type=password -d "username=$1" -d "password=$2" \
		-d scope=attestation "$ISS/token" | jq -r .access_token
}

glew_rotate() {
	openssl genrsa -out "$GW/rsa2.key" 2048 2>/dev/null && openssl rsa -in "$GW/rsa2.key" -pubout -out "$GW/rsa2.pub" 2>/dev/null
	glew_api PUT /mod/plugin/oidc "$(glew_plugin_json "$GW/rsa2.key" "$GW/rsa2.pub")"
	glew_api PUT /mod/plugin/oidc/reset
}

glew_approve_device() { # USER PASS USER_CODE
	gj="$GW/device-$1.txt"
	curl -s -c "$gj" -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$GLEW/api/auth/" >/dev/null
	curl -s -b "$gj" -X PUT -H 'Content-Type: application/json' -d '{"scope":"openid attestation"}' "$GLEW/api/auth/grant/attestation-cli" >/dev/null
	curl -s -b "$gj" -o /dev/null -w '%{redirect_url}' "$GLEW/api/oidc/device?code=$3&g_continue"
}
