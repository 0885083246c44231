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
	struct att_auto_context self_tok = { true, TOK, NULL, NULL }, self_none = { true, NULL, NULL, NULL },
				reg_tok = { false, TOK, NULL, NULL };
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

static void test_auto_rules_match_identity_attributes(void **state)
{
	struct att_auto_rules *r = NULL;
	struct att_machine m;
	json_t *ci = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:[s,s],s:b}}", "jti", "0a1b2c3d-89ab-4def-8000-000000000000",
			       "sub", "spiffe://example.org/agent/c1/k8s/x", "cluster", "c1", "policy", "k8s", "attrs",
			       "k8s_token.namespace", "ci", "k8s_token.service_account", "runner", "x509pop.uri_sans",
			       "spiffe://a/b", "spiffe://a/runner", "tpm_ek.ek_verified", 1);
	json_t *prod = json_deep_copy(ci);
	struct att_auto_context none = { true, NULL, NULL, NULL }, with_ci = { true, NULL, NULL, ci },
				with_prod = { true, NULL, NULL, prod };
	char err[256], detail[400];

	(void)state;
	json_object_set_new(json_object_get(prod, "attrs"), "k8s_token.namespace", json_string("prod"));
	/* malformed matcher keys and values: refused, naming the path */
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"attributes\":{\"namespace\":\"ci\"}},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "match.attributes.namespace: not <attestor type>.<attribute>"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"attributes\":{\"k8s.namespace\":\"ci\"}},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "attributes.k8s.namespace"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"attributes\":{\"k8s_token.namespace\":1}},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_non_null(strstr(err, "attributes.k8s_token.namespace: a non-empty string"));
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"attributes\":{}},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_int_equal(parse("{\"rules\":[{\"name\":\"a\",\"match\":{\"policy\":\"\"},\"approve\":{\"role\":\"worker-app\"}}]}", &r, err), ATT_E_INVAL);
	assert_null(r);
	/* an identity rule needs no allow_unauthenticated; it never matches without one */
	assert_int_equal(parse("{\"rules\":["
			       "{\"name\":\"ci\",\"match\":{\"policy\":\"k8s\",\"cluster\":\"c*\",\"attributes\":"
			       "{\"k8s_token.namespace\":\"ci\",\"k8s_token.service_account\":\"run*\"}},"
			       "\"approve\":{\"role\":\"worker-app\"}},"
			       "{\"name\":\"uri\",\"match\":{\"attributes\":{\"x509pop.uri_sans\":\"*/runner\",\"tpm_ek.ek_verified\":\"true\"}},"
			       "\"approve\":{\"role\":\"worker-infra\"}}]}",
			       &r, err),
			 0);
	machine(&m, "Virtual Machine", "worker-app", NULL);
	assert_true(att_auto_rule_uses_identity(r, 0));
	assert_int_equal(att_auto_rules_match(r, &m, &none), -1);
	assert_int_equal(att_auto_rules_match(r, &m, &with_ci), 0);
	assert_int_equal(att_auto_rules_match(r, &m, &with_prod), 1);	/* list element and boolean */
	att_auto_rule_identity_detail(r, 0, ci, detail, sizeof(detail));
	assert_non_null(strstr(detail, "jti=0a1b2c3d-89ab-4def-8000-000000000000 sub=spiffe://example.org/agent/c1/k8s/x"));
	assert_non_null(strstr(detail, "policy=k8s k8s_token.namespace=\"ci\" k8s_token.service_account=\"runner\""));
	json_object_set_new(prod, "policy", json_string("other"));
	json_object_set_new(json_object_get(prod, "attrs"), "tpm_ek.ek_verified", json_false());
	assert_int_equal(att_auto_rules_match(r, &m, &with_prod), -1);
	att_auto_rules_free(r);
	json_decref(ci);
	json_decref(prod);
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
		cmocka_unit_test(test_auto_rules_match_identity_attributes),
		cmocka_unit_test(test_auto_hostname_expand_patterns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
