/* jwt.h - JWS compact token validation against a JWK set (RFC 7515/7517/
 * 7519/8725/9068), the parts of OIDC bearer authentication that need no
 * network: key import, signature, algorithm allowlist, registered claims,
 * role lookup by JSON pointer and the operator identity.
 *
 * Signatures are checked by cjose; everything around them (shape, size,
 * algorithm/key-type pairing, duplicate members, times, audiences) is
 * checked here, before and after, so a token is judged on bytes we parsed
 * ourselves.  Used by attestd (access tokens) and the CLI (ID tokens). */
#ifndef ATT_OIDC_JWT_H
#define ATT_OIDC_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define ATT_JWT_MAX_LEN 16384

/* An immutable set of signing keys, imported from a JWKS document. */
struct att_jwks;

/* Keys that cannot be used for signature verification (enc keys, oct keys,
 * unsupported curves) are skipped; a document without one usable key fails. */
int att_jwks_parse(const char *json, size_t len, struct att_jwks **ret, char *reterr, size_t errlen);
void att_jwks_free(struct att_jwks *ks);
size_t att_jwks_count(const struct att_jwks *ks);

struct att_jwt_rules {
	const char *issuer;			/* exact match; required */
	const char *const *audiences;		/* any one must be in aud */
	size_t naudiences;			/* 0: aud not checked (ID-token callers pass client id) */
	const char *const *algs;		/* allowlist; NULL: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 */
	size_t nalgs;
	const char *const *clients;		/* allowlist for azp/client_id; 0: any */
	size_t nclients;
	int64_t leeway;				/* seconds of clock skew for exp/nbf/iat */
	bool access_token;			/* reject ID/refresh tokens by their typ markers */
	const char *nonce;			/* ID token: required nonce */
};

/* Verify tok.  Returns 0 with *ret_claims (new reference) on success;
 * ATT_E_AUTH with a short reason for a token that is invalid;
 * ATT_E_NOTFOUND when no key of ks matches the token's kid (or, without
 * a kid, none verified it) — the caller may refresh its JWKS and retry. */
int att_jwt_verify(const struct att_jwks *ks, const char *tok, const struct att_jwt_rules *rules,
		   int64_t now, json_t **ret_claims, char *reason, size_t rlen);

/* Decode a compact JWT's payload without verifying it (CLI display of its
 * own cached tokens only).  NULL when it is not a JWT. */
json_t *att_jwt_peek(const char *tok);

/* True when role appears at one of the RFC 6901 pointers in claims; the
 * value may be an array of strings or a string of roles separated by
 * commas or blanks (glewlwyd joins several roles with commas). */
bool att_jwt_has_role(const json_t *claims, const char *const *pointers, size_t n, const char *role);
/* Collect every role found at the pointers into a new JSON array. */
json_t *att_jwt_roles(const json_t *claims, const char *const *pointers, size_t n);
struct att_buf;
/* Append one reference token escaped per RFC 6901 ('~' -> ~0, '/' -> ~1). */
int att_json_pointer_append(struct att_buf *b, const char *token);
/* RFC 6901 lookup; NULL when absent or malformed. */
const json_t *att_json_pointer(const json_t *doc, const char *ptr);

/* Operator identity for audit: preferred_username, else sub.  Printable
 * ASCII/UTF-8 without control characters, at most 200 bytes. */
int att_jwt_identity(const json_t *claims, char *out, size_t outlen);

#endif
