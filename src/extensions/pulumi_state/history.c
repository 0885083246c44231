/* history.c - GET .../updates (newest first, paged, previews left out)
 * and GET .../updates/latest, as UpdateInfo objects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulumi.h"

static const char *result_of(const char *status)
{
	if (strcmp(status, "running") == 0)
		return "in-progress";
	if (strcmp(status, "succeeded") == 0)
		return "succeeded";
	if (strcmp(status, "not started") == 0)
		return "not-started";
	return "failed";	/* failed, cancelled */
}

static json_t *update_info(struct att_ext_rows *rows)
{
	json_t *prog = json_loads(pl_host->rows_text(rows, 5), 0, NULL);
	const char *rcs = pl_host->rows_text(rows, 6);
	json_t *info, *changes = rcs ? json_loads(rcs, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(prog, "message"));
	json_t *env = json_object_get(prog, "environment"), *cfg = json_object_get(prog, "config");

	env = json_is_object(env) ? json_incref(env) : json_object();
	cfg = json_is_object(cfg) ? json_incref(cfg) : json_object();
	info = json_pack("{s:s,s:I,s:s,s:o,s:o,s:s,s:I,s:I}", "kind", pl_host->rows_text(rows, 0), "startTime",
			 (json_int_t)pl_host->rows_int(rows, 1), "message", msg ? msg : "", "environment",
			 env, "config", cfg,
			 "result", result_of(pl_host->rows_text(rows, 2)), "endTime",
			 (json_int_t)pl_host->rows_int(rows, 3), "version", (json_int_t)pl_host->rows_int(rows, 4));
	if (info && json_is_object(changes))
		json_object_set(info, "resourceChanges", changes);
	json_decref(changes);
	json_decref(prog);
	return info;
}

static void history(struct pl_req *r, int64_t size, int64_t page, bool latest)
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
			       "SELECT kind, start_time, status, end_time, version, program, resource_changes"
			       " FROM extension_pulumi_state_updates WHERE stack_id = ? AND dry_run = 0 AND status <> 'not started'"
			       " ORDER BY version DESC, created_at DESC LIMIT ? OFFSET ?",
			       "sii", s.id, size, (page - 1) * size);
	if (rc == 0) {
		while ((rc = pl_host->rows_next(rows)) == 1) {
			json_t *info = update_info(rows);

			if (!info) {
				rc = ATT_EXT_ERROR;
				break;
			}
			json_array_append_new(list, info);
		}
		pl_host->rows_done(rows);
	}
	pl_host->db_release(r->ext, db);
	pl_stack_free(&s);
	if (rc < 0) {
		json_decref(list);
		pl_db_error(r, rc);
	} else if (latest && json_array_size(list) == 0) {
		json_decref(list);
		pl_error(r, 404, "Not Found: stack '%s/%s/%s' has no updates", r->org, r->project, r->stack);
	} else if (latest) {
		pl_reply_json(r, 200, json_pack("{s:O}", "info", json_array_get(list, 0)));
		json_decref(list);
	} else {
		pl_reply_json(r, 200, json_pack("{s:o}", "updates", list));
	}
}

static int query_int(struct pl_req *r, const char *name, int64_t dflt, int64_t max, int64_t *ret)
{
	const char *v = pl_host->req_query(r->rq, name);
	char *end;
	long long n;

	*ret = dflt;
	if (!v || !*v)
		return 0;
	n = strtoll(v, &end, 10);
	if (*end || n < 1 || n > max) {
		pl_error(r, 400, "Bad Request: %s must be an integer between 1 and %lld", name, (long long)max);
		return -1;
	}
	*ret = n;
	return 0;
}

void pl_h_history(struct pl_req *r)
{
	int64_t size, page;

	if (query_int(r, "pageSize", 100000, 100000, &size) < 0 || query_int(r, "page", 1, 1000000, &page) < 0)
		return;
	history(r, size, page, false);
}

void pl_h_latest(struct pl_req *r)
{
	history(r, 1, 1, true);
}
