/* certs.c - machine certificates: CSR enrollment proven by a quote of
 * the bound AK (and, for TPM-resident keys, a TPM2_Certify by that AK),
 * the machine's certificates for operators, revoking one, and a
 * machine revoking its own certificate (docs/certificates.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "crypto/csr.h"
#include "db/db.h"
#include "obs/log.h"
#include "policy/policy.h"
#include "routes/routes.h"
#include "tpm/tpm.h"

static const struct att_jfield enroll_fields[] = {
	{ "csr_pem", ATT_J_STRING, true, ATT_CSR_MAX_PEM },
	{ "nonce_id", ATT_J_STRING, true, 64 },
	{ "pcr_quote", ATT_J_STRING, true, 16384 },
	{ "pcr_signature", ATT_J_STRING, true, 16384 },
	{ "pcr_values", ATT_J_OBJECT, true, 0 },
	{ "tpm_key_public", ATT_J_STRING, false, 4096 },
	{ "certify_info", ATT_J_STRING, false, 8192 },
	{ "certify_signature", ATT_J_STRING, false, 16384 },
};

/* Decoded evidence of one enroll request. */
struct enroll_ev {
	uint8_t *quote, *qsig, *kpub, *cinfo, *csig;
	size_t quote_len, qsig_len, kpub_len, cinfo_len, csig_len;
	struct att_tpm_pcrs pcrs;
	struct att_tpm_pub key;	/* the TPM key (tpm path) */
	bool tpm;
	struct att_csr csr;
};

static void enroll_ev_release(struct enroll_ev *e)
{
	free(e->quote);
	free(e->qsig);
	free(e->kpub);
	free(e->cinfo);
	free(e->csig);
	att_tpm_pub_release(&e->key);
	att_csr_release(&e->csr);
}

static bool b64_field(json_t *b, const char *name, uint8_t **out, size_t *len, struct att_resp *rs)
{
	const char *v = att_json_str(b, name);

	if (!v)
		return true;
	if (att_b64_decode(v, strlen(v), out, len) < 0 || *len == 0) {
		att_resp_error(rs, 422, "%s: not valid base64", name);
		return false;
	}
	return true;
}

/* The quote's structure and the reported PCR values. */
static bool enroll_pcrs(json_t *b, struct enroll_ev *e, struct att_resp *rs)
{
	struct att_tpm_quote probe;
	const char *key;
	json_t *v;
	char err[512];

	if (att_tpm_quote_parse(e->quote, e->quote_len, &probe, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "pcr_quote: %s", err);
		return false;
	}
	json_object_foreach(json_object_get(b, "pcr_values"), key, v) {
		if (!json_is_string(v)) {
			att_resp_error(rs, 422, "pcr_values: '%.32s' must be a hex string", key);
			return false;
		}
		if (att_tpm_pcrs_add(&e->pcrs, key, json_string_value(v), err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "%s", err);
			return false;
		}
	}
	return true;
}

/* Everything that can be judged from the bytes alone, before a nonce is
 * consumed or a row read. */
static bool enroll_parse(json_t *b, struct enroll_ev *e, struct att_resp *rs)
{
	struct att_tpm_certify cprobe;
	char err[512];
	int ntpm = !!att_json_str(b, "tpm_key_public") + !!att_json_str(b, "certify_info") +
		   !!att_json_str(b, "certify_signature");

	if (!b64_field(b, "pcr_quote", &e->quote, &e->quote_len, rs) ||
	    !b64_field(b, "pcr_signature", &e->qsig, &e->qsig_len, rs) ||
	    !b64_field(b, "tpm_key_public", &e->kpub, &e->kpub_len, rs) ||
	    !b64_field(b, "certify_info", &e->cinfo, &e->cinfo_len, rs) ||
	    !b64_field(b, "certify_signature", &e->csig, &e->csig_len, rs))
		return false;
	if (!enroll_pcrs(b, e, rs))
		return false;
	if (ntpm != 0 && ntpm != 3) {
		att_resp_error(rs, 422, "tpm_key_public: tpm_key_public, certify_info and certify_signature go together");
		return false;
	}
	e->tpm = ntpm == 3;
	if (e->tpm) {
		if (att_tpm_pub_parse(e->kpub, e->kpub_len, &e->key, err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "tpm_key_public: %s", err);
			return false;
		}
		if (att_tpm_pub_check_client_key(&e->key, err, sizeof(err)) < 0 ||
		    att_tpm_certify_parse(e->cinfo, e->cinfo_len, &cprobe, err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "%s", err);
			return false;
		}
	}
	{
		const char *pem = att_json_str(b, "csr_pem");

		if (att_csr_parse(pem, strlen(pem), e->tpm, &e->csr, err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "%s", err);
			return false;
		}
	}
	if (e->tpm && !att_tpm_pub_same_key(&e->key, e->csr.key)) {
		att_resp_error(rs, 422, "csr_pem: the CSR's key is not the TPM key in tpm_key_public");
		return false;
	}
	return true;
}

