/* tpmak.c - the attestation key: derivation in the endorsement
 * hierarchy, credential activation, quotes (see tpmdev.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tpmdev-internal.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

/* The AK template: a restricted signing key (ECC P-256/ECDSA-SHA256 or
 * RSA-2048/RSASSA-SHA256) whose unique field carries a label, so the key
 * derived from the endorsement primary seed is the agent's own. */
static const char ak_label[] = "itl attest-agent AK v1";

static void ak_template(bool rsa, TPM2B_PUBLIC *t)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = rsa ? TPM2_ALG_RSA : TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
					 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	if (rsa) {
		TPMS_RSA_PARMS *p = &t->publicArea.parameters.rsaDetail;

		p->symmetric.algorithm = TPM2_ALG_NULL;
		p->scheme.scheme = TPM2_ALG_RSASSA;
		p->scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
		p->keyBits = 2048;
		t->publicArea.unique.rsa.size = sizeof(ak_label) - 1;
		memcpy(t->publicArea.unique.rsa.buffer, ak_label, sizeof(ak_label) - 1);
	} else {
		TPMS_ECC_PARMS *p = &t->publicArea.parameters.eccDetail;

		p->symmetric.algorithm = TPM2_ALG_NULL;
		p->scheme.scheme = TPM2_ALG_ECDSA;
		p->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		p->curveID = TPM2_ECC_NIST_P256;
		p->kdf.scheme = TPM2_ALG_NULL;
		t->publicArea.unique.ecc.x.size = sizeof(ak_label) - 1;
		memcpy(t->publicArea.unique.ecc.x.buffer, ak_label, sizeof(ak_label) - 1);
	}
}

int att_tpmdev_ak(struct att_tpmdev *d, const char *alg, struct att_tpm_ak *ret, char *reterr, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC tmpl, *pub = NULL;
	struct att_tpm_ak ak;
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	if (strcmp(alg, "ecc") != 0 && strcmp(alg, "rsa") != 0)
		return FAIL(ATT_E_INVAL, "AK algorithm must be ecc or rsa");
	ak_template(strcmp(alg, "rsa") == 0, &tmpl);
	rc = Esys_CreatePrimary(d->ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
				&tmpl, &outside, &pcrs, &h, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_CreatePrimary(AK in the endorsement hierarchy)");
	memset(&ak, 0, sizeof(ak));
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, ak.pub, sizeof(ak.pub), &ak.pub_len);
	Esys_Free(pub);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(d->ctx, h);
		return TPM_FAIL(rc, "marshal the AK");
	}
	att_tpm_pub_release(&d->ak_pub);
	r = att_tpm_pub_parse(ak.pub, ak.pub_len, &d->ak_pub, reterr, errlen);
	if (r < 0) {
		Esys_FlushContext(d->ctx, h);
		return r;
	}
	if (d->ak != ESYS_TR_NONE)
		Esys_FlushContext(d->ctx, d->ak);
	d->ak = h;
	*ret = ak;
	return 0;
}

int att_tpmdev_ak_name(struct att_tpmdev *d, char *out, char *reterr, size_t errlen)
{
	if (d->ak == ESYS_TR_NONE || !d->ak_pub.name_len)
		return FAIL(ATT_E_INTERNAL, "no AK loaded");
	att_hex_encode(d->ak_pub.name, d->ak_pub.name_len, out);
	return 0;
}

