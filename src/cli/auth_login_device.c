/* auth_login_device.c - `attestation auth login --method device`: the OAuth
 * device authorization grant (RFC 8628).  Prints the user code and the
 * verification URI, then polls the token endpoint at the provider's
 * interval (slower after slow_down) until the login is approved, denied or
 * the code expires. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

int cli_login_device(struct cli *c, const struct cli_disco *d, int timeout_s)
{
	char *form, ecode[512];
	json_t *da = NULL, *resp = NULL;
	const char *dc, *uc, *vu, *vuc, *ovr = getenv("ATTESTATION_DEVICE_INTERVAL");
	int64_t interval, deadline;
	int ex;

	if (!d->device) {
		fprintf(stderr, "Error: the provider does not support the device authorization grant\n");
		return EX_ERR;
	}
	form = cli_form("client_id", c->client_id, "scope", c->scope, "resource", c->resource, (char *)NULL);
	ex = form ? cli_oidc_form_post(c, d->device, form, &da, ecode, sizeof(ecode), NULL) : EX_ERR;
	free(form);
	if (ex) {
		fprintf(stderr, "Error: device authorization refused: %s\n", ecode[0] ? ecode : "no response");
		return ex;
	}
	dc = jstr(da, "device_code");
	uc = jstr(da, "user_code");
	vu = jstr(da, "verification_uri") ? jstr(da, "verification_uri") : jstr(da, "verification_url");
	vuc = jstr(da, "verification_uri_complete");
	if (!dc || !uc || !vu) {
		fprintf(stderr, "Error: incomplete device authorization response\n");
		json_decref(da);
		return EX_ERR;
	}
	interval = json_is_integer(json_object_get(da, "interval")) ? json_integer_value(json_object_get(da, "interval")) : 5;
	if (interval < 1)
		interval = 5;
	/* testing knob: poll faster than asked (the provider answers slow_down) */
	if (ovr && *ovr) {
		long v;

		if (cli_parse_int(ovr, 0, 600, &v))
			interval = v;
	}
	deadline = (int64_t)time(NULL) +
		   (json_is_integer(json_object_get(da, "expires_in")) ? json_integer_value(json_object_get(da, "expires_in")) : 600);
	if (deadline > (int64_t)time(NULL) + timeout_s && timeout_s > 0)
		deadline = (int64_t)time(NULL) + timeout_s;
	fprintf(stderr, "To log in, open %s on any device and enter the code:\n\n  %s\n\n", vu, uc);
	if (vuc)
		fprintf(stderr, "(or open %s)\n", vuc);
	fprintf(stderr, "Waiting for approval...\n");
	form = cli_form("grant_type", "urn:ietf:params:oauth:grant-type:device_code", "device_code", dc, "client_id",
			c->client_id, (char *)NULL);
	ex = EX_AUTH;
	while (form) {
		if ((int64_t)time(NULL) + interval > deadline) {
			fprintf(stderr, "Error: the device code expired before the login was approved\n");
			ex = EX_AUTH;
			break;
		}
		if (interval > 0)
			sleep((unsigned)interval);
		ex = cli_oidc_form_post(c, d->token, form, &resp, ecode, sizeof(ecode), NULL);
		if (ex == 0)
			break;
		if (ex == EX_UNAVAILABLE)
			continue;	/* 5xx / network: retry at the same pace */
		if (cli_oauth_error_is(ecode, "authorization_pending"))
			continue;
		if (cli_oauth_error_is(ecode, "slow_down")) {
			interval += 5;	/* RFC 8628 §3.5: for this and every later request */
			fprintf(stderr, "The provider asked to slow down; polling every %lld s\n", (long long)interval);
			continue;
		}
		if (cli_oauth_error_is(ecode, "access_denied"))
			fprintf(stderr, "Error: the login was denied\n");
		else if (cli_oauth_error_is(ecode, "expired_token"))
			fprintf(stderr, "Error: the device code expired before the login was approved\n");
		else
			fprintf(stderr, "Error: device login failed: %s\n", ecode);
		ex = EX_AUTH;
		break;
	}
	free(form);
	if (ex == 0)
		ex = cli_cache_store_tokens(c, d, resp, NULL, "device", NULL);
	json_decref(resp);
	json_decref(da);
	return ex;
}
