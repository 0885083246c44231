#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"

static bool bytes_contain(const uint8_t *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	if (len < n)
		return false;
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return true;
	return false;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void asn1_time_iso(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	out[0] = '\0';
	if (t && ASN1_TIME_to_tm(t, &tm) == 1)
		snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Check the key algorithm and size; fills key_type. */
static int check_key(EVP_PKEY *pk, char key_type[16], char *reterr, size_t errlen)
{
	int id = EVP_PKEY_get_base_id(pk);

	if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(pk);

		if (bits != 2048 && bits != 3072 && bits != 4096) {
			snprintf(reterr, errlen, "unsupported RSA EK size %d bits (expected 2048, 3072 or 4096)", bits);
			return ATT_E_INVAL;
		}
		snprintf(key_type, 16, "rsa-%d", bits);
		return 0;
	}
	if (id == EVP_PKEY_EC) {
		char curve[64] = "";
		size_t n = 0;

		if (EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof(curve), &n) != 1) {
			snprintf(reterr, errlen, "cannot read the EK curve");
			return ATT_E_INVAL;
		}
		if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
			snprintf(key_type, 16, "ecc-p256");
			return 0;
		}
		if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0) {
			snprintf(key_type, 16, "ecc-p384");
			return 0;
		}
		snprintf(reterr, errlen, "unsupported EK curve %s (expected P-256 or P-384)", curve);
		return ATT_E_INVAL;
	}
	snprintf(reterr, errlen, "unsupported EK public key algorithm");
	return ATT_E_INVAL;
}

/* The certificate's public key.  Some TPM vendors (STMicroelectronics,
 * Nuvoton, TPM 1.2-era parts) publish the RSA EK under the id-RSAES-OAEP
 * algorithm identifier (1.2.840.113549.1.1.7), which OpenSSL does not
 * decode; the BIT STRING is still a plain RSAPublicKey, read as such. */
static bool spki_is_oaep(X509_PUBKEY *xpk)
{
	ASN1_OBJECT *alg = NULL;

	return xpk && X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, xpk) == 1 && OBJ_obj2nid(alg) == NID_rsaesOaep;
}

static EVP_PKEY *cert_pubkey(X509 *x)
{
	EVP_PKEY *pk = X509_get_pubkey(x);
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
	ASN1_OBJECT *alg = NULL;
	const unsigned char *der = NULL;
	int len = 0;

	if (pk || !xpk)
		return pk;
	ERR_clear_error();
	if (!spki_is_oaep(xpk) || X509_PUBKEY_get0_param(&alg, &der, &len, NULL, xpk) != 1 || len <= 0)
		return NULL;
	pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &der, len);
	ERR_clear_error();
	return pk;
}

static int spki_fingerprint(X509_PUBKEY *xpk, char out[97])
{
	unsigned char *der = NULL, md[SHA384_DIGEST_LENGTH];
	int n = i2d_X509_PUBKEY(xpk, &der);

	if (n <= 0)
		return ATT_E_CRYPTO;
	SHA384(der, (size_t)n, md);
	OPENSSL_free(der);
	att_hex_encode(md, sizeof(md), out);
	return 0;
}

/* The canonical fingerprint of a key: SHA-384 of its standard SPKI
 * encoding (rsaEncryption / id-ecPublicKey), so an EK published under
 * id-RSAES-OAEP has the fingerprint of the same key read from the TPM. */
static int pubkey_fingerprint(EVP_PKEY *pk, char out[97])
{
	unsigned char *der = NULL, md[SHA384_DIGEST_LENGTH];
	int n = i2d_PUBKEY(pk, &der);

	if (n <= 0)
		return ATT_E_CRYPTO;
	SHA384(der, (size_t)n, md);
	OPENSSL_free(der);
	att_hex_encode(md, sizeof(md), out);
	return 0;
}

