/* audit.c - the audit log: GET /api/v1/audit (paged), /api/v1/audit/verify,
 * and the signed PDF report GET /api/v1/machines/{id}/audit-report. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "audit/report.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "obs/log.h"
#include "routes/routes.h"

#define AUDIT_COLS "id, timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash"

/* One audit_log row selected as AUDIT_COLS, as the API shows it. */
static json_t *audit_row_json(struct att_stmt *s)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)att_stmt_int(s, 0), "timestamp",
			 att_api_str_or_null(att_stmt_text(s, 1)), "operator_cn", att_api_str_or_null(att_stmt_text(s, 2)), "action",
			 att_api_str_or_null(att_stmt_text(s, 3)), "machine_id", att_api_str_or_null(att_stmt_text(s, 4)),
			 "prev_state", att_api_str_or_null(att_stmt_text(s, 5)), "new_state", att_api_str_or_null(att_stmt_text(s, 6)),
			 "detail", att_api_str_or_null(att_stmt_text(s, 7)), "prev_hash", att_api_str_or_null(att_stmt_text(s, 8)),
			 "entry_hash", att_api_str_or_null(att_stmt_text(s, 9)));
}

/* GET /api/v1/audit: newest first, or with after_id oldest first from
 * that id on (a cursor that concurrent appends cannot shift, for
 * walking the whole chain).  Only the filters given reach the SQL, so
 * each one can use its index. */
static void h_audit_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	static const char *const filters[] = { "machine_id", "action", "operator_cn" };
	const char *after = att_req_query(rq, "after_id"), *vals[6], *stable;
	char sql[512], num[3][24];
	size_t len;
	int64_t page, per_page;
	uint64_t after_id = 0;
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *arr;
	int r, n = 0;

	if (!att_api_paging(rq, rs, &page, &per_page, 50))
		return;
	if (after && att_parse_u64(after, strlen(after), 0, INT64_MAX, &after_id) < 0) {
		att_resp_error(rs, 422, "after_id: must be an integer >= 0");
		return;
	}
	len = (size_t)snprintf(sql, sizeof(sql), "SELECT " AUDIT_COLS " FROM audit_log WHERE 1 = 1");
	for (size_t i = 0; i < ATT_ARRAY_SIZE(filters); i++) {
		const char *v = att_req_query(rq, filters[i]);

		if (!v)
			continue;
		if (strlen(v) > (i == 2 ? 256 : 64)) {
			att_resp_error(rs, 422, "%s: longer than %d characters", filters[i], i == 2 ? 256 : 64);
			return;
		}
		vals[n++] = v;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND %s = ?", filters[i]);
	}
	snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)after_id);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)per_page);
	snprintf(num[2], sizeof(num[2]), "%lld", (long long)((page - 1) * per_page));
	if (after) {
		vals[n++] = num[0];
		snprintf(sql + len, sizeof(sql) - len, " AND id > ? ORDER BY id LIMIT ? OFFSET ?");
	} else {
		snprintf(sql + len, sizeof(sql) - len, " ORDER BY id DESC LIMIT ? OFFSET ?");
	}
	vals[n++] = num[1];
	vals[n++] = num[2];
	stable = att_db_intern(sql);
	if (!stable) {
		att_api_db_unavailable(rs);
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_dbc_query_texts(c, &s, stable, n, vals);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_api_db_unavailable(rs);
		return;
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(arr, audit_row_json(s));
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, arr);
}

/* The newest stored checkpoint against the chain: catches a log cut back
 * while the checkpoints table survived (the operator's exported copies
 * catch the rest: `attestation audit verify --checkpoint`). */
static json_t *checkpoint_verdict(const struct att_checkpoint *cp, const struct att_audit_verify *v,
				  const char *hash_at)
{
	struct att_checkpoint_claim cl = { .entries = cp->entries, .head_id = cp->head_id };
	char err[200] = "";
	bool ok;

	memcpy(cl.head_hash, cp->head_hash, 65);
	snprintf(cl.issued_at, sizeof(cl.issued_at), "%s", cp->issued_at);
	ok = att_checkpoint_matches(&cl, v->entries, hash_at[0] ? hash_at : NULL, err, sizeof(err));
	return json_pack("{s:I,s:s,s:I,s:s,s:b,s:o}", "id", (json_int_t)cp->id, "issued_at", cp->issued_at, "entries",
			 (json_int_t)cp->entries, "head_hash", cp->head_hash, "matches", ok, "error",
			 ok ? json_null() : json_string(err));
}

