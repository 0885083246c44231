/* auth_oidc.c - talking to the OIDC provider for `attestation auth`: discovery
 * (/.well-known/openid-configuration, issuer checked), form POSTs to the
 * token, device and revocation endpoints with OAuth error codes, and ID token
 * verification against the provider's JWKS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "base/util.h"
#include "oidc/jwt.h"

void cli_disco_free(struct cli_disco *d)
{
	free(d->authz);
	free(d->token);
	free(d->device);
	free(d->revoke);
	free(d->jwks);
	memset(d, 0, sizeof(*d));
}

int cli_oidc_discover(struct cli *c, struct cli_disco *d)
{
	char *url = att_asprintf("%s/.well-known/openid-configuration", c->issuer);
	struct cli_resp r;
	json_t *j;
	int ex;

	memset(d, 0, sizeof(*d));
	if (!url)
		return EX_ERR;
	ex = cli_http(c, "GET", url, NULL, NULL, NULL, 0, NULL, NULL, &r);
	if (ex) {
		fprintf(stderr, "Error: cannot reach the OIDC provider %s (set KEYCLOAK_URL/KEYCLOAK_REALM or ATTESTATION_OIDC_ISSUER)\n",
			c->issuer);
		free(url);
		return ex;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	if (r.status != 200 || !json_is_object(j)) {
		fprintf(stderr, "Error: %s answered HTTP %ld without a discovery document\n", url, r.status);
		ex = EX_UNAVAILABLE;
	} else if (!jstr(j, "issuer") || strcmp(jstr(j, "issuer"), c->issuer) != 0) {
		fprintf(stderr, "Error: the provider's issuer \"%s\" differs from the configured \"%s\"\n",
			jstr(j, "issuer") ? jstr(j, "issuer") : "(none)", c->issuer);
		ex = EX_ERR;
	} else {
		d->authz = jdup(j, "authorization_endpoint");
		d->token = jdup(j, "token_endpoint");
		d->device = jdup(j, "device_authorization_endpoint");
		d->revoke = jdup(j, "revocation_endpoint");
		d->jwks = jdup(j, "jwks_uri");
		if (!d->token) {
			fprintf(stderr, "Error: the provider's discovery document has no token_endpoint\n");
			ex = EX_ERR;
		}
	}
	json_decref(j);
	cli_resp_free(&r);
	free(url);
	if (ex)
		cli_disco_free(d);
	return ex;
}

int cli_oidc_form_post(struct cli *c, const char *url, const char *form, json_t **ret, char *err_code,
		       size_t elen, const char *bearer)
{
	struct cli_resp r;
	json_t *j;
	char authz[8192];
	const char *hdrs[2] = { NULL, NULL };
	int ex;

	*ret = NULL;
	if (err_code)
		err_code[0] = 0;
	if (bearer) {
		snprintf(authz, sizeof(authz), "Authorization: Bearer %s", bearer);
		hdrs[0] = authz;
	}
	ex = cli_http(c, "POST", url, hdrs, "application/x-www-form-urlencoded", form, strlen(form),
		      c->client_secret && !bearer ? c->client_id : NULL, c->client_secret, &r);
	if (bearer)
		att_wipe(authz, sizeof(authz));
	if (ex)
		return ex;
	j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
	if (r.status == 200) {
		*ret = j ? j : json_object();
		ex = 0;
	} else {
		if (err_code)
			snprintf(err_code, elen, "%s%s%s", jstr(j, "error") ? jstr(j, "error") : "http_error",
				 jstr(j, "error_description") ? ": " : "",
				 jstr(j, "error_description") ? jstr(j, "error_description") : "");
		if (err_code && !jstr(j, "error"))
			snprintf(err_code, elen, "HTTP %ld", r.status);
		ex = r.status >= 500 ? EX_UNAVAILABLE : EX_AUTH;
		json_decref(j);
	}
	if (r.body)
		att_wipe(r.body, r.len);
	cli_resp_free(&r);
	return ex;
}

bool cli_oauth_error_is(const char *code, const char *want)
{
	size_t n = strlen(want);

	return strncmp(code, want, n) == 0 && (code[n] == 0 || code[n] == ':');
}

int cli_oidc_check_id_token(struct cli *c, const struct cli_disco *d, const char *idt, const char *nonce)
{
	const char *auds[1] = { c->client_id };
	struct att_jwt_rules rules = {
		.issuer = c->issuer, .audiences = auds, .naudiences = 1, .leeway = 300, .nonce = nonce,
	};
	struct att_jwks *ks = NULL;
	struct cli_resp r;
	json_t *claims = NULL;
	char why[256] = "";
	int ex;

	if (!d->jwks) {
		fprintf(stderr, "Error: the provider publishes no jwks_uri; cannot verify the ID token\n");
		return EX_AUTH;
	}
	ex = cli_http(c, "GET", d->jwks, NULL, NULL, NULL, 0, NULL, NULL, &r);
	if (ex)
		return ex;
	if (r.status != 200 || att_jwks_parse(r.body, r.len, &ks, why, sizeof(why)) != 0) {
		fprintf(stderr, "Error: cannot load the provider's signing keys (%s)\n", why[0] ? why : "HTTP error");
		cli_resp_free(&r);
		return EX_AUTH;
	}
	cli_resp_free(&r);
	ex = att_jwt_verify(ks, idt, &rules, (int64_t)time(NULL), &claims, why, sizeof(why));
	att_jwks_free(ks);
	json_decref(claims);
	if (ex) {
		fprintf(stderr, "Error: the ID token from the provider is not valid: %s\n", why);
		return EX_AUTH;
	}
	return 0;
}
