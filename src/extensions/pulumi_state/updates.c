/* updates.c - the update lifecycle: create (update, preview, refresh,
 * destroy), start (the lease and its token; a second non-dry-run update
 * on a stack is a 409), status, engine events, renew_lease, complete,
 * cancel, and the history built from the updates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "pulumi.h"

/* ---- the update token ----------------------------------------------------------- */

int pl_update_auth(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, bool allow_done)
{
	const char *h = pl_host->req_header(r->rq, "Authorization");
	struct att_ext_rows *rows;
	char hash[65];
	int rc;

	if (!h || strncasecmp(h, "update-token ", 13) != 0 || !h[13]) {
		pl_error(r, 401, "Unauthorized: this route needs the update's token (Authorization: update-token ...)");
		return -1;
	}
	pl_sha256_hex(h + 13, strlen(h + 13), hash);
	rc = pl_host->db_query(db, &rows,
			       "SELECT u.id, u.stack_id, u.status, u.token_hash, u.token_expires, u.seq, u.dry_run, u.version, u.actor,"
			       " u.base_seq"
			       " FROM extension_pulumi_state_updates u JOIN extension_pulumi_state_stacks s ON s.id = u.stack_id"
			       " WHERE u.id = ? AND s.org = ? AND s.project = ? AND s.stack = ?",
			       "ssss", r->update, r->org, r->project, r->stack);
	if (rc < 0) {
		pl_db_error(r, rc);
		return -1;
	}
	rc = pl_host->rows_next(rows);
	if (rc == 1) {
		const char *th = pl_host->rows_text(rows, 3);

		snprintf(u->id, sizeof(u->id), "%s", pl_host->rows_text(rows, 0));
		snprintf(u->stack_id, sizeof(u->stack_id), "%s", pl_host->rows_text(rows, 1));
		snprintf(u->status, sizeof(u->status), "%s", pl_host->rows_text(rows, 2));
		u->expires = pl_host->rows_int(rows, 4);
		u->seq = pl_host->rows_int(rows, 5);
		u->dry_run = pl_host->rows_int(rows, 6) != 0;
		u->version = pl_host->rows_int(rows, 7);
		/* the update acts for whoever created it */
		snprintf(r->actor, sizeof(r->actor), "%s", pl_host->rows_text(rows, 8));
		u->base_seq = pl_host->rows_int(rows, 9);
		if (!th || strlen(th) != 64 || CRYPTO_memcmp(th, hash, 64) != 0)
			rc = 2;
	}
	pl_host->rows_done(rows);
	if (rc < 0) {
		pl_db_error(r, rc);
		return -1;
	}
	if (rc == 0) {
		pl_error(r, 404, "Not Found: update '%s' does not exist on this stack", r->update);
		return -1;
	}
	if (rc == 2) {
		pl_error(r, 401, "Unauthorized: the update token is not valid for this update");
		return -1;
	}
	if (strcmp(u->status, "running") != 0) {
		if (allow_done && strcmp(u->status, "not started") != 0)
			return 1;
		pl_error(r, strcmp(u->status, "not started") ? 403 : 409, "%s: the update is %s",
			 strcmp(u->status, "not started") ? "Forbidden" : "Conflict", u->status);
		return -1;
	}
	if (u->expires <= pl_now()) {
		pl_error(r, 403, "Forbidden: the update's lease expired");
		return -1;
	}
	return 0;
}

/* ---- create and start ----------------------------------------------------------- */

/* What history echoes back: message, environment and config as sent. */
static char *program_text(const json_t *j)
{
	const json_t *md = json_object_get(j, "metadata"), *cfg = json_object_get(j, "config");
	const json_t *env = json_object_get(md, "environment"), *msg = json_object_get(md, "message");
	json_t *p = json_object();
	char *s;

	json_object_set_new(p, "message", json_string(json_is_string(msg) ? json_string_value(msg) : ""));
	json_object_set_new(p, "environment", json_is_object(env) ? json_incref((json_t *)env) : json_object());
	json_object_set_new(p, "config", json_is_object(cfg) ? json_incref((json_t *)cfg) : json_object());
	s = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	return s;
}

