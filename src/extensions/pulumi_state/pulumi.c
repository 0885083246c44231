/* pulumi.c - the pulumi_state built-in extension: configuration, its
 * tables, the route table and what every handler shares (Pulumi-style
 * error bodies with "code", authentication by `token` and by operator
 * credential, gzip request bodies, stack rows, ids and the audit log). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "deploy.h"
#include "pulumi.h"

const struct att_ext_host *pl_host;
struct pl_config pl_cfg;

/* ---- replies --------------------------------------------------------------- */

void pl_reply_json(struct pl_req *r, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(body);
	if (!s) {
		pl_reply_raw(r, 500, "{\"code\":500,\"message\":\"Internal Server Error\"}", 46);
		return;
	}
	pl_reply_raw(r, status, s, strlen(s));
	free(s);
}

void pl_reply_raw(struct pl_req *r, int status, const char *json, size_t len)
{
	pl_host->resp_body(r->rs, status, "application/json", json, len);
}

/* The CLI reads "code" from an error body, not the status line. */
void pl_error(struct pl_req *r, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pl_reply_json(r, status, json_pack("{s:i,s:s}", "code", status, "message", msg));
}

void pl_db_error(struct pl_req *r, int rc)
{
	if (rc == ATT_EXT_UNAVAILABLE)
		pl_error(r, 503, "Service Unavailable: database unavailable");
	else if (rc == ATT_EXT_CONFLICT)
		pl_error(r, 409, "Conflict: a concurrent change won, retry");
	else
		pl_error(r, 500, "Internal Server Error");
}

/* ---- small helpers ------------------------------------------------------------- */

int64_t pl_now(void)
{
	return (int64_t)time(NULL);
}

void pl_sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[SHA256_DIGEST_LENGTH];

	SHA256(p, n, d);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void pl_random_id(char out[37])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		abort();
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void pl_random_token(char out[65])
{
	uint8_t b[32];

	if (RAND_bytes(b, sizeof(b)) != 1)
		abort();
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	OPENSSL_cleanse(b, sizeof(b));
}

int pl_audit(struct pl_req *r, struct att_ext_db *db, const char *action, const char *fmt, ...)
{
	char detail[768], full[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "pulumi %s/%s/%s: %s", r->org ? r->org : "-", r->project ? r->project : "-",
		 r->stack ? r->stack : "-", detail);
	return pl_host->audit(db, r->actor, action, NULL, full, pl_host->req_source_ip(r->rq));
}

void pl_stack_free(struct pl_stack *s)
{
	free(s->tags);
	free(s->key);
	s->tags = s->key = NULL;
}

int pl_stack_load(struct att_ext_db *db, const char *org, const char *project, const char *stack,
		  struct pl_stack *ret)
{
	struct att_ext_rows *rows;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = pl_host->db_query(db, &rows,
			       "SELECT id, version, active_update, tags, secrets_key, resource_count, last_update"
			       " FROM extension_pulumi_state_stacks WHERE org = ? AND project = ? AND stack = ?",
			       "sss", org, project, stack);
	if (rc < 0)
		return rc;
	rc = pl_host->rows_next(rows);
	if (rc == 1) {
		const char *a = pl_host->rows_text(rows, 2), *k = pl_host->rows_text(rows, 4);

		snprintf(ret->id, sizeof(ret->id), "%s", pl_host->rows_text(rows, 0));
		ret->version = pl_host->rows_int(rows, 1);
		snprintf(ret->active, sizeof(ret->active), "%s", a ? a : "");
		ret->tags = strdup(pl_host->rows_text(rows, 3) ? pl_host->rows_text(rows, 3) : "{}");
		ret->key = k ? strdup(k) : NULL;
		ret->resource_count = pl_host->rows_int(rows, 5);
		ret->last_update = pl_host->rows_int(rows, 6);
		rc = ret->tags && (!k || ret->key) ? 0 : ATT_EXT_ERROR;
	} else if (rc == 0) {
		rc = ATT_EXT_NOTFOUND;
	}
	pl_host->rows_done(rows);
	if (rc < 0)
		pl_stack_free(ret);
	return rc;
}

