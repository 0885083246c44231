/* secrets.c - the attestation secret vault (docs/secrets.md):
 *   operators   GET/POST /api/v1/secrets/machines/{id}/secrets,
 *               GET/PUT/DELETE /api/v1/secrets/machines/{id}/secrets/{name}
 *               (metadata only: a value is never returned)
 *   the machine POST /api/v1/secrets/machines/{id}/delivery with a quote
 *               over a fresh nonce, verified against its bound AK; the
 *               answer is sealed to its TPM (tpm-credential-aes256gcm-v1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "obs/log.h"
#include "routes/routes.h"
#include "tpm/tpm.h"
#include "vault/vault.h"

#define SECRETS_MEDIA "application/vnd.itl.secrets.encrypted+json"
/* base64 of ITL_SECRET_MAX_BYTES' upper bound (256 KiB) */
#define VALUE_FIELD_MAX 350000

static bool id_param_ok(struct att_req *rq, struct att_resp *rs)
{
	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine not found");
		return false;
	}
	return true;
}

static void h_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[256];
	int r;

	if (!id_param_ok(rq, rs))
		return;
	r = att_vault_list(svc, rq->params[0], &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
}

static void h_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[256];
	int r;

	if (!id_param_ok(rq, rs))
		return;
	r = att_vault_get(svc, rq->params[0], rq->params[1], &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
}

static const struct att_jfield put_fields[] = {
	{ "name", ATT_J_STRING, false, 256 },
	{ "value", ATT_J_STRING, false, VALUE_FIELD_MAX },
	{ "value_b64", ATT_J_STRING, false, VALUE_FIELD_MAX },
	{ "description", ATT_J_STRING, false, 1024 },
	{ "ttl_seconds", ATT_J_INT, false, 0 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

/* value (UTF-8 text) or value_b64 (bytes), exactly one. */
static bool body_value(json_t *b, struct att_resp *rs, uint8_t **ret, size_t *ret_len)
{
	json_t *v = json_object_get(b, "value");
	const char *b64 = att_json_str(b, "value_b64");

	if ((v && !json_is_null(v)) == (b64 != NULL)) {
		att_resp_error(rs, 422, "value: send exactly one of value (text) and value_b64 (base64 bytes)");
		return false;
	}
	if (b64) {
		if (att_b64_decode(b64, strlen(b64), ret, ret_len) < 0) {
			att_resp_error(rs, 422, "value_b64: not valid base64");
			return false;
		}
		return true;
	}
	*ret_len = json_string_length(v);
	*ret = malloc(*ret_len + 1);
	if (!*ret) {
		att_resp_error(rs, 503, "out of memory");
		return false;
	}
	memcpy(*ret, json_string_value(v), *ret_len + 1);
	return true;
}

/* POST .../secrets (create: name in the body) and PUT .../secrets/{name}. */
static void put_common(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, bool create)
{
	json_t *b, *meta = NULL, *ttl;
	struct att_secret_input in = { 0 };
	uint8_t *val = NULL;
	size_t len = 0;
	bool created = false;
	char err[512];
	int r;

	if (!id_param_ok(rq, rs))
		return;
	b = att_req_json(rq, rs, put_fields, ATT_ARRAY_SIZE(put_fields));
	if (!b)
		return;
	in.name = create ? att_json_str(b, "name") : rq->params[1];
	if (create && !in.name) {
		att_resp_error(rs, 422, "name: required");
		goto out;
	}
	if (!create && att_json_str(b, "name") && strcmp(att_json_str(b, "name"), in.name) != 0) {
		att_resp_error(rs, 422, "name: differs from the name in the path");
		goto out;
	}
	ttl = json_object_get(b, "ttl_seconds");
	if (!body_value(b, rs, &val, &len))
		goto out;
	in.value = val;
	in.len = len;
	in.description = att_json_str(b, "description");
	in.ttl_seconds = json_is_integer(ttl) ? (int64_t)json_integer_value(ttl) : 0;
	if (json_is_integer(ttl) && in.ttl_seconds <= 0) {
		att_resp_error(rs, 422, "ttl_seconds: must be a positive number of seconds");
		goto out;
	}
	in.reason = att_json_str(b, "reason");
	in.create_only = create;
	r = att_vault_put(svc, rq->params[0], &in, &rq->actor, &meta, &created, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, created ? 201 : 200, meta);
out:
	if (val) {
		att_wipe(val, len);
		free(val);
	}
	json_decref(b);
}

static void h_create(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	put_common(svc, rq, rs, true);
}

static void h_put(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	put_common(svc, rq, rs, false);
}

static const struct att_jfield delete_fields[] = {
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_delete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	char err[256];
	int r;

	if (!id_param_ok(rq, rs))
		return;
	b = att_req_json(rq, rs, delete_fields, ATT_ARRAY_SIZE(delete_fields));
	if (!b)
		return;
	r = att_vault_delete(svc, rq->params[0], rq->params[1], att_json_str(b, "reason"), &rq->actor, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, json_pack("{s:s,s:s,s:b}", "machine_id", rq->params[0], "name", rq->params[1],
						 "deleted", 1));
	json_decref(b);
}

/* ---- the machine's read ------------------------------------------------------- */

static const struct att_jfield delivery_fields[] = {
	{ "nonce_id", ATT_J_STRING, true, 64 },
	{ "pcr_quote", ATT_J_STRING, true, 16384 },
	{ "pcr_signature", ATT_J_STRING, true, 16384 },
	{ "pcr_values", ATT_J_OBJECT, true, 0 },
};

/* The machine, with a bound AK (answers itself when not). */
static bool delivery_machine(const struct att_svc *svc, const char *id, struct att_resp *rs, struct att_machine *m)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c) {
		att_api_db_unavailable(rs);
		return false;
	}
	r = att_machine_get(c, id, m);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, "Machine not found");
		return false;
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return false;
	}
	if (!M(m, AK_NAME)) {
		att_resp_error(rs, 409,
			       "Machine %s has no bound attestation key — secrets are delivered only to a TPM-bound machine (POST /api/v1/machines/{id}/ak-activate)",
			       id);
		return false;
	}
	return true;
}

