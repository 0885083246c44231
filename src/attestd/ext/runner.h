/* runner.h - a hook call on its own thread, with a timeout (runner.c). */
#ifndef ATTESTD_EXT_RUNNER_H
#define ATTESTD_EXT_RUNNER_H

#include <stdint.h>

#include <jansson.h>

struct att_ext;
struct att_ext_hook;
struct att_ext_runner;

#define ATT_EXT_RUN_TIMEOUT (-100)

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
	int result;
	char error[512];
};

void att_ext_job_free(struct att_ext_job *j);
/* Run the job on *rp (created on first use) and wait up to timeout_ms.
 * Returns the hook's att_ext_result, or ATT_EXT_RUN_TIMEOUT (the runner is then
 * abandoned: *rp becomes NULL, the job is freed by its thread).  Otherwise
 * the caller still owns j. */
int att_ext_run(struct att_ext_runner **rp, struct att_ext_job *j, int64_t timeout_ms);
void att_ext_runner_free(struct att_ext_runner *r);

#endif