/* The machine as it is now: 404, 403 (locked/revoked), 409 (not
 * attested, no AK), before the nonce is spent. */
static bool enroll_machine(const struct att_svc *svc, const char *id, struct att_machine *m, struct att_resp *rs)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	const char *st;
	int r;

	if (!c) {
		att_api_db_unavailable(rs);
		return false;
	}
	r = att_machine_get(c, id, m);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, "Machine %s not found", id);
		return false;
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return false;
	}
	st = M(m, STATUS);
	if (strcmp(st, "locked") == 0 || strcmp(st, "revoked") == 0 || strcmp(st, "rejected") == 0) {
		att_resp_error(rs, 403, "Machine %s status=%s — cert issuance denied", id, st);
		return false;
	}
	if (strcmp(st, "attested") != 0) {
		att_resp_error(rs, 409, "Machine %s is %s — only an attested machine can enroll", id, st);
		return false;
	}
	if (!M(m, AK_PUBLIC)) {
		att_resp_error(rs, 409, "Machine %s has no bound attestation key — bind one with POST /api/v1/machines/%s/ak-activate",
			       id, id);
		return false;
	}
	return true;
}

/* Quote (and certification) by the bound AK over the nonce; the role's
 * PCR policy. */
static bool enroll_verify(const struct att_svc *svc, const struct att_machine *m, struct enroll_ev *e,
			  const uint8_t nonce[32], struct att_resp *rs)
{
	struct att_tpm_pub ak = { 0 };
	struct att_tpm_quote tq;
	json_t *policy = NULL;
	char err[512];
	int r;

	r = att_machine_ak_pub(m, &ak, err, sizeof(err));
	if (r == 0)
		r = att_tpm_quote_check(&ak, e->quote, e->quote_len, e->qsig, e->qsig_len, nonce, 32, &e->pcrs, &tq, err,
					sizeof(err));
	if (r < 0) {
		att_log_warning("attestd.pki", "Enrollment of machine %s refused: quote: %s", M(m, MACHINE_ID), err);
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
		goto out;
	}
	if (e->tpm) {
		r = att_tpm_certify_check(&ak, e->cinfo, e->cinfo_len, e->csig, e->csig_len, nonce, 32, &e->key, err,
					  sizeof(err));
		if (r < 0) {
			att_log_warning("attestd.pki", "Enrollment of machine %s refused: %s", M(m, MACHINE_ID), err);
			att_resp_error(rs, 422, "%s", err);
			goto out;
		}
	}
	r = att_pcr_policy_get(svc, M(m, ROLE), &policy, err, sizeof(err));
	if (r == ATT_E_NOTFOUND) {
		r = 0;
	} else if (r == 0) {
		r = att_pcr_policy_check(json_object_get(policy, "pcrs"), M(m, ROLE), &e->pcrs, err, sizeof(err));
		if (r < 0)
			att_resp_error(rs, 422, "%s", err);
	} else {
		att_resp_from_err(rs, r, err);
	}
out:
	json_decref(policy);
	att_tpm_pub_release(&ak);
	return r == 0;
}

static void enroll_reply(const struct att_svc *svc, struct att_resp *rs, const struct att_machine *m,
			 const struct att_ca_leaf *l, bool tpm)
{
	char *ca = att_ca_bundle_pem(svc->ca);
	int64_t secs = att_config_cert_seconds(svc->cfg, M(m, ROLE));

	att_resp_json(rs, 200, json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:b,s:s?}", "machine_id",
					 M(m, MACHINE_ID), "role", M(m, ROLE), "serial", l->serial, "certificate_pem",
					 l->cert_pem, "not_after", l->not_after, "key_type", l->key_type, "ca_serial",
					 l->ca_serial, "valid_days", (json_int_t)(secs / 86400), "valid_hours",
					 (json_int_t)(secs / 3600), "tpm_resident", tpm, "enrollment_ca_pem", ca));
	att_resp_header(rs, "Cache-Control", "no-store");
	free(ca);
}

/* The common tail of enroll and request-cert: the single-use nonce spent,
 * the quote (and certification) verified over it, then the certificate
 * issued (key NULL: the CA makes one).  false with the answer in rs. */
