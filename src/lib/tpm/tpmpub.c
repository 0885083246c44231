/* tpmpub.c - TPM2B_PUBLIC parsing, Names, EK templates, key checks. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <tss2/tss2_mu.h>

#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

void att_tpm_pub_release(struct att_tpm_pub *p)
{
	EVP_PKEY_free(p->pkey);
	memset(p, 0, sizeof(*p));
}

/* Explicitly fetched once: OpenSSL 3 looks implicit digests (EVP_sha256())
 * up in its method store on every use, which shows in per-quote costs. */
static EVP_MD *mds[4];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void)
{
	mds[0] = EVP_MD_fetch(NULL, "SHA1", NULL);
	mds[1] = EVP_MD_fetch(NULL, "SHA256", NULL);
	mds[2] = EVP_MD_fetch(NULL, "SHA384", NULL);
	mds[3] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

const EVP_MD *att_tpm_md(uint16_t alg)
{
	int i;

	switch (alg) {
	case ATT_TPM_ALG_SHA1: i = 0; break;
	case ATT_TPM_ALG_SHA256: i = 1; break;
	case ATT_TPM_ALG_SHA384: i = 2; break;
	case ATT_TPM_ALG_SHA512: i = 3; break;
	default: return NULL;
	}
	pthread_once(&mds_once, fetch_mds);
	return mds[i];
}

static const struct {
	uint16_t alg;
	const char *name;
} banks[] = {
	{ ATT_TPM_ALG_SHA1, "sha1" },
	{ ATT_TPM_ALG_SHA256, "sha256" },
	{ ATT_TPM_ALG_SHA384, "sha384" },
	{ ATT_TPM_ALG_SHA512, "sha512" },
};

const char *att_tpm_bank_name(uint16_t alg)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(banks); i++)
		if (banks[i].alg == alg)
			return banks[i].name;
	return NULL;
}

uint16_t att_tpm_bank_alg(const char *name, size_t len)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(banks); i++)
		if (strlen(banks[i].name) == len && memcmp(banks[i].name, name, len) == 0)
			return banks[i].alg;
	return 0;
}

static bool sha2(uint16_t alg)
{
	return alg == ATT_TPM_ALG_SHA256 || alg == ATT_TPM_ALG_SHA384 || alg == ATT_TPM_ALG_SHA512;
}

static const struct {
	uint16_t id;
	const char *group;
	int bytes;
} curves[] = {
	{ 0x0003, "prime256v1", 32 },
	{ 0x0004, "secp384r1", 48 },
	{ 0x0005, "secp521r1", 66 },
};

static int key_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	int r = ATT_E_CRYPTO;

	*ret = NULL;
	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) == 1)
		r = 0;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

