/* loopback-httpd.c - see loopback-httpd.h. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "loopback-httpd.h"

struct req {
	struct att_buf b;
};

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *ver, const char *data, size_t *size, void **ctx)
{
	test_httpd_handler h = (test_httpd_handler)cls;
	struct req *r = *ctx;

	(void)ver;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		att_buf_init(&r->b, 16 << 20);
		*ctx = r;
		return MHD_YES;
	}
	if (*size) {
		(void)att_buf_append(&r->b, data, *size);
		*size = 0;
		return MHD_YES;
	}
	return h(c, url, method, r->b.p ? r->b.p : "", r->b.len);
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

int test_httpd_run(const char *ready_file, test_httpd_handler h)
{
	struct MHD_Daemon *d;
	struct sockaddr_in sa = { 0 };
	const union MHD_DaemonInfo *di;
	sigset_t set;
	int sig;
	FILE *f;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_req, (void *)h, MHD_OPTION_SOCK_ADDR,
			     &sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	if (!d)
		return 1;
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	f = fopen(ready_file, "w");
	if (!f) {
		MHD_stop_daemon(d);
		return 1;
	}
	fprintf(f, "%u\n", di ? di->port : 0);
	fclose(f);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
