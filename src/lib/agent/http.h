/* http.h - the node agent's HTTP/1.1 client (plain and TLS) and the
 * parser of what comes back.
 *
 * One request per connection (Connection: close), no redirects (a 3xx
 * is an answer like any other, and the agent treats it as a refusal),
 * no proxies.  TLS is verified against --ca-file or the system store,
 * with the host name (or IP address) checked.  Every response is read
 * into a buffer capped at creation; the parser takes the bytes as
 * untrusted (tests/fuzz/fuzz-agent-answer.c). */
#ifndef ATT_AGENT_HTTP_H
#define ATT_AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATT_HTTP_MAX_HEADER_BYTES (16 * 1024)
#define ATT_HTTP_MAX_HEADERS 100

struct att_http_resp {
	int status;
	char content_type[128];	/* lowercased media type, parameters dropped */
	long retry_after;	/* Retry-After in seconds, -1 when absent or not delta-seconds */
	char *body;		/* NUL-terminated (the NUL is not counted) */
	size_t body_len;
};

void att_http_resp_release(struct att_http_resp *r);

/* Parse a response from buf[0..len).  eof: the peer closed the
 * connection (a body without length framing ends there).  Returns 0 with
 * *ret filled when the response is complete, 1 when more bytes are
 * needed (only when !eof), ATT_E_LIMIT when the body exceeds max_body or
 * the header section its caps, ATT_E_PARSE for anything malformed
 * (reason in reterr).  1xx interim responses are skipped. */
int att_http_parse(const uint8_t *buf, size_t len, bool eof, size_t max_body, struct att_http_resp *ret,
		   char *reterr, size_t errlen);

struct att_http_client {
	const char *ca_file;	/* NULL: the system store */
	int timeout_ms;		/* connect, and each read/write */
	const char *user_agent;
};

struct att_http_req {
	const char *method;
	const char *url;
	const char *const *headers;	/* "Name: value" lines, NULL-terminated (may be NULL) */
	const char *body;		/* with Content-Type: application/json when set */
	size_t body_len;
	size_t max_body;		/* cap on the response body */
};

/* One exchange.  0 when a complete response arrived (any status);
 * ATT_E_IO when the service could not be reached or the connection
 * broke (reason in reterr); ATT_E_CRYPTO for TLS failures (certificate
 * not trusted, wrong host); ATT_E_PARSE / ATT_E_LIMIT for a malformed or
 * oversized response. */
int att_http_exchange(const struct att_http_client *c, const struct att_http_req *rq, struct att_http_resp *ret,
		      char *reterr, size_t errlen);

#endif
