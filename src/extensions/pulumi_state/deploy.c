/* deploy.c - server-side deployments: POST .../deployments queues one
 * (202), a worker thread claims queued deployments (one replica per
 * deployment: the claim is a conditional UPDATE, the runner renews a
 * lease on the row), clones the repository (`git clone --depth 1`) into
 * a temporary directory and runs `pulumi <operation> --non-interactive`
 * there with PULUMI_BACKEND_URL pointing back at this service and a
 * token valid only while the deployment runs and only for its stack.
 * States: queued -> running -> succeeded | failed | cancelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "deploy.h"
#include "pulumi.h"

/* ---- validation ------------------------------------------------------------------ */

static bool safe_chars(const char *s, const char *extra, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      strchr(extra, s[i])))
			return false;
	return true;
}

/* https:// always; file:// (a local path, no host) only when allowed. */
static const char *repo_url_refused(const char *u)
{
	if (!u || strlen(u) > 2048)
		return "source.repoURL is required";
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '\\' || (unsigned char)*p >= 0x7f)
			return "source.repoURL contains spaces or control characters";
	if (strncmp(u, "https://", 8) == 0)
		return strchr(u + 8, '@') ? "source.repoURL must not carry credentials" : NULL;
	if (strncmp(u, "file:///", 8) == 0)
		return pl_cfg.deploy_allow_file ? (strstr(u, "/../") ? "source.repoURL: no '..'" : NULL)
						: "source.repoURL: file:// URLs are not allowed (ITL_PULUMI_DEPLOY_ALLOW_FILE)";
	return "source.repoURL must be https:// (or file:// when allowed); ssh and git:// are refused";
}

static bool env_name_ok(const char *k)
{
	static const char *const reserved[] = { "PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_HOME", "HOME",
						"PATH", "LD_PRELOAD", "LD_LIBRARY_PATH" };

	if (!safe_chars(k, "_", 128) || (k[0] >= '0' && k[0] <= '9') || strncmp(k, "LD_", 3) == 0)
		return false;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(k, reserved[i]) == 0)
			return false;
	return true;
}

