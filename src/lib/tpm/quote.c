/* quote.c - TPM2_Quote verification (tpm.md 2.6-2.8).
 *
 * Order of checks: structure, signature by the bound AK with the AK's
 * own scheme over the raw TPMS_ATTEST bytes, magic and type, extraData
 * equals the server nonce, pcrDigest equals the hash (signature hash) of
 * the reported PCR values in selection order. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "base/err.h"
#include "base/text.h"
#include "base/util.h"
#include "tpm/tpm.h"
#include "tpm/attest-internal.h"

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)
/* a client's key in a message: at most 32 bytes, never half a character */
#define KEY32(k) (int)att_utf8_cut((k), 32), (k)

#define TPM_GENERATED 0xff544347u

int att_tpm_pcrs_add(struct att_tpm_pcrs *p, const char *key, const char *hex, char *reterr,
		     size_t errlen)
{
	const char *colon = strchr(key, ':');
	uint16_t bank;
	uint64_t idx;
	size_t hl = strlen(hex), dl;
	const EVP_MD *md;

	if (!colon || !(bank = att_tpm_bank_alg(key, (size_t)(colon - key))))
		return ERR("pcr_values: key '%.*s' is not <bank>:<index> with bank sha1, sha256, sha384 or sha512", KEY32(key));
	if (att_parse_u64(colon + 1, strlen(colon + 1), 0, ATT_TPM_NUM_PCRS - 1, &idx) < 0)
		return ERR("pcr_values: '%.*s': PCR index must be 0..23", KEY32(key));
	md = att_tpm_md(bank);
	dl = (size_t)EVP_MD_get_size(md);
	if (hl != 2 * dl || !att_is_hex(hex, hl))
		return ERR("pcr_values: '%.*s' must be %zu hex characters", KEY32(key), 2 * dl);
	if (att_tpm_pcrs_find(p, bank, (unsigned)idx, NULL))
		return ERR("pcr_values: '%.*s' is given twice", KEY32(key));
	if (p->n >= ATT_ARRAY_SIZE(p->v))
		return ERR("pcr_values: too many values");
	p->v[p->n].bank = bank;
	p->v[p->n].index = (uint8_t)idx;
	p->v[p->n].len = (uint8_t)dl;
	(void)att_hex_decode(hex, hl, p->v[p->n].value);
	p->n++;
	return 0;
}

const uint8_t *att_tpm_pcrs_find(const struct att_tpm_pcrs *p, uint16_t bank, unsigned index,
				 size_t *ret_len)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].bank == bank && p->v[i].index == index) {
			if (ret_len)
				*ret_len = p->v[i].len;
			return p->v[i].value;
		}
	return NULL;
}

int att_tpm_attest_open(const uint8_t *attest, size_t len, uint16_t type, const char *type_name, const char *what,
			TPMS_ATTEST *a, uint8_t *extra, size_t extra_cap, size_t *extra_len, char *reterr,
			size_t errlen)
{
	size_t off = 0;

	memset(a, 0, sizeof(*a));
	if (len < 6 || len > 4096)
		return ERR("%s: %zu bytes is not a TPMS_ATTEST", what, len);
	/* magic and type first: the unmarshaller's union depends on type */
	if (((uint32_t)attest[0] << 24 | (uint32_t)attest[1] << 16 | (uint32_t)attest[2] << 8 | attest[3]) != TPM_GENERATED)
		return ERR("%s: magic is not TPM_GENERATED_VALUE — not produced by a TPM", what);
	if (((uint16_t)(attest[4] << 8) | attest[5]) != type)
		return ERR("%s: attestation type 0x%02x%02x is not %s", what, attest[4], attest[5], type_name);
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, len, &off, a) != TSS2_RC_SUCCESS)
		return ERR("%s: truncated or malformed TPMS_ATTEST", what);
	if (off != len)
		return ERR("%s: %zu trailing bytes after the TPMS_ATTEST", what, len - off);
	if (a->extraData.size > extra_cap)
		return ERR("%s: extraData of %u bytes is too long", what, a->extraData.size);
	memcpy(extra, a->extraData.buffer, a->extraData.size);
	*extra_len = a->extraData.size;
	return 0;
}

