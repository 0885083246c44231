#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "softquote.h"
#include "tpm/tpm.h"

int softak_new(struct softak *ak, const char *kind, uint32_t attrs)
{
	TPM2B_PUBLIC p;
	TPMT_PUBLIC *t = &p.publicArea;
	size_t off = 0;

	memset(ak, 0, sizeof(*ak));
	memset(&p, 0, sizeof(p));
	t->nameAlg = ATT_TPM_ALG_SHA256;
	t->objectAttributes = attrs ? attrs : 0x00050072;
	if (strcmp(kind, "ecc") == 0) {
		BIGNUM *x = NULL, *y = NULL;

		ak->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		ak->scheme = ATT_TPM_ALG_ECDSA;
		t->type = ATT_TPM_ALG_ECC;
		t->parameters.eccDetail.symmetric.algorithm = ATT_TPM_ALG_NULL;
		t->parameters.eccDetail.scheme.scheme = ATT_TPM_ALG_ECDSA;
		t->parameters.eccDetail.scheme.details.ecdsa.hashAlg = ATT_TPM_ALG_SHA256;
		t->parameters.eccDetail.curveID = 0x0003;
		t->parameters.eccDetail.kdf.scheme = ATT_TPM_ALG_NULL;
		if (!ak->key || EVP_PKEY_get_bn_param(ak->key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
		    EVP_PKEY_get_bn_param(ak->key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1)
			return -1;
		t->unique.ecc.x.size = 32;
		t->unique.ecc.y.size = 32;
		BN_bn2binpad(x, t->unique.ecc.x.buffer, 32);
		BN_bn2binpad(y, t->unique.ecc.y.buffer, 32);
		BN_free(x);
		BN_free(y);
	} else {
		BIGNUM *n = NULL;

		ak->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		ak->scheme = strcmp(kind, "rsapss") == 0 ? ATT_TPM_ALG_RSAPSS : ATT_TPM_ALG_RSASSA;
		t->type = ATT_TPM_ALG_RSA;
		t->parameters.rsaDetail.symmetric.algorithm = ATT_TPM_ALG_NULL;
		t->parameters.rsaDetail.scheme.scheme = ak->scheme;
		t->parameters.rsaDetail.scheme.details.anySig.hashAlg = ATT_TPM_ALG_SHA256;
		t->parameters.rsaDetail.keyBits = 2048;
		if (!ak->key || EVP_PKEY_get_bn_param(ak->key, OSSL_PKEY_PARAM_RSA_N, &n) != 1)
			return -1;
		t->unique.rsa.size = 256;
		BN_bn2binpad(n, t->unique.rsa.buffer, 256);
		BN_free(n);
	}
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&p, ak->pub, sizeof(ak->pub), &off) != TSS2_RC_SUCCESS)
		return -1;
	ak->pub_len = off;
	return 0;
}

void softak_free(struct softak *ak)
{
	EVP_PKEY_free(ak->key);
	memset(ak, 0, sizeof(*ak));
}

int softquote_make(const struct softak *ak, const uint8_t *nonce, size_t nonce_len,
		   const uint8_t (*pcr)[32], unsigned n, uint16_t sig_hash, uint8_t *attest,
		   size_t *attest_len, uint8_t *sig, size_t *sig_len)
{
	TPMS_ATTEST a;
	TPMT_SIGNATURE ts;
	const EVP_MD *md = att_tpm_md(sig_hash);
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t dg[64], raw[512];
	unsigned int dl;
	size_t off = 0, rl = sizeof(raw);
	int rc = -1;

	memset(&a, 0, sizeof(a));
	memset(&ts, 0, sizeof(ts));
	a.magic = 0xff544347;
	a.type = 0x8018;
	a.qualifiedSigner.size = 34;
	a.extraData.size = (UINT16)nonce_len;
	memcpy(a.extraData.buffer, nonce, nonce_len);
	a.clockInfo.clock = 123456;
	a.clockInfo.resetCount = 3;
	a.clockInfo.restartCount = 1;
	a.clockInfo.safe = 1;
	a.firmwareVersion = 0x2019102300163636ull;
	a.attested.quote.pcrSelect.count = 1;
	a.attested.quote.pcrSelect.pcrSelections[0].hash = ATT_TPM_ALG_SHA256;
	a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
	EVP_DigestInit_ex(mctx, md, NULL);
	for (unsigned i = 0; i < n; i++) {
		a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
		EVP_DigestUpdate(mctx, pcr[i], 32);
	}
	EVP_DigestFinal_ex(mctx, a.attested.quote.pcrDigest.buffer, &dl);
	a.attested.quote.pcrDigest.size = (UINT16)dl;
	if (Tss2_MU_TPMS_ATTEST_Marshal(&a, attest, 2048, &off) != TSS2_RC_SUCCESS)
		goto out;
	*attest_len = off;
	EVP_Digest(attest, off, dg, &dl, md, NULL);
	ctx = EVP_PKEY_CTX_new(ak->key, NULL);
	if (!ctx || EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		goto out;
	if (ak->scheme == ATT_TPM_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_PKEY_sign(ctx, raw, &rl, dg, dl) != 1)
		goto out;
	ts.sigAlg = ak->scheme;
	if (ak->scheme == ATT_TPM_ALG_ECDSA) {
		const unsigned char *q = raw;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)rl);
		const BIGNUM *r, *s;

		if (!es)
			goto out;
		ECDSA_SIG_get0(es, &r, &s);
		ts.signature.ecdsa.hash = sig_hash;
		ts.signature.ecdsa.signatureR.size = 32;
		ts.signature.ecdsa.signatureS.size = 32;
		BN_bn2binpad(r, ts.signature.ecdsa.signatureR.buffer, 32);
		BN_bn2binpad(s, ts.signature.ecdsa.signatureS.buffer, 32);
		ECDSA_SIG_free(es);
	} else {
		ts.signature.rsassa.hash = sig_hash;
		ts.signature.rsassa.sig.size = (UINT16)rl;
		memcpy(ts.signature.rsassa.sig.buffer, raw, rl);
	}
	off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, sig, 1024, &off) != TSS2_RC_SUCCESS)
		goto out;
	*sig_len = off;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_MD_CTX_free(mctx);
	return rc;
}