static const char *request_refused(const json_t *j)
{
	const char *op = json_string_value(json_object_get(j, "operation"));
	const json_t *src = json_object_get(j, "source"), *env = json_object_get(j, "environmentVariables"), *v;
	const char *br = json_string_value(json_object_get(src, "branch"));
	const char *dir = json_string_value(json_object_get(src, "repoDir"));
	const char *k;

	if (!op || (strcmp(op, "update") && strcmp(op, "preview") && strcmp(op, "refresh") && strcmp(op, "destroy")))
		return "operation must be update, preview, refresh or destroy";
	if (!json_is_object(src))
		return "source must be an object {repoURL, branch, repoDir}";
	if (repo_url_refused(json_string_value(json_object_get(src, "repoURL"))))
		return repo_url_refused(json_string_value(json_object_get(src, "repoURL")));
	if (br && (!safe_chars(br, "._/-", 200) || br[0] == '-' || strstr(br, "..")))
		return "source.branch: letters, digits and ._/- only";
	if (dir && *dir && (!safe_chars(dir, "._/-", 400) || dir[0] == '/' || strstr(dir, "..")))
		return "source.repoDir must be a relative path inside the repository";
	if (env && !json_is_object(env))
		return "environmentVariables must map names to strings";
	json_object_foreach((json_t *)env, k, v)
		if (!env_name_ok(k) || !json_is_string(v) || json_string_length(v) > 65536 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return "environmentVariables: names [A-Za-z_][A-Za-z0-9_]* (not PATH, HOME, PULUMI_ACCESS_TOKEN, "
			       "PULUMI_BACKEND_URL, PULUMI_HOME, LD_*), string values";
	return NULL;
}

/* ---- routes ------------------------------------------------------------------------ */

void pl_h_deploy_create(struct pl_req *r)
{
	json_t *j = pl_body_json(r);
	const char *why;
	struct att_ext_db *db = NULL;
	struct pl_stack s = { 0 };
	char id[37], *env = NULL;
	int rc;

	if (!j)
		return;
	if (!pl_deploy_available) {
		pl_error(r, 503, "Service Unavailable: server-side deployments need the pulumi CLI (ITL_PULUMI_CLI '%s') on the service",
			 pl_cfg.cli);
		goto out;
	}
	if ((why = request_refused(j)) != NULL) {
		pl_error(r, 400, "Bad Request: %s", why);
		goto out;
	}
	env = json_dumps(json_object_get(j, "environmentVariables") ? json_object_get(j, "environmentVariables")
								       : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
	db = pl_host->db_acquire(r->ext);
	if (!db || !env) {
		pl_db_error(r, db ? ATT_EXT_ERROR : ATT_EXT_UNAVAILABLE);
		goto out;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	pl_random_id(id);
	{
		const json_t *src = json_object_get(j, "source");
		const char *br = json_string_value(json_object_get(src, "branch"));
		const char *dir = json_string_value(json_object_get(src, "repoDir"));

		rc = pl_host->db_exec(db,
				      "INSERT INTO extension_pulumi_state_deployments (id, stack_id, operation, repo_url, branch,"
				      " repo_dir, env, status, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
				      "ssssssssi", id, s.id, json_string_value(json_object_get(j, "operation")),
				      json_string_value(json_object_get(src, "repoURL")), br && *br ? br : NULL,
				      dir ? dir : "", env, r->actor, pl_now());
	}
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.deployment.queue", "deployment %s (%s) queued", id,
			      json_string_value(json_object_get(j, "operation")));
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		pl_db_error(r, rc);
		goto out;
	}
	pl_deploy_wake();
	pl_reply_json(r, 202, json_pack("{s:s,s:s}", "id", id, "status", "queued"));
out:
	pl_stack_free(&s);
	if (db)
		pl_host->db_release(r->ext, db);
	free(env);
	json_decref(j);
}

static json_t *deployment_json(struct att_ext_rows *rows, bool with_log)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:{s:s,s:s?,s:s},s:I,s:I,s:I}", "id", pl_host->rows_text(rows, 0),
			      "operation", pl_host->rows_text(rows, 1), "status", pl_host->rows_text(rows, 2), "source",
			      "repoURL", pl_host->rows_text(rows, 3), "branch", pl_host->rows_text(rows, 4), "repoDir",
			      pl_host->rows_text(rows, 5), "created", (json_int_t)pl_host->rows_int(rows, 6), "started",
			      (json_int_t)pl_host->rows_int(rows, 7), "finished", (json_int_t)pl_host->rows_int(rows, 8));

	if (!d)
		return NULL;
	json_object_set_new(d, "exitCode", pl_host->rows_is_null(rows, 9) ? json_null()
									  : json_integer(pl_host->rows_int(rows, 9)));
	json_object_set_new(d, "reason", pl_host->rows_text(rows, 10) ? json_string(pl_host->rows_text(rows, 10))
								      : json_null());
	json_object_set_new(d, "requestedBy", json_string(pl_host->rows_text(rows, 11)));
	if (with_log)
		json_object_set_new(d, "log", json_string(pl_host->rows_text(rows, 12) ? pl_host->rows_text(rows, 12) : ""));
	return d;
}

#define DCOLS \
	"d.id, d.operation, d.status, d.repo_url, d.branch, d.repo_dir, d.created_at, d.started_at, d.finished_at," \
	" d.exit_code, d.reason, d.actor, d.log"

static void deploy_query(struct pl_req *r, const char *id)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct att_ext_rows *rows;
	struct pl_stack s;
	json_t *list = json_array();
	int rc;

	if (!db) {
		json_decref(list);
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_get(r, db, &s) < 0) {
		json_decref(list);
		pl_host->db_release(r->ext, db);
		return;
	}
	rc = pl_host->db_query(db, &rows,
			       "SELECT " DCOLS " FROM extension_pulumi_state_deployments d WHERE d.stack_id = ?"
			       " AND (? = '' OR d.id = ?) ORDER BY d.created_at DESC, d.id LIMIT 1000",
			       "sss", s.id, id ? id : "", id ? id : "");
	if (rc == 0) {
		while ((rc = pl_host->rows_next(rows)) == 1)
			json_array_append_new(list, deployment_json(rows, id != NULL));
		pl_host->rows_done(rows);
	}
	pl_host->db_release(r->ext, db);
	pl_stack_free(&s);
	if (rc < 0)
		pl_db_error(r, rc);
	else if (!id)
		pl_reply_json(r, 200, json_pack("{s:O}", "deployments", list));
	else if (json_array_size(list) == 0)
		pl_error(r, 404, "Not Found: deployment '%s' does not exist on this stack", id);
	else
		pl_reply_json(r, 200, json_incref(json_array_get(list, 0)));
	json_decref(list);
}

