/* fuzz-challenge.c - the challenge id check (att_challenge_open): any
 * bytes as a nonce_id.  Invariants: only a 64-character lowercase hex id
 * can open; an id this target issued itself opens, with the nonce it was
 * issued with, and any one-character change of it does not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "machine/machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	char *id = malloc(size + 1);
	uint8_t nonce[32];
	int64_t exp = 0;
	int r;

	if (!id)
		return 0;
	memcpy(id, data, size);
	id[size] = '\0';
	r = att_challenge_open(key, id, 1700000000, &exp, nonce);
	if (r == 0 && (strlen(id) != 64 || !att_is_hex(id, 64)))
		abort();
	if (r != 0 && r != ATT_E_INVAL && r != ATT_E_GONE)
		abort();
	/* an id that opens stops opening when one character changes */
	if (r == 0) {
		id[0] = id[0] == '0' ? '1' : '0';
		if (att_challenge_open(key, id, 1700000000, &exp, nonce) == 0)
			abort();
	}
	free(id);
	return 0;
}
