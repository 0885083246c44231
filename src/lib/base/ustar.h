/* ustar.h - a small, strict POSIX ustar reader and writer and a capped
 * gzip codec, for the signed air-gap bundles (docs/airgap.md).
 *
 * The reader accepts only what the writer makes: regular files at the
 * top level of the archive with plain names ([A-Za-z0-9._-], not
 * starting with '.'), octal numeric fields, correct header checksums, the
 * two zero blocks that end the archive and nothing but zeros after them.
 * Links, devices, directories, FIFOs, pax and GNU extension headers,
 * absolute paths, '..', duplicate names, truncation and anything over
 * the caps are refused with a message saying which. */
#ifndef ATT_BASE_USTAR_H
#define ATT_BASE_USTAR_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define ATT_TAR_NAME_MAX 100

struct att_tar_member {
	char name[ATT_TAR_NAME_MAX + 1];
	const uint8_t *data;	/* points into the parsed buffer */
	size_t size;
};

/* Parse buf (len bytes).  At most max members of at most member_cap
 * bytes each.  0, ATT_E_INVAL (malformed or forbidden; reterr says
 * why) or ATT_E_LIMIT (too many or too large members). */
int att_tar_parse(const uint8_t *buf, size_t len, struct att_tar_member *out, size_t max, size_t member_cap,
		  size_t *ret_n, char *reterr, size_t errlen);

/* Append one regular file (mode e.g. 0644, owner root) or the end of
 * the archive to out. */
int att_tar_add(struct att_buf *out, const char *name, const void *data, size_t len, unsigned mode,
		int64_t mtime);
int att_tar_finish(struct att_buf *out);

/* True when in starts with the gzip magic (1f 8b). */
int att_is_gzip(const uint8_t *in, size_t n);
/* Inflate one gzip member (no trailing bytes) into at most cap bytes:
 * 0, ATT_E_LIMIT (more than cap), ATT_E_INVAL (corrupt or truncated),
 * ATT_E_NOMEM.  *ret is malloc'd. */
int att_gunzip(const uint8_t *in, size_t n, size_t cap, uint8_t **ret, size_t *ret_len);
/* Deflate into a gzip member; *ret is malloc'd. */
int att_gzip(const uint8_t *in, size_t n, uint8_t **ret, size_t *ret_len);

#endif
