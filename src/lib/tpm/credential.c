/* credential.c - KDFa/KDFe and TPM2_MakeCredential in software
 * (tpm.md 2.3-2.5).  The hash is always the EK's nameAlg and the AES key
 * size the EK's symmetric keyBits: the AK Name's algorithm or a fixed
 * AES-128 make ActivateCredential fail on high-range EKs. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"

#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Shared counter loop: K_i = F(BE32(i) || pre || label\0 || u || v || post). */
static int kdf(bool hmac, const EVP_MD *md, const uint8_t *key, size_t keylen, const uint8_t *pre,
	       size_t prelen, const char *label, const uint8_t *u, size_t ulen, const uint8_t *v,
	       size_t vlen, uint32_t bits, uint8_t *out)
{
	size_t llen = strlen(label) + 1, n = (bits + 7) / 8, done = 0;
	size_t mlen = 4 + prelen + llen + ulen + vlen + (hmac ? 4 : 0);
	uint8_t *msg, k[EVP_MAX_MD_SIZE];
	static const uint8_t nokey;
	unsigned int kl;
	int r = 0;

	if (!md || bits == 0)
		return ATT_E_INVAL;
	msg = malloc(mlen);
	if (!msg)
		return ATT_E_NOMEM;
	{
		uint8_t *w = msg + 4;

		if (prelen)
			memcpy(w, pre, prelen);
		w += prelen;
		memcpy(w, label, llen);
		w += llen;
		if (ulen)
			memcpy(w, u, ulen);
		w += ulen;
		if (vlen)
			memcpy(w, v, vlen);
		w += vlen;
		if (hmac)
			be32(w, bits);
	}
	for (uint32_t i = 1; done < n; i++) {
		size_t take;

		be32(msg, i);
		if (hmac) {
			if (!HMAC(md, keylen ? key : &nokey, (int)keylen, msg, mlen, k, &kl)) {
				r = ATT_E_CRYPTO;
				break;
			}
		} else if (EVP_Digest(msg, mlen, k, &kl, md, NULL) != 1) {
			r = ATT_E_CRYPTO;
			break;
		}
		take = n - done < kl ? n - done : kl;
		memcpy(out + done, k, take);
		done += take;
	}
	if (r == 0 && bits % 8)
		out[0] &= (uint8_t)((1u << (bits % 8)) - 1);
	att_wipe(k, sizeof(k));
	att_wipe(msg, mlen);
	free(msg);
	return r;
}

int att_tpm_kdfa(const EVP_MD *md, const uint8_t *key, size_t keylen, const char *label,
		 const uint8_t *ctx_u, size_t ulen, const uint8_t *ctx_v, size_t vlen, uint32_t bits,
		 uint8_t *out)
{
	return kdf(true, md, key, keylen, NULL, 0, label, ctx_u, ulen, ctx_v, vlen, bits, out);
}

int att_tpm_kdfe(const EVP_MD *md, const uint8_t *z, size_t zlen, const char *label,
		 const uint8_t *party_u, size_t ulen, const uint8_t *party_v, size_t vlen,
		 uint32_t bits, uint8_t *out)
{
	return kdf(false, md, NULL, 0, z, zlen, label, party_u, ulen, party_v, vlen, bits, out);
}

/* seed = random, encrypted to the EK with RSA-OAEP, label "IDENTITY\0". */
static int rsa_seed(const struct att_tpm_pub *ek, const EVP_MD *md, uint8_t *seed, size_t dlen,
		    struct att_tpm_credential *ret)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ek->pkey, NULL);
	unsigned char *label = OPENSSL_memdup("IDENTITY", 9);
	size_t outlen = sizeof(ret->secret) - 2;
	int r = ATT_E_CRYPTO;

	if (att_random(seed, dlen) < 0 || !ctx || !label)
		goto out;
	if (EVP_PKEY_encrypt_init(ctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, 9) != 1)
		goto out;
	label = NULL;	/* owned by ctx */
	if (EVP_PKEY_encrypt(ctx, ret->secret + 2, &outlen, seed, dlen) != 1)
		goto out;
	be16(ret->secret, outlen);
	ret->secret_len = 2 + outlen;
	r = 0;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static int coords(EVP_PKEY *k, int c, uint8_t *x, uint8_t *y)
{
	BIGNUM *bx = NULL, *by = NULL;
	int r = ATT_E_CRYPTO;

	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 && BN_bn2binpad(bx, x, c) == c &&
	    BN_bn2binpad(by, y, c) == c)
		r = 0;
	BN_free(bx);
	BN_free(by);
	return r;
}

/* seed = KDFe(H, x(d_e * Q_ek), "IDENTITY", x(Q_e), x(Q_ek)); secret = Q_e. */
static int ecc_seed(const struct att_tpm_pub *ek, const EVP_MD *md, uint8_t *seed, size_t dlen,
		    struct att_tpm_credential *ret)
{
	char group[64];
	size_t gl, zlen = 0;
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *dctx = NULL;
	uint8_t z[66], xe[66], ye[66], xk[66], yk[66];
	int c = (ek->key_bits + 7) / 8, r = ATT_E_CRYPTO;

