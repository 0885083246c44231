/* resp.c - request accessors and responses: JSON bodies, the
 * {"detail": ...} error convention, att_err -> HTTP status. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "base/err.h"
#include "base/text.h"
#include "base/util.h"
#include "http.h"

void att_resp_text(struct att_resp *rs, int status, const char *ctype, char *body, size_t len)
{
	free(rs->body);
	rs->status = status;
	rs->ctype = ctype;
	rs->body = body;
	rs->len = len;
}

void att_resp_json(struct att_resp *rs, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(body);
	if (!s) {
		att_resp_text(rs, 500, "application/json", att_strdup("{\"detail\":\"Internal Server Error\"}"), 34);
		return;
	}
	att_resp_text(rs, status, "application/json", s, strlen(s));
}

void att_resp_error(struct att_resp *rs, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* details quote client bytes: never let them make the JSON fail (a 500) */
	att_utf8_scrub(msg);
	if (rs->coded)
		att_resp_json(rs, status, json_pack("{s:s,s:i,s:s}", "detail", msg, "code", status, "message", msg));
	else
		att_resp_json(rs, status, json_pack("{s:s}", "detail", msg));
}

void att_resp_header(struct att_resp *rs, const char *name, const char *value)
{
	char *n, *v;

	if (rs->nhdr >= ATT_RESP_MAX_HEADERS)
		return;
	n = att_strdup(name);
	v = att_strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return;
	}
	rs->hdr[rs->nhdr][0] = n;
	rs->hdr[rs->nhdr][1] = v;
	rs->nhdr++;
}

void att_resp_release(struct att_resp *rs)
{
	for (int i = 0; i < rs->nhdr; i++) {
		free(rs->hdr[i][0]);
		free(rs->hdr[i][1]);
	}
	rs->nhdr = 0;
	free(rs->body);
	rs->body = NULL;
}

void att_resp_from_err(struct att_resp *rs, int err, const char *detail)
{
	int status;

	switch (err) {
	case ATT_E_INVAL:
	case ATT_E_PARSE: status = 422; break;
	case ATT_E_AUTH: status = 401; break;
	case ATT_E_FORBIDDEN: status = 403; break;
	case ATT_E_NOTFOUND: status = 404; break;
	case ATT_E_CONFLICT: status = 409; break;
	case ATT_E_GONE: status = 410; break;
	case ATT_E_LIMIT: status = 429; break;
	case ATT_E_DB:
	case ATT_E_UNAVAILABLE: status = 503; break;
	default: status = 500; break;
	}
	if (status == 500)
		att_resp_error(rs, 500, "Internal Server Error");
	else
		att_resp_error(rs, status, "%s", detail && *detail ? detail : att_strerror(err));
	if (status == 503)
		att_resp_header(rs, "Retry-After", "5");
}

const char *att_req_header(struct att_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *att_req_query(struct att_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *att_req_json(struct att_req *rq, struct att_resp *rs, const struct att_jfield *fields,
		     size_t n)
{
	char err[512];
	json_t *o = NULL;

	if (att_json_parse_body(rq->body.p ? rq->body.p : "", rq->body.len, fields, n, &o, err,
				sizeof(err)) < 0) {
		att_resp_error(rs, 422, "%s", err);
		return NULL;
	}
	return o;
}
