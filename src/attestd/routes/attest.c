/* attest.c - the attest poll: GET /api/v1/attest/challenge (DB nonces)
 * and POST /api/v1/attest (EK identity, optional TPM quote over a
 * nonce verified against the machine's bound AK). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/text.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "fleet/fleet.h"
#include "obs/log.h"
#include "routes/routes.h"
#include "tpm/tpm.h"

static const struct att_jfield attest_fields[] = {
	ATT_API_NODE_FIELDS,
	{ "nonce_id", ATT_J_STRING, false, 64 },
	{ "nonce_signature", ATT_J_STRING, false, 8192 },
	{ "pcr_quote", ATT_J_STRING, false, 16384 },
	{ "pcr_signature", ATT_J_STRING, false, 16384 },
	{ "pcr_nonce", ATT_J_STRING, false, 256 },
	{ "pcr_values", ATT_J_OBJECT, false, 0 },
};

static void h_challenge(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	char id[65], nonce[48], err[256], exp[40];
	int64_t expires;
	int r;

	(void)rq;
	r = att_nonce_issue(svc, id, nonce, &expires, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_time_iso_utc((struct att_time){ expires, 0 }, exp);
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s}", "nonce_id", id, "nonce", nonce, "expires_at", exp));
	att_resp_header(rs, "Cache-Control", "no-store");
}

void att_api_quote_release(struct att_api_quote *q)
{
	free(q->attest);
	free(q->sig);
	q->attest = q->sig = NULL;
}

bool att_api_quote_parse(json_t *b, struct att_resp *rs, struct att_api_quote *q)
{
	const char *quote = att_json_str(b, "pcr_quote"), *sig = att_json_str(b, "pcr_signature");
	json_t *vals = json_object_get(b, "pcr_values");
	struct att_tpm_quote probe;
	const char *key;
	json_t *v;
	char err[256];

	if (!(quote && *quote && sig && *sig)) {
		att_resp_error(rs, 422, "pcr_quote: pcr_quote and pcr_signature must be sent together");
		return false;
	}
	if (!att_json_str(b, "nonce_id")) {
		att_resp_error(rs, 422, "nonce_id: a quote must answer a challenge — include nonce_id from GET /api/v1/attest/challenge");
		return false;
	}
	if (att_b64_decode(quote, strlen(quote), &q->attest, &q->attest_len) < 0) {
		att_resp_error(rs, 422, "pcr_quote: not valid base64");
		return false;
	}
	if (att_b64_decode(sig, strlen(sig), &q->sig, &q->sig_len) < 0) {
		att_resp_error(rs, 422, "pcr_signature: not valid base64");
		return false;
	}
	if (att_tpm_quote_parse(q->attest, q->attest_len, &probe, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
		return false;
	}
	if (!vals || json_is_null(vals)) {
		att_resp_error(rs, 422, "pcr_values: required with pcr_quote — the PCR values the quote covers, e.g. {\"sha256:7\": \"<hex>\"}");
		return false;
	}
	json_object_foreach(vals, key, v) {
		if (!json_is_string(v)) {
			att_resp_error(rs, 422, "pcr_values: '%.*s' must be a hex string", (int)att_utf8_cut(key, 32), key);
			return false;
		}
		if (att_tpm_pcrs_add(&q->pcrs, key, json_string_value(v), err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "%s", err);
			return false;
		}
	}
	return true;
}

/* Verify the quote against the AK bound to the machine of this EK. */
static bool verify_quote(const struct att_svc *svc, const struct att_ek *ek, const struct att_api_quote *q,
			 const uint8_t nonce[32], struct att_resp *rs, struct att_quote_evidence *ev,
			 char ak_name[2 * ATT_TPM_MAX_NAME + 1])
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_machine m = { 0 };
	struct att_tpm_pub ak = { 0 };
	struct att_tpm_quote tq;
	char err[512];
	int r = ATT_E_NOTFOUND;

	if (!c) {
		att_api_db_unavailable(rs);
		return false;
	}
	r = att_machine_find_by_ek(c, ek, &m);
	att_db_release(svc->db, c);
	if (r < 0 && r != ATT_E_NOTFOUND) {
		att_api_db_unavailable(rs);
		return false;
	}
	if (r == ATT_E_NOTFOUND || !M(&m, AK_PUBLIC)) {
		att_machine_release(&m);
		att_resp_error(rs, 422, "pcr_quote: PCR quote submitted but no AK registered for this machine — call POST /api/v1/machines/{id}/ak-activate first");
		return false;
	}
	r = att_machine_ak_pub(&m, &ak, err, sizeof(err));
	if (r == 0)
		r = att_tpm_quote_check(&ak, q->attest, q->attest_len, q->sig, q->sig_len, nonce, 32, &q->pcrs, &tq,
					err, sizeof(err));
	if (r < 0) {
		att_log_warning("attestd.attestation", "Quote from machine %s rejected: %s", M(&m, MACHINE_ID), err);
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
	} else {
		snprintf(ak_name, 2 * ATT_TPM_MAX_NAME + 1, "%s", M(&m, AK_NAME));
		ev->ak_name = ak_name;
		ev->reset_count = tq.reset_count;
		ev->restart_count = tq.restart_count;
		ev->pcrs = &q->pcrs;
	}
	att_tpm_pub_release(&ak);
	att_machine_release(&m);
	return r == 0;
}