	if (c > 66 || EVP_PKEY_get_utf8_string_param(ek->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl) != 1)
		return ATT_E_CRYPTO;
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	if (!eph)
		goto out;
	dctx = EVP_PKEY_CTX_new(eph, NULL);
	zlen = sizeof(z);
	if (!dctx || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, ek->pkey) != 1 ||
	    EVP_PKEY_derive(dctx, z, &zlen) != 1 || zlen != (size_t)c)
		goto out;
	if (coords(eph, c, xe, ye) < 0 || coords(ek->pkey, c, xk, yk) < 0)
		goto out;
	if (att_tpm_kdfe(md, z, zlen, "IDENTITY", xe, (size_t)c, xk, (size_t)c, (uint32_t)(dlen * 8), seed) < 0)
		goto out;
	be16(ret->secret, (size_t)(4 + 2 * c));
	be16(ret->secret + 2, (size_t)c);
	memcpy(ret->secret + 4, xe, (size_t)c);
	be16(ret->secret + 4 + c, (size_t)c);
	memcpy(ret->secret + 6 + c, ye, (size_t)c);
	ret->secret_len = (size_t)(6 + 2 * c);
	r = 0;
out:
	att_wipe(z, sizeof(z));
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(eph);
	return r;
}

int att_tpm_make_credential(const struct att_tpm_pub *ek, const uint8_t *name, size_t name_len,
			    const uint8_t *cv, size_t cvlen, struct att_tpm_credential *ret,
			    char *reterr, size_t errlen)
{
	const EVP_MD *md = att_tpm_md(ek->name_alg);
	const EVP_CIPHER *aes;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t seed[64], symkey[32], hkey[64], plain[2 + 64], enc[2 + 64], iv[16];
	uint8_t *hmsg = NULL;
	unsigned int hl;
	size_t dlen;
	int outl = 0, fl = 0, r;

	memset(ret, 0, sizeof(*ret));
	if (!md || !ek->pkey)
		return ERR("EK name algorithm 0x%04x is not supported", ek->name_alg);
	if (cvlen == 0 || cvlen > 64)
		return ERR("credential must be 1..64 bytes");
	if (name_len < 2 || name_len > ATT_TPM_MAX_NAME)
		return ERR("object Name has an impossible length");
	if (ek->sym_alg != ATT_TPM_ALG_AES || ek->sym_mode != ATT_TPM_ALG_CFB)
		return ERR("EK symmetric parameters are not AES-CFB");
	aes = ek->sym_bits == 128 ? EVP_aes_128_cfb128() : ek->sym_bits == 256 ? EVP_aes_256_cfb128() : NULL;
	if (!aes)
		return ERR("EK symmetric key size %u is not 128 or 256", ek->sym_bits);
	dlen = (size_t)EVP_MD_get_size(md);
	r = ek->type == ATT_TPM_ALG_RSA ? rsa_seed(ek, md, seed, dlen, ret) : ecc_seed(ek, md, seed, dlen, ret);
	if (r < 0)
		goto out;
	r = ATT_E_CRYPTO;
	if (att_tpm_kdfa(md, seed, dlen, "STORAGE", name, name_len, NULL, 0, ek->sym_bits, symkey) < 0 ||
	    att_tpm_kdfa(md, seed, dlen, "INTEGRITY", NULL, 0, NULL, 0, (uint32_t)(dlen * 8), hkey) < 0)
		goto out;
	be16(plain, cvlen);
	memcpy(plain + 2, cv, cvlen);
	memset(iv, 0, sizeof(iv));
	cctx = EVP_CIPHER_CTX_new();
	if (!cctx || EVP_EncryptInit_ex(cctx, aes, NULL, symkey, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, enc, &outl, plain, (int)(2 + cvlen)) != 1 ||
	    EVP_EncryptFinal_ex(cctx, enc + outl, &fl) != 1 || (size_t)(outl + fl) != 2 + cvlen)
		goto out;
	hmsg = malloc(2 + cvlen + name_len);
	if (!hmsg) {
		r = ATT_E_NOMEM;
		goto out;
	}
	memcpy(hmsg, enc, 2 + cvlen);
	memcpy(hmsg + 2 + cvlen, name, name_len);
	/* ID object: BE16(size) | TPM2B_DIGEST outer HMAC | encIdentity */
	be16(ret->id_object, 2 + dlen + 2 + cvlen);
	be16(ret->id_object + 2, dlen);
	if (!HMAC(md, hkey, (int)dlen, hmsg, 2 + cvlen + name_len, ret->id_object + 4, &hl) || hl != dlen)
		goto out;
	memcpy(ret->id_object + 4 + dlen, enc, 2 + cvlen);
	ret->id_object_len = 4 + dlen + 2 + cvlen;
	r = 0;
out:
	if (r < 0 && r != ATT_E_INVAL)
		snprintf(reterr, errlen, "MakeCredential failed");
	att_wipe(seed, sizeof(seed));
	att_wipe(symkey, sizeof(symkey));
	att_wipe(hkey, sizeof(hkey));
	att_wipe(plain, sizeof(plain));
	free(hmsg);
	EVP_CIPHER_CTX_free(cctx);
	return r;
}

char *att_tpm_credential_blob_b64(const struct att_tpm_credential *c)
{
	uint8_t blob[8 + sizeof(c->id_object) + sizeof(c->secret)];

	be32(blob, 0xBADCC0DEu);
	be32(blob + 4, 1);
	memcpy(blob + 8, c->id_object, c->id_object_len);
	memcpy(blob + 8 + c->id_object_len, c->secret, c->secret_len);
	return att_b64_encode(blob, 8 + c->id_object_len + c->secret_len);
}