static bool prove_and_issue(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, json_t *b,
			    const struct att_machine *m, struct enroll_ev *e, EVP_PKEY *key, const char *kind,
			    struct att_ca_leaf *leaf, struct att_machine *done)
{
	uint8_t nonce[32];
	char err[512];
	int r;

	r = att_nonce_consume(svc, att_json_str(b, "nonce_id"), &rq->actor, nonce, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	if (!enroll_verify(svc, m, e, nonce, rs))
		return false;
	{
		struct att_cert_enroll ce = { key, e->tpm, kind, M(m, AK_NAME) };

		r = att_machine_enroll(svc, rq->params[0], &ce, &rq->actor, leaf, done, err, sizeof(err));
	}
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	return true;
}

/* POST /api/v1/machines/{id}/enroll */
static void h_enroll(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct enroll_ev *e = NULL;
	struct att_machine m = { 0 }, done = { 0 };
	struct att_ca_leaf leaf = { 0 };

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, enroll_fields, ATT_ARRAY_SIZE(enroll_fields));
	if (!b)
		return;
	e = calloc(1, sizeof(*e));
	if (!e) {
		att_resp_error(rs, 503, "out of memory");
		goto out;
	}
	if (!enroll_parse(b, e, rs) || !enroll_machine(svc, rq->params[0], &m, rs))
		goto out;
	if (!prove_and_issue(svc, rq, rs, b, &m, e, e->csr.key, e->tpm ? "tpm" : "csr", &leaf, &done))
		goto out;
	enroll_reply(svc, rs, &done, &leaf, e->tpm);
	att_ca_leaf_release(&leaf);
	att_machine_release(&done);
out:
	if (e) {
		enroll_ev_release(e);
		free(e);
	}
	att_machine_release(&m);
	json_decref(b);
}

static const struct att_jfield request_cert_fields[] = {
	{ "ek_fingerprint", ATT_J_STRING, true, 128 },
	{ "ek_cert_pem", ATT_J_STRING, false, 16384 },
	{ "ek_source", ATT_J_STRING, false, 32 },
	{ "wrapping_key_pem", ATT_J_STRING, false, 8192 },
	{ "nonce_id", ATT_J_STRING, true, 64 },
	{ "pcr_quote", ATT_J_STRING, true, 16384 },
	{ "pcr_signature", ATT_J_STRING, true, 16384 },
	{ "pcr_values", ATT_J_OBJECT, true, 0 },
};

static bool fp_matches(const struct att_machine *m, const char *fp)
{
	const char *k[] = { M(m, EK_FINGERPRINT), M(m, EK_FINGERPRINT_LEGACY), M(m, EK_FINGERPRINT_AGENT) };

	for (size_t i = 0; i < ATT_ARRAY_SIZE(k); i++)
		if (k[i] && strlen(k[i]) == strlen(fp) && att_ct_equal(k[i], strlen(k[i]), fp, strlen(fp)))
			return true;
	return false;
}

/* The reference's CertResponse, the key wrapped when asked. */
static void request_cert_reply(const struct att_svc *svc, json_t *b, struct att_resp *rs, const struct att_machine *m,
			       const struct att_ca_leaf *l)
{
	const char *wrap = att_json_str(b, "wrapping_key_pem");
	char *wrapped = NULL, *ca = att_ca_bundle_pem(svc->ca), err[256];
	int64_t secs = att_config_cert_seconds(svc->cfg, M(m, ROLE));

	if (wrap) {
		uint8_t *der = NULL;
		size_t dl = 0;
		int r = att_crypto_key_pem_der(l->key_pem, &der, &dl);

		if (r == 0)
			r = att_crypto_oaep_wrap_b64(wrap, der, dl, &wrapped, err, sizeof(err));
		if (der) {
			att_wipe(der, dl);
			free(der);
		}
		if (r < 0) {	/* checked before issuing; a failure here is internal */
			free(ca);
			att_resp_error(rs, 500, "Internal Server Error");
			return;
		}
	}
	att_resp_json(rs, 200, json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s?,s:s,s:I,s:s,s:s}", "machine_id", M(m, MACHINE_ID),
					 "role", M(m, ROLE), "enrollment_cert_pem", l->cert_pem, "enrollment_key_pem",
					 wrapped ? "" : l->key_pem, "enrollment_key_encrypted_b64", wrapped ? wrapped : "",
					 "enrollment_key_encrypted_format", wrapped ? "rsa-oaep-sha256:pkcs8-der" : NULL,
					 "enrollment_ca_pem", ca ? ca : "", "valid_days", (json_int_t)(secs / 86400),
					 "serial", l->serial, "message", "Enrollment certificate issued"));
	att_resp_header(rs, "Cache-Control", "no-store");
	free(wrapped);
	free(ca);
}

