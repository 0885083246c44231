/* auth.c - the `attestation auth` command: its usage, option parsing and
 * dispatch, and the subcommands that only read or remove the cache: login
 * (picks a flow from auth_login_*.c), whoami, token, logout, cache-list,
 * clear-cache.  The provider is in auth_oidc.c, the cache in auth_cache.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "base/buf.h"
#include "base/util.h"
#include "oidc/jwt.h"

static const char auth_usage[] =
	"Usage: attestation auth COMMAND [options]\n"
	"\n"
	"  login [--method browser|device|password] [options]\n"
	"      browser (default): authorization code + PKCE; a listener on 127.0.0.1 receives\n"
	"        the redirect.  --listen-port N (default: random; the provider must allow\n"
	"        http://127.0.0.1:N/callback), --no-browser (print the URL only), --timeout S (180)\n"
	"      device: prints a code to enter on another device and polls until approved\n"
	"      password: --username USER [--password-stdin] (CI; prefer a confidential client\n"
	"        via KEYCLOAK_CLIENT_SECRET)\n"
	"      --scope S, --resource URI override ATTESTATION_OIDC_SCOPE / _RESOURCE\n"
	"  whoami        The cached identity, its roles, and the service's view of it\n"
	"  token         Print a valid access token (refreshed when needed), for curl\n"
	"  logout [--all]  Revoke the refresh token at the provider and remove the cached login\n"
	"  cache-list    List cached logins (never prints tokens)\n"
	"  clear-cache   Delete every cached login without contacting the provider\n";

/* ---- commands ----------------------------------------------------------------------- */

static int a_login(struct cli *c, int argc, char **argv)
{
	const char *method = "browser", *user = NULL, *port = NULL, *timeout = NULL, *scope = NULL, *res = NULL;
	bool pw_stdin = false, no_browser = false;
	const struct opt o[] = {
		{ "method", 'm', true, &method, NULL },	     { "username", 'u', true, &user, NULL },
		{ "password-stdin", 0, false, NULL, &pw_stdin }, { "no-browser", 0, false, NULL, &no_browser },
		{ "listen-port", 0, true, &port, NULL },     { "timeout", 0, true, &timeout, NULL },
		{ "scope", 0, true, &scope, NULL },	     { "resource", 0, true, &res, NULL },
	};
	char *pos[1];
	struct cli_disco d;
	int ex;
	long tmo = 180, lport = 0;

	if (parse_opts("auth login", argc, argv, o, ATT_ARRAY_SIZE(o), pos, 0) < 0)
		return EX_USAGE;
	if (!port && getenv("ATTESTATION_LISTEN_PORT"))
		port = getenv("ATTESTATION_LISTEN_PORT");
	if (port && !cli_parse_int(port, 0, 65535, &lport)) {
		fprintf(stderr, "attestation auth login: --listen-port takes a port number\n");
		return EX_USAGE;
	}
	if (timeout && !cli_parse_int(timeout, 1, 86400, &tmo)) {
		fprintf(stderr, "attestation auth login: --timeout takes seconds\n");
		return EX_USAGE;
	}
	if (scope)
		c->scope = scope;
	if (res)
		c->resource = res;
	if (strcmp(method, "browser") != 0 && strcmp(method, "pkce") != 0 && strcmp(method, "device") != 0 &&
	    strcmp(method, "password") != 0) {
		fprintf(stderr, "attestation auth login: --method must be browser, device or password\n");
		return EX_USAGE;
	}
	if (strcmp(method, "password") == 0 && !user) {
		fprintf(stderr, "attestation auth login: --method password needs --username\n");
		return EX_USAGE;
	}
	if (cli_cache_dir_ready(c) < 0)
		return EX_ERR;
	ex = cli_oidc_discover(c, &d);
	if (ex)
		return ex;
	if (strcmp(method, "device") == 0)
		ex = cli_login_device(c, &d, (int)tmo);
	else if (strcmp(method, "password") == 0)
		ex = cli_login_password(c, &d, user, pw_stdin);
	else
		ex = cli_login_browser(c, &d, (int)lport, no_browser, (int)tmo);
	cli_disco_free(&d);
	if (ex == 0) {
		char *p = cli_cache_path(c, ".json");
		json_t *doc = p ? cli_cache_read(p, false) : NULL;

		fprintf(stderr, "Logged in as %s (%s).\n", jstr(doc, "username") ? jstr(doc, "username") : "(unknown)",
			c->issuer);
		json_decref(doc);
		free(p);
	}
	return ex;
}

