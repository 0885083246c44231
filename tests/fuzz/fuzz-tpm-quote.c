/* Quote verification and the other TPM byte parsers of the attest path.
 * Input: mode byte, then
 *   0: a TPMS_ATTEST
 *   1: BE16 attest length | TPMS_ATTEST | signature, checked against a
 *      fixed RSA and a fixed ECC AK (nonce: 32 zero bytes)
 *   2: an EK NV chain range (concatenated DER certificates)
 *   3: "key\0hex" PCR value pairs */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ekchain.h"
#include "tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct att_tpm_pub aks[2];

static void init_aks(void)
{
	if (aks[0].pkey)
		return;
	aks[0].type = ATT_TPM_ALG_RSA;
	aks[0].scheme = ATT_TPM_ALG_RSASSA;
	aks[0].scheme_hash = ATT_TPM_ALG_SHA256;
	aks[0].key_bits = 2048;
	aks[0].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	aks[1].type = ATT_TPM_ALG_ECC;
	aks[1].scheme = ATT_TPM_ALG_ECDSA;
	aks[1].scheme_hash = ATT_TPM_ALG_SHA256;
	aks[1].key_bits = 256;
	aks[1].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!aks[0].pkey || !aks[1].pkey)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_tpm_quote q;
	char err[512];

	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		if (att_tpm_quote_parse(data + 1, size - 1, &q, err, sizeof(err)) == 0 &&
		    (q.extra_len > sizeof(q.extra) || q.n_sel > 16 || q.pcr_digest_len > sizeof(q.pcr_digest)))
			abort();
		break;
	case 1: {
		static const uint8_t nonce[32];
		struct att_tpm_pcrs none;
		size_t al;

		if (size < 3)
			break;
		al = (size_t)data[1] << 8 | data[2];
		if (al > size - 3)
			break;
		init_aks();
		memset(&none, 0, sizeof(none));
		for (int k = 0; k < 2; k++)
			if (att_tpm_quote_check(&aks[k], data + 3, al, data + 3 + al, size - 3 - al, nonce, 32, &none, &q, err,
						sizeof(err)) == 0)
				abort();	/* nobody holds these keys' private halves */
		break;
	}
	case 2:
		(void)att_ek_chain_parse_nv(data + 1, size - 1, 8, err, sizeof(err));
		break;
	case 3: {
		char *s = malloc(size);
		struct att_tpm_pcrs v;
		size_t kl;

		if (!s)
			break;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = '\0';
		memset(&v, 0, sizeof(v));
		kl = strlen(s);
		if (kl + 1 < size - 1)
			(void)att_tpm_pcrs_add(&v, s, s + kl + 1, err, sizeof(err));
		free(s);
		break;
	}
	}
	return 0;
}
