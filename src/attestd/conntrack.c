/* conntrack.c - the total header deadline (conntrack.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "base/err.h"
#include "conntrack.h"
#include "obs/log.h"

struct entry {
	struct entry *prev, *next;
	int fd;
	bool waiting;		/* for a request's headers */
	bool reaped;
	double since;
};

struct att_conntrack {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	bool stop;
	double timeout;
	struct entry head;	/* circular list */
	uint64_t reaped;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every half second: shut down what waited for headers too long.  The
 * entry (and so the fd) is removed under the same lock before MHD
 * closes the socket, so a reused fd is never touched. */
static void *reaper(void *arg)
{
	struct att_conntrack *ct = arg;

	pthread_mutex_lock(&ct->mu);
	while (!ct->stop) {
		struct timespec until;
		double now = mono_now();

		for (struct entry *e = ct->head.next; e != &ct->head; e = e->next)
			if (e->waiting && !e->reaped && now - e->since > ct->timeout) {
				shutdown(e->fd, SHUT_RDWR);
				e->reaped = true;
				ct->reaped++;
			}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 500000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ct->cv, &ct->mu, &until);
	}
	pthread_mutex_unlock(&ct->mu);
	return NULL;
}

int att_conntrack_new(int64_t header_timeout_seconds, struct att_conntrack **ret)
{
	struct att_conntrack *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return ATT_E_NOMEM;
	ct->timeout = (double)header_timeout_seconds;
	ct->head.next = ct->head.prev = &ct->head;
	pthread_mutex_init(&ct->mu, NULL);
	pthread_cond_init(&ct->cv, NULL);
	if (pthread_create(&ct->th, NULL, reaper, ct) != 0) {
		pthread_mutex_destroy(&ct->mu);
		pthread_cond_destroy(&ct->cv);
		free(ct);
		return ATT_E_IO;
	}
	*ret = ct;
	return 0;
}

void att_conntrack_free(struct att_conntrack *ct)
{
	if (!ct)
		return;
	pthread_mutex_lock(&ct->mu);
	ct->stop = true;
	pthread_cond_signal(&ct->cv);
	pthread_mutex_unlock(&ct->mu);
	pthread_join(ct->th, NULL);
	while (ct->head.next != &ct->head) {	/* the daemon is stopped: only leftovers */
		struct entry *e = ct->head.next;

		ct->head.next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&ct->mu);
	pthread_cond_destroy(&ct->cv);
	free(ct);
}

void att_conntrack_notify(void *cls, struct MHD_Connection *conn, void **socket_context, int toe)
{
	struct att_conntrack *ct = cls;
	struct entry *e = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		e = calloc(1, sizeof(*e));
		if (!e || !ci) {
			free(e);
			return;	/* untracked: only the idle timeout applies */
		}
		e->fd = ci->connect_fd;
		e->waiting = true;
		e->since = mono_now();
		pthread_mutex_lock(&ct->mu);
		e->next = ct->head.next;
		e->prev = &ct->head;
		ct->head.next->prev = e;
		ct->head.next = e;
		pthread_mutex_unlock(&ct->mu);
		*socket_context = e;
	} else if (e) {
		pthread_mutex_lock(&ct->mu);
		e->prev->next = e->next;
		e->next->prev = e->prev;
		pthread_mutex_unlock(&ct->mu);
		free(e);
		*socket_context = NULL;
	}
}

static void set_waiting(struct att_conntrack *ct, struct MHD_Connection *conn, bool waiting)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct entry *e = ci ? ci->socket_context : NULL;

	if (!e)
		return;
	pthread_mutex_lock(&ct->mu);
	e->waiting = waiting;
	e->since = mono_now();
	pthread_mutex_unlock(&ct->mu);
}

void att_conntrack_headers_done(struct att_conntrack *ct, struct MHD_Connection *conn)
{
	set_waiting(ct, conn, false);
}

void att_conntrack_request_done(struct att_conntrack *ct, struct MHD_Connection *conn)
{
	set_waiting(ct, conn, true);
}

uint64_t att_conntrack_reaped(struct att_conntrack *ct)
{
	uint64_t n;

	pthread_mutex_lock(&ct->mu);
	n = ct->reaped;
	pthread_mutex_unlock(&ct->mu);
	return n;
}
