/* webhooks.c - the built-in "webhooks" module (docs/webhooks.md): a
 * target hook on every event (one delivery per subscribed webhook) and
 * /api/v1/webhooks CRUD, /{id}/deliveries and /{id}/test.  It uses the
 * public extension ABI and nothing else of attestd. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "webhooks.h"

const struct att_ext_host *wh_host;
#define H wh_host

static const char *const known_events[] = { "*", "node.registered", "node.provisioned", "node.role_changed",
					     "node.online", "node.locked", "node.unlocked", "node.decommissioned",
					     "node.heartbeat_missed", "node.cert_issued", "node.cert_revoked" };

void wh_now_iso(char out[32])
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

static void reply_json(struct att_ext_resp *rs, int status, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s)
		H->resp_body(rs, status, "application/json", s, strlen(s));
	else
		H->resp_error(rs, 500, "out of memory");
	free(s);
	json_decref(o);
}

static void reply_unavailable(struct att_ext_resp *rs)
{
	H->resp_error(rs, 503, "Database unavailable");
}

/* ---- validation --------------------------------------------------------------------------- */

static bool event_known(const char *e)
{
	for (size_t i = 0; i < sizeof(known_events) / sizeof(known_events[0]); i++)
		if (strcmp(e, known_events[i]) == 0)
			return true;
	return false;
}

/* events: a non-empty array of known names or "*"; returns its JSON text. */
static char *check_events(const json_t *v, char *why, size_t whylen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16) {
		snprintf(why, whylen, "events: must be a list of 1 to 16 event names (or [\"*\"])");
		return NULL;
	}
	json_array_foreach(v, i, e)
		if (!json_is_string(e) || !event_known(json_string_value(e))) {
			snprintf(why, whylen, "events: unknown event %.64s (see docs/events.md)",
				 json_is_string(e) ? json_string_value(e) : "(not a string)");
			return NULL;
		}
	return json_dumps(v, JSON_COMPACT);
}

static bool member_ok(const json_t *b, const char *k, json_type t, char *why, size_t whylen)
{
	const json_t *v = json_object_get(b, k);

	if (v && json_typeof(v) != t && !(t == JSON_TRUE && json_is_boolean(v))) {
		snprintf(why, whylen, "%s: wrong type", k);
		return false;
	}
	return true;
}

/* The request body as a JSON object with only known members; 422 otherwise. */
static json_t *body_json(struct att_ext_req *rq, struct att_ext_resp *rs)
{
	static const char *const allowed[] = { "name", "url", "events", "secret", "active" };
	size_t len;
	const uint8_t *p = H->req_body(rq, &len);
	json_error_t jerr;
	json_t *b = p ? json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	char why[160] = "";
	const char *k;
	json_t *v;

	if (!json_is_object(b)) {
		json_decref(b);
		H->resp_error(rs, 422, "body: expected a JSON object");
		return NULL;
	}
	json_object_foreach(b, k, v) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			ok |= strcmp(k, allowed[i]) == 0;
		if (!ok) {
			snprintf(why, sizeof(why), "%.64s: unknown field", k);
			break;
		}
	}
	if (!why[0] && member_ok(b, "name", JSON_STRING, why, sizeof(why)) &&
	    member_ok(b, "url", JSON_STRING, why, sizeof(why)) && member_ok(b, "secret", JSON_STRING, why, sizeof(why)))
		(void)member_ok(b, "active", JSON_TRUE, why, sizeof(why));
	if (why[0]) {
		json_decref(b);
		H->resp_error(rs, 422, why);
		return NULL;
	}
	return b;
}

