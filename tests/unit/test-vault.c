/* test-vault.c - the secret vault's master key and encryption at rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "vault/vault.h"

#define KEY1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2 "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static struct att_vault *open_key(const char *hex, const char *pass)
{
	struct att_config c = { 0 };
	struct att_vault *v = NULL;
	char err[256];

	c.shared_secret_master_key = (char *)hex;
	c.shared_secret_passphrase = (char *)pass;
	assert_int_equal(att_vault_open(&c, &v, err, sizeof(err)), 0);
	return v;
}

static void test_vault_open_without_key_is_off(void **state)
{
	(void)state;
	assert_null(open_key("", ""));
}

static void test_vault_open_bad_key_names_variable(void **state)
{
	struct att_config c = { 0 };
	struct att_vault *v = NULL;
	char err[256];

	(void)state;
	c.shared_secret_master_key = (char *)"abcd";
	assert_int_equal(att_vault_open(&c, &v, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "ITL_SHARED_SECRET_MASTER_KEY"));
	c.shared_secret_master_key = (char *)"";
	c.shared_secret_passphrase = (char *)"short";
	assert_int_equal(att_vault_open(&c, &v, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "ITL_SHARED_SECRET_PASSPHRASE"));
	assert_null(v);
}

static void test_vault_key_id_stable_and_distinct(void **state)
{
	struct att_vault *a = open_key(KEY1, ""), *b = open_key(KEY1, ""), *c = open_key(KEY2, "");
	struct att_vault *p = open_key("", "correct horse battery staple");

	(void)state;
	assert_int_equal(strlen(att_vault_key_id(a)), 16);
	assert_string_equal(att_vault_key_id(a), att_vault_key_id(b));
	assert_string_not_equal(att_vault_key_id(a), att_vault_key_id(c));
	assert_string_not_equal(att_vault_key_id(a), att_vault_key_id(p));
	/* the id reveals nothing of the key */
	assert_null(strstr(KEY1, att_vault_key_id(a)));
	att_vault_free(a);
	att_vault_free(b);
	att_vault_free(c);
	att_vault_free(p);
}

static void test_vault_seal_roundtrip_and_binding(void **state)
{
	struct att_vault *v = open_key(KEY1, ""), *w = open_key(KEY2, "");
	const uint8_t val[] = { 0, 1, 2, 0xff, 's', 'e', 'c' };
	char *iv = NULL, *ct = NULL, *iv2 = NULL, *ct2 = NULL;
	uint8_t *out = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(att_vault_seal(v, "m1", "tok", 3, val, sizeof(val), &iv, &ct), 0);
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 3, iv, ct, &out, &n), 0);
	assert_int_equal(n, sizeof(val));
	assert_memory_equal(out, val, n);
	free(out);
	/* machine, name, version and key are all bound */
	assert_int_equal(att_vault_unseal(v, "m2", "tok", 3, iv, ct, &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(v, "m1", "tok2", 3, iv, ct, &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 4, iv, ct, &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(w, "m1", "tok", 3, iv, ct, &out, &n), ATT_E_CRYPTO);
	/* "m1"+"tok" must not collide with "m1t"+"ok" */
	assert_int_equal(att_vault_unseal(v, "m1t", "ok", 3, iv, ct, &out, &n), ATT_E_CRYPTO);
	/* a fresh IV each time */
	assert_int_equal(att_vault_seal(v, "m1", "tok", 3, val, sizeof(val), &iv2, &ct2), 0);
	assert_string_not_equal(iv, iv2);
	assert_string_not_equal(ct, ct2);
	/* tampered ciphertext, truncated, malformed base64, wrong IV length */
	ct[2] = ct[2] == 'A' ? 'B' : 'A';
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 3, iv, ct, &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 3, iv, "AAAA", &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 3, "!!", ct2, &out, &n), ATT_E_CRYPTO);
	assert_int_equal(att_vault_unseal(v, "m1", "tok", 3, "AAAA", ct2, &out, &n), ATT_E_CRYPTO);
	free(iv);
	free(ct);
	free(iv2);
	free(ct2);
	att_vault_free(v);
	att_vault_free(w);
}

static void test_vault_seal_empty_value(void **state)
{
	struct att_vault *v = open_key(KEY1, "");
	char *iv = NULL, *ct = NULL;
	uint8_t *out = NULL;
	size_t n = 1;

	(void)state;
	assert_int_equal(att_vault_seal(v, "m", "e", 1, (const uint8_t *)"", 0, &iv, &ct), 0);
	assert_int_equal(att_vault_unseal(v, "m", "e", 1, iv, ct, &out, &n), 0);
	assert_int_equal(n, 0);
	free(out);
	free(iv);
	free(ct);
	att_vault_free(v);
}

static void test_vault_name_ok_shapes(void **state)
{
	char long_name[66];

	(void)state;
	assert_true(att_vault_name_ok("vault-token"));
	assert_true(att_vault_name_ok("a"));
	assert_true(att_vault_name_ok("disk.key_2"));
	assert_false(att_vault_name_ok(""));
	assert_false(att_vault_name_ok(NULL));
	assert_false(att_vault_name_ok("-a"));
	assert_false(att_vault_name_ok(".hidden"));
	assert_false(att_vault_name_ok("a/b"));
	assert_false(att_vault_name_ok("a b"));
	assert_false(att_vault_name_ok("caf\xc3\xa9"));
	memset(long_name, 'a', 65);
	long_name[65] = 0;
	assert_false(att_vault_name_ok(long_name));
	long_name[64] = 0;
	assert_true(att_vault_name_ok(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vault_open_without_key_is_off),
		cmocka_unit_test(test_vault_open_bad_key_names_variable),
		cmocka_unit_test(test_vault_key_id_stable_and_distinct),
		cmocka_unit_test(test_vault_seal_roundtrip_and_binding),
		cmocka_unit_test(test_vault_seal_empty_value),
		cmocka_unit_test(test_vault_name_ok_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
