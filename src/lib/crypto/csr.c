/* csr.c - PKCS#10 parsing and checks (csr.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/err.h"
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
