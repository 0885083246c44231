/* ustar.c - strict ustar reader/writer and capped gzip (see ustar.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "base/err.h"
#include "base/ustar.h"

#define BLOCK 512

/* header field offsets and sizes (POSIX.1-1988 ustar) */
enum {
	H_NAME = 0, H_MODE = 100, H_UID = 108, H_GID = 116, H_SIZE = 124, H_MTIME = 136, H_CHKSUM = 148,
	H_TYPE = 156, H_LINK = 157, H_MAGIC = 257, H_VERSION = 263, H_UNAME = 265, H_GNAME = 297,
	H_DEVMAJOR = 329, H_DEVMINOR = 337, H_PREFIX = 345,
};

static int fail(char *reterr, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *reterr, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(reterr, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* An octal field: digits, then NUL/space padding only; no base-256. */
static bool octal(const uint8_t *f, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i = 0, digits = 0;

	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
		if (v >> 60)
			return false;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	if (digits == 0)
		return false;
	for (; i < n; i++)
		if (f[i] != '\0' && f[i] != ' ')
			return false;
	*ret = v;
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A NUL-terminated (or full-width) string field copied into out. */
static bool field_str(const uint8_t *f, size_t n, char *out)
{
	size_t len = 0;

	while (len < n && f[len])
		len++;
	memcpy(out, f, len);
	out[len] = '\0';
	return len == n || all_zero(f + len, n - len);
}

static unsigned checksum(const uint8_t *h)
{
	unsigned sum = 0;

	for (size_t i = 0; i < BLOCK; i++)
		sum += i >= H_CHKSUM && i < H_CHKSUM + 8 ? ' ' : h[i];
	return sum;
}

static const char *type_name(uint8_t t)
{
	switch (t) {
	case '1': return "a hard link";
	case '2': return "a symbolic link";
	case '3': return "a character device";
	case '4': return "a block device";
	case '5': return "a directory";
	case '6': return "a FIFO";
	case '7': return "a contiguous file";
	case 'x': case 'g': return "a pax extended header";
	case 'L': case 'K': return "a GNU long-name header";
	default: return "an unknown member type";
	}
}

/* The member's full name (prefix/name) checked: 0 or ATT_E_INVAL. */
static int check_name(const uint8_t *h, char out[ATT_TAR_NAME_MAX + 1], char *reterr, size_t errlen)
{
	char name[ATT_TAR_NAME_MAX + 1], prefix[156], full[260];
	const char *p;

	if (!field_str(h + H_NAME, 100, name) || !field_str(h + H_PREFIX, 155, prefix))
		return fail(reterr, errlen, ATT_E_INVAL, "member name field is not NUL-padded");
	snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "/" : "", name);
	if (!full[0])
		return fail(reterr, errlen, ATT_E_INVAL, "member with an empty name");
	if (full[0] == '/')
		return fail(reterr, errlen, ATT_E_INVAL, "member '%.100s' has an absolute path", full);
	for (p = full; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
		if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
			return fail(reterr, errlen, ATT_E_INVAL, "member '%.100s' has a '..' path component (path traversal)",
				    full);
	if (strchr(full, '/'))
		return fail(reterr, errlen, ATT_E_INVAL, "member '%.100s' is not at the top level of the archive", full);
	if (full[0] == '.')
		return fail(reterr, errlen, ATT_E_INVAL, "member '%.100s' has a hidden name", full);
	for (p = full; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '-' || *p == '_'))
			return fail(reterr, errlen, ATT_E_INVAL, "member name has a character outside [A-Za-z0-9._-]");
	memcpy(out, full, strlen(full) + 1);
	return 0;
}

/* One header block h: type, magic, checksum, numeric fields; the size. */
static int check_header(const uint8_t *h, uint64_t *size, char *reterr, size_t errlen)
{
	uint64_t sum, v;

	if (!octal(h + H_CHKSUM, 8, &sum) || sum != checksum(h))
		return fail(reterr, errlen, ATT_E_INVAL, "header checksum mismatch (corrupt or not a tar archive)");
	if (memcmp(h + H_MAGIC, "ustar", 6) != 0 && memcmp(h + H_MAGIC, "ustar  ", 8) != 0)
		return fail(reterr, errlen, ATT_E_INVAL, "not a ustar archive (bad magic)");
	if (memcmp(h + H_MAGIC, "ustar", 6) == 0 && memcmp(h + H_VERSION, "00", 2) != 0)
		return fail(reterr, errlen, ATT_E_INVAL, "unsupported ustar version");
	if (h[H_TYPE] != '0' && h[H_TYPE] != '\0')
		return fail(reterr, errlen, ATT_E_INVAL, "member is %s: only regular files are allowed",
			    type_name(h[H_TYPE]));
	if (!all_zero(h + H_LINK, 100))
		return fail(reterr, errlen, ATT_E_INVAL, "regular member with a link name");
	if (!octal(h + H_MODE, 8, &v) || v > 07777 || (v & 07000))
		return fail(reterr, errlen, ATT_E_INVAL, "member mode is not plain permission bits");
	if (!octal(h + H_UID, 8, &v) || !octal(h + H_GID, 8, &v) || !octal(h + H_MTIME, 12, &v))
		return fail(reterr, errlen, ATT_E_INVAL, "malformed numeric header field");
	if (!octal(h + H_SIZE, 12, size))
		return fail(reterr, errlen, ATT_E_INVAL, "malformed member size");
	return 0;
}

int att_tar_parse(const uint8_t *buf, size_t len, struct att_tar_member *out, size_t max, size_t member_cap,
		  size_t *ret_n, char *reterr, size_t errlen)
{
	size_t off = 0, n = 0;
	uint64_t size = 0;
	int r;

	*ret_n = 0;
	if (len % BLOCK)
		return fail(reterr, errlen, ATT_E_INVAL, "truncated archive (not a whole number of 512-byte blocks)");
	for (;;) {
		const uint8_t *h = buf + off;

		if (len - off < BLOCK)
			return fail(reterr, errlen, ATT_E_INVAL, "truncated archive (no end-of-archive marker)");
		if (all_zero(h, BLOCK)) {
			if (len - off < 2 * BLOCK || !all_zero(h + BLOCK, BLOCK))
				return fail(reterr, errlen, ATT_E_INVAL, "truncated archive (incomplete end-of-archive marker)");
			if (!all_zero(h + 2 * BLOCK, len - off - 2 * BLOCK))
				return fail(reterr, errlen, ATT_E_INVAL, "data after the end-of-archive marker");
			break;
		}
		r = check_header(h, &size, reterr, errlen);
		if (r < 0)
			return r;
		if (n == max)
			return fail(reterr, errlen, ATT_E_LIMIT, "more than %zu members", max);
		r = check_name(h, out[n].name, reterr, errlen);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			if (strcmp(out[i].name, out[n].name) == 0)
				return fail(reterr, errlen, ATT_E_INVAL, "duplicate member name '%s'", out[n].name);
		if (size > member_cap)
			return fail(reterr, errlen, ATT_E_LIMIT, "member '%s' is larger than %zu bytes", out[n].name,
				    member_cap);
		off += BLOCK;
		if ((len - off) < (size + BLOCK - 1) / BLOCK * BLOCK)
			return fail(reterr, errlen, ATT_E_INVAL, "truncated archive (member '%s' is cut short)", out[n].name);
		out[n].data = buf + off;
		out[n].size = (size_t)size;
		off += (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
		n++;
	}
	*ret_n = n;
	return 0;
}

static void put_octal(uint8_t *f, size_t n, uint64_t v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(n - 1), (unsigned long long)v);
	memcpy(f, tmp, n - 1);
	f[n - 1] = '\0';
}

int att_tar_add(struct att_buf *out, const char *name, const void *data, size_t len, unsigned mode, int64_t mtime)
{
	uint8_t h[BLOCK];
	static const uint8_t zero[BLOCK];
	size_t nl = strlen(name);
	int r;

	if (nl == 0 || nl > ATT_TAR_NAME_MAX || len > 077777777777ULL)
		return ATT_E_INVAL;
	memset(h, 0, sizeof(h));
	memcpy(h + H_NAME, name, nl);
	put_octal(h + H_MODE, 8, mode & 0777);
	put_octal(h + H_UID, 8, 0);
	put_octal(h + H_GID, 8, 0);
	put_octal(h + H_SIZE, 12, len);
	put_octal(h + H_MTIME, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h[H_TYPE] = '0';
	memcpy(h + H_MAGIC, "ustar", 6);
	memcpy(h + H_VERSION, "00", 2);
	memcpy(h + H_UNAME, "root", 4);
	memcpy(h + H_GNAME, "root", 4);
	put_octal(h + H_DEVMAJOR, 8, 0);
	put_octal(h + H_DEVMINOR, 8, 0);
	{
		char sum[8];

		snprintf(sum, sizeof(sum), "%06o", checksum(h));
		memcpy(h + H_CHKSUM, sum, 7);	/* six digits, NUL, then the space checksum() assumed */
		h[H_CHKSUM + 7] = ' ';
	}
	r = att_buf_append(out, h, BLOCK);
	if (r == 0 && len)
		r = att_buf_append(out, data, len);
	if (r == 0 && len % BLOCK)
		r = att_buf_append(out, zero, BLOCK - len % BLOCK);
	return r;
}

int att_tar_finish(struct att_buf *out)
{
	static const uint8_t zero[2 * BLOCK];

	return att_buf_append(out, zero, sizeof(zero));
}

/* ---- gzip ------------------------------------------------------------------------ */

int att_is_gzip(const uint8_t *in, size_t n)
{
	return n >= 2 && in[0] == 0x1f && in[1] == 0x8b;
}

int att_gunzip(const uint8_t *in, size_t n, size_t cap, uint8_t **ret, size_t *ret_len)
{
	z_stream z;
	size_t size = n * 4 + 4096, used = 0;
	uint8_t *out = NULL, *grown;
	int zr, r = ATT_E_INVAL;

	*ret = NULL;
	*ret_len = 0;
	if (!att_is_gzip(in, n))
		return ATT_E_INVAL;
	if (size > cap + 1)
		size = cap + 1;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return ATT_E_NOMEM;
	out = malloc(size);
	if (!out) {
		inflateEnd(&z);
		return ATT_E_NOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
	for (;;) {
		if (used == size) {
			if (size > cap) {	/* one byte past the cap: too big */
				r = ATT_E_LIMIT;
				goto out;
			}
			size = size * 2 > cap + 1 ? cap + 1 : size * 2;
			grown = realloc(out, size);
			if (!grown) {
				r = ATT_E_NOMEM;
				goto out;
			}
			out = grown;
		}
		z.next_out = out + used;
		z.avail_out = (uInt)(size - used > UINT32_MAX ? UINT32_MAX : size - used);
		zr = inflate(&z, Z_NO_FLUSH);
		used = (size_t)(z.next_out - out);
		if (used > cap) {
			r = ATT_E_LIMIT;
			goto out;
		}
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_BUF_ERROR && z.avail_out != 0)
			goto out;	/* input ended: truncated */
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			goto out;	/* corrupt */
	}
	if (z.avail_in != 0 || (size_t)((const uint8_t *)z.next_in - in) != n)
		goto out;	/* bytes after the gzip member */
	*ret = out;
	*ret_len = used;
	out = NULL;
	r = 0;
out:
	inflateEnd(&z);
	free(out);
	return r;
}

int att_gzip(const uint8_t *in, size_t n, uint8_t **ret, size_t *ret_len)
{
	z_stream z;
	uLong bound;
	uint8_t *out;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return ATT_E_NOMEM;
	bound = deflateBound(&z, (uLong)n) + 64;
	out = malloc(bound);
	if (!out) {
		deflateEnd(&z);
		return ATT_E_NOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return ATT_E_INTERNAL;
	}
	*ret = out;
	*ret_len = (size_t)z.total_out;
	deflateEnd(&z);
	return 0;
}
