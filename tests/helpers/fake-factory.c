/* fake-factory - a stand-in Talos Image Factory for integration tests.
 *
 *   fake-factory READY-FILE LOG-DIR MODE     MODE: ok | fail | garbage
 * Listens on 127.0.0.1:0, writes the port to READY-FILE, and answers
 * POST /schematics like the real factory (201, {"id": sha256(body),
 * "schematic": body}) in mode ok, 500 in mode fail, non-JSON in mode
 * garbage.  Every request body is saved as LOG-DIR/post-N.yaml. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "base/buf.h"
#include "base/util.h"
#include "talos/schematic.h"

static const char *logdir, *mode;
static int nposts;

struct req {
	struct att_buf b;
};

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *ver, const char *data, size_t *size, void **ctx)
{
	struct req *r = *ctx;
	struct MHD_Response *resp;
	char *body, id[65], path[4096];
	int status = 201;
	enum MHD_Result ok;

	(void)cls;
	(void)ver;
	if (!r) {
		r = calloc(1, sizeof(*r));
		att_buf_init(&r->b, 1 << 20);
		*ctx = r;
		return MHD_YES;
	}
	if (*size) {
		(void)att_buf_append(&r->b, data, *size);
		*size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0 || strcmp(url, "/schematics") != 0) {
		status = 404;
		body = att_strdup("{\"error\":\"not found\"}");
	} else {
		FILE *f;

		snprintf(path, sizeof(path), "%s/post-%d.yaml", logdir, ++nposts);
		f = fopen(path, "w");
		if (f) {
			fwrite(r->b.p ? r->b.p : "", 1, r->b.len, f);
			fclose(f);
		}
		if (strcmp(mode, "fail") == 0) {
			status = 500;
			body = att_strdup("internal error");
		} else if (strcmp(mode, "garbage") == 0) {
			status = 201;
			body = att_strdup("<html>");
		} else {
			json_t *o;

			att_schematic_id(r->b.p ? r->b.p : "", id);
			o = json_pack("{s:s,s:s}", "id", id, "schematic", r->b.p ? r->b.p : "");
			body = json_dumps(o, JSON_COMPACT);
			json_decref(o);
		}
	}
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ok = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t)
{
	struct req *r = *ctx;

	(void)cls;
	(void)c;
	(void)t;
	if (r) {
		att_buf_release(&r->b);
		free(r);
	}
	*ctx = NULL;
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	struct sockaddr_in sa = { 0 };
	const union MHD_DaemonInfo *di;
	sigset_t set;
	int sig;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: fake-factory READY-FILE LOG-DIR ok|fail|garbage\n");
		return 2;
	}
	logdir = argv[2];
	mode = argv[3];
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_req, NULL,
			     MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
			     MHD_OPTION_END);
	if (!d)
		return 1;
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	f = fopen(argv[1], "w");
	if (!f)
		return 1;
	fprintf(f, "%u\n", di ? di->port : 0);
	fclose(f);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
