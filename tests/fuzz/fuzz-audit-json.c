/* Python-compatible canonical JSON of audit entries (arbitrary bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct att_audit_entry e = { 0 };
	char *s = malloc(size + 1), *js, h[65];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	e.timestamp = "2026-01-01T00:00:00";
	e.operator_cn = s;
	e.action = "fuzz";
	e.detail = s;
	e.prev_hash = ATT_AUDIT_GENESIS;
	js = att_audit_canonical_json(&e);
	if (js) {
		for (const char *p = js; *p; p++)
			if ((unsigned char)*p >= 0x80)
				abort(); /* ensure_ascii: output is pure ASCII */
		free(js);
	}
	(void)att_audit_compute_hash(&e, h);
	free(s);
	return 0;
}
