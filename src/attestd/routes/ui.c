/* ui.c - the web dashboard: GET / and /ui/ (index.html), /ui/callback
 * (the OIDC redirect target, index.html again), /ui/config.json (what
 * the browser needs to log in) and the embedded static files
 * (ui/assets.h).  Every page goes out with a strict Content-Security-
 * Policy: scripts and styles from this origin only, no inline code, no
 * eval, Trusted Types enforced, connections only to this origin and the
 * OIDC provider, no framing.  The pages talk to the same REST API as the
 * CLI with the operator's own token (docs/dashboard.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "routes/routes.h"
#include "ui/assets.h"

/* scheme://host[:port] of an absolute URL into out (empty if none). */
static void url_origin(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n;

	out[0] = '\0';
	if (!p || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		return;
	p += 3;
	n = (size_t)(p - url) + strcspn(p, "/?#");
	for (size_t i = 0; i < n; i++)	/* nothing that could end the directive */
		if (url[i] == ';' || url[i] == ',' || url[i] == ' ' || url[i] == '\'' || (unsigned char)url[i] < 0x21)
			return;
	if (n < len)
		snprintf(out, len, "%.*s", (int)n, url);
}

static bool oidc_on(const struct att_svc *svc)
{
	return svc->cfg->oidc_enabled && svc->cfg->oidc_issuer[0];
}

static void page_headers(const struct att_svc *svc, struct att_resp *rs)
{
	char origin[256] = "", csp[768];

	if (oidc_on(svc))
		url_origin(svc->cfg->oidc_issuer, origin, sizeof(origin));
	snprintf(csp, sizeof(csp),
		 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self';"
		 " connect-src 'self'%s%s; form-action 'none'; base-uri 'none'; frame-ancestors 'none';"
		 " require-trusted-types-for 'script'; trusted-types 'none'",
		 origin[0] ? " " : "", origin);
	att_resp_header(rs, "Content-Security-Policy", csp);
	att_resp_header(rs, "X-Frame-Options", "DENY");
	att_resp_header(rs, "Referrer-Policy", "no-referrer");
	att_resp_header(rs, "Cross-Origin-Opener-Policy", "same-origin");
	att_resp_header(rs, "Cross-Origin-Resource-Policy", "same-origin");
	att_resp_header(rs, "Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), payment=()");
}

static const struct att_ui_asset *asset(const char *name)
{
	for (size_t i = 0; i < att_ui_assets_count; i++)
		if (strcmp(att_ui_assets[i].name, name) == 0)
			return &att_ui_assets[i];
	return NULL;
}

static void serve(const struct att_svc *svc, struct att_resp *rs, const struct att_ui_asset *a)
{
	char *body = malloc(a->len ? a->len : 1);

	if (!body) {
		att_resp_error(rs, 503, "out of memory");
		return;
	}
	memcpy(body, a->data, a->len);
	att_resp_text(rs, 200, a->ctype, body, a->len);
	page_headers(svc, rs);
	/* public files: revalidate each time (cheap 304s), never stale after an upgrade */
	att_resp_header(rs, "Cache-Control", "no-cache");
	att_resp_header(rs, "ETag", a->etag);
}

static bool ui_off(const struct att_svc *svc, struct att_resp *rs)
{
	if (svc->cfg->ui_enabled)
		return false;
	att_resp_error(rs, 404, "Not Found — the dashboard is disabled (ITL_UI_ENABLED=false)");
	return true;
}

static void h_root(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)rq;
	if (ui_off(svc, rs))
		return;
	att_resp_text(rs, 302, "text/plain; charset=utf-8", att_strdup(""), 0);
	att_resp_header(rs, "Location", "/ui/");
}

static void h_index(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)rq;
	if (!ui_off(svc, rs))
		serve(svc, rs, asset("index.html"));
}

/* What the browser needs to log in; nothing secret. */
static void config_json(const struct att_svc *svc, struct att_resp *rs)
{
	const struct att_config *cfg = svc->cfg;
	json_t *oidc = json_null();

	if (oidc_on(svc))
		oidc = json_pack("{s:s,s:s,s:s,s:o}", "issuer", cfg->oidc_issuer, "client_id", cfg->ui_oidc_client_id,
				 "scope", cfg->ui_oidc_scope, "resource",
				 cfg->ui_oidc_resource[0] ? json_string(cfg->ui_oidc_resource) : json_null());
	att_resp_json(rs, 200, json_pack("{s:o,s:I,s:s}", "oidc", oidc, "poll_seconds", (json_int_t)cfg->ui_poll_seconds,
					  "version", ATT_VERSION));
	page_headers(svc, rs);
	att_resp_header(rs, "Cache-Control", "no-store");
}

static void h_asset(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *name = rq->params[0];
	const struct att_ui_asset *a;

	if (ui_off(svc, rs))
		return;
	if (strcmp(name, "config.json") == 0) {
		config_json(svc, rs);
		return;
	}
	a = asset(strcmp(name, "callback") == 0 ? "index.html" : name);
	if (!a) {
		att_resp_error(rs, 404, "Not Found");
		return;
	}
	serve(svc, rs, a);
}

static const struct att_route routes[] = {
	{ "GET", "/", AUTH_NONE, h_root, 0, 0, NULL },
	{ "GET", "/ui", AUTH_NONE, h_root, 0, 0, NULL },
	{ "GET", "/ui/", AUTH_NONE, h_index, 0, 0, NULL },
	{ "GET", "/ui/{asset}", AUTH_NONE, h_asset, 0, 0, NULL },
};

const struct att_route_set att_routes_ui = { routes, ATT_ARRAY_SIZE(routes) };
