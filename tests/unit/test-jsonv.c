#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "json/jsonv.h"

static const struct att_jfield F[] = {
	{ "name", ATT_J_STRING, true, 8 },
	{ "wipe", ATT_J_BOOL, false, 0 },
	{ "n", ATT_J_INT, false, 0 },
	{ "o", ATT_J_OBJECT, false, 0 },
};

static void expect_err(const char *body, const char *msg)
{
	json_t *o = NULL;
	char err[256] = "";

	assert_int_equal(att_json_parse_body(body, strlen(body), F, 4, &o, err, sizeof(err)), ATT_E_INVAL);
	assert_null(o);
	if (strncmp(err, msg, strlen(msg)) != 0)
		fail_msg("body %s: got '%s', want prefix '%s'", body, err, msg);
}

static void test_valid(void **state)
{
	json_t *o = NULL;
	char err[256];
	const char *b = "{\"name\":\"x\",\"wipe\":true,\"n\":3,\"o\":{}}";
	(void)state;
	assert_int_equal(att_json_parse_body(b, strlen(b), F, 4, &o, err, sizeof(err)), 0);
	assert_string_equal(att_json_str(o, "name"), "x");
	assert_true(att_json_bool(o, "wipe", false));
	assert_null(att_json_str(o, "missing"));
	json_decref(o);
}

static void test_errors_name_the_field(void **state)
{
	(void)state;
	expect_err("{\"name\":", "body: malformed JSON");
	expect_err("{\"name\":\"a\",\"name\":\"b\"}", "body: malformed JSON: duplicate object key");
	expect_err("[]", "body: expected a JSON object");
	expect_err("\"s\"", "body: expected a JSON object");
	expect_err("{}", "name: field required");
	expect_err("{\"name\":null}", "name: field required");
	expect_err("{\"name\":1}", "name: expected a string");
	expect_err("{\"name\":\"123456789\"}", "name: longer than 8 characters");
	expect_err("{\"name\":\"a\",\"wipe\":\"yes\"}", "wipe: expected a boolean");
	expect_err("{\"name\":\"a\",\"n\":1.5}", "n: expected an integer");
	expect_err("{\"name\":\"a\",\"o\":[]}", "o: expected an object");
	expect_err("{\"name\":\"a\",\"zzz\":1}", "zzz: unknown field");
	expect_err("{\"name\":\"a\\u0000b\"}", "body: malformed JSON");
	expect_err("{\"name\":\"\xff\"}", "body: malformed JSON");
}

static void test_empty_body_is_empty_object(void **state)
{
	static const struct att_jfield opt[] = { { "reason", ATT_J_STRING, false, 0 } };
	json_t *o = NULL;
	char err[64];
	(void)state;
	assert_int_equal(att_json_parse_body(" \n", 2, opt, 1, &o, err, sizeof(err)), 0);
	assert_true(json_is_object(o));
	json_decref(o);
	assert_int_equal(att_json_parse_body("", 0, opt, 1, &o, err, sizeof(err)), 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_errors_name_the_field),
		cmocka_unit_test(test_empty_body_is_empty_object),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
