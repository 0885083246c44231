/* fake-factory - a stand-in Talos Image Factory for integration tests.
 *
 *   fake-factory READY-FILE LOG-DIR MODE     MODE: ok | fail | garbage | hang
 * Listens on 127.0.0.1:0, writes the port to READY-FILE, and answers
 * POST /schematics like the real factory (201, {"id": sha256(body),
 * "schematic": body}) in mode ok, 500 in mode fail, non-JSON in mode
 * garbage.  In mode hang it listens and never accepts: connections
 * complete in the kernel and requests are never answered.  Every request
 * body is saved as LOG-DIR/post-N.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "base/util.h"
#include "loopback-httpd.h"
#include "talos/schematic.h"

static const char *logdir, *mode;
static int nposts;

static enum MHD_Result on_req(struct MHD_Connection *c, const char *url, const char *method, const char *reqbody,
			      size_t reqlen)
{
	struct MHD_Response *resp;
	char *body, id[65], path[4096];
	int status = 201;
	enum MHD_Result ok;

	if (strcmp(method, "POST") != 0 || strcmp(url, "/schematics") != 0) {
		status = 404;
		body = att_strdup("{\"error\":\"not found\"}");
	} else {
		FILE *f;

		snprintf(path, sizeof(path), "%s/post-%d.yaml", logdir, ++nposts);
		f = fopen(path, "w");
		if (f) {
			fwrite(reqbody, 1, reqlen, f);
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

			att_schematic_id(reqbody, id);
			o = json_pack("{s:s,s:s}", "id", id, "schematic", reqbody);
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

/* A factory that never answers: listen, write the port, never accept. */
static int hang(const char *ready_file)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	FILE *f;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return 1;
	f = fopen(ready_file, "w");
	if (!f)
		return 1;
	fprintf(f, "%u\n", ntohs(sa.sin_port));
	fclose(f);
	for (;;)
		pause();	/* until SIGTERM */
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: fake-factory READY-FILE LOG-DIR ok|fail|garbage|hang\n");
		return 2;
	}
	logdir = argv[2];
	mode = argv[3];
	if (strcmp(mode, "hang") == 0)
		return hang(argv[1]);
	return test_httpd_run(argv[1], on_req);
}