int att_tpmdev_activate(struct att_tpmdev *d, const uint8_t *id_object, size_t id_len, const uint8_t *secret,
			size_t secret_len, uint8_t out[64], size_t *ret_len, char *reterr, size_t errlen)
{
	TPM2B_ID_OBJECT idobj;
	TPM2B_ENCRYPTED_SECRET sec;
	TPM2B_DIGEST *cred = NULL;
	size_t o1 = 0, o2 = 0;
	ESYS_TR auth;
	TSS2_RC rc;
	int r;

	if (d->ak == ESYS_TR_NONE)
		return FAIL(ATT_E_INTERNAL, "no AK loaded");
	memset(&idobj, 0, sizeof(idobj));
	memset(&sec, 0, sizeof(sec));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object, id_len, &o1, &idobj) != TSS2_RC_SUCCESS || o1 != id_len ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &o2, &sec) != TSS2_RC_SUCCESS ||
	    o2 != secret_len)
		return FAIL(ATT_E_INVAL, "credential blob: malformed TPM2B_ID_OBJECT or TPM2B_ENCRYPTED_SECRET");
	r = att_tpmdev_ek_auth(d, &auth, reterr, errlen);
	if (r < 0)
		return r;
	rc = Esys_ActivateCredential(d->ctx, d->ak, d->ek, ESYS_TR_PASSWORD, auth, ESYS_TR_NONE, &idobj, &sec, &cred);
	att_tpmdev_ek_auth_done(d, auth);
	if (rc != TSS2_RC_SUCCESS)
		return FAIL(ATT_E_CRYPTO, "TPM2_ActivateCredential refused the credential: %s", Tss2_RC_Decode(rc));
	if (cred->size == 0 || cred->size > 64) {
		Esys_Free(cred);
		return FAIL(ATT_E_CRYPTO, "TPM2_ActivateCredential: unexpected credential size");
	}
	memcpy(out, cred->buffer, cred->size);
	*ret_len = cred->size;
	att_wipe(cred->buffer, cred->size);
	Esys_Free(cred);
	return 0;
}

void att_tpm_quote_out_release(struct att_tpm_quote_out *q)
{
	free(q->attest);
	free(q->sig);
	memset(q, 0, sizeof(*q));
}

static void to_tpml(const struct att_pcrsel *sel, TPML_PCR_SELECTION *t)
{
	memset(t, 0, sizeof(*t));
	t->count = (UINT32)sel->n;
	for (size_t i = 0; i < sel->n; i++) {
		t->pcrSelections[i].hash = sel->sel[i].bank;
		t->pcrSelections[i].sizeofSelect = 3;
		t->pcrSelections[i].pcrSelect[0] = (BYTE)(sel->sel[i].mask & 0xff);
		t->pcrSelections[i].pcrSelect[1] = (BYTE)((sel->sel[i].mask >> 8) & 0xff);
		t->pcrSelections[i].pcrSelect[2] = (BYTE)((sel->sel[i].mask >> 16) & 0xff);
	}
}

/* Read every selected PCR (TPM2_PCR_Read returns at most 8 per call). */
static int read_pcrs(struct att_tpmdev *d, const struct att_pcrsel *sel, struct att_tpm_pcrs *ret, char *reterr,
		     size_t errlen)
{
	uint32_t left[4];
	struct {
		uint8_t len;
		uint8_t v[64];
	} val[4][ATT_TPM_NUM_PCRS];

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < sel->n; i++)
		left[i] = sel->sel[i].mask;
	for (int round = 0; round < 32; round++) {
		struct att_pcrsel rest = *sel;
		TPML_PCR_SELECTION in, *out = NULL;
		TPML_DIGEST *dg = NULL;
		UINT32 upd, k = 0;
		bool any = false;
		TSS2_RC rc;

		for (size_t i = 0; i < sel->n; i++) {
			rest.sel[i].mask = left[i];
			any |= left[i] != 0;
		}
		if (!any)
			break;
		to_tpml(&rest, &in);
		rc = Esys_PCR_Read(d->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &upd, &out, &dg);
		if (rc != TSS2_RC_SUCCESS)
			return TPM_FAIL(rc, "TPM2_PCR_Read");
		if (dg->count == 0) {
			Esys_Free(out);
			Esys_Free(dg);
			return FAIL(ATT_E_INVAL, "the TPM returned no PCR values: is every bank of --pcrs active?");
		}
		for (UINT32 s = 0; s < out->count; s++) {
			size_t bi = sel->n;

			for (size_t i = 0; i < sel->n; i++)
				if (sel->sel[i].bank == out->pcrSelections[s].hash)
					bi = i;
			for (unsigned p = 0; p < ATT_TPM_NUM_PCRS && bi < sel->n; p++) {
				if (!(out->pcrSelections[s].pcrSelect[p / 8] & (1u << (p % 8))))
					continue;
				if (k >= dg->count || dg->digests[k].size > 64 || !(left[bi] & (1u << p))) {
					Esys_Free(out);
					Esys_Free(dg);
					return FAIL(ATT_E_IO, "TPM2_PCR_Read: inconsistent answer");
				}
				val[bi][p].len = (uint8_t)dg->digests[k].size;
				memcpy(val[bi][p].v, dg->digests[k].buffer, dg->digests[k].size);
				left[bi] &= ~(1u << p);
				k++;
			}
		}
		Esys_Free(out);
		Esys_Free(dg);
	}
	for (size_t i = 0; i < sel->n; i++) {
		if (left[i])
			return FAIL(ATT_E_INVAL, "PCR bank %s is not active in this TPM", att_tpm_bank_name(sel->sel[i].bank));
		for (unsigned p = 0; p < ATT_TPM_NUM_PCRS; p++) {
			if (!(sel->sel[i].mask & (1u << p)))
				continue;
			ret->v[ret->n].bank = sel->sel[i].bank;
			ret->v[ret->n].index = (uint8_t)p;
			ret->v[ret->n].len = val[i][p].len;
			memcpy(ret->v[ret->n].value, val[i][p].v, val[i][p].len);
			ret->n++;
		}
	}
	return 0;
}