static json_t *local_roles(const json_t *claims)
{
	const char *ptrs[64] = { "/realm_access/roles", "/roles", "/groups" };
	char *owned[60];
	size_t n = 3, no = 0;
	const char *k;
	json_t *v, *roles;

	json_object_foreach((json_t *)json_object_get(claims, "resource_access"), k, v) {
		struct att_buf b;

		if (no == 60)
			break;
		att_buf_init(&b, 1024);
		att_buf_puts(&b, "/resource_access/");
		att_json_pointer_append(&b, k);
		att_buf_puts(&b, "/roles");
		owned[no] = att_buf_steal(&b, NULL);
		if (owned[no])
			ptrs[n++] = owned[no++];
	}
	roles = att_jwt_roles(claims, ptrs, n);
	for (size_t i = 0; i < no; i++)
		free(owned[i]);
	return roles;
}

static void iso(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int a_whoami(struct cli *c, int argc, char **argv)
{
	char *pos[1], *path;
	const char *tok = getenv("ATTESTATION_TOKEN"), *bg = getenv("ATTESTATION_BREAK_GLASS_TOKEN");
	json_t *out = json_object(), *doc = NULL, *claims = NULL, *srv = NULL;
	int ex = 0;
	long st = 0;

	if (parse_opts("auth whoami", argc, argv, NULL, 0, pos, 0) < 0) {
		json_decref(out);
		return EX_USAGE;
	}
	if (tok && *tok) {
		json_object_set_new(out, "source", json_string("ATTESTATION_TOKEN"));
		claims = att_jwt_peek(tok);
	} else if (bg && *bg) {
		json_object_set_new(out, "source", json_string("ATTESTATION_BREAK_GLASS_TOKEN"));
	} else {
		path = cli_cache_path(c, ".json");
		doc = path ? cli_cache_read(path, false) : NULL;
		free(path);
		if (!doc) {
			fprintf(stderr, "Not logged in to %s. Run 'attestation auth login'.\n", c->issuer);
			json_decref(out);
			return EX_AUTH;
		}
		json_object_set_new(out, "source", json_string("cache"));
		json_object_set(out, "issuer", json_object_get(doc, "issuer"));
		json_object_set(out, "client_id", json_object_get(doc, "client_id"));
		json_object_set(out, "method", json_object_get(doc, "method"));
		json_object_set_new(out, "refresh_token", json_boolean(jstr(doc, "refresh_token") != NULL));
		claims = att_jwt_peek(jstr(doc, "access_token"));
	}
	if (claims) {
		char when[32];

		json_object_set(out, "username", json_object_get(claims, "preferred_username"));
		json_object_set(out, "subject", json_object_get(claims, "sub"));
		json_object_set_new(out, "roles", local_roles(claims));
		if (json_is_number(json_object_get(claims, "exp"))) {
			iso((int64_t)json_number_value(json_object_get(claims, "exp")), when);
			json_object_set_new(out, "expires_at", json_string(when));
		}
	}
	/* the service's view (refreshes the token when needed) */
	ex = cli_api(c, "GET", "/api/v1/auth/whoami", NULL, &srv, &st);
	if (ex == 0) {
		json_object_set(out, "service_identity", json_object_get(srv, "identity"));
		json_object_set(out, "service_operator", json_object_get(srv, "operator"));
		json_object_set(out, "service_auth_method", json_object_get(srv, "method"));
	} else {
		json_object_set_new(out, "service_error", json_integer(st));
	}
	if (c->json) {
		out_json(out);
	} else {
		static const char *const keys[] = { "username", "subject", "roles", "expires_at", "issuer", "client_id",
						    "method", "refresh_token", "source", "service_identity",
						    "service_operator" };

		out_kv(out, keys, ATT_ARRAY_SIZE(keys));
	}
	json_decref(srv);
	json_decref(claims);
	json_decref(doc);
	json_decref(out);
	return ex;
}

static int a_token(struct cli *c, int argc, char **argv)
{
	char *pos[1], *h;
	int ex;

	if (parse_opts("auth token", argc, argv, NULL, 0, pos, 0) < 0)
		return EX_USAGE;
	h = cli_auth_header(c, false, &ex);
	if (!h)
		return ex;
	if (strncmp(h, "Authorization: Bearer ", 22) == 0)
		printf("%s\n", h + 22);
	else
		printf("%s\n", strchr(h, ' ') + 1);
	att_wipe(h, strlen(h));
	free(h);
	return 0;
}

/* auth logout --all: one cached file. */
static void logout_one(struct cli *c, const char *name, const char *path, bool login, void *arg)
{
	json_t *doc;

	(void)name;
	if (!login)
		return;
	doc = cli_cache_read(path, false);
	if (doc) {
		cli_auth_revoke(c, doc);
		json_decref(doc);
	}
	if (unlink(path) == 0)
		++*(int *)arg;
}

static int a_logout(struct cli *c, int argc, char **argv)
{
	bool all = false;
	const struct opt o[] = { { "all", 0, false, NULL, &all } };
	char *pos[1], *path;
	json_t *doc;
	int n = 0;

	if (parse_opts("auth logout", argc, argv, o, 1, pos, 0) < 0)
		return EX_USAGE;
	if (all) {
		cli_cache_foreach(c, logout_one, &n);
		printf("Logged out of %d cached login(s).\n", n);
		return 0;
	}
	path = cli_cache_path(c, ".json");
	doc = path ? cli_cache_read(path, false) : NULL;
	if (!doc) {
		printf("Not logged in to %s.\n", c->issuer);
		free(path);
		return 0;
	}
	cli_auth_revoke(c, doc);
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "Error: cannot remove %s: %s\n", path, strerror(errno));
		json_decref(doc);
		free(path);
		return EX_ERR;
	}
	printf("Logged out %s from %s.\n", jstr(doc, "username") ? jstr(doc, "username") : "", c->issuer);
	json_decref(doc);
	free(path);
	return 0;
}

