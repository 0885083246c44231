/* The Pulumi backend's parsers of untrusted bytes (src/extensions/
 * pulumi_state/delta.c): the first byte picks one.
 *   0: gunzip into a 64 KiB cap (bombs, truncation, trailing bytes);
 *   1: raw JSON member spans of what jansson accepted (the span must
 *      parse to the same value jansson saw);
 *   2: a TextEdit array applied to a fixed text (length and content
 *      of the result checked against a naive re-computation);
 *   3: strict base64 (secrets): what decodes re-encodes to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../src/extensions/pulumi_state/pulumi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char prev[] = "{\"version\":3,\"deployment\":{\"manifest\":{},\"resources\":[{\"urn\":\"a\"},{\"urn\":\"b\"}]}}";

static void fuzz_gunzip(const uint8_t *p, size_t n)
{
	uint8_t *out = NULL;
	size_t len = 0;
	int rc = pl_gunzip(p, n, 65536, &out, &len);

	if (rc == PL_OK) {
		if (len > 65536 || out[len] != 0)
			abort();
		free(out);
	}
}

static void fuzz_member(const uint8_t *p, size_t n)
{
	json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	const char *key;
	json_t *v;

	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	json_object_foreach(j, key, v) {
		size_t off, len;
		json_t *again;

		if (pl_json_member((const char *)p, n, key, &off, &len) != PL_OK)
			continue;	/* an escaped key: not found, refused by the caller */
		if (off + len > n)
			abort();
		again = json_loadb((const char *)p + off, len, JSON_DECODE_ANY, NULL);
		if (!again || !json_equal(again, v))
			abort();
		json_decref(again);
	}
	json_decref(j);
}

static void fuzz_delta(const uint8_t *p, size_t n)
{
	json_t *arr = json_loadb((const char *)p, n, JSON_ALLOW_NUL, NULL);
	struct pl_edit *e = NULL;
	size_t ne = 0, len = 0, want = sizeof(prev) - 1;
	char *out = NULL;

	if (pl_edits_parse(arr, &e, &ne) == PL_OK) {
		if (pl_delta_apply(prev, sizeof(prev) - 1, e, ne, 4096, &out, &len) == PL_OK) {
			for (size_t i = 0; i < ne; i++)
				want += e[i].len - (e[i].end - e[i].start);
			if (len != want || len > 4096 || out[len] != 0)
				abort();
			/* sorted and disjoint: text before the first edit is untouched */
			if (ne && memcmp(out, prev, e[0].start) != 0)
				abort();
			free(out);
		}
		free(e);
	}
	json_decref(arr);
}

static void fuzz_b64(const uint8_t *p, size_t n)
{
	uint8_t *out = NULL;
	size_t len = 0;
	char *again;

	if (pl_b64_decode((const char *)p, n, &out, &len) != PL_OK)
		return;
	again = pl_b64_encode(out, len);
	if (!again || strlen(again) != n || memcmp(again, p, n) != 0)
		abort();
	free(again);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 3: fuzz_b64(data + 1, size - 1); break;
	case 0: fuzz_gunzip(data + 1, size - 1); break;
	case 1: fuzz_member(data + 1, size - 1); break;
	default: fuzz_delta(data + 1, size - 1); break;
	}
	return 0;
}
