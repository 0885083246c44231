/* Strict JSON body validation against the register schema. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "json/jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct att_jfield f[] = {
		{ "ek_fingerprint", ATT_J_STRING, true, 128 },
		{ "ek_cert_pem", ATT_J_STRING, true, 65536 },
		{ "wipe", ATT_J_BOOL, false, 0 },
		{ "n", ATT_J_INT, false, 0 },
		{ "o", ATT_J_OBJECT, false, 0 },
	};
	json_t *o = NULL;
	char err[256];

	if (att_json_parse_body((const char *)data, size, f, 5, &o, err, sizeof(err)) == 0) {
		/* differential: whatever we accept, jansson accepts as the same value */
		json_error_t je;
		json_t *ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
		bool blank = true;

		for (size_t i = 0; i < size; i++)
			if (!(data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
				blank = false;
		if (!blank && (!ref || !json_equal(ref, o)))
			abort();
		json_decref(ref);
		json_decref(o);
	}
	return 0;
}
