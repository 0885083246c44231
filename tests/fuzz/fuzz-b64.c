/* Strict base64 decoder; round trip must be exact for valid input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t n = 0;
	char *enc;

	if (att_b64_decode((const char *)data, size, &out, &n) == 0)
		free(out);
	enc = att_b64_encode(data, size);
	if (enc) {
		if (att_b64_decode(enc, strlen(enc), &out, &n) != 0 || n != size || memcmp(out, data, size) != 0)
			abort();
		free(out);
		free(enc);
	}
	return 0;
}