static void h_audit_verify(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_audit_verify v;
	struct att_checkpoint cp = { 0 };
	struct att_dbc *c = att_db_acquire(svc->db);
	char hash_at[65] = "";
	bool have_cp;
	json_t *out;
	int r;

	(void)rq;
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_checkpoint_get(c, 0, &cp);
	have_cp = r == 0;
	if (r == 0 || r == ATT_E_NOTFOUND)
		r = att_audit_verify_probe(c, cp.entries, hash_at, &v);
	att_db_release(svc->db, c);
	if (r < 0) {
		att_checkpoint_release(&cp);
		att_api_db_unavailable(rs);
		return;
	}
	out = json_pack("{s:b,s:I,s:o,s:o,s:o,s:o}", "valid", v.valid, "entries", (json_int_t)v.entries, "root_hash",
			v.root_hash[0] ? json_string(v.root_hash) : json_null(), "first_invalid_id",
			v.first_invalid_id ? json_integer(v.first_invalid_id) : json_null(), "error",
			v.error[0] ? json_string(v.error) : json_null(), "checkpoint",
			have_cp ? checkpoint_verdict(&cp, &v, hash_at) : json_null());
	if (have_cp && v.valid && !json_is_true(json_object_get(json_object_get(out, "checkpoint"), "matches"))) {
		json_object_set_new(out, "valid", json_false());
		json_object_set(out, "error", json_object_get(json_object_get(out, "checkpoint"), "error"));
	}
	att_checkpoint_release(&cp);
	att_resp_json(rs, 200, out);
}

/* GET /api/v1/machines/{id}/audit-report: signed PDF */
#define REPORT_MAX_ENTRIES 20000	/* beyond: a selection (report_select.c) */
#define REPORT_NEWEST_ENTRIES 2000

static void h_audit_report(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_audit_verify v;
	struct att_report_selection sel = { 0 };
	struct att_machine m = { 0 };
	struct att_dbc *c;
	json_t *entries = NULL, *detail = NULL;
	EVP_PKEY *key;
	X509 *cert, *ca;
	char *pdf = NULL, disp[160];
	size_t len = 0;
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	if (!svc->ca || att_ca_report_signer(svc->ca, &key, &cert, &ca) < 0) {
		att_resp_error(rs, 503, "Report signing key unavailable");
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_machine_get(c, rq->params[0], &m);
	if (r == ATT_E_NOTFOUND) {
		att_db_release(svc->db, c);
		att_resp_error(rs, 404, "Machine %s not found", rq->params[0]);
		return;
	}
	if (r == 0)
		r = att_audit_report_select(c, rq->params[0], REPORT_MAX_ENTRIES, REPORT_NEWEST_ENTRIES, &sel);
	entries = sel.entries;
	if (r == 0)
		r = att_audit_verify(c, &v);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(entries);
		json_decref(sel.omitted);
		att_machine_release(&m);
		att_api_db_unavailable(rs);
		return;
	}
	detail = att_machine_detail(&m);
	{
		struct att_report_input in = {
			.machine = detail, .entries = entries, .sel = &sel, .chain = &v,
			.generated_by = rq->actor.name, .service_url = svc->cfg->service_url,
		};

		r = att_audit_report_pdf(&in, key, cert, ca, &pdf, &len);
	}
	json_decref(detail);
	json_decref(entries);
	json_decref(sel.omitted);
	if (r < 0) {
		att_log_error("attestd.api", "audit report for %s failed: %s", rq->params[0], att_strerror(r));
		att_resp_error(rs, 500, "Cannot build the audit report");
		att_machine_release(&m);
		return;
	}
	att_log_info("attestd.api", "Audit report for %s (%zu bytes) made for %s", rq->params[0], len, rq->actor.name);
	att_resp_text(rs, 200, "application/pdf", pdf, len);
	snprintf(disp, sizeof(disp), "attachment; filename=\"machine-audit-%s.pdf\"", M(&m, MACHINE_ID));
	att_machine_release(&m);
	att_resp_header(rs, "Content-Disposition", disp);
	att_resp_header(rs, "Cache-Control", "no-store");
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/machines/{id}/audit-report", AUTH_OPERATOR, h_audit_report, 0, 0, NULL },
	{ "GET", "/api/v1/audit", AUTH_OPERATOR, h_audit_list, 0, 0, NULL },
	{ "GET", "/api/v1/audit/verify", AUTH_OPERATOR, h_audit_verify, 0, 0, NULL },
};

const struct att_route_set att_routes_audit = { routes, ATT_ARRAY_SIZE(routes) };
