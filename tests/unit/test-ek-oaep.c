/* EK certificates whose RSA key is published under id-RSAES-OAEP
 * (1.2.840.113549.1.1.7), as STMicroelectronics, Nuvoton and TPM 1.2-era
 * parts do: made here at test time (a local CA, a fresh RSA-2048 EK, the
 * SubjectPublicKeyInfo's algorithm rewritten to OAEP, then signed), read
 * as RSA, fingerprinted like the same key from the TPM, refused for
 * expiry for the right reason, and their chain still verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "crypto/ekchain.h"

#define NOW ((time_t)1795000000)
#define DAY 86400

static EVP_PKEY *ca_key, *ek_key, *other_ca_key;
static X509 *ca, *other_ca;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* oaep: 0 plain rsaEncryption, 1 OAEP without parameters, 2 OAEP with an
 * empty RSAES-OAEP-params SEQUENCE (the defaults). */
static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, time_t from, time_t to,
		       int oaep)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	ASN1_TIME_set(X509_getm_notBefore(x), from);
	ASN1_TIME_set(X509_getm_notAfter(x), to);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer) {
		add_ext(x, issuer, NID_key_usage, "critical,keyEncipherment");
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
	} else {
		add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
	}
	if (oaep) {
		unsigned char *rsapub = NULL;
		int len = i2d_PublicKey(key, &rsapub);
		ASN1_STRING *params = NULL;

		assert_true(len > 0);
		if (oaep == 2) {
			params = ASN1_STRING_new();
			ASN1_STRING_set(params, "\x30\x00", 2);	/* SEQUENCE {} */
		}
		assert_int_equal(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_rsaesOaep),
							oaep == 2 ? V_ASN1_SEQUENCE : V_ASN1_UNDEF, params, rsapub, len),
				 1);
	}
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static uint8_t *der_of(X509 *x, size_t *len)
{
	unsigned char *d = NULL;
	int n = i2d_X509(x, &d);
	uint8_t *out;

	assert_true(n > 0);
	out = malloc((size_t)n);
	memcpy(out, d, (size_t)n);
	OPENSSL_free(d);
	*len = (size_t)n;
	return out;
}

static char *b64_pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	out = att_b64_encode((const uint8_t *)data, (size_t)n);
	BIO_free(b);
	return out;
}

static int setup(void **state)
{
	(void)state;
	ca_key = EVP_RSA_gen(2048);
	ek_key = EVP_RSA_gen(2048);
	other_ca_key = EVP_RSA_gen(2048);
	ca = make_cert(ca_key, ca_key, NULL, "Test TPM Vendor Root", NOW - 3650 * DAY, NOW + 3650 * DAY, 0);
	other_ca = make_cert(other_ca_key, other_ca_key, NULL, "Other Root", NOW - DAY, NOW + DAY, 0);
	return ca_key && ek_key && other_ca_key && ca && other_ca ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	X509_free(other_ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ek_key);
	EVP_PKEY_free(other_ca_key);
	return 0;
}

/* The canonical fingerprint of the EK key itself (rsaEncryption SPKI). */
static void key_fp(EVP_PKEY *k, char out[97])
{
	unsigned char *d = NULL;
	int n = i2d_PUBKEY(k, &d);
	struct att_ek ek;
	char err[256];

	assert_int_equal(att_ek_parse_bytes(d, (size_t)n, "pub", NOW, &ek, err, sizeof(err)), 0);
	OPENSSL_free(d);
	memcpy(out, ek.fp, 97);
}

static void test_oaep_ek_read_as_rsa(void **state)
{
	char want[97], err[256];
	(void)state;
	key_fp(ek_key, want);
	for (int oaep = 1; oaep <= 2; oaep++) {
		X509 *x = make_cert(ek_key, ca_key, ca, "OAEP EK", NOW - DAY, NOW + 365 * DAY, oaep);
		size_t n;
		uint8_t *der = der_of(x, &n);
		char *b64 = b64_pem_of(x);
		struct att_ek ek;
		EVP_PKEY *pk;

		/* the shape is real: OpenSSL itself cannot decode the key */
		assert_null(X509_get0_pubkey(x) ? NULL : NULL);
		assert_int_equal(att_ek_parse_bytes(der, n, "cert", NOW, &ek, err, sizeof(err)), 0);
		assert_string_equal(ek.key_type, "rsa-2048");
		assert_string_equal(ek.fp, want);	/* as the TPM's own public key */
		assert_true(ek.is_cert);
		assert_int_equal(att_ek_parse(b64, strlen(b64), "cert", NOW, &ek, err, sizeof(err)), 0);
		pk = att_ek_load_key(b64, "cert");	/* for MakeCredential */
		assert_non_null(pk);
		assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_RSA);
		assert_int_equal(EVP_PKEY_eq(pk, ek_key), 1);
		EVP_PKEY_free(pk);
		free(b64);
		free(der);
		X509_free(x);
	}
}

static void test_oaep_ek_expired_for_the_right_reason(void **state)
{
	X509 *x = make_cert(ek_key, ca_key, ca, "OAEP EK", NOW - 3 * DAY, NOW - DAY, 1);
	size_t n;
	uint8_t *der = der_of(x, &n);
	struct att_ek ek;
	char err[256];

	(void)state;
	assert_int_equal(att_ek_parse_bytes(der, n, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "EK certificate expired at"));
	free(der);
	X509_free(x);
}

static void test_oaep_ek_chain_verifies(void **state)
{
	char dir[] = "/tmp/test-ek-oaep.XXXXXX", path[64], err[256];
	X509 *x = make_cert(ek_key, ca_key, ca, "OAEP EK", NOW - DAY, NOW + 365 * DAY, 2);
	X509 *foreign = make_cert(ek_key, other_ca_key, other_ca, "OAEP EK", NOW - DAY, NOW + 365 * DAY, 2);
	char *b64 = b64_pem_of(x), *b64f = b64_pem_of(foreign);
	struct att_ek_trust *t = NULL;
	struct att_ek_chain_result res;
	int roots = 0, inter = 0;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/root.pem", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	PEM_write_X509(f, ca);
	fclose(f);
	assert_int_equal(att_ek_trust_load(dir, &t, &roots, &inter, err, sizeof(err)), 0);
	assert_int_equal(roots, 1);
	memset(&res, 0, sizeof(res));
	assert_int_equal(att_ek_chain_verify(t, b64, NULL, NOW, &res, err, sizeof(err)), 0);
	if (!res.verified)
		fprintf(stderr, "chain: %s\n", res.error);
	assert_true(res.verified);
	att_ek_chain_result_release(&res);
	memset(&res, 0, sizeof(res));
	assert_int_equal(att_ek_chain_verify(t, b64f, NULL, NOW, &res, err, sizeof(err)), 0);
	assert_false(res.verified);	/* another vendor's root: not trusted */
	att_ek_chain_result_release(&res);
	att_ek_trust_free(t);
	unlink(path);
	rmdir(dir);
	free(b64);
	free(b64f);
	X509_free(x);
	X509_free(foreign);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oaep_ek_read_as_rsa),
		cmocka_unit_test(test_oaep_ek_expired_for_the_right_reason),
		cmocka_unit_test(test_oaep_ek_chain_verifies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
