/* machines.c - the operator's machine resource: list, get, approve
 * (dual control), approvals, lock, unlock, revoke, import, offline bundle. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "fleet/fleet.h"
#include "machine/airgap.h"
#include "routes/routes.h"
#include "talos/machineconfig.h"

/* GET /api/v1/machines: filters, sort and the total (X-Total-Count) from
 * the fleet module; the body stays the reference's plain array. */
static void h_machines_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_fleet_filter f;
	struct att_fleet_sort so;
	int64_t page, per_page, total = 0;
	struct att_dbc *c;
	json_t *arr = NULL;
	char tot[32];
	int r;

	if (!att_api_fleet_query(rq, rs, &f, &so))
		return;
	if (!att_api_paging(rq, rs, &page, &per_page, 1000000000))
		return;
	if (!att_req_query(rq, "per_page") && att_req_query(rq, "page"))
		per_page = 50;
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_fleet_list(c, &f, &so, page, per_page, &arr, &total);
	att_db_release(svc->db, c);
	if (r < 0) {
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, arr);
	snprintf(tot, sizeof(tot), "%lld", (long long)total);
	att_resp_header(rs, "X-Total-Count", tot);
}

static void h_machine_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *id = rq->params[0];
	struct att_machine m = { 0 };
	struct att_dbc *c;
	int r;

	if (!att_api_id_ok(id)) {
		att_resp_error(rs, 404, "Machine %.64s not found", id);
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_machine_get(c, id, &m);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, "Machine %s not found", id);
		return;
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, att_machine_detail(&m));
	att_machine_release(&m);
}

static const struct att_jfield approve_fields[] = {
	{ "role", ATT_J_STRING, true, 64 },
	{ "hostname", ATT_J_STRING, false, 253 },
	{ "assigned_ip", ATT_J_STRING, false, 64 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_approve(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_approval a = { 0 };
	struct att_machine m = { 0 };
	char cidr[64], err[512], host[256];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, approve_fields, ATT_ARRAY_SIZE(approve_fields));
	if (!b)
		return;
	a.role = att_json_str(b, "role");
	a.hostname = att_json_str(b, "hostname");
	a.reason = att_json_str(b, "reason");
	if (!att_role_valid(a.role)) {
		att_resp_error(rs, 422, "role: must be one of controlplane, worker-infra, worker-app");
		goto out;
	}
	if (a.hostname && !att_valid_hostname(a.hostname)) {
		att_resp_error(rs, 422, "hostname: must be an RFC 1123 host name (letters, digits, '-', dot-separated labels of at most 63)");
		goto out;
	}
	if (a.hostname) {	/* stored in lowercase: DNS names are case-insensitive */
		size_t i;

		for (i = 0; a.hostname[i] && i < sizeof(host) - 1; i++)
			host[i] = (char)tolower((unsigned char)a.hostname[i]);
		host[i] = '\0';
		a.hostname = host;
	}
	if (att_json_str(b, "assigned_ip")) {
		if (!att_normalize_cidr(att_json_str(b, "assigned_ip"), cidr)) {
			att_resp_error(rs, 422, "assigned_ip: expected an IPv4 or IPv6 address with optional /prefix, e.g. 10.0.1.13/24");
			goto out;
		}
		a.assigned_ip = cidr;
	}
	{
		struct att_vote_status vote;

		r = att_machine_approve(svc, rq->params[0], &a, &rq->actor, &m, &vote, err, sizeof(err));
		if (r == 0 && vote.pending) {
			char *msg = att_asprintf("Approval vote recorded for operator '%s'. %d more operator(s) must also approve before the machine is registered.",
						 rq->actor.name, vote.required - vote.received);

			att_resp_json(rs, 202, json_pack("{s:s,s:s,s:s,s:i,s:i,s:s}", "machine_id", M(&m, MACHINE_ID),
							  "status", "pending_second_approval", "message", msg ? msg : "",
							  "approvals_received", vote.received, "approvals_required",
							  vote.required, "expires_at", vote.expires_at));
			free(msg);
			att_machine_release(&m);
		} else {
			att_api_reply_machine(rs, r, &m, err);
		}
	}
out:
	json_decref(b);
}

static void h_approvals(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr = NULL;
	char err[256];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	r = att_machine_votes(svc, rq->params[0], &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, arr);
}

static const struct att_jfield reason_fields[] = {
	{ "reason", ATT_J_STRING, false, 1024 },
};

static const struct att_jfield revoke_fields[] = {
	{ "wipe", ATT_J_BOOL, false, 0 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_lock(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, reason_fields, ATT_ARRAY_SIZE(reason_fields));
	if (!b)
		return;
	r = att_machine_lock(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, &m, err, sizeof(err));
	att_api_reply_machine(rs, r, &m, err);
	json_decref(b);
}

static void h_unlock(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, reason_fields, ATT_ARRAY_SIZE(reason_fields));
	if (!b)
		return;
	r = att_machine_unlock(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, &m, err, sizeof(err));
	att_api_reply_machine(rs, r, &m, err);
	json_decref(b);
}

static void h_revoke(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, revoke_fields, ATT_ARRAY_SIZE(revoke_fields));
	if (!b)
		return;
	r = att_machine_revoke(svc, rq->params[0], att_json_bool(b, "wipe", false), att_json_str(b, "reason"),
			       &rq->actor, &m, err, sizeof(err));
	att_api_reply_machine(rs, r, &m, err);
	json_decref(b);
}

