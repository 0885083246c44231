/* runner.c - the boundary around an extension's hook: it runs on a
 * thread of its own and the delivery worker waits at most
 * ITL_EVENT_HOOK_TIMEOUT_SECONDS for it.  A hook that overruns is
 * recorded as a failed attempt and its thread abandoned (a C function
 * cannot be stopped from outside): the thread finishes on its own, frees
 * its copy of the event and exits; the worker gets a fresh runner. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/util.h"
#include "ext/ext.h"
#include "ext/runner.h"

struct att_ext_runner {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool has_job, done, abandoned, stop;
	struct att_ext_job *job;
};

static atomic_uint abandoned;

unsigned att_ext_abandoned_runners(void)
{
	return atomic_load(&abandoned);
}

void att_ext_job_free(struct att_ext_job *j)
{
	if (!j)
		return;
	free(j->json);
	free(j->name);
	free(j->target);
	json_decref(j->doc);
	free(j);
}

static void runner_free(struct att_ext_runner *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

static void *runner_main(void *arg)
{
	struct att_ext_runner *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct att_ext_job *j;
		struct att_ext_event ev;
		int res;

		while (!r->has_job && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop)
			break;
		j = r->job;
		r->has_job = false;
		pthread_mutex_unlock(&r->mu);
		ev = (struct att_ext_event){ .id = j->id, .name = j->name, .json = j->json, .len = j->len,
					     .doc = j->doc, .target = j->target, .attempt = j->attempt,
					     .error = j->error, .errlen = sizeof(j->error) };
		res = att_ext_event_deliver(j->hook, j->ext, &ev);
		pthread_mutex_lock(&r->mu);
		j->result = res;
		r->done = true;
		if (r->abandoned) {
			/* nobody waits any more: clean up after ourselves */
			pthread_mutex_unlock(&r->mu);
			att_ext_job_free(j);
			pthread_detach(r->th);
			runner_free(r);
			atomic_fetch_sub(&abandoned, 1);
			return NULL;
		}
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static struct att_ext_runner *runner_new(void)
{
	struct att_ext_runner *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->th, NULL, runner_main, r) != 0) {
		runner_free(r);
		return NULL;
	}
	return r;
}

int att_ext_run(struct att_ext_runner **rp, struct att_ext_job *j, int64_t timeout_ms)
{
	struct att_ext_runner *r = *rp;
	struct timespec until;
	int res;

	if (!r && !(r = *rp = runner_new())) {
		att_ext_job_free(j);
		return ATT_E_NOMEM;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->mu);
	r->job = j;
	r->has_job = true;
	r->done = false;
	pthread_cond_broadcast(&r->cv);
	while (!r->done && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT)
		;
	if (!r->done) {
		r->abandoned = true;
		atomic_fetch_add(&abandoned, 1);
		pthread_mutex_unlock(&r->mu);
		*rp = NULL;		/* the thread frees itself and the job */
		return ATT_EXT_RUN_TIMEOUT;
	}
	res = j->result;
	pthread_mutex_unlock(&r->mu);
	return res;
}

void att_ext_runner_free(struct att_ext_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->th, NULL);
	runner_free(r);
}
