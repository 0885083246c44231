/* worker.c - the deployment runner: a thread that claims queued
 * deployments, clones and runs each in a temporary directory, renews
 * its claim while the command runs, notices cancel requests, and
 * records status, exit code and the (capped) log.  A deployment whose
 * runner stopped (attestd restarted, a replica died) is marked failed
 * when its claim runs out; queued ones survive a restart and run. */
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "deploy.h"
#include "pulumi.h"

#define LEASE 30	/* seconds a claim lasts without renewal */
#define RENEW 5

static pthread_t thread;
static bool started, stopping;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static char runner[37];
static struct att_ext *ext;

struct job {
	char id[37], op[16], token[68], actor[128], stackref[320];
	char *url, *branch, *dir, *env;
	int64_t renewed;
	const char *stop_reason;
};

void pl_deploy_wake(void)
{
	pthread_mutex_lock(&mu);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&mu);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Fail the deployments whose runner's claim ran out. */
static int reap(struct att_ext_db *db)
{
	return pl_host->db_exec(db,
				"UPDATE extension_pulumi_state_deployments SET status = 'failed', finished_at = ?, token_hash = NULL,"
				" reason = 'its runner stopped while it ran (attestd restarted or a replica died)'"
				" WHERE status = 'running' AND lease_expires < ?",
				"ii", pl_now(), pl_now());
}

/* 1: claimed one into j; 0: none queued; < 0: error. */
static int claim(struct job *j)
{
	struct att_ext_db *db = pl_host->db_acquire(ext);
	struct att_ext_rows *rows;
	char hash[65];
	int rc;

	if (!db)
		return ATT_EXT_UNAVAILABLE;
	rc = pl_host->db_begin(db);
	if (rc >= 0)
		rc = reap(db);
	if (rc >= 0)
		rc = pl_host->db_query(db, &rows,
				       "SELECT d.id, d.operation, d.repo_url, d.branch, d.repo_dir, d.env, d.actor, s.org,"
				       " s.project, s.stack FROM extension_pulumi_state_deployments d JOIN"
				       " extension_pulumi_state_stacks s ON s.id = d.stack_id WHERE d.status = 'queued'"
				       " ORDER BY d.created_at, d.id LIMIT 1",
				       "");
	if (rc >= 0) {
		rc = pl_host->rows_next(rows);
		if (rc == 1) {
			snprintf(j->id, sizeof(j->id), "%s", pl_host->rows_text(rows, 0));
			snprintf(j->op, sizeof(j->op), "%s", pl_host->rows_text(rows, 1));
			j->url = dup_or_null(pl_host->rows_text(rows, 2));
			j->branch = dup_or_null(pl_host->rows_text(rows, 3));
			j->dir = dup_or_null(pl_host->rows_text(rows, 4));
			j->env = dup_or_null(pl_host->rows_text(rows, 5));
			snprintf(j->actor, sizeof(j->actor), "%s", pl_host->rows_text(rows, 6));
			snprintf(j->stackref, sizeof(j->stackref), "%s/%s/%s", pl_host->rows_text(rows, 7),
				 pl_host->rows_text(rows, 8), pl_host->rows_text(rows, 9));
		}
		pl_host->rows_done(rows);
	}
	if (rc == 1) {
		/* the short-lived token the child uses as PULUMI_ACCESS_TOKEN */
		memcpy(j->token, "pd-", 3);
		pl_random_token(j->token + 3);
		pl_sha256_hex(j->token, strlen(j->token), hash);
		j->renewed = pl_now();
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_deployments SET status = 'running', runner = ?,"
				      " lease_expires = ?, started_at = ?, token_hash = ? WHERE id = ? AND status = 'queued'",
				      "siiss", runner, j->renewed + LEASE, j->renewed, hash, j->id);
		rc = rc == 1 ? 1 : rc < 0 ? rc : 0;
	}
	if (rc >= 0 && pl_host->db_commit(db) < 0)
		rc = ATT_EXT_ERROR;
	if (rc < 0)
		pl_host->db_rollback(db);
	pl_host->db_release(ext, db);
	return rc;
}

