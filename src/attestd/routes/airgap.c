/* airgap.c - signed air-gap bundles (docs/airgap.md):
 *   GET  /api/v1/machines/{id}/bundle   the archive (operator; audited as
 *                                        airgap_export: it carries the
 *                                        enrollment private key)
 *   POST /api/v1/machines/import         with a gzip body (machines.c
 *                                        dispatches here): verified against
 *                                        ITL_TRUSTED_EXPORTERS, then the
 *                                        machine is recreated in one
 *                                        transaction (airgap_import). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "machine/airgap.h"
#include "obs/log.h"
#include "routes/routes.h"

#define LOGM "attestd.machines"

static void wipe_json_str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	if (v)
		att_wipe((char *)(uintptr_t)v, strlen(v));
}

/* GET /api/v1/machines/{id}/bundle */
static void h_bundle(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o = NULL;
	uint8_t *tgz = NULL;
	size_t len = 0;
	char err[512] = "", serial[80] = "", hdr[200];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	if (!svc->ca) {
		att_resp_error(rs, 503, "Enrollment CA not loaded");
		return;
	}
	r = att_machine_offline_bundle(svc, rq->params[0], ATT_BUNDLE_ARCHIVE, &rq->actor, &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_api_boot_urls(svc, o);
	r = att_airgap_pack(svc, o, &tgz, &len, serial, err, sizeof(err));
	wipe_json_str(o, "enrollment_key_pem");
	wipe_json_str(o, "machineconfig");
	json_decref(o);
	if (r < 0) {
		att_log_error(LOGM, "air-gap bundle for %s not built: %s", rq->params[0], err);
		att_resp_error(rs, 503, "Cannot build the air-gap bundle: %s", err[0] ? err : att_strerror(r));
		return;
	}
	att_log_info(LOGM, "Air-gap bundle exported: id=%s exporter serial=%s by=%s", rq->params[0], serial,
		     rq->actor.name);
	att_resp_text(rs, 200, "application/gzip", (char *)tgz, len);
	snprintf(hdr, sizeof(hdr), "attachment; filename=\"airgap-%s.tar.gz\"", rq->params[0]);
	att_resp_header(rs, "Content-Disposition", hdr);
	att_resp_header(rs, "Cache-Control", "no-store");
}

/* machine.json's fingerprint as a receipt carries it: the canonical one,
 * else the legacy or agent one. */
static json_t *receipt_of(json_t *mj)
{
	const char *fp = json_string_value(json_object_get(mj, "ek_fingerprint"));
	static const char *const keep[] = { "machine_id", "role", "ek_source", "hw_uuid", "hw_mac", "hw_serial",
					    "hw_product", "cluster_id" };
	json_t *rc = json_object();

	if (!fp)
		fp = json_string_value(json_object_get(mj, "ek_fingerprint_legacy"));
	if (!fp)
		fp = json_string_value(json_object_get(mj, "ek_fingerprint_agent"));
	if (!rc)
		return NULL;
	if (fp)
		json_object_set_new(rc, "ek_fingerprint", json_string(fp));
	if (json_is_string(json_object_get(mj, "ek_cert_b64")))
		json_object_set(rc, "ek_cert_pem", json_object_get(mj, "ek_cert_b64"));
	for (size_t i = 0; i < ATT_ARRAY_SIZE(keep); i++)
		if (json_is_string(json_object_get(mj, keep[i])))
			json_object_set(rc, keep[i], json_object_get(mj, keep[i]));
	return rc;
}

static const char *or_q(const char *s)
{
	return s ? s : "?";
}

static int status_of(int r)
{
	switch (r) {
	case ATT_E_LIMIT: return 413;
	case ATT_E_FORBIDDEN: return 403;
	case ATT_E_UNAVAILABLE: return 503;
	case ATT_E_NOMEM: return 503;
	default: return 422;
	}
}

/* machine.json's hostname and assigned_ip checked into rc. */
static bool placement(json_t *mj, struct att_receipt *rc, char host[256], char cidr[64], struct att_resp *rs)
{
	const char *h = json_string_value(json_object_get(mj, "hostname"));
	const char *ip = json_string_value(json_object_get(mj, "assigned_ip"));

	if (!rc->machine_id || !rc->role) {
		att_resp_error(rs, 422, "machine.json: machine_id and role are required");
		return false;
	}
	if (h && (strlen(h) > 253 || !att_valid_hostname(h))) {
		att_resp_error(rs, 422, "machine.json: hostname is not an RFC 1123 host name");
		return false;
	}
	if (h) {
		snprintf(host, 256, "%s", h);
		rc->hostname = host;
	}
	if (ip && !att_normalize_cidr(ip, cidr)) {
		att_resp_error(rs, 422, "machine.json: assigned_ip is not an address with optional /prefix");
		return false;
	}
	if (ip)
		rc->assigned_ip = cidr;
	return true;
}

void att_api_airgap_import(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_airgap a;
	struct att_receipt rc = { 0 };
	struct att_machine m = { 0 };
	json_t *receipt = NULL, *exp;
	char err[512] = "", mac[32], host[256], cidr[64], *detail = NULL;
	int r;

	r = att_airgap_open(svc->cfg->trusted_exporters, (const uint8_t *)(rq->body.p ? rq->body.p : ""), rq->body.len,
			    &a, err, sizeof(err));
	if (r < 0) {
		att_log_warning(LOGM, "Air-gap bundle rejected: %s (by=%s)", err, rq->actor.name);
		att_resp_error(rs, status_of(r), "Air-gap bundle rejected: %s", err);
		goto out;
	}
	receipt = receipt_of(a.machine);
	if (!receipt) {
		att_resp_error(rs, 503, "out of memory");
		goto out;
	}
	if (!att_api_receipt(svc, receipt, &rc, mac, rs) || !placement(a.machine, &rc, host, cidr, rs))
		goto out;
	exp = json_object_get(a.manifest, "exporter");
	detail = att_asprintf("imported from a signed air-gap bundle exported by %.200s at %.40s; signer %s; "
			      "bundled enrollment cert serial=%.80s",
			      or_q(json_string_value(json_object_get(exp, "service_url"))),
			      or_q(json_string_value(json_object_get(a.manifest, "exported_at"))), a.signer,
			      or_q(json_string_value(json_object_get(a.machine, "enrollment_cert_serial"))));
	if (!detail) {
		att_resp_error(rs, 503, "out of memory");
		goto out;
	}
	rc.install_mode = "airgap";
	rc.airgap_detail = detail;
	r = att_machine_import(svc, &rc, &rq->actor, &m, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s,s:s?,s:s}", "machine_id", M(&m, MACHINE_ID),
					  "role", M(&m, ROLE), "status", M(&m, STATUS), "hostname", M(&m, HOSTNAME),
					  "assigned_ip", M(&m, ASSIGNED_IP), "exporter", a.signer, "exported_from",
					  json_string_value(json_object_get(exp, "service_url")), "message",
					  strcmp(M(&m, STATUS), "registered") == 0
						  ? "Machine imported from a signed air-gap bundle — ready for attestation"
						  : "Machine imported from a signed air-gap bundle — its role is under dual control: awaiting approval by a quorum of operators"));
	att_machine_release(&m);
out:
	free(detail);
	json_decref(receipt);
	att_airgap_release(&a);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/machines/{id}/bundle", AUTH_OPERATOR, h_bundle, 0, 0, NULL },
};

const struct att_route_set att_routes_airgap = { routes, ATT_ARRAY_SIZE(routes) };