static int rsa_key(const TPMT_PUBLIC *t, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_bin2bn(t->unique.rsa.buffer, t->unique.rsa.size, NULL);
	BIGNUM *e = BN_new();
	int r = ATT_E_CRYPTO;

	if (bld && n && e && BN_set_word(e, t->parameters.rsaDetail.exponent ? t->parameters.rsaDetail.exponent : 65537) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		r = key_from_params("RSA", bld, ret);
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

static int ecc_key(const char *group, int c, const TPMT_PUBLIC *t, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	uint8_t pt[1 + 2 * 66];
	const TPMS_ECC_POINT *q = &t->unique.ecc;
	int r = ATT_E_CRYPTO;

	memset(pt, 0, sizeof(pt));
	pt[0] = 0x04;
	memcpy(pt + 1 + (c - q->x.size), q->x.buffer, q->x.size);
	memcpy(pt + 1 + c + (c - q->y.size), q->y.buffer, q->y.size);
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, (size_t)(1 + 2 * c)))
		r = key_from_params("EC", bld, ret);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* Symmetric and scheme parameters: RSA and ECC areas share their shape. */
static void take_params(struct att_tpm_pub *p, const TPMT_SYM_DEF_OBJECT *sym, uint16_t scheme, uint16_t hash)
{
	p->sym_alg = sym->algorithm;
	if (p->sym_alg != ATT_TPM_ALG_NULL) {
		p->sym_bits = sym->keyBits.sym;
		p->sym_mode = sym->mode.sym;
	}
	p->scheme = scheme;
	if (scheme != ATT_TPM_ALG_NULL)
		p->scheme_hash = hash;
}

int att_tpm_pub_parse(const uint8_t *buf, size_t len, struct att_tpm_pub *ret, char *reterr,
		      size_t errlen)
{
	TPM2B_PUBLIC pub;
	const TPMT_PUBLIC *t = &pub.publicArea;
	struct att_tpm_pub p;
	const EVP_MD *md;
	unsigned int hl;
	size_t off = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	memset(&p, 0, sizeof(p));
	memset(&pub, 0, sizeof(pub));
	if (len < 2 || len > ATT_TPM_MAX_PUBLIC)
		return ERR("TPM2B_PUBLIC: %zu bytes is not a plausible public area", len);
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub) != TSS2_RC_SUCCESS)
		return ERR("TPM2B_PUBLIC: truncated or malformed public area");
	if (off != len || (size_t)pub.size + 2 != len)
		return ERR("TPM2B_PUBLIC: size field says %u bytes, structure has %zu, %zu bytes given",
			   pub.size, off - 2, len - 2);
	p.type = t->type;
	p.name_alg = t->nameAlg;
	p.attrs = t->objectAttributes;
	md = att_tpm_md(p.name_alg);
	if (!md || !sha2(p.name_alg))
		return ERR("TPM2B_PUBLIC: name algorithm 0x%04x is not SHA-256/384/512", p.name_alg);
	if (p.type == ATT_TPM_ALG_RSA) {
		const TPMS_RSA_PARMS *rp = &t->parameters.rsaDetail;

		take_params(&p, &rp->symmetric, rp->scheme.scheme, rp->scheme.details.anySig.hashAlg);
		p.key_bits = rp->keyBits;
		if (p.key_bits != 2048 && p.key_bits != 3072 && p.key_bits != 4096)
			return ERR("TPM2B_PUBLIC: RSA key size %d is not 2048, 3072 or 4096", p.key_bits);
		if (t->unique.rsa.size * 8 != p.key_bits)
			return ERR("TPM2B_PUBLIC: RSA modulus of %u bytes for a %d-bit key", t->unique.rsa.size,
				   p.key_bits);
		if ((t->unique.rsa.buffer[0] & 0x80) == 0)
			return ERR("TPM2B_PUBLIC: RSA modulus is shorter than its key size");
		r = rsa_key(t, &p.pkey);
	} else if (p.type == ATT_TPM_ALG_ECC) {
		const TPMS_ECC_PARMS *ep = &t->parameters.eccDetail;
		size_t i;

		take_params(&p, &ep->symmetric, ep->scheme.scheme, ep->scheme.details.anySig.hashAlg);
		p.curve = ep->curveID;
		for (i = 0; i < ATT_ARRAY_SIZE(curves) && curves[i].id != p.curve; i++)
			;
		if (i == ATT_ARRAY_SIZE(curves))
			return ERR("TPM2B_PUBLIC: ECC curve 0x%04x is not NIST P-256/384/521", p.curve);
		p.key_bits = curves[i].bytes == 66 ? 521 : curves[i].bytes * 8;
		if (t->unique.ecc.x.size == 0 || t->unique.ecc.x.size > curves[i].bytes ||
		    t->unique.ecc.y.size == 0 || t->unique.ecc.y.size > curves[i].bytes)
			return ERR("TPM2B_PUBLIC: ECC point coordinates do not fit the curve");
		r = ecc_key(curves[i].group, curves[i].bytes, t, &p.pkey);
		if (r < 0)
			return ERR("TPM2B_PUBLIC: ECC point is not on the curve");
	} else {
		return ERR("TPM2B_PUBLIC: key type 0x%04x is not RSA or ECC", p.type);
	}
	if (r < 0 || !p.pkey)
		return ERR("TPM2B_PUBLIC: the public key is not usable");
	p.name[0] = (uint8_t)(p.name_alg >> 8);
	p.name[1] = (uint8_t)p.name_alg;
	if (EVP_Digest(buf + 2, len - 2, p.name + 2, &hl, md, NULL) != 1) {
		att_tpm_pub_release(&p);
		return ATT_E_CRYPTO;
	}
	p.name_len = 2 + hl;
	*ret = p;
	return 0;
}

