/* attest_tpm.c - tpm_ek: the agent runs on a machine this service knows
 * (registered with its EK, approved, with an AK bound by credential
 * activation) and proves it now with a TPM2_Quote by that AK whose
 * qualifying data is the request's nonce, exactly as /attest does.
 * Attributes: the machine's EK fingerprint, manufacturer, model, id,
 * status, role, hostname and whether its EK chain verified. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine.h"
#include "policy/policy-internal.h"
#include "tpm/tpm.h"

static int read_pcrs(const json_t *evidence, struct att_tpm_pcrs *pcrs, char *reason, size_t rlen)
{
	const json_t *pv = json_object_get(evidence, "pcr_values");
	const char *k;
	json_t *v;
	char err[256];

	memset(pcrs, 0, sizeof(*pcrs));
	if (!json_is_object(pv))
		return POL_FAIL(ATT_E_AUTH, "missing evidence: pcr_values (the values the quote covers)");
	json_object_foreach((json_t *)pv, k, v) {
		if (!json_is_string(v) || att_tpm_pcrs_add(pcrs, k, json_string_value(v), err, sizeof(err)) < 0)
			return POL_FAIL(ATT_E_AUTH, "malformed evidence: pcr_values.%.32s", k);
	}
	return 0;
}

static int check_machine(const json_t *config, const struct att_machine *m, char *reason, size_t rlen)
{
	const char *st = M(m, STATUS);

	if (json_object_get(config, "allowedStates") ? !att_pol_allowed(config, "allowedStates", st)
						     : strcmp(st, "attested") != 0)
		return POL_FAIL(ATT_E_AUTH, "machine state not allowed: %s", st);
	if (!M(m, AK_PUBLIC))
		return POL_FAIL(ATT_E_AUTH, "no bound AK: the machine has not completed ak-activate");
	if (json_is_true(json_object_get(config, "requireVerifiedChain")) && !(M(m, EK_VERIFIED) && strcmp(M(m, EK_VERIFIED), "1") == 0))
		return POL_FAIL(ATT_E_AUTH, "EK chain not verified for this machine");
	if (!att_pol_allowed(config, "manufacturers", M(m, EK_MANUFACTURER)))
		return POL_FAIL(ATT_E_AUTH, "TPM manufacturer not allowed");
	return 0;
}

static void put(json_t *attrs, const char *k, const char *v)
{
	if (v)
		json_object_set_new(attrs, k, json_string(v));
}

static int tpm_ek_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			 json_t *attrs, char *reason, size_t rlen)
{
	const char *id = att_pol_evidence_str(evidence, "machine_id", 64, reason, rlen);
	const char *q = id ? att_pol_evidence_str(evidence, "quote", 16384, reason, rlen) : NULL;
	const char *s = q ? att_pol_evidence_str(evidence, "signature", 16384, reason, rlen) : NULL;
	struct att_machine m = { 0 };
	struct att_tpm_pub ak = { 0 };
	struct att_tpm_pcrs pcrs;
	struct att_tpm_quote tq;
	uint8_t *qa = NULL, *sg = NULL;
	size_t ql = 0, sl = 0;
	struct att_dbc *c;
	char err[512];
	int r;

	if (!s)
		return ATT_E_AUTH;
	if (!ctx->nonce)
		return POL_FAIL(ATT_E_AUTH, "nonce required: the quote must be over the server nonce (nonce_id)");
	r = read_pcrs(evidence, &pcrs, reason, rlen);
	if (r < 0)
		return r;
	if (att_b64_decode(q, strlen(q), &qa, &ql) < 0 || att_b64_decode(s, strlen(s), &sg, &sl) < 0) {
		free(qa);
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: quote and signature must be base64");
	}
	c = att_db_acquire(ctx->svc->db);
	r = c ? att_machine_get(c, id, &m) : ATT_E_DB;
	if (c)
		att_db_release(ctx->svc->db, c);
	if (r == ATT_E_NOTFOUND)
		r = POL_FAIL(ATT_E_AUTH, "unknown machine: %.64s", id);
	else if (r < 0)
		r = POL_FAIL(ATT_E_UNAVAILABLE, "database unavailable: %s", att_strerror(r));
	else
		r = check_machine(config, &m, reason, rlen);
	if (r == 0 && att_machine_ak_pub(&m, &ak, err, sizeof(err)) < 0)
		r = POL_FAIL(ATT_E_AUTH, "bound AK unreadable: %s", err);
	if (r == 0 && att_tpm_quote_check(&ak, qa, ql, sg, sl, ctx->nonce, ATT_AGENT_NONCE_LEN, &pcrs, &tq, err,
					  sizeof(err)) < 0)
		r = POL_FAIL(ATT_E_AUTH, "quote refused: %s", err);
	if (r == 0) {
		put(attrs, "fingerprint", M(&m, EK_FINGERPRINT));
		put(attrs, "manufacturer", M(&m, EK_MANUFACTURER));
		put(attrs, "model", M(&m, EK_MODEL));
		put(attrs, "machine_id", M(&m, MACHINE_ID));
		put(attrs, "status", M(&m, STATUS));
		put(attrs, "role", M(&m, ROLE));
		put(attrs, "hostname", M(&m, HOSTNAME));
		json_object_set_new(attrs, "ek_verified", json_boolean(M(&m, EK_VERIFIED) && strcmp(M(&m, EK_VERIFIED), "1") == 0));
	}
	att_tpm_pub_release(&ak);
	att_machine_release(&m);
	free(qa);
	free(sg);
	return r;
}

static const struct att_pol_field tpm_ek_fields[] = {
	{ "allowedStates", PK_STRLIST, false },
	{ "requireVerifiedChain", PK_BOOL, false },
	{ "manufacturers", PK_STRLIST, false },
};

const struct att_attestor att_attestor_tpm_ek = { "tpm_ek", tpm_ek_fields, ATT_ARRAY_SIZE(tpm_ek_fields), NULL,
						  tpm_ek_verify };