static int quote_once(struct att_tpmdev *d, const uint8_t *nonce, size_t nonce_len, const struct att_pcrsel *sel,
		      struct att_tpm_quote_out *q, char *reterr, size_t errlen)
{
	TPM2B_DATA qd = { 0 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPML_PCR_SELECTION in;
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	uint8_t sbuf[sizeof(TPMT_SIGNATURE) + 16];
	size_t sl = 0;
	TSS2_RC rc;
	int r;

	if (nonce_len > sizeof(qd.buffer))
		return FAIL(ATT_E_INVAL, "nonce too long");
	r = read_pcrs(d, sel, &q->pcrs, reterr, errlen);
	if (r < 0)
		return r;
	qd.size = (UINT16)nonce_len;
	memcpy(qd.buffer, nonce, nonce_len);
	to_tpml(sel, &in);
	rc = Esys_Quote(d->ctx, d->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme, &in, &attest, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_Quote");
	rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sbuf, sizeof(sbuf), &sl);
	if (rc != TSS2_RC_SUCCESS) {
		r = TPM_FAIL(rc, "marshal TPMT_SIGNATURE");
		goto out;
	}
	q->attest = malloc(attest->size);
	q->sig = malloc(sl);
	if (!q->attest || !q->sig) {
		r = ATT_E_NOMEM;
		goto out;
	}
	memcpy(q->attest, attest->attestationData, attest->size);
	q->attest_len = attest->size;
	memcpy(q->sig, sbuf, sl);
	q->sig_len = sl;
out:
	Esys_Free(attest);
	Esys_Free(sig);
	return r;
}

int att_tpmdev_quote(struct att_tpmdev *d, const uint8_t *nonce, size_t nonce_len, const struct att_pcrsel *sel,
		     struct att_tpm_quote_out *ret, char *reterr, size_t errlen)
{
	struct att_tpm_quote_out q;
	struct att_tpm_quote tq;
	int r = ATT_E_INTERNAL;

	if (d->ak == ESYS_TR_NONE)
		return FAIL(ATT_E_INTERNAL, "no AK loaded");
	for (int attempt = 0; attempt < 3; attempt++) {
		memset(&q, 0, sizeof(q));
		r = quote_once(d, nonce, nonce_len, sel, &q, reterr, errlen);
		if (r < 0) {
			att_tpm_quote_out_release(&q);
			return r;
		}
		/* the service's own check: a PCR extended between the read and
		 * the quote shows as a pcrDigest mismatch -> read again */
		r = att_tpm_quote_check(&d->ak_pub, q.attest, q.attest_len, q.sig, q.sig_len, nonce, nonce_len, &q.pcrs,
					&tq, reterr, errlen);
		if (r == 0) {
			q.reset_count = tq.reset_count;
			q.restart_count = tq.restart_count;
			*ret = q;
			return 0;
		}
		att_tpm_quote_out_release(&q);
	}
	if (r == ATT_E_INVAL) {
		char why[256];

		snprintf(why, sizeof(why), "%s", reterr);
		return FAIL(ATT_E_IO, "the TPM's quote does not verify: %s", why);
	}
	return r;
}
