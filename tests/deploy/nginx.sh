#!/bin/sh
# packaging/nginx/itl-attestation.conf in front of a real attestd: the
# shipped file, with only its ports, certificate paths, log path and
# upstream address rewritten, run by real nginx with a test certificate.
# TLS 1.2 refused, only TLS_AES_256_GCM_SHA384 negotiated, HSTS present,
# plain HTTP refused (the port-80 server and attestd's high-assurance
# mode), the client address forwarded (not client-controlled) and logged.
# TAP output.   env: SRCDIR, ATTESTD
set -u
: "${SRCDIR:?}" "${ATTESTD:?}"
. "$SRCDIR/tests/lib/test-lib.sh"
CONF=$SRCDIR/packaging/nginx/itl-attestation.conf
for t in nginx openssl curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "1..0 # SKIP $t is not installed (scripts/deps.sh installs it)"; exit 0; }
done

T=$TMP/tls; mkdir -p "$T/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
	-days 2 -subj "/CN=front test CA" >/dev/null 2>&1
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
	-subj "/CN=attest.test" >/dev/null 2>&1
printf 'subjectAltName=DNS:attest.test,IP:127.0.0.1\n' > "$T/ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 -extfile "$T/ext" \
	-out "$T/srv.pem" >/dev/null 2>&1

# front UPSTREAM NAME: run the shipped config with UPSTREAM as attestd's
# address; sets HPORT, SPORT, NGINX (pid), LOG (access log)
front() {
	up=$1; name=$2; k=0
	while :; do
		k=$((k + 1))
		HPORT=$(( 20000 + ($(od -An -N2 -tu2 /dev/urandom) % 20000) * 2 )); SPORT=$((HPORT + 1))
		LOG=$T/$name-access.log
		sed -e "s#^    listen 80;#    listen 127.0.0.1:$HPORT;#" \
			-e "s#^    listen 443 ssl http2;#    listen 127.0.0.1:$SPORT ssl http2;#" \
			-e '/^    listen \[::\]:/d' \
			-e "s#/etc/ssl/certs/attest.example.com.crt#$T/srv.pem#" \
			-e "s#/etc/ssl/private/attest.example.com.key#$T/srv.key#" \
			-e "s#/var/log/nginx/itl-attestation.access.log#$LOG#" \
			-e "s#^    server 127.0.0.1:8080; #    server $up; #" \
			"$CONF" > "$T/$name-site.conf"
		cat > "$T/$name.conf" <<EON
daemon off;
worker_processes 1;
pid $T/$name.pid;
error_log $T/$name-error.log;
events { worker_connections 64; }
http {
	client_body_temp_path $T/tmp; proxy_temp_path $T/tmp; fastcgi_temp_path $T/tmp;
	uwsgi_temp_path $T/tmp; scgi_temp_path $T/tmp;
	include $T/$name-site.conf;
}
EON
		nginx -p "$T" -c "$T/$name.conf" 2>>"$T/$name-start.log" &
		NGINX=$!
		i=0
		while [ $i -lt 60 ] && kill -0 "$NGINX" 2>/dev/null && \
			! curl -s --cacert "$T/ca.pem" -o /dev/null "https://127.0.0.1:$SPORT/healthz"; do
			sleep 0.05; i=$((i + 1))
		done
		if kill -0 "$NGINX" 2>/dev/null; then PIDS="$PIDS $NGINX"; return 0; fi
		[ $k -ge 10 ] && { echo "Bail out! nginx did not start"; cat "$T/$name-error.log" "$T/$name-start.log" >&2; exit 1; }
	done
}
stop_front() { kill "$NGINX" 2>/dev/null; wait "$NGINX" 2>/dev/null; PIDS=$(echo "$PIDS" | sed "s/ $NGINX//"); }

say "--- the shipped file"
front 127.0.0.1:9 probe; stop_front
check "nginx -t accepts the shipped file" nginx -t -q -p "$T" -c "$T/probe.conf"
check "the test changes only the ports, paths and upstream of the shipped file (9 lines)" \
	sh -c "[ \$(diff '$CONF' '$T/probe-site.conf' | grep -c '^<') = 9 ]"
sed 's#^    ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;#    ssl_ciphers TLS_AES_256_GCM_SHA384;#' \
	"$T/probe-site.conf" > "$T/seed-site.conf"
printf 'error_log %s/seed.err;\npid %s/seed.pid;\nevents {}\nhttp { include %s; }\n' "$T" "$T" "$T/seed-site.conf" > "$T/seed.conf"
check "the reference's form (ssl_ciphers with a TLS 1.3 suite name) is refused by nginx: why ssl_conf_command" \
	sh -c "! nginx -t -p '$T' -c '$T/seed.conf' >$T/seed.out 2>&1 && grep -q 'no cipher match' $T/seed.out"

