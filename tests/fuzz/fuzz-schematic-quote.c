/* go-yaml legacy scalar quoting used for schematic IDs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "talos/schematic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *q = NULL;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (att_schematic_quote(s, &q) == 0) {
		if (strchr(q, '\n'))
			abort(); /* never a multi-line scalar */
		free(q);
	}
	free(s);
	return 0;
}
