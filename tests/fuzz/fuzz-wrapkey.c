/* The wrapping-key blob parser (src/lib/crypto/p11wrap.c) with a
 * software P-384 key standing in for the token's.  Any input is
 * unwrapped with the key's curve and id written over bytes 1-9 (so the
 * ephemeral point decoding and GCM are reached): it must be refused —
 * nothing forges a tag — and nothing may crash.  An input starting with
 * 'W' wraps the rest, which must unwrap to it exactly, and not under
 * another label. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "crypto/p11wrap.h"

static struct att_p11_wrapkey *key;
static uint8_t hdr[10];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in, *out;
	size_t n = 0, m = 0;

	if (!key) {
		EVP_PKEY *pk = EVP_EC_gen("P-384");
		uint8_t probe[1 + 10 + 97 + 12 + 16];

		if (!pk || att_p11_wrapkey_soft(pk, &key) != 0 ||
		    att_p11_wrapkey_wrap(key, "x", probe, 1, probe, sizeof(probe), &n) != 0)
			abort();
		memcpy(hdr, probe, sizeof(hdr));
		EVP_PKEY_free(pk);
	}
	if (size > 4096)
		size = 4096;
	in = malloc(size + ATT_P11_WRAP_OVERHEAD + 1);
	out = malloc(size + ATT_P11_WRAP_OVERHEAD + 1);
	if (!in || !out)
		abort();
	if (size > 0 && data[0] == 'W') {
		if (att_p11_wrapkey_wrap(key, "fuzz", data + 1, size - 1, in, size + ATT_P11_WRAP_OVERHEAD, &n) != 0 ||
		    att_p11_wrapkey_unwrap(key, "fuzz", in, n, out, size, &m) != 0 || m != size - 1 ||
		    memcmp(out, data + 1, m) != 0 ||
		    att_p11_wrapkey_unwrap(key, "fuzz2", in, n, out, size, &m) == 0)
			abort();
	} else {
		memcpy(in, data, size);
		if (size >= sizeof(hdr))
			memcpy(in + 1, hdr + 1, sizeof(hdr) - 1);
		if (att_p11_wrapkey_unwrap(key, "fuzz", in, size, out, size + 1, &m) == 0)
			abort();
	}
	free(in);
	free(out);
	return 0;
}
