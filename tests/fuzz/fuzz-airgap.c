/* The air-gap bundle parsers of untrusted bytes (docs/airgap.md): the
 * capped gzip inflater, the strict ustar reader and the manifest check
 * (everything att_airgap_open does except the CMS signature, which is
 * OpenSSL's).  Input: a gzip'd or plain tar.  Invariants: every member
 * lies inside the inflated buffer, names are plain and unique, and
 * writing the members again with att_tar_add yields an archive that
 * parses back to the same members. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/ustar.h"
#include "machine/airgap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct att_airgap *a)
{
	struct att_buf b;
	struct att_tar_member m[ATT_AIRGAP_MAX_MEMBERS];
	size_t n = 0;
	char err[256];

	att_buf_init(&b, ATT_AIRGAP_MAX_INFLATED + 64 * 1024);
	for (size_t i = 0; i < a->n; i++)
		if (att_tar_add(&b, a->m[i].name, a->m[i].data, a->m[i].size, 0644, 0) < 0)
			abort();
	if (att_tar_finish(&b) < 0 ||
	    att_tar_parse((const uint8_t *)b.p, b.len, m, ATT_AIRGAP_MAX_MEMBERS, ATT_AIRGAP_MAX_MEMBER, &n, err,
			  sizeof(err)) != 0 ||
	    n != a->n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].name, a->m[i].name) != 0 || m[i].size != a->m[i].size ||
		    memcmp(m[i].data, a->m[i].data, m[i].size) != 0)
			abort();
	att_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_airgap a;
	const uint8_t *tar = data;
	size_t len = size;
	char err[256];

	memset(&a, 0, sizeof(a));
	if (att_is_gzip(data, size)) {
		if (att_gunzip(data, size, 1u << 20, &a.tar, &a.tar_len) != 0)
			return 0;
		tar = a.tar;
		len = a.tar_len;
	}
	if (att_tar_parse(tar, len, a.m, ATT_AIRGAP_MAX_MEMBERS, ATT_AIRGAP_MAX_MEMBER, &a.n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			if (a.m[i].data < tar || a.m[i].data + a.m[i].size > tar + len || !a.m[i].name[0] ||
			    strchr(a.m[i].name, '/') || a.m[i].name[0] == '.')
				abort();
			for (size_t j = 0; j < i; j++)
				if (strcmp(a.m[i].name, a.m[j].name) == 0)
					abort();
		}
		roundtrip(&a);
		(void)att_airgap_check_members(&a, err, sizeof(err));
	}
	att_airgap_release(&a);
	return 0;
}
