#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"

/* 2026-11-18: every real certificate below is inside its validity. */
#define NOW ((time_t)1795000000)

static uint8_t *slurp(const char *name, size_t *ret_len)
{
	char path[1024];
	FILE *f;
	uint8_t *b;
	long n;

	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/ek/%s", SRCDIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return b;
}

/* Expected fingerprints from: openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha384sum */
static void expect_fp(const char *file, const char *key_type, const char *fp)
{
	struct att_ek ek;
	char err[256] = "";
	size_t n;
	uint8_t *b = slurp(file, &n);
	int r = att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err));

	if (r != 0)
		fail_msg("%s: %s", file, err);
	assert_string_equal(ek.key_type, key_type);
	assert_string_equal(ek.fp, fp);
	assert_true(ek.is_cert);
	/* the same bytes wrapped in base64, as clients send them */
	{
		char *b64 = att_b64_encode(b, n);
		struct att_ek ek2;

		assert_int_equal(att_ek_parse(b64, strlen(b64), "cert", NOW, &ek2, err, sizeof(err)), 0);
		assert_string_equal(ek2.fp, fp);
		assert_true(att_ek_fingerprint_matches(&ek2, fp));
		assert_true(att_ek_fingerprint_matches(&ek2, ek2.fp_legacy));
		assert_true(att_ek_fingerprint_matches(&ek2, ek2.fp_agent));
		free(b64);
	}
	free(b);
}

static void test_real_ek_certificates(void **state)
{
	(void)state;
	expect_fp("ek-google-vtpm-eccp256.pem", "ecc-p256",
		  "73ebfa2d66472f95272867a406f3ee19ef62e951b84f7cccf95b456d70caee906fe5062e769a4b1c3b1765517facd1b3");
	/* PEM with human-readable text before BEGIN; explicit DEFAULT encodings */
	expect_fp("ek-intel-ptt-spt-rsa2048.pem", "rsa-2048",
		  "1bc0be03b74fe303ddd62a07f7d46c02db1478bad8c84c744fbfcaa836f8d87083b1633ae055aefb47fcc00df6f9fc52");
	expect_fp("ek-stm-st33htphahb4-eccp256.der", "ecc-p256",
		  "4c96c5cc598134f989fcd44c9cc7ebce7d1b63f9c57711745e4a87372ebbcb4a4ff1900b9268a76fc2de7efea678f7ff");
	/* multi-valued RDN not in DER order */
	expect_fp("ek-nuvoton-npct75x-rsa2048-nonder.der", "rsa-2048",
		  "1003872a6f5e9c5423916d5aad92b22a1453f6bc59f7c8201205b4be0e4003fa8ac4a7e4b4ee5cc76d61bd69ef9904c2");
	/* NV index padding: 431 bytes of 0xFF after the certificate */
	expect_fp("ek-stm-st33htphahb4-rsa2048-ffpadded.der", "rsa-2048",
		  "d35f80d8d70b7649589c2abb63b7f07fa1775eeb00e99200e80ad8e2f48251099796af3cb92a359d3b0037be03d3097e");
}

static void test_issuer_and_expiry_recorded(void **state)
{
	struct att_ek ek;
	char err[256];
	size_t n;
	uint8_t *b = slurp("ek-google-vtpm-eccp256.pem", &n);
	(void)state;
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err)), 0);
	assert_non_null(strstr(ek.issuer, "O=Google LLC"));
	assert_string_equal(ek.not_after, "2052-09-29T20:33:50");
	/* the same certificate after its notAfter */
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", (time_t)2700000000, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_string_equal(err, "EK certificate expired at 2052-09-29T20:33:50");
	free(b);
}

static void test_spki_and_cert_share_fingerprint(void **state)
{
	struct att_ek a, b;
	char err[256];
	size_t n1, n2;
	uint8_t *pub = slurp("spki.pem", &n2);
	uint8_t *cert = slurp("base64-pem.txt", &n1); /* ek-google-vtpm-rsa2048.pem, base64 */
	(void)state;
	assert_int_equal(att_ek_parse((const char *)cert, n1, "cert", NOW, &a, err, sizeof(err)), 0);
	assert_int_equal(att_ek_parse_bytes(pub, n2, "pub", NOW, &b, err, sizeof(err)), 0);
	assert_string_equal(a.fp, b.fp);
	assert_string_not_equal(a.fp_legacy, b.fp_legacy); /* legacy form depends on the bytes */
	assert_false(b.is_cert);
	free(cert);
	free(pub);
}

static void test_rejects_malformed(void **state)
{
	struct att_ek ek;
	char err[256];
	size_t n;
	uint8_t *b;
	(void)state;
	b = slurp("truncated-ecc.der", &n);
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "Cannot parse EK certificate"));
	free(b);
	b = slurp("trailing-garbage.der", &n);
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_string_equal(err, "Cannot parse EK certificate: 3 unexpected bytes after the certificate");
	free(b);
	/* TPM 1.2 EK with its RSA key under id-RSAES-OAEP, in an NV dump: read as
	 * RSA, so it is refused for the right reason — it expired — and parses
	 * while it was valid */
	b = slurp("ek-infineon-slb9635-tpm12-rsaoaep-nvheader-padded.bin", &n);
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_string_equal(err, "EK certificate expired at 2023-11-15T16:33:13");
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", (time_t)1600000000, &ek, err, sizeof(err)), 0);
	assert_string_equal(ek.key_type, "rsa-2048");
	free(b);
	assert_int_equal(att_ek_parse("!!!!", 4, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_string_equal(err, "Invalid base64 encoding in EK material");
	assert_int_equal(att_ek_parse_bytes((const uint8_t *)"", 0, "cert", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_ek_parse_bytes((const uint8_t *)"x", 1, "tpm", NOW, &ek, err, sizeof(err)), ATT_E_INVAL);
	assert_string_equal(err, "unknown ek_source 'tpm'");
}

static void test_fingerprint_match_rules(void **state)
{
	struct att_ek ek;
	char err[256], upper[97];
	size_t n;
	uint8_t *b = slurp("ek-google-vtpm-eccp256.pem", &n);
	(void)state;
	assert_int_equal(att_ek_parse_bytes(b, n, "cert", NOW, &ek, err, sizeof(err)), 0);
	for (size_t i = 0; i <= 96; i++)
		upper[i] = (ek.fp[i] >= 'a' && ek.fp[i] <= 'f') ? (char)(ek.fp[i] - 32) : ek.fp[i];
	assert_true(att_ek_fingerprint_matches(&ek, upper));
	assert_false(att_ek_fingerprint_matches(&ek, ""));
	upper[5] = upper[5] == '0' ? '1' : '0';
	assert_false(att_ek_fingerprint_matches(&ek, upper));
	assert_false(att_ek_fingerprint_matches(&ek, "00"));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_ek_certificates),
		cmocka_unit_test(test_issuer_and_expiry_recorded),
		cmocka_unit_test(test_spki_and_cert_share_fingerprint),
		cmocka_unit_test(test_rejects_malformed),
		cmocka_unit_test(test_fingerprint_match_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