/* Called about once a second while a command runs. */
static bool cancelled(void *arg)
{
	struct job *j = arg;
	struct att_ext_db *db;
	struct att_ext_rows *rows;
	bool cancel = false;

	if (__atomic_load_n(&stopping, __ATOMIC_SEQ_CST)) {
		j->stop_reason = "attestd stopped while it ran";
		return true;
	}
	db = pl_host->db_acquire(ext);
	if (!db)
		return false;
	if (pl_now() - j->renewed >= RENEW &&
	    pl_host->db_exec(db, "UPDATE extension_pulumi_state_deployments SET lease_expires = ? WHERE id = ? AND runner = ?",
			     "iss", pl_now() + LEASE, j->id, runner) >= 0)
		j->renewed = pl_now();
	if (pl_host->db_query(db, &rows, "SELECT cancel_requested FROM extension_pulumi_state_deployments WHERE id = ?",
			      "s", j->id) == 0) {
		cancel = pl_host->rows_next(rows) == 1 && pl_host->rows_int(rows, 0) != 0;
		pl_host->rows_done(rows);
	}
	pl_host->db_release(ext, db);
	return cancel;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? 0 : 0;
}

static void envadd(char **env, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void envadd(char **env, size_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&env[*n], fmt, ap) >= 0)
		(*n)++;
	else
		env[*n] = NULL;
	va_end(ap);
}

/* The child's environment: nothing of attestd's but PATH. */
static char **child_env(const struct job *j, const char *home, bool pulumi)
{
	json_t *user = pulumi && j->env ? json_loads(j->env, 0, NULL) : NULL;
	size_t n = 0, cap = 16 + json_object_size(user);
	char **env = calloc(cap, sizeof(*env));
	const char *k, *url = pl_cfg.deploy_backend_url[0] ? pl_cfg.deploy_backend_url : pl_host->service_url(ext);
	json_t *v;

	if (!env) {
		json_decref(user);
		return NULL;
	}
	envadd(env, &n, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	envadd(env, &n, "HOME=%s", home);
	if (pulumi) {
		envadd(env, &n, "PULUMI_HOME=%s/.pulumi", home);
		envadd(env, &n, "PULUMI_BACKEND_URL=%s", url);
		envadd(env, &n, "PULUMI_ACCESS_TOKEN=%s", j->token);
		envadd(env, &n, "PULUMI_SKIP_UPDATE_CHECK=true");
		json_object_foreach(user, k, v)
			envadd(env, &n, "%s=%s", k, json_string_value(v));
	} else {
		envadd(env, &n, "GIT_TERMINAL_PROMPT=0");
		envadd(env, &n, "GIT_CONFIG_NOSYSTEM=1");
		envadd(env, &n, "GIT_ALLOW_PROTOCOL=%s", pl_cfg.deploy_allow_file ? "https:file" : "https");
	}
	json_decref(user);
	return env;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++) {
		OPENSSL_cleanse(env[i], strlen(env[i]));
		free(env[i]);
	}
	free(env);
}

/* Clone, then run pulumi; returns the final status, sets *exit_code.
 * tmp is the work directory on the host, w the same as the commands see it. */
