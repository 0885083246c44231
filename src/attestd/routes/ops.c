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
#include "ext/ext.h"
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
	/* the label a dual-control vote of this caller is stored under
	 * (GET /machines/{id}/approvals operator_cn): an OIDC identity carries
	 * its issuer and subject, "alice (oidc:<iss>#<sub>)" */
	if (rq->actor.key && *rq->actor.key) {
		char *v = att_asprintf("%s (%s)", rq->actor_name, rq->actor.key);

		json_object_set_new(o, "voter", v ? json_string(v) : json_null());
		free(v);
	} else {
		json_object_set_new(o, "voter", json_string(rq->actor_name));
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

/* Seconds since the oldest value of a timestamp column (0 when none). */
static int64_t oldest_age(struct att_dbc *c, const char *sql)
{
	struct att_stmt *s;
	struct att_time t, now = att_now();
	int64_t age = 0;

	if (att_dbc_query(c, &s, sql, "") < 0)
		return 0;
	if (att_stmt_next(s) == 1 && att_stmt_text(s, 0) && att_time_parse(att_stmt_text(s, 0), &t) == 0 &&
	    now.sec > t.sec)
		age = now.sec - t.sec;
	att_stmt_done(s);
	return age;
}

/* What the alerting rules need (packaging/prometheus/): database up,
 * approvals waiting, attested machines gone silent, undelivered events. */
static void ops_metrics(const struct att_svc *svc, struct att_dbc *c, bool up, struct att_buf *b)
{
	struct att_time cut = att_now();
	char cutoff[32];
	int64_t silent = 0, undelivered = 0;
	bool events;
	struct att_stmt *s;

	cut.sec -= svc->cfg->contact_silent_seconds;
	att_time_iso(cut, cutoff);
	if (up && att_dbc_query(c, &s,
				"SELECT COUNT(*) FROM machines WHERE status = 'attested' AND"
				" COALESCE(last_contact_at, attested_at, registered_at) < ?",
				"s", cutoff) == 0) {
		if (att_stmt_next(s) == 1)
			silent = att_stmt_int(s, 0);
		att_stmt_done(s);
	}
	/* events wait in the outbox only for extension hooks; without any
	 * nothing delivers them and nothing is missed */
	events = up && att_ext_have_hooks();
	if (events)
		(void)att_dbc_query_int(c, "SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL", &undelivered);
	(void)att_buf_printf(
		b,
		"# HELP attestd_build_info The running attestd's version.\n# TYPE attestd_build_info gauge\n"
		"attestd_build_info{version=\"%s\"} 1\n"
		"# HELP attestd_db_up 1 when the database answered at this scrape.\n# TYPE attestd_db_up gauge\n"
		"attestd_db_up %d\n"
		"# HELP attestd_machines_pending_oldest_seconds Age of the oldest machine waiting for approval (0: none).\n"
		"# TYPE attestd_machines_pending_oldest_seconds gauge\nattestd_machines_pending_oldest_seconds %lld\n"
		"# HELP attestd_machines_silent Attested machines without contact for ITL_CONTACT_SILENT_SECONDS.\n"
		"# TYPE attestd_machines_silent gauge\nattestd_machines_silent %lld\n"
		"# HELP attestd_events_undelivered Lifecycle events not yet delivered to extension hooks (0: no hooks).\n"
		"# TYPE attestd_events_undelivered gauge\nattestd_events_undelivered %lld\n"
		"# HELP attestd_events_oldest_undelivered_seconds Age of the oldest undelivered event (0: none).\n"
		"# TYPE attestd_events_oldest_undelivered_seconds gauge\nattestd_events_oldest_undelivered_seconds %lld\n",
		ATT_VERSION, up ? 1 : 0,
		(long long)(up ? oldest_age(c, "SELECT MIN(registered_at) FROM machines WHERE status = 'pending_approval'") : 0),
		(long long)silent, (long long)undelivered,
		(long long)(events ? oldest_age(c, "SELECT MIN(created_at) FROM outbox_events WHERE delivered_at IS NULL") : 0));
}

static void h_metrics(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_buf b;
	struct att_dbc *c;
	char *body;
	size_t len;
	bool up;

	(void)rq;
	att_buf_init(&b, 4 * 1024 * 1024);
	(void)att_metrics_render(&b);
	oidc_metrics(svc, &b);
	up = att_db_ping(svc->db) == 0;	/* before borrowing a connection: the pool may hold one */
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
		(void)att_buf_puts(&b, "# HELP attestd_machines Machines by lifecycle status.\n# TYPE attestd_machines gauge\n");
		for (int i = 0; i < 5; i++)
			(void)att_buf_printf(&b, "attestd_machines{status=\"%s\"} %lld\n", st[i], (long long)counts[i]);
		ops_metrics(svc, c, up, &b);
		att_db_release(svc->db, c);
	} else {
		ops_metrics(svc, NULL, false, &b);
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
