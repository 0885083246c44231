/* JWT validation and JWKS import on arbitrary bytes: the input is tried as
 * a compact token against a fixed key set (public keys only; the seeds in
 * corpus/jwt were signed with their private halves, since discarded), as
 * a JWKS document, and as an RFC 6901 pointer into its own payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/jwt.h"

static const char jwks[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"use\":\"sig\",\"n\":\"ui5403cISvaUQlabIwdegsHUbCGp3GG_-W76yr6HXOpBYTxXmgyKJgd_cpAVBdE6e3IWqIciXH6LrJcgQDJ9pp0136mKJZ7PYyuvmGqf3FD2FM4M1o4SLoA4Fa5t-oAsjl3GwhcVE1Qcg2RclYLkUcDU3ckUA5omlQxGfaFbSu9P-8C0ITufOGQhZQUZ9AE32YzbV61PAWC6RmibAOfC6LZmEWMXcFdRpDJyEqvlCkqq4j_nGQT7gUqFm-7KGrQIerlPOjEI7LIpFKsNdPqOHsCa380cl02CRR7e9iO89WbXM7vuCNGCkcaCsKzIw_HHW5kW6K19BYp1ywgsH8Qm-Q\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"use\":\"sig\",\"crv\":\"P-256\",\"x\":\"r4-Wf0E-CVkEZgkGGr3RHPZ5iPcCZn_nI1bUD_5yWsQ\",\"y\":\"zmMb3BM0dr2463BvVp_tXGO6bi7lz-G0vJd5aToImFs\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct att_jwks *ks;
	static const char *const auds[] = { "svc" };
	const struct att_jwt_rules rules = {
		.issuer = "https://idp.fuzz/realms/x", .audiences = auds, .naudiences = 1, .leeway = 60,
		.access_token = true,
	};
	char *s = malloc(size + 1), reason[256];
	json_t *claims = NULL, *peek;
	struct att_jwks *other = NULL;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (!ks && att_jwks_parse(jwks, strlen(jwks), &ks, reason, sizeof(reason)) != 0)
		abort();
	if (att_jwt_verify(ks, s, &rules, 1800000000, &claims, reason, sizeof(reason)) == 0) {
		const char *ptrs[] = { "/realm_access/roles", "/roles" };
		char id[256];
		json_t *roles = att_jwt_roles(claims, ptrs, 2);

		(void)att_jwt_has_role(claims, ptrs, 2, "attestation-operator");
		(void)att_jwt_identity(claims, id, sizeof(id));
		json_decref(roles);
		json_decref(claims);
	}
	peek = att_jwt_peek(s);
	if (peek) {
		(void)att_json_pointer(peek, s);
		json_decref(peek);
	}
	if (att_jwks_parse(s, size, &other, reason, sizeof(reason)) == 0)
		att_jwks_free(other);
	free(s);
	return 0;
}
