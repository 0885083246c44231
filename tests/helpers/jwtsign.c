#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "jwtsign.h"

char *b64url(const void *in, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = in;
	char *out = malloc(len * 4 / 3 + 4), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tbl[p[i] >> 2];
		*o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tbl[p[i + 2] & 63];
	}
	if (len - i == 1) {
		*o++ = tbl[p[i] >> 2];
		*o++ = tbl[(p[i] & 3) << 4];
	} else if (len - i == 2) {
		*o++ = tbl[p[i] >> 2];
		*o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tbl[(p[i + 1] & 15) << 2];
	}
	*o = 0;
	return out;
}

static const EVP_MD *alg_md(const char *alg)
{
	const char *bits = alg + 2;

	if (strcmp(bits, "256") == 0)
		return EVP_sha256();
	if (strcmp(bits, "384") == 0)
		return EVP_sha384();
	if (strcmp(bits, "512") == 0)
		return EVP_sha512();
	return NULL;
}

/* DER ECDSA signature -> fixed-width r||s (RFC 7518 §3.4). */
static int ecdsa_raw(const unsigned char *der, size_t derlen, size_t width, unsigned char *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	const BIGNUM *r, *s;
	int ok;

	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, out, (int)width) == (int)width && BN_bn2binpad(s, out + width, (int)width) == (int)width;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

char *jwt_sign(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json,
	       const void *hs_secret, size_t hs_len)
{
	char *h = b64url(header_json, strlen(header_json));
	char *p = b64url(payload_json, strlen(payload_json));
	char *input = NULL, *sig64 = NULL, *tok = NULL;
	unsigned char sig[1024];
	size_t siglen = 0;
	const EVP_MD *md = alg_md(alg);

	if (!h || !p)
		goto out;
	input = malloc(strlen(h) + strlen(p) + 2);
	if (!input)
		goto out;
	sprintf(input, "%s.%s", h, p);
	if (strcmp(alg, "none") == 0) {
		siglen = 0;
	} else if (strncmp(alg, "HS", 2) == 0) {
		unsigned int l = 0;

		if (!md || !HMAC(md, hs_secret, (int)hs_len, (const unsigned char *)input, strlen(input), sig, &l))
			goto out;
		siglen = l;
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		unsigned char der[512];
		size_t derlen = sizeof(der);
		int ok;

		ok = ctx && md && EVP_DigestSignInit(ctx, &pctx, md, NULL, key) == 1;
		if (ok && alg[0] == 'P')
			ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
		if (ok && alg[0] == 'E') {
			size_t width = strcmp(alg, "ES256") == 0 ? 32 : strcmp(alg, "ES384") == 0 ? 48 : 66;

			ok = EVP_DigestSign(ctx, der, &derlen, (const unsigned char *)input, strlen(input)) == 1 &&
			     ecdsa_raw(der, derlen, width, sig) == 0;
			siglen = 2 * width;
		} else if (ok) {
			siglen = sizeof(sig);
			ok = EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)) == 1;
		}
		EVP_MD_CTX_free(ctx);
		if (!ok)
			goto out;
	}
	sig64 = b64url(sig, siglen);
	if (!sig64)
		goto out;
	tok = malloc(strlen(input) + strlen(sig64) + 2);
	if (tok)
		sprintf(tok, "%s.%s", input, sig64);
out:
	free(h);
	free(p);
	free(input);
	free(sig64);
	return tok;
}

static char *bn_param_b64(EVP_PKEY *key, const char *name, size_t width)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *r = NULL;

	if (!EVP_PKEY_get_bn_param(key, name, &bn))
		return NULL;
	n = width ? BN_bn2binpad(bn, buf, (int)width) : BN_bn2bin(bn, buf);
	if (n > 0)
		r = b64url(buf, (size_t)n);
	BN_free(bn);
	return r;
}

char *jwk_public_json(EVP_PKEY *key, const char *kid)
{
	char *out = NULL;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
		char *n = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
		char *e = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);

		if (n && e && asprintf(&out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
				       kid, n, e) < 0)
			out = NULL;
		free(n);
		free(e);
	} else {
		char grp[32] = "";
		size_t gl = 0, width;
		const char *crv;
		char *x, *y;

		EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &gl);
		if (strcmp(grp, "prime256v1") == 0) {
			crv = "P-256";
			width = 32;
		} else if (strcmp(grp, "secp384r1") == 0) {
			crv = "P-384";
			width = 48;
		} else {
			crv = "P-521";
			width = 66;
		}
		x = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, width);
		y = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, width);
		if (x && y && asprintf(&out, "{\"kty\":\"EC\",\"kid\":\"%s\",\"use\":\"sig\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}",
				       kid, crv, x, y) < 0)
			out = NULL;
		free(x);
		free(y);
	}
	return out;
}
