/* EK material parser: raw bytes as cert and as public key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "crypto/ek.h"
#include "crypto/ekchain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_ek ek;
	char err[256];
	char *b64;

	(void)att_ek_parse_bytes(data, size, "cert", 1700000000, &ek, err, sizeof(err));
	(void)att_ek_parse_bytes(data, size, "pub", 1700000000, &ek, err, sizeof(err));
	/* the base64 layer in front of it */
	b64 = malloc(size + 1);
	if (b64) {
		memcpy(b64, data, size);
		b64[size] = '\0';
		(void)att_ek_parse(b64, size, "cert", 1700000000, &ek, err, sizeof(err));
		/* the same bytes as a request's ek_chain_pem, and as the EK to chain */
		{
			static struct att_ek_trust *trust;
			struct att_ek_chain_result res;

			if (!trust && att_ek_trust_load("/nonexistent", &trust, NULL, NULL, err, sizeof(err)) < 0)
				abort();
			struct att_ek_chain_extra ex = { b64, data, size, NULL };

			if (att_ek_chain_verify(trust, "", &ex, 1700000000, &res, err, sizeof(err)) == 0)
				att_ek_chain_result_release(&res);
			if (att_ek_chain_verify(trust, b64, NULL, 1700000000, &res, err, sizeof(err)) == 0)
				att_ek_chain_result_release(&res);
			(void)att_ek_chain_parse_nv(data, size, 8, err, sizeof(err));
		}
		free(b64);
	}
	return 0;
}