/* url, name, secret checks shared by create and update; 422 answered. */
static bool check_fields(const json_t *b, struct att_ext_resp *rs)
{
	const char *url = json_string_value(json_object_get(b, "url"));
	const char *name = json_string_value(json_object_get(b, "name"));
	const char *secret = json_string_value(json_object_get(b, "secret"));
	char why[256], pin[320];

	if (url) {
		int r = wh_url_resolve(url, pin, sizeof(pin), why, sizeof(why));

		if (r == -1) {
			H->resp_error(rs, 422, why);
			return false;
		}
	}
	if (name && (!*name || strlen(name) > 128)) {
		H->resp_error(rs, 422, "name: 1 to 128 characters");
		return false;
	}
	if (secret && (strlen(secret) < WH_SECRET_MIN || strlen(secret) > WH_SECRET_MAX)) {
		H->resp_error(rs, 422, "secret: 16 to 256 characters");
		return false;
	}
	return true;
}

/* ---- rows --------------------------------------------------------------------------------- */

#define HOOK_COLS "id, name, url, events, active, created_at, created_by, updated_at"

static json_t *hook_json(struct att_ext_rows *r)
{
	json_error_t jerr;
	json_t *ev = json_loads(H->rows_text(r, 3), 0, &jerr);

	return json_pack("{s:s,s:s,s:s,s:o,s:b,s:s,s:s?,s:s}", "id", H->rows_text(r, 0), "name", H->rows_text(r, 1),
			 "url", H->rows_text(r, 2), "events", ev ? ev : json_array(), "active", (int)H->rows_int(r, 4),
			 "created_at", H->rows_text(r, 5), "created_by", H->rows_text(r, 6), "updated_at",
			 H->rows_text(r, 7));
}

/* One webhook as JSON, NULL if absent; *ret_err < 0 on a database failure. */
static json_t *hook_get(struct att_ext *ext, const char *id, int *ret_err)
{
	struct att_ext_db *db = H->db_acquire(ext);
	struct att_ext_rows *rows;
	json_t *o = NULL;
	int r;

	*ret_err = 0;
	if (!db) {
		*ret_err = -1;
		return NULL;
	}
	r = H->db_query(db, &rows, "SELECT " HOOK_COLS " FROM extension_webhooks_hooks WHERE id = ?", "s", id);
	if (r == ATT_EXT_OK) {
		if ((r = H->rows_next(rows)) == 1)
			o = hook_json(rows);
		H->rows_done(rows);
	}
	H->db_release(ext, db);
	*ret_err = r < 0 ? -1 : 0;
	return o;
}

