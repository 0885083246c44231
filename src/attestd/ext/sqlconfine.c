/* sqlconfine.c - what an extension's migrations may touch: only tables
 * named extension_<name>_* (docs/extensions.md).  The SQL is read word by
 * word, skipping literals, quoted names and comments. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "ext/ext.h"

bool att_ext_owns_table(const struct att_ext *ext, const char *name, size_t len)
{
	char want[64];
	int n = snprintf(want, sizeof(want), "extension_%s_", ext->info->name);

	return n > 0 && len > (size_t)n && strncasecmp(name, want, (size_t)n) == 0;
}

/* SQL words, skipping 'literals', "quotes" around names and -- comments. */
struct sql_words {
	const char *p;
};

static size_t sql_word(struct sql_words *w, const char **ret)
{
	const char *p = w->p;

	for (;;) {
		if (*p == '\'') {
			for (p++; *p && !(p[0] == '\'' && p[1] != '\''); p += p[0] == '\'' ? 2 : 1)
				;
			if (*p)
				p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (*p && !(isalnum((unsigned char)*p) || *p == '_')) {
			p++;
		} else {
			break;
		}
	}
	*ret = p;
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	w->p = p;
	return (size_t)(p - *ret);
}

static bool word_is(const char *w, size_t n, const char *kw)
{
	return n == strlen(kw) && strncasecmp(w, kw, n) == 0;
}

/* The next word that is not IF / NOT / EXISTS / UNIQUE. */
static size_t sql_name(struct sql_words *w, const char **ret)
{
	size_t n;

	do
		n = sql_word(w, ret);
	while (n && (word_is(*ret, n, "IF") || word_is(*ret, n, "NOT") || word_is(*ret, n, "EXISTS")));
	return n;
}

bool att_ext_sql_confined(const struct att_ext *ext, const char *sql, char *why, size_t whylen)
{
	/* after these words comes the name of an object the script creates,
	 * changes or writes to (ON: of CREATE INDEX ... ON t) */
	static const char *const kw[] = { "TABLE", "INDEX", "VIEW", "TRIGGER", "SEQUENCE", "ON", "INTO", "UPDATE" };
	struct sql_words w = { sql };
	const char *word, *id;
	size_t n, idn;

	while ((n = sql_word(&w, &word)) > 0) {
		const char *k = NULL;

		for (size_t i = 0; i < ATT_ARRAY_SIZE(kw) && !k; i++)
			if (word_is(word, n, kw[i]))
				k = kw[i];
		if (!k)
			continue;
		idn = sql_name(&w, &id);
		/* ON CONFLICT, ON DELETE/UPDATE (foreign keys), DO UPDATE SET */
		if ((strcmp(k, "ON") == 0 && (word_is(id, idn, "CONFLICT") || word_is(id, idn, "DELETE") ||
					      word_is(id, idn, "UPDATE"))) ||
		    (strcmp(k, "UPDATE") == 0 && word_is(id, idn, "SET")))
			continue;
		if (idn == 0 || !att_ext_owns_table(ext, id, idn)) {
			snprintf(why, whylen, "'%s %.*s': extension objects must be named extension_%s_*", k,
				 (int)(idn > 64 ? 64 : idn), id, ext->info->name);
			return false;
		}
	}
	return true;
}
