/* tpmkey.c - the machine's client-certificate key in the TPM (see
 * tpmdev.h): derivation in the owner hierarchy, TPM2_Certify by the AK,
 * TPM2_Sign of a digest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "agent/tpmdev-internal.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

static const char key_label[] = "itl attest-agent client key v1";

/* An unrestricted ECC P-256 ECDSA-SHA256 signing key, fixed to the TPM. */
static void key_template(TPM2B_PUBLIC *t)
{
	TPMS_ECC_PARMS *p = &t->publicArea.parameters.eccDetail;

	memset(t, 0, sizeof(*t));
	t->publicArea.type = TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
					 TPMA_OBJECT_SIGN_ENCRYPT;
	p->symmetric.algorithm = TPM2_ALG_NULL;
	p->scheme.scheme = TPM2_ALG_ECDSA;
	p->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p->curveID = TPM2_ECC_NIST_P256;
	p->kdf.scheme = TPM2_ALG_NULL;
	t->publicArea.unique.ecc.x.size = sizeof(key_label) - 1;
	memcpy(t->publicArea.unique.ecc.x.buffer, key_label, sizeof(key_label) - 1);
}

int att_tpmdev_client_key(struct att_tpmdev *d, struct att_tpm_ak *ret, char *reterr, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC tmpl, *pub = NULL;
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc;

	key_template(&tmpl);
	rc = Esys_CreatePrimary(d->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
				&outside, &pcrs, &h, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_CreatePrimary(client key in the owner hierarchy)");
	memset(ret, 0, sizeof(*ret));
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, ret->pub, sizeof(ret->pub), &ret->pub_len);
	Esys_Free(pub);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(d->ctx, h);
		return TPM_FAIL(rc, "marshal the client key");
	}
	if (d->ckey != ESYS_TR_NONE)
		Esys_FlushContext(d->ctx, d->ckey);
	d->ckey = h;
	return 0;
}

static int copy_out(const uint8_t *p, size_t n, uint8_t **ret, size_t *ret_len)
{
	*ret = malloc(n ? n : 1);
	if (!*ret)
		return ATT_E_NOMEM;
	memcpy(*ret, p, n);
	*ret_len = n;
	return 0;
}

int att_tpmdev_certify(struct att_tpmdev *d, const uint8_t *nonce, size_t nonce_len, uint8_t **ret_attest,
		       size_t *ret_alen, uint8_t **ret_sig, size_t *ret_slen, char *reterr, size_t errlen)
{
	TPM2B_DATA qd = { 0 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	uint8_t sbuf[sizeof(TPMT_SIGNATURE) + 16];
	size_t sl = 0;
	TSS2_RC rc;
	int r;

	if (d->ak == ESYS_TR_NONE || d->ckey == ESYS_TR_NONE)
		return FAIL(ATT_E_INTERNAL, "no AK or client key loaded");
	if (nonce_len > sizeof(qd.buffer))
		return FAIL(ATT_E_INVAL, "nonce too long");
	qd.size = (UINT16)nonce_len;
	memcpy(qd.buffer, nonce, nonce_len);
	rc = Esys_Certify(d->ctx, d->ckey, d->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &qd, &scheme,
			  &attest, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_Certify");
	rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sbuf, sizeof(sbuf), &sl);
	r = rc != TSS2_RC_SUCCESS ? TPM_FAIL(rc, "marshal TPMT_SIGNATURE")
				  : copy_out(attest->attestationData, attest->size, ret_attest, ret_alen);
	if (r == 0) {
		r = copy_out(sbuf, sl, ret_sig, ret_slen);
		if (r < 0)
			free(*ret_attest);
	}
	Esys_Free(attest);
	Esys_Free(sig);
	return r;
}

int att_tpmdev_client_sign(struct att_tpmdev *d, const uint8_t digest[32], uint8_t **ret_der, size_t *ret_len,
			   char *reterr, size_t errlen)
{
	TPM2B_DIGEST dg = { .size = 32 };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
	TPMT_SIGNATURE *sig = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	TSS2_RC rc;
	int n, ret = ATT_E_CRYPTO;

	if (d->ckey == ESYS_TR_NONE)
		return FAIL(ATT_E_INTERNAL, "no client key loaded");
	memcpy(dg.buffer, digest, 32);
	rc = Esys_Sign(d->ctx, d->ckey, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &dg, &scheme, &ticket, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_Sign");
	if (sig->sigAlg != TPM2_ALG_ECDSA) {
		Esys_Free(sig);
		return FAIL(ATT_E_IO, "TPM2_Sign: unexpected signature algorithm");
	}
	r = BN_bin2bn(sig->signature.ecdsa.signatureR.buffer, sig->signature.ecdsa.signatureR.size, NULL);
	s = BN_bin2bn(sig->signature.ecdsa.signatureS.buffer, sig->signature.ecdsa.signatureS.size, NULL);
	Esys_Free(sig);
	es = ECDSA_SIG_new();
	if (r && s && es && ECDSA_SIG_set0(es, r, s)) {
		r = s = NULL;
		n = i2d_ECDSA_SIG(es, &der);
		ret = n > 0 ? copy_out(der, (size_t)n, ret_der, ret_len) : ATT_E_CRYPTO;
		OPENSSL_free(der);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ret;
}
