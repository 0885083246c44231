/* auth_revoke.c - token revocation (RFC 7009) for `attestation auth logout`:
 * the cached refresh token is revoked at the provider's revocation endpoint
 * (public clients that the provider refuses retry with the access token as
 * bearer); without an endpoint the tokens are only removed locally. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "auth.h"

void cli_auth_revoke(struct cli *c, const json_t *doc)
{
	const char *rt = jstr(doc, "refresh_token"), *ep = jstr(doc, "revocation_endpoint");
	const char *at = jstr(doc, "access_token");
	const char *iss = jstr(doc, "issuer") ? jstr(doc, "issuer") : "?";
	char *form, ecode[512];
	json_t *resp = NULL;
	int ex;

	if (!rt) {
		fprintf(stderr, "No refresh token cached for %s; removed locally.\n", iss);
		return;
	}
	if (!ep) {
		fprintf(stderr, "%s offers no token revocation: tokens removed locally only; the refresh token stays valid until it expires.\n",
			iss);
		return;
	}
	form = cli_form("token", rt, "token_type_hint", "refresh_token", "client_id",
			c->client_secret ? NULL : jstr(doc, "client_id"), (char *)NULL);
	ex = form ? cli_oidc_form_post(c, ep, form, &resp, ecode, sizeof(ecode), NULL) : EX_ERR;
	/* some providers (glewlwyd) authenticate public-client revocation with the access token */
	if (ex == EX_AUTH && !c->client_secret && at && json_integer_value(json_object_get(doc, "expires_at")) > (int64_t)time(NULL)) {
		json_decref(resp);
		resp = NULL;
		ex = cli_oidc_form_post(c, ep, form, &resp, ecode, sizeof(ecode), at);
	}
	free(form);
	json_decref(resp);
	if (ex == 0)
		fprintf(stderr, "Refresh token revoked at %s.\n", iss);
	else
		fprintf(stderr, "Warning: revocation at %s failed (%s): tokens removed locally only.\n", iss,
			ecode[0] ? ecode : "unreachable");
}