static const struct att_jfield import_fields[] = {
	{ "ek_fingerprint", ATT_J_STRING, true, 128 },
	{ "ek_cert_pem", ATT_J_STRING, false, ATT_EK_MAX_B64 },
	{ "ek_source", ATT_J_STRING, false, 32 },
	{ "machine_id", ATT_J_STRING, false, 64 },
	{ "role", ATT_J_STRING, false, 64 },
	{ "hw_uuid", ATT_J_TEXT, false, 256 },
	{ "hw_mac", ATT_J_STRING, false, 64 },
	{ "hw_serial", ATT_J_TEXT, false, 256 },
	{ "hw_product", ATT_J_TEXT, false, 256 },
	{ "cluster_id", ATT_J_STRING, false, 64 },
	{ "install_mode", ATT_J_STRING, false, 64 },
	{ "installed_at", ATT_J_STRING, false, 64 },
};

/* A receipt's fields (the JSON body, or an air-gap bundle's machine.json
 * mapped to the same names) checked into rc; false with rs answered. */
bool att_api_receipt(const struct att_svc *svc, json_t *b, struct att_receipt *rc, char mac[32],
		     struct att_resp *rs)
{
	const char *src = att_json_str(b, "ek_source");

	rc->ek_fingerprint = att_json_str(b, "ek_fingerprint");
	rc->ek_b64 = att_json_str(b, "ek_cert_pem");
	rc->machine_id = att_json_str(b, "machine_id");
	rc->role = att_json_str(b, "role");
	rc->hw_uuid = att_json_str(b, "hw_uuid");
	rc->hw_serial = att_json_str(b, "hw_serial");
	rc->hw_product = att_json_str(b, "hw_product");
	rc->cluster_id = att_json_str(b, "cluster_id");
	rc->install_mode = att_json_str(b, "install_mode");
	rc->installed_at = att_json_str(b, "installed_at");
	if (!att_valid_fingerprint(rc->ek_fingerprint)) {
		att_resp_error(rs, 422, "ek_fingerprint: must be a 64-char (SHA-256) or 96-char (SHA-384) hex digest");
		return false;
	}
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0 && strcmp(src, "offline-import") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert', 'pub' or 'offline-import'");
		return false;
	}
	if (src && strcmp(src, "pub") == 0 && svc->cfg->strict) {
		att_resp_error(rs, 422, "ek_source: 'pub' is refused under ITL_STRICT — a bare public key is not an EK certificate");
		return false;
	}
	if (rc->ek_b64 && src && strcmp(src, "offline-import") == 0)
		src = "cert";
	rc->ek_source = src;
	if (rc->machine_id && !att_api_id_ok(rc->machine_id)) {
		att_resp_error(rs, 422, "machine_id: 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit");
		return false;
	}
	if (rc->role && !att_role_valid(rc->role)) {
		att_resp_error(rs, 422, "role: must be one of controlplane, worker-infra, worker-app");
		return false;
	}
	if (rc->cluster_id && !att_valid_cluster_id(rc->cluster_id)) {
		att_resp_error(rs, 422, "cluster_id: must match ^[a-z0-9][a-z0-9-]{0,62}$");
		return false;
	}
	if (att_json_str(b, "hw_mac")) {
		if (!att_normalize_mac(att_json_str(b, "hw_mac"), mac)) {
			att_resp_error(rs, 422, "hw_mac: expected a MAC address like 52:54:00:12:34:56");
			return false;
		}
		rc->hw_mac = mac;
	}
	return true;
}

