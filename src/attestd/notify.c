/* notify.c - sd_notify(3)'s protocol, written out: one AF_UNIX datagram
 * of newline-separated KEY=VALUE assignments to the socket named by
 * $NOTIFY_SOCKET.  attestd sends READY=1 once it accepts connections
 * (Type=notify), STOPPING=1 on shutdown, and WATCHDOG=1 from a thread
 * that first checks that the HTTP server still answers. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/err.h"
#include "base/util.h"
#include "notify.h"
#include "obs/log.h"

#define LOG "attestd"

struct att_notify_watchdog {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	uint64_t usec;
	char url[200];
};

int att_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t plen;
	socklen_t salen;
	ssize_t w;
	int fd;

	if (!path || !path[0])
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
		return ATT_E_INVAL;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ATT_E_IO;
	w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	close(fd);
	return w == (ssize_t)strlen(msg) ? 0 : ATT_E_IO;
}

uint64_t att_notify_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	uint64_t v, p;

	if (!us || att_parse_u64(us, strlen(us), 1, UINT64_MAX / 2, &v) < 0)
		return 0;
	if (pid && pid[0]) {
		if (att_parse_u64(pid, strlen(pid), 1, UINT32_MAX, &p) < 0 || p != (uint64_t)getpid())
			return 0;
	}
	return v;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return sz * n;
}

/* 0 when GET /healthz answers 200 within the timeout. */
static int healthy(const char *url, long timeout_ms)
{
	CURL *h = curl_easy_init();
	long code = 0;
	CURLcode rc;

	if (!h)
		return ATT_E_NOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && code == 200 ? 0 : ATT_E_IO;
}

static void *watchdog_main(void *arg)
{
	struct att_notify_watchdog *w = arg;
	uint64_t half = w->usec / 2;
	long timeout_ms = (long)(w->usec / 4000) > 0 ? (long)(w->usec / 4000) : 1;
	bool warned = false;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec until;

		pthread_mutex_unlock(&w->mu);
		if (healthy(w->url, timeout_ms) == 0) {
			if (att_notify("WATCHDOG=1") < 0 && !warned) {
				att_log_warning(LOG, "cannot send WATCHDOG=1 to $NOTIFY_SOCKET");
				warned = true;
			}
		} else {
			att_log_error(LOG, "watchdog: %s did not answer 200 within %ld ms; not telling systemd we are alive",
				      w->url, timeout_ms);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)(half / 1000000);
		until.tv_nsec += (long)(half % 1000000) * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w->mu);
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int att_notify_watchdog_start(const char *http_addr, uint64_t usec, struct att_notify_watchdog **ret)
{
	struct att_notify_watchdog *w;
	const char *host = http_addr;
	char buf[128];

	*ret = NULL;
	if (usec == 0)
		return 0;
	/* a wildcard listener is reached over loopback */
	if (strncmp(http_addr, "0.0.0.0:", 8) == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1%s", http_addr + 7);
		host = buf;
	} else if (strncmp(http_addr, "[::]:", 5) == 0) {
		snprintf(buf, sizeof(buf), "[::1]%s", http_addr + 4);
		host = buf;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return ATT_E_NOMEM;
	w->usec = usec;
	if (snprintf(w->url, sizeof(w->url), "http://%s/healthz", host) >= (int)sizeof(w->url)) {
		free(w);
		return ATT_E_INVAL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return ATT_E_IO;
	}
	*ret = w;
	return 0;
}

void att_notify_watchdog_stop(struct att_notify_watchdog *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