/* auth cache-list: one row per cached login. */
static void list_one(struct cli *c, const char *name, const char *path, bool login, void *arg)
{
	json_t *doc = login ? cli_cache_read(path, false) : NULL;
	char when[32];

	(void)c;
	if (!doc)
		return;
	iso(json_integer_value(json_object_get(doc, "expires_at")), when);
	json_array_append_new(arg, json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:b,s:b}", "file", name, "issuer",
					     jstr(doc, "issuer"), "client_id", jstr(doc, "client_id"), "username",
					     jstr(doc, "username"), "method", jstr(doc, "method"), "expires_at", when,
					     "refresh_token", jstr(doc, "refresh_token") != NULL, "expired",
					     json_integer_value(json_object_get(doc, "expires_at")) <= (int64_t)time(NULL)));
	json_decref(doc);
}

static int a_cache_list(struct cli *c, int argc, char **argv)
{
	static const struct col cols[] = {
		{ "ISSUER", "issuer", 0 }, { "CLIENT", "client_id", 0 }, { "USER", "username", 0 },
		{ "METHOD", "method", 0 }, { "EXPIRES", "expires_at", 0 }, { "REFRESH", "refresh_token", 0 },
		{ "FILE", "file", 0 },
	};
	char *pos[1];
	json_t *rows = json_array();

	if (parse_opts("auth cache-list", argc, argv, NULL, 0, pos, 0) < 0) {
		json_decref(rows);
		return EX_USAGE;
	}
	cli_cache_foreach(c, list_one, rows);
	if (c->json)
		out_json(rows);
	else if (json_array_size(rows) == 0)
		printf("No cached logins in %s.\n", c->cache_dir);
	else
		out_table(rows, cols, ATT_ARRAY_SIZE(cols));
	json_decref(rows);
	return 0;
}

/* auth clear-cache: every cache file goes, logins are counted. */
static void clear_one(struct cli *c, const char *name, const char *path, bool login, void *arg)
{
	(void)c;
	(void)name;
	if (unlink(path) == 0 && login)
		++*(int *)arg;
}

static int a_clear_cache(struct cli *c, int argc, char **argv)
{
	char *pos[1];
	int n = 0;

	if (parse_opts("auth clear-cache", argc, argv, NULL, 0, pos, 0) < 0)
		return EX_USAGE;
	cli_cache_foreach(c, clear_one, &n);
	printf("Removed %d cached login(s) from %s (refresh tokens were not revoked; 'auth logout --all' does that).\n",
	       n, c->cache_dir);
	return 0;
}

int cmd_auth(struct cli *c, int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";
	int ex = group_help(argc, argv, auth_usage);

	if (ex >= 0)
		return ex;
	argc--;
	argv++;
	if (strcmp(sub, "login") == 0)
		return a_login(c, argc, argv);
	if (strcmp(sub, "whoami") == 0)
		return a_whoami(c, argc, argv);
	if (strcmp(sub, "token") == 0)
		return a_token(c, argc, argv);
	if (strcmp(sub, "logout") == 0)
		return a_logout(c, argc, argv);
	if (strcmp(sub, "cache-list") == 0)
		return a_cache_list(c, argc, argv);
	if (strcmp(sub, "clear-cache") == 0)
		return a_clear_cache(c, argc, argv);
	fprintf(stderr, "attestation auth: unknown command '%s'\n\n%s", sub, auth_usage);
	return EX_USAGE;
}
