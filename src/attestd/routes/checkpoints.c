/* checkpoints.c - signed audit checkpoints (docs/audit.md):
 * POST /api/v1/audit/checkpoints (issue one now), GET the list, and
 * GET /api/v1/audit/checkpoints/{id|latest} (the export document). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/checkpoint.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "obs/log.h"
#include "routes/routes.h"

int att_api_checkpoint_signer(const struct att_svc *svc, struct att_checkpoint_signer *sg)
{
	memset(sg, 0, sizeof(*sg));
	if (!svc->ca || att_ca_report_signer(svc->ca, &sg->key, &sg->cert, &sg->ca) < 0)
		return ATT_E_UNAVAILABLE;
	sg->log = svc->cfg->service_url;
	return 0;
}

static void h_cp_create(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_checkpoint_signer sg;
	struct att_checkpoint cp = { 0 };
	struct att_dbc *c;
	char issuer[300], why[200];
	bool issued = false;
	int r;

	if (att_api_checkpoint_signer(svc, &sg) < 0) {
		att_resp_error(rs, 503, "Checkpoint signing key unavailable");
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	snprintf(issuer, sizeof(issuer), "operator:%s", rq->actor.name ? rq->actor.name : "unknown");
	r = att_checkpoint_issue(c, &sg, issuer, false, &cp, &issued, why, sizeof(why));
	att_db_release(svc->db, c);
	if (r == ATT_E_CONFLICT) {
		att_log_error("attestd.audit", "Audit checkpoint refused for %s: %s",
			      rq->actor.name ? rq->actor.name : "unknown", why);
		att_resp_error(rs, 409, "Not signing: %s", why);
		return;
	}
	if (r == ATT_E_CRYPTO) {
		att_log_error("attestd.audit", "checkpoint signing failed");
		att_resp_error(rs, 503, "Checkpoint signing failed");
		return;
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return;
	}
	att_log_info("attestd.audit", "Audit checkpoint %lld issued for %s: %lld entries, head %.16s",
		     (long long)cp.id, rq->actor.name ? rq->actor.name : "unknown", (long long)cp.entries,
		     cp.head_hash);
	att_resp_json(rs, 201, att_checkpoint_json(&cp));
	att_checkpoint_release(&cp);
}

static void h_cp_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_dbc *c;
	struct att_stmt *s;
	int64_t page, per_page;
	json_t *arr;
	int r;

	if (!att_api_paging(rq, rs, &page, &per_page, 50))
		return;
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_dbc_query(c, &s,
			  "SELECT id, issued_at, entries, head_id, head_hash, issuer,"
			  " CASE WHEN timestamp_token IS NULL THEN 0 ELSE 1 END"
			  " FROM audit_checkpoints ORDER BY id DESC LIMIT ? OFFSET ?",
			  "ii", per_page, (page - 1) * per_page);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_api_db_unavailable(rs);
		return;
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(arr, json_pack("{s:I,s:o,s:I,s:I,s:o,s:o,s:b}", "id",
						     (json_int_t)att_stmt_int(s, 0), "issued_at",
						     att_api_str_or_null(att_stmt_text(s, 1)), "entries",
						     (json_int_t)att_stmt_int(s, 2), "head_id",
						     (json_int_t)att_stmt_int(s, 3), "head_hash",
						     att_api_str_or_null(att_stmt_text(s, 4)), "issuer",
						     att_api_str_or_null(att_stmt_text(s, 5)), "timestamped",
						     att_stmt_int(s, 6) != 0));
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, arr);
}

static void h_cp_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *p = rq->params[0];
	struct att_checkpoint cp = { 0 };
	uint64_t id = 0;
	struct att_dbc *c;
	char disp[96];
	int r;

	if (strcmp(p, "latest") != 0 && att_parse_u64(p, strlen(p), 1, INT64_MAX, &id) < 0) {
		att_resp_error(rs, 404, "Checkpoint not found (an id or 'latest')");
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_checkpoint_get(c, (int64_t)id, &cp);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, id ? "Checkpoint %llu not found" : "No checkpoint issued yet", (unsigned long long)id);
		return;
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, att_checkpoint_json(&cp));
	snprintf(disp, sizeof(disp), "attachment; filename=\"audit-checkpoint-%lld.json\"", (long long)cp.id);
	att_resp_header(rs, "Content-Disposition", disp);
	att_checkpoint_release(&cp);
}

static const struct att_route routes[] = {
	{ "POST", "/api/v1/audit/checkpoints", AUTH_OPERATOR, h_cp_create, 0, 0, NULL },
	{ "GET", "/api/v1/audit/checkpoints", AUTH_OPERATOR, h_cp_list, 0, 0, NULL },
	{ "GET", "/api/v1/audit/checkpoints/{id}", AUTH_OPERATOR, h_cp_get, 0, 0, NULL },
};

const struct att_route_set att_routes_checkpoints = { routes, ATT_ARRAY_SIZE(routes) };
