/* host.c - the host function table of the extension ABI: registration,
 * requests and responses, the database, the audit log, leases, events. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "ext/ext.h"
#include "machine/sweep.h"
#include "obs/log.h"
#include "oidc/jwt.h"
#include "worker.h"


static int from_err(int r)
{
	switch (r) {
	case 0: return ATT_EXT_OK;
	case ATT_E_INVAL:
	case ATT_E_PARSE: return ATT_EXT_INVALID;
	case ATT_E_CONFLICT: return ATT_EXT_CONFLICT;
	case ATT_E_NOTFOUND: return ATT_EXT_NOTFOUND;
	case ATT_E_DB:
	case ATT_E_UNAVAILABLE: return ATT_EXT_UNAVAILABLE;
	default: return r < 0 ? ATT_EXT_ERROR : r;
	}
}

/* ---- registration ----------------------------------------------------------- */

static int refuse(struct att_ext *ext, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct att_ext *ext, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ext->why, sizeof(ext->why), fmt, ap);
	va_end(ap);
	return ATT_EXT_INVALID;
}

static void ext_route_call(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const struct att_ext_binding *b = rq->route->ud;

	(void)svc;
	b->fn(b->ext, (struct att_ext_req *)rq, (struct att_ext_resp *)rs, b->ud);
}

static bool path_sane(const char *p)
{
	if (p[0] != '/' || strstr(p, "//") || strstr(p, "/../") || strstr(p, "/./"))
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == '%' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static bool under_prefix(const struct att_ext *ext, const char *path)
{
	for (size_t i = 0; i < ext->nprefixes; i++) {
		size_t n = strlen(ext->prefixes[i]);

		/* "/api/user" owns "/api/user" and "/api/user/..."; "/x/" owns "/x/..." */
		if (strncmp(path, ext->prefixes[i], n) == 0 &&
		    (path[n] == '\0' || path[n] == '/' || ext->prefixes[i][n - 1] == '/'))
			return true;
	}
	return false;
}

static int h_add_route(struct att_ext *ext, const struct att_ext_route *route)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" };
	struct att_ext_binding *b;
	struct att_route *grown, *r;
	const char *method = NULL;

	if (!ext->in_init || !route || !route->fn || !route->method || !route->path)
		return refuse(ext, "add_route: called outside init() or without method, path or handler");
	for (size_t i = 0; i < ATT_ARRAY_SIZE(methods); i++)
		if (strcmp(route->method, methods[i]) == 0)
			method = methods[i];
	if (!method || route->auth > ATT_EXT_AUTH_IDENTITY || route->flags & ~(ATT_EXT_ROUTE_ANY_BODY | ATT_EXT_ROUTE_ERROR_CODE))
		return refuse(ext, "route %.16s %.128s: unknown method, auth or flags", route->method, route->path);
	if (!path_sane(route->path) || !under_prefix(ext, route->path))
		return refuse(ext, "route %.16s %.128s is outside its prefixes", route->method, route->path);
	grown = realloc(ext->routes, (ext->nroutes + 1) * sizeof(*grown));
	if (!grown)
		return ATT_EXT_ERROR;
	ext->routes = grown;
	b = calloc(1, sizeof(*b));
	r = &ext->routes[ext->nroutes];
	memset(r, 0, sizeof(*r));
	r->path = att_strdup(route->path);
	if (!b || !r->path) {
		free(b);
		free((char *)r->path);
		return ATT_EXT_ERROR;
	}
	b->ext = ext;
	b->fn = route->fn;
	b->ud = route->ud;
	r->method = method;
	r->auth = route->auth == ATT_EXT_AUTH_OPERATOR   ? AUTH_OPERATOR
		  : route->auth == ATT_EXT_AUTH_IDENTITY ? AUTH_IDENTITY
							 : AUTH_NONE;
	r->fn = ext_route_call;
	r->max_body = route->max_body;
	r->flags = (route->flags & ATT_EXT_ROUTE_ANY_BODY ? ATT_ROUTE_ANY_BODY : 0) |
		   (route->flags & ATT_EXT_ROUTE_ERROR_CODE ? ATT_ROUTE_ERROR_CODE : 0);
	r->ud = b;
	ext->nroutes++;
	return ATT_EXT_OK;
}

