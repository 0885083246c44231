/* certify.c - TPM2_Certify of a machine's client key by its bound AK:
 * the TPMS_ATTEST (type TPM_ST_ATTEST_CERTIFY) names the certified
 * object, carries the server nonce as extraData and is signed by the AK.
 * With the key's TPM2B_PUBLIC (whose Name must be the certified one) this
 * proves the key lives in the same TPM as the AK, with the attributes the
 * public area states. */
#include <stdio.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"
#include "tpm/attest-internal.h"

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)


int att_tpm_certify_parse(const uint8_t *attest, size_t len, struct att_tpm_certify *ret, char *reterr,
			  size_t errlen)
{
	TPMS_ATTEST a;

	memset(ret, 0, sizeof(*ret));
	if (att_tpm_attest_open(attest, len, ATT_TPM_ST_ATTEST_CERTIFY, "TPM_ST_ATTEST_CERTIFY", "certify_info", &a,
				ret->extra, sizeof(ret->extra), &ret->extra_len, reterr, errlen) < 0)
		return ATT_E_INVAL;
	if (a.attested.certify.name.size > sizeof(ret->name))
		return ERR("certify_info: certified Name of %u bytes is too long", a.attested.certify.name.size);
	memcpy(ret->name, a.attested.certify.name.name, a.attested.certify.name.size);
	ret->name_len = a.attested.certify.name.size;
	return 0;
}

int att_tpm_pub_check_client_key(const struct att_tpm_pub *p, char *reterr, size_t errlen)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} need[] = {
		{ ATT_TPMA_SIGN, "sign" },
		{ ATT_TPMA_FIXEDTPM, "fixedTPM" },
		{ ATT_TPMA_FIXEDPARENT, "fixedParent" },
		{ ATT_TPMA_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
	};

	for (size_t i = 0; i < ATT_ARRAY_SIZE(need); i++)
		if (!(p->attrs & need[i].bit))
			return ERR("tpm_key_public: attributes 0x%08x lack '%s': the key must be a signing key generated in and fixed to the TPM",
				   p->attrs, need[i].name);
	if (p->attrs & ATT_TPMA_DECRYPT)
		return ERR("tpm_key_public: attributes 0x%08x include 'decrypt': a client certificate key must be a signing-only key",
			   p->attrs);
	return 0;
}

int att_tpm_certify_check(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen, const uint8_t *sig,
			  size_t slen, const uint8_t *nonce, size_t nonce_len, const struct att_tpm_pub *key,
			  char *reterr, size_t errlen)
{
	struct att_tpm_certify c;
	uint16_t hash;
	int r;

	r = att_tpm_certify_parse(attest, alen, &c, reterr, errlen);
	if (r < 0)
		return r;
	r = att_tpm_quote_verify_sig(ak, attest, alen, sig, slen, &hash, reterr, errlen);
	if (r < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", reterr);
		return ERR("certify_signature: %s", why);
	}
	if (!nonce || !att_ct_equal(c.extra, c.extra_len, nonce, nonce_len))
		return ERR("certify_info: extraData is not the challenge nonce — stale or replayed certification");
	if (c.name_len != key->name_len || !att_ct_equal(c.name, c.name_len, key->name, key->name_len))
		return ERR("certify_info: the certified object is not the key in tpm_key_public");
	return 0;
}
