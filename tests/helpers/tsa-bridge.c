/* tsa-bridge - an RFC 3161 TSA over HTTP for integration tests, with
 * `openssl ts -reply` doing the timestamping.
 *
 *   tsa-bridge READY-FILE WORK-DIR SCRIPT
 * Listens on 127.0.0.1:0 and writes the port to READY-FILE.  Each POST's
 * body (a TimeStampReq) is saved as WORK-DIR/query-N.tsq and SCRIPT runs
 * as `SCRIPT QUERY REPLY`; when it exits 0 the REPLY file is the answer
 * (200, application/timestamp-reply), otherwise 500. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <microhttpd.h>

#include "loopback-httpd.h"

static const char *workdir, *script;
static int nreq;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	return buf;
}

static int run_script(const char *q, const char *r)
{
	int st = -1;
	pid_t pid = fork();

	if (pid == 0) {
		execl(script, script, q, r, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *body,
			      size_t len)
{
	struct MHD_Response *resp;
	char q[4096], r[4096], *out = NULL;
	size_t outlen = 0;
	unsigned status = 500;
	enum MHD_Result ok;
	FILE *f;

	(void)url;
	snprintf(q, sizeof(q), "%s/query-%d.tsq", workdir, ++nreq);
	snprintf(r, sizeof(r), "%s/reply-%d.tsr", workdir, nreq);
	if (strcmp(method, "POST") == 0 && (f = fopen(q, "wb")) != NULL) {
		bool written = fwrite(body, 1, len, f) == len;

		if (fclose(f) == 0 && written && run_script(q, r) == 0 && (out = slurp(r, &outlen)) != NULL)
			status = 200;
	}
	if (!out) {
		out = strdup("timestamping failed");
		outlen = out ? strlen(out) : 0;
	}
	resp = MHD_create_response_from_buffer(outlen, out, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", status == 200 ? "application/timestamp-reply" : "text/plain");
	ok = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: tsa-bridge READY-FILE WORK-DIR SCRIPT\n");
		return 2;
	}
	workdir = argv[2];
	script = argv[3];
	return test_httpd_run(argv[1], on_req);
}