static int h_add_migration(struct att_ext *ext, const struct att_ext_migration *m)
{
	struct att_ext_migration *grown, *d;
	char why[256];

	if (!ext->in_init || !m || !m->name || !m->sqlite || m->version < 1 ||
	    (ext->nmigrations && m->version <= ext->migrations[ext->nmigrations - 1].version))
		return refuse(ext, "add_migration: called outside init(), without name or SQL, or versions not ascending");
	if (!att_ext_sql_confined(ext, m->sqlite, why, sizeof(why)) ||
	    (m->postgresql && !att_ext_sql_confined(ext, m->postgresql, why, sizeof(why))))
		return refuse(ext, "migration %d: %s", m->version, why);
	grown = realloc(ext->migrations, (ext->nmigrations + 1) * sizeof(*grown));
	if (!grown)
		return ATT_EXT_ERROR;
	ext->migrations = grown;
	d = &ext->migrations[ext->nmigrations];
	d->version = m->version;
	d->name = att_strdup(m->name);
	d->sqlite = att_strdup(m->sqlite);
	d->postgresql = att_strdup(m->postgresql ? m->postgresql : m->sqlite);
	if (!d->name || !d->sqlite || !d->postgresql) {
		free((char *)d->name);
		free((char *)d->sqlite);
		free((char *)d->postgresql);
		return ATT_EXT_ERROR;
	}
	ext->nmigrations++;
	return ATT_EXT_OK;
}

static bool event_name_ok(const char *e)
{
	size_t n = strlen(e);

	if (strcmp(e, "*") == 0)
		return true;
	if (n == 0 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)e[i]) || e[i] == '.' || e[i] == '_'))
			return false;
	return true;
}

static int add_any_hook(struct att_ext *ext, const char *what, const char *event, const struct att_ext_hook *tpl)
{
	struct att_ext_hook *h;
	unsigned same = 0;

	if (!ext->in_init || !event || !(tpl->fn || tpl->ctx_fn) || !event_name_ok(event) ||
	    ext->nhooks >= ATT_EXT_MAX_HOOKS)
		return refuse(ext, "%s: called outside init(), without handler, bad event name '%.64s' or more than %d hooks",
			      what, event ? event : "", ATT_EXT_MAX_HOOKS);
	for (size_t i = 0; i < ext->nhooks; i++)
		same += strcmp(ext->hooks[i].event, event) == 0;
	h = &ext->hooks[ext->nhooks];
	*h = *tpl;
	snprintf(h->event, sizeof(h->event), "%s", event);
	if (same)
		snprintf(h->consumer, sizeof(h->consumer), "%s/%s#%u", ext->info->name, event, same + 1);
	else
		snprintf(h->consumer, sizeof(h->consumer), "%s/%s", ext->info->name, event);
	ext->nhooks++;
	return ATT_EXT_OK;
}

static int h_add_hook(struct att_ext *ext, const char *event, att_ext_hook_fn fn, void *ud)
{
	struct att_ext_hook t = { .fn = fn, .ud = ud };

	return add_any_hook(ext, "add_hook", event, &t);
}

static int h_add_target_hook(struct att_ext *ext, const char *event, att_ext_targets_fn targets, att_ext_hook_fn fn,
			     void *ud)
{
	struct att_ext_hook t = { .fn = fn, .targets = targets, .ud = ud };

	if (!targets)
		return refuse(ext, "add_target_hook: no targets function");
	return add_any_hook(ext, "add_target_hook", event, &t);
}

static int h_add_context_hook(struct att_ext *ext, const char *event, att_ext_context_fn fn, void *ud)
{
	struct att_ext_hook t = { .ctx_fn = fn, .ud = ud };

	return add_any_hook(ext, "add_context_hook", event, &t);
}

/* ---- the extension and the service ------------------------------------------------ */

static void h_set_data(struct att_ext *ext, void *data)
{
	ext->data = data;
}

static void *h_data(struct att_ext *ext)
{
	return ext->data;
}

static const char *h_name(struct att_ext *ext)
{
	return ext->info->name;
}

static const char *h_service_url(struct att_ext *ext)
{
	return ext->svc->cfg->service_url;
}

static void h_log(struct att_ext *ext, enum att_ext_log_level level, const char *fmt, ...)
{
	char topic[64], msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(topic, sizeof(topic), "attestd.ext.%s", ext->info->name);
	switch (level) {
	case ATT_EXT_LOG_DEBUG: att_log_debug(topic, "%s", msg); break;
	case ATT_EXT_LOG_INFO: att_log_info(topic, "%s", msg); break;
	case ATT_EXT_LOG_WARNING: att_log_warning(topic, "%s", msg); break;
	default: att_log_error(topic, "%s", msg); break;
	}
}