static const char *execute(struct job *j, const char *tmp, struct pl_log *log, int *exit_code, const char **reason)
{
	char git[512], cli[PATH_MAX], found[PATH_MAX], repo[600], cwd[1100], stack[330];
	const char *w = pl_sandbox_workdir(tmp), *file_repo = strncmp(j->url, "file://", 7) ? NULL : j->url + 7;
	char **env;
	int rc, code = -1;

	if (pl_which("git", git, sizeof(git)) < 0 || pl_which(pl_cfg.cli, found, sizeof(found)) < 0) {
		*reason = "git or the pulumi CLI (ITL_PULUMI_CLI) is not installed";
		return "failed";
	}
	if (!realpath(found, cli))	/* the sandbox holds the directory the CLI really is in */
		snprintf(cli, sizeof(cli), "%s", found);
	if (pl_sandbox_prepare(tmp, file_repo) < 0) {
		*reason = "cannot prepare the work directory for the sandbox";
		return "failed";
	}
	pl_log_printf(log, "sandbox: %s\n", pl_sandbox_name());
	snprintf(repo, sizeof(repo), "%s/repo", w);
	{
		const char *argv[] = { git, "clone", "--depth", "1", "--quiet", j->branch ? "--branch" : "--",
				 j->branch ? j->branch : j->url, j->branch ? "--" : repo, j->branch ? j->url : NULL,
				 j->branch ? repo : NULL, NULL };

		pl_log_printf(log, "$ git clone --depth 1 %s%s %s\n", j->branch ? "--branch " : "",
			      j->branch ? j->branch : "", j->url);
		env = child_env(j, w, false);
		rc = env ? pl_sandbox_run(argv, env, tmp, w, file_repo, log, pl_cfg.deploy_timeout, cancelled, j, &code)
			 : PL_RUN_ERROR;
		free_env(env);
	}
	if (rc == PL_RUN_EXITED && code != 0) {
		*exit_code = code;
		*reason = "git clone failed";
		return "failed";
	}
	if (rc == PL_RUN_EXITED) {
		const char *argv[] = { cli, j->op, "--non-interactive", "--stack", stack,
				 strcmp(j->op, "preview") ? "--yes" : NULL, NULL };

		snprintf(stack, sizeof(stack), "%s", j->stackref);
		snprintf(cwd, sizeof(cwd), "%s/%s", repo, j->dir ? j->dir : "");
		pl_log_printf(log, "$ pulumi %s --non-interactive --stack %s%s (in %s)\n", j->op, stack,
			      strcmp(j->op, "preview") ? " --yes" : "", j->dir && *j->dir ? j->dir : ".");
		env = child_env(j, w, true);
		rc = env ? pl_sandbox_run(argv, env, tmp, cwd, NULL, log, pl_cfg.deploy_timeout, cancelled, j, &code)
			 : PL_RUN_ERROR;
		free_env(env);
	}
	*exit_code = code;
	switch (rc) {
	case PL_RUN_EXITED:
		/* it failed while attestd was stopping: its calls back into this
		 * service were refused, so the stop is the reason */
		if (code != 0 && __atomic_load_n(&stopping, __ATOMIC_SEQ_CST)) {
			*reason = "attestd stopped while it ran";
			return "failed";
		}
		*reason = code == 0 ? NULL : code == 127 ? "the command could not be started (missing repoDir?)"
							 : "pulumi exited with an error";
		return code == 0 ? "succeeded" : "failed";
	case PL_RUN_TIMEOUT:
		*reason = "timed out (ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS): its process group was killed";
		return "failed";
	case PL_RUN_CANCELLED:
		*reason = j->stop_reason ? j->stop_reason : "cancelled: its process group was killed";
		return j->stop_reason ? "failed" : "cancelled";
	default:
		*reason = "could not start a process";
		return "failed";
	}
}

