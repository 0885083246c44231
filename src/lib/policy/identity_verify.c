/* identity_verify.c - checking an agent identity token this service
 * issued (identity.c) when a registering machine presents it (the
 * auto-approval rules' attribute matchers, docs/auto-approval.md).
 *
 * The token is judged by the OIDC module's validation (att_jwt_verify:
 * shape, algorithm allowlist — never "none" or HMAC — signature, iss,
 * aud, exp, nbf, iat) against the JWK set of the enrollment CA's current
 * key, with exactly the one algorithm identity.c signs with (ES384 for
 * an EC CA, RS256 for an RSA CA).  On top of that the claims this
 * service always puts in must be there and well formed: jti (the session
 * id, a UUID), sub (the SPIFFE ID), cluster, policy and attrs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "machine/machine.h"
#include "oidc/jwt.h"
#include "policy/identity_verify.h"
#include "policy/policy-internal.h"

#define LEEWAY_SECONDS 30

#define FAILR(...) (snprintf(reason, rlen, __VA_ARGS__), ATT_E_AUTH)

static bool uuid_shaped(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !att_is_hex(s + i, 1))
			return false;
	}
	return true;
}

static int claims_shape(const json_t *c, char *reason, size_t rlen)
{
	const char *sub = json_string_value(json_object_get(c, "sub"));

	if (!uuid_shaped(json_string_value(json_object_get(c, "jti"))))
		return FAILR("malformed jti");
	if (!sub || strncmp(sub, "spiffe://", 9) != 0 || strlen(sub) > 512)
		return FAILR("malformed sub");
	if (!json_is_string(json_object_get(c, "cluster")) || !json_is_string(json_object_get(c, "policy")))
		return FAILR("missing cluster or policy");
	if (!json_is_object(json_object_get(c, "attrs")))
		return FAILR("missing attrs");
	return 0;
}

int att_agent_identity_verify(const struct att_svc *svc, const char *tok, json_t **ret_claims, char *reason,
			      size_t rlen)
{
	static const char *const aud[] = { "attestation-agent" };
	json_t *jwks = NULL, *claims = NULL;
	struct att_jwks *ks = NULL;
	const char *alg;
	char *text = NULL, err[256];
	int r;

	*ret_claims = NULL;
	if (att_agent_jwks(svc, &jwks, err, sizeof(err)) < 0)
		return FAILR("the enrollment CA is not available to verify agent identities");
	alg = json_string_value(json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "alg"));
	text = json_dumps(jwks, JSON_COMPACT);
	r = text && alg ? att_jwks_parse(text, strlen(text), &ks, err, sizeof(err)) : ATT_E_NOMEM;
	if (r == 0) {
		const char *algs[] = { alg };
		struct att_jwt_rules rules = {
			.issuer = svc->cfg->service_url,
			.audiences = aud,
			.naudiences = 1,
			.algs = algs,
			.nalgs = 1,
			.leeway = LEEWAY_SECONDS,
		};

		r = att_jwt_verify(ks, tok, &rules, att_now().sec, &claims, reason, rlen);
		if (r == ATT_E_NOTFOUND)	/* our key set has one key: nothing to refresh */
			r = ATT_E_AUTH;
	} else {
		r = FAILR("cannot load the identity signing key");
	}
	if (r == 0 && (r = claims_shape(claims, reason, rlen)) == 0) {
		*ret_claims = claims;
		claims = NULL;
	}
	json_decref(claims);
	json_decref(jwks);
	att_jwks_free(ks);
	free(text);
	return r;
}

bool att_agent_attestor_known(const char *type)
{
	return type && att_attestor_find(type) != NULL;
}
