/* cmdline.h - words on command lines the node agent reads: the kernel's
 * (/proc/cmdline: itl.reg_url=, itl.role=, itl.offline, talos.config=)
 * and the commands it runs (--apply-cmd, --reset-cmd: no shell needed,
 * which a Talos extension image does not have). */
#ifndef ATT_AGENT_CMDLINE_H
#define ATT_AGENT_CMDLINE_H

#include <stddef.h>

/* Look key up in a kernel command line: words separated by whitespace,
 * double quotes group (and are removed, as the kernel does), "key=value"
 * or a bare "key" (value "").  The last occurrence wins.  1 with the
 * value in out, 0 when absent, ATT_E_LIMIT when the value does not fit. */
int att_cmdline_get(const char *cmdline, size_t len, const char *key, char *out, size_t outlen);

#define ATT_CMD_MAX_ARGS 64

/* Split a command into words: whitespace separates, '...' quotes
 * literally, "..." quotes with \" and \\ escapes, a backslash outside
 * quotes escapes the next character.  *ret_argv is one allocation
 * (NULL-terminated, caller frees); returns argc (>= 1) or ATT_E_INVAL
 * with a reason (empty, unterminated quote, too many words). */
int att_cmdline_split(const char *s, char ***ret_argv, char *reterr, size_t errlen);

#endif
