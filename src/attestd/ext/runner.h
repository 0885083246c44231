/* runner.h - a hook call on its own thread, with a timeout (runner.c). */
#ifndef ATTESTD_EXT_RUNNER_H
#define ATTESTD_EXT_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_ext;
struct att_ext_hook;
struct att_ext_runner;

#define ATT_EXT_RUN_TIMEOUT (-100)
#define ATT_EXT_RUN_SKIPPED (-101)	/* not run: held back, or the batch ran out of time */

/* One call, owning its copy of the event (a hook that overruns keeps
 * using it after the worker gave up). */
struct att_ext_job {
	struct att_ext *ext;
	const struct att_ext_hook *hook;
	int64_t id;
	char *name, *json, *target;
	size_t len;
	json_t *doc;
	int attempt;
	/* "<consumer> <machine>" (NULL: no order to keep); when a call fails
	 * and retry_on_error, later calls with the same key are not run */
	char *key;
	bool retry_on_error;
	int result;
	char error[512];
};

struct att_ext_outcome {
	int result;		/* att_ext_result, ATT_EXT_RUN_TIMEOUT or ATT_EXT_RUN_SKIPPED */
	char error[512];
};

void att_ext_job_free(struct att_ext_job *j);
/* Run jobs[0..n) in order on *rp (created on first use), each call given
 * timeout_ms; none starts later than start_within_ms from now.  Takes the
 * jobs (and the array, malloc'd); fills out[0..n).  Returns 0, or
 * ATT_EXT_RUN_TIMEOUT when a call overran: that one's outcome is
 * ATT_EXT_RUN_TIMEOUT, the later ones ATT_EXT_RUN_SKIPPED, and the runner
 * is abandoned (*rp becomes NULL; its thread frees the jobs). */
int att_ext_run_batch(struct att_ext_runner **rp, struct att_ext_job **jobs, size_t n, int64_t timeout_ms,
		      int64_t start_within_ms, struct att_ext_outcome *out);
void att_ext_runner_free(struct att_ext_runner *r);

#endif
