#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"
#include "../helpers/softquote.h"

static void unhex(const char *h, uint8_t *out)
{
	assert_int_equal(att_hex_decode(h, strlen(h), out), 0);
}

/* tpm.md 2.3: go-tpm's first kdfa vector (SHA-1, 140 bits: masking) */
static void test_kdfa_vector(void **state)
{
	uint8_t key[1], u[18], v[8], out[40];
	char hex[37];

	(void)state;
	unhex("ff", key);
	unhex("86ed23c15d086e70a8eae700680e75d20cff", u);
	unhex("51122c5879b277ff", v);
	assert_int_equal(att_tpm_kdfa(EVP_sha1(), key, 1, "CFB", u, sizeof(u), v, sizeof(v), 140, out), 0);
	att_hex_encode(out, 18, hex);
	assert_string_equal(hex, "0d0be71c885d10eb61f2219000885c2d7658");
	/* the empty key works */
	assert_int_equal(att_tpm_kdfa(EVP_sha1(), NULL, 0, "CFB", u, sizeof(u), v, sizeof(v), 283, out), 0);
}

/* KDFa = SP 800-108 counter mode (OpenSSL KBKDF), KDFe = SP 800-56A
 * concatenation KDF (OpenSSL SSKDF): independent implementations. */
static void test_kdf_against_openssl(void **state)
{
	uint8_t secret[48], u[34], v[20], mine[96], theirs[96], ctx[54], info[64];
	const char *mds[] = { "SHA256", "SHA384" };

	(void)state;
	for (int round = 0; round < 40; round++) {
		const EVP_MD *md = EVP_get_digestbyname(mds[round % 2]);
		size_t n = 16 + (size_t)(round * 7) % 80;
		EVP_KDF *kdf;
		EVP_KDF_CTX *kc;
		OSSL_PARAM p[8], *q;
		int use_l = 1, sep = 1;

		assert_int_equal(att_random(secret, sizeof(secret)), 0);
		assert_int_equal(att_random(u, sizeof(u)), 0);
		assert_int_equal(att_random(v, sizeof(v)), 0);
		memcpy(ctx, u, sizeof(u));
		memcpy(ctx + sizeof(u), v, sizeof(v));
		assert_int_equal(att_tpm_kdfa(md, secret, sizeof(secret), "STORAGE", u, sizeof(u), v, sizeof(v),
					      (uint32_t)n * 8, mine), 0);
		kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
		kc = EVP_KDF_CTX_new(kdf);
		q = p;
		*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"HMAC", 0);
		*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)mds[round % 2], 0);
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, sizeof(secret));
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)"STORAGE", 7);
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctx, sizeof(ctx));
		*q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_L, &use_l);
		*q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_SEPARATOR, &sep);
		*q = OSSL_PARAM_construct_end();
		assert_int_equal(EVP_KDF_derive(kc, theirs, n, p), 1);
		assert_memory_equal(mine, theirs, n);
		EVP_KDF_CTX_free(kc);
		EVP_KDF_free(kdf);

		assert_int_equal(att_tpm_kdfe(md, secret, sizeof(secret), "IDENTITY", u, sizeof(u), v, sizeof(v),
					      (uint32_t)n * 8, mine), 0);
		memcpy(info, "IDENTITY", 9);
		memcpy(info + 9, u, sizeof(u));
		memcpy(info + 9 + sizeof(u), v, sizeof(v));
		kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
		kc = EVP_KDF_CTX_new(kdf);
		q = p;
		*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)mds[round % 2], 0);
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, sizeof(secret));
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 9 + sizeof(u) + sizeof(v));
		*q = OSSL_PARAM_construct_end();
		assert_int_equal(EVP_KDF_derive(kc, theirs, n, p), 1);
		assert_memory_equal(mine, theirs, n);
		EVP_KDF_CTX_free(kc);
		EVP_KDF_free(kdf);
	}
}

/* MakeCredential layout for each EK template (tpm.md 2.5): ID object
 * 2 + (2 + dlen) + (2 + 32) bytes, secret 2 + 256 (RSA) or 2 + 2(2 + c). */