/* Consume the nonce and verify the quote against the machine's AK. */
static bool delivery_quote(const struct att_svc *svc, json_t *b, const struct att_machine *m,
			   const struct att_api_quote *q, const struct att_actor *actor, struct att_resp *rs)
{
	struct att_tpm_pub ak = { 0 };
	struct att_tpm_quote tq;
	uint8_t nonce[32];
	char err[512];
	int r;

	r = att_nonce_consume(svc, att_json_str(b, "nonce_id"), actor, nonce, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	r = att_machine_ak_pub(m, &ak, err, sizeof(err));
	if (r == 0)
		r = att_tpm_quote_check(&ak, q->attest, q->attest_len, q->sig, q->sig_len, nonce, sizeof(nonce), &q->pcrs,
					&tq, err, sizeof(err));
	att_tpm_pub_release(&ak);
	if (r < 0) {
		att_log_warning("attestd.secrets", "Secret delivery quote from machine %s rejected: %s", M(m, MACHINE_ID), err);
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
		return false;
	}
	return true;
}

/* The delivery document sealed to the machine's EK for its AK's Name. */
static int seal_to_tpm(const struct att_machine *m, const char *plain, size_t len, char **ret)
{
	struct att_tpm_pub ek;
	uint8_t name[ATT_TPM_MAX_NAME];
	size_t nl = strlen(M(m, AK_NAME)) / 2;
	char why[256];
	int r;

	if (nl > sizeof(name) || att_hex_decode(M(m, AK_NAME), nl * 2, name) < 0)
		return ATT_E_INTERNAL;
	r = att_machine_ek_pub(m, &ek, why, sizeof(why));
	if (r < 0)
		return r;
	r = att_envelope_tpm_credential(&ek, name, nl, M(m, MACHINE_ID), plain, len, ret);
	att_tpm_pub_release(&ek);
	return r;
}

static void h_delivery(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_api_quote q = { 0 };
	struct att_machine m = { 0 };
	struct att_quote_evidence ev = { 0 };
	char err[512], *plain = NULL, *env = NULL;
	size_t len = 0;
	int r, count = 0;

	if (!id_param_ok(rq, rs))
		return;
	b = att_req_json(rq, rs, delivery_fields, ATT_ARRAY_SIZE(delivery_fields));
	if (!b)
		return;
	if (!svc->vault) {
		att_resp_error(rs, 503, "Secret vault not configured");
		goto out;
	}
	/* structure first, so a bad request never burns a nonce */
	if (!att_api_quote_parse(b, rs, &q) || !delivery_machine(svc, rq->params[0], rs, &m) ||
	    !delivery_quote(svc, b, &m, &q, &rq->actor, rs))
		goto out;
	ev.ak_name = M(&m, AK_NAME);
	ev.pcrs = &q.pcrs;
	r = att_vault_deliver(svc, rq->params[0], &ev, &rq->actor, &plain, &len, &count, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	r = seal_to_tpm(&m, plain, len, &env);
	if (r < 0) {
		att_log_error("attestd.secrets", "cannot seal the secrets of machine %s to its TPM", M(&m, MACHINE_ID));
		att_resp_error(rs, 500, "Internal Server Error");
		goto out;
	}
	att_resp_text(rs, 200, SECRETS_MEDIA, env, strlen(env));
	env = NULL;
	att_resp_header(rs, "Cache-Control", "no-store");
out:
	if (plain) {
		att_wipe(plain, len);
		free(plain);
	}
	free(env);
	att_api_quote_release(&q);
	att_machine_release(&m);
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/secrets/machines/{id}/secrets", AUTH_OPERATOR, h_list, 0, 0, NULL },
	{ "POST", "/api/v1/secrets/machines/{id}/secrets", AUTH_OPERATOR, h_create, 0, 0, NULL },
	{ "GET", "/api/v1/secrets/machines/{id}/secrets/{name}", AUTH_OPERATOR, h_get, 0, 0, NULL },
	{ "PUT", "/api/v1/secrets/machines/{id}/secrets/{name}", AUTH_OPERATOR, h_put, 0, 0, NULL },
	{ "DELETE", "/api/v1/secrets/machines/{id}/secrets/{name}", AUTH_OPERATOR, h_delete, 0, 0, NULL },
	{ "POST", "/api/v1/secrets/machines/{id}/delivery", AUTH_NONE, h_delivery, 0, 0, NULL },
};

const struct att_route_set att_routes_secrets = { routes, ATT_ARRAY_SIZE(routes) };
