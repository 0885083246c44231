/* TPM2B_PUBLIC parsing, key checks, Names and MakeCredential on
 * whatever public area parses (the EK-side code path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_tpm_pub p;
	struct att_tpm_credential c;
	char err[256];
	uint8_t cv[32] = { 1 };

	if (att_tpm_pub_parse(data, size, &p, err, sizeof(err)) < 0)
		return 0;
	if (p.name_len < 2 || p.name_len > ATT_TPM_MAX_NAME || !p.pkey)
		abort();
	(void)att_tpm_pub_check_ak(&p, err, sizeof(err));
	if (att_tpm_pub_check_ek(&p, err, sizeof(err)) == 0 &&
	    att_tpm_make_credential(&p, p.name, p.name_len, cv, sizeof(cv), &c, err, sizeof(err)) == 0) {
		if (c.id_object_len > sizeof(c.id_object) || c.secret_len > sizeof(c.secret))
			abort();
		free(att_tpm_credential_blob_b64(&c));
	}
	att_tpm_pub_release(&p);
	return 0;
}
