/* backoff.h - when the node agent tries again.
 *
 * After a failure (service unreachable, 5xx, 429) the delay doubles from
 * min up to max, and a random factor picks a value in [d/2, d) ("equal
 * jitter"): a fleet that lost its service does not come back in step,
 * and the delay is never 0, so the agent never spins.  A Retry-After
 * from the service raises the delay (capped at max).  A success resets
 * it; between successful polls the agent waits the interval +-10%. */
#ifndef ATT_AGENT_BACKOFF_H
#define ATT_AGENT_BACKOFF_H

struct att_backoff {
	double min, max;	/* seconds, 0 < min <= max */
	unsigned failures;
};

void att_backoff_init(struct att_backoff *b, double min, double max);
/* r: uniform in [0,1); retry_after: seconds or -1. */
double att_backoff_fail(struct att_backoff *b, double r, long retry_after);
void att_backoff_reset(struct att_backoff *b);
/* interval * (0.9 + 0.2 r) */
double att_backoff_interval(double interval, double r);
/* A uniform random number in [0,1) from the system's CSPRNG. */
double att_backoff_random(void);

#endif
