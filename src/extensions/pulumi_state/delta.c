/* delta.c - the parts of the Pulumi backend that read untrusted bytes
 * without touching the database: gzip bodies (inflated into a capped
 * buffer, so a gzip bomb is a 413 and not an OOM), checkpoint deltas
 * (gotextdiff TextEdits applied by byte offset, as the CLI computes them:
 * docs/pulumi-backend.md) and raw JSON member spans (a verbatim
 * checkpoint is stored byte-exactly, never re-serialized), and the
 * strict base64 of secrets.  Fuzzed by
 * tests/fuzz/fuzz-pulumi-delta.c. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "pulumi.h"

int pl_gunzip(const uint8_t *in, size_t n, size_t cap, uint8_t **ret, size_t *ret_len)
{
	z_stream z;
	size_t size = n * 4 + 1024, used = 0;
	uint8_t *out, *grown;
	int zr;

	if (size > cap + 1)
		size = cap + 1;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return PL_ENOMEM;
	out = malloc(size);
	if (!out) {
		inflateEnd(&z);
		return PL_ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	for (;;) {
		size_t chunk_in = n - (size_t)((const uint8_t *)z.next_in - in);

		if (used == size) {
			if (size > cap) {	/* one byte past the cap: too big */
				zr = Z_MEM_ERROR;
				goto toobig;
			}
			size = size * 2 > cap + 1 ? cap + 1 : size * 2;
			grown = realloc(out, size);
			if (!grown) {
				zr = Z_MEM_ERROR;
				break;
			}
			out = grown;
		}
		z.avail_in = chunk_in > UINT32_MAX ? UINT32_MAX : (uInt)chunk_in;
		z.next_out = out + used;
		z.avail_out = size - used > UINT32_MAX ? UINT32_MAX : (uInt)(size - used);
		zr = inflate(&z, Z_NO_FLUSH);
		used = (size_t)(z.next_out - out);
		if (used > cap)
			goto toobig;
		if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
			break;
		if (zr == Z_BUF_ERROR && z.avail_in == 0 && used < size)
			break;	/* truncated input */
	}
	inflateEnd(&z);
	/* one member, nothing after it */
	if (zr != Z_STREAM_END || (const uint8_t *)z.next_in != in + n) {
		free(out);
		return zr == Z_MEM_ERROR ? PL_ENOMEM : PL_EMALFORMED;
	}
	grown = realloc(out, used + 1);	/* NUL-terminated, like an identity body */
	if (!grown) {
		free(out);
		return PL_ENOMEM;
	}
	grown[used] = 0;
	*ret = grown;
	*ret_len = used;
	return PL_OK;
toobig:
	inflateEnd(&z);
	free(out);
	return PL_ETOOBIG;
}

/* ---- base64 ------------------------------------------------------------------------- */

char *pl_b64_encode(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

int pl_b64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0;
	uint8_t *out;
	int len;

	if (n % 4 || n > (size_t)1 << 30)
		return PL_EMALFORMED;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=' && i >= n - 2) {
			pad++;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				    c == '+' || c == '/')) {
			return PL_EMALFORMED;
		}
	}
	if (pad) {	/* canonical only: the bits the padding drops must be zero */
		const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t v = (size_t)(strchr(abc, s[n - pad - 1]) - abc);

		if (v & (pad == 1 ? 0x3u : 0xfu))
			return PL_EMALFORMED;
	}
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return PL_ENOMEM;
	len = n ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) : 0;
	if (len < 0 || (size_t)len < pad) {
		free(out);
		return PL_EMALFORMED;
	}
	*ret = out;
	*ret_len = (size_t)len - pad;
	return PL_OK;
}

static int offset_of(const json_t *pos, size_t *ret)
{
	const json_t *o = json_object_get(pos, "offset");

	if (!json_is_object(pos) || !json_is_integer(o) || json_integer_value(o) < 0)
		return PL_EMALFORMED;
	*ret = (size_t)json_integer_value(o);
	return PL_OK;
}

