/* auth_refresh.c - the credential for API calls: ATTESTATION_TOKEN,
 * ATTESTATION_BREAK_GLASS_TOKEN, or the cached login's access token,
 * refreshed with its refresh token (under the cache lock, so concurrent
 * invocations refresh once) when it expires within a minute or the service
 * refused it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "base/util.h"

/* Refresh the cached login (lock held).  0 with *doc replaced. */
static int refresh(struct cli *c, json_t **doc)
{
	const char *rt = jstr(*doc, "refresh_token");
	struct cli_disco d = { 0 };
	char *form, ecode[512];
	json_t *resp = NULL;
	int ex;

	if (!rt)
		return EX_AUTH;
	if (jstr(*doc, "token_endpoint")) {
		d.token = strdup(jstr(*doc, "token_endpoint"));
		d.revoke = jdup(*doc, "revocation_endpoint");
	} else if ((ex = cli_oidc_discover(c, &d)) != 0) {
		return ex;
	}
	form = cli_form("grant_type", "refresh_token", "refresh_token", rt, "client_id",
			c->client_secret ? NULL : c->client_id, (char *)NULL);
	ex = form ? cli_oidc_form_post(c, d.token, form, &resp, ecode, sizeof(ecode), NULL) : EX_ERR;
	free(form);
	if (ex == 0) {
		ex = cli_cache_store_tokens(c, &d, resp, *doc, jstr(*doc, "method") ? jstr(*doc, "method") : "refresh", NULL);
		if (ex == 0) {
			char *p = cli_cache_path(c, ".json");

			json_decref(*doc);
			*doc = p ? cli_cache_read(p, false) : NULL;
			free(p);
			if (!*doc)
				ex = EX_ERR;
		}
	} else if (ex == EX_AUTH) {
		fprintf(stderr, "Your session has ended (%s). Run 'attestation auth login'.\n", ecode);
	}
	json_decref(resp);
	cli_disco_free(&d);
	return ex;
}

char *cli_auth_header(struct cli *c, bool force_refresh, int *ex)
{
	const char *tok = getenv("ATTESTATION_TOKEN"), *bg = getenv("ATTESTATION_BREAK_GLASS_TOKEN");
	char *path, *hdr = NULL;
	json_t *doc;
	int fd;

	*ex = 0;
	if (tok && *tok)
		return att_asprintf("Authorization: Bearer %s", tok);
	if (bg && *bg)
		return att_asprintf("X-Break-Glass: %s", bg);
	path = cli_cache_path(c, ".json");
	if (!path) {
		*ex = EX_ERR;
		return NULL;
	}
	fd = cli_cache_lock(c);
	doc = cli_cache_read(path, false);
	if (!doc) {
		fprintf(stderr, "Not logged in to %s. Run 'attestation auth login' (or set ATTESTATION_TOKEN for scripts).\n",
			c->issuer);
		*ex = EX_AUTH;
		goto out;
	}
	if (force_refresh || json_integer_value(json_object_get(doc, "expires_at")) - 60 <= (int64_t)time(NULL)) {
		int r = refresh(c, &doc);

		if (r == EX_AUTH) {
			if (!jstr(doc, "refresh_token"))
				fprintf(stderr, "Your access token has expired and there is no refresh token. Run 'attestation auth login'.\n");
			unlink(path);	/* the login is over: do not offer it again */
			*ex = EX_AUTH;
			goto out;
		}
		if (r && (force_refresh || json_integer_value(json_object_get(doc, "expires_at")) <= (int64_t)time(NULL))) {
			*ex = r;
			goto out;
		}
		/* provider unreachable but the token is still valid: use it */
	}
	if (doc && jstr(doc, "access_token"))
		hdr = att_asprintf("Authorization: Bearer %s", jstr(doc, "access_token"));
	else
		*ex = EX_AUTH;
out:
	cli_cache_unlock(fd);
	json_decref(doc);
	free(path);
	return hdr;
}
