/* loader.c - loading extensions: the built-in modules, then every *.so
 * of ITL_EXTENSIONS_DIR (sorted), then the ITL_EXTENSIONS list.  Each is
 * checked (ABI version, name, prefixes), initialised, and refused with a
 * message naming it when anything is wrong: attestd does not start with
 * an extension it was told to load but could not.  Also applies their
 * migrations, starts and stops them, and answers GET /api/v1/extensions. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "ext/ext.h"
#include "obs/log.h"
#include "routes/routes.h"

#define LOG "attestd.ext"
#define MAX_EXTENSIONS 64

/* Built-in modules written against the ABI. */
/* Built-in modules: written against include/attest/extension.h like any
 * shared object (src/attestd/ext/builtin/). */
extern const struct att_ext_info att_ext_webhooks, att_ext_exec;
const struct att_ext_info *const att_ext_builtins[] = { &att_ext_webhooks, &att_ext_exec, NULL };
const size_t att_ext_nbuiltins = 2;

static struct att_ext *exts[MAX_EXTENSIONS];
static size_t nexts;

static bool name_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > 32 || n[0] < 'a' || n[0] > 'z')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

/* Prefixes must be absolute, end a segment, and not take core paths. */
static bool prefix_ok(const char *p)
{
	static const char *const core[] = { "/api/v1/machines", "/api/v1/register", "/api/v1/self-register",
					    "/api/v1/attest", "/api/v1/config", "/api/v1/audit",
					    "/api/v1/pcr-policies", "/api/v1/auth", "/api/v1/extensions",
					    "/healthz", "/readyz", "/metrics" };
	size_t n = strlen(p);

	if (n < 2 || p[0] != '/' || strstr(p, "//") || strstr(p, ".."))
		return false;
	if (strcmp(p, "/api/") == 0 || strcmp(p, "/api/v1/") == 0 || strcmp(p, "/api") == 0 ||
	    strcmp(p, "/api/v1") == 0)
		return false;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(core); i++)
		if (strncmp(p, core[i], strlen(core[i])) == 0 || strncmp(core[i], p, n) == 0)
			return false;
	return true;
}

static void ext_free(struct att_ext *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nprefixes; i++)
		free(e->prefixes[i]);
	for (size_t i = 0; i < e->nroutes; i++) {
		free((char *)e->routes[i].path);
		free((void *)e->routes[i].ud);
	}
	free(e->routes);
	for (size_t i = 0; i < e->nmigrations; i++) {
		free((char *)e->migrations[i].name);
		free((char *)e->migrations[i].sqlite);
		free((char *)e->migrations[i].postgresql);
	}
	free(e->migrations);
	if (e->dl)
		dlclose(e->dl);
	free(e);
}

static int set_prefixes(struct att_ext *e, char *reterr, size_t errlen)
{
	const struct att_ext_info *in = e->info;

	if (!in->prefixes) {
		e->prefixes[0] = att_asprintf("/api/v1/ext/%s/", in->name);
		e->nprefixes = e->prefixes[0] ? 1 : 0;
		return e->nprefixes ? 0 : ATT_E_NOMEM;
	}
	for (size_t i = 0; in->prefixes[i]; i++) {
		if (i >= ATT_EXT_MAX_PREFIXES || !prefix_ok(in->prefixes[i])) {
			snprintf(reterr, errlen, "extension %s (%s): URL prefix '%.64s' is not allowed (core paths, /api/, too many)",
				 in->name, e->source, in->prefixes[i]);
			return ATT_E_INVAL;
		}
		for (size_t k = 0; k < nexts; k++)
			for (size_t j = 0; j < exts[k]->nprefixes; j++)
				if (strncmp(exts[k]->prefixes[j], in->prefixes[i], strlen(in->prefixes[i])) == 0 ||
				    strncmp(in->prefixes[i], exts[k]->prefixes[j], strlen(exts[k]->prefixes[j])) == 0) {
					snprintf(reterr, errlen, "extension %s: URL prefix %s overlaps extension %s's %s",
						 in->name, in->prefixes[i], exts[k]->info->name, exts[k]->prefixes[j]);
					return ATT_E_CONFLICT;
				}
		e->prefixes[i] = att_strdup(in->prefixes[i]);
		if (!e->prefixes[i])
			return ATT_E_NOMEM;
		e->nprefixes++;
	}
	return 0;
}

