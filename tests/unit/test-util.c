#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/text.h"
#include "base/util.h"

static void test_b64_roundtrip_all_lengths(void **state)
{
	uint8_t in[64];
	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 1);
	for (size_t n = 0; n <= sizeof(in); n++) {
		char *e = att_b64_encode(in, n);
		uint8_t *d = NULL;
		size_t dl = 0;

		assert_non_null(e);
		assert_int_equal(strlen(e), 4 * ((n + 2) / 3));
		assert_int_equal(att_b64_decode(e, strlen(e), &d, &dl), 0);
		assert_int_equal(dl, n);
		assert_memory_equal(d, in, n);
		free(d);
		free(e);
	}
}

static void test_b64_decode_rejects_garbage(void **state)
{
	uint8_t *d = NULL;
	size_t n;
	(void)state;
	assert_int_equal(att_b64_decode("aGVsbG8", 7, &d, &n), ATT_E_INVAL);	/* missing pad */
	assert_int_equal(att_b64_decode("aGV=sbG8", 8, &d, &n), ATT_E_INVAL);	/* pad inside */
	assert_int_equal(att_b64_decode("aGVs*G8=", 8, &d, &n), ATT_E_INVAL);	/* bad char */
	assert_int_equal(att_b64_decode("a===", 4, &d, &n), ATT_E_INVAL);
	assert_int_equal(att_b64_decode("aGVs\nbG8=", 9, &d, &n), 0);		/* whitespace ok */
	assert_int_equal(n, 5);
	assert_memory_equal(d, "hello", 5);
	free(d);
}

static void test_b64url_token_shape(void **state)
{
	uint8_t raw[32] = { 0xfb, 0xff };
	char *t = att_b64url_encode(raw, sizeof(raw));
	(void)state;
	assert_int_equal(strlen(t), 43); /* like secrets.token_urlsafe(32) */
	assert_null(strpbrk(t, "+/="));
	free(t);
}

static void test_hex(void **state)
{
	uint8_t b[3] = { 0x00, 0xab, 0xff }, out[3];
	char h[7];
	(void)state;
	att_hex_encode(b, 3, h);
	assert_string_equal(h, "00abff");
	assert_int_equal(att_hex_decode("00ABff", 6, out), 0);
	assert_memory_equal(out, b, 3);
	assert_int_equal(att_hex_decode("0g", 2, out), ATT_E_INVAL);
	assert_int_equal(att_hex_decode("abc", 3, out), ATT_E_INVAL);
	assert_true(att_is_hex("aBc9", 4));
	assert_false(att_is_hex("xyz", 3));
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(att_ct_equal("abc", 3, "abc", 3));
	assert_false(att_ct_equal("abc", 3, "abd", 3));
	assert_false(att_ct_equal("abc", 3, "abcd", 4));
}

static void test_time_iso_python_format(void **state)
{
	char out[32], utc[40];
	struct att_time t = { 1778778300, 123456 }, back;
	(void)state;
	att_time_iso(t, out);
	assert_string_equal(out, "2026-05-14T17:05:00.123456");
	t.usec = 0;
	att_time_iso(t, out);
	assert_string_equal(out, "2026-05-14T17:05:00"); /* fraction omitted when 0 */
	att_time_iso_utc(t, utc);
	assert_string_equal(utc, "2026-05-14T17:05:00+00:00");
	assert_int_equal(att_time_parse("2026-05-14T17:05:00.000042Z", &back), 0);
	assert_int_equal(back.sec, 1778778300);
	assert_int_equal(back.usec, 42);
	assert_int_equal(att_time_parse("2026-13-14T17:05:00", &back), ATT_E_INVAL);
	assert_int_equal(att_time_parse("2026-05-14 17:05:00", &back), ATT_E_INVAL);
}

static void test_parse_u64_bounds(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(att_parse_u64("42", 2, 1, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(att_parse_u64("0", 1, 1, 100, &v), ATT_E_INVAL);
	assert_int_equal(att_parse_u64("101", 3, 1, 100, &v), ATT_E_INVAL);
	assert_int_equal(att_parse_u64("-1", 2, 0, 100, &v), ATT_E_INVAL);
	assert_int_equal(att_parse_u64("1a", 2, 0, 100, &v), ATT_E_INVAL);
	assert_int_equal(att_parse_u64("", 0, 0, 100, &v), ATT_E_INVAL);
	assert_int_equal(att_parse_u64("99999999999999999999", 20, 0, UINT64_MAX, &v), ATT_E_INVAL);
}

static void test_buf_cap_is_hard(void **state)
{
	struct att_buf b;
	(void)state;
	att_buf_init(&b, 10);
	assert_int_equal(att_buf_append(&b, "12345", 5), 0);
	assert_int_equal(att_buf_append(&b, "67890", 5), 0);
	assert_int_equal(att_buf_append(&b, "x", 1), ATT_E_LIMIT);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.p, "1234567890");
	att_buf_release(&b);
}

static void test_uuid4_shape(void **state)
{
	char a[37], b[37];
	(void)state;
	assert_int_equal(att_uuid4(a), 0);
	assert_int_equal(att_uuid4(b), 0);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
}

/* Truncation never splits a character; scrubbing makes any bytes UTF-8;
 * controls (C0, DEL, C1) are found on input and escaped on output. */
static void test_text_utf8_and_controls(void **state)
{
	char bad[] = "ok\xff\xc3(\xe2\x82";
	char *e;

	(void)state;
	assert_int_equal(att_utf8_cut("aa\xc3\xa9", 3), 2);	/* "aaé" cut at 3: before é */
	assert_int_equal(att_utf8_cut("aa\xc3\xa9", 4), 4);
	assert_int_equal(att_utf8_cut("\xe2\x82\xac\xe2\x82\xac", 5), 3);
	assert_int_equal(att_utf8_cut("abc", 64), 3);
	assert_int_equal(att_utf8_scrub(bad), 4);
	assert_string_equal(bad, "ok?" "?(" "??");
	assert_true(att_utf8_valid(bad));
	assert_false(att_utf8_valid("\xc0\xaf"));	/* overlong '/' */
	assert_false(att_utf8_valid("\xed\xa0\x80"));	/* surrogate */
	assert_true(att_text_has_control("a\x1b]52;c;x\x07"));
	assert_true(att_text_has_control("a\x7f"));
	assert_true(att_text_has_control("a\xc2\x9b" "2J"));	/* C1 CSI */
	assert_true(att_text_has_control("\xff"));
	assert_false(att_text_has_control("Dell R650 \xc3\xa9 \xe2\x82\xac"));
	e = att_text_escape("\x1b[2J\xc2\x9b\xff\\ok\xc3\xa9");
	assert_string_equal(e, "\\x1b[2J\\u009b\\xff\\ok\xc3\xa9");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_roundtrip_all_lengths),
		cmocka_unit_test(test_b64_decode_rejects_garbage),
		cmocka_unit_test(test_b64url_token_shape),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_time_iso_python_format),
		cmocka_unit_test(test_parse_u64_bounds),
		cmocka_unit_test(test_buf_cap_is_hard),
		cmocka_unit_test(test_uuid4_shape),
		cmocka_unit_test(test_text_utf8_and_controls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
