/* cmdline.c - kernel command line lookup and command splitting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cmdline.h"
#include "base/err.h"
#include "base/util.h"

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int att_cmdline_get(const char *s, size_t len, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key), i = 0;
	int found = 0;

	while (i < len) {
		char word[4096];
		size_t wl = 0;
		int quoted = 0;

		while (i < len && is_space(s[i]))
			i++;
		if (i >= len)
			break;
		for (; i < len && (quoted || !is_space(s[i])); i++) {
			if (s[i] == '"') {
				quoted = !quoted;
				continue;
			}
			if (s[i] == '\0')
				continue;
			if (wl + 1 < sizeof(word))
				word[wl++] = s[i];
		}
		word[wl] = '\0';
		if (strncmp(word, key, kl) != 0 || (word[kl] != '\0' && word[kl] != '='))
			continue;
		{
			const char *v = word[kl] == '=' ? word + kl + 1 : "";

			if (strlen(v) >= outlen)
				return ATT_E_LIMIT;
			memcpy(out, v, strlen(v) + 1);
			found = 1;
		}
	}
	return found;
}

int att_cmdline_split(const char *s, char ***ret_argv, char *reterr, size_t errlen)
{
	size_t n = strlen(s), argc = 0, o = 0;
	char **argv;
	char *buf;
	const char *p = s;

	/* one block: the pointer array, then the words */
	argv = malloc(sizeof(char *) * (ATT_CMD_MAX_ARGS + 1) + n + 1);
	if (!argv)
		return ATT_E_NOMEM;
	buf = (char *)(argv + ATT_CMD_MAX_ARGS + 1);
	for (;;) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		if (argc == ATT_CMD_MAX_ARGS) {
			free(argv);
			snprintf(reterr, errlen, "more than %d words", ATT_CMD_MAX_ARGS);
			return ATT_E_INVAL;
		}
		argv[argc++] = buf + o;
		while (*p && !is_space(*p)) {
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');

				if (!e)
					goto unterminated;
				memcpy(buf + o, p + 1, (size_t)(e - p - 1));
				o += (size_t)(e - p - 1);
				p = e + 1;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf[o++] = *p;
				}
				if (!*p)
					goto unterminated;
				p++;
			} else {
				if (*p == '\\' && p[1])
					p++;
				buf[o++] = *p++;
			}
		}
		buf[o++] = '\0';
	}
	if (argc == 0) {
		free(argv);
		snprintf(reterr, errlen, "empty command");
		return ATT_E_INVAL;
	}
	argv[argc] = NULL;
	*ret_argv = argv;
	return (int)argc;
unterminated:
	free(argv);
	snprintf(reterr, errlen, "unterminated quote");
	return ATT_E_INVAL;
}