static void test_make_credential_layout(void **state)
{
	static const struct {
		const char *alg;
		const char *param;
		size_t id_len, secret_len;
	} cases[] = {
		{ "RSA", NULL, 2 + 2 + 32 + 34, 2 + 256 },
		{ "EC", "P-256", 2 + 2 + 32 + 34, 2 + 2 + 32 + 2 + 32 },
		{ "EC", "P-384", 2 + 2 + 48 + 34, 2 + 2 + 48 + 2 + 48 },
	};
	uint8_t name[34], cv[32];
	char err[256];

	(void)state;
	memset(name, 0x11, sizeof(name));
	name[0] = 0x00;
	name[1] = 0x0b;
	memset(cv, 0x42, sizeof(cv));
	for (size_t i = 0; i < ATT_ARRAY_SIZE(cases); i++) {
		EVP_PKEY *k = cases[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", cases[i].param)
					     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		struct att_tpm_pub ek;
		struct att_tpm_credential c;
		char *blob;

		assert_non_null(k);
		assert_int_equal(att_tpm_pub_ek_template(k, &ek, err, sizeof(err)), 0);
		assert_int_equal(att_tpm_pub_check_ek(&ek, err, sizeof(err)), 0);
		assert_int_equal(att_tpm_make_credential(&ek, name, sizeof(name), cv, sizeof(cv), &c, err, sizeof(err)), 0);
		assert_int_equal(c.id_object_len, cases[i].id_len);
		assert_int_equal(c.secret_len, cases[i].secret_len);
		assert_int_equal((c.id_object[0] << 8 | c.id_object[1]) + 2, (int)c.id_object_len);
		assert_int_equal((c.secret[0] << 8 | c.secret[1]) + 2, (int)c.secret_len);
		blob = att_tpm_credential_blob_b64(&c);
		assert_non_null(blob);
		free(blob);
		/* bad inputs */
		assert_int_equal(att_tpm_make_credential(&ek, name, sizeof(name), cv, 0, &c, err, sizeof(err)), ATT_E_INVAL);
		assert_int_equal(att_tpm_make_credential(&ek, name, sizeof(name), cv, 65, &c, err, sizeof(err)), ATT_E_INVAL);
		assert_int_equal(att_tpm_make_credential(&ek, name, 1, cv, 32, &c, err, sizeof(err)), ATT_E_INVAL);
		att_tpm_pub_release(&ek);
		EVP_PKEY_free(k);
	}
}

static void test_pub_parse_and_ak_rules(void **state)
{
	struct softak ak;
	struct att_tpm_pub p;
	char err[256];
	uint8_t buf[1100];

	(void)state;
	assert_int_equal(softak_new(&ak, "rsa", 0), 0);
	assert_int_equal(att_tpm_pub_parse(ak.pub, ak.pub_len, &p, err, sizeof(err)), 0);
	assert_int_equal(att_tpm_pub_check_ak(&p, err, sizeof(err)), 0);
	assert_true(att_tpm_pub_same_key(&p, ak.key));
	assert_int_equal(p.name_len, 34);
	att_tpm_pub_release(&p);
	/* every truncation and a padded copy fail */
	for (size_t n = 0; n < ak.pub_len; n++)
		assert_int_equal(att_tpm_pub_parse(ak.pub, n, &p, err, sizeof(err)), ATT_E_INVAL);
	memcpy(buf, ak.pub, ak.pub_len);
	buf[ak.pub_len] = 0;
	assert_int_equal(att_tpm_pub_parse(buf, ak.pub_len + 1, &p, err, sizeof(err)), ATT_E_INVAL);
	softak_free(&ak);

	/* attributes: not restricted, decrypt set */
	assert_int_equal(softak_new(&ak, "ecc", 0x00040072), 0);
	assert_int_equal(att_tpm_pub_parse(ak.pub, ak.pub_len, &p, err, sizeof(err)), 0);
	assert_int_equal(att_tpm_pub_check_ak(&p, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "restricted"));
	att_tpm_pub_release(&p);
	softak_free(&ak);
	assert_int_equal(softak_new(&ak, "rsa", 0x00070072), 0);
	assert_int_equal(att_tpm_pub_parse(ak.pub, ak.pub_len, &p, err, sizeof(err)), 0);
	assert_int_equal(att_tpm_pub_check_ak(&p, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "decrypt"));
	att_tpm_pub_release(&p);
	softak_free(&ak);
	/* an ECC point not on the curve */
	assert_int_equal(softak_new(&ak, "ecc", 0), 0);
	ak.pub[ak.pub_len - 1] ^= 1;
	assert_int_equal(att_tpm_pub_parse(ak.pub, ak.pub_len, &p, err, sizeof(err)), ATT_E_INVAL);
	softak_free(&ak);
}

static void test_quote_checks(void **state)
{
	static const char *kinds[] = { "rsa", "rsapss", "ecc" };
	uint8_t nonce[32], pcr[8][32], attest[2048], sig[1024], bad[2048];
	size_t al, sl;
	char err[512], key[16], hex[65];

	(void)state;
	assert_int_equal(att_random(nonce, sizeof(nonce)), 0);
	assert_int_equal(att_random(pcr, sizeof(pcr)), 0);
	for (size_t k = 0; k < ATT_ARRAY_SIZE(kinds); k++) {
		struct softak ak, other;
		struct att_tpm_pub p, po;
		struct att_tpm_pcrs vals;
		struct att_tpm_quote q;

		memset(&vals, 0, sizeof(vals));
		assert_int_equal(softak_new(&ak, kinds[k], 0), 0);
		assert_int_equal(softak_new(&other, kinds[k], 0), 0);
		assert_int_equal(att_tpm_pub_parse(ak.pub, ak.pub_len, &p, err, sizeof(err)), 0);
		assert_int_equal(att_tpm_pub_parse(other.pub, other.pub_len, &po, err, sizeof(err)), 0);
		for (unsigned i = 0; i < 8; i++) {
			snprintf(key, sizeof(key), "sha256:%u", i);
			att_hex_encode(pcr[i], 32, hex);
			assert_int_equal(att_tpm_pcrs_add(&vals, key, hex, err, sizeof(err)), 0);
		}
		assert_int_equal(att_tpm_pcrs_add(&vals, "sha256:7", hex, err, sizeof(err)), ATT_E_INVAL);
		assert_int_equal(softquote_make(&ak, nonce, 32, (const uint8_t(*)[32])pcr, 8, ATT_TPM_ALG_SHA256, attest, &al,
						sig, &sl), 0);
		assert_int_equal(att_tpm_quote_check(&p, attest, al, sig, sl, nonce, 32, &vals, &q, err, sizeof(err)), 0);
		assert_int_equal(q.reset_count, 3);
		assert_int_equal(q.restart_count, 1);
		/* another key, another nonce, altered PCR, altered bytes */
		assert_int_equal(att_tpm_quote_check(&po, attest, al, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)),
				 ATT_E_INVAL);
		nonce[0] ^= 1;
		assert_int_equal(att_tpm_quote_check(&p, attest, al, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)),
				 ATT_E_INVAL);
		assert_non_null(strstr(err, "nonce"));
		nonce[0] ^= 1;
		assert_int_equal(att_tpm_quote_check(&p, attest, al, sig, sl, nonce, 31, &vals, NULL, err, sizeof(err)),
				 ATT_E_INVAL);
		vals.v[3].value[0] ^= 1;
		assert_int_equal(att_tpm_quote_check(&p, attest, al, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)),
				 ATT_E_INVAL);
		assert_non_null(strstr(err, "pcrDigest"));
		vals.v[3].value[0] ^= 1;
		for (size_t i = 0; i < al; i += 7) {
			memcpy(bad, attest, al);
			bad[i] ^= 0x20;
			assert_int_not_equal(att_tpm_quote_check(&p, bad, al, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)), 0);
		}
		for (size_t n = 0; n < al; n++)
			assert_int_not_equal(att_tpm_quote_check(&p, attest, n, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)), 0);
		for (size_t n = 0; n < sl; n++)
			assert_int_not_equal(att_tpm_quote_check(&p, attest, al, sig, n, nonce, 32, &vals, NULL, err, sizeof(err)), 0);
		/* a signature with another hash than the AK's scheme */
		assert_int_equal(softquote_make(&ak, nonce, 32, (const uint8_t(*)[32])pcr, 8, ATT_TPM_ALG_SHA384, attest, &al,
						sig, &sl), 0);
		assert_int_equal(att_tpm_quote_check(&p, attest, al, sig, sl, nonce, 32, &vals, NULL, err, sizeof(err)),
				 ATT_E_INVAL);
		assert_non_null(strstr(err, "scheme"));
		att_tpm_pub_release(&p);
		att_tpm_pub_release(&po);
		softak_free(&ak);
		softak_free(&other);
	}
}

static void test_pcr_value_rules(void **state)
{
	struct att_tpm_pcrs v;
	char err[256];

	(void)state;
	memset(&v, 0, sizeof(v));
	assert_int_equal(att_tpm_pcrs_add(&v, "sha256:24", "00", err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_tpm_pcrs_add(&v, "md5:1", "00", err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_tpm_pcrs_add(&v, "sha256", "00", err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_tpm_pcrs_add(&v, "sha1:1", "00", err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_tpm_pcrs_add(&v, "sha1:1", "0000000000000000000000000000000000000000", err, sizeof(err)), 0);
	assert_int_equal(att_tpm_pcrs_add(&v, "sha1:01", "000000000000000000000000000000000000000z", err, sizeof(err)),
			 ATT_E_INVAL);
	assert_int_equal(v.n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kdfa_vector),
		cmocka_unit_test(test_kdf_against_openssl),
		cmocka_unit_test(test_make_credential_layout),
		cmocka_unit_test(test_pub_parse_and_ak_rules),
		cmocka_unit_test(test_quote_checks),
		cmocka_unit_test(test_pcr_value_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
