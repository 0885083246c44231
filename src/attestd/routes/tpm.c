/* tpm.c - AK binding by credential activation:
 * POST /api/v1/machines/{id}/ak-activate and .../ak-activate/complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "routes/routes.h"

static const struct att_jfield ak_activate_fields[] = {
	{ "ek_cert_pem", ATT_J_STRING, true, ATT_EK_MAX_B64 },
	{ "ek_source", ATT_J_STRING, false, 32 },
	{ "ek_fingerprint", ATT_J_STRING, false, 128 },
	{ "ak_public", ATT_J_STRING, false, 4096 },
	{ "ek_public", ATT_J_STRING, false, 4096 },
	/* the reference's and the seeds' fields: accepted, explained */
	{ "ak_pub", ATT_J_STRING, false, 8192 },
	{ "ak_pub_pem", ATT_J_STRING, false, 8192 },
	{ "quote", ATT_J_STRING, false, 16384 },
	{ "quote_sig", ATT_J_STRING, false, 16384 },
	{ "pcr_values", ATT_J_OBJECT, false, 0 },
	{ "nonce_id", ATT_J_STRING, false, 64 },
};

static bool decode_field(json_t *b, const char *name, struct att_resp *rs, uint8_t **ret, size_t *ret_len)
{
	const char *v = att_json_str(b, name);

	*ret = NULL;
	*ret_len = 0;
	if (!v)
		return true;
	if (att_b64_decode(v, strlen(v), ret, ret_len) < 0 || *ret_len == 0) {
		att_resp_error(rs, 422, "%s: not valid base64 of a TPM2B_PUBLIC", name);
		return false;
	}
	return true;
}

static void h_ak_activate(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	const char *pem, *src, *fp;
	struct att_ek ek;
	struct att_ak_challenge ch = { 0 };
	uint8_t *akp = NULL, *ekp = NULL;
	size_t akl = 0, ekl = 0;
	char err[512];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine not found");
		return;
	}
	b = att_req_json(rq, rs, ak_activate_fields, ATT_ARRAY_SIZE(ak_activate_fields));
	if (!b)
		return;
	pem = att_json_str(b, "ek_cert_pem");
	src = att_json_str(b, "ek_source");
	fp = att_json_str(b, "ek_fingerprint");
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert' or 'pub'");
		goto out;
	}
	if (src && strcmp(src, "pub") == 0 && svc->cfg->strict) {
		att_resp_error(rs, 422, "ek_source: 'pub' is refused under ITL_STRICT — a bare public key is not an EK certificate");
		goto out;
	}
	if (att_ek_parse(pem, strlen(pem), src ? src : "cert", (time_t)att_now().sec, &ek, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "ek_cert_pem: Invalid EK material: %s", err);
		goto out;
	}
	if (fp && !att_ek_fingerprint_matches(&ek, fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: EK fingerprint mismatch");
		goto out;
	}
	if (!att_json_str(b, "ak_public")) {
		att_resp_error(rs, 422, "ak_public: required — credential activation needs the AK's TPM2B_PUBLIC (base64 of the file tpm2_createak -u writes); an SPKI PEM (ak_pub, ak_pub_pem) cannot prove that the key lives in this machine's TPM");
		goto out;
	}
	if (!decode_field(b, "ak_public", rs, &akp, &akl) || !decode_field(b, "ek_public", rs, &ekp, &ekl))
		goto out;
	r = att_ak_activation_start(svc, rq->params[0], &ek, akp, akl, ekp, ekl, &rq->actor, &ch, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	{
		char *msg = att_asprintf("Recover the secret with TPM2_ActivateCredential and POST it as base64 to /api/v1/machines/%s/ak-activate/complete before %s",
					 rq->params[0], ch.expires_at);

		att_resp_json(rs, 200,
			      json_pack("{s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "machine_id", rq->params[0], "ak_accepted", 0,
					"activation_id", ch.activation_id, "ak_name", ch.ak_name, "credential_blob",
					ch.credential_blob, "id_object", ch.id_object, "encrypted_secret",
					ch.encrypted_secret, "expires_at", ch.expires_at, "message", msg ? msg : ""));
		att_resp_header(rs, "Cache-Control", "no-store");
		free(msg);
	}
out:
	att_ak_challenge_release(&ch);
	free(akp);
	free(ekp);
	json_decref(b);
}

static const struct att_jfield ak_complete_fields[] = {
	{ "activation_id", ATT_J_STRING, true, 64 },
	{ "secret", ATT_J_STRING, true, 256 },
};

static void h_ak_activate_complete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_machine m = { 0 };
	uint8_t *secret = NULL;
	size_t n = 0;
	char err[512];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine not found");
		return;
	}
	b = att_req_json(rq, rs, ak_complete_fields, ATT_ARRAY_SIZE(ak_complete_fields));
	if (!b)
		return;
	if (strlen(att_json_str(b, "activation_id")) != 32 ||
	    !att_is_hex(att_json_str(b, "activation_id"), 32)) {
		att_resp_error(rs, 422, "activation_id: must be the 32 hex characters ak-activate returned");
		goto out;
	}
	if (att_b64_decode(att_json_str(b, "secret"), strlen(att_json_str(b, "secret")), &secret, &n) < 0 || n == 0) {
		att_resp_error(rs, 422, "secret: not valid base64");
		goto out;
	}
	r = att_ak_activation_complete(svc, rq->params[0], att_json_str(b, "activation_id"), secret, n, &rq->actor, &m,
				       err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	att_resp_json(rs, 200,
		      json_pack("{s:s,s:b,s:s,s:s,s:s}", "machine_id", M(&m, MACHINE_ID), "ak_accepted", 1, "ak_name",
				M(&m, AK_NAME), "ak_bound_at", M(&m, AK_BOUND_AT), "message",
				"AK bound to the machine by credential activation"));
	att_machine_release(&m);
out:
	if (secret) {
		att_wipe(secret, n);
		free(secret);
	}
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "POST", "/api/v1/machines/{id}/ak-activate", AUTH_NONE, h_ak_activate, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/ak-activate/complete", AUTH_NONE, h_ak_activate_complete, 0, 0, NULL },
};

const struct att_route_set att_routes_tpm = { routes, ATT_ARRAY_SIZE(routes) };
