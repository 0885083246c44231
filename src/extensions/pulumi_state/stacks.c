/* stacks.c - who am I, capabilities, stacks (list, create, get, delete,
 * tags, rename), export (also of an old version), import and history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulumi.h"

/* A stack that was never updated: what the CLI accepts (pulumi.md §8a). */
const char pl_empty_deployment[] =
	"{\"version\":3,\"deployment\":{\"manifest\":{\"time\":\"0001-01-01T00:00:00Z\",\"magic\":\"\","
	"\"version\":\"\"},\"metadata\":{}}}";

void pl_h_capabilities(struct pl_req *r)
{
	pl_reply_json(r, 200,
		      json_pack("{s:[{s:s,s:i,s:{s:I}},{s:s}]}", "capabilities", "capability",
				"delta-checkpoint-uploads-v2", "version", 2, "configuration",
				"checkpointCutoffSizeBytes", (json_int_t)pl_cfg.delta_cutoff, "capability",
				"batch-encrypt"));
}

void pl_h_user(struct pl_req *r)
{
	pl_reply_json(r, 200,
		      json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:s}],s:[],s:b,s:{s:s}}", "id", r->actor,
				"githubLogin", r->actor, "name", r->actor, "email", "", "avatarUrl", "",
				"organizations", "name", pl_cfg.org, "githubLogin", pl_cfg.org, "avatarUrl", "",
				"identities", "siteAdmin", 0, "tokenInfo", "name", r->actor));
}

void pl_h_default_org(struct pl_req *r)
{
	pl_reply_json(r, 200, json_pack("{s:s,s:[]}", "GitHubLogin", pl_cfg.org, "Messages"));
}

/* Normally asked of api.pulumi.com; answered in case PULUMI_API points here. */
void pl_h_cli_version(struct pl_req *r)
{
	pl_reply_json(r, 200, json_pack("{s:s,s:s,s:s}", "latestVersion", "3.260.0", "oldestWithoutWarning", "3.0.0",
					"latestDevVersion", "3.260.0"));
}

static bool tags_match(const char *tags, const char *name, const char *value)
{
	json_t *t;
	const char *v;
	bool ok;

	if (!name || !*name)
		return true;
	t = json_loads(tags, 0, NULL);
	v = json_string_value(json_object_get(t, name));
	ok = v && (!value || !*value || strcmp(v, value) == 0);
	json_decref(t);
	return ok;
}

void pl_h_list_stacks(struct pl_req *r)
{
	const char *project = pl_host->req_query(r->rq, "project");
	const char *org = pl_host->req_query(r->rq, "organization");
	const char *tn = pl_host->req_query(r->rq, "tagName"), *tv = pl_host->req_query(r->rq, "tagValue");
	struct att_ext_db *db;
	struct att_ext_rows *rows;
	json_t *list = json_array();
	bool have;
	int rc;

	if (org && *org && strcmp(org, pl_cfg.org) != 0) {
		pl_reply_json(r, 200, json_pack("{s:o}", "stacks", list));
		return;
	}
	db = pl_host->db_acquire(r->ext);
	if (!db) {
		json_decref(list);
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	rc = pl_host->db_query(db, &rows,
			       "SELECT id, org, project, stack, last_update, resource_count, tags FROM extension_pulumi_state_stacks"
			       " WHERE (? = '' OR project = ?) ORDER BY org, project, stack",
			       "ss", project ? project : "", project ? project : "");
	have = rc == 0;
	while (rc == 0 && (rc = pl_host->rows_next(rows)) == 1) {
		json_t *s;

		rc = 0;
		if (!tags_match(pl_host->rows_text(rows, 6), tn, tv))
			continue;
		s = json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", pl_host->rows_text(rows, 0), "orgName",
			      pl_host->rows_text(rows, 1), "projectName", pl_host->rows_text(rows, 2), "stackName",
			      pl_host->rows_text(rows, 3), "resourceCount", (json_int_t)pl_host->rows_int(rows, 5));
		if (pl_host->rows_int(rows, 4) > 0)
			json_object_set_new(s, "lastUpdate", json_integer(pl_host->rows_int(rows, 4)));
		json_array_append_new(list, s);
	}
	if (have)
		pl_host->rows_done(rows);
	pl_host->db_release(r->ext, db);
	if (rc < 0) {
		json_decref(list);
		pl_db_error(r, rc);
		return;
	}
	pl_reply_json(r, 200, json_pack("{s:o}", "stacks", list));
}

