#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libfyaml.h>

#include "base/err.h"
#include "base/util.h"
#include "talos/machineconfig.h"

static char *slurp(const char *rel)
{
	char path[1024];
	FILE *f;
	char *b;
	long n;

	snprintf(path, sizeof(path), "%s/%s", SRCDIR, rel);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return b;
}

static const struct att_mc_params P = {
	.role = "worker-app",
	.machine_id = "0b7c4f6e-1d2a-4c3b-9e8f-123456789abc",
	.ek_fingerprint = "73ebfa2d66472f95272867a406f3ee19ef62e951b84f7cccf95b456d70caee906fe5062e769a4b1c3b1765517facd1b3",
	.hostname = "k8s-worker-03",
	.assigned_ip = "10.0.1.13/24",
	.installer_image = "ghcr.io/itlusions/itl-talos-installer:latest",
};

static void golden(const char *base_rel, const struct att_mc_params *p, const char *golden_rel)
{
	char *base = slurp(base_rel), *want = slurp(golden_rel), *got = NULL, err[256];

	assert_int_equal(att_machineconfig_patch(base, strlen(base), p, &got, err, sizeof(err)), 0);
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "--- got ---\n%s--- want (%s) ---\n%s", got, golden_rel, want);
		fail();
	}
	free(base);
	free(want);
	free(got);
}

static void test_worker_app_golden(void **state)
{
	(void)state;
	golden("examples/configs/worker-app-final.yaml", &P, "tests/data/golden/worker-app.yaml");
}

static void test_multidoc_and_existing_interface(void **state)
{
	(void)state;
	golden("tests/data/base/multidoc.yaml", &P, "tests/data/golden/multidoc.yaml");
}

static void test_hostile_values_stay_scalars(void **state)
{
	struct att_mc_params p = P;
	char *base = slurp("examples/configs/worker-app-final.yaml"), *got = NULL, err[256];
	(void)state;
	p.hostname = "x\"\n  evil: true\n#";
	assert_int_equal(att_machineconfig_patch(base, strlen(base), &p, &got, err, sizeof(err)), 0);
	assert_null(strstr(got, "\n  evil: true"));
	assert_non_null(strstr(got, "hostname: \"x\\\"\\n  evil: true\\n#\""));
	free(got);
	free(base);
}

static void test_bad_base_configs(void **state)
{
	char *y = NULL, err[256];
	(void)state;
	assert_int_equal(att_machineconfig_patch("machine:\n  a: [1\n", 17, &P, &y, err, sizeof(err)), ATT_E_PARSE);
	assert_string_equal(err, "base config: invalid YAML: 3:1: error: flow sequence without a closing bracket");
	assert_int_equal(att_machineconfig_patch("a: 1\n", 5, &P, &y, err, sizeof(err)), ATT_E_PARSE);
	assert_string_equal(err, "base config: no v1alpha1 document with a 'machine' section");
	assert_int_equal(att_machineconfig_patch("machine: [1]\n", 13, &P, &y, err, sizeof(err)), ATT_E_PARSE);
	assert_int_equal(att_machineconfig_patch("machine:\n  install: 5\n", 22, &P, &y, err, sizeof(err)), ATT_E_PARSE);
	assert_null(y);
}

static void test_missing_base_is_unavailable(void **state)
{
	char *y = NULL, err[256];
	(void)state;
	assert_int_equal(att_machineconfig_render("/nonexistent", &P, &y, err, sizeof(err)), ATT_E_UNAVAILABLE);
	assert_non_null(strstr(err, "Base config not available"));
}

/* The generic ISO's partial config: one ExtensionServiceConfig document
 * that passes Talos' own checks (name set; environment entries
 * KEY=VALUE), and no machine document, so Talos stays in maintenance. */
static void test_partial_config(void **state)
{
	char *y = NULL;
	struct fy_document *d;
	struct fy_node *root, *env;
	(void)state;
	assert_int_equal(att_machineconfig_partial("https://attest.example/x\"y", &y), 0);
	d = fy_document_build_from_string(NULL, y, FY_NT);
	assert_non_null(d);
	root = fy_document_root(d);
	assert_true(fy_node_is_mapping(root));
	assert_int_equal(fy_node_mapping_item_count(root), 4);
	assert_string_equal(fy_node_get_scalar0(fy_node_by_path(root, "/apiVersion", FY_NT, FYNWF_DONT_FOLLOW)), "v1alpha1");
	assert_string_equal(fy_node_get_scalar0(fy_node_by_path(root, "/kind", FY_NT, FYNWF_DONT_FOLLOW)), "ExtensionServiceConfig");
	assert_string_equal(fy_node_get_scalar0(fy_node_by_path(root, "/name", FY_NT, FYNWF_DONT_FOLLOW)), ATT_MC_AGENT_SERVICE);
	env = fy_node_by_path(root, "/environment", FY_NT, FYNWF_DONT_FOLLOW);
	assert_true(fy_node_is_sequence(env));
	assert_int_equal(fy_node_sequence_item_count(env), 1);
	assert_string_equal(fy_node_get_scalar0(fy_node_sequence_get_by_index(env, 0)), "ITL_REG_URL=https://attest.example/x\"y");
	assert_null(fy_node_by_path(root, "/machine", FY_NT, FYNWF_DONT_FOLLOW));
	assert_null(strstr(y, "token"));
	fy_document_destroy(d);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_app_golden),
		cmocka_unit_test(test_multidoc_and_existing_interface),
		cmocka_unit_test(test_hostile_values_stay_scalars),
		cmocka_unit_test(test_bad_base_configs),
		cmocka_unit_test(test_missing_base_is_unavailable),
		cmocka_unit_test(test_partial_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