static void h_attest(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, attest_fields, ATT_ARRAY_SIZE(attest_fields));
	const char *nonce_id, *quote, *sig;
	struct att_node_result res;
	struct att_api_node nr = { 0 };
	struct att_api_quote *qr = NULL;
	struct att_quote_evidence ev = { 0 };
	uint8_t nonce[32];
	char err[512], ak_name[2 * ATT_TPM_MAX_NAME + 1];
	int r;

	if (!b)
		return;
	nonce_id = att_json_str(b, "nonce_id");
	quote = att_json_str(b, "pcr_quote");
	sig = att_json_str(b, "pcr_signature");
	/* cheap structural checks first, so a bad request never burns a nonce */
	if (!att_api_node_parse(svc, b, rs, "attestation", &nr))
		goto out;
	if (!nonce_id && svc->cfg->require_nonce) {
		att_resp_error(rs, 422, "nonce_id: ITL_REQUIRE_NONCE is enabled — include nonce_id from GET /api/v1/attest/challenge");
		goto out;
	}
	/* a nonce proves freshness only when a quote by the bound AK signs it:
	 * ITL_REQUIRE_NONCE without a quote would be a ritual, not a proof */
	if (svc->cfg->require_nonce && !(quote && *quote && sig && *sig)) {
		att_resp_error(rs, 422, "pcr_quote: ITL_REQUIRE_NONCE is enabled — a nonce proves freshness only with a TPM quote over it: include pcr_quote and pcr_signature (bind an AK with POST /api/v1/machines/{id}/ak-activate first)");
		goto out;
	}
	if (svc->cfg->require_quote && !(quote && *quote && sig && *sig)) {
		att_resp_error(rs, 422, "pcr_quote: ITL_REQUIRE_QUOTE is enabled — include pcr_quote and pcr_signature");
		goto out;
	}
	if ((quote && *quote) || (sig && *sig)) {
		qr = calloc(1, sizeof(*qr));
		if (!qr) {
			att_resp_error(rs, 503, "out of memory");
			goto out;
		}
		if (!att_api_quote_parse(b, rs, qr))
			goto out;
	} else if (json_object_get(b, "pcr_values") && !json_is_null(json_object_get(b, "pcr_values"))) {
		att_resp_error(rs, 422, "pcr_values: only meaningful together with pcr_quote and pcr_signature");
		goto out;
	}
	if (nonce_id) {
		r = att_nonce_consume(svc, nonce_id, &rq->actor, nonce, err, sizeof(err));
		if (r < 0) {
			att_resp_from_err(rs, r, err);
			goto out;
		}
	}
	if (qr) {
		if (!verify_quote(svc, &nr.ek, qr, nonce, rs, &ev, ak_name))
			goto out;
		nr.cl.quote = &ev;
	}
	r = att_machine_attest(svc, &nr.ek, &nr.cl, &rq->actor, &res, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	{
		char *url = res.token[0] ? att_asprintf("%s/api/v1/config/%s", svc->cfg->service_url, res.token) : NULL;
		json_t *o = json_object();

		json_object_set_new(o, "machine_id", json_string(M(&res.m, MACHINE_ID)));
		json_object_set_new(o, "status", json_string(res.status));
		json_object_set_new(o, "hostname", att_api_str_or_null(M(&res.m, HOSTNAME)));
		json_object_set_new(o, "role", att_api_str_or_null(M(&res.m, ROLE)));
		json_object_set_new(o, "message", json_string(res.message));
		json_object_set_new(o, "action", json_string(res.action));
		json_object_set_new(o, "config_url", att_api_str_or_null(url));
		json_object_set_new(o, "config_token", res.token[0] ? json_string(res.token) : json_null());
		if (qr)
			json_object_set_new(o, "quote_verified", json_true());
		att_resp_json(rs, 200, o);
		att_resp_header(rs, "Cache-Control", "no-store");
		if (url) {
			att_wipe(url, strlen(url));
			free(url);
		}
	}
	/* the dashboard's "last contact"; at most one write per resolution window */
	(void)att_fleet_contact(svc->db, M(&res.m, MACHINE_ID), svc->cfg->contact_resolution_seconds);
	att_node_result_release(&res);
out:
	if (qr) {
		att_api_quote_release(qr);
		free(qr);
	}
	att_api_node_release(&nr);
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/attest/challenge", AUTH_NONE, h_challenge, 0, 0, NULL },
	{ "POST", "/api/v1/attest", AUTH_NONE, h_attest, 0, 0, NULL },
};

const struct att_route_set att_routes_attest = { routes, ATT_ARRAY_SIZE(routes) };
