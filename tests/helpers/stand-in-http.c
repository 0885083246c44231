/* stand-in-http - a recording HTTP receiver for integration tests (the
 * auto-approval decision webhook, the Vault stand-in of the examples).
 *
 *   stand-in-http READY-FILE DIR
 * Listens on 127.0.0.1:0 and writes the port to READY-FILE.  Request N is
 * recorded as DIR/req-N.body (the body), DIR/req-N.head (method, path
 * and every header, one "Name: value" a line).  The answer is DIR/status
 * (an HTTP status, default 200) and DIR/answer (the body, default "{}"),
 * read at each request, so a test can change them between requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "base/buf.h"
#include "base/util.h"
#include "loopback-httpd.h"

static const char *dir;
static int nreq;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	fprintf(cls, "%s: %s\n", k, v ? v : "");
	return MHD_YES;
}

static char *slurp(const char *name, const char *def)
{
	char path[4096], chunk[4096];
	struct att_buf b;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return att_strdup(def);
	att_buf_init(&b, 1 << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		(void)att_buf_append(&b, chunk, n);
	fclose(f);
	if (!b.p)
		return att_strdup("");
	return att_buf_steal(&b, &n);
}

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *body,
			      size_t len)
{
	struct MHD_Response *resp;
	char path[4096], *answer, *st;
	enum MHD_Result ok;
	FILE *f;
	int n = ++nreq, status;

	snprintf(path, sizeof(path), "%s/req-%d.head", dir, n);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%s %s\n", method, url);
		MHD_get_connection_values(c, MHD_HEADER_KIND, on_header, f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/req-%d.body", dir, n);
	if ((f = fopen(path, "w"))) {
		fwrite(body, 1, len, f);
		fclose(f);
	}
	st = slurp("status", "200");
	status = (int)strtol(st, NULL, 10);
	free(st);
	answer = slurp("answer", "{}");
	resp = MHD_create_response_from_buffer(strlen(answer), answer, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ok = MHD_queue_response(c, (unsigned)(status > 99 && status < 600 ? status : 500), resp);
	MHD_destroy_response(resp);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: stand-in-http READY-FILE DIR\n");
		return 2;
	}
	dir = argv[2];
	return test_httpd_run(argv[1], on_req);
}