void pl_h_update_create(struct pl_req *r)
{
	const char *path = pl_host->req_path(r->rq), *kind = strrchr(path, '/') + 1;
	json_t *j = pl_body_json(r), *opts, *dry, *cfg;
	struct att_ext_db *db = NULL;
	struct pl_stack s = { 0 };
	char id[37], *prog = NULL;
	bool dry_run;
	int rc;

	if (!j)
		return;
	opts = json_object_get(j, "options");
	dry = json_object_get(opts, "dryRun");
	cfg = json_object_get(j, "config");
	if ((opts && !json_is_object(opts)) || (dry && !json_is_boolean(dry)) || (cfg && !json_is_null(cfg) && !json_is_object(cfg))) {
		pl_error(r, 400, "Bad Request: expected an UpdateProgramRequest (options.dryRun boolean, config object)");
		goto out;
	}
	dry_run = json_is_true(dry) || strcmp(kind, "preview") == 0;
	prog = program_text(j);
	db = pl_host->db_acquire(r->ext);
	if (!prog || !db) {
		pl_db_error(r, db ? ATT_EXT_ERROR : ATT_EXT_UNAVAILABLE);
		goto out;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	pl_random_id(id);
	rc = pl_host->db_exec(db,
			      "INSERT INTO extension_pulumi_state_updates (id, stack_id, kind, dry_run, status, program, actor,"
			      " created_at) VALUES (?, ?, ?, ?, 'not started', ?, ?, ?)",
			      "sssissi", id, s.id, kind, (int64_t)dry_run, prog, r->actor, pl_now());
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.update.create", "%s%s %s created", kind, dry_run ? " (dry run)" : "", id);
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		pl_db_error(r, rc);
		goto out;
	}
	pl_reply_json(r, 200, json_pack("{s:s}", "updateID", id));
out:
	pl_stack_free(&s);
	if (db)
		pl_host->db_release(r->ext, db);
	free(prog);
	json_decref(j);
}

struct start {
	const char *status, *kind;
	bool dry_run;
};

static int load_update(struct att_ext_db *db, const char *id, const char *stack_id, struct start *ret, char *status,
		       size_t slen, char *kind, size_t klen)
{
	struct att_ext_rows *rows;
	int rc = pl_host->db_query(db, &rows,
				   "SELECT status, kind, dry_run FROM extension_pulumi_state_updates WHERE id = ? AND stack_id = ?",
				   "ss", id, stack_id);

	if (rc < 0)
		return rc;
	rc = pl_host->rows_next(rows);
	if (rc == 1) {
		snprintf(status, slen, "%s", pl_host->rows_text(rows, 0));
		snprintf(kind, klen, "%s", pl_host->rows_text(rows, 1));
		ret->status = status;
		ret->kind = kind;
		ret->dry_run = pl_host->rows_int(rows, 2) != 0;
		rc = 0;
	} else if (rc == 0) {
		rc = ATT_EXT_NOTFOUND;
	}
	pl_host->rows_done(rows);
	return rc;
}

/* Merge the tags the CLI sends at start into the stack's. */
static char *merge_tags(const char *have, const json_t *add)
{
	json_t *t = json_loads(have, 0, NULL);
	const char *k;
	json_t *v;
	char *s;

	if (!t)
		t = json_object();
	if (json_is_object(add))
		json_object_foreach((json_t *)add, k, v)
			if (json_is_string(v))
				json_object_set(t, k, v);
	s = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(t);
	return s;
}

