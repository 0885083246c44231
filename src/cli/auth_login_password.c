/* auth_login_password.c - `attestation auth login --method password`: the
 * resource owner password grant, for CI.  The password is read from the
 * terminal without echo, or from stdin with --password-stdin, and wiped
 * after use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#include "auth.h"
#include "base/util.h"

static char *read_password(bool from_stdin)
{
	char buf[1024];
	struct termios old, noecho;
	FILE *in = stdin;
	bool tty = false;
	size_t n;

	if (!from_stdin) {
		in = fopen("/dev/tty", "r+");
		if (!in) {
			fprintf(stderr, "Error: no terminal to ask for the password; use --password-stdin\n");
			return NULL;
		}
		fprintf(stderr, "Password: ");
		fflush(stderr);
		if (tcgetattr(fileno(in), &old) == 0) {
			noecho = old;
			noecho.c_lflag &= (tcflag_t)~ECHO;
			tty = tcsetattr(fileno(in), TCSAFLUSH, &noecho) == 0;
		}
	}
	if (!fgets(buf, sizeof(buf), in))
		buf[0] = 0;
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (in != stdin)
		fclose(in);
	n = strcspn(buf, "\r\n");
	buf[n] = 0;
	if (n == 0) {
		fprintf(stderr, "Error: empty password\n");
		return NULL;
	}
	{
		char *p = strdup(buf);

		att_wipe(buf, sizeof(buf));
		return p;
	}
}

int cli_login_password(struct cli *c, const struct cli_disco *d, const char *user, bool pw_stdin)
{
	char *pw, *form, ecode[512];
	json_t *resp = NULL;
	int ex;

	if (!user) {
		fprintf(stderr, "attestation auth login: --method password needs --username\n");
		return EX_USAGE;
	}
	pw = read_password(pw_stdin);
	if (!pw)
		return EX_USAGE;
	/* confidential clients authenticate with HTTP Basic; public ones send client_id */
	form = cli_form("grant_type", "password", "username", user, "password", pw, "scope", c->scope, "client_id",
			c->client_secret ? NULL : c->client_id, "resource", c->resource, (char *)NULL);
	att_wipe(pw, strlen(pw));
	free(pw);
	ex = form ? cli_oidc_form_post(c, d->token, form, &resp, ecode, sizeof(ecode), NULL) : EX_ERR;
	if (form) {
		att_wipe(form, strlen(form));
		free(form);
	}
	if (ex) {
		fprintf(stderr, "Error: password login failed: %s\n", ecode[0] ? ecode : "no response");
		return ex;
	}
	ex = cli_cache_store_tokens(c, d, resp, NULL, "password", user);
	json_decref(resp);
	return ex;
}
