#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/ec.h>
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


static int make_signer(struct att_ca *ca);
static int finish_init(const char *dir, struct att_ca *ca, char *reterr, size_t errlen);

const EVP_MD *att_ca_md(EVP_PKEY *key)
{
	return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? EVP_sha256() : EVP_sha384();
}

const struct att_ca_gen *att_ca_gen_find(const struct att_ca *ca, const char *ca_serial, struct att_ca_gen *cur)
{
	if (strcmp(ca_serial, ca->serial) == 0) {
		cur->key = ca->key;
		cur->cert = ca->cert;
		snprintf(cur->serial, sizeof(cur->serial), "%s", ca->serial);
		return cur;
	}
	for (size_t i = 0; i < ca->nprev; i++)
		if (strcmp(ca_serial, ca->prev[i].serial) == 0)
			return &ca->prev[i];
	return NULL;
}

static void serial_hex(X509 *x, char out[80])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, 80, "%s", h ? h : "?");
	OPENSSL_free(h);
	BN_free(bn);
}

/* Write key (PEM private key) or else x to path, atomically: a temp file
 * of this process, fsync'd, renamed over path. */
int att_ca_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *x)
{
	char tmp[4200];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return ATT_E_IO;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return ATT_E_IO;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
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

/* A self-signed CA certificate for a new key of algorithm, or for given
 * (an HSM key; ca->key takes it over on success). */
static int generate(const char *algorithm, EVP_PKEY *given, struct att_ca *ca)
{
	EVP_PKEY *key = given;
	X509 *x = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	BIGNUM *sn = NULL;
	const EVP_MD *md;
	int r = ATT_E_CRYPTO;

	if (!key)
		key = strcmp(algorithm, "rsa-4096") == 0 ? EVP_RSA_gen(4096) : EVP_EC_gen("P-384");
	md = key ? att_ca_md(key) : NULL;
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
	if (key != given)
		EVP_PKEY_free(key);
	X509_free(x);
	return r;
}

static bool load_pair(const char *kpath, const char *cpath, EVP_PKEY **key, X509 **cert)
{
	FILE *f = fopen(kpath, "re");

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
	if (*key && *cert && X509_check_private_key(*cert, *key) == 1)
		return true;
	EVP_PKEY_free(*key);
	X509_free(*cert);
	*key = NULL;
	*cert = NULL;
	return false;
}

/* Previous generations kept by a rotation: <dir>/previous/<serial>.{key,crt},
 * while their CA certificate is valid (they still sign CRLs and OCSP
 * answers for what they issued). */
static void load_previous(const char *dir, struct att_ca *ca)
{
	char pdir[4096], kpath[4400], cpath[4400];
	struct dirent *de;
	DIR *d;

	snprintf(pdir, sizeof(pdir), "%s/previous", dir);
	d = opendir(pdir);
	if (!d)
		return;
	while ((de = readdir(d)) && ca->nprev < ATT_CA_MAX_PREV) {
		size_t n = strlen(de->d_name);
		struct att_ca_gen *g = &ca->prev[ca->nprev];

		if (n < 5 || n > 84 || strcmp(de->d_name + n - 4, ".crt") != 0)
			continue;
		snprintf(cpath, sizeof(cpath), "%s/%s", pdir, de->d_name);
		snprintf(kpath, sizeof(kpath), "%s/%.*s.key", pdir, (int)(n - 4), de->d_name);
		if (!load_pair(kpath, cpath, &g->key, &g->cert))
			continue;
		serial_hex(g->cert, g->serial);
		if (X509_cmp_current_time(X509_get0_notAfter(g->cert)) <= 0 || strcmp(g->serial, ca->serial) == 0) {
			EVP_PKEY_free(g->key);
			X509_free(g->cert);
			continue;
		}
		ca->nprev++;
	}
	closedir(d);
}

int att_ca_rotate(const char *dir, const char *algorithm, char ret_old[80], char ret_new[80], char *reterr,
		  size_t errlen)
{
	struct att_ca *cur = NULL, *next = calloc(1, sizeof(*next));
	char kpath[4096], cpath[4096], pdir[4096], pk[4400], pc[4400];
	bool created;
	int r;

	if (!next)
		return ATT_E_NOMEM;
	r = att_ca_init(dir, algorithm, &cur, &created, reterr, errlen);
	if (r < 0) {
		free(next);
		return r;
	}
	snprintf(kpath, sizeof(kpath), "%s/enrollment-ca.key", dir);
	snprintf(cpath, sizeof(cpath), "%s/enrollment-ca.crt", dir);
	snprintf(pdir, sizeof(pdir), "%s/previous", dir);
	snprintf(pk, sizeof(pk), "%s/%s.key", pdir, cur->serial);
	snprintf(pc, sizeof(pc), "%s/%s.crt", pdir, cur->serial);
	r = ATT_E_IO;
	if ((mkdir(pdir, 0700) < 0 && errno != EEXIST) || (link(kpath, pk) < 0 && errno != EEXIST) ||
	    (link(cpath, pc) < 0 && errno != EEXIST)) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot keep the current CA in %s: %s", pdir, strerror(errno));
		goto out;
	}
	r = generate(algorithm, NULL, next);
	if (r == 0)
		r = att_ca_write_pem(kpath, 0600, next->key, NULL);
	if (r == 0)
		r = att_ca_write_pem(cpath, 0644, NULL, next->cert);
	if (r < 0) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot write the new CA in %s (the previous one is in %s)", dir,
			 pdir);
		goto out;
	}
	snprintf(ret_old, 80, "%s", cur->serial);
	serial_hex(next->cert, ret_new);
