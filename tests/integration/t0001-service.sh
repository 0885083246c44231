#!/bin/sh
# Service endpoints, routing errors, high-assurance mode, metrics.
. "$SRCDIR/tests/lib/test-lib.sh"

start_attestd
api GET /healthz
expect 200 "healthz answers ok" '.status == "ok"'
api GET /readyz
expect 200 "readyz answers when the database is reachable" '.status == "ready"'
api GET /api/v1/extensions
expect 200 "extensions list: the built-in webhooks, exec and pulumi_state modules" '.total == 3 and ([.extensions[].name] == ["webhooks", "exec", "pulumi_state"]) and ([.extensions[].source] | unique) == ["builtin"]'
api GET /no/such/route
expect 404 "unknown route is 404 with a detail" '.detail == "Not Found"'
api DELETE /api/v1/register
expect 405 "wrong method is 405" '.detail == "Method Not Allowed"'
check "405 names the allowed method" sh -c "printf '%s' \"\$1\" | grep -qi '^Allow: POST'" _ "$HEADERS"
api PUT /healthz
expect 405 "PUT on a GET route is 405"

# metrics after some traffic
api GET /metrics
expect 200 "metrics exposition"
check "metrics has request counters by route and status" sh -c \
	"printf '%s' \"\$1\" | grep -q 'attestd_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1'" _ "$BODY"
check "metrics has a latency histogram" sh -c \
	"printf '%s' \"\$1\" | grep -q 'attestd_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 1'" _ "$BODY"
check "metrics has machines by status" sh -c \
	"printf '%s' \"\$1\" | grep -q '^attestd_machines{status=\"pending_approval\"} 0'" _ "$BODY"
check "metrics content type is Prometheus text 0.0.4" sh -c \
	"printf '%s' \"\$1\" | grep -qi 'Content-Type: text/plain; version=0.0.4'" _ "$HEADERS"

stop_attestd

# high assurance: plain HTTP refused except /healthz, HSTS everywhere
start_attestd ITL_HIGH_ASSURANCE=true ITL_TRUSTED_PROXIES=127.0.0.1
api GET /healthz
expect 200 "healthz is exempt from high-assurance"
check "HSTS header present" sh -c "printf '%s' \"\$1\" | grep -qi '^Strict-Transport-Security: max-age=31536000; includeSubDomains'" _ "$HEADERS"
api GET /api/v1/attest/challenge
expect 403 "non-HTTPS request rejected in high-assurance mode" '.detail | startswith("High-assurance mode is enabled")'
api GET /api/v1/attest/challenge "" -H "X-Forwarded-Proto: https"
expect 200 "request forwarded as HTTPS accepted" '.nonce_id | length == 64'
done_testing