static void h_import_receipt(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_receipt rc = { 0 };
	struct att_machine m = { 0 };
	char err[512], mac[32];
	int r;

	if (rq->body.len > (size_t)svc->cfg->max_body_bytes) {
		att_resp_error(rs, 413, "Request body too large");
		return;
	}
	b = att_req_json(rq, rs, import_fields, ATT_ARRAY_SIZE(import_fields));
	if (!b)
		return;
	if (!att_api_receipt(svc, b, &rc, mac, rs))
		goto out;
	r = att_machine_import(svc, &rc, &rq->actor, &m, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s,s:n,s:s}", "machine_id", M(&m, MACHINE_ID), "role",
					  M(&m, ROLE), "status", M(&m, STATUS), "config_url", "message",
					  strcmp(M(&m, STATUS), "registered") == 0
						  ? "Machine imported from offline receipt — ready for attestation"
						  : "Machine imported from offline receipt — its role is under dual control: awaiting approval by a quorum of operators"));
	att_machine_release(&m);
out:
	json_decref(b);
}

/* POST /api/v1/machines/import: a TPM receipt (application/json) or a
 * signed air-gap bundle (gzip'd ustar; routes/airgap.c). */
static bool ctype_is(const char *ct, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

static void h_import(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *ct = att_req_header(rq, "Content-Type");
	const uint8_t *body = (const uint8_t *)(rq->body.p ? rq->body.p : "");
	size_t n;

	while (ct && *ct == ' ')
		ct++;
	if (!ct)
		ct = "";
	n = strcspn(ct, "; ");
	if (att_is_gzip(body, rq->body.len) || ctype_is(ct, n, "application/gzip") ||
	    ctype_is(ct, n, "application/x-gzip") || ctype_is(ct, n, "application/octet-stream")) {
		att_api_airgap_import(svc, rq, rs);
		return;
	}
	if (rq->body.len > 0 && !ctype_is(ct, n, "application/json") &&
	    !(n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0)) {
		att_resp_error(rs, 415, "Unsupported Media Type — send a TPM receipt as application/json or a signed air-gap bundle as application/gzip");
		return;
	}
	h_import_receipt(svc, rq, rs);
}

/* GET /api/v1/machines/{id}/offline-bundle */
static void h_offline_bundle(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *key;
	json_t *o = NULL;
	char err[512] = "";
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	key = att_req_query(rq, "include_key");
	if (key && strcmp(key, "true") != 0 && strcmp(key, "false") != 0) {
		att_resp_error(rs, 422, "include_key: must be true or false");
		return;
	}
	r = att_machine_offline_bundle(svc, rq->params[0],
				       key && strcmp(key, "true") == 0 ? ATT_BUNDLE_WITH_KEY : ATT_BUNDLE_NO_KEY,
				       &rq->actor, &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_api_boot_urls(svc, o);
	att_resp_json(rs, 200, o);
	att_resp_header(rs, "Cache-Control", "no-store");
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/machines", AUTH_OPERATOR, h_machines_list, 0, 0, NULL },
	{ "POST", "/api/v1/machines/import", AUTH_OPERATOR, h_import, ATT_AIRGAP_MAX_COMPRESSED, ATT_ROUTE_ANY_BODY, NULL },
	{ "GET", "/api/v1/machines/{id}", AUTH_OPERATOR, h_machine_get, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/approve", AUTH_OPERATOR, h_approve, 0, 0, NULL },
	{ "GET", "/api/v1/machines/{id}/approvals", AUTH_OPERATOR, h_approvals, 0, 0, NULL },
	{ "GET", "/api/v1/machines/{id}/offline-bundle", AUTH_OPERATOR, h_offline_bundle, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/lock", AUTH_OPERATOR, h_lock, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/unlock", AUTH_OPERATOR, h_unlock, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/revoke", AUTH_OPERATOR, h_revoke, 0, 0, NULL },
};

const struct att_route_set att_routes_machines = { routes, ATT_ARRAY_SIZE(routes) };
