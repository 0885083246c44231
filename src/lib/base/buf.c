#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"

void att_buf_init(struct att_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void att_buf_release(struct att_buf *b)
{
	free(b->p);
	att_buf_init(b, b->max);
}

int att_buf_append(struct att_buf *b, const void *data, size_t len)
{
	if (len > b->max || b->len > b->max - len)
		return ATT_E_LIMIT;
	if (b->len + len + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *np;

		while (ncap < b->len + len + 1)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		np = realloc(b->p, ncap);
		if (!np)
			return ATT_E_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int att_buf_puts(struct att_buf *b, const char *s)
{
	return att_buf_append(b, s, strlen(s));
}

int att_buf_printf(struct att_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return ATT_E_NOMEM;
	r = att_buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

char *att_buf_steal(struct att_buf *b, size_t *ret_len)
{
	char *p = b->p;

	if (!p) {
		p = calloc(1, 1);
		if (!p)
			return NULL;
	}
	if (ret_len)
		*ret_len = b->len;
	att_buf_init(b, b->max);
	return p;
}