#define PUB_CACHE_SLOTS 4096

static struct {
	bool used;
	uint8_t key[SHA256_DIGEST_LENGTH];
	struct att_tpm_pub pub;
} pub_cache[PUB_CACHE_SLOTS];
static pthread_mutex_t pub_cache_lock = PTHREAD_MUTEX_INITIALIZER;

int att_tpm_pub_parse_cached(const uint8_t *buf, size_t len, struct att_tpm_pub *ret, char *reterr,
			     size_t errlen)
{
	uint8_t key[SHA256_DIGEST_LENGTH];
	size_t slot;
	struct att_tpm_pub p, old;
	int r;

	SHA256(buf, len, key);
	slot = ((size_t)key[0] << 8 | key[1]) % PUB_CACHE_SLOTS;
	pthread_mutex_lock(&pub_cache_lock);
	if (pub_cache[slot].used && memcmp(pub_cache[slot].key, key, sizeof(key)) == 0 &&
	    EVP_PKEY_up_ref(pub_cache[slot].pub.pkey) == 1) {
		*ret = pub_cache[slot].pub;
		pthread_mutex_unlock(&pub_cache_lock);
		return 0;
	}
	pthread_mutex_unlock(&pub_cache_lock);
	r = att_tpm_pub_parse(buf, len, ret, reterr, errlen);
	if (r < 0)
		return r;
	p = *ret;
	if (EVP_PKEY_up_ref(p.pkey) != 1)
		return 0;
	memset(&old, 0, sizeof(old));
	pthread_mutex_lock(&pub_cache_lock);
	if (pub_cache[slot].used)
		old = pub_cache[slot].pub;
	pub_cache[slot].used = true;
	memcpy(pub_cache[slot].key, key, sizeof(key));
	pub_cache[slot].pub = p;
	pthread_mutex_unlock(&pub_cache_lock);
	EVP_PKEY_free(old.pkey);
	return 0;
}

int att_tpm_pub_ek_template(EVP_PKEY *key, struct att_tpm_pub *ret, char *reterr, size_t errlen)
{
	struct att_tpm_pub p;
	char group[64];
	size_t gl;

	memset(ret, 0, sizeof(*ret));
	memset(&p, 0, sizeof(p));
	p.sym_alg = ATT_TPM_ALG_AES;
	p.sym_mode = ATT_TPM_ALG_CFB;
	p.scheme = ATT_TPM_ALG_NULL;
	p.attrs = ATT_TPMA_FIXEDTPM | ATT_TPMA_FIXEDPARENT | ATT_TPMA_SENSITIVEDATAORIGIN |
		  ATT_TPMA_ADMINWITHPOLICY | ATT_TPMA_RESTRICTED | ATT_TPMA_DECRYPT;
	p.key_bits = EVP_PKEY_get_bits(key);
	if (EVP_PKEY_is_a(key, "RSA")) {
		p.type = ATT_TPM_ALG_RSA;
		if (p.key_bits == 2048) {
			p.name_alg = ATT_TPM_ALG_SHA256;
			p.sym_bits = 128;
		} else if (p.key_bits == 3072 || p.key_bits == 4096) {
			p.name_alg = ATT_TPM_ALG_SHA384;
			p.sym_bits = 256;
			p.attrs |= ATT_TPMA_USERWITHAUTH;
		} else {
			return ERR("no TCG EK template for an RSA-%d key", p.key_bits);
		}
	} else if (EVP_PKEY_is_a(key, "EC") &&
		   EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) == 1) {
		p.type = ATT_TPM_ALG_ECC;
		if (strcmp(group, "prime256v1") == 0) {
			p.name_alg = ATT_TPM_ALG_SHA256;
			p.sym_bits = 128;
			p.curve = 0x0003;
		} else if (strcmp(group, "secp384r1") == 0) {
			p.name_alg = ATT_TPM_ALG_SHA384;
			p.sym_bits = 256;
			p.curve = 0x0004;
			p.attrs |= ATT_TPMA_USERWITHAUTH;
		} else if (strcmp(group, "secp521r1") == 0) {
			p.name_alg = ATT_TPM_ALG_SHA512;
			p.sym_bits = 256;
			p.curve = 0x0005;
			p.attrs |= ATT_TPMA_USERWITHAUTH;
		} else {
			return ERR("no TCG EK template for curve %s", group);
		}
	} else {
		return ERR("no TCG EK template for this key type");
	}
	if (EVP_PKEY_up_ref(key) != 1)
		return ATT_E_CRYPTO;
	p.pkey = key;
	*ret = p;
	return 0;
}

