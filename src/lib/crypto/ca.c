#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ca.h"

struct att_ca {
	EVP_PKEY *key;
	X509 *cert;
	EVP_PKEY *signer_key;	/* audit report signing (made at start-up) */
	X509 *signer_cert;
	char serial[80];
	char algorithm[16];
};

static int make_signer(struct att_ca *ca);

static void serial_hex(X509 *x, char out[80])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, 80, "%s", h ? h : "?");
	OPENSSL_free(h);
	BN_free(bn);
}

static int write_file(const char *path, const char *tmpl_suffix, mode_t mode, bool is_key, EVP_PKEY *key, X509 *x)
{
	char tmp[4096];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.%s", path, tmpl_suffix);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return ATT_E_IO;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return ATT_E_IO;
	}
	ok = is_key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return ATT_E_IO;
	}
	return 0;
}

static int generate(const char *algorithm, struct att_ca *ca)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	BIGNUM *sn = NULL;
	const EVP_MD *md;
	int r = ATT_E_CRYPTO;

	if (strcmp(algorithm, "rsa-4096") == 0) {
		key = EVP_RSA_gen(4096);
		md = EVP_sha256();
	} else {
		key = EVP_EC_gen("P-384");
		md = EVP_sha384();
	}
	x = X509_new();
	sn = BN_new();
	if (!key || !x || !sn || !BN_rand(sn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) || !X509_set_pubkey(x, key))
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"NL", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ITL Usions", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"ITL Machine Enrollment CA", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	{
		static const struct {
			int nid;
			const char *val;
		} ext[] = {
			{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
			{ NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature" },
			{ NID_subject_key_identifier, "hash" },
		};

		for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
			X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, ext[i].nid, ext[i].val);

			if (!e || !X509_add_ext(x, e, -1)) {
				X509_EXTENSION_free(e);
				goto out;
			}
			X509_EXTENSION_free(e);
		}
	}
	if (!X509_sign(x, key, md))
		goto out;
	ca->key = key;
	ca->cert = x;
	key = NULL;
	x = NULL;
	r = 0;
out:
	BN_free(sn);
	EVP_PKEY_free(key);
	X509_free(x);
	return r;
}

int att_ca_init(const char *dir, const char *algorithm, struct att_ca **ret, bool *ret_created,
		char *reterr, size_t errlen)
{
	struct att_ca *ca = calloc(1, sizeof(*ca));
	char kpath[4096], cpath[4096];
	struct stat st;
	bool have_key, have_cert;
	int r;

	if (!ca)
		return ATT_E_NOMEM;
	snprintf(kpath, sizeof(kpath), "%s/enrollment-ca.key", dir);
	snprintf(cpath, sizeof(cpath), "%s/enrollment-ca.crt", dir);
	have_key = stat(kpath, &st) == 0;
	have_cert = stat(cpath, &st) == 0;
	if (have_key != have_cert) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: %s exists without %s — restore both or remove both",
			 have_key ? kpath : cpath, have_key ? cpath : kpath);
		free(ca);
		return ATT_E_INVAL;
	}
	if (have_key) {
		FILE *f = fopen(kpath, "re");

		if (f) {
			ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		f = fopen(cpath, "re");
		if (f) {
			ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
			fclose(f);
		}
		if (!ca->key || !ca->cert || X509_check_private_key(ca->cert, ca->key) != 1) {
			snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot load a matching key and certificate from %s", dir);
			att_ca_free(ca);
			return ATT_E_INVAL;
		}
		*ret_created = false;
	} else {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot create %s: %s", dir, strerror(errno));
			free(ca);
			return ATT_E_IO;
		}
		r = generate(algorithm, ca);
		if (r == 0)
			r = write_file(kpath, "tmp", 0600, true, ca->key, NULL);
		if (r == 0)
			r = write_file(cpath, "tmp", 0644, false, NULL, ca->cert);
		if (r < 0) {
			snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot create the Enrollment CA in %s", dir);
			unlink(kpath);
			att_ca_free(ca);
			return r;
		}
		*ret_created = true;
	}
	serial_hex(ca->cert, ca->serial);
	snprintf(ca->algorithm, sizeof(ca->algorithm), "%s",
		 EVP_PKEY_get_base_id(ca->key) == EVP_PKEY_RSA ? "rsa-4096" : "ecdsa-p384");
	if (make_signer(ca) < 0) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot issue the audit report signing certificate");
		att_ca_free(ca);
		return ATT_E_CRYPTO;
	}
	*ret = ca;
	return 0;
}

const char *att_ca_serial(const struct att_ca *ca)
{
	return ca->serial;
}

const char *att_ca_algorithm(const struct att_ca *ca)
{
	return ca->algorithm;
}

void att_ca_free(struct att_ca *ca)
{
	if (!ca)
		return;
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->signer_key);
	X509_free(ca->signer_cert);
	free(ca);
}