/* Inside the transaction: take the stack's lock for a non-dry run. */
static int start_locked(struct pl_req *r, struct att_ext_db *db, struct pl_stack *s, const struct start *st,
			const json_t *tags, char token[65], int64_t *ret_version, int64_t *ret_exp)
{
	char hash[65], *t;
	int64_t now = pl_now();
	int rc;

	if (!st->dry_run && s->active[0]) {
		if (pl_update_active(db, s->active)) {
			pl_error(r, 409, "Conflict: Another update is currently in progress on this stack (update %s)",
				 s->active);
			return ATT_EXT_PERMANENT;
		}
		/* its lease ran out: it failed */
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_updates SET status = 'failed', end_time = ?,"
				      " reason = 'lease expired' WHERE id = ? AND status = 'running'",
				      "is", now, s->active);
		if (rc < 0)
			return rc;
	}
	/* an update that ended without complete may have left delta rows */
	if (!st->dry_run && (rc = pl_checkpoint_compact(db, s->id)) < 0)
		return rc;
	*ret_version = st->dry_run ? s->version : s->version + 1;
	*ret_exp = now + pl_cfg.lease_seconds;
	pl_random_token(token);
	pl_sha256_hex(token, 64, hash);
	rc = pl_host->db_exec(db,
			      "UPDATE extension_pulumi_state_updates SET status = 'running', version = ?, token_hash = ?,"
			      " token_expires = ?, start_time = ? WHERE id = ?",
			      "isiis", *ret_version, hash, *ret_exp, now, r->update);
	t = merge_tags(s->tags, tags);
	if (rc >= 0 && !t)
		rc = ATT_EXT_ERROR;
	if (rc >= 0 && !st->dry_run)
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_stacks SET version = ?, active_update = ?, tags = ? WHERE id = ?",
				      "isss", *ret_version, r->update, t, s->id);
	else if (rc >= 0)
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET tags = ? WHERE id = ?", "ss", t, s->id);
	free(t);
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.update.start", "%s%s %s started, version %lld", st->kind,
			      st->dry_run ? " (dry run)" : "", r->update, (long long)*ret_version);
	return rc;
}

void pl_h_update_start(struct pl_req *r)
{
	json_t *j = r->len ? pl_body_json(r) : json_object();
	struct att_ext_db *db = NULL;
	struct pl_stack s = { 0 };
	struct start st;
	char status[16], kind[16], token[65];
	int64_t version = 0, exp = 0;
	int rc;

	if (!j)
		return;
	if (json_object_get(j, "tags") && !json_is_object(json_object_get(j, "tags"))) {
		pl_error(r, 400, "Bad Request: tags must be an object");
		goto out;
	}
	db = pl_host->db_acquire(r->ext);
	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		goto out;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	rc = load_update(db, r->update, s.id, &st, status, sizeof(status), kind, sizeof(kind));
	if (rc == ATT_EXT_NOTFOUND) {
		pl_error(r, 404, "Not Found: update '%s' does not exist on this stack", r->update);
		rc = ATT_EXT_PERMANENT;
	} else if (rc == 0 && strcmp(st.status, "not started") != 0) {
		pl_error(r, 409, "Conflict: update '%s' was already started", r->update);
		rc = ATT_EXT_PERMANENT;
	} else if (rc == 0) {
		rc = start_locked(r, db, &s, &st, json_object_get(j, "tags"), token, &version, &exp);
	}
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		if (rc != ATT_EXT_PERMANENT)
			pl_db_error(r, rc);
		goto out;
	}
	/* no journalVersion: the CLI then sends checkpoints, not journal entries */
	pl_reply_json(r, 200, json_pack("{s:I,s:s,s:I}", "version", (json_int_t)version, "token", token,
					"tokenExpiration", (json_int_t)exp));
	OPENSSL_cleanse(token, sizeof(token));
out:
	pl_stack_free(&s);
	if (db)
		pl_host->db_release(r->ext, db);
	json_decref(j);
}

static const char *poll_status(const char *status)
{
	return strcmp(status, "cancelled") == 0 ? "failed" : status;
}

void pl_h_update_status(struct pl_req *r)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct att_ext_rows *rows;
	struct pl_stack s;
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_get(r, db, &s) < 0) {
		pl_host->db_release(r->ext, db);
		return;
	}
	rc = pl_host->db_query(db, &rows, "SELECT status FROM extension_pulumi_state_updates WHERE id = ? AND stack_id = ?",
			       "ss", r->update, s.id);
	if (rc == 0) {
		rc = pl_host->rows_next(rows);
		if (rc == 1)	/* finished synchronously: no continuationToken */
			pl_reply_json(r, 200, json_pack("{s:s,s:[]}", "status",
							poll_status(pl_host->rows_text(rows, 0)), "events"));
		else if (rc == 0)
			pl_error(r, 404, "Not Found: update '%s' does not exist on this stack", r->update);
		pl_host->rows_done(rows);
	}
	if (rc < 0)
		pl_db_error(r, rc);
	pl_stack_free(&s);
	pl_host->db_release(r->ext, db);
}

/* ---- update-token routes --------------------------------------------------------------- */