/* TPM manufacturer / model from the SAN directoryName (TCG EK profile). */
static void san_tpm_attributes(X509 *x, struct att_ek *ek)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	ASN1_OBJECT *o_manu = OBJ_txt2obj("2.23.133.2.1", 1), *o_model = OBJ_txt2obj("2.23.133.2.2", 1);

	for (int i = 0; gens && o_manu && o_model && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		X509_NAME *dn;

		if (g->type != GEN_DIRNAME)
			continue;
		dn = g->d.directoryName;
		for (int k = 0; k < X509_NAME_entry_count(dn); k++) {
			X509_NAME_ENTRY *ne = X509_NAME_get_entry(dn, k);
			const ASN1_STRING *v = X509_NAME_ENTRY_get_data(ne);
			const unsigned char *d = ASN1_STRING_get0_data(v);
			int len = ASN1_STRING_length(v);
			char txt[80];

			if (len <= 0 || len >= (int)sizeof(txt))
				continue;
			memcpy(txt, d, (size_t)len);
			txt[len] = '\0';
			for (int c = 0; c < len; c++)
				if ((unsigned char)txt[c] < 0x20 || (unsigned char)txt[c] > 0x7e)
					txt[c] = '?';
			if (OBJ_cmp(X509_NAME_ENTRY_get_object(ne), o_manu) == 0) {
				/* "id:53544D20": four ASCII bytes, space-padded */
				uint8_t id[4];

				if (len == 11 && strncmp(txt, "id:", 3) == 0 && att_hex_decode(txt + 3, 8, id) == 0) {
					int m = 0;

					for (int c = 0; c < 4; c++)
						if (id[c] > 0x20 && id[c] < 0x7f)
							ek->manufacturer[m++] = (char)id[c];
					ek->manufacturer[m] = '\0';
				} else {
					snprintf(ek->manufacturer, sizeof(ek->manufacturer), "%s", txt);
				}
			} else if (OBJ_cmp(X509_NAME_ENTRY_get_object(ne), o_model) == 0) {
				snprintf(ek->model, sizeof(ek->model), "%s", txt);
			}
		}
	}
	ASN1_OBJECT_free(o_manu);
	ASN1_OBJECT_free(o_model);
	GENERAL_NAMES_free(gens);
}

