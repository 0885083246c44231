/* backoff.c - retry delays for the node agent (see backoff.h). */
#include "agent/backoff.h"
#include "base/util.h"

void att_backoff_init(struct att_backoff *b, double min, double max)
{
	b->min = min > 0 ? min : 1;
	b->max = max >= b->min ? max : b->min;
	b->failures = 0;
}

double att_backoff_fail(struct att_backoff *b, double r, long retry_after)
{
	double d = b->min;

	for (unsigned i = 0; i < b->failures && d < b->max; i++)
		d *= 2;
	if (d > b->max)
		d = b->max;
	if (b->failures < 64)
		b->failures++;
	d = d / 2 + d / 2 * (r < 0 ? 0 : r >= 1 ? 0.999999 : r);
	if (retry_after > 0 && (double)retry_after > d)
		d = (double)retry_after > b->max ? b->max : (double)retry_after;
	return d;
}

void att_backoff_reset(struct att_backoff *b)
{
	b->failures = 0;
}

double att_backoff_interval(double interval, double r)
{
	return interval * (0.9 + 0.2 * (r < 0 ? 0 : r >= 1 ? 0.999999 : r));
}

double att_backoff_random(void)
{
	uint32_t v = 0;

	if (att_random(&v, sizeof(v)) < 0)
		return 0.5;
	return (double)v / 4294967296.0;
}
