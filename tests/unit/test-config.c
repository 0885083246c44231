#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"

struct kv {
	const char *k, *v;
};

static const char *lookup(const char *name, void *ud)
{
	for (const struct kv *p = ud; p->k; p++)
		if (strcmp(p->k, name) == 0)
			return p->v;
	return NULL;
}

static void test_defaults_match_seeds(void **state)
{
	struct kv env[] = { { NULL, NULL } };
	struct att_config c;
	char err[256];
	(void)state;
	assert_int_equal(att_config_load(&c, lookup, env, err, sizeof(err)), 0);
	assert_string_equal(c.db_url, "sqlite:////var/lib/itl-reg/db/machines.db");
	assert_string_equal(c.service_url, "https://attest.itlusions.com");
	assert_string_equal(c.factory_url, "https://factory.talos.dev");
	assert_string_equal(c.talos_version, "v1.9.5");
	assert_string_equal(c.installer_image, "ghcr.io/itlusions/itl-talos-installer:latest");
	assert_string_equal(c.config_cache_dir, "/var/lib/itl-reg/configs");
	assert_string_equal(c.enrollment_ca_dir, "/var/lib/itl-reg/ca");
	assert_string_equal(c.enrollment_ca_algorithm, "ecdsa-p384");
	assert_string_equal(c.tpm_ca_bundle_dir, "/var/lib/itl-reg/ca-bundles");
	assert_string_equal(c.oidc_audience, "attestation-service");
	assert_string_equal(c.oidc_operator_role, "attestation-operator");
	assert_string_equal(c.pulumi_org, "itlusions");
	assert_int_equal(c.enrollment_cert_days, 30);
	assert_int_equal(c.dual_control_quorum, 2);
	assert_int_equal(c.dual_control_window_seconds, 600);
	assert_true(c.oidc_enabled);
	assert_true(c.pulumi_enabled);
	assert_false(c.require_nonce);
	assert_false(c.require_quote);
	assert_false(c.high_assurance);
	assert_false(c.tpm_verify_ca);
	assert_false(c.require_encrypted_delivery);
	assert_int_equal(c.dual_control_roles.n, 0);
	att_config_release(&c);
}

static void test_lists_both_forms(void **state)
{
	struct att_strlist l;
	(void)state;
	assert_int_equal(att_config_parse_list(" controlplane , worker-infra,", &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[1], "worker-infra");
	att_strlist_release(&l);
	assert_int_equal(att_config_parse_list("[\"a\", \"b,c\"]", &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[1], "b,c");
	assert_true(att_strlist_contains(&l, "a"));
	att_strlist_release(&l);
	assert_int_equal(att_config_parse_list("[\"a\", 1]", &l), ATT_E_INVAL);
	assert_int_equal(att_config_parse_list("[\"a\"", &l), ATT_E_INVAL);
	assert_int_equal(att_config_parse_list("", &l), 0);
	assert_int_equal(l.n, 0);
}

static void test_invalid_value_names_variable(void **state)
{
	struct kv env[] = { { "ITL_DUAL_CONTROL_WINDOW_SECONDS", "soon" }, { NULL, NULL } };
	struct kv env2[] = { { "ITL_TPM_VERIFY_CA", "TRUE" }, { "ITL_ISO_URL", "file:///x" }, { NULL, NULL } };
	struct att_config c;
	char err[256];
	(void)state;
	assert_int_equal(att_config_load(&c, lookup, env, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "ITL_DUAL_CONTROL_WINDOW_SECONDS"));
	assert_int_equal(att_config_load(&c, lookup, env2, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "ITL_ISO_URL"));
}

static void test_bool_spellings(void **state)
{
	struct kv env[] = { { "ITL_REQUIRE_NONCE", "Yes" }, { "ITL_OIDC_ENABLED", "0" },
			    { "ITL_HIGH_ASSURANCE", "on" }, { NULL, NULL } };
	struct att_config c;
	char err[256];
	(void)state;
	assert_int_equal(att_config_load(&c, lookup, env, err, sizeof(err)), 0);
	assert_true(c.require_nonce);
	assert_false(c.oidc_enabled);
	assert_true(c.high_assurance);
	att_config_release(&c);
}

static void test_master_key_must_be_32_bytes_hex(void **state)
{
	struct kv env[] = { { "ITL_SHARED_SECRET_MASTER_KEY", "abcd" }, { NULL, NULL } };
	struct att_config c;
	char err[256];
	(void)state;
	assert_int_equal(att_config_load(&c, lookup, env, err, sizeof(err)), ATT_E_INVAL);
	assert_non_null(strstr(err, "ITL_SHARED_SECRET_MASTER_KEY"));
}

static void test_roles(void **state)
{
	(void)state;
	assert_true(att_role_valid("controlplane"));
	assert_true(att_role_valid("worker-infra"));
	assert_true(att_role_valid("worker-app"));
	assert_false(att_role_valid("worker_infra"));
	assert_false(att_role_valid(""));
	assert_false(att_role_valid(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_match_seeds),
		cmocka_unit_test(test_lists_both_forms),
		cmocka_unit_test(test_invalid_value_names_variable),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_master_key_must_be_32_bytes_hex),
		cmocka_unit_test(test_roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
