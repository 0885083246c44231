/* ops.c - service endpoints: /healthz, /readyz, /metrics, and
 * GET /api/v1/auth/whoami. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "obs/metrics.h"
#include "oidc/oidc.h"
#include "routes/routes.h"

static void h_healthz(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)svc;
	(void)rq;
	att_resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)rq;
	if (att_db_ping(svc->db) < 0) {
		att_resp_error(rs, 503, "Database unreachable");
		return;
	}
	{
		const char *w[8];
		int n = att_config_weaknesses(svc->cfg, w, 8);
		json_t *o = json_pack("{s:s,s:b}", "status", "ready", "strict", svc->cfg->strict);
		json_t *arr = json_array();

		for (int i = 0; i < n; i++)
			json_array_append_new(arr, json_string(w[i]));
		json_object_set_new(o, "warnings", arr);
		att_resp_json(rs, 200, o);
	}
}

/* GET /api/v1/auth/whoami: who the service thinks the caller is. */
static void h_whoami(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "identity", rq->actor_name, "method", rq->auth_method,
			      "operator", rq->is_operator);

	if (!o) {
		att_resp_error(rs, 500, "Internal Server Error");
		return;
	}
	if (rq->oidc_roles) {
		json_object_set(o, "roles", rq->oidc_roles);
		json_object_set_new(o, "expires_at", json_integer(rq->oidc_exp));
		json_object_set_new(o, "required_role", json_string(svc->cfg->oidc_operator_role));
	}
	att_resp_json(rs, 200, o);
}

static void oidc_metrics(const struct att_svc *svc, struct att_buf *b)
{
	struct att_oidc_stats st;

	if (!svc->oidc)
		return;
	att_oidc_stats(svc->oidc, &st);
	(void)att_buf_printf(b,
			     "# HELP attestd_oidc_jwks_fetches_total OIDC discovery+JWKS fetches by result.\n"
			     "# TYPE attestd_oidc_jwks_fetches_total counter\n"
			     "attestd_oidc_jwks_fetches_total{result=\"ok\"} %llu\n"
			     "attestd_oidc_jwks_fetches_total{result=\"error\"} %llu\n"
			     "# HELP attestd_oidc_tokens_total OIDC bearer tokens by verdict.\n"
			     "# TYPE attestd_oidc_tokens_total counter\n"
			     "attestd_oidc_tokens_total{result=\"valid\"} %llu\n"
			     "attestd_oidc_tokens_total{result=\"rejected\"} %llu\n"
			     "# HELP attestd_oidc_jwks_keys Signing keys in the cached JWKS.\n"
			     "# TYPE attestd_oidc_jwks_keys gauge\n"
			     "attestd_oidc_jwks_keys %zu\n",
			     (unsigned long long)st.fetch_ok, (unsigned long long)st.fetch_failed,
			     (unsigned long long)st.tokens_ok, (unsigned long long)st.tokens_rejected, st.nkeys);
}

static void h_metrics(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_buf b;
	struct att_dbc *c;
	char *body;
	size_t len;

	(void)rq;
	att_buf_init(&b, 4 * 1024 * 1024);
	(void)att_metrics_render(&b);
	oidc_metrics(svc, &b);
	c = att_db_acquire(svc->db);
	if (c) {
		static const char *st[] = { "pending_approval", "registered", "attested", "locked", "revoked" };
		int64_t counts[5] = { 0 };
		struct att_stmt *s;

		if (att_dbc_query(c, &s, "SELECT status, COUNT(*) FROM machines GROUP BY status", "") == 0) {
			while (att_stmt_next(s) == 1)
				for (int i = 0; i < 5; i++)
					if (strcmp(att_stmt_text(s, 0), st[i]) == 0)
						counts[i] = att_stmt_int(s, 1);
			att_stmt_done(s);
		}
		att_db_release(svc->db, c);
		(void)att_buf_puts(&b, "# HELP attestd_machines Machines by lifecycle status.\n# TYPE attestd_machines gauge\n");
		for (int i = 0; i < 5; i++)
			(void)att_buf_printf(&b, "attestd_machines{status=\"%s\"} %lld\n", st[i], (long long)counts[i]);
	}
	body = att_buf_steal(&b, &len);
	att_resp_text(rs, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static const struct att_route routes[] = {
	{ "GET", "/healthz", AUTH_NONE, h_healthz, 0, 0, NULL },
	{ "GET", "/readyz", AUTH_NONE, h_readyz, 0, 0, NULL },
	{ "GET", "/metrics", AUTH_NONE, h_metrics, 0, 0, NULL },
	{ "GET", "/api/v1/auth/whoami", AUTH_IDENTITY, h_whoami, 0, 0, NULL },
};

const struct att_route_set att_routes_ops = { routes, ATT_ARRAY_SIZE(routes) };