void pl_h_project_head(struct pl_req *r)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct att_ext_rows *rows;
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	rc = pl_host->db_query(db, &rows, "SELECT 1 FROM extension_pulumi_state_stacks WHERE org = ? AND project = ?",
			       "ss", r->org, r->project);
	if (rc == 0) {
		rc = pl_host->rows_next(rows);
		pl_host->rows_done(rows);
	}
	pl_host->db_release(r->ext, db);
	if (rc < 0)
		pl_db_error(r, rc);
	else if (rc == 0)
		pl_error(r, 404, "Not Found: project '%s/%s' does not exist", r->org, r->project);
	else
		pl_reply_raw(r, 200, "{}", 2);
}

/* An UntypedDeployment: {"version": 1..4, "deployment": {...}}. */
static bool deployment_ok(const json_t *d)
{
	const json_t *v = json_object_get(d, "version");

	return json_is_object(d) && json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 4 &&
	       json_is_object(json_object_get(d, "deployment"));
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static bool tags_ok(const json_t *tags)
{
	const char *k;
	json_t *v;

	if (!json_is_object(tags))
		return false;
	json_object_foreach((json_t *)tags, k, v)
		if (!json_is_string(v) || strlen(k) > 256 || json_string_length(v) > 4096)
			return false;
	return true;
}

static char *tags_text(const json_t *tags)
{
	return tags ? json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
}

void pl_h_stack_create(struct pl_req *r)
{
	json_t *j = pl_body_json(r), *tags, *state;
	const char *name;
	char id[37], *tagstr = NULL, *cp = NULL;
	struct att_ext_db *db = NULL;
	size_t off, len;
	int rc;

	if (!j)
		return;
	name = json_string_value(json_object_get(j, "stackName"));
	tags = json_object_get(j, "tags");
	state = json_object_get(j, "state");
	if (!name_ok(name, 100)) {
		pl_error(r, 400, "Bad Request: stackName must be 1-100 of [A-Za-z0-9_.-]");
		goto out;
	}
	if ((tags && !json_is_null(tags) && !tags_ok(tags)) || (state && !json_is_null(state) && !deployment_ok(state))) {
		pl_error(r, 400, "Bad Request: tags must map names to strings, state must be an UntypedDeployment");
		goto out;
	}
	r->stack = name;
	tagstr = tags_text(json_is_object(tags) ? tags : NULL);
	/* the initial state (--secrets-provider passphrase) is kept as sent */
	if (json_is_object(state) && pl_json_member((const char *)r->body, r->len, "state", &off, &len) == 0)
		cp = strndup((const char *)r->body + off, len);
	db = pl_host->db_acquire(r->ext);
	if (!tagstr || (json_is_object(state) && !cp) || !db) {
		pl_db_error(r, db ? ATT_EXT_ERROR : ATT_EXT_UNAVAILABLE);
		goto out;
	}
	pl_random_id(id);
	rc = pl_host->db_begin(db);
	if (rc == 0)
		rc = pl_host->db_exec(db,
				      "INSERT INTO extension_pulumi_state_stacks (id, org, project, stack, tags, checkpoint, created_at)"
				      " VALUES (?, ?, ?, ?, ?, ?, ?)",
				      "ssssssi", id, r->org, r->project, name, tagstr, cp, pl_now());
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.stack.create", "stack created");
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		if (rc == ATT_EXT_CONFLICT)
			pl_error(r, 409, "Conflict: stack '%s/%s/%s' already exists", r->org, r->project, name);
		else
			pl_db_error(r, rc);
		goto out;
	}
	pl_reply_raw(r, 200, "{}", 2);
out:
	if (db)
		pl_host->db_release(r->ext, db);
	free(tagstr);
	free(cp);
	json_decref(j);
}

void pl_h_stack_get(struct pl_req *r)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct pl_stack s;
	json_t *tags;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_get(r, db, &s) < 0) {
		pl_host->db_release(r->ext, db);
		return;
	}
	pl_host->db_release(r->ext, db);
	tags = json_loads(s.tags, 0, NULL);
	/* no "config": a non-null one switches the CLI to remote (ESC) config */
	pl_reply_json(r, 200,
		      json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:I}", "id", s.id, "orgName", r->org, "projectName",
				r->project, "stackName", r->stack, "activeUpdate", s.active, "tags",
				tags ? tags : json_object(), "version", (json_int_t)s.version));
	pl_stack_free(&s);
}