int pl_stack_get(struct pl_req *r, struct att_ext_db *db, struct pl_stack *ret)
{
	int rc = pl_stack_load(db, r->org, r->project, r->stack, ret);

	if (rc == ATT_EXT_NOTFOUND)
		pl_error(r, 404, "Not Found: stack '%s/%s/%s' does not exist", r->org, r->project, r->stack);
	else if (rc < 0)
		pl_db_error(r, rc);
	return rc;
}

/* Begin a transaction and load the request's stack in it; < 0 with the
 * answer written (and the transaction rolled back) when either fails. */
int pl_stack_begin(struct pl_req *r, struct att_ext_db *db, struct pl_stack *ret)
{
	int rc = pl_host->db_begin(db);

	if (rc < 0) {
		pl_db_error(r, rc);
		return rc;
	}
	rc = pl_stack_get(r, db, ret);
	if (rc < 0)
		pl_host->db_rollback(db);
	return rc;
}

/* ---- request bodies -------------------------------------------------------------- */

/* Take the body, inflating Content-Encoding: gzip into a capped buffer. */
static int take_body(struct pl_req *r)
{
	const char *enc = pl_host->req_header(r->rq, "Content-Encoding");
	size_t n;
	const uint8_t *raw = pl_host->req_body(r->rq, &n);
	int rc;

	if (enc && *enc && strcasecmp(enc, "identity") != 0) {
		if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0) {
			pl_error(r, 415, "Unsupported Media Type: Content-Encoding '%.32s' (only gzip)", enc);
			return -1;
		}
		rc = pl_gunzip(raw, n, pl_cfg.max_inflated, &r->body, &r->len);
		if (rc == PL_ETOOBIG)
			pl_error(r, 413, "Payload Too Large: the inflated body exceeds %zu bytes",
				 pl_cfg.max_inflated);
		else if (rc == PL_EMALFORMED)
			pl_error(r, 400, "Bad Request: malformed gzip body");
		else if (rc < 0)
			pl_error(r, 500, "Internal Server Error");
		return rc < 0 ? -1 : 0;
	}
	if (n > pl_cfg.max_inflated) {
		pl_error(r, 413, "Payload Too Large: the body exceeds %zu bytes", pl_cfg.max_inflated);
		return -1;
	}
	r->body = malloc(n + 1);
	if (!r->body) {
		pl_error(r, 500, "Internal Server Error");
		return -1;
	}
	memcpy(r->body, raw, n);
	r->body[n] = 0;
	r->len = n;
	return 0;
}