out:
	att_ca_free(cur);
	att_ca_free(next);
	return r;
}

char *att_ca_bundle_pem(const struct att_ca *ca)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;
	bool ok = b && PEM_write_bio_X509(b, ca->cert);

	for (size_t i = 0; ok && i < ca->nprev; i++)
		ok = PEM_write_bio_X509(b, ca->prev[i].cert);
	if (ok && (n = BIO_get_mem_data(b, &data)) > 0)
		out = att_strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

json_t *att_ca_previous_serials(const struct att_ca *ca)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < ca->nprev; i++)
		json_array_append_new(a, json_string(ca->prev[i].serial));
	return a;
}

/* The CA key in a PKCS#11 token, its certificate in dir (made with the
 * token's key on first start). */
static int init_hsm(const char *dir, const struct att_ca_key *k, struct att_ca *ca, bool *ret_created, char *reterr,
		    size_t errlen)
{
	char cpath[4096];
	EVP_PKEY *key = NULL;
	struct stat st;
	int r;

	r = att_ca_hsm_load(k->uri, k->module, &key, &ca->hsm, reterr, errlen);
	if (r < 0)
		return r;
	snprintf(cpath, sizeof(cpath), "%s/enrollment-ca.crt", dir);
	if (stat(cpath, &st) == 0) {
		FILE *f = fopen(cpath, "re");

		ca->cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		ca->key = key;
		if (!ca->cert || X509_check_private_key(ca->cert, key) != 1) {
			snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: %s is not the certificate of the PKCS#11 key", cpath);
			return ATT_E_INVAL;
		}
		*ret_created = false;
		return 0;
	}
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || generate(NULL, key, ca) < 0 ||
	    att_ca_write_pem(cpath, 0644, NULL, ca->cert) < 0) {
		if (!ca->key)
			EVP_PKEY_free(key);
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot create the CA certificate for the PKCS#11 key in %s", dir);
		return ATT_E_IO;
	}
	*ret_created = true;
	return 0;
}

