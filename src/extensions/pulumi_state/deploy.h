/* deploy.h - server-side deployments of the pulumi_state extension:
 *   deploy.c   the routes (queue, list, get, cancel), deployment tokens
 *   worker.c   the runner thread: claim, clone, run, record
 *   run.c      one command in its own process group, output captured
 *   sandbox.c  bubblewrap or a dedicated user around those commands */
#ifndef PULUMI_STATE_DEPLOY_H
#define PULUMI_STATE_DEPLOY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pl_log {
	char *p;
	size_t len, cap;
	bool truncated;
};
void pl_log_add(struct pl_log *l, const char *p, size_t n);
void pl_log_printf(struct pl_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { PL_RUN_EXITED = 0, PL_RUN_ERROR = -1, PL_RUN_TIMEOUT = -2, PL_RUN_CANCELLED = -3 };
struct pl_creds {
	bool drop;	/* the child switches to uid/gid (groups: gid only) before exec */
	uid_t uid;
	gid_t gid;
	int keep_fd;	/* > 0: the child gets this descriptor as fd 3 (bwrap --args 3) */
};
/* Run argv[0] (an absolute path) in cwd with envp, as creds when given
 * (else attestd's user); output into log. */
int pl_run(const char *const argv[], char *const envp[], const char *cwd, const struct pl_creds *creds,
	   struct pl_log *log, int64_t timeout_s, bool (*cancelled)(void *), void *arg, int *ret_exit);
int pl_which(const char *prog, char *out, size_t outlen);

/* sandbox.c: ITL_PULUMI_DEPLOY_SANDBOX, ITL_PULUMI_DEPLOY_USER, ITL_PULUMI_BWRAP */
#define PL_SANDBOX_DIR "/deploy"	/* the work directory inside bubblewrap */
struct att_ext;
int pl_sandbox_setup(struct att_ext *ext);	/* -1: invalid settings (logged) */
const char *pl_sandbox_refusal(void);		/* why no deployment can run here, or NULL */
const char *pl_sandbox_name(void);		/* for the deployment's log */
const char *pl_sandbox_workdir(const char *host_dir);	/* the work directory as the commands see it */
int pl_sandbox_prepare(const char *workdir, const char *file_repo);
/* pl_run, confined: argv, cwd and paths in envp are the commands' view
 * (pl_sandbox_workdir); ro_path is also visible read-only (a file:// repository). */
int pl_sandbox_run(const char *const argv[], char *const envp[], const char *workdir, const char *cwd,
		   const char *ro_path, struct pl_log *log, int64_t timeout_s, bool (*cancelled)(void *), void *arg,
		   int *ret_exit);

/* worker.c */
int pl_deploy_start(struct att_ext *ext);
void pl_deploy_stop(void);
void pl_deploy_wake(void);
extern bool pl_deploy_available;	/* the CLI exists: this replica runs deployments */

#endif
