/* Role base config loading and patching (operator-supplied YAML). */
#include <stdint.h>
#include <stdlib.h>

#include "talos/machineconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_mc_params p = { .role = "worker-app", .machine_id = "m-1", .ek_fingerprint = "00112233445566778899",
				   .hostname = "host-1", .assigned_ip = "10.0.0.1/24", .installer_image = "img:1" };
	char *y = NULL, err[256];

	if (att_machineconfig_patch((const char *)data, size, &p, &y, err, sizeof(err)) == 0)
		free(y);
	return 0;
}