/* POST /api/v1/machines/{id}/request-cert: the reference's server-made
 * key, but only for an attested machine proving its TPM as on enroll. */
static void h_request_cert(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct enroll_ev *e = NULL;
	struct att_machine m = { 0 }, done = { 0 };
	struct att_ca_leaf leaf = { 0 };
	char err[512];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, request_cert_fields, ATT_ARRAY_SIZE(request_cert_fields));
	if (!b)
		return;
	e = calloc(1, sizeof(*e));
	if (!e) {
		att_resp_error(rs, 503, "out of memory");
		goto out;
	}
	if (att_json_str(b, "wrapping_key_pem")) {	/* usable at all? (a 2-byte probe) */
		char *probe = NULL;

		r = att_crypto_oaep_wrap_b64(att_json_str(b, "wrapping_key_pem"), (const uint8_t *)"ok", 2, &probe, err,
					     sizeof(err));
		free(probe);
		if (r < 0) {
			att_resp_error(rs, 422, "%s", err);
			goto out;
		}
	}
	if (!b64_field(b, "pcr_quote", &e->quote, &e->quote_len, rs) ||
	    !b64_field(b, "pcr_signature", &e->qsig, &e->qsig_len, rs) || !enroll_pcrs(b, e, rs) ||
	    !enroll_machine(svc, rq->params[0], &m, rs))
		goto out;
	if (!fp_matches(&m, att_json_str(b, "ek_fingerprint"))) {
		att_resp_error(rs, 403, "EK fingerprint does not match registered machine");
		goto out;
	}
	if (!prove_and_issue(svc, rq, rs, b, &m, e, NULL, "request-cert", &leaf, &done))
		goto out;
	request_cert_reply(svc, b, rs, &done, &leaf);
	att_ca_leaf_release(&leaf);
	att_machine_release(&done);
out:
	if (e) {
		enroll_ev_release(e);
		free(e);
	}
	att_machine_release(&m);
	json_decref(b);
}

/* GET /api/v1/machines/{id}/certificates */
static void h_machine_certs(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr = NULL;
	struct att_machine m = { 0 };
	struct att_dbc *c;
	char err[256];
	int r;

	if (!att_api_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_machine_get(c, rq->params[0], &m);
	att_db_release(svc->db, c);
	att_machine_release(&m);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, "Machine %s not found", rq->params[0]);
		return;
	}
	r = r < 0 ? r : att_cert_list(svc, rq->params[0], &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, arr);
}

static bool serial_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && att_is_hex(s, n);
}

/* GET /api/v1/certificates/{serial} */
static void h_cert_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o = NULL;
	char err[256];
	int r;

	if (!serial_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Certificate %.64s not found", rq->params[0]);
		return;
	}
	r = att_cert_get(svc, rq->params[0], &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, o);
}

static const struct att_jfield revoke_fields[] = {
	{ "reason", ATT_J_STRING, false, 32 },
	{ "detail", ATT_J_STRING, false, 1024 },
};

/* POST /api/v1/certificates/{serial}/revoke */
static void h_cert_revoke(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b, *o = NULL;
	const char *reason;
	char err[512], mid[80];
	int r;

	if (!serial_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Certificate %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, revoke_fields, ATT_ARRAY_SIZE(revoke_fields));
	if (!b)
		return;
	reason = att_json_str(b, "reason") ? att_json_str(b, "reason") : "unspecified";
	if (!att_cert_reason_valid(reason) || strcmp(reason, "certificateHold") == 0) {
		att_resp_error(rs, 422, "reason: must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn");
		goto out;
	}
	r = att_cert_owner(svc, rq->params[0], mid, err, sizeof(err));
	if (r == 0 && !mid[0])	/* an agent's X.509-SVID */
		r = att_agent_cert_revoke(svc, rq->params[0], reason, att_json_str(b, "detail"), &rq->actor, &o, err,
					  sizeof(err));
	else if (r == 0)
		r = att_cert_revoke(svc, mid, rq->params[0], reason, att_json_str(b, "detail"), &rq->actor, &o, err,
				    sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
out:
	json_decref(b);
}

static const struct att_jfield self_revoke_fields[] = {
	{ "certificate_pem", ATT_J_STRING, true, ATT_CSR_MAX_PEM },
	{ "nonce_id", ATT_J_STRING, true, 64 },
	{ "signature", ATT_J_STRING, true, 2048 },
	{ "reason", ATT_J_STRING, false, 32 },
};

/* The certificate (proven by signature over the nonce) is one this
 * instance issued and recorded: its machine id. */
static bool self_revoke_owner(const struct att_svc *svc, json_t *b, const uint8_t *sig, size_t sl,
			      const uint8_t nonce[32], char serial[80], char mid[80], struct att_resp *rs)
{
	const char *pem = att_json_str(b, "certificate_pem");
	char *msg = att_b64_encode(nonce, 32), sha[65], stored_sha[65], err[512];
	json_t *rec = NULL;
	const char *st;
	int r;

	if (!msg) {
		att_resp_error(rs, 503, "out of memory");
		return false;
	}
	r = att_cert_pop_check(pem, strlen(pem), msg, strlen(msg), sig, sl, serial, sha, err, sizeof(err));
	free(msg);
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	r = att_cert_get(svc, serial, &rec, err, sizeof(err));
	if (r == ATT_E_NOTFOUND || (r == 0 && (att_cert_pem_sha256(json_string_value(json_object_get(rec, "certificate_pem")),
								  stored_sha) < 0 || strcmp(sha, stored_sha) != 0))) {
		json_decref(rec);
		att_resp_error(rs, 403, "certificate_pem: not a certificate this service issued");
		return false;
	}
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return false;
	}
	st = json_string_value(json_object_get(rec, "status"));
	snprintf(mid, 80, "%s", json_is_string(json_object_get(rec, "machine_id"))
		 ? json_string_value(json_object_get(rec, "machine_id")) : "");
	r = strcmp(st, "revoked") == 0;
	json_decref(rec);
	if (r) {
		att_resp_error(rs, 409, "Certificate %s is already revoked", serial);
		return false;
	}
	return true;
}

