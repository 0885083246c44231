/* buf.h - growable byte buffer with a hard cap set at creation
 * (curl's dynbuf idea).  Appending past the cap fails with ATT_E_LIMIT
 * and leaves the buffer unchanged. */
#ifndef ATT_BASE_BUF_H
#define ATT_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct att_buf {
	char *p;	/* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;	/* allocated */
	size_t max;	/* hard limit on len */
};

void att_buf_init(struct att_buf *b, size_t max);
void att_buf_release(struct att_buf *b);
int att_buf_append(struct att_buf *b, const void *data, size_t len);
int att_buf_puts(struct att_buf *b, const char *s);
int att_buf_printf(struct att_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the contents to the caller (caller frees); buffer is reset. */
char *att_buf_steal(struct att_buf *b, size_t *ret_len);

#endif
