/* jwtsign.h - test-only JWS signing (RS/PS/ES/HS, "none") and public JWK
 * export with OpenSSL, so tests can mint tokens the way a provider (or an
 * attacker) would. */
#ifndef TESTS_JWTSIGN_H
#define TESTS_JWTSIGN_H

#include <stddef.h>

#include <openssl/evp.h>

/* Sign header.payload (both JSON texts) with alg; key is a private key
 * (RS*, PS*, ES*) or NULL for "none"; for HS* hs_secret/hs_len is used.
 * Returns a malloc'd compact token. */
char *jwt_sign(EVP_PKEY *key, const char *alg, const char *header_json, const char *payload_json,
	       const void *hs_secret, size_t hs_len);
/* {"kty":...,"kid":kid,"use":"sig",...} for the public half of key. */
char *jwk_public_json(EVP_PKEY *key, const char *kid);
char *b64url(const void *in, size_t len);

#endif