/* POST /api/v1/certificates/self-revoke: a machine (a CI runner shutting
 * down) revokes its own certificate with proof of possession of its key
 * over a server nonce; no operator credential. */
static void h_cert_self_revoke(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, self_revoke_fields, ATT_ARRAY_SIZE(self_revoke_fields)), *o = NULL;
	const char *reason, *sig_b64;
	uint8_t *sig = NULL, nonce[32];
	size_t sl = 0;
	char serial[80], mid[80], err[512], who[100], sha[65];
	struct att_actor actor;
	int r;

	if (!b)
		return;
	reason = att_json_str(b, "reason") ? att_json_str(b, "reason") : "cessationOfOperation";
	sig_b64 = att_json_str(b, "signature");
	if (!att_cert_reason_valid(reason) || strcmp(reason, "certificateHold") == 0) {
		att_resp_error(rs, 422, "reason: must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn");
		goto out;
	}
	if (att_b64_decode(sig_b64, strlen(sig_b64), &sig, &sl) < 0 || sl == 0) {
		att_resp_error(rs, 422, "signature: not valid base64");
		goto out;
	}
	if (att_cert_pem_sha256(att_json_str(b, "certificate_pem"), sha) < 0) {
		att_resp_error(rs, 422, "certificate_pem: not a PEM certificate");
		goto out;
	}
	r = att_nonce_consume(svc, att_json_str(b, "nonce_id"), &rq->actor, nonce, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	if (!self_revoke_owner(svc, b, sig, sl, nonce, serial, mid, rs))
		goto out;
	snprintf(who, sizeof(who), mid[0] ? "machine:%s" : "agent", mid);
	actor = (struct att_actor){ .name = who, .source_ip = rq->actor.source_ip };
	if (!mid[0])	/* an agent's X.509-SVID */
		r = att_agent_cert_revoke(svc, serial, reason, "revoked by the agent itself (proof of possession)",
					  &actor, &o, err, sizeof(err));
	else
		r = att_cert_revoke(svc, mid, serial, reason, "revoked by the machine itself (proof of possession)",
				    &actor, &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
out:
	free(sig);
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "POST", "/api/v1/machines/{id}/enroll", AUTH_NONE, h_enroll, 0, 0, NULL },
	{ "POST", "/api/v1/machines/{id}/request-cert", AUTH_NONE, h_request_cert, 0, 0, NULL },
	{ "GET", "/api/v1/machines/{id}/certificates", AUTH_OPERATOR, h_machine_certs, 0, 0, NULL },
	{ "GET", "/api/v1/certificates/{serial}", AUTH_OPERATOR, h_cert_get, 0, 0, NULL },
	{ "POST", "/api/v1/certificates/self-revoke", AUTH_NONE, h_cert_self_revoke, 0, 0, NULL },
	{ "POST", "/api/v1/certificates/{serial}/revoke", AUTH_OPERATOR, h_cert_revoke, 0, 0, NULL },
};

const struct att_route_set att_routes_certs = { routes, ATT_ARRAY_SIZE(routes) };
