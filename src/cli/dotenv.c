/* dotenv.c - the CLI's settings from a .env file (seed 002: "Create a
 * .env file or export environment variables").
 *
 * ./.env (or the file ATTESTATION_ENV_FILE names) is read once at start:
 * KEY=VALUE lines, optional "export ", '#' comments, values optionally in
 * single or double quotes.  As with python-dotenv, variables already in
 * the environment win.  Only the CLI's own variables (ATTESTATION_*,
 * KEYCLOAK_*) are taken: a .env in a directory one happens to be in must
 * not choose the program that opens URLs (BROWSER) or anything else. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static bool ours(const char *k)
{
	return strncmp(k, "ATTESTATION_", 12) == 0 || strncmp(k, "KEYCLOAK_", 9) == 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* One line: 1 when a variable was set, 0 when skipped, -1 when malformed. */
static int dotenv_line(char *line)
{
	char *k = trim(line), *eq, *v;
	size_t n;

	if (*k == '\0' || *k == '#')
		return 0;
	if (strncmp(k, "export ", 7) == 0)
		k = trim(k + 7);
	eq = strchr(k, '=');
	if (!eq || eq == k)
		return -1;
	*eq = '\0';
	k = trim(k);
	v = trim(eq + 1);
	for (const char *p = k; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return -1;
	n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	} else if (strchr(v, '#')) {	/* an unquoted value ends at " #" */
		char *h = strstr(v, " #");

		if (h)
			*h = '\0';
		v = trim(v);
	}
	if (!ours(k) || getenv(k))
		return 0;
	return setenv(k, v, 0) == 0 ? 1 : -1;
}

int cli_load_dotenv(void)
{
	const char *path = getenv("ATTESTATION_ENV_FILE");
	bool named = path && *path;
	char line[4096];
	int lineno = 0;
	FILE *f;

	f = fopen(named ? path : ".env", "r");
	if (!f) {
		if (named || errno != ENOENT) {
			fprintf(stderr, "attestation: cannot read %s: %s\n", named ? path : ".env", strerror(errno));
			return -1;
		}
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (dotenv_line(line) < 0)
			fprintf(stderr, "attestation: %s line %d ignored (expected KEY=VALUE)\n", named ? path : ".env",
				lineno);
	}
	fclose(f);
	return 0;
}
