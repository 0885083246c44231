/* pcrsel.c - PCR selections in tpm2-tools syntax (see pcrsel.h). */
#include <stdio.h>
#include <string.h>

#include "agent/pcrsel.h"
#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"

#define FAIL(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

static int parse_index(const char **p, unsigned *ret)
{
	unsigned v = 0, n = 0;

	while (**p >= '0' && **p <= '9' && n < 3) {
		v = v * 10 + (unsigned)(**p - '0');
		(*p)++;
		n++;
	}
	if (n == 0 || v >= ATT_TPM_NUM_PCRS)
		return -1;
	*ret = v;
	return 0;
}

int att_pcrsel_parse(const char *s, struct att_pcrsel *ret, char *reterr, size_t errlen)
{
	struct att_pcrsel r;
	const char *p = s;

	memset(&r, 0, sizeof(r));
	if (!s || !*s)
		return FAIL("empty PCR selection");
	for (;;) {
		const char *colon = strchr(p, ':');
		uint16_t bank;
		uint32_t mask = 0;

		if (!colon)
			return FAIL("expected <bank>:<pcrs>, e.g. sha256:0-7");
		bank = att_tpm_bank_alg(p, (size_t)(colon - p));
		if (!bank)
			return FAIL("unknown PCR bank '%.*s' (sha1, sha256, sha384, sha512)", (int)(colon - p), p);
		for (size_t i = 0; i < r.n; i++)
			if (r.sel[i].bank == bank)
				return FAIL("PCR bank '%.*s' given twice", (int)(colon - p), p);
		if (r.n == ATT_ARRAY_SIZE(r.sel))
			return FAIL("too many PCR banks");
		p = colon + 1;
		for (;;) {
			unsigned a, b;

			if (parse_index(&p, &a) < 0)
				return FAIL("PCR indexes are 0-23");
			b = a;
			if (*p == '-') {
				p++;
				if (parse_index(&p, &b) < 0 || b < a)
					return FAIL("bad PCR range");
			}
			for (unsigned i = a; i <= b; i++)
				mask |= 1u << i;
			if (*p != ',')
				break;
			p++;
		}
		r.sel[r.n].bank = bank;
		r.sel[r.n].mask = mask;
		r.n++;
		if (*p == '\0')
			break;
		if (*p != '+')
			return FAIL("unexpected '%c' in the PCR selection", *p);
		p++;
	}
	*ret = r;
	return 0;
}

void att_pcrsel_format(const struct att_pcrsel *p, char *out, size_t outlen)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n && o < outlen; i++) {
		const char *sep = "";

		o += (size_t)snprintf(out + o, outlen - o, "%s%s:", i ? "+" : "", att_tpm_bank_name(p->sel[i].bank));
		for (unsigned k = 0; k < ATT_TPM_NUM_PCRS && o < outlen; k++)
			if (p->sel[i].mask & (1u << k)) {
				o += (size_t)snprintf(out + o, outlen - o, "%s%u", sep, k);
				sep = ",";
			}
	}
}