int att_ca_init_key(const char *dir, const char *algorithm, const struct att_ca_key *key, struct att_ca **ret,
		    bool *ret_created, char *reterr, size_t errlen)
{
	struct att_ca *ca;
	int r;

	if (!key || !key->uri || !key->uri[0])
		return att_ca_init(dir, algorithm, ret, ret_created, reterr, errlen);
	ca = calloc(1, sizeof(*ca));
	if (!ca)
		return ATT_E_NOMEM;
	r = init_hsm(dir, key, ca, ret_created, reterr, errlen);
	if (r == 0)
		r = finish_init(dir, ca, reterr, errlen);
	if (r < 0) {
		att_ca_free(ca);
		return r;
	}
	*ret = ca;
	return 0;
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
		if (!load_pair(kpath, cpath, &ca->key, &ca->cert)) {
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
		r = generate(algorithm, NULL, ca);
		if (r == 0)
			r = att_ca_write_pem(kpath, 0600, ca->key, NULL);
		if (r == 0)
			r = att_ca_write_pem(cpath, 0644, NULL, ca->cert);
		if (r < 0) {
			snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot create the Enrollment CA in %s", dir);
			unlink(kpath);
			att_ca_free(ca);
			return r;
		}
		*ret_created = true;
	}
	r = finish_init(dir, ca, reterr, errlen);
	if (r < 0) {
		att_ca_free(ca);
		return r;
	}
	*ret = ca;
	return 0;
}

static int finish_init(const char *dir, struct att_ca *ca, char *reterr, size_t errlen)
{
	serial_hex(ca->cert, ca->serial);
	load_previous(dir, ca);
	snprintf(ca->algorithm, sizeof(ca->algorithm), "%s",
		 EVP_PKEY_get_base_id(ca->key) == EVP_PKEY_RSA ? "rsa-4096" : "ecdsa-p384");
	if (make_signer(ca) < 0) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_DIR: cannot issue the audit report signing certificate");
		return ATT_E_CRYPTO;
	}
	return 0;
}