/* Run one statement per table that belongs to a stack. */
static int delete_rows(struct att_ext_db *db, const char *id)
{
	static const char *const sql[] = {
		"DELETE FROM extension_pulumi_state_events WHERE update_id IN"
		" (SELECT id FROM extension_pulumi_state_updates WHERE stack_id = ?)",
		"DELETE FROM extension_pulumi_state_deltas WHERE update_id IN"
		" (SELECT id FROM extension_pulumi_state_updates WHERE stack_id = ?)",
		"DELETE FROM extension_pulumi_state_updates WHERE stack_id = ?",
		"DELETE FROM extension_pulumi_state_versions WHERE stack_id = ?",
		"DELETE FROM extension_pulumi_state_stacks WHERE id = ?",
	};
	int rc = 0;

	for (size_t i = 0; rc >= 0 && i < sizeof(sql) / sizeof(sql[0]); i++)
		rc = pl_host->db_exec(db, sql[i], "s", id);
	return rc;
}

/* Is the stack's active update still holding its lease? */
bool pl_update_active(struct att_ext_db *db, const char *update)
{
	struct att_ext_rows *rows;
	bool busy = false;

	if (!update[0] || pl_host->db_query(db, &rows,
					    "SELECT 1 FROM extension_pulumi_state_updates WHERE id = ? AND status = 'running'"
					    " AND token_expires > ?",
					    "si", update, pl_now()) < 0)
		return false;
	busy = pl_host->rows_next(rows) == 1;
	pl_host->rows_done(rows);
	return busy;
}

void pl_h_stack_delete(struct pl_req *r)
{
	const char *f = pl_host->req_query(r->rq, "force");
	bool force = f && strcmp(f, "true") == 0;
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct pl_stack s;
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	if (!force && s.resource_count > 0) {
		pl_host->db_rollback(db);
		pl_error(r, 400, "Bad Request: Stack still contains resources.");
	} else if (!force && pl_update_active(db, s.active)) {
		pl_host->db_rollback(db);
		pl_error(r, 409, "Conflict: an update is in progress on this stack");
	} else {
		rc = delete_rows(db, s.id);
		if (rc >= 0)
			rc = pl_audit(r, db, "pulumi.stack.delete", "stack deleted (%s, %lld resources)",
				      force ? "forced" : "empty", (long long)s.resource_count);
		if (rc >= 0)
			rc = pl_host->db_commit(db);
		if (rc < 0) {
			pl_host->db_rollback(db);
			pl_db_error(r, rc);
		} else {
			pl_host->resp_body(r->rs, 204, NULL, NULL, 0);
		}
	}
	pl_stack_free(&s);
out:
	pl_host->db_release(r->ext, db);
}

/* Run a write transaction on the path's stack: fn changes it and audits. */
static int stack_write(struct pl_req *r, int (*fn)(struct pl_req *, struct att_ext_db *, struct pl_stack *, void *),
		       void *arg)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	struct pl_stack s;
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return ATT_EXT_UNAVAILABLE;
	}
	rc = pl_host->db_begin(db);
	if (rc < 0) {
		pl_db_error(r, rc);
	} else if ((rc = pl_stack_get(r, db, &s)) < 0) {
		pl_host->db_rollback(db);
	} else {
		rc = fn(r, db, &s, arg);
		if (rc >= 0)
			rc = pl_host->db_commit(db);
		if (rc < 0) {
			pl_host->db_rollback(db);
			if (rc != ATT_EXT_PERMANENT)	/* PERMANENT: fn replied */
				pl_db_error(r, rc);
		}
		pl_stack_free(&s);
	}
	pl_host->db_release(r->ext, db);
	return rc < 0 ? rc : 0;
}

static int set_tags(struct pl_req *r, struct att_ext_db *db, struct pl_stack *s, void *arg)
{
	int rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET tags = ? WHERE id = ?", "ss",
				  (const char *)arg, s->id);

	return rc < 0 ? rc : pl_audit(r, db, "pulumi.stack.tags", "tags set to %.600s", (const char *)arg);
}