/* Run fn in a write transaction after checking the update token. */
void pl_update_write(struct pl_req *r, pl_update_fn fn, bool allow_done)
{
	json_t *j = pl_body_json(r), *reply = NULL;
	struct att_ext_db *db;
	struct pl_update u;
	int rc, state;

	if (!j)
		return;
	db = pl_host->db_acquire(r->ext);
	if (!db) {
		json_decref(j);
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	rc = pl_host->db_begin(db);
	if (rc < 0) {
		pl_db_error(r, rc);
	} else if ((state = pl_update_auth(r, db, &u, allow_done)) < 0) {
		pl_host->db_rollback(db);
	} else {
		rc = fn(r, db, &u, state, j, &reply);
		if (rc >= 0)
			rc = pl_host->db_commit(db);
		pl_checkpoint_committed(r, rc >= 0);
		if (rc < 0) {
			pl_host->db_rollback(db);
			if (rc != ATT_EXT_PERMANENT)
				pl_db_error(r, rc);
			json_decref(reply);
		} else if (reply) {
			pl_reply_json(r, 200, reply);
		} else {
			pl_reply_raw(r, 200, "{}", 2);
		}
	}
	pl_host->db_release(r->ext, db);
	json_decref(j);
}

static int do_events(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		     json_t **reply)
{
	json_t *ev = json_object_get(j, "events"), *e;
	size_t i;
	int rc = 0;

	(void)state;
	(void)reply;
	if (!json_is_array(ev) || json_array_size(ev) > 1000) {
		pl_error(r, 400, "Bad Request: events must be an array of at most 1000 engine events");
		return ATT_EXT_PERMANENT;
	}
	json_array_foreach(ev, i, e)
		if (!json_is_object(e) || !json_is_integer(json_object_get(e, "sequence"))) {
			pl_error(r, 400, "Bad Request: events[%zu]: an engine event needs an integer sequence", i);
			return ATT_EXT_PERMANENT;
		}
	json_array_foreach(ev, i, e) {
		json_t *sum = json_object_get(e, "summaryEvent");
		char *text = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (!text)
			return ATT_EXT_ERROR;
		/* a batch retried or sent out of order: each sequence once */
		rc = pl_host->db_exec(db,
				      "INSERT INTO extension_pulumi_state_events (update_id, seq, event) VALUES (?, ?, ?)"
				      " ON CONFLICT (update_id, seq) DO NOTHING",
				      "sis", u->id, (int64_t)json_integer_value(json_object_get(e, "sequence")), text);
		free(text);
		if (rc >= 0 && json_is_object(json_object_get(sum, "resourceChanges"))) {
			char *rcs = json_dumps(json_object_get(sum, "resourceChanges"), JSON_COMPACT | JSON_SORT_KEYS);

			rc = rcs ? pl_host->db_exec(db,
						    "UPDATE extension_pulumi_state_updates SET resource_changes = ? WHERE id = ?",
						    "ss", rcs, u->id)
				 : ATT_EXT_ERROR;
			free(rcs);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

void pl_h_events(struct pl_req *r)
{
	pl_update_write(r, do_events, true);
}

static int do_renew(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		    json_t **reply)
{
	const json_t *d = json_object_get(j, "duration");
	int64_t dur = json_is_integer(d) ? json_integer_value(d) : pl_cfg.lease_seconds, exp;
	int rc;

	(void)state;
	(void)r;
	if (dur < 1)
		dur = 1;
	if (dur > 3600)
		dur = 3600;
	exp = pl_now() + dur;
	if (exp < u->expires)
		exp = u->expires;
	rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_updates SET token_expires = ? WHERE id = ?", "is", exp,
			      u->id);
	if (rc < 0)
		return rc;
	/* the same token, extended: requests in flight carry it too */
	*reply = json_pack("{s:s,s:I}", "token", pl_host->req_header(r->rq, "Authorization") + 13, "tokenExpiration",
			   (json_int_t)exp);
	return *reply ? 0 : ATT_EXT_ERROR;
}

void pl_h_renew(struct pl_req *r)
{
	pl_update_write(r, do_renew, false);
}

/* The stack after a non-dry update: lock released, version kept. */
static int finish_stack(struct pl_req *r, struct att_ext_db *db, const struct pl_update *u, int64_t now)
{
	struct att_ext_rows *rows;
	char *cp = NULL;
	int64_t count = 0;
	int rc = pl_checkpoint_compact(db, u->stack_id);

	(void)r;
	pl_checkpoint_forget(u->id);
	if (rc >= 0)
		rc = pl_host->db_query(db, &rows, "SELECT checkpoint FROM extension_pulumi_state_stacks WHERE id = ?",
				       "s", u->stack_id);
	if (rc < 0)
		return rc;
	if (pl_host->rows_next(rows) == 1 && pl_host->rows_text(rows, 0)) {
		cp = strdup(pl_host->rows_text(rows, 0));
		rc = cp ? 0 : ATT_EXT_ERROR;
	}
	pl_host->rows_done(rows);
	if (cp)
		count = pl_resource_count(cp, strlen(cp));
	if (rc >= 0)
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_stacks SET active_update = NULL, last_update = ?,"
				      " resource_count = ? WHERE id = ? AND active_update = ?",
				      "iiss", now, count, u->stack_id, u->id);
	if (rc >= 0 && cp)
		rc = pl_host->db_exec(db,
				      "INSERT INTO extension_pulumi_state_versions (stack_id, version, checkpoint) VALUES (?, ?, ?)"
				      " ON CONFLICT (stack_id, version) DO UPDATE SET checkpoint = excluded.checkpoint",
				      "sis", u->stack_id, u->version, cp);
	free(cp);
	return rc;
}

static int end_update(struct pl_req *r, struct att_ext_db *db, const struct pl_update *u, const char *status,
		      const char *action)
{
	int64_t now = pl_now();
	int rc = pl_host->db_exec(db,
				  "UPDATE extension_pulumi_state_updates SET status = ?, end_time = ? WHERE id = ? AND status = 'running'",
				  "sis", status, now, u->id);

	if (rc >= 0 && !u->dry_run)
		rc = finish_stack(r, db, u, now);
	if (rc >= 0)
		rc = pl_audit(r, db, action, "update %s %s", u->id, status);
	return rc;
}

static int do_complete(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		       json_t **reply)
{
	const char *st = json_string_value(json_object_get(j, "status"));

	(void)reply;
	if (!st || (strcmp(st, "succeeded") && strcmp(st, "failed") && strcmp(st, "cancelled"))) {
		pl_error(r, 400, "Bad Request: status must be succeeded, failed or cancelled");
		return ATT_EXT_PERMANENT;
	}
	if (state == 1)		/* a retried complete */
		return 0;
	return end_update(r, db, u, st, "pulumi.update.complete");
}

void pl_h_complete(struct pl_req *r)
{
	pl_update_write(r, do_complete, true);
}

/* POST .../update/{id}/cancel (`pulumi cancel`, with the user's token). */
void pl_h_cancel(struct pl_req *r)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct pl_stack s = { 0 };
	struct pl_update u = { 0 };
	struct start st;
	char kind[16];
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	rc = load_update(db, r->update, s.id, &st, u.status, sizeof(u.status), kind, sizeof(kind));
	snprintf(u.id, sizeof(u.id), "%s", r->update);
	snprintf(u.stack_id, sizeof(u.stack_id), "%s", s.id);
	u.dry_run = st.dry_run;
	if (rc == ATT_EXT_NOTFOUND) {
		pl_error(r, 404, "Not Found: update '%s' does not exist on this stack", r->update);
		rc = ATT_EXT_PERMANENT;
	} else if (rc == 0 && (!strcmp(u.status, "succeeded") || !strcmp(u.status, "failed"))) {
		pl_error(r, 409, "Conflict: update '%s' already %s", r->update, u.status);
		rc = ATT_EXT_PERMANENT;
	} else if (rc == 0 && strcmp(u.status, "cancelled") != 0) {
		/* the token dies with it: later checkpoints are refused */
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_updates SET status = 'running' WHERE id = ?"
				      " AND status = 'not started'", "s", u.id);
		if (rc >= 0)
			rc = end_update(r, db, &u, "cancelled", "pulumi.update.cancel");
	}
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		if (rc != ATT_EXT_PERMANENT)
			pl_db_error(r, rc);
	} else {
		pl_reply_raw(r, 200, "{}", 2);
	}
out:
	pl_stack_free(&s);
	pl_host->db_release(r->ext, db);
}
