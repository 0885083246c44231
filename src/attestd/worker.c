/* worker.c - leased background jobs (see worker.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/util.h"
#include "machine/sweep.h"
#include "obs/log.h"
#include "worker.h"

struct att_worker {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
	struct att_db *db;
	struct att_worker_conf conf;
	char topic[96];
};

static pthread_once_t holder_once = PTHREAD_ONCE_INIT;
static char holder[128];

static void holder_init(void)
{
	char host[64] = "host";
	uint8_t rnd[4] = { 0 };

	gethostname(host, sizeof(host) - 1);
	(void)att_random(rnd, sizeof(rnd));
	snprintf(holder, sizeof(holder), "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0], rnd[1], rnd[2],
		 rnd[3]);
}

const char *att_worker_holder(void)
{
	pthread_once(&holder_once, holder_init);
	return holder;
}

/* Sleep until the interval passes, a kick, or stop; false on stop. */
static bool wait_turn(struct att_worker *w)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += w->conf.interval_ms / 1000;
	until.tv_nsec += (long)(w->conf.interval_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!w->stop && !w->kicked && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
	w->kicked = false;
	pthread_mutex_unlock(&w->mu);
	return !w->stop;
}

static void *worker_main(void *arg)
{
	struct att_worker *w = arg;
	const char *me = att_worker_holder();
	int64_t ttl = 3 * w->conf.interval_ms / 1000;
	bool held = false, failing = false;

	if (ttl < 3)
		ttl = 3;
	struct timespec renewed = { 0, 0 };

	while (wait_turn(w)) {
		bool claimed = held;
		struct timespec now;
		int r = 0;

		/* renew a held lease once a third of its lifetime has passed, not
		 * on every run: a renewal is a durable write */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!held || now.tv_sec - renewed.tv_sec >= ttl / 3) {
			r = att_lease_claim(w->db, w->conf.name, me, ttl, &claimed);
			if (r == 0 && claimed)
				renewed = now;
		}

		if (r == 0 && claimed != held) {
			att_log_info(w->topic, "%s the %s lease (holder %s)", claimed ? "Acquired" : "Lost", w->conf.name,
				     me);
			held = claimed;
		}
		if (r == 0 && claimed) {
			r = w->conf.fn(w->conf.ctx, me);
			if (r > 0 && w->conf.log_done)
				att_log_info(w->topic, w->conf.log_done, r);
		}
		if (r < 0 && !failing)
			att_log_warning(w->topic, "%s skipped: %s", w->conf.name, att_strerror(r));
		failing = r < 0;
	}
	return NULL;
}

int att_worker_start(struct att_db *db, const struct att_worker_conf *conf, struct att_worker **ret)
{
	struct att_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return ATT_E_NOMEM;
	w->db = db;
	w->conf = *conf;
	if (w->conf.interval_ms < 10)
		w->conf.interval_ms = 10;
	snprintf(w->topic, sizeof(w->topic), "attestd.%s", conf->name);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return ATT_E_IO;
	}
	*ret = w;
	return 0;
}

void att_worker_kick(struct att_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->kicked = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void att_worker_stop(struct att_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