void pl_h_stack_tags(struct pl_req *r)
{
	json_t *j = pl_body_json(r);
	char *t;

	if (!j)
		return;
	if (!tags_ok(j)) {
		pl_error(r, 400, "Bad Request: tags must map names to strings");
	} else if (!(t = tags_text(j))) {
		pl_error(r, 500, "Internal Server Error");
	} else {
		if (stack_write(r, set_tags, t) == 0)
			pl_reply_raw(r, 200, "{}", 2);
		free(t);
	}
	json_decref(j);
}

struct rename {
	const char *stack, *project;
};

/* URNs carry the stack and project: urn:pulumi:<stack>::<project>::... */
static char *rewrite_urns(const char *cp, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0, cap = strlen(cp) + 1;
	const char *p = cp, *hit;
	char *out;

	for (hit = strstr(p, from); hit; hit = strstr(hit + fl, from))
		cap += tl > fl ? tl - fl : 0;
	out = malloc(cap);
	if (!out)
		return NULL;
	while ((hit = strstr(p, from)) != NULL) {
		memcpy(out + n, p, (size_t)(hit - p));
		n += (size_t)(hit - p);
		memcpy(out + n, to, tl);
		n += tl;
		p = hit + fl;
	}
	memcpy(out + n, p, strlen(p) + 1);
	return out;
}

static int do_rename(struct pl_req *r, struct att_ext_db *db, struct pl_stack *s, void *arg)
{
	const struct rename *rn = arg;
	struct att_ext_rows *rows;
	char from[300], to[300], *cp = NULL;
	int rc;

	if (pl_update_active(db, s->active)) {
		pl_error(r, 409, "Conflict: an update is in progress on this stack");
		return ATT_EXT_PERMANENT;
	}
	rc = pl_checkpoint_compact(db, s->id);
	if (rc < 0)
		return rc;
	rc = pl_host->db_query(db, &rows, "SELECT checkpoint FROM extension_pulumi_state_stacks WHERE id = ?", "s",
			       s->id);
	if (rc < 0)
		return rc;
	if (pl_host->rows_next(rows) == 1 && pl_host->rows_text(rows, 0)) {
		snprintf(from, sizeof(from), "urn:pulumi:%s::%s::", r->stack, r->project);
		snprintf(to, sizeof(to), "urn:pulumi:%s::%s::", rn->stack, rn->project);
		cp = rewrite_urns(pl_host->rows_text(rows, 0), from, to);
		rc = cp ? 0 : ATT_EXT_ERROR;
	}
	pl_host->rows_done(rows);
	if (rc == 0)
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_stacks SET stack = ?, project = ?,"
				      " checkpoint = COALESCE(?, checkpoint) WHERE id = ?",
				      "ssss", rn->stack, rn->project, cp, s->id);
	free(cp);
	if (rc == ATT_EXT_CONFLICT) {
		pl_error(r, 409, "Conflict: stack '%s/%s/%s' already exists", r->org, rn->project, rn->stack);
		return ATT_EXT_PERMANENT;
	}
	return rc < 0 ? rc : pl_audit(r, db, "pulumi.stack.rename", "renamed to %s/%s", rn->project, rn->stack);
}

void pl_h_stack_rename(struct pl_req *r)
{
	json_t *j = pl_body_json(r);
	struct rename rn;

	if (!j)
		return;
	rn.stack = json_string_value(json_object_get(j, "newName"));
	rn.project = json_string_value(json_object_get(j, "newProject"));
	if (!rn.project || !*rn.project)
		rn.project = r->project;
	if (!rn.stack || !*rn.stack)
		rn.stack = r->stack;
	if (!name_ok(rn.stack, 100) || !name_ok(rn.project, 100))
		pl_error(r, 400, "Bad Request: newName and newProject must be 1-100 of [A-Za-z0-9_.-]");
	else if (stack_write(r, do_rename, &rn) == 0)
		pl_reply_raw(r, 200, "{}", 2);
	json_decref(j);
}