void pl_h_deploy_list(struct pl_req *r)
{
	deploy_query(r, NULL);
}

void pl_h_deploy_get(struct pl_req *r)
{
	deploy_query(r, pl_host->req_param(r->rq, "deployment"));
}

void pl_h_deploy_cancel(struct pl_req *r)
{
	const char *id = pl_host->req_param(r->rq, "deployment");
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct pl_stack s;
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_begin(r, db, &s) < 0) {
		pl_host->db_release(r->ext, db);
		return;
	}
	/* queued: cancelled now; running: its runner kills the process group */
	rc = pl_host->db_exec(db,
			      "UPDATE extension_pulumi_state_deployments SET status = CASE status WHEN 'queued' THEN"
			      " 'cancelled' ELSE status END, cancel_requested = 1, finished_at = CASE status WHEN 'queued'"
			      " THEN ? ELSE finished_at END, reason = CASE status WHEN 'queued' THEN 'cancelled before it"
			      " ran' ELSE reason END WHERE id = ? AND stack_id = ? AND status IN ('queued', 'running')",
			      "iss", pl_now(), id, s.id);
	if (rc == 0) {
		struct att_ext_rows *rows;

		rc = pl_host->db_query(db, &rows, "SELECT status FROM extension_pulumi_state_deployments WHERE id = ? AND stack_id = ?",
				       "ss", id, s.id);
		if (rc == 0) {
			rc = pl_host->rows_next(rows);
			pl_host->rows_done(rows);
			if (rc == 0)
				pl_error(r, 404, "Not Found: deployment '%s' does not exist on this stack", id);
			else if (rc == 1)
				pl_error(r, 409, "Conflict: deployment '%s' already finished", id);
			rc = rc >= 0 ? ATT_EXT_PERMANENT : rc;
		}
	}
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.deployment.cancel", "deployment %s cancelled", id);
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		if (rc != ATT_EXT_PERMANENT)
			pl_db_error(r, rc);
	} else {
		pl_host->resp_body(r->rs, 204, NULL, NULL, 0);
	}
	pl_stack_free(&s);
	pl_host->db_release(r->ext, db);
}

/* `token pd-...`: a running deployment's token, for its own stack only. */
int pl_deploy_auth(struct pl_req *r, const char *token)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct att_ext_rows *rows;
	char hash[65];
	int rc;

	if (!db)
		return -1;
	pl_sha256_hex(token, strlen(token), hash);
	rc = pl_host->db_query(db, &rows,
			       "SELECT d.id, d.actor, s.org, s.project, s.stack FROM extension_pulumi_state_deployments d"
			       " JOIN extension_pulumi_state_stacks s ON s.id = d.stack_id WHERE d.token_hash = ?"
			       " AND d.status = 'running'",
			       "s", hash);
	if (rc == 0) {
		rc = pl_host->rows_next(rows) == 1 ? 0 : -1;
		if (rc == 0 && r->stack &&
		    (strcmp(r->org, pl_host->rows_text(rows, 2)) || strcmp(r->project, pl_host->rows_text(rows, 3)) ||
		     strcmp(r->stack, pl_host->rows_text(rows, 4))))
			rc = -1;
		if (rc == 0)
			snprintf(r->actor, sizeof(r->actor), "%.60s (deployment %.8s)", pl_host->rows_text(rows, 1),
				 pl_host->rows_text(rows, 0));
		pl_host->rows_done(rows);
	}
	pl_host->db_release(r->ext, db);
	return rc < 0 ? -1 : 0;
}