int att_tpm_pub_check_ak(const struct att_tpm_pub *p, char *reterr, size_t errlen)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} need[] = {
		{ ATT_TPMA_RESTRICTED, "restricted" },
		{ ATT_TPMA_SIGN, "sign" },
		{ ATT_TPMA_FIXEDTPM, "fixedTPM" },
		{ ATT_TPMA_FIXEDPARENT, "fixedParent" },
		{ ATT_TPMA_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
	};

	for (size_t i = 0; i < ATT_ARRAY_SIZE(need); i++)
		if (!(p->attrs & need[i].bit))
			return ERR("AK attributes 0x%08x lack '%s': an attestation key must be a restricted signing key created in the TPM",
				   p->attrs, need[i].name);
	if (p->attrs & ATT_TPMA_DECRYPT)
		return ERR("AK attributes 0x%08x include 'decrypt': an attestation key must not be a decryption key", p->attrs);
	if (p->type == ATT_TPM_ALG_RSA && p->scheme != ATT_TPM_ALG_RSASSA && p->scheme != ATT_TPM_ALG_RSAPSS)
		return ERR("AK scheme 0x%04x: an RSA AK must have a fixed RSASSA or RSAPSS scheme", p->scheme);
	if (p->type == ATT_TPM_ALG_ECC && p->scheme != ATT_TPM_ALG_ECDSA)
		return ERR("AK scheme 0x%04x: an ECC AK must have a fixed ECDSA scheme", p->scheme);
	if (!sha2(p->scheme_hash))
		return ERR("AK scheme hash 0x%04x is not SHA-256/384/512", p->scheme_hash);
	return 0;
}

int att_tpm_pub_check_ek(const struct att_tpm_pub *p, char *reterr, size_t errlen)
{
	if ((p->attrs & (ATT_TPMA_RESTRICTED | ATT_TPMA_DECRYPT | ATT_TPMA_FIXEDTPM | ATT_TPMA_FIXEDPARENT)) !=
	    (ATT_TPMA_RESTRICTED | ATT_TPMA_DECRYPT | ATT_TPMA_FIXEDTPM | ATT_TPMA_FIXEDPARENT) ||
	    (p->attrs & ATT_TPMA_SIGN))
		return ERR("EK attributes 0x%08x: an endorsement key is a restricted decryption key fixed to its TPM",
			   p->attrs);
	if (p->sym_alg != ATT_TPM_ALG_AES || p->sym_mode != ATT_TPM_ALG_CFB ||
	    (p->sym_bits != 128 && p->sym_bits != 256))
		return ERR("EK symmetric parameters (0x%04x, %u bits, mode 0x%04x) are not AES-128/256-CFB",
			   p->sym_alg, p->sym_bits, p->sym_mode);
	if (!sha2(p->name_alg))
		return ERR("EK name algorithm 0x%04x is not SHA-256/384/512", p->name_alg);
	return 0;
}

bool att_tpm_pub_same_key(const struct att_tpm_pub *p, EVP_PKEY *key)
{
	return p->pkey && key && EVP_PKEY_eq(p->pkey, key) == 1;
}