static char *pem_of(int (*wr)(BIO *, const void *), const void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b && wr(b, obj) && (n = BIO_get_mem_data(b, &data)) > 0)
		out = att_strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static int wr_cert(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x);
}

static int wr_key(BIO *b, const void *k)
{
	return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

char *att_ca_cert_pem(const struct att_ca *ca)
{
	return pem_of(wr_cert, ca->cert);
}

struct leaf_ext {
	int nid;
	const char *val;	/* NULL: skipped */
};

/* Sign a leaf for key: subject C=NL, O=ITL Usions[, OU=ou], CN=cn. */
static X509 *issue_leaf(const struct att_ca *ca, EVP_PKEY *key, const char *ou, const char *cn,
			const struct leaf_ext *ext, size_t next, long seconds)
{
	X509 *x = X509_new();
	BIGNUM *sn = BN_new();
	X509_NAME *name;
	X509V3_CTX v3;
	bool ok;

	ok = key && x && sn && BN_rand(sn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -300) && X509_gmtime_adj(X509_getm_notAfter(x), seconds) &&
	     X509_set_pubkey(x, key) && X509_set_issuer_name(x, X509_get_subject_name(ca->cert));
	name = ok ? X509_get_subject_name(x) : NULL;
	ok = ok && X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"NL", -1, -1, 0) &&
	     X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ITL Usions", -1, -1, 0) &&
	     (!ou || X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)ou, -1, -1, 0)) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	if (ok) {
		X509V3_set_ctx(&v3, ca->cert, x, NULL, NULL, 0);
		for (size_t i = 0; i < next && ok; i++) {
			X509_EXTENSION *e;

			if (!ext[i].val)
				continue;
			e = X509V3_EXT_conf_nid(NULL, &v3, ext[i].nid, ext[i].val);
			ok = e && X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
		}
	}
	ok = ok && X509_sign(x, ca->key, strcmp(ca->algorithm, "rsa-4096") == 0 ? EVP_sha256() : EVP_sha384());
	BN_free(sn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int att_ca_issue(const struct att_ca *ca, const char *machine_id, const char *role, const char *ek_fp,
		 int days, struct att_ca_leaf *ret)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	char san[160];
	const struct leaf_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "clientAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ NID_subject_alt_name, ek_fp ? san : NULL },
	};
	X509 *x;
	int r = ATT_E_CRYPTO;

	memset(ret, 0, sizeof(*ret));
	if (ek_fp)
		snprintf(san, sizeof(san), "URI:urn:itl:ek:%s", ek_fp);
	x = issue_leaf(ca, key, role, machine_id, ext, sizeof(ext) / sizeof(ext[0]), (long)days * 24 * 3600);
	if (!x)
		goto out;
	ret->cert_pem = pem_of(wr_cert, x);
	ret->key_pem = pem_of(wr_key, key);
	serial_hex(x, ret->serial);
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
			strftime(ret->not_after, sizeof(ret->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	r = ret->cert_pem && ret->key_pem ? 0 : ATT_E_NOMEM;
	if (r)
		att_ca_leaf_release(ret);
out:
	EVP_PKEY_free(key);
	X509_free(x);
	return r;
}

/* The document-signing identity for audit reports: a P-384 key made at
 * start-up and a certificate from the CA (id-kp-documentSigning, RFC 9336),
 * so reports verify against the Enrollment CA certificate alone. */
static int make_signer(struct att_ca *ca)
{
	const struct leaf_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature,nonRepudiation" },
		{ NID_ext_key_usage, "1.3.6.1.5.5.7.3.36,emailProtection" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};

	ca->signer_key = EVP_EC_gen("P-384");
	ca->signer_cert = issue_leaf(ca, ca->signer_key, "Audit", "ITL Audit Report Signing", ext,
				     sizeof(ext) / sizeof(ext[0]), 5L * 365 * 24 * 3600);
	return ca->signer_cert ? 0 : ATT_E_CRYPTO;
}

int att_ca_key(const struct att_ca *ca, EVP_PKEY **key, X509 **cert)
{
	if (!ca->key || !ca->cert)
		return ATT_E_UNAVAILABLE;
	*key = ca->key;
	*cert = ca->cert;
	return 0;
}

int att_ca_report_signer(const struct att_ca *ca, EVP_PKEY **key, X509 **cert, X509 **ca_cert)
{
	if (!ca->signer_key || !ca->signer_cert)
		return ATT_E_UNAVAILABLE;
	*key = ca->signer_key;
	*cert = ca->signer_cert;
	*ca_cert = ca->cert;
	return 0;
}

void att_ca_leaf_release(struct att_ca_leaf *l)
{
	if (l->key_pem) {
		att_wipe(l->key_pem, strlen(l->key_pem));
		free(l->key_pem);
	}
	free(l->cert_pem);
	l->cert_pem = l->key_pem = NULL;
}