int att_tpm_quote_parse(const uint8_t *attest, size_t len, struct att_tpm_quote *ret, char *reterr,
			size_t errlen)
{
	TPMS_ATTEST a;

	memset(ret, 0, sizeof(*ret));
	if (att_tpm_attest_open(attest, len, ATT_TPM_ST_ATTEST_QUOTE, "TPM_ST_ATTEST_QUOTE", "quote", &a, ret->extra,
				sizeof(ret->extra), &ret->extra_len, reterr, errlen) < 0)
		return ATT_E_INVAL;
	ret->clock = a.clockInfo.clock;
	ret->reset_count = a.clockInfo.resetCount;
	ret->restart_count = a.clockInfo.restartCount;
	ret->safe = a.clockInfo.safe != 0;
	ret->firmware = a.firmwareVersion;
	if (a.attested.quote.pcrSelect.count > ATT_ARRAY_SIZE(ret->sel))
		return ERR("quote: too many PCR selections");
	for (uint32_t i = 0; i < a.attested.quote.pcrSelect.count; i++) {
		const TPMS_PCR_SELECTION *s = &a.attested.quote.pcrSelect.pcrSelections[i];
		uint32_t mask = 0;

		if (!att_tpm_bank_name(s->hash))
			return ERR("quote: PCR bank 0x%04x is not sha1/sha256/sha384/sha512", s->hash);
		if (s->sizeofSelect > 4)
			return ERR("quote: PCR selection of %u bytes", s->sizeofSelect);
		for (unsigned b = 0; b < s->sizeofSelect; b++)
			mask |= (uint32_t)s->pcrSelect[b] << (8 * b);
		if (mask >> ATT_TPM_NUM_PCRS)
			return ERR("quote: PCR index beyond %d selected", ATT_TPM_NUM_PCRS - 1);
		for (uint32_t j = 0; j < i; j++)
			if (ret->sel[j].bank == s->hash)
				return ERR("quote: bank %s selected twice", att_tpm_bank_name(s->hash));
		ret->sel[i].bank = s->hash;
		ret->sel[i].mask = mask;
	}
	ret->n_sel = a.attested.quote.pcrSelect.count;
	if (a.attested.quote.pcrDigest.size > sizeof(ret->pcr_digest))
		return ERR("quote: pcrDigest too long");
	memcpy(ret->pcr_digest, a.attested.quote.pcrDigest.buffer, a.attested.quote.pcrDigest.size);
	ret->pcr_digest_len = a.attested.quote.pcrDigest.size;
	return 0;
}

static int verify_rsa(EVP_PKEY *k, bool pss, const EVP_MD *md, const uint8_t *dg, size_t dl,
		      const uint8_t *sig, size_t slen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	int ok = 0;

	/* all parameters in one call: each ctrl would re-resolve the provider */
	OSSL_PARAM p[5], *q = p;
	const char *mdname = EVP_MD_get0_name(md);

	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
						(char *)(pss ? OSSL_PKEY_RSA_PAD_MODE_PSS : OSSL_PKEY_RSA_PAD_MODE_PKCSV15), 0);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)mdname, 0);
	if (pss) {
		*q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
							(char *)OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO, 0);
		*q++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, (char *)mdname, 0);
	}
	*q = OSSL_PARAM_construct_end();
	if (ctx && EVP_PKEY_verify_init_ex(ctx, p) == 1)
		ok = EVP_PKEY_verify(ctx, sig, slen, dg, dl) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int verify_ecdsa_der(EVP_PKEY *k, const uint8_t *dg, size_t dl, const uint8_t *der, size_t dlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	int ok = 0;

	if (ctx && EVP_PKEY_verify_init(ctx) == 1)
		ok = EVP_PKEY_verify(ctx, der, dlen, dg, dl) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* r and s from a TPMT_SIGNATURE to DER. */
static int ecdsa_to_der(const TPMS_SIGNATURE_ECC *e, uint8_t **ret, size_t *ret_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	BIGNUM *ss = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	unsigned char *der = NULL;
	int n;

	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return ATT_E_CRYPTO;
	}
	n = i2d_ECDSA_SIG(s, &der);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return ATT_E_CRYPTO;
	*ret = der;
	*ret_len = (size_t)n;
	return 0;
}