bool att_ca_in_hsm(const struct att_ca *ca)
{
	return ca->hsm != NULL;
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
	for (size_t i = 0; i < ca->nprev; i++) {
		EVP_PKEY_free(ca->prev[i].key);
		X509_free(ca->prev[i].cert);
	}
	att_ca_hsm_free(ca->hsm);	/* after the keys: they use its session */
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

/* Sign a leaf for key: subject C=NL, O=ITL Usions[, OU=ou], CN=cn;
 * extra (optional) is added after ext. */
static X509 *issue_leaf(const struct att_ca *ca, EVP_PKEY *key, const char *ou, const char *cn,
			const struct leaf_ext *ext, size_t next, long seconds, X509_EXTENSION *extra)
{
	X509 *x = X509_new();
	BIGNUM *sn = BN_new();
	CONF *conf = NCONF_new(NULL);
	X509_NAME *name;
	X509V3_CTX v3;
	bool ok;

	ok = key && x && sn && conf && BN_rand(sn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
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
		X509V3_set_nconf(&v3, conf);	/* certificatePolicies wants a (here empty) config */
		for (size_t i = 0; i < next && ok; i++) {
			X509_EXTENSION *e;

			if (!ext[i].val)
				continue;
			e = X509V3_EXT_conf_nid(NULL, &v3, ext[i].nid, ext[i].val);
			ok = e && X509_add_ext(x, e, -1);
			X509_EXTENSION_free(e);
		}
		ok = ok && (!extra || X509_add_ext(x, extra, -1));
	}
	ok = ok && X509_sign(x, ca->key, strcmp(ca->algorithm, "rsa-4096") == 0 ? EVP_sha256() : EVP_sha384());
	BN_free(sn);
	NCONF_free(conf);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static char *san_value(const struct att_ca_profile *p)
{
	if (p->ek_fp && p->spiffe_id)
		return att_asprintf("URI:urn:itl:ek:%s,URI:%s", p->ek_fp, p->spiffe_id);
	if (p->ek_fp)
		return att_asprintf("URI:urn:itl:ek:%s", p->ek_fp);
	if (p->spiffe_id)
		return att_asprintf("URI:%s", p->spiffe_id);
	return NULL;
}

/* A non-critical extension whose value is the DER UTF8String of text. */
static X509_EXTENSION *utf8_ext(const char *oid, const char *text)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	unsigned char *der = NULL;
	int n = -1;

	if (obj && u && os && ASN1_STRING_set(u, text, -1))
		n = i2d_ASN1_UTF8STRING(u, &der);
	if (n > 0 && ASN1_OCTET_STRING_set(os, der, n))
		e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	ASN1_UTF8STRING_free(u);
	ASN1_OBJECT_free(obj);
	return e;
}

int att_ca_issue_key(const struct att_ca *ca, EVP_PKEY *key, const struct att_ca_profile *p,
		     struct att_ca_leaf *ret)
{
	char *san = san_value(p), *crl = NULL, *aia = NULL;
	X509_EXTENSION *attrs = NULL;
	X509 *x = NULL;
	int r = ATT_E_CRYPTO;

	memset(ret, 0, sizeof(*ret));
	if (p->crl_url)
		crl = att_asprintf("URI:%s", p->crl_url);
	if (p->ocsp_url)
		aia = att_asprintf("OCSP;URI:%s", p->ocsp_url);
	{
		const struct leaf_ext ext[] = {
			{ NID_basic_constraints, "critical,CA:FALSE" },
			{ NID_key_usage, "critical,digitalSignature" },
			{ NID_ext_key_usage, p->svid ? "serverAuth,clientAuth" : "clientAuth" },
			{ NID_subject_key_identifier, "hash" },
			{ NID_authority_key_identifier, "keyid:always" },
			{ NID_subject_alt_name, san },
			{ NID_crl_distribution_points, crl },
			{ NID_info_access, aia },
			{ NID_certificate_policies, p->tpm_resident ? ATT_CA_POLICY_TPM_KEY : NULL },
		};

		if ((p->ek_fp || p->spiffe_id) && !san)
			goto out;
		if (p->attributes && !(attrs = utf8_ext(ATT_CA_EXT_AGENT_ATTRIBUTES, p->attributes)))
			goto out;
		x = issue_leaf(ca, key, p->role, p->machine_id, ext, sizeof(ext) / sizeof(ext[0]), (long)p->seconds,
			       attrs);
	}
	if (!x)
		goto out;
	ret->cert_pem = pem_of(wr_cert, x);
	serial_hex(x, ret->serial);
	snprintf(ret->ca_serial, sizeof(ret->ca_serial), "%s", ca->serial);
	att_csr_key_type(key, ret->key_type);
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm)) {
			strftime(ret->not_after, sizeof(ret->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
			ret->not_after_epoch = (int64_t)timegm(&tm);
		}
	}
	r = ret->cert_pem ? 0 : ATT_E_NOMEM;
	if (r)
		att_ca_leaf_release(ret);
out:
	X509_EXTENSION_free(attrs);
	free(san);
	free(crl);
	free(aia);
	X509_free(x);
	return r;
}

int att_ca_issue(const struct att_ca *ca, const struct att_ca_profile *p, struct att_ca_leaf *ret)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!key)
		return ATT_E_CRYPTO;
	r = att_ca_issue_key(ca, key, p, ret);
	if (r == 0) {
		ret->key_pem = pem_of(wr_key, key);
		if (!ret->key_pem) {
			att_ca_leaf_release(ret);
			r = ATT_E_NOMEM;
		}
	}
	EVP_PKEY_free(key);
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
				     sizeof(ext) / sizeof(ext[0]), 5L * 365 * 24 * 3600, NULL);
	return ca->signer_cert ? 0 : ATT_E_CRYPTO;
}

/* The air-gap bundle exporter: digitalSignature, EKU id-itl-bundle-export
 * (ATT_CA_EKU_BUNDLE_EXPORT) plus emailProtection so a stock
 * `openssl cms -verify` accepts the signature (docs/airgap.md). */
X509 *att_ca_issue_exporter(const struct att_ca *ca, EVP_PKEY *key, long seconds)
{
	const struct leaf_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature,nonRepudiation" },
		{ NID_ext_key_usage, ATT_CA_EKU_BUNDLE_EXPORT ",emailProtection" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};

	return issue_leaf(ca, key, "Air-gap Export", "ITL Bundle Exporter", ext, sizeof(ext) / sizeof(ext[0]), seconds, NULL);
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
