/* runner.c - the boundary around an extension's hooks: they run on a
 * thread of their own and the delivery worker waits at most
 * ITL_EVENT_HOOK_TIMEOUT_SECONDS for each call.  A batch of calls is
 * handed over at once and run one after another (one thread hand-off per
 * batch, not per call: the hand-offs were an eighth of attestd's CPU at a
 * few thousand events/s).  A hook that overruns is recorded as a failed
 * attempt and its thread abandoned (a C function cannot be stopped from
 * outside): the thread finishes that call on its own, runs nothing more,
 * frees the batch and exits; the worker gets a fresh runner. */
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
	bool has_batch, done, abandoned, stop;
	struct att_ext_job **jobs;
	size_t n, cur;			/* jobs[cur] runs (or is next); n when all ran */
	struct timespec cur_deadline;	/* CLOCK_REALTIME: when jobs[cur] overruns */
	int64_t timeout_ms;
	struct timespec start_by;	/* no job starts after this */
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
	free(j->key);
	json_decref(j->doc);
	free(j);
}

static void runner_free(struct att_ext_runner *r)
{
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

static struct timespec after_ms(int64_t ms)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static bool passed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Does a call earlier in the batch hold this one back?  A failure that
 * will be retried (or a call not run) keeps that consumer's later events
 * for the same machine waiting: they go back unrun. */
static bool held_back(struct att_ext_job *const *jobs, size_t i)
{
	const struct att_ext_job *me = jobs[i];

	if (!me->key)
		return false;
	for (size_t k = 0; k < i; k++) {
		const struct att_ext_job *j = jobs[k];
		bool retried = j->result == ATT_EXT_RUN_SKIPPED ||
			       (j->result != ATT_EXT_OK && j->result != ATT_EXT_PERMANENT && j->retry_on_error);

		if (retried && j->key && strcmp(j->key, me->key) == 0)
			return true;
	}
	return false;
}

static void free_jobs(struct att_ext_job **jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		att_ext_job_free(jobs[i]);
	free(jobs);
}

/* Runs the batch in hand; with r->mu held on entry and on return.
 * false when the worker gave up on it (r was freed). */
static bool run_jobs(struct att_ext_runner *r)
{
	for (r->cur = 0; r->cur < r->n; r->cur++) {
		struct att_ext_job *j = r->jobs[r->cur];
		struct att_ext_event ev;
		int res;

		if (passed(&r->start_by) || held_back(r->jobs, r->cur)) {
			j->result = ATT_EXT_RUN_SKIPPED;
			continue;
		}
		r->cur_deadline = after_ms(r->timeout_ms);
		pthread_mutex_unlock(&r->mu);
		ev = (struct att_ext_event){ .id = j->id, .name = j->name, .json = j->json, .len = j->len,
					     .doc = j->doc, .target = j->target, .attempt = j->attempt,
					     .error = j->error, .errlen = sizeof(j->error) };
		res = att_ext_event_deliver(j->hook, j->ext, &ev);
		pthread_mutex_lock(&r->mu);
		j->result = res;
		if (r->abandoned) {
			/* nobody waits any more: clean up after ourselves */
			pthread_mutex_unlock(&r->mu);
			free_jobs(r->jobs, r->n);
			pthread_detach(r->th);
			runner_free(r);
			atomic_fetch_sub(&abandoned, 1);
			return false;
		}
	}
	return true;
}

static void *runner_main(void *arg)
{
	struct att_ext_runner *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->has_batch && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop)
			break;
		r->has_batch = false;
		if (!run_jobs(r))
			return NULL;
		r->done = true;
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

int att_ext_run_batch(struct att_ext_runner **rp, struct att_ext_job **jobs, size_t n, int64_t timeout_ms,
		      int64_t start_within_ms, struct att_ext_outcome *out)
{
	struct att_ext_runner *r = *rp;
	bool overran = false;

	if (!r && !(r = *rp = runner_new())) {
		for (size_t i = 0; i < n; i++) {
			out[i].result = ATT_EXT_RUN_SKIPPED;	/* not run: they go back */
			out[i].error[0] = 0;
		}
		free_jobs(jobs, n);
		return ATT_E_NOMEM;
	}
	pthread_mutex_lock(&r->mu);
	r->jobs = jobs;
	r->n = n;
	r->cur = 0;
	r->timeout_ms = timeout_ms;
	r->cur_deadline = after_ms(timeout_ms);
	r->start_by = after_ms(start_within_ms);
	r->has_batch = true;
	r->done = false;
	pthread_cond_broadcast(&r->cv);
	/* wake at the deadline of the call running then; a later call has a later one */
	while (!r->done && !overran)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &r->cur_deadline) == ETIMEDOUT && !r->done)
			overran = passed(&r->cur_deadline) && r->cur < r->n;
	/* copied out under the lock: after an overrun the thread owns the jobs */
	for (size_t i = 0; i < n; i++) {
		out[i].result = !overran || i < r->cur ? jobs[i]->result
			      : i == r->cur ? ATT_EXT_RUN_TIMEOUT : ATT_EXT_RUN_SKIPPED;
		out[i].error[0] = 0;
		if (!overran || i < r->cur) {	/* jobs[cur] may still be writing its own */
			memcpy(out[i].error, jobs[i]->error, sizeof(out[i].error));
			out[i].error[sizeof(out[i].error) - 1] = 0;
		}
	}
	if (overran) {
		r->abandoned = true;
		atomic_fetch_add(&abandoned, 1);
		pthread_mutex_unlock(&r->mu);
		*rp = NULL;		/* the thread frees itself and the jobs */
		return ATT_EXT_RUN_TIMEOUT;
	}
	r->jobs = NULL;
	r->n = 0;
	pthread_mutex_unlock(&r->mu);
	free_jobs(jobs, n);
	return 0;
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