static int parse_cert(const uint8_t *p, size_t len, time_t now, struct att_ek *ek, char *reterr,
		      size_t errlen)
{
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	int r = ATT_E_INVAL;

	if (bytes_contain(p, len, "-----BEGIN")) {
		BIO *bio = BIO_new_mem_buf(p, (int)len);

		if (!bio)
			return ATT_E_NOMEM;
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (!x) {
			snprintf(reterr, errlen, "Cannot parse EK certificate: invalid PEM certificate");
			goto out;
		}
	} else {
		const unsigned char *q = p;
		size_t off = 0;

		/* TCG PC Client NV header: tag 0x1001, fullCert, length, tag 0x1002 */
		if (len > 7 && p[0] == 0x10 && p[1] == 0x01 && p[5] == 0x10 && p[6] == 0x02)
			off = 7;
		q = p + off;
		x = d2i_X509(NULL, &q, (long)(len - off));
		if (!x) {
			snprintf(reterr, errlen, "Cannot parse EK certificate: invalid DER certificate");
			goto out;
		}
		{
			size_t used = (size_t)(q - p), rest = len - used;

			/* NV indices are padded; anything else after the cert is an error */
			if (rest && !all_bytes(q, rest, 0x00) && !all_bytes(q, rest, 0xff)) {
				snprintf(reterr, errlen,
					 "Cannot parse EK certificate: %zu unexpected bytes after the certificate",
					 rest);
				goto out;
			}
		}
	}
	pk = cert_pubkey(x);
	if (!pk) {
		snprintf(reterr, errlen, "Cannot parse EK public key: unsupported key encoding");
		goto out;
	}
	r = check_key(pk, ek->key_type, reterr, errlen);
	if (r < 0)
		goto out;
	r = ATT_E_INVAL;
	{
		uint32_t ku = X509_get_key_usage(x);

		if (ku != UINT32_MAX) {
			bool rsa = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;

			if (rsa && !(ku & KU_KEY_ENCIPHERMENT)) {
				snprintf(reterr, errlen, "EK cert Key Usage does not include keyEncipherment");
				goto out;
			}
			if (!rsa && !(ku & (KU_KEY_AGREEMENT | KU_KEY_ENCIPHERMENT))) {
				snprintf(reterr, errlen, "EK cert Key Usage does not include keyAgreement");
				goto out;
			}
		}
	}
	{
		const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
		time_t t = now;
		char iso[32];

		if (X509_cmp_time(na, &t) < 0) {
			asn1_time_iso(na, iso);
			snprintf(reterr, errlen, "EK certificate expired at %s", iso);
			goto out;
		}
		if (X509_cmp_time(nb, &t) > 0) {
			asn1_time_iso(nb, iso);
			snprintf(reterr, errlen, "EK certificate not yet valid (valid from %s)", iso);
			goto out;
		}
		asn1_time_iso(na, ek->not_after);
		{
			struct tm tm;

			ek->valid_from = ASN1_TIME_to_tm(nb, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
			ek->valid_until = ASN1_TIME_to_tm(na, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
		}
	}
	{
		BIO *mem = BIO_new(BIO_s_mem());
		char *data;
		long n;

		if (!mem) {
			r = ATT_E_NOMEM;
			goto out;
		}
		X509_NAME_print_ex(mem, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
		n = BIO_get_mem_data(mem, &data);
		if (n < 0)
			n = 0;
		if ((size_t)n >= sizeof(ek->issuer))
			n = sizeof(ek->issuer) - 1;
		memcpy(ek->issuer, data, (size_t)n);
		ek->issuer[n] = '\0';
		BIO_free(mem);
	}
	if ((spki_is_oaep(X509_get_X509_PUBKEY(x)) ? pubkey_fingerprint(pk, ek->fp)
						   : spki_fingerprint(X509_get_X509_PUBKEY(x), ek->fp)) < 0) {
		snprintf(reterr, errlen, "Cannot parse EK public key: cannot encode");
		goto out;
	}
	san_tpm_attributes(x, ek);
	ek->is_cert = true;
	r = 0;
out:
	EVP_PKEY_free(pk);
	X509_free(x);
	return r;
}

static int parse_pub(const uint8_t *p, size_t len, struct att_ek *ek, char *reterr, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	X509_PUBKEY *xpk = NULL;
	int r = ATT_E_INVAL;

	if (bytes_contain(p, len, "-----BEGIN")) {
		BIO *bio = BIO_new_mem_buf(p, (int)len);

		if (!bio)
			return ATT_E_NOMEM;
		pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		const unsigned char *q = p;

		pk = d2i_PUBKEY(NULL, &q, (long)len);
		if (pk && (size_t)(q - p) != len) {
			snprintf(reterr, errlen, "Cannot parse EK public key: trailing bytes");
			goto out;
		}
	}
	if (!pk) {
		snprintf(reterr, errlen, "Cannot parse EK public key: not a SubjectPublicKeyInfo");
		goto out;
	}
	r = check_key(pk, ek->key_type, reterr, errlen);
	if (r < 0)
		goto out;
	r = ATT_E_INVAL;
	ek->valid_from = 0;
	ek->valid_until = INT64_MAX;
	if (X509_PUBKEY_set(&xpk, pk) != 1 || spki_fingerprint(xpk, ek->fp) < 0) {
		snprintf(reterr, errlen, "Cannot parse EK public key: cannot encode");
		goto out;
	}
	r = 0;
out:
	X509_PUBKEY_free(xpk);
	EVP_PKEY_free(pk);
	return r;
}

int att_ek_parse_bytes(const uint8_t *der, size_t len, const char *source, time_t now,
		       struct att_ek *ret, char *reterr, size_t errlen)
{
	struct att_ek ek;
	unsigned char md[SHA384_DIGEST_LENGTH];
	int r;

	memset(&ek, 0, sizeof(ek));
	if (len == 0 || len > ATT_EK_MAX_B64) {
		snprintf(reterr, errlen, "EK material is empty or too large");
		return ATT_E_INVAL;
	}
	if (!source || strcmp(source, "cert") == 0)
		r = parse_cert(der, len, now, &ek, reterr, errlen);
	else if (strcmp(source, "pub") == 0)
		r = parse_pub(der, len, &ek, reterr, errlen);
	else {
		snprintf(reterr, errlen, "unknown ek_source '%s'", source);
		return ATT_E_INVAL;
	}
	if (r < 0)
		return r;
	SHA384(der, len, md);
	att_hex_encode(md, SHA384_DIGEST_LENGTH, ek.fp_legacy);
	SHA256(der, len, md);
	att_hex_encode(md, SHA256_DIGEST_LENGTH, ek.fp_agent);
	*ret = ek;
	return 0;
}

/* ---- parse cache -------------------------------------------------------- */

#define EK_CACHE_SLOTS 4096
#define EK_CACHE_LOCKS 64

struct ek_cache_slot {
	bool used;
	uint8_t key[32];
	struct att_ek ek;
};

static struct ek_cache_slot ek_cache[EK_CACHE_SLOTS];
static pthread_mutex_t ek_cache_mu[EK_CACHE_LOCKS];
static pthread_once_t ek_cache_once = PTHREAD_ONCE_INIT;

static void ek_cache_init(void)
{
	for (int i = 0; i < EK_CACHE_LOCKS; i++)
		pthread_mutex_init(&ek_cache_mu[i], NULL);
}

/* The key covers the input bytes; the source is folded into the last
 * byte (cert and pub parses of the same bytes never share a slot). */
static void ek_cache_key(const char *b64, size_t len, const char *source, uint8_t key[32])
{
	SHA256((const unsigned char *)b64, len, key);
	key[31] ^= (uint8_t)(strcmp(source, "pub") == 0 ? 0x5a : 0x00);
}

static bool ek_cache_get(const uint8_t key[32], struct att_ek *ret)
{
	unsigned slot = ((unsigned)key[0] << 8 | key[1]) % EK_CACHE_SLOTS;
	bool hit;

	pthread_mutex_lock(&ek_cache_mu[slot % EK_CACHE_LOCKS]);
	hit = ek_cache[slot].used && memcmp(ek_cache[slot].key, key, 32) == 0;
	if (hit)
		*ret = ek_cache[slot].ek;
	pthread_mutex_unlock(&ek_cache_mu[slot % EK_CACHE_LOCKS]);
	return hit;
}

static void ek_cache_put(const uint8_t key[32], const struct att_ek *ek)
{
	unsigned slot = ((unsigned)key[0] << 8 | key[1]) % EK_CACHE_SLOTS;

	pthread_mutex_lock(&ek_cache_mu[slot % EK_CACHE_LOCKS]);
	ek_cache[slot].used = true;
	memcpy(ek_cache[slot].key, key, 32);
	ek_cache[slot].ek = *ek;
	pthread_mutex_unlock(&ek_cache_mu[slot % EK_CACHE_LOCKS]);
}

int att_ek_parse(const char *b64, size_t b64len, const char *source, time_t now,
		 struct att_ek *ret, char *reterr, size_t errlen)
{
	uint8_t *bytes = NULL, key[32];
	size_t n = 0;
	int r;

	if (!source)
		source = "cert";
	if (b64len <= ATT_EK_MAX_B64) {
		struct att_ek hit;

		pthread_once(&ek_cache_once, ek_cache_init);
		ek_cache_key(b64, b64len, source, key);
		if (ek_cache_get(key, &hit)) {
			if ((int64_t)now > hit.valid_until) {
				snprintf(reterr, errlen, "EK certificate expired at %s", hit.not_after);
				return ATT_E_INVAL;
			}
			if ((int64_t)now < hit.valid_from)
				goto slow; /* let the full parse word the error */
			*ret = hit;
			return 0;
		}
	}
slow:
	if (b64len > ATT_EK_MAX_B64) {
		snprintf(reterr, errlen, "EK material is larger than %d bytes", ATT_EK_MAX_B64);
		return ATT_E_INVAL;
	}
	r = att_b64_decode(b64, b64len, &bytes, &n);
	if (r == ATT_E_NOMEM)
		return r;
	if (r < 0) {
		snprintf(reterr, errlen, "Invalid base64 encoding in EK material");
		return ATT_E_INVAL;
	}
	r = att_ek_parse_bytes(bytes, n, source, now, ret, reterr, errlen);
	free(bytes);
	if (r == 0)
		ek_cache_put(key, ret);
	return r;
}

static bool fp_eq(const char *a, const char *reported, size_t n)
{
	char low[97];

	if (strlen(reported) != n || n >= sizeof(low))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = reported[i];

		low[i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
	}
	return att_ct_equal(a, n, low, n);
}

bool att_ek_fingerprint_matches(const struct att_ek *ek, const char *reported)
{
	bool ok = false;

	ok |= fp_eq(ek->fp, reported, 96);
	ok |= fp_eq(ek->fp_legacy, reported, 96);
	ok |= fp_eq(ek->fp_agent, reported, 64);
	return ok;
}

EVP_PKEY *att_ek_load_key(const char *ek_b64, const char *source)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	EVP_PKEY *pk = NULL;

	if (att_b64_decode(ek_b64, strlen(ek_b64), &raw, &n) < 0)
		return NULL;
	if (n > 7 && raw[0] == 0x10 && raw[1] == 0x01 && raw[5] == 0x10 && raw[6] == 0x02) {
		memmove(raw, raw + 7, n - 7);
		n -= 7;
	}
	{
		BIO *bio = BIO_new_mem_buf(raw, (int)n);
		bool pem = n > 10 && memmem(raw, n, "-----BEGIN", 10) != NULL;

		if (bio) {
			if (source && strcmp(source, "pub") == 0) {
				pk = pem ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : d2i_PUBKEY_bio(bio, NULL);
			} else {
				X509 *x = pem ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : d2i_X509_bio(bio, NULL);

				if (x)
					pk = cert_pubkey(x);
				X509_free(x);
			}
			BIO_free(bio);
		}
	}
	free(raw);
	return pk;
}
