/* deploy.h - server-side deployments of the pulumi_state extension:
 *   deploy.c   the routes (queue, list, get, cancel), deployment tokens
 *   worker.c   the runner thread: claim, clone, run, record
 *   run.c      one command in its own process group, output captured */
#ifndef PULUMI_STATE_DEPLOY_H
#define PULUMI_STATE_DEPLOY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pl_log {
	char *p;
	size_t len, cap;
	bool truncated;
};
void pl_log_add(struct pl_log *l, const char *p, size_t n);
void pl_log_printf(struct pl_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { PL_RUN_EXITED = 0, PL_RUN_ERROR = -1, PL_RUN_TIMEOUT = -2, PL_RUN_CANCELLED = -3 };
/* Run argv[0] (an absolute path) in cwd with envp; output into log. */
int pl_run(const char *const argv[], char *const envp[], const char *cwd, struct pl_log *log, int64_t timeout_s,
	   bool (*cancelled)(void *), void *arg, int *ret_exit);
int pl_which(const char *prog, char *out, size_t outlen);

/* worker.c */
struct att_ext;
int pl_deploy_start(struct att_ext *ext);
void pl_deploy_stop(void);
void pl_deploy_wake(void);
extern bool pl_deploy_available;	/* the CLI exists: this replica runs deployments */

#endif