int pl_edits_parse(const json_t *arr, struct pl_edit **ret, size_t *ret_n)
{
	size_t n = json_array_size(arr);
	struct pl_edit *e;

	if (!json_is_array(arr))
		return PL_EMALFORMED;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return PL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *it = json_array_get(arr, i), *span = json_object_get(it, "Span");
		const json_t *text = json_object_get(it, "NewText");

		if (!json_is_object(span) || !json_is_string(text) ||
		    offset_of(json_object_get(span, "start"), &e[i].start) < 0 ||
		    offset_of(json_object_get(span, "end"), &e[i].end) < 0) {
			free(e);
			return PL_EMALFORMED;
		}
		e[i].text = json_string_value(text);
		e[i].len = json_string_length(text);
	}
	*ret = e;
	*ret_n = n;
	return PL_OK;
}

int pl_delta_apply(const char *prev, size_t prevlen, struct pl_edit *e, size_t n, size_t cap, char **ret,
		   size_t *ret_len)
{
	size_t total = 0, at = 0;
	char *out;

	/* stable insertion sort by start (edits are few: one per changed resource) */
	for (size_t i = 1; i < n; i++) {
		struct pl_edit k = e[i];
		size_t j = i;

		for (; j > 0 && e[j - 1].start > k.start; j--)
			e[j] = e[j - 1];
		e[j] = k;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].end < e[i].start || e[i].end > prevlen || e[i].start < at)
			return PL_EMALFORMED;
		if (e[i].len > cap || total > cap - e[i].len - (e[i].start - at))
			return PL_ETOOBIG;
		total += (e[i].start - at) + e[i].len;
		at = e[i].end;
	}
	if (total > cap || prevlen - at > cap - total)
		return PL_ETOOBIG;
	total += prevlen - at;
	out = malloc(total + 1);
	if (!out)
		return PL_ENOMEM;
	at = 0;
	*ret_len = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(out + *ret_len, prev + at, e[i].start - at);
		*ret_len += e[i].start - at;
		memcpy(out + *ret_len, e[i].text, e[i].len);
		*ret_len += e[i].len;
		at = e[i].end;
	}
	memcpy(out + *ret_len, prev + at, prevlen - at);
	*ret_len += prevlen - at;
	out[*ret_len] = '\0';
	*ret = out;
	return PL_OK;
}

/* ---- raw JSON spans ------------------------------------------------------------ */

static size_t skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* End (exclusive) of the string starting at p[i] == '"', or 0. */
static size_t skip_string(const char *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
}

/* End (exclusive) of the value at p[i], or 0. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
	size_t depth = 0;

	if (i >= n)
		return 0;
	if (p[i] == '"')
		return skip_string(p, n, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n' &&
		       p[i] != '\t' && p[i] != '\r')
			i++;
		return i;
	}
	for (; i < n; i++) {
		if (p[i] == '"') {
			i = skip_string(p, n, i);
			if (!i)
				return 0;
			i--;
		} else if (p[i] == '{' || p[i] == '[') {
			depth++;
		} else if (p[i] == '}' || p[i] == ']') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return 0;
}

int pl_json_member(const char *p, size_t n, const char *name, size_t *ret_off, size_t *ret_len)
{
	size_t nl = strlen(name), i = skip_ws(p, n, 0);

	if (i >= n || p[i] != '{')
		return PL_EMALFORMED;
	i = skip_ws(p, n, i + 1);
	while (i < n && p[i] == '"') {
		size_t ks = i, ke = skip_string(p, n, i), vs, ve;

		if (!ke)
			return PL_EMALFORMED;
		i = skip_ws(p, n, ke);
		if (i >= n || p[i] != ':')
			return PL_EMALFORMED;
		vs = skip_ws(p, n, i + 1);
		ve = skip_value(p, n, vs);
		if (!ve)
			return PL_EMALFORMED;
		/* the CLI's keys are plain ASCII: compare the raw key */
		if (ke - ks - 2 == nl && memcmp(p + ks + 1, name, nl) == 0) {
			*ret_off = vs;
			*ret_len = ve - vs;
			return PL_OK;
		}
		i = skip_ws(p, n, ve);
		if (i < n && p[i] == ',')
			i = skip_ws(p, n, i + 1);
		else
			break;
	}
	return PL_EMALFORMED;
}
