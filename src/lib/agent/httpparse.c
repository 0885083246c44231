/* httpparse.c - HTTP/1.1 response parsing for the node agent: status
 * line, header fields, Content-Length or chunked framing, caps on
 * everything.  Pure function of its input (fuzzed). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/http.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))
#define NEED_MORE 1

void att_http_resp_release(struct att_http_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The line starting at off: its length without the terminator and the
 * offset after it (CRLF, or a bare LF as RFC 9112 2.2 lets recipients
 * accept).  false when no terminator is in the buffer. */
static bool next_line(const uint8_t *b, size_t len, size_t off, size_t *ret_len, size_t *ret_next)
{
	const uint8_t *nl = off < len ? memchr(b + off, '\n', len - off) : NULL;
	size_t l;

	if (!nl)
		return false;
	l = (size_t)(nl - (b + off));
	*ret_next = off + l + 1;
	if (l > 0 && b[off + l - 1] == '\r')
		l--;
	*ret_len = l;
	return true;
}

struct hdrs {
	int status;
	bool chunked;
	bool have_cl;
	uint64_t cl;
	size_t body_off;
};

static bool token_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* value with surrounding whitespace removed */
static void trim(const uint8_t **v, size_t *n)
{
	while (*n > 0 && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n > 0 && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

static bool name_is(const uint8_t *name, size_t nl, const char *want)
{
	return nl == strlen(want) && strncasecmp((const char *)name, want, nl) == 0;
}

static int header_field(const uint8_t *line, size_t n, struct hdrs *h, struct att_http_resp *r, char *reterr,
			size_t errlen)
{
	const uint8_t *colon = memchr(line, ':', n), *v;
	size_t nl, vl;

	if (n > 0 && (line[0] == ' ' || line[0] == '\t'))
		return FAIL(ATT_E_PARSE, "obsolete header line folding");
	if (!colon || colon == line)
		return FAIL(ATT_E_PARSE, "header line without a field name");
	nl = (size_t)(colon - line);
	for (size_t i = 0; i < nl; i++)
		if (!token_char(line[i]))
			return FAIL(ATT_E_PARSE, "bad character in a header field name");
	v = colon + 1;
	vl = n - nl - 1;
	trim(&v, &vl);
	for (size_t i = 0; i < vl; i++)
		if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return FAIL(ATT_E_PARSE, "control character in a header value");
	if (name_is(line, nl, "Content-Length")) {
		uint64_t cl;

		if (vl == 0 || vl > 15 || att_parse_u64((const char *)v, vl, 0, UINT64_MAX, &cl) < 0)
			return FAIL(ATT_E_PARSE, "bad Content-Length");
		if (h->have_cl && h->cl != cl)
			return FAIL(ATT_E_PARSE, "conflicting Content-Length headers");
		h->have_cl = true;
		h->cl = cl;
	} else if (name_is(line, nl, "Transfer-Encoding")) {
		if (!(vl == 7 && strncasecmp((const char *)v, "chunked", 7) == 0))
			return FAIL(ATT_E_PARSE, "unsupported Transfer-Encoding");
		h->chunked = true;
	} else if (name_is(line, nl, "Content-Type")) {
		size_t tl = 0;

		while (tl < vl && v[tl] != ';' && v[tl] != ' ' && tl + 1 < sizeof(r->content_type)) {
			r->content_type[tl] = (char)tolower(v[tl]);
			tl++;
		}
		r->content_type[tl] = '\0';
	} else if (name_is(line, nl, "Retry-After")) {
		uint64_t s;

		r->retry_after = (vl > 0 && vl <= 9 && att_parse_u64((const char *)v, vl, 0, 999999999, &s) == 0)
					 ? (long)s : -1;
	}
	return 0;
}

/* Status line and header section of one response starting at off. */
static int parse_head(const uint8_t *b, size_t len, size_t off, struct hdrs *h, struct att_http_resp *r,
		      char *reterr, size_t errlen)
{
	size_t start = off, n, next, count = 0;
	uint64_t st;
	int rc;

	memset(h, 0, sizeof(*h));
	r->content_type[0] = '\0';
	r->retry_after = -1;
	if (!next_line(b, len, off, &n, &next))
		goto more;
	if (n < 12 || (memcmp(b + off, "HTTP/1.1 ", 9) != 0 && memcmp(b + off, "HTTP/1.0 ", 9) != 0) ||
	    att_parse_u64((const char *)b + off + 9, 3, 100, 599, &st) < 0 || (n > 12 && b[off + 12] != ' '))
		return FAIL(ATT_E_PARSE, "not an HTTP/1.x status line");
	h->status = (int)st;
	for (off = next;; off = next) {
		if (!next_line(b, len, off, &n, &next))
			goto more;
		if (next - start > ATT_HTTP_MAX_HEADER_BYTES)
			return FAIL(ATT_E_LIMIT, "header section larger than %d bytes", ATT_HTTP_MAX_HEADER_BYTES);
		if (n == 0)
			break;
		if (++count > ATT_HTTP_MAX_HEADERS)
			return FAIL(ATT_E_LIMIT, "more than %d header fields", ATT_HTTP_MAX_HEADERS);
		rc = header_field(b + off, n, h, r, reterr, errlen);
		if (rc < 0)
			return rc;
	}
	if (h->chunked && h->have_cl)
		return FAIL(ATT_E_PARSE, "both Content-Length and Transfer-Encoding");
	h->body_off = next;
	return 0;
more:
	if (len - start > ATT_HTTP_MAX_HEADER_BYTES)
		return FAIL(ATT_E_LIMIT, "header section larger than %d bytes", ATT_HTTP_MAX_HEADER_BYTES);
	return NEED_MORE;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static int take_body(struct att_http_resp *r, const uint8_t *p, size_t n)
{
	char *b = malloc(n + 1);

	if (!b)
		return ATT_E_NOMEM;
	if (n)
		memcpy(b, p, n);
	b[n] = '\0';
	r->body = b;
	r->body_len = n;
	return 0;
}

static int parse_chunked(const uint8_t *b, size_t len, size_t off, size_t max_body, struct att_http_resp *r,
			 char *reterr, size_t errlen)
{
	uint8_t *out = NULL;
	size_t total = 0, n, next;
	int rc;

	for (;;) {
		uint64_t sz = 0;
		size_t i = 0;

		if (!next_line(b, len, off, &n, &next)) {
			rc = NEED_MORE;
			goto out;
		}
		while (i < n && hexval(b[off + i]) >= 0) {
			if (i >= 15) {
				rc = FAIL(ATT_E_PARSE, "chunk size too long");
				goto out;
			}
			sz = sz * 16 + (uint64_t)hexval(b[off + i]);
			i++;
		}
		if (i == 0 || (i < n && b[off + i] != ';' && b[off + i] != ' ' && b[off + i] != '\t')) {
			rc = FAIL(ATT_E_PARSE, "bad chunk size line");
			goto out;
		}
		off = next;
		if (sz == 0)
			break;
		if (sz > max_body - total) {
			rc = FAIL(ATT_E_LIMIT, "response body larger than %zu bytes", max_body);
			goto out;
		}
		if (len - off < sz + 1) {
			rc = NEED_MORE;
			goto out;
		}
		{
			uint8_t *g = realloc(out, total + (size_t)sz + 1);

			if (!g) {
				rc = ATT_E_NOMEM;
				goto out;
			}
			out = g;
		}
		memcpy(out + total, b + off, (size_t)sz);
		total += (size_t)sz;
		off += (size_t)sz;
		if (!next_line(b, len, off, &n, &next)) {
			rc = NEED_MORE;
			goto out;
		}
		if (n != 0) {
			rc = FAIL(ATT_E_PARSE, "chunk data not followed by CRLF");
			goto out;
		}
		off = next;
	}
	/* trailer fields, up to the empty line */
	for (int count = 0;; count++) {
		if (!next_line(b, len, off, &n, &next)) {
			rc = NEED_MORE;
			goto out;
		}
		if (n == 0)
			break;
		if (count >= ATT_HTTP_MAX_HEADERS) {
			rc = FAIL(ATT_E_LIMIT, "too many trailer fields");
			goto out;
		}
		off = next;
	}
	rc = take_body(r, out ? out : (const uint8_t *)"", total);
out:
	free(out);
	return rc;
}

int att_http_parse(const uint8_t *buf, size_t len, bool eof, size_t max_body, struct att_http_resp *ret,
		   char *reterr, size_t errlen)
{
	struct att_http_resp r;
	struct hdrs h;
	size_t off = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	for (;;) {
		rc = parse_head(buf, len, off, &h, &r, reterr, errlen);
		if (rc != 0)
			goto done;
		if (h.status >= 200)
			break;
		if (h.status == 101) {
			rc = FAIL(ATT_E_PARSE, "unexpected protocol switch");
			goto done;
		}
		off = h.body_off;	/* 1xx: no body, another response follows */
	}
	r.status = h.status;
	if (h.status == 204 || h.status == 304) {
		rc = take_body(&r, (const uint8_t *)"", 0);
	} else if (h.chunked) {
		rc = parse_chunked(buf, len, h.body_off, max_body, &r, reterr, errlen);
	} else if (h.have_cl) {
		if (h.cl > max_body)
			rc = FAIL(ATT_E_LIMIT, "response body larger than %zu bytes", max_body);
		else if (len - h.body_off < h.cl)
			rc = NEED_MORE;
		else
			rc = take_body(&r, buf + h.body_off, (size_t)h.cl);
	} else if (!eof) {
		rc = (len - h.body_off > max_body) ? FAIL(ATT_E_LIMIT, "response body larger than %zu bytes", max_body)
						   : NEED_MORE;
	} else {
		rc = (len - h.body_off > max_body) ? FAIL(ATT_E_LIMIT, "response body larger than %zu bytes", max_body)
						   : take_body(&r, buf + h.body_off, len - h.body_off);
	}
done:
	if (rc == NEED_MORE && eof)
		rc = FAIL(ATT_E_PARSE, "connection closed before the response was complete");
	if (rc == 0)
		*ret = r;
	else
		att_http_resp_release(&r);
	return rc;
}