static bool id_ok(const char *id)
{
	return id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

/* ---- routes ------------------------------------------------------------------------------- */

static void h_create(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	json_t *b = body_json(rq, rs), *o;
	char id[33], gen[65], why[200], ts[32], *events = NULL, *sealed = NULL, host[160];
	const char *url, *name, *secret;
	struct att_ext_db *db;
	int r, err;

	(void)ud;
	if (!b)
		return;
	url = json_string_value(json_object_get(b, "url"));
	if (!url) {
		H->resp_error(rs, 422, "url: required");
		goto out;
	}
	if (!check_fields(b, rs))
		goto out;
	events = json_object_get(b, "events") ? check_events(json_object_get(b, "events"), why, sizeof(why))
					       : strdup("[\"*\"]");
	if (!events) {
		H->resp_error(rs, 422, why);
		goto out;
	}
	secret = json_string_value(json_object_get(b, "secret"));
	if (!secret) {
		wh_random_hex(gen, 32);
		secret = gen;
	}
	name = json_string_value(json_object_get(b, "name"));
	if (!name) {
		const char *h = strstr(url, "://") + 3;

		snprintf(host, sizeof(host), "%.*s", (int)strcspn(h, "/?"), h);
		name = host;
	}
	sealed = wh_secret_seal(secret);
	wh_random_hex(id, 16);
	wh_now_iso(ts);
	db = sealed ? H->db_acquire(ext) : NULL;
	if (!db) {
		reply_unavailable(rs);
		goto out;
	}
	r = H->db_begin(db);
	if (r == ATT_EXT_OK)
		r = H->db_exec(db,
			       "INSERT INTO extension_webhooks_hooks (id, name, url, events, secret_sealed, active, created_at,"
			       " created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       "sssssbsss", id, name, url, events, sealed,
			       json_is_false(json_object_get(b, "active")) ? 0 : 1, ts, H->req_identity(rq), ts);
	if (r >= 0) {
		char detail[300];

		snprintf(detail, sizeof(detail), "webhook %s created for %.200s", id, url);
		r = H->audit(db, H->req_identity(rq), "webhook_created", NULL, detail, H->req_source_ip(rq));
	}
	if (r >= 0)
		r = H->db_commit(db);
	else
		H->db_rollback(db);
	H->db_release(ext, db);
	if (r < 0) {
		reply_unavailable(rs);
		goto out;
	}
	o = hook_get(ext, id, &err);
	if (!o) {
		reply_unavailable(rs);
		goto out;
	}
	/* the secret is shown once, now, and never again */
	json_object_set_new(o, "secret", json_string(secret));
	reply_json(rs, 201, o);
out:
	OPENSSL_cleanse(gen, sizeof(gen));
	free(events);
	free(sealed);
	json_decref(b);
}

static void h_list(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	struct att_ext_db *db = H->db_acquire(ext);
	struct att_ext_rows *rows;
	json_t *arr = json_array();
	int r = ATT_EXT_UNAVAILABLE;

	(void)rq;
	(void)ud;
	if (db) {
		r = H->db_query(db, &rows, "SELECT " HOOK_COLS " FROM extension_webhooks_hooks ORDER BY created_at, id", "");
		if (r == ATT_EXT_OK) {
			while ((r = H->rows_next(rows)) == 1)
				json_array_append_new(arr, hook_json(rows));
			H->rows_done(rows);
		}
		H->db_release(ext, db);
	}
	if (r < 0) {
		json_decref(arr);
		reply_unavailable(rs);
		return;
	}
	reply_json(rs, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(arr), "webhooks", arr));
}

/* {id} of the request, or NULL after answering 404. */
static const char *path_id(struct att_ext_req *rq, struct att_ext_resp *rs)
{
	const char *id = H->req_param(rq, "id");

	if (!id_ok(id)) {
		H->resp_error(rs, 404, "Webhook not found");
		return NULL;
	}
	return id;
}

static void h_get(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *id = path_id(rq, rs);
	json_t *o;
	int err;

	(void)ud;
	if (!id)
		return;
	o = hook_get(ext, id, &err);
	if (err)
		reply_unavailable(rs);
	else if (!o)
		H->resp_error(rs, 404, "Webhook not found");
	else
		reply_json(rs, 200, o);
}

/* PATCH: any of name, url, events, secret, active. */
static void h_update(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *id = path_id(rq, rs);
	json_t *b, *o;
	char why[200], ts[32], *events = NULL, *sealed = NULL;
	const json_t *ev;
	struct att_ext_db *db;
	int r, err;

	(void)ud;
	if (!id || !(b = body_json(rq, rs)))
		return;
	if (!check_fields(b, rs))
		goto out;
	ev = json_object_get(b, "events");
	if (ev && !(events = check_events(ev, why, sizeof(why)))) {
		H->resp_error(rs, 422, why);
		goto out;
	}
	if (json_object_get(b, "secret") && !(sealed = wh_secret_seal(json_string_value(json_object_get(b, "secret"))))) {
		H->resp_error(rs, 500, "cannot seal the secret");
		goto out;
	}
	wh_now_iso(ts);
	db = H->db_acquire(ext);
	if (!db) {
		reply_unavailable(rs);
		goto out;
	}
	r = H->db_begin(db);
	if (r == ATT_EXT_OK)
		r = H->db_exec(db,
			       "UPDATE extension_webhooks_hooks SET name = COALESCE(?, name), url = COALESCE(?, url),"
			       " events = COALESCE(?, events), secret_sealed = COALESCE(?, secret_sealed),"
			       " active = CASE WHEN ? = 1 THEN 1 WHEN ? = 0 THEN 0 ELSE active END, updated_at = ? WHERE id = ?",
			       "ssssiiss", json_string_value(json_object_get(b, "name")),
			       json_string_value(json_object_get(b, "url")), events, sealed,
			       (int64_t)(json_is_true(json_object_get(b, "active")) ? 1 : -1),
			       (int64_t)(json_is_false(json_object_get(b, "active")) ? 0 : -1), ts, id);
	if (r > 0) {
		char detail[300];

		snprintf(detail, sizeof(detail), "webhook %s updated%s", id, sealed ? " (secret rotated)" : "");
		r = H->audit(db, H->req_identity(rq), "webhook_updated", NULL, detail, H->req_source_ip(rq));
		r = r >= 0 ? 1 : r;
	}
	if (r > 0)
		r = H->db_commit(db) == ATT_EXT_OK ? 1 : ATT_EXT_UNAVAILABLE;
	else
		H->db_rollback(db);
	H->db_release(ext, db);
	if (r == 0 || r == ATT_EXT_NOTFOUND) {
		H->resp_error(rs, 404, "Webhook not found");
		goto out;
	}
	o = r < 0 ? NULL : hook_get(ext, id, &err);
	if (!o)
		reply_unavailable(rs);
	else
		reply_json(rs, 200, o);
out:
	free(events);
	free(sealed);
	json_decref(b);
}