/* Check info, register, and keep the extension (takes dl). */
static int add_extension(const struct att_svc *svc, const struct att_ext_info *in, void *dl, const char *source,
			 char *reterr, size_t errlen)
{
	struct att_ext *e = calloc(1, sizeof(*e));
	char why[512] = "";
	int r;

	if (!e) {
		if (dl)
			dlclose(dl);
		return ATT_E_NOMEM;
	}
	e->info = in;
	e->dl = dl;
	e->svc = svc;
	snprintf(e->source, sizeof(e->source), "%s", source);
	if (in->abi_version != ATT_EXT_ABI_VERSION) {
		snprintf(reterr, errlen, "extension %s: built for extension ABI %u, this attestd speaks %u", source,
			 in->abi_version, ATT_EXT_ABI_VERSION);
		r = ATT_E_INVAL;
		goto fail;
	}
	if (!name_ok(in->name) || !in->init || !in->version) {
		snprintf(reterr, errlen, "extension %s: invalid name '%.40s' (want [a-z][a-z0-9_]{0,31}) or missing version/init",
			 source, in->name ? in->name : "");
		r = ATT_E_INVAL;
		goto fail;
	}
	for (size_t i = 0; i < nexts; i++)
		if (strcmp(exts[i]->info->name, in->name) == 0) {
			snprintf(reterr, errlen, "extension %s: name %s is already loaded from %s", source, in->name,
				 exts[i]->source);
			r = ATT_E_CONFLICT;
			goto fail;
		}
	if (nexts >= MAX_EXTENSIONS) {
		snprintf(reterr, errlen, "too many extensions (at most %d)", MAX_EXTENSIONS);
		r = ATT_E_LIMIT;
		goto fail;
	}
	r = set_prefixes(e, reterr, errlen);
	if (r < 0)
		goto fail;
	e->in_init = true;
	r = in->init(e, att_ext_host_table(), why, sizeof(why));
	e->in_init = false;
	if (r != ATT_EXT_OK) {
		snprintf(reterr, errlen, "extension %s (%s) failed to initialise: %s%s%s%s", in->name, source,
			 why[0] ? why : "no reason given", e->why[0] ? " (" : "", e->why, e->why[0] ? ")" : "");
		r = ATT_E_INVAL;
		goto fail;
	}
	exts[nexts++] = e;
	att_log_info(LOG, "Extension %s %s loaded from %s: %zu route(s), %zu hook(s), %zu migration(s)", in->name,
		     in->version, source, e->nroutes, e->nhooks, e->nmigrations);
	return 0;
fail:
	ext_free(e);
	return r;
}

static int load_file(const struct att_svc *svc, const char *path, char *reterr, size_t errlen)
{
	const struct att_ext_info *in;
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!dl) {
		snprintf(reterr, errlen, "cannot load extension %s: %s", path, dlerror());
		return ATT_E_IO;
	}
	in = dlsym(dl, ATT_EXT_SYMBOL);
	if (!in) {
		snprintf(reterr, errlen, "%s is not an attestd extension: no symbol %s", path, ATT_EXT_SYMBOL);
		dlclose(dl);
		return ATT_E_INVAL;
	}
	return add_extension(svc, in, dl, path, reterr, errlen);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(const struct att_svc *svc, const char *dir, char *reterr, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *names[MAX_EXTENSIONS];
	size_t n = 0;
	int r = 0;

	if (!d) {
		snprintf(reterr, errlen, "ITL_EXTENSIONS_DIR %s: cannot open", dir);
		return ATT_E_IO;
	}
	while ((de = readdir(d)) != NULL && n < MAX_EXTENSIONS) {
		size_t len = strlen(de->d_name);

		if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0 && de->d_name[0] != '.')
			names[n++] = att_asprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && names[i])
			r = load_file(svc, names[i], reterr, errlen);
		free(names[i]);
	}
	return r;
}

