/* csr.c - PKCS#10 parsing and checks, proof of possession of a
 * certificate's key (csr.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ca-internal.h"
#include "crypto/ca.h"
#include "crypto/csr.h"

void att_csr_key_type(EVP_PKEY *key, char out[24])
{
	char group[64] = "";
	size_t glen = 0;

	out[0] = '\0';
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
						   &glen) != 1)
			return;
		if (strcmp(group, "secp384r1") == 0)
			snprintf(out, 24, "ecdsa-p384");
		else if (strcmp(group, "prime256v1") == 0)
			snprintf(out, 24, "ecdsa-p256");
		else if (strcmp(group, "secp521r1") == 0)
			snprintf(out, 24, "ecdsa-p521");
		break;
	case EVP_PKEY_RSA:
		snprintf(out, 24, "rsa-%d", EVP_PKEY_get_bits(key));
		break;
	default:
		break;
	}
}

static bool key_allowed(EVP_PKEY *key, bool tpm_key, char type[24], char *reterr, size_t errlen)
{
	att_csr_key_type(key, type);
	if (strcmp(type, "ecdsa-p384") == 0 || (tpm_key && strcmp(type, "ecdsa-p256") == 0))
		return true;
	if (strncmp(type, "rsa-", 4) == 0) {
		int bits = EVP_PKEY_get_bits(key);

		if (bits >= 3072 && bits <= 8192)
			return true;
		if (tpm_key && bits == 2048)
			return true;
	}
	snprintf(reterr, errlen,
		 "csr_pem: key type %s is not accepted (ECDSA P-384 or RSA 3072-8192%s)",
		 type[0] ? type : "unsupported", tpm_key ? "; for TPM keys also P-256 and RSA-2048" : "");
	return false;
}

/* Exactly one PEM block named CERTIFICATE REQUEST (or NEW CERTIFICATE
 * REQUEST), nothing but whitespace around it; *der is OPENSSL_malloc'd. */
static int pem_block(const char *pem, size_t len, unsigned char **der, long *derlen, char *reterr, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	char *name = NULL, *header = NULL, rest[8];
	int r = ATT_E_INVAL, n;

	if (!b)
		return ATT_E_NOMEM;
	if (!PEM_read_bio(b, &name, &header, der, derlen)) {
		snprintf(reterr, errlen, "csr_pem: not a PEM certificate request");
		goto out;
	}
	if (strcmp(name, "CERTIFICATE REQUEST") != 0 && strcmp(name, "NEW CERTIFICATE REQUEST") != 0) {
		snprintf(reterr, errlen, "csr_pem: expected a PEM CERTIFICATE REQUEST block, got %.40s", name);
		goto out;
	}
	if (header && *header) {
		snprintf(reterr, errlen, "csr_pem: PEM headers are not allowed");
		goto out;
	}
	while ((n = BIO_read(b, rest, 1)) == 1) {
		if (rest[0] != '\n' && rest[0] != '\r' && rest[0] != ' ' && rest[0] != '\t') {
			snprintf(reterr, errlen, "csr_pem: trailing data after the certificate request");
			goto out;
		}
	}
	r = 0;
out:
	if (r < 0) {
		OPENSSL_free(*der);
		*der = NULL;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(b);
	return r;
}

int att_csr_parse(const char *pem, size_t len, bool tpm_key, struct att_csr *ret, char *reterr,
		  size_t errlen)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	long derlen = 0;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	char type[24];
	int r;

	if (len > ATT_CSR_MAX_PEM) {
		snprintf(reterr, errlen, "csr_pem: larger than %d bytes", ATT_CSR_MAX_PEM);
		return ATT_E_INVAL;
	}
	r = pem_block(pem, len, &der, &derlen, reterr, errlen);
	if (r < 0)
		return r;
	r = ATT_E_INVAL;
	p = der;
	req = d2i_X509_REQ(NULL, &p, derlen);
	if (!req || p != der + derlen) {
		snprintf(reterr, errlen, "csr_pem: malformed PKCS#10 DER%s", req ? " (trailing bytes)" : "");
		goto out;
	}
	key = X509_REQ_get_pubkey(req);
	if (!key) {
		snprintf(reterr, errlen, "csr_pem: the public key cannot be decoded");
		goto out;
	}
	if (!key_allowed(key, tpm_key, type, reterr, errlen))
		goto out;
	if (X509_REQ_verify(req, key) != 1) {
		snprintf(reterr, errlen, "csr_pem: the request's signature does not verify with its own key");
		goto out;
	}
	ret->key = key;
	key = NULL;
	snprintf(ret->key_type, sizeof(ret->key_type), "%s", type);
	r = 0;
out:
	EVP_PKEY_free(key);
	X509_REQ_free(req);
	OPENSSL_free(der);
	return r;
}