static void h_delete(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *id = path_id(rq, rs);
	struct att_ext_db *db;
	int r;

	(void)ud;
	if (!id)
		return;
	db = H->db_acquire(ext);
	if (!db) {
		reply_unavailable(rs);
		return;
	}
	r = H->db_begin(db);
	if (r == ATT_EXT_OK)
		r = H->db_exec(db, "DELETE FROM extension_webhooks_hooks WHERE id = ?", "s", id);
	if (r > 0) {
		char detail[100];

		snprintf(detail, sizeof(detail), "webhook %s deleted", id);
		r = H->audit(db, H->req_identity(rq), "webhook_deleted", NULL, detail, H->req_source_ip(rq));
		r = r >= 0 ? 1 : r;
	}
	if (r > 0)
		r = H->db_commit(db) == ATT_EXT_OK ? 1 : ATT_EXT_UNAVAILABLE;
	else
		H->db_rollback(db);
	H->db_release(ext, db);
	if (r == 0)
		H->resp_error(rs, 404, "Webhook not found");
	else if (r < 0)
		reply_unavailable(rs);
	else
		reply_json(rs, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

static void h_deliveries(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *id = path_id(rq, rs);
	struct att_ext_db *db;
	struct att_ext_rows *rows;
	json_t *arr, *hook;
	int r, err;

	(void)ud;
	if (!id)
		return;
	hook = hook_get(ext, id, &err);
	if (!hook) {
		if (err)
			reply_unavailable(rs);
		else
			H->resp_error(rs, 404, "Webhook not found");
		return;
	}
	json_decref(hook);
	db = H->db_acquire(ext);
	if (!db) {
		reply_unavailable(rs);
		return;
	}
	arr = json_array();
	r = H->db_query(db, &rows,
			"SELECT id, event_id, event, attempt, status_code, outcome, error, duration_ms, created_at"
			" FROM extension_webhooks_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id LIMIT 200",
			"s", id);
	if (r == ATT_EXT_OK) {
		while ((r = H->rows_next(rows)) == 1)
			json_array_append_new(
				arr, json_pack("{s:s,s:I,s:s,s:I,s:o,s:s,s:s?,s:I,s:s}", "id", H->rows_text(rows, 0), "event_id",
					       (json_int_t)H->rows_int(rows, 1), "event", H->rows_text(rows, 2), "attempt",
					       (json_int_t)H->rows_int(rows, 3),
					       "status_code", H->rows_is_null(rows, 4) ? json_null() : json_integer(H->rows_int(rows, 4)),
					       "outcome", H->rows_text(rows, 5), "error", H->rows_text(rows, 6), "duration_ms",
					       (json_int_t)H->rows_int(rows, 7), "created_at", H->rows_text(rows, 8)));
		H->rows_done(rows);
	}
	H->db_release(ext, db);
	if (r < 0) {
		json_decref(arr);
		reply_unavailable(rs);
		return;
	}
	reply_json(rs, 200, json_pack("{s:s,s:o}", "webhook_id", id, "deliveries", arr));
}

/* ---- registration ------------------------------------------------------------------------- */

#define WH_TABLES \
	"CREATE TABLE extension_webhooks_hooks (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL," \
	" events TEXT NOT NULL, secret_sealed TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1," \
	" created_at TEXT NOT NULL, created_by TEXT, updated_at TEXT NOT NULL);" \
	"CREATE TABLE extension_webhooks_deliveries (id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL," \
	" event_id BIGINT NOT NULL, event TEXT NOT NULL, attempt INTEGER NOT NULL, status_code INTEGER," \
	" outcome TEXT NOT NULL, error TEXT, duration_ms INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);" \
	"CREATE INDEX extension_webhooks_deliveries_hook ON extension_webhooks_deliveries(webhook_id, created_at);" \
	"CREATE TABLE extension_webhooks_keys (id INTEGER PRIMARY KEY, key_hex TEXT NOT NULL);"

static int wh_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	static const struct att_ext_migration m = { 1, "webhooks, their delivery attempts, the secrets key", WH_TABLES,
						    NULL };
	static const struct att_ext_route routes[] = {
		{ "POST", "/api/v1/webhooks", ATT_EXT_AUTH_OPERATOR, 0, 16384, h_create, NULL },
		{ "GET", "/api/v1/webhooks", ATT_EXT_AUTH_OPERATOR, 0, 0, h_list, NULL },
		{ "GET", "/api/v1/webhooks/{id}", ATT_EXT_AUTH_OPERATOR, 0, 0, h_get, NULL },
		{ "PATCH", "/api/v1/webhooks/{id}", ATT_EXT_AUTH_OPERATOR, 0, 16384, h_update, NULL },
		{ "DELETE", "/api/v1/webhooks/{id}", ATT_EXT_AUTH_OPERATOR, ATT_EXT_ROUTE_ANY_BODY, 0, h_delete, NULL },
		{ "GET", "/api/v1/webhooks/{id}/deliveries", ATT_EXT_AUTH_OPERATOR, 0, 0, h_deliveries, NULL },
		{ "POST", "/api/v1/webhooks/{id}/test", ATT_EXT_AUTH_OPERATOR, ATT_EXT_ROUTE_ANY_BODY, 0, wh_h_test, NULL },
	};
	int k;

	wh_host = h;
	if (!ATT_EXT_HOST_HAS(h, add_target_hook)) {
		snprintf(err, errlen, "this attestd lacks target hooks");
		return ATT_EXT_ERROR;
	}
	k = wh_conf_load(err, errlen);
	if (k < 0)
		return ATT_EXT_ERROR;
	wh_have_key = k > 0;
	if (h->add_migration(ext, &m) != ATT_EXT_OK) {
		snprintf(err, errlen, "migration refused");
		return ATT_EXT_ERROR;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (h->add_route(ext, &routes[i]) != ATT_EXT_OK) {
			snprintf(err, errlen, "route %s %s refused", routes[i].method, routes[i].path);
			return ATT_EXT_ERROR;
		}
	if (h->add_target_hook(ext, "*", wh_targets, wh_deliver, NULL) != ATT_EXT_OK) {
		snprintf(err, errlen, "hook refused");
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

static const char *const wh_prefixes[] = { "/api/v1/webhooks", NULL };

const struct att_ext_info att_ext_webhooks = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "webhooks",
	.version = "1.0.0",
	.description = "HMAC-signed HTTP POSTs of lifecycle events to subscribed URLs",
	.prefixes = wh_prefixes,
	.init = wh_init,
	.start = wh_start,
	.stop = wh_stop,
};