static void export_version(struct pl_req *r, int64_t version)
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
	if (version < 0 || version == s.version) {
		char *cp = NULL;
		size_t len = 0;

		/* the stored text and the delta rows on it, read together */
		rc = pl_host->db_begin(db);
		if (rc >= 0)
			rc = pl_checkpoint_text(db, s.id, &cp, &len, NULL);
		if (rc >= 0)
			rc = pl_host->db_commit(db);
		else
			pl_host->db_rollback(db);
		if (rc >= 0 && cp)
			pl_reply_raw(r, 200, cp, len);
		else if (rc >= 0)
			pl_reply_raw(r, 200, pl_empty_deployment, strlen(pl_empty_deployment));
		else
			pl_db_error(r, rc);
		free(cp);
		pl_host->db_release(r->ext, db);
		pl_stack_free(&s);
		return;
	}
	rc = pl_host->db_query(db, &rows,
				       "SELECT checkpoint FROM extension_pulumi_state_versions WHERE stack_id = ? AND version = ?",
				       "si", s.id, version);
	if (rc == 0) {
		rc = pl_host->rows_next(rows);
		if (rc == 1 && pl_host->rows_text(rows, 0)) {
			const char *cp = pl_host->rows_text(rows, 0);

			pl_reply_raw(r, 200, cp, strlen(cp));
		} else if (rc == 1 && (version < 0 || version == s.version)) {
			pl_reply_raw(r, 200, pl_empty_deployment, strlen(pl_empty_deployment));
		} else if (rc >= 0) {
			pl_error(r, 404, "Not Found: stack '%s/%s/%s' has no version %lld", r->org, r->project,
				 r->stack, (long long)version);
		}
		pl_host->rows_done(rows);
	}
	if (rc < 0)
		pl_db_error(r, rc);
	pl_host->db_release(r->ext, db);
	pl_stack_free(&s);
}

void pl_h_export(struct pl_req *r)
{
	export_version(r, -1);
}

void pl_h_export_version(struct pl_req *r)
{
	const char *v = pl_host->req_param(r->rq, "version");
	char *end;
	long long n = strtoll(v, &end, 10);

	if (*end || n < 0 || end == v)
		pl_error(r, 400, "Bad Request: version must be a number");
	else
		export_version(r, n);
}

/* Count "urn" members of the deployment's resources (once per update). */
int64_t pl_resource_count(const char *cp, size_t len)
{
	json_t *j = json_loadb(cp, len, 0, NULL);
	int64_t n = (int64_t)json_array_size(json_object_get(json_object_get(j, "deployment"), "resources"));

	json_decref(j);
	return n;
}

static int do_import(struct pl_req *r, struct att_ext_db *db, struct pl_stack *s, void *arg)
{
	char *id = arg;
	int64_t v = s->version + 1, now = pl_now();
	int rc;

	if (pl_update_active(db, s->active)) {
		pl_error(r, 409, "Conflict: an update is in progress on this stack");
		return ATT_EXT_PERMANENT;
	}
	rc = pl_checkpoint_compact(db, s->id);	/* no delta rows may outlive the text they edit */
	if (rc >= 0)
		rc = pl_host->db_exec(db,
			      "INSERT INTO extension_pulumi_state_updates (id, stack_id, kind, dry_run, status, version,"
			      " program, actor, created_at, start_time, end_time) VALUES (?, ?, 'import', 0, 'succeeded', ?,"
			      " '{}', ?, ?, ?, ?)",
			      "ssisiii", id, s->id, v, r->actor, now, now, now);
	if (rc >= 0)
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_stacks SET checkpoint = ?, version = ?, last_update = ?,"
				      " resource_count = ? WHERE id = ?",
				      "siiis", (const char *)r->body, v, now, pl_resource_count((const char *)r->body, r->len),
				      s->id);
	if (rc >= 0)
		rc = pl_host->db_exec(db,
				      "INSERT INTO extension_pulumi_state_versions (stack_id, version, checkpoint) VALUES (?, ?, ?)",
				      "sis", s->id, v, (const char *)r->body);
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.stack.import", "state imported as version %lld (%zu bytes)", (long long)v,
			      r->len);
	return rc;
}

void pl_h_import(struct pl_req *r)
{
	json_t *j = pl_body_json(r);
	char id[37];

	if (!j)
		return;
	if (!deployment_ok(j) || memchr(r->body, 0, r->len)) {
		pl_error(r, 400, "Bad Request: expected an UntypedDeployment {\"version\": 1-4, \"deployment\": {...}}");
		json_decref(j);
		return;
	}
	json_decref(j);
	pl_random_id(id);
	/* finished synchronously: the first status poll says succeeded */
	if (stack_write(r, do_import, id) == 0)
		pl_reply_json(r, 200, json_pack("{s:s}", "updateId", id));
}
