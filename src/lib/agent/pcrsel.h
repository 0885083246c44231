/* pcrsel.h - the PCRs the agent quotes (--pcrs), in tpm2-tools syntax:
 * "sha256:0,1,2,3,7", ranges "sha256:0-7", banks joined with '+'
 * ("sha1:0,7+sha256:0,7").  At most 4 banks (sha1, sha256, sha384,
 * sha512), PCRs 0-23, no bank twice. */
#ifndef ATT_AGENT_PCRSEL_H
#define ATT_AGENT_PCRSEL_H

#include <stddef.h>
#include <stdint.h>

struct att_pcrsel {
	size_t n;
	struct {
		uint16_t bank;		/* TPM_ALG_ID */
		uint32_t mask;		/* bit i = PCR i */
	} sel[4];
};

int att_pcrsel_parse(const char *s, struct att_pcrsel *ret, char *reterr, size_t errlen);
/* Back to the syntax above (ranges expanded). */
void att_pcrsel_format(const struct att_pcrsel *p, char *out, size_t outlen);

#endif