void att_csr_release(struct att_csr *c)
{
	EVP_PKEY_free(c->key);
	c->key = NULL;
}

static X509 *one_cert(const char *pem, size_t len)
{
	BIO *b = len <= ATT_CSR_MAX_PEM ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static int der_sha256(X509 *x, char ret[65])
{
	unsigned char *der = NULL, md[32];
	unsigned int ml = 0;
	int n = i2d_X509(x, &der);
	static const char hx[] = "0123456789abcdef";

	if (n <= 0 || !EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL)) {
		OPENSSL_free(der);
		return ATT_E_CRYPTO;
	}
	OPENSSL_free(der);
	for (int i = 0; i < 32; i++) {
		ret[2 * i] = hx[md[i] >> 4];
		ret[2 * i + 1] = hx[md[i] & 15];
	}
	ret[64] = '\0';
	return 0;
}

int att_cert_pem_sha256(const char *pem, char ret[65])
{
	X509 *x = one_cert(pem, strlen(pem));
	int r = x ? der_sha256(x, ret) : ATT_E_PARSE;

	X509_free(x);
	return r;
}

int att_cert_pop_check(const char *cert_pem, size_t len, const char *msg, size_t msglen, const uint8_t *sig,
		       size_t siglen, char ret_serial[80], char ret_sha256[65], char *reterr, size_t errlen)
{
	X509 *x = one_cert(cert_pem, len);
	EVP_PKEY *key = x ? X509_get0_pubkey(x) : NULL;
	EVP_MD_CTX *mc = NULL;
	const EVP_MD *md;
	char type[24];
	BIGNUM *bn = NULL;
	char *h = NULL;
	int r = ATT_E_INVAL;

	if (!key) {
		snprintf(reterr, errlen, "certificate_pem: not a PEM certificate");
		goto out;
	}
	att_csr_key_type(key, type);
	md = strcmp(type, "ecdsa-p384") == 0 ? EVP_sha384()
	     : strcmp(type, "ecdsa-p256") == 0 || strncmp(type, "rsa-", 4) == 0 ? EVP_sha256() : NULL;
	mc = EVP_MD_CTX_new();
	if (!md || !mc || EVP_DigestVerifyInit(mc, NULL, md, NULL, key) != 1 ||
	    EVP_DigestVerify(mc, sig, siglen, (const unsigned char *)msg, msglen) != 1) {
		snprintf(reterr, errlen, "signature: does not verify with the certificate's key over the nonce");
		goto out;
	}
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	h = bn ? BN_bn2hex(bn) : NULL;
	if (!h || strlen(h) >= 80 || der_sha256(x, ret_sha256) < 0) {
		r = ATT_E_CRYPTO;
		goto out;
	}
	snprintf(ret_serial, 80, "%s", h);
	r = 0;
out:
	OPENSSL_free(h);
	BN_free(bn);
	EVP_MD_CTX_free(mc);
	X509_free(x);
	return r;
}