say "--- nginx in front of attestd in high-assurance mode"
start_attestd ITL_HIGH_ASSURANCE=true ITL_TRUSTED_PROXIES=127.0.0.1,::1 ITL_CONNECTION_LIMIT_PER_CLIENT=0
front "$(cat "$DATA/ready")" attestd
S=https://127.0.0.1:$SPORT
H=http://127.0.0.1:$HPORT
tls() { # tls ARGS...: an openssl handshake and GET /readyz; output in $T/tls.out
	printf 'GET /readyz HTTP/1.1\r\nHost: attest.test\r\nConnection: close\r\n\r\n' |
		openssl s_client -connect "127.0.0.1:$SPORT" -servername attest.test -CAfile "$T/ca.pem" \
		-verify_return_error -ign_eof "$@" >"$T/tls.out" 2>&1
}
tls
check "TLS 1.3 negotiates TLS_AES_256_GCM_SHA384, the certificate verifies, attestd answers" \
	sh -c "grep -q 'New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384' $T/tls.out && grep -q 'Verify return code: 0' $T/tls.out && grep -q '\"status\":\"ready\"' $T/tls.out"
tls -tls1_3
check "the key exchange is ECDH over P-384" grep -Eq 'Server Temp Key: ECDH, (P-384|secp384r1)' "$T/tls.out"
tls -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
check "a client offering only TLS_AES_128_GCM_SHA256 is refused" sh -c "grep -q CONNECTED $T/tls.out && grep -q 'Cipher is (NONE)' $T/tls.out"
tls -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256
check "a client offering only TLS_CHACHA20_POLY1305_SHA256 is refused" sh -c "grep -q CONNECTED $T/tls.out && grep -q 'Cipher is (NONE)' $T/tls.out"
tls -tls1_2
check "TLS 1.2 is refused (openssl s_client -tls1_2)" sh -c "grep -q 'alert protocol version' $T/tls.out && grep -q 'Cipher is (NONE)' $T/tls.out"
curl -s --cacert "$T/ca.pem" --tlsv1.2 --tls-max 1.2 -o /dev/null "$S/healthz"
rc=$?
check "TLS 1.2 is refused (curl --tls-max 1.2: exit $rc)" [ "$rc" = 35 ]
curl -s --cacert "$T/ca.pem" --tlsv1.3 -D "$T/h" -o "$T/b" -w '%{http_code}' "$S/readyz" > "$T/code"
check "https: GET /readyz is 200 (X-Forwarded-Proto https reached attestd)" [ "$(cat "$T/code")" = 200 ]
check "https: HSTS (max-age=31536000; includeSubDomains), exactly once" \
	sh -c "[ \$(grep -ic '^strict-transport-security: max-age=31536000; includeSubDomains' $T/h) = 1 ]"
curl -s --cacert "$T/ca.pem" -o /dev/null -w '%{http_version}' "$S/healthz" > "$T/v"
check "https: HTTP/2 is offered" [ "$(cat "$T/v")" = 2 ]
code=$(curl -s -o "$T/b" -w '%{http_code}' "$H/api/v1/machines")
check "plain HTTP on the front: API refused with 403 'HTTPS required', not redirected" \
	sh -c "[ $code = 403 ] && grep -q 'HTTPS required' $T/b"
code=$(curl -s -o /dev/null -D "$T/h" -w '%{http_code}' "$H/")
check "plain HTTP on the front: / redirects a browser to https" \
	sh -c "[ $code = 301 ] && grep -qi '^location: https://' $T/h"
BASE="http://$(cat "$DATA/ready")"
api GET /readyz
expect 403 "plain HTTP to attestd itself (no X-Forwarded-Proto): 403 in high-assurance mode"
api GET /healthz
expect 200 "... except /healthz (for the watchdog and probes)"
head -c 1100000 /dev/zero | tr '\0' a > "$T/big"
code=$(curl -s --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary @"$T/big" "$S/api/v1/register")
check "a body over 1 MiB is refused at the front (413)" [ "$code" = 413 ]
check "the access log records the client address, the request, TLSv1.3 and the suite" \
	grep -q '^127\.0\.0\.1 .*"GET /readyz HTTP/2.0" 200 .*TLSv1.3/TLS_AES_256_GCM_SHA384' "$LOG"
stop_front

say "--- what the upstream receives (a header-echo server in attestd's place)"
python3 -u -c '
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
' > "$T/echo.port" 2>"$T/echo.err" &
ECHO=$!; PIDS="$PIDS $ECHO"
i=0; while [ ! -s "$T/echo.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
front "127.0.0.1:$(cat "$T/echo.port")" echo
S=https://127.0.0.1:$SPORT
curl -s --cacert "$T/ca.pem" -H 'X-Forwarded-For: 203.0.113.66' -H 'X-Forwarded-Proto: http' \
	-H 'X-Real-IP: 203.0.113.66' "$S/anything" > "$T/echo.json"
check "the upstream gets X-Forwarded-Proto: https whatever the client sent" \
	jq -e '."x-forwarded-proto" == "https"' "$T/echo.json"
check "the upstream gets the client's address in X-Forwarded-For and X-Real-IP, not the client's claim" \
	jq -e '."x-forwarded-for" == "127.0.0.1" and ."x-real-ip" == "127.0.0.1"' "$T/echo.json"
check "the Host header is passed on" jq -e '.host == "127.0.0.1"' "$T/echo.json"
check "the access log keeps what the client claimed (xff=) beside its real address" \
	grep -q '^127\.0\.0\.1 .*"GET /anything HTTP/2.0" 200 .*xff="203.0.113.66"' "$LOG"
stop_front
done_testing