/* ---- requests and responses ----------------------------------------------------------- */

#define RQ(x) ((struct att_req *)(void *)(x))
#define RS(x) ((struct att_resp *)(void *)(x))

static const char *h_req_method(struct att_ext_req *rq)
{
	return RQ(rq)->method;
}

static const char *h_req_path(struct att_ext_req *rq)
{
	return RQ(rq)->path;
}

static const char *h_req_param(struct att_ext_req *rq, const char *name)
{
	return name ? att_req_param(RQ(rq), name) : NULL;
}

static const char *h_req_query(struct att_ext_req *rq, const char *name)
{
	return name ? att_req_query(RQ(rq), name) : NULL;
}

static const char *h_req_header(struct att_ext_req *rq, const char *name)
{
	return name ? att_req_header(RQ(rq), name) : NULL;
}

static const uint8_t *h_req_body(struct att_ext_req *rq, size_t *ret_len)
{
	*ret_len = RQ(rq)->body.len;
	return (const uint8_t *)(RQ(rq)->body.p ? RQ(rq)->body.p : "");
}

static const char *h_req_source_ip(struct att_ext_req *rq)
{
	return RQ(rq)->source_ip;
}

static const char *h_req_identity(struct att_ext_req *rq)
{
	return RQ(rq)->actor.authenticated ? RQ(rq)->actor_name : NULL;
}

static int h_req_is_operator(struct att_ext_req *rq)
{
	return RQ(rq)->actor.authenticated && RQ(rq)->is_operator;
}

static int h_req_authenticate(struct att_ext_req *rq, struct att_ext_resp *rs, const char *credential)
{
	if (!credential || !*credential) {
		att_resp_error(RS(rs), 401, "Credential required");
		return ATT_EXT_INVALID;
	}
	return att_auth_bearer(RQ(rq)->svc, RQ(rq), RS(rs), credential, false) == 0 ? ATT_EXT_OK : ATT_EXT_INVALID;
}

static int h_resp_body(struct att_ext_resp *rs, int status, const char *content_type, const void *body, size_t len)
{
	char *copy;

	if (status < 100 || status > 599 || (len && !body))
		return ATT_EXT_INVALID;
	copy = malloc(len + 1);
	if (!copy)
		return ATT_EXT_ERROR;
	if (len)
		memcpy(copy, body, len);
	copy[len] = '\0';
	att_resp_text(RS(rs), status, NULL, copy, len);
	snprintf(RS(rs)->ctype_copy, sizeof(RS(rs)->ctype_copy), "%s",
		 content_type && *content_type ? content_type : "application/octet-stream");
	RS(rs)->ctype = RS(rs)->ctype_copy;
	return ATT_EXT_OK;
}

static int h_resp_error(struct att_ext_resp *rs, int status, const char *detail)
{
	if (status < 400 || status > 599)
		return ATT_EXT_INVALID;
	att_resp_error(RS(rs), status, "%s", detail ? detail : "");
	return ATT_EXT_OK;
}

static int h_resp_header(struct att_ext_resp *rs, const char *name, const char *value)
{
	if (!name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") ||
	    RS(rs)->nhdr >= ATT_RESP_MAX_HEADERS)
		return ATT_EXT_INVALID;
	att_resp_header(RS(rs), name, value);
	return ATT_EXT_OK;
}

/* ---- database ----------------------------------------------------------------- */

#define DBC(x) ((struct att_dbc *)(void *)(x))
#define ST(x) ((struct att_stmt *)(void *)(x))

static struct att_ext_db *h_db_acquire(struct att_ext *ext)
{
	return (struct att_ext_db *)(void *)att_db_acquire(ext->svc->db);
}

static void h_db_release(struct att_ext *ext, struct att_ext_db *db)
{
	if (db)
		att_db_release(ext->svc->db, DBC(db));
}

static const char *h_db_backend(struct att_ext_db *db)
{
	return att_dbc_is_postgresql(DBC(db)) ? "postgresql" : "sqlite";
}

static int h_db_begin(struct att_ext_db *db)
{
	return from_err(att_dbc_begin(DBC(db)));
}

static int h_db_commit(struct att_ext_db *db)
{
	return from_err(att_dbc_commit(DBC(db)));
}

static void h_db_rollback(struct att_ext_db *db)
{
	att_dbc_rollback(DBC(db));
}

