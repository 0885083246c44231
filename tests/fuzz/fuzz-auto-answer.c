/* The auto-approval webhook's answer (untrusted): never crashes, and an
 * accepted approval always names a valid role outside dual control and a
 * valid (or no) hostname. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "approve/approve.h"
#include "config/config.h"
#include "machine/machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char cp[] = "controlplane";
	static char *dual[] = { cp };
	struct att_config cfg = { 0 };
	struct att_auto_answer a;
	char err[256];

	cfg.dual_control_roles.items = dual;
	cfg.dual_control_roles.n = 1;
	if (att_auto_answer_parse(&cfg, (const char *)data, size, &a, err, sizeof(err)) == 0 && a.approve) {
		if (!att_role_valid(a.role) || strcmp(a.role, "controlplane") == 0)
			abort();
		if (a.hostname[0] && !att_valid_hostname(a.hostname))
			abort();
	}
	return 0;
}