int att_tpm_quote_verify_sig(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen,
			     const uint8_t *sig, size_t slen, uint16_t *ret_hash, char *reterr,
			     size_t errlen)
{
	TPMT_SIGNATURE ts;
	size_t off = 0;
	uint16_t alg, hash;
	const EVP_MD *md;
	uint8_t dg[EVP_MAX_MD_SIZE];
	unsigned int dl;
	int ok = 0;

	memset(&ts, 0, sizeof(ts));
	if (slen == 0 || slen > 2048)
		return ERR("signature: %zu bytes is not a signature", slen);
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, slen, &off, &ts) == TSS2_RC_SUCCESS && off == slen) {
		alg = ts.sigAlg;
		hash = ts.signature.any.hashAlg;
	} else if (sig[0] == 0x30 && ak->type == ATT_TPM_ALG_ECC) {
		alg = 0;	/* reference form: DER ECDSA */
		hash = ak->scheme_hash;
	} else if (ak->type == ATT_TPM_ALG_RSA && slen * 8 == (size_t)ak->key_bits) {
		alg = 0;	/* reference form: bare RSA signature */
		hash = ak->scheme_hash;
	} else {
		return ERR("signature: neither a TPMT_SIGNATURE nor a raw signature for this AK");
	}
	if (alg && (alg != ak->scheme || hash != ak->scheme_hash))
		return ERR("signature: scheme 0x%04x/hash 0x%04x is not the AK's scheme 0x%04x/0x%04x",
			   alg, hash, ak->scheme, ak->scheme_hash);
	md = att_tpm_md(hash);
	if (!md || hash == ATT_TPM_ALG_SHA1)
		return ERR("signature: hash 0x%04x is not allowed", hash);
	if (EVP_Digest(attest, alen, dg, &dl, md, NULL) != 1)
		return ATT_E_CRYPTO;
	if (ak->type == ATT_TPM_ALG_RSA) {
		const uint8_t *s = alg ? ts.signature.rsassa.sig.buffer : sig;
		size_t sl = alg ? ts.signature.rsassa.sig.size : slen;

		ok = verify_rsa(ak->pkey, ak->scheme == ATT_TPM_ALG_RSAPSS, md, dg, dl, s, sl);
	} else if (alg) {
		uint8_t *der = NULL;
		size_t derlen = 0;

		if (ecdsa_to_der(&ts.signature.ecdsa, &der, &derlen) < 0)
			return ERR("signature: malformed ECDSA signature");
		ok = verify_ecdsa_der(ak->pkey, dg, dl, der, derlen);
		OPENSSL_free(der);
	} else {
		ok = verify_ecdsa_der(ak->pkey, dg, dl, sig, slen);
	}
	if (!ok)
		return ERR("signature: does not verify with the machine's attestation key");
	if (ret_hash)
		*ret_hash = hash;
	return 0;
}

int att_tpm_quote_check(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen,
			const uint8_t *sig, size_t slen, const uint8_t *nonce, size_t nonce_len,
			const struct att_tpm_pcrs *pcrs, struct att_tpm_quote *ret, char *reterr,
			size_t errlen)
{
	struct att_tpm_quote q;
	bool used[ATT_ARRAY_SIZE(pcrs->v)];
	EVP_MD_CTX *mctx = NULL;
	uint8_t dg[EVP_MAX_MD_SIZE];
	unsigned int dl;
	int r;

	r = att_tpm_quote_parse(attest, alen, &q, reterr, errlen);
	if (r < 0)
		return r;
	r = att_tpm_quote_verify_sig(ak, attest, alen, sig, slen, &q.sig_hash, reterr, errlen);
	if (r < 0)
		return r;
	if (!nonce || !att_ct_equal(q.extra, q.extra_len, nonce, nonce_len))
		return ERR("quote: extraData is not the challenge nonce — stale or replayed quote");
	memset(used, 0, sizeof(used));
	mctx = EVP_MD_CTX_new();
	if (!mctx || EVP_DigestInit_ex(mctx, att_tpm_md(q.sig_hash), NULL) != 1) {
		EVP_MD_CTX_free(mctx);
		return ATT_E_CRYPTO;
	}
	for (size_t i = 0; i < q.n_sel; i++) {
		for (unsigned idx = 0; idx < ATT_TPM_NUM_PCRS; idx++) {
			size_t k;

			if (!(q.sel[i].mask & (1u << idx)))
				continue;
			for (k = 0; k < pcrs->n && !(pcrs->v[k].bank == q.sel[i].bank && pcrs->v[k].index == idx); k++)
				;
			if (k == pcrs->n) {
				EVP_MD_CTX_free(mctx);
				return ERR("pcr_values: PCR %s:%u is in the quote but its value was not reported",
					   att_tpm_bank_name(q.sel[i].bank), idx);
			}
			used[k] = true;
			EVP_DigestUpdate(mctx, pcrs->v[k].value, pcrs->v[k].len);
		}
	}
	r = EVP_DigestFinal_ex(mctx, dg, &dl);
	EVP_MD_CTX_free(mctx);
	if (r != 1)
		return ATT_E_CRYPTO;
	for (size_t k = 0; k < pcrs->n; k++)
		if (!used[k])
			return ERR("pcr_values: PCR %s:%u was reported but is not in the quote",
				   att_tpm_bank_name(pcrs->v[k].bank), pcrs->v[k].index);
	if (!att_ct_equal(dg, dl, q.pcr_digest, q.pcr_digest_len))
		return ERR("quote: pcrDigest does not match the reported PCR values");
	if (ret)
		*ret = q;
	return 0;
}