static int h_db_exec(struct att_ext_db *db, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = att_dbc_vexec(DBC(db), sql, types ? types : "", ap);
	va_end(ap);
	return from_err(r);
}

static int h_db_query(struct att_ext_db *db, struct att_ext_rows **ret, const char *sql, const char *types, ...)
{
	struct att_stmt *s = NULL;
	va_list ap;
	int r;

	va_start(ap, types);
	r = att_dbc_vquery(DBC(db), &s, sql, types ? types : "", ap);
	va_end(ap);
	if (r == 0)
		*ret = (struct att_ext_rows *)(void *)s;
	return from_err(r);
}

static int h_rows_next(struct att_ext_rows *rows)
{
	return from_err(att_stmt_next(ST(rows)));
}

static const char *h_rows_text(struct att_ext_rows *rows, int col)
{
	return att_stmt_text(ST(rows), col);
}

static int64_t h_rows_int(struct att_ext_rows *rows, int col)
{
	return att_stmt_int(ST(rows), col);
}

static int h_rows_is_null(struct att_ext_rows *rows, int col)
{
	return att_stmt_is_null(ST(rows), col);
}

static void h_rows_done(struct att_ext_rows *rows)
{
	if (rows)
		att_stmt_done(ST(rows));
}

static int h_audit(struct att_ext_db *db, const char *actor, const char *action, const char *machine_id,
		   const char *detail, const char *source_ip)
{
	if (!actor || !*actor || !action || !*action)
		return ATT_EXT_INVALID;
	return from_err(att_audit_append(DBC(db), actor, action, machine_id, NULL, NULL, detail, source_ip));
}

static int h_lease_claim(struct att_ext *ext, const char *lease, int64_t ttl, int *ret_held)
{
	char name[128];
	bool held = false;
	int r;

	if (!lease || !*lease || ttl < 1 || strlen(lease) > 64)
		return ATT_EXT_INVALID;
	snprintf(name, sizeof(name), "extension_%s_%s", ext->info->name, lease);
	r = att_lease_claim(ext->svc->db, name, att_worker_holder(), ttl, &held);
	*ret_held = held;
	return from_err(r);
}

/* ---- events -------------------------------------------------------------------------- */

static const char *h_event_name(const struct att_ext_event *ev)
{
	return ev->name;
}

static int64_t h_event_id(const struct att_ext_event *ev)
{
	return ev->id;
}

static const char *h_event_field(const struct att_ext_event *ev, const char *name)
{
	const json_t *v;

	if (!name || !ev->doc)
		return NULL;
	v = name[0] == '/' ? att_json_pointer(ev->doc, name) : json_object_get(ev->doc, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *h_event_json(const struct att_ext_event *ev, size_t *ret_len)
{
	if (ret_len)
		*ret_len = ev->len;
	return ev->json;
}

static const char *h_event_target(const struct att_ext_event *ev)
{
	return ev->target;
}

static int h_event_attempt(const struct att_ext_event *ev)
{
	return ev->attempt;
}

static void h_event_error(const struct att_ext_event *ev, const char *fmt, ...)
{
	va_list ap;

	if (!ev->error || !ev->errlen || !fmt)
		return;
	va_start(ap, fmt);
	vsnprintf(ev->error, ev->errlen, fmt, ap);
	va_end(ap);
}

static bool target_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '.' && t[i] != '_' && t[i] != '-')
			return false;
	return true;
}

static int h_add_target(struct att_ext_targets *out, const char *target)
{
	char *dup;

	if (!out || !target_ok(target))
		return ATT_EXT_INVALID;
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		char **items = cap <= 4096 ? realloc(out->items, cap * sizeof(*items)) : NULL;

		if (!items)
			return ATT_EXT_ERROR;
		out->items = items;
		out->cap = cap;
	}
	dup = att_strdup(target);
	if (!dup)
		return ATT_EXT_ERROR;
	out->items[out->n++] = dup;
	return ATT_EXT_OK;
}

void att_ext_targets_release(struct att_ext_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->items[i]);
	free(t->items);
	memset(t, 0, sizeof(*t));
}

int att_ext_event_targets(const struct att_ext_hook *h, struct att_ext *ext, const struct att_ext_event *ev,
			  struct att_ext_targets *out)
{
	memset(out, 0, sizeof(*out));
	return h->targets(ext, ev, out, h->ud);
}

