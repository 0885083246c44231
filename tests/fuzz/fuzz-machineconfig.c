/* Role base config loading and patching (operator-supplied YAML). */
#include <stdint.h>
#include <stdlib.h>

#include "talos/machineconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_mc_params p = { "worker-app", "m-1", "00112233445566778899", "host-1", "10.0.0.1/24", "img:1" };
	char *y = NULL, err[256];

	if (att_machineconfig_patch((const char *)data, size, &p, &y, err, sizeof(err)) == 0)
		free(y);
	return 0;
}
