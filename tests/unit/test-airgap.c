/* The air-gap archive parsers (src/lib/base/ustar.c, src/lib/machine/airgap.c)
 * against the fuzz seeds in tests/fuzz/corpus/airgap, each with the
 * outcome it must have, and the writer's round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/ustar.h"
#include "machine/airgap.h"

static uint8_t *slurp(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	uint8_t *b;
	long n;

	snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/airgap/%s", SRCDIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* Open name as att_airgap_open does minus the signature: returns the
 * first failing step's code; err gets its message. */
static int open_seed(const char *name, char *err, size_t errlen)
{
	struct att_airgap a;
	size_t len, tl;
	uint8_t *in = slurp(name, &len), *tar = in;
	int r = 0;

	memset(&a, 0, sizeof(a));
	err[0] = '\0';
	tl = len;
	if (att_is_gzip(in, len)) {
		r = att_gunzip(in, len, 1u << 20, &a.tar, &a.tar_len);
		tar = a.tar;
		tl = a.tar_len;
	}
	if (r == 0)
		r = att_tar_parse(tar, tl, a.m, ATT_AIRGAP_MAX_MEMBERS, ATT_AIRGAP_MAX_MEMBER, &a.n, err, errlen);
	if (r == 0)
		r = att_airgap_check_members(&a, err, errlen);
	att_airgap_release(&a);
	free(in);
	return r;
}

static void expect(const char *seed, int want, const char *msg)
{
	char err[256];
	int r = open_seed(seed, err, sizeof(err));

	if (r != want || (msg && !strstr(err, msg)))
		fail_msg("%s: got %d '%s', want %d '%s'", seed, r, err, want, msg ? msg : "");
}

static void test_seeds(void **state)
{
	(void)state;
	expect("good.tar", 0, NULL);
	expect("good.tar.gz", 0, NULL);
	expect("gnu.tar", 0, NULL);
	expect("traversal.tar.gz", ATT_E_INVAL, "traversal");
	expect("absolute.tar", ATT_E_INVAL, "absolute");
	expect("symlink.tar", ATT_E_INVAL, "symbolic link");
	expect("hardlink.tar", ATT_E_INVAL, "hard link");
	expect("device.tar", ATT_E_INVAL, "device");
	expect("dir.tar", ATT_E_INVAL, "directory");
	expect("dup.tar", ATT_E_INVAL, "duplicate");
	expect("pax-full.tar", ATT_E_INVAL, "pax");
	expect("pax.tar", ATT_E_INVAL, "truncated");	/* cut at 4096 bytes */
	expect("truncated.tar", ATT_E_INVAL, "truncated");
	expect("truncated.tar.gz", ATT_E_INVAL, NULL);
	expect("trailing.tar.gz", ATT_E_INVAL, NULL);
	expect("badsum.tar", ATT_E_INVAL, "checksum");
	expect("digest.tar", ATT_E_INVAL, "SHA-384");
	expect("bomb.tar.gz", ATT_E_LIMIT, NULL);
	expect("empty.tar", ATT_E_INVAL, "manifest.json");
}

static void test_writer_roundtrip_and_caps(void **state)
{
	struct att_buf b;
	struct att_tar_member m[4];
	char big[1500], err[256];
	size_t n = 0;
	uint8_t *gz = NULL, *back = NULL;
	size_t gl = 0, bl = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	att_buf_init(&b, 1 << 20);
	assert_int_equal(att_tar_add(&b, "a.txt", "hello", 5, 0644, 1700000000), 0);
	assert_int_equal(att_tar_add(&b, "b.bin", big, sizeof(big), 0600, 1700000000), 0);
	assert_int_equal(att_tar_add(&b, "empty", "", 0, 0644, 0), 0);
	assert_int_equal(att_tar_finish(&b), 0);
	assert_int_equal(b.len % 512, 0);
	assert_int_equal(att_tar_parse((uint8_t *)b.p, b.len, m, 4, 4096, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(m[1].name, "b.bin");
	assert_int_equal(m[1].size, sizeof(big));
	assert_memory_equal(m[1].data, big, sizeof(big));
	assert_int_equal(m[2].size, 0);
	/* caps: members and member size */
	assert_int_equal(att_tar_parse((uint8_t *)b.p, b.len, m, 2, 4096, &n, err, sizeof(err)), ATT_E_LIMIT);
	assert_int_equal(att_tar_parse((uint8_t *)b.p, b.len, m, 4, 1000, &n, err, sizeof(err)), ATT_E_LIMIT);
	/* gzip round trip, and the inflate cap */
	assert_int_equal(att_gzip((uint8_t *)b.p, b.len, &gz, &gl), 0);
	assert_int_equal(att_gunzip(gz, gl, b.len, &back, &bl), 0);
	assert_int_equal(bl, b.len);
	assert_memory_equal(back, b.p, bl);
	free(back);
	assert_int_equal(att_gunzip(gz, gl, b.len - 1, &back, &bl), ATT_E_LIMIT);
	assert_int_equal(att_gunzip(gz, gl - 1, b.len, &back, &bl), ATT_E_INVAL);
	free(gz);
	att_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeds),
		cmocka_unit_test(test_writer_roundtrip_and_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
