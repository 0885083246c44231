/* exporter.c - the bundle exporter identity and its CMS signatures
 * (see exporter.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "crypto/ca-internal.h"
#include "crypto/exporter.h"

#define EXPORTER_SECONDS (2L * 365 * 24 * 3600)
#define RENEW_BEFORE (30L * 24 * 3600)

static pthread_mutex_t first_use = PTHREAD_MUTEX_INITIALIZER;

/* The stored pair when it is usable with the current CA. */
static bool load(const struct att_ca *ca, const char *kpath, const char *cpath, EVP_PKEY **key, X509 **cert)
{
	FILE *f = fopen(kpath, "re");
	time_t soon = time(NULL) + RENEW_BEFORE;

	*key = NULL;
	*cert = NULL;
	if (f) {
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	f = fopen(cpath, "re");
	if (f) {
		*cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (*key && *cert && X509_check_private_key(*cert, *key) == 1 && X509_check_issued(ca->cert, *cert) == X509_V_OK &&
	    X509_cmp_time(X509_get0_notAfter(*cert), &soon) > 0)
		return true;
	EVP_PKEY_free(*key);
	X509_free(*cert);
	*key = NULL;
	*cert = NULL;
	ERR_clear_error();
	return false;
}

static int identity(const struct att_ca *ca, const char *dir, EVP_PKEY **key, X509 **cert, char *reterr,
		    size_t errlen)
{
	char kpath[4096], cpath[4096];
	int r = 0;

	snprintf(kpath, sizeof(kpath), "%s/bundle-exporter.key", dir);
	snprintf(cpath, sizeof(cpath), "%s/bundle-exporter.crt", dir);
	pthread_mutex_lock(&first_use);
	if (!load(ca, kpath, cpath, key, cert)) {
		*key = EVP_EC_gen("P-384");
		*cert = *key ? att_ca_issue_exporter(ca, *key, EXPORTER_SECONDS) : NULL;
		if (!*cert) {
			snprintf(reterr, errlen, "cannot issue the bundle exporter certificate");
			r = ATT_E_CRYPTO;
		} else if (att_ca_write_pem(kpath, 0600, *key, NULL) < 0 || att_ca_write_pem(cpath, 0644, NULL, *cert) < 0) {
			snprintf(reterr, errlen, "cannot store the bundle exporter key in %s: %s", dir, strerror(errno));
			r = ATT_E_IO;
		}
		if (r < 0) {
			EVP_PKEY_free(*key);
			X509_free(*cert);
			*key = NULL;
			*cert = NULL;
		}
	}
	pthread_mutex_unlock(&first_use);
	return r;
}

static void serial_of(X509 *x, char out[80])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, 80, "%s", h ? h : "?");
	OPENSSL_free(h);
	BN_free(bn);
}

int att_exporter_sign(const struct att_ca *ca, const char *dir, const uint8_t *data, size_t n, uint8_t **ret,
		      size_t *ret_len, char ret_serial[80], char *reterr, size_t errlen)
{
	const unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *der = NULL;
	int len, r;

	r = identity(ca, dir, &key, &cert, reterr, errlen);
	if (r < 0)
		return r;
	r = ATT_E_CRYPTO;
	in = BIO_new_mem_buf(data, (int)n);
	cms = in ? CMS_sign(NULL, NULL, NULL, NULL, flags) : NULL;
	if (!cms || !CMS_add1_signer(cms, cert, key, EVP_sha384(), flags) || !CMS_final(cms, in, NULL, flags) ||
	    (len = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		snprintf(reterr, errlen, "cannot sign the bundle manifest");
		ERR_clear_error();
		goto out;
	}
	*ret = malloc((size_t)len);
	if (!*ret) {
		r = ATT_E_NOMEM;
		goto out;
	}
	memcpy(*ret, der, (size_t)len);
	*ret_len = (size_t)len;
	serial_of(cert, ret_serial);
	r = 0;
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

static bool has_exporter_eku(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	bool yes = false;

	for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && !yes; i++) {
		char oid[128];

		if (OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1) > 0)
			yes = strcmp(oid, ATT_CA_EKU_BUNDLE_EXPORT) == 0;
	}
	EXTENDED_KEY_USAGE_free(eku);
	return yes;
}

int att_exporter_verify(const char *trusted, const uint8_t *data, size_t n, const uint8_t *sig, size_t siglen,
			char *signer, size_t signer_len, char *reterr, size_t errlen)
{
	const unsigned char *p = sig;
	CMS_ContentInfo *cms = NULL;
	X509_STORE *st = NULL;
	STACK_OF(X509) *signers = NULL;
	BIO *content = NULL;
	int r = ATT_E_FORBIDDEN;

	if (!trusted || !trusted[0]) {
		snprintf(reterr, errlen, "this instance trusts no bundle exporter (ITL_TRUSTED_EXPORTERS is not set)");
		return ATT_E_FORBIDDEN;
	}
	st = X509_STORE_new();
	if (!st || !X509_STORE_load_file(st, trusted)) {
		snprintf(reterr, errlen, "ITL_TRUSTED_EXPORTERS: cannot load %s", trusted);
		r = ATT_E_UNAVAILABLE;
		goto out;
	}
	X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
	cms = siglen <= INT32_MAX ? d2i_CMS_ContentInfo(NULL, &p, (long)siglen) : NULL;
	if (!cms || p != sig + siglen || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		snprintf(reterr, errlen, "manifest.sig: not a DER CMS SignedData");
		r = ATT_E_INVAL;
		goto out;
	}
	content = BIO_new_mem_buf(data, (int)n);
	if (!content || CMS_verify(cms, NULL, st, content, NULL, CMS_BINARY) != 1) {
		unsigned long e = ERR_peek_last_error();

		snprintf(reterr, errlen, "manifest signature does not verify against ITL_TRUSTED_EXPORTERS (%s)",
			 e ? ERR_reason_error_string(e) : "unknown error");
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (sk_X509_num(signers) != 1 || !has_exporter_eku(sk_X509_value(signers, 0))) {
		snprintf(reterr, errlen, "manifest signer is not a bundle exporter (EKU %s)", ATT_CA_EKU_BUNDLE_EXPORT);
		goto out;
	}
	{
		char subj[256], serial[80];

		X509_NAME_oneline(X509_get_subject_name(sk_X509_value(signers, 0)), subj, sizeof(subj));
		serial_of(sk_X509_value(signers, 0), serial);
		snprintf(signer, signer_len, "%s serial=%s", subj, serial);
	}
	r = 0;
out:
	ERR_clear_error();
	sk_X509_free(signers);
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	X509_STORE_free(st);
	return r;
}
