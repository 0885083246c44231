/* selfenroll.c - POST /api/v1/machines/enroll: the reference's offline
 * self-enrollment (a machine installed from an offline bundle presents
 * its enrollment certificate), made sound: the nonce is the server's
 * (GET /api/v1/attest/challenge, single use), the certificate must chain
 * to this instance's CA bundle, be valid and not revoked, carry the
 * machine's EK SAN, and the machine must exist and not be locked or
 * revoked (docs/certificates.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "crypto/csr.h"
#include "routes/routes.h"

static const struct att_jfield fields[] = {
	{ "cert_pem", ATT_J_STRING, true, ATT_CSR_MAX_PEM },
	{ "nonce", ATT_J_STRING, true, 256 },
	{ "nonce_signature", ATT_J_STRING, true, 2048 },
	{ "nonce_id", ATT_J_STRING, false, 64 },
};

/* Not revoked or on hold in the issued-certificate records. */
static bool not_revoked(const struct att_svc *svc, const char *serial, struct att_resp *rs)
{
	json_t *rec = NULL;
	char err[256];
	int r = att_cert_get(svc, serial, &rec, err, sizeof(err));
	bool ok = r == ATT_E_NOTFOUND || (r == 0 && strcmp(json_string_value(json_object_get(rec, "status")), "valid") == 0);

	if (r < 0 && r != ATT_E_NOTFOUND)
		att_resp_from_err(rs, r, err);
	else if (!ok)
		att_resp_error(rs, 403, "Enrollment cert rejected: certificate %s is %s", serial,
			       json_string_value(json_object_get(rec, "status")));
	json_decref(rec);
	return ok;
}

static bool check_cert(const struct att_svc *svc, json_t *b, struct att_ca_leaf_info *li, struct att_resp *rs)
{
	const char *pem = att_json_str(b, "cert_pem");
	char err[512];
	int r;

	if (!svc->ca) {
		att_resp_error(rs, 503, "Enrollment CA not loaded");
		return false;
	}
	r = att_ca_verify_leaf(svc->ca, pem, strlen(pem), li, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	if (!li->ek_fp[0]) {
		att_resp_error(rs, 403, "Enrollment cert rejected: it has no urn:itl:ek: SAN binding it to the machine's TPM");
		return false;
	}
	if (!att_api_id_ok(li->cn)) {
		att_resp_error(rs, 403, "Enrollment cert rejected: its CN is not a machine id");
		return false;
	}
	return not_revoked(svc, li->serial, rs);
}

static void h_self_enroll(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, fields, ATT_ARRAY_SIZE(fields));
	const char *nonce, *sig_b64;
	struct att_ca_leaf_info li;
	struct att_machine m = { 0 };
	uint8_t *sig = NULL, raw[32];
	char *server_nonce = NULL, err[512], serial[80], sha[65], token[64] = "";
	size_t sl = 0;
	int r;

	if (!b)
		return;
	nonce = att_json_str(b, "nonce");
	sig_b64 = att_json_str(b, "nonce_signature");
	if (strlen(nonce) < 32) {
		att_resp_error(rs, 422, "nonce must be at least 32 characters");
		goto out;
	}
	if (!att_json_str(b, "nonce_id")) {
		att_resp_error(rs, 422, "nonce_id: the nonce must come from GET /api/v1/attest/challenge (send its nonce_id and sign its nonce)");
		goto out;
	}
	if (att_b64_decode(sig_b64, strlen(sig_b64), &sig, &sl) < 0 || sl == 0) {
		att_resp_error(rs, 422, "nonce_signature: not valid base64");
		goto out;
	}
	if (!check_cert(svc, b, &li, rs))
		goto out;
	r = att_nonce_consume(svc, att_json_str(b, "nonce_id"), &rq->actor, raw, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	server_nonce = att_b64_encode(raw, 32);
	if (!server_nonce || strlen(server_nonce) != strlen(nonce) || !att_ct_equal(server_nonce, strlen(nonce), nonce, strlen(nonce))) {
		att_resp_error(rs, 403, "Nonce signature rejected: nonce is not the challenge of nonce_id");
		goto out;
	}
	r = att_cert_pop_check(att_json_str(b, "cert_pem"), strlen(att_json_str(b, "cert_pem")), nonce, strlen(nonce), sig,
			       sl, serial, sha, err, sizeof(err));
	if (r < 0) {
		att_resp_error(rs, 403, "Nonce signature rejected: %s", err);
		goto out;
	}
	r = att_machine_cert_attest(svc, li.cn, li.ek_fp, li.serial, &rq->actor, &m, token, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	{
		char *url = att_asprintf("%s/api/v1/config/%s", svc->cfg->service_url, token);

		att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s,s:s?,s:s,s:s?,s:s}", "machine_id", M(&m, MACHINE_ID), "status",
						  "attested", "action", "apply-config", "config_url", url, "config_token",
						  token, "role", M(&m, ROLE), "message",
						  "Machine enrolled and attested via certificate — config URL ready"));
		att_resp_header(rs, "Cache-Control", "no-store");
		if (url) {
			att_wipe(url, strlen(url));
			free(url);
		}
	}
	att_machine_release(&m);
out:
	att_wipe(token, sizeof(token));
	free(server_nonce);
	free(sig);
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "POST", "/api/v1/machines/enroll", AUTH_NONE, h_self_enroll, 0, 0, NULL },
};

const struct att_route_set att_routes_selfenroll = { routes, ATT_ARRAY_SIZE(routes) };