int att_crypto_oaep_wrap_b64(const char *pub_pem, const uint8_t *data, size_t len, char **ret, char *reterr,
			     size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pub_pem, -1);
	EVP_PKEY *key = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char *out = NULL;
	size_t ol = 0;
	int r = ATT_E_INVAL;

	if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) {
		snprintf(reterr, errlen, "wrapping_key_pem: Wrapping key encryption failed: not an RSA public key of 2048 bits or more");
		goto out;
	}
	pc = EVP_PKEY_CTX_new(key, NULL);
	if (!pc || EVP_PKEY_encrypt_init(pc) != 1 || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1 ||
	    EVP_PKEY_encrypt(pc, NULL, &ol, data, len) != 1 || !(out = OPENSSL_malloc(ol)) ||
	    EVP_PKEY_encrypt(pc, out, &ol, data, len) != 1) {
		snprintf(reterr, errlen, "wrapping_key_pem: Wrapping key encryption failed: the key is too small for %zu bytes",
			 len);
		goto out;
	}
	*ret = att_b64_encode(out, ol);
	r = *ret ? 0 : ATT_E_NOMEM;
out:
	OPENSSL_free(out);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(key);
	BIO_free(b);
	return r;
}

int att_crypto_key_pem_der(const char *pem, uint8_t **ret, size_t *ret_len)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	PKCS8_PRIV_KEY_INFO *p8 = key ? EVP_PKEY2PKCS8(key) : NULL;
	unsigned char *der = NULL;
	int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
	int r = ATT_E_CRYPTO;

	if (n > 0 && (*ret = malloc((size_t)n)) != NULL) {
		memcpy(*ret, der, (size_t)n);
		*ret_len = (size_t)n;
		r = 0;
	}
	if (der) {
		OPENSSL_cleanse(der, n > 0 ? (size_t)n : 0);
		OPENSSL_free(der);
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(key);
	BIO_free(b);
	return r;
}

/* ---- a certificate of this CA presented back (ca.h) ------------------------- */

static void name_entry(X509_NAME *n, int nid, char *out, size_t outlen)
{
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	ASN1_STRING *d = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;
	unsigned char *u = NULL;
	int l = d ? ASN1_STRING_to_UTF8(&u, d) : -1;

	snprintf(out, outlen, "%.*s", l > 0 ? l : 0, l > 0 ? (const char *)u : "");
	OPENSSL_free(u);
}

/* The text after urn:itl:ek: in a URI SAN, or "". */
static void ek_san(X509 *x, char *out, size_t outlen)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	out[0] = '\0';
	for (int i = 0; g && i < sk_GENERAL_NAME_num(g); i++) {
		GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
		const char *v;
		int l;

		if (n->type != GEN_URI)
			continue;
		v = (const char *)ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
		l = ASN1_STRING_length(n->d.uniformResourceIdentifier);
		if (l > 11 && l - 11 < (int)outlen && strncmp(v, "urn:itl:ek:", 11) == 0)
			snprintf(out, outlen, "%.*s", l - 11, v + 11);
	}
	GENERAL_NAMES_free(g);
}

int att_ca_verify_leaf(const struct att_ca *ca, const char *pem, size_t len, struct att_ca_leaf_info *ret,
		       char *reterr, size_t errlen)
{
	BIO *b = len <= 16384 ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = ATT_E_FORBIDDEN;

	memset(ret, 0, sizeof(*ret));
	if (!x) {
		snprintf(reterr, errlen, "cert_pem: not a PEM certificate");
		r = ATT_E_INVAL;
		goto out;
	}
	if (!st || !ctx || !X509_STORE_add_cert(st, ca->cert)) {
		r = ATT_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < ca->nprev; i++)
		X509_STORE_add_cert(st, ca->prev[i].cert);
	if (!X509_STORE_CTX_init(ctx, st, x, NULL) || X509_verify_cert(ctx) != 1) {
		snprintf(reterr, errlen, "Enrollment cert rejected: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	name_entry(X509_get_subject_name(x), NID_commonName, ret->cn, sizeof(ret->cn));
	name_entry(X509_get_subject_name(x), NID_organizationalUnitName, ret->ou, sizeof(ret->ou));
	ek_san(x, ret->ek_fp, sizeof(ret->ek_fp));
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *h = bn ? BN_bn2hex(bn) : NULL;

		snprintf(ret->serial, sizeof(ret->serial), "%s", h ? h : "");
		OPENSSL_free(h);
		BN_free(bn);
	}
	r = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	BIO_free(b);
	return r;
}