json_t *pl_body_json(struct pl_req *r)
{
	json_error_t e;
	json_t *j;

	if (r->len == 0) {
		pl_error(r, 400, "Bad Request: a JSON body is required");
		return NULL;
	}
	j = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
	if (!j) {
		pl_error(r, 400, "Bad Request: malformed JSON at byte %d: %s", e.position, e.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		pl_error(r, 400, "Bad Request: the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* ---- authentication -------------------------------------------------------------- */

static bool ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static bool jwt_shaped(const char *t)
{
	int dots = 0;

	for (; *t; t++) {
		if (*t == '.')
			dots++;
		else if (!isalnum((unsigned char)*t) && *t != '-' && *t != '_')
			return false;
	}
	return dots == 2;
}

/* `Authorization: token <ITL_PULUMI_TOKEN | operator credential>`.
 * Update-scoped routes check their update token themselves (updates.c). */
static int auth_user(struct pl_req *r)
{
	const char *h = pl_host->req_header(r->rq, "Authorization"), *id;

	if (!h || strncasecmp(h, "token ", 6) != 0 || !h[6]) {
		pl_error(r, 401, "Unauthorized: No credentials provided or are invalid.");
		pl_host->resp_header(r->rs, "WWW-Authenticate", "token");
		return -1;
	}
	h += 6;
	if (pl_cfg.token[0] && ct_equal(h, pl_cfg.token)) {
		snprintf(r->actor, sizeof(r->actor), "pulumi");
		return 0;
	}
	if (strncmp(h, "pd-", 3) == 0) {	/* a server-side deployment's own token */
		if (pl_deploy_auth(r, h) == 0)
			return 0;
		pl_error(r, 401, "Unauthorized: No credentials provided or are invalid.");
		return -1;
	}
	/* an operator's OIDC access token (or the admin token): history and
	 * the audit log name the person */
	if (pl_host->req_authenticate(r->rq, r->rs, h) != ATT_EXT_OK) {
		/* a JWT: the host's 401/403/503 stands (with "code": ATT_EXT_ROUTE_ERROR_CODE);
		 * anything else is simply a wrong token, even where no operator
		 * authentication is configured (the host would say 503) */
		if (!jwt_shaped(h))
			pl_error(r, 401, "Unauthorized: No credentials provided or are invalid.");
		return -1;
	}
	if (!pl_host->req_is_operator(r->rq)) {
		pl_error(r, 403, "Forbidden: the credential lacks the operator role");
		return -1;
	}
	id = pl_host->req_identity(r->rq);
	snprintf(r->actor, sizeof(r->actor), "%s", id ? id : "operator");
	return 0;
}

/* ---- routes -------------------------------------------------------------------- */

#define USER 0x1u	/* `token` auth (else the handler checks the update token) */
#define BODY 0x2u	/* read (and inflate) the body */

struct pl_route {
	const char *method, *path;
	pl_handler_fn fn;
	unsigned what;
};

#define S "/api/stacks/{org}/{project}/{stack}"
#define U S "/update/{update}"
static const struct pl_route routes[] = {
	{ "GET", "/api/capabilities", pl_h_capabilities, USER },
	{ "GET", "/api/user", pl_h_user, USER },
	{ "GET", "/api/user/organizations/default", pl_h_default_org, USER },
	{ "GET", "/api/user/stacks", pl_h_list_stacks, USER },
	{ "GET", "/api/cli/version", pl_h_cli_version, 0 },
	{ "HEAD", "/api/stacks/{org}/{project}", pl_h_project_head, USER },
	{ "POST", "/api/stacks/{org}/{project}", pl_h_stack_create, USER | BODY },
	{ "GET", S, pl_h_stack_get, USER },
	{ "DELETE", S, pl_h_stack_delete, USER },
	{ "PATCH", S "/tags", pl_h_stack_tags, USER | BODY },
	{ "POST", S "/rename", pl_h_stack_rename, USER | BODY },
	{ "GET", S "/export", pl_h_export, USER },
	{ "GET", S "/export/{version}", pl_h_export_version, USER },
	{ "POST", S "/import", pl_h_import, USER | BODY },
	{ "POST", S "/encrypt", pl_h_encrypt, USER | BODY },
	{ "POST", S "/decrypt", pl_h_decrypt, USER | BODY },
	{ "POST", S "/batch-encrypt", pl_h_batch_encrypt, USER | BODY },
	{ "POST", S "/batch-decrypt", pl_h_batch_decrypt, USER | BODY },
	{ "POST", S "/decrypt/log-decryption", pl_h_log_decryption, USER | BODY },
	{ "POST", S "/decrypt/log-batch-decryption", pl_h_log_decryption, USER | BODY },
	{ "GET", S "/updates", pl_h_history, USER },
	{ "GET", S "/updates/latest", pl_h_latest, USER },
	{ "POST", S "/update", pl_h_update_create, USER | BODY },
	{ "POST", S "/preview", pl_h_update_create, USER | BODY },
	{ "POST", S "/refresh", pl_h_update_create, USER | BODY },
	{ "POST", S "/destroy", pl_h_update_create, USER | BODY },
	{ "POST", U, pl_h_update_start, USER | BODY },
	{ "GET", U, pl_h_update_status, USER },
	{ "POST", U "/cancel", pl_h_cancel, USER },
	{ "PATCH", U "/checkpoint", pl_h_checkpoint, BODY },
	{ "PATCH", U "/checkpointverbatim", pl_h_checkpoint_verbatim, BODY },
	{ "PATCH", U "/checkpointdelta", pl_h_checkpoint_delta, BODY },
	{ "POST", U "/events/batch", pl_h_events, BODY },
	{ "POST", U "/renew_lease", pl_h_renew, BODY },
	{ "POST", U "/complete", pl_h_complete, BODY },
	{ "POST", S "/deployments", pl_h_deploy_create, USER | BODY },
	{ "GET", S "/deployments", pl_h_deploy_list, USER },
	{ "GET", S "/deployments/{deployment}", pl_h_deploy_get, USER },
	{ "DELETE", S "/deployments/{deployment}/cancel", pl_h_deploy_cancel, USER },
};
#undef U
#undef S

static bool segment_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static void dispatch(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const struct pl_route *route = ud;
	struct pl_req r = { .ext = ext, .rq = rq, .rs = rs };

	if (!pl_cfg.enabled) {
		pl_error(&r, 404, "Not Found: the Pulumi state backend is disabled (ITL_PULUMI_ENABLED=false)");
		return;
	}
	r.org = pl_host->req_param(rq, "org");
	r.project = pl_host->req_param(rq, "project");
	r.stack = pl_host->req_param(rq, "stack");
	r.update = pl_host->req_param(rq, "update");
	if ((route->what & USER) && auth_user(&r) < 0)
		return;
	/* one organization: ITL_PULUMI_ORG */
	if (r.org && strcmp(r.org, pl_cfg.org) != 0) {
		pl_error(&r, 404, "Not Found: organization '%.64s' does not exist (this backend serves '%s')", r.org,
			 pl_cfg.org);
		return;
	}
	if ((r.project && !segment_ok(r.project)) || (r.stack && !segment_ok(r.stack))) {
		pl_error(&r, 400, "Bad Request: project and stack names are 1-100 of [A-Za-z0-9_.-]");
		return;
	}
	if ((route->what & BODY) && take_body(&r) < 0)
		return;
	route->fn(&r);
	free(r.cache_text);	/* stashed but never committed */
	if (r.body)
		OPENSSL_cleanse(r.body, r.len);
	free(r.body);
}

/* ---- configuration ------------------------------------------------------------------ */

static int env_size(const char *name, int64_t dflt, int64_t min, int64_t max, int64_t *ret, char *err,
		    size_t errlen)
{
	const char *v = getenv(name);
	char *end;
	long long n;

	*ret = dflt;
	if (!v || !*v)
		return 0;
	n = strtoll(v, &end, 10);
	if (*end || n < min || n > max) {
		snprintf(err, errlen, "%s: expected an integer between %lld and %lld, got '%.32s'", name,
			 (long long)min, (long long)max, v);
		return -1;
	}
	*ret = n;
	return 0;
}

static int configure(char *err, size_t errlen)
{
	const char *v = getenv("ITL_PULUMI_ENABLED"), *tok = getenv("ITL_PULUMI_TOKEN");
	const char *org = getenv("ITL_PULUMI_ORG");
	int64_t body, inflated, logb;

	memset(&pl_cfg, 0, sizeof(pl_cfg));
	pl_cfg.enabled = true;
	if (v && *v) {
		if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
			pl_cfg.enabled = false;
		else if (strcasecmp(v, "true") && strcmp(v, "1") && strcasecmp(v, "yes") && strcasecmp(v, "on")) {
			snprintf(err, errlen, "ITL_PULUMI_ENABLED: expected true or false, got '%.32s'", v);
			return -1;
		}
	}
	if (tok && strlen(tok) >= sizeof(pl_cfg.token)) {
		snprintf(err, errlen, "ITL_PULUMI_TOKEN: longer than %zu bytes", sizeof(pl_cfg.token) - 1);
		return -1;
	}
	if (tok && *tok && strlen(tok) < 16) {
		snprintf(err, errlen, "ITL_PULUMI_TOKEN: shorter than 16 characters");
		return -1;
	}
	snprintf(pl_cfg.token, sizeof(pl_cfg.token), "%s", tok ? tok : "");
	snprintf(pl_cfg.org, sizeof(pl_cfg.org), "%s", org && *org ? org : "itlusions");
	for (const char *p = pl_cfg.org; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
			snprintf(err, errlen, "ITL_PULUMI_ORG: only letters, digits, '-' and '_'");
			return -1;
		}
	/* the same bounds as src/lib/config/config.c, which validates them first */
	if (env_size("ITL_PULUMI_MAX_BODY_BYTES", 32 << 20, 1024, 1 << 30, &body, err, errlen) < 0 ||
	    env_size("ITL_PULUMI_MAX_CHECKPOINT_BYTES", 64 << 20, 1024, 1 << 30, &inflated, err, errlen) < 0 ||
	    env_size("ITL_PULUMI_LEASE_SECONDS", 300, 10, 86400, &pl_cfg.lease_seconds, err, errlen) < 0 ||
	    env_size("ITL_PULUMI_DELTA_CUTOFF_BYTES", 1 << 20, 1, 1 << 30, &pl_cfg.delta_cutoff, err, errlen) < 0)
		return -1;
	if (env_size("ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS", 3600, 5, 86400, &pl_cfg.deploy_timeout, err, errlen) < 0 ||
	    env_size("ITL_PULUMI_DEPLOY_LOG_BYTES", 1 << 20, 1024, 64 << 20, &logb, err, errlen) < 0)
		return -1;
	pl_cfg.deploy_log_bytes = (size_t)logb;
	v = getenv("ITL_PULUMI_DEPLOY_ALLOW_FILE");
	pl_cfg.deploy_allow_file = v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
					 !strcasecmp(v, "on"));
	v = getenv("ITL_PULUMI_CLI");
	snprintf(pl_cfg.cli, sizeof(pl_cfg.cli), "%s", v && *v ? v : "pulumi");
	v = getenv("ITL_PULUMI_DEPLOY_BACKEND_URL");
	snprintf(pl_cfg.deploy_backend_url, sizeof(pl_cfg.deploy_backend_url), "%s", v ? v : "");
	pl_cfg.max_body = (size_t)body;
	pl_cfg.max_inflated = (size_t)inflated;
	return 0;
}

/* ---- the extension ------------------------------------------------------------------- */

#define COLS_STACKS \
	"id TEXT PRIMARY KEY, org TEXT NOT NULL, project TEXT NOT NULL, stack TEXT NOT NULL," \
	" tags TEXT NOT NULL DEFAULT '{}', version BIGINT NOT NULL DEFAULT 0, checkpoint TEXT," \
	" resource_count BIGINT NOT NULL DEFAULT 0, secrets_key TEXT, active_update TEXT," \
	" created_at BIGINT NOT NULL, last_update BIGINT NOT NULL DEFAULT 0, UNIQUE (org, project, stack)"
#define COLS_UPDATES \
	"id TEXT PRIMARY KEY, stack_id TEXT NOT NULL, kind TEXT NOT NULL, dry_run BIGINT NOT NULL," \
	" status TEXT NOT NULL, version BIGINT NOT NULL DEFAULT 0, token_hash TEXT," \
	" token_expires BIGINT NOT NULL DEFAULT 0, seq BIGINT NOT NULL DEFAULT 0, program TEXT NOT NULL," \
	" actor TEXT NOT NULL, created_at BIGINT NOT NULL, start_time BIGINT NOT NULL DEFAULT 0," \
	" end_time BIGINT NOT NULL DEFAULT 0, resource_changes TEXT, reason TEXT"
static const char schema_v1[] =
	"CREATE TABLE extension_pulumi_state_stacks (" COLS_STACKS ");\n"
	"CREATE TABLE extension_pulumi_state_updates (" COLS_UPDATES ");\n"
	"CREATE INDEX extension_pulumi_state_updates_stack ON extension_pulumi_state_updates (stack_id, created_at);\n"
	"CREATE TABLE extension_pulumi_state_events (update_id TEXT NOT NULL, seq BIGINT NOT NULL,"
	" event TEXT NOT NULL, PRIMARY KEY (update_id, seq));\n"
	"CREATE TABLE extension_pulumi_state_versions (stack_id TEXT NOT NULL, version BIGINT NOT NULL,"
	" checkpoint TEXT NOT NULL, PRIMARY KEY (stack_id, version));\n";

static const char schema_v2[] =
	"CREATE TABLE extension_pulumi_state_deployments (id TEXT PRIMARY KEY, stack_id TEXT NOT NULL,"
	" operation TEXT NOT NULL, repo_url TEXT NOT NULL, branch TEXT, repo_dir TEXT NOT NULL, env TEXT NOT NULL,"
	" status TEXT NOT NULL, actor TEXT NOT NULL, created_at BIGINT NOT NULL, started_at BIGINT NOT NULL DEFAULT 0,"
	" finished_at BIGINT NOT NULL DEFAULT 0, exit_code BIGINT, reason TEXT, log TEXT, runner TEXT,"
	" lease_expires BIGINT NOT NULL DEFAULT 0, token_hash TEXT, cancel_requested BIGINT NOT NULL DEFAULT 0);\n"
	"CREATE INDEX extension_pulumi_state_deployments_queue ON extension_pulumi_state_deployments (status, created_at);\n";

static const struct att_ext_migration v2 = {
	.version = 2,
	.name = "Pulumi server-side deployments",
	.sqlite = schema_v2,
};

static const struct att_ext_migration v3 = {
	.version = 3,
	.name = "Pulumi checkpoint deltas kept as rows",
	.sqlite = "CREATE TABLE extension_pulumi_state_deltas (update_id TEXT NOT NULL, seq BIGINT NOT NULL,"
		  " edits TEXT NOT NULL, PRIMARY KEY (update_id, seq));\n"
		  "ALTER TABLE extension_pulumi_state_updates ADD COLUMN base_seq BIGINT NOT NULL DEFAULT 0;\n",
};

static const struct att_ext_migration v1 = {
	.version = 1,
	.name = "Pulumi stacks, updates, engine events and checkpoint versions",
	.sqlite = schema_v1,
};

static int init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	pl_host = h;
	if (configure(err, errlen) < 0 || pl_keys_configure(ext, err, errlen) < 0) {
		pl_keys_close();
		return ATT_EXT_INVALID;
	}
	if (h->add_migration(ext, &v1) != ATT_EXT_OK || h->add_migration(ext, &v2) != ATT_EXT_OK ||
	    h->add_migration(ext, &v3) != ATT_EXT_OK) {
		snprintf(err, errlen, "migration refused");
		return ATT_EXT_INVALID;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		struct att_ext_route rt = {
			.method = routes[i].method,
			.path = routes[i].path,
			.auth = ATT_EXT_AUTH_NONE,
			.flags = ATT_EXT_ROUTE_ERROR_CODE,
			.max_body = pl_cfg.max_body,
			.fn = dispatch,
			.ud = (void *)(uintptr_t)&routes[i],
		};

		if (h->add_route(ext, &rt) != ATT_EXT_OK) {
			snprintf(err, errlen, "route %s %s refused", routes[i].method, routes[i].path);
			return ATT_EXT_INVALID;
		}
	}
	if (pl_cfg.enabled && !pl_cfg.master.set)
		h->log(ext, ATT_EXT_LOG_WARNING, "%s: the secrets endpoints (encrypt/decrypt) answer 503",
		       pl_cfg.why_no_master);
	else if (pl_cfg.master.set)
		h->log(ext, ATT_EXT_LOG_INFO, "stack secrets keys are wrapped by the master key: %s%s%s",
		       pl_cfg.master.desc, pl_cfg.previous.set ? "; previous master key: " : "",
		       pl_cfg.previous.set ? pl_cfg.previous.desc : "");
	return ATT_EXT_OK;
}

static int start(struct att_ext *ext)
{
	if (pl_keys_rewrap_all(ext) < 0)
		pl_host->log(ext, ATT_EXT_LOG_WARNING,
			     "stack keys not rewrapped at start-up (database unavailable): they are on use");
	return pl_deploy_start(ext) == 0 ? ATT_EXT_OK : ATT_EXT_ERROR;
}

static void stop(struct att_ext *ext)
{
	(void)ext;
	pl_deploy_stop();
	pl_keys_close();
}

static const char *const prefixes[] = { "/api/capabilities", "/api/user", "/api/stacks/", "/api/cli/", NULL };

const struct att_ext_info att_ext_pulumi_state = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "pulumi_state",
	.version = "1.0.0",
	.description = "Pulumi HTTP state backend (pulumi login https://<service>)",
	.prefixes = prefixes,
	.init = init,
	.start = start,
	.stop = stop,
};
