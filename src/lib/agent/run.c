/* run.c - the loop of `attest-agent run` (see agent.h). */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/backoff.h"
#include "obs/log.h"

#define LOGR "attest-agent"

/* Sleep up to s seconds; false when a stop was requested. */
static bool nap(double s, volatile sig_atomic_t *stop)
{
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)s;
	end.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (!(stop && *stop)) {
		struct timespec d;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			return true;
		/* short slices: a stop signal is seen within 200 ms */
		d.tv_sec = 0;
		d.tv_nsec = 200 * 1000 * 1000;
		if (end.tv_sec == now.tv_sec && end.tv_nsec - now.tv_nsec < d.tv_nsec)
			d.tv_nsec = end.tv_nsec - now.tv_nsec;
		nanosleep(&d, NULL);
	}
	return false;
}

enum att_poll att_agent_run(struct att_agent *a, const struct att_agent_loop *l)
{
	struct att_backoff b;
	uint64_t n = 0;
	enum att_poll p = ATT_POLL_OK;

	att_backoff_init(&b, l->retry_min, l->retry_max);
	if (a->st.revoked) {
		att_log_warning(LOGR, "machine %s is revoked (state directory %s): not contacting the service",
				a->st.machine_id, a->o->state_dir);
		if (l->once)
			return ATT_POLL_STOP;
		while (!(l->stop && *l->stop))
			nap(3600, l->stop);
		return ATT_POLL_STOP;
	}
	for (;;) {
		double wait;

		p = att_agent_poll(a);
		n++;
		if (l->once || (l->max_polls && n >= l->max_polls) || (l->stop && *l->stop))
			break;
		if (p == ATT_POLL_STOP) {
			/* revoked: stay alive but silent, so a restart-always
			 * supervisor does not start a restart loop */
			while (!(l->stop && *l->stop))
				nap(3600, l->stop);
			break;
		}
		if (p == ATT_POLL_OK) {
			if (b.failures)
				att_log_info(LOGR, "poll succeeded after %u failed attempt(s)", b.failures);
			att_backoff_reset(&b);
			wait = att_backoff_interval(l->interval, att_backoff_random());
		} else {
			wait = att_backoff_fail(&b, att_backoff_random(), a->retry_after);
			att_log_info(LOGR, "next attempt in %.1f s (failure %u in a row)", wait, b.failures);
		}
		if (!nap(wait, l->stop))
			break;
	}
	return p;
}
