#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/util.h"
#include "talos/factory.h"
#include "talos/schematic.h"

/* Golden vectors: shared/reference/talos.md section 1.3 (IDs from
 * siderolabs/image-factory's own tests and real factory answers). */
static void check(const struct att_schematic *s, const char *yaml, const char *id)
{
	char *y = NULL, got[65];

	assert_int_equal(att_schematic_yaml(s, &y), 0);
	assert_string_equal(y, yaml);
	att_schematic_id(y, got);
	assert_string_equal(got, id);
	free(y);
}

static void test_empty_schematic(void **state)
{
	struct att_schematic s = { 0 };
	(void)state;
	check(&s, "customization: {}\n", "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba");
}

static void test_kernel_args(void **state)
{
	const char *args[] = { "noapic", "nolapic" };
	struct att_schematic s = { .kernel_args = args, .n_kernel_args = 2 };
	(void)state;
	check(&s, "customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n",
	      "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c");
}

static void test_meta_plain_and_quoted(void **state)
{
	struct att_schematic_meta m1 = { 10, "foo" }, m2 = { 10, "{\"externalIPs\":[\"1.2.3.4\"]}" };
	struct att_schematic s = { .meta = &m1, .n_meta = 1 };
	(void)state;
	check(&s, "customization:\n    meta:\n        - key: 10\n          value: foo\n",
	      "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f");
	s.meta = &m2;
	check(&s, "customization:\n    meta:\n        - key: 10\n          value: '{\"externalIPs\":[\"1.2.3.4\"]}'\n",
	      "fe866116408a5a13dab7d5003eb57a00954ea81ebeec3fbbcd1a6d4462a00036");
}

static void test_extensions(void **state)
{
	const char *ext[] = { "siderolabs/amd-ucode", "siderolabs/gvisor", "siderolabs/gasket-driver" };
	struct att_schematic s = { .extensions = ext, .n_extensions = 3 };
	(void)state;
	check(&s, "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/amd-ucode\n            - siderolabs/gvisor\n            - siderolabs/gasket-driver\n",
	      "51ff3e49313773332729a5c04e57af0dbe2e6d3f65ff638e6d4c3a05065fefff");
}

static void test_secureboot_disk_overlay(void **state)
{
	struct att_schematic sb = { .secureboot_wellknown_certs = true };
	struct att_schematic disk = { .disk_sector_size = 4096 };
	struct att_schematic ov = { .overlay_image = "siderolabs/sbc-raspberrypi", .overlay_name = "rpi_generic" };
	(void)state;
	check(&sb, "customization:\n    secureboot:\n        includeWellKnownCertificates: true\n",
	      "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6");
	check(&disk, "customization:\n    diskImage:\n        sectorSize: 4096\n",
	      "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea");
	check(&ov, "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\ncustomization: {}\n",
	      "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9");
}

static void test_quoting_rules(void **state)
{
	struct {
		const char *in, *out;
	} v[] = {
		{ "plain", "plain" },
		{ "true", "\"true\"" },
		{ "1", "\"1\"" },
		{ "1.5e3", "\"1.5e3\"" },
		{ "0x1F", "\"0x1F\"" },
		{ "null", "\"null\"" },
		{ "yes", "\"yes\"" },
		{ "", "\"\"" },
		{ "a: b", "'a: b'" },
		{ "it's: x", "'it''s: x'" },
		{ " lead", "' lead'" },
		{ "#c", "'#c'" },
		{ "a #c", "'a #c'" },
		{ "-x", "-x" },
		{ "- x", "'- x'" },
		{ "talos.config=https://a.example/api/v1/config?mac=${mac}", "talos.config=https://a.example/api/v1/config?mac=${mac}" },
	};
	(void)state;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(v); i++) {
		char *q = NULL;

		assert_int_equal(att_schematic_quote(v[i].in, &q), 0);
		assert_string_equal(q, v[i].out);
		free(q);
	}
	{
		char *q = NULL;

		assert_int_equal(att_schematic_quote("two\nlines", &q), ATT_E_INVAL);
	}
}

static void test_asset_urls(void **state)
{
	char *iso = att_factory_iso_url("https://factory.talos.dev", "abc", "v1.9.5");
	char *inst = att_factory_installer_image("https://factory.talos.dev", "abc", "v1.9.5");
	(void)state;
	assert_string_equal(iso, "https://factory.talos.dev/image/abc/v1.9.5/metal-amd64.iso");
	assert_string_equal(inst, "factory.talos.dev/installer/abc:v1.9.5");
	free(iso);
	free(inst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_schematic),
		cmocka_unit_test(test_kernel_args),
		cmocka_unit_test(test_meta_plain_and_quoted),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_secureboot_disk_overlay),
		cmocka_unit_test(test_quoting_rules),
		cmocka_unit_test(test_asset_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