static const char *ctx_str(const json_t *doc, const char *k)
{
	const json_t *v = json_object_get(doc, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The typed context from the event document (docs/events.md). */
static int call_context(const struct att_ext_hook *h, struct att_ext *ext, const struct att_ext_event *ev)
{
	struct att_ext_context c = { .size = sizeof(c), .ev = ev, .event = ev->name, .id = ev->id };
	const json_t *d = ev->doc, *hw = json_object_get(d, "hardware");
	char *raw = json_dumps(json_object_get(d, "raw"), JSON_COMPACT | JSON_ENCODE_ANY);
	int r;

	c.ek_fingerprint = ctx_str(d, "ek_fingerprint");
	c.machine_id = ctx_str(d, "machine_id");
	c.timestamp = ctx_str(d, "timestamp");
	c.raw = raw ? raw : "null";
	c.hostname = ctx_str(d, "hostname");
	c.role = ctx_str(d, "role");
	c.mac_address = ctx_str(d, "mac_address");
	c.ip_address = ctx_str(d, "ip_address");
	c.tpm_available = json_is_true(json_object_get(d, "tpm_available"));
	c.hardware.hw_uuid = ctx_str(hw, "hw_uuid");
	c.hardware.hw_serial = ctx_str(hw, "hw_serial");
	c.hardware.hw_product = ctx_str(hw, "hw_product");
	c.hardware.hw_mac = ctx_str(hw, "hw_mac");
	c.config_url = ctx_str(d, "config_url");
	c.schematic_id = ctx_str(d, "schematic_id");
	c.iso_url = ctx_str(d, "iso_url");
	c.first_seen_at = ctx_str(d, "first_seen_at");
	c.previous_role = ctx_str(d, "previous_role");
	c.new_role = ctx_str(d, "new_role");
	c.reason = ctx_str(d, "reason");
	c.last_seen_at = ctx_str(d, "last_seen_at");
	c.missed_count = json_integer_value(json_object_get(d, "missed_count"));
	r = h->ctx_fn(ext, &c, h->ud);
	free(raw);
	return r;
}

int att_ext_event_deliver(const struct att_ext_hook *h, struct att_ext *ext, const struct att_ext_event *ev)
{
	if (h->ctx_fn)
		return call_context(h, ext, ev);
	return h->fn(ext, ev, h->ud);
}

static const struct att_ext_host host = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.size = sizeof(struct att_ext_host),
	.add_route = h_add_route,
	.add_migration = h_add_migration,
	.add_hook = h_add_hook,
	.set_data = h_set_data,
	.data = h_data,
	.name = h_name,
	.service_url = h_service_url,
	.log = h_log,
	.req_method = h_req_method,
	.req_path = h_req_path,
	.req_param = h_req_param,
	.req_query = h_req_query,
	.req_header = h_req_header,
	.req_body = h_req_body,
	.req_source_ip = h_req_source_ip,
	.req_identity = h_req_identity,
	.req_is_operator = h_req_is_operator,
	.req_authenticate = h_req_authenticate,
	.resp_body = h_resp_body,
	.resp_error = h_resp_error,
	.resp_header = h_resp_header,
	.db_acquire = h_db_acquire,
	.db_release = h_db_release,
	.db_backend = h_db_backend,
	.db_begin = h_db_begin,
	.db_commit = h_db_commit,
	.db_rollback = h_db_rollback,
	.db_exec = h_db_exec,
	.db_query = h_db_query,
	.rows_next = h_rows_next,
	.rows_text = h_rows_text,
	.rows_int = h_rows_int,
	.rows_is_null = h_rows_is_null,
	.rows_done = h_rows_done,
	.audit = h_audit,
	.lease_claim = h_lease_claim,
	.event_name = h_event_name,
	.event_id = h_event_id,
	.event_field = h_event_field,
	.event_json = h_event_json,
	.add_target_hook = h_add_target_hook,
	.add_target = h_add_target,
	.add_context_hook = h_add_context_hook,
	.event_target = h_event_target,
	.event_attempt = h_event_attempt,
	.event_error = h_event_error,
	.secret_put = att_ext_h_secret_put,
	.secret_delete = att_ext_h_secret_delete,
	.wrapkey_open = att_ext_h_wrapkey_open,
	.wrapkey_wrap = att_ext_h_wrapkey_wrap,
	.wrapkey_unwrap = att_ext_h_wrapkey_unwrap,
	.wrapkey_id = att_ext_h_wrapkey_id,
	.wrapkey_close = att_ext_h_wrapkey_close,
};

const struct att_ext_host *att_ext_host_table(void)
{
	return &host;
}
