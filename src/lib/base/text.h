/* text.h - UTF-8 and control characters in untrusted strings.
 *
 * Input: att_text_has_control() finds what a field must not carry.
 * Output: att_text_escape() makes any string safe for a terminal or a
 * line-based log; att_utf8_cut() truncates on a code-point boundary and
 * att_utf8_scrub() replaces bytes that are not UTF-8, so a message built
 * from client bytes can always be put into JSON. */
#ifndef ATT_BASE_TEXT_H
#define ATT_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the longest prefix of s (at most max bytes) that ends on a
 * code-point boundary. */
size_t att_utf8_cut(const char *s, size_t max);
/* Replace, in place, every byte that is not part of a well-formed UTF-8
 * sequence with '?'.  Returns the number replaced. */
size_t att_utf8_scrub(char *s);
/* Is s well-formed UTF-8? */
bool att_utf8_valid(const char *s);
/* Does s hold a C0 control (U+0000-U+001F), DEL, or a C1 control
 * (U+0080-U+009F)?  Also true when s is not UTF-8. */
bool att_text_has_control(const char *s);
/* A malloc'd copy of s in which controls are written as \n, \r, \t,
 * \xNN (other C0, DEL), \u00NN (C1) and bytes that are not UTF-8 as \xNN.
 * NULL only when out of memory. */
char *att_text_escape(const char *s);

#endif
