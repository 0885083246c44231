/* test-approve.c - auto-approval rules: loading, matching, naming. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "approve/approve.h"
#include "base/err.h"
#include "config/config.h"
#include "machine/machine.h"

#define TOK "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* sha256("test") */

static char cp_role[] = "controlplane";
static char *dual[] = { cp_role };

static struct att_config cfg(void)
{
	struct att_config c = { 0 };

	c.dual_control_roles.items = dual;
	c.dual_control_roles.n = 1;
	return c;
}

static int parse(const char *json, struct att_auto_rules **ret, char *err)
{
	struct att_config c = cfg();

	return att_auto_rules_parse(&c, json, strlen(json), ret, err, 256);
}

static void machine(struct att_machine *m, const char *product, const char *role, const char *verified)
{
	memset(m, 0, sizeof(*m));
	M(m, MACHINE_ID) = (char *)"0a1b2c3d-89ab-4def-8000-000000000000";
	M(m, HW_PRODUCT) = (char *)product;
	M(m, ROLE) = (char *)role;
	M(m, EK_VERIFIED) = (char *)verified;
	M(m, HW_SERIAL) = (char *)"SN 42/A";
	M(m, HW_MAC) = (char *)"52:54:00:AB:cd:01";
	M(m, HW_UUID) = (char *)"unknown";
}

static void test_auto_rules_parse_refusals(void **state)
{
	struct att_auto_rules *r = NULL;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"ek_verdict\":\"verified\"},\"approve\":{\"role\":\"controlplane\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "dual control"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"hw_product\":\"x\"},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "allow_unauthenticated"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"via\":\"carrier-pigeon\",\"ek_verdict\":\"verified\"},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "via"));
	assert_int_equal(parse("{\"rules\":[],\"extra\":1}", &r, err), ATT_E_INVAL);
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"ek_verdict\":\"verified\"},\"approve\":{\"role\":\"worker-app\"},\"max_per_hour\":0}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "max_per_hour"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"ek_verdict\":\"verified\"},\"approve\":{\"role\":\"worker-app\",\"hostname\":\"{id8\"}}]}", &r, err), ATT_E_INVAL);
	assert_null(r);
}

static void test_auto_rules_match_first_wins(void **state)
{
	struct att_auto_rules *r = NULL;
	struct att_machine m;
	struct att_auto_context self_tok = { true, TOK, NULL }, self_none = { true, NULL, NULL },
				reg_tok = { false, TOK, NULL };
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"rules\":["
			       "{\"name\":\"ci\",\"match\":{\"via\":\"self-register\",\"hw_product\":\"Virtual *\","
			       "\"registration_token_sha256\":[\"" TOK "\"]},\"approve\":{\"role\":\"worker-app\"}},"
			       "{\"name\":\"infra\",\"match\":{\"ek_verdict\":\"verified\",\"desired_role\":\"worker-infra\"},"
			       "\"approve\":{\"role\":\"worker-infra\"}}]}",
			       &r, err),
			 0);
	assert_int_equal(att_auto_rules_count(r), 2);
	machine(&m, "Virtual Machine", "worker-app", NULL);
	assert_int_equal(att_auto_rules_match(r, &m, &self_tok), 0);
	assert_string_equal(att_auto_rule_name(r, 0), "ci");
	assert_int_equal(att_auto_rule_max_per_hour(r, 0), 60);
	assert_int_equal(att_auto_rules_match(r, &m, &self_none), -1);
	assert_int_equal(att_auto_rules_match(r, &m, &reg_tok), -1);
	machine(&m, "Bare Metal", "worker-app", NULL);
	assert_int_equal(att_auto_rules_match(r, &m, &self_tok), -1);
	machine(&m, "Bare Metal", "worker-infra", "1");
	assert_int_equal(att_auto_rules_match(r, &m, &self_none), 1);
	machine(&m, "Bare Metal", "worker-infra", "0");
	assert_int_equal(att_auto_rules_match(r, &m, &self_none), -1);
	att_auto_rules_free(r);
}

static void test_auto_hostname_expand_patterns(void **state)
{
	struct att_machine m;
	char out[64];

	(void)state;
	machine(&m, "x", "worker-app", NULL);
	assert_int_equal(att_auto_hostname_expand("ci-{id8}", &m, out), 0);
	assert_string_equal(out, "ci-0a1b2c3d");
	assert_int_equal(att_auto_hostname_expand("n-{mac}", &m, out), 0);
	assert_string_equal(out, "n-525400abcd01");
	assert_int_equal(att_auto_hostname_expand("Rack_{serial}", &m, out), 0);
	assert_string_equal(out, "rack-sn-42-a");
	assert_int_equal(att_auto_hostname_expand("{nope}", &m, out), ATT_E_INVAL);
	assert_int_equal(att_auto_hostname_expand("---", &m, out), ATT_E_INVAL);
	assert_int_equal(att_auto_hostname_expand("a-{machine_id}-{machine_id}", &m, out), 0);
	assert_true(strlen(out) <= 63);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auto_rules_parse_refusals),
		cmocka_unit_test(test_auto_rules_match_first_wins),
		cmocka_unit_test(test_auto_hostname_expand_patterns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
