/* EK material parser: raw bytes as cert and as public key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "crypto/ek.h"

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
		free(b64);
	}
	return 0;
}
