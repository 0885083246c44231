/* The agent attestation policy document parser (YAML -> JSON -> strict
 * validation, including each attestor's config checks) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL;
	char err[512];

	if (att_policy_parse((const char *)data, size, &doc, err, sizeof(err)) == 0) {
		if (!json_is_object(doc))
			abort();
		json_decref(doc);
	}
	return 0;
}