static void finish(struct job *j, const char *status, int code, const char *reason, const struct pl_log *log)
{
	struct att_ext_db *db;
	char detail[512];
	int rc;

	for (int tries = 0; tries < 30; tries++) {
		db = pl_host->db_acquire(ext);
		rc = db ? pl_host->db_begin(db) : ATT_EXT_UNAVAILABLE;
		if (rc >= 0 && code >= 0)
			rc = pl_host->db_exec(db,
					      "UPDATE extension_pulumi_state_deployments SET status = ?, exit_code = ?, reason = ?,"
					      " log = ?, finished_at = ?, token_hash = NULL WHERE id = ?",
					      "sissis", status, (int64_t)code, reason, log->p ? log->p : "", pl_now(), j->id);
		else if (rc >= 0)	/* never exited by itself: no exit code */
			rc = pl_host->db_exec(db,
					      "UPDATE extension_pulumi_state_deployments SET status = ?, exit_code = NULL, reason = ?,"
					      " log = ?, finished_at = ?, token_hash = NULL WHERE id = ?",
					      "sssis", status, reason, log->p ? log->p : "", pl_now(), j->id);
		if (rc >= 0) {
			snprintf(detail, sizeof(detail), "pulumi %s: deployment %s %s (exit %d)%s%s", j->stackref, j->id,
				 status, code, reason ? ": " : "", reason ? reason : "");
			rc = pl_host->audit(db, j->actor, "pulumi.deployment.finish", NULL, detail, NULL);
		}
		if (rc >= 0)
			rc = pl_host->db_commit(db);
		if (rc < 0 && db)
			pl_host->db_rollback(db);
		if (db)
			pl_host->db_release(ext, db);
		if (rc >= 0)
			return;
		pl_host->log(ext, ATT_EXT_LOG_WARNING, "deployment %s: recording its end failed (%d), retrying", j->id, rc);
		sleep(1);
	}
	pl_host->log(ext, ATT_EXT_LOG_ERROR, "deployment %s: could not record its end (%s)", j->id, status);
}

static void run_job(struct job *j)
{
	char tmp[256];
	const char *base = getenv("TMPDIR"), *status, *reason = NULL;
	struct pl_log log = { .cap = pl_cfg.deploy_log_bytes };
	int code = -1;

	snprintf(tmp, sizeof(tmp), "%s/attestd-deploy-XXXXXX", base && *base ? base : "/tmp");
	if (pl_sandbox_refusal()) {
		status = "failed";
		reason = pl_sandbox_refusal();
		pl_log_printf(&log, "not run: %s\n", reason);
	} else if (!mkdtemp(tmp)) {
		status = "failed";
		reason = "cannot create a temporary directory";
	} else {
		pl_host->log(ext, ATT_EXT_LOG_INFO, "deployment %s: pulumi %s of %s", j->id, j->op, j->stackref);
		status = execute(j, tmp, &log, &code, &reason);
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (log.truncated)
		reason = reason ? reason : "log truncated (ITL_PULUMI_DEPLOY_LOG_BYTES)";
	pl_host->log(ext, ATT_EXT_LOG_INFO, "deployment %s: %s (exit %d)", j->id, status, code);
	finish(j, status, code, reason, &log);
	free(log.p);
}

static void *loop(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stopping, __ATOMIC_SEQ_CST)) {
		struct job j;
		struct timespec until;
		int rc;

		memset(&j, 0, sizeof(j));
		rc = claim(&j);
		if (rc == 1)
			run_job(&j);
		OPENSSL_cleanse(j.token, sizeof(j.token));
		free(j.url);
		free(j.branch);
		free(j.dir);
		free(j.env);
		if (rc == 1)
			continue;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&mu);
		if (!stopping)
			pthread_cond_timedwait(&wake, &mu, &until);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

bool pl_deploy_available;

int pl_deploy_start(struct att_ext *e)
{
	char cli[512];

	ext = e;
	pl_random_id(runner);
	stopping = false;
	if (!pl_cfg.enabled)
		return 0;
	/* no CLI, no runner: this replica neither claims nor polls */
	pl_deploy_available = pl_which(pl_cfg.cli, cli, sizeof(cli)) == 0;
	if (!pl_deploy_available) {
		pl_host->log(ext, ATT_EXT_LOG_INFO,
			     "server-side deployments are off here: the pulumi CLI '%s' (ITL_PULUMI_CLI) is not installed",
			     pl_cfg.cli);
		return 0;
	}
	if (pl_sandbox_setup(ext) < 0)
		return -1;
	if (pthread_create(&thread, NULL, loop, NULL) != 0)
		return -1;
	started = true;
	return 0;
}

void pl_deploy_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&mu);
	__atomic_store_n(&stopping, true, __ATOMIC_SEQ_CST);
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	started = false;
}
