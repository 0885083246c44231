/* text.c - UTF-8 and control characters in untrusted strings (text.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

/* Length of the well-formed UTF-8 sequence at s (1..4), 0 when the bytes
 * there are not one; *cp gets the code point. */
static size_t seq_len(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2, c = s[0] & 0x1F, min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3, c = s[0] & 0x0F, min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

size_t att_utf8_cut(const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (u[i]) {
		uint32_t cp;
		size_t n = seq_len(u + i, &cp);

		if (n == 0)
			n = 1;
		if (i + n > max)
			break;
		i += n;
	}
	return i;
}

size_t att_utf8_scrub(char *s)
{
	unsigned char *u = (unsigned char *)s;
	size_t bad = 0;

	while (*u) {
		uint32_t cp;
		size_t n = seq_len(u, &cp);

		if (n == 0) {
			*u = '?';
			bad++;
			n = 1;
		}
		u += n;
	}
	return bad;
}

bool att_utf8_valid(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		uint32_t cp;
		size_t n = seq_len(u, &cp);

		if (n == 0)
			return false;
		u += n;
	}
	return true;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

bool att_text_has_control(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		uint32_t cp;
		size_t n = seq_len(u, &cp);

		if (n == 0 || is_control(cp))
			return true;
		u += n;
	}
	return false;
}

char *att_text_escape(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s);
	size_t cap = 6 * len + 1;	/* \u00NN is the longest form of a byte */
	char *out = malloc(cap), *o = out;

	if (!out)
		return NULL;
	while (*u) {
		uint32_t cp;
		size_t n = seq_len(u, &cp);

		if (n == 0) {
			o += snprintf(o, cap - (size_t)(o - out), "\\x%02x", *u);
			n = 1;
		} else if (cp == '\n' || cp == '\r' || cp == '\t') {
			*o++ = '\\';
			*o++ = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
		} else if (cp < 0x20 || cp == 0x7F) {
			o += snprintf(o, cap - (size_t)(o - out), "\\x%02x", (unsigned)cp);
		} else if (cp >= 0x80 && cp <= 0x9F) {
			o += snprintf(o, cap - (size_t)(o - out), "\\u%04x", (unsigned)cp);
		} else {
			memcpy(o, u, n);
			o += n;
		}
		u += n;
	}
	*o = '\0';
	return out;
}