int att_ext_load_all(const struct att_svc *svc, char *reterr, size_t errlen)
{
	const struct att_config *cfg = svc->cfg;
	int r;

	for (size_t i = 0; i < att_ext_nbuiltins; i++) {
		r = add_extension(svc, att_ext_builtins[i], NULL, "builtin", reterr, errlen);
		if (r < 0)
			return r;
	}
	if (cfg->extensions_dir[0]) {
		r = load_dir(svc, cfg->extensions_dir, reterr, errlen);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < cfg->extensions.n; i++) {
		r = load_file(svc, cfg->extensions.items[i], reterr, errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

int att_ext_routes(struct att_route **ret, size_t *ret_n)
{
	size_t n = 0, k = 0;
	struct att_route *all;

	for (size_t i = 0; i < nexts; i++)
		n += exts[i]->nroutes;
	all = calloc(n ? n : 1, sizeof(*all));
	if (!all)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < nexts; i++)
		for (size_t j = 0; j < exts[i]->nroutes; j++)
			all[k++] = exts[i]->routes[j];
	*ret = all;
	*ret_n = n;
	return 0;
}

static int migrate_one(struct att_dbc *c, const struct att_ext *e, char *reterr, size_t errlen)
{
	for (size_t i = 0; i < e->nmigrations; i++) {
		const struct att_ext_migration *m = &e->migrations[i];
		struct att_stmt *s;
		char ts[32], why[512] = "";
		int r = att_dbc_query(c, &s, "SELECT 1 FROM extension_migrations WHERE extension = ? AND version = ?",
				      "si", e->info->name, (int64_t)m->version);

		if (r < 0)
			return r;
		r = att_stmt_next(s);
		att_stmt_done(s);
		if (r < 0)
			return r;
		if (r == 1)
			continue;
		r = att_dbc_exec_script(c, att_dbc_is_postgresql(c) ? m->postgresql : m->sqlite, why, sizeof(why));
		if (r < 0) {
			snprintf(reterr, errlen, "extension %s: migration %d (%s) failed: %s", e->info->name, m->version,
				 m->name, why);
			return r;
		}
		att_time_iso(att_now(), ts);
		r = att_dbc_exec(c, "INSERT INTO extension_migrations (extension, version, name, applied_at) VALUES (?, ?, ?, ?)",
				 "siss", e->info->name, (int64_t)m->version, m->name, ts);
		if (r < 0)
			return r;
		att_log_info(LOG, "Extension %s: applied migration %d (%s)", e->info->name, m->version, m->name);
	}
	return 0;
}

int att_ext_migrate(struct att_db *db, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char why[256] = "";
	int r;

	if (nexts == 0)
		return 0;
	c = att_db_acquire(db);
	if (!c) {
		snprintf(reterr, errlen, "cannot connect to the database");
		return ATT_E_DB;
	}
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_dbc_exec_script(c,
					"CREATE TABLE IF NOT EXISTS extension_migrations (extension TEXT NOT NULL,"
					" version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,"
					" PRIMARY KEY (extension, version))",
					why, sizeof(why));
	for (size_t i = 0; r == 0 && i < nexts; i++)
		r = migrate_one(c, exts[i], reterr, errlen);
	if (r == 0)
		r = att_dbc_commit(c);
	if (r < 0) {
		if (!reterr[0])
			snprintf(reterr, errlen, "extension migrations failed: %s", why[0] ? why : att_dbc_errmsg(c));
		att_dbc_rollback(c);
	}
	att_db_release(db, c);
	return r < 0 ? r : 0;
}

int att_ext_start_all(char *reterr, size_t errlen)
{
	for (size_t i = 0; i < nexts; i++) {
		if (exts[i]->info->start && exts[i]->info->start(exts[i]) != ATT_EXT_OK) {
			snprintf(reterr, errlen, "extension %s failed to start", exts[i]->info->name);
			return ATT_E_IO;
		}
		exts[i]->started = true;
	}
	return 0;
}

void att_ext_stop_all(void)
{
	for (size_t i = nexts; i-- > 0;) {
		if (exts[i]->started && exts[i]->info->stop)
			exts[i]->info->stop(exts[i]);
		exts[i]->started = false;
	}
}

void att_ext_unload_all(void)
{
	unsigned hung = att_ext_abandoned_runners();

	att_ext_stop_all();
	if (hung) {
		/* a hook that overran its timeout still runs extension code:
		 * unloading it now would pull the code from under it */
		att_log_warning(LOG, "%u hook(s) still running after their timeout; extensions stay loaded until exit", hung);
		return;
	}
	for (size_t i = 0; i < nexts; i++)
		ext_free(exts[i]);
	nexts = 0;
}

struct att_ext *const *att_ext_list(size_t *ret_n)
{
	*ret_n = nexts;
	return exts;
}

bool att_ext_have_hooks(void)
{
	for (size_t i = 0; i < nexts; i++)
		if (exts[i]->nhooks)
			return true;
	return false;
}

/* GET /api/v1/extensions */
static void h_extensions(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr = json_array();

	(void)svc;
	(void)rq;
	for (size_t i = 0; i < nexts; i++) {
		const struct att_ext *e = exts[i];
		json_t *hooks = json_array(), *routes = json_array(), *prefixes = json_array();

		for (size_t j = 0; j < e->nhooks; j++)
			json_array_append_new(hooks, json_string(e->hooks[j].event));
		for (size_t j = 0; j < e->nroutes; j++)
			json_array_append_new(routes, json_pack("{s:s,s:s}", "method", e->routes[j].method, "path",
								 e->routes[j].path));
		for (size_t j = 0; j < e->nprefixes; j++)
			json_array_append_new(prefixes, json_string(e->prefixes[j]));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "name", e->info->name, "version",
						     e->info->version, "description",
						     e->info->description ? e->info->description : "", "source",
						     e->dl ? "shared-object" : "builtin", "prefixes", prefixes, "routes",
						     routes, "hooks", hooks));
	}
	att_resp_json(rs, 200, json_pack("{s:o,s:I}", "extensions", arr, "total", (json_int_t)nexts));
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/extensions", AUTH_NONE, h_extensions, 0, 0, NULL },
};

const struct att_route_set att_routes_extensions = { routes, ATT_ARRAY_SIZE(routes) };
