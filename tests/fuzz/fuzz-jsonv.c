/* Strict JSON body validation against the register schema. */
#include <stdint.h>

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

	if (att_json_parse_body((const char *)data, size, f, 5, &o, err, sizeof(err)) == 0)
		json_decref(o);
	return 0;
}
