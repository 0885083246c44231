/* JWT validation: signatures by locally generated RSA/EC keys, the
 * algorithm allowlist (none, HS* key confusion), registered claims, token
 * types, kid handling, role pointers and identities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "oidc/jwt.h"
#include "oidc/oidc.h"
#include "../helpers/jwtsign.h"

#define ISS "https://idp.test/realms/itl"
#define NOW 1800000000

static EVP_PKEY *rsa, *rsa_foreign, *ec256, *ec384, *rsa1024;
static struct att_jwks *ks;
static char *rsa_jwk;

static const char *const auds[] = { "attestation-service" };
static const struct att_jwt_rules rules = {
	.issuer = ISS, .audiences = auds, .naudiences = 1, .leeway = 60, .access_token = true,
};

static char *mint(EVP_PKEY *k, const char *alg, const char *kid, const char *extra_claims)
{
	char hdr[256], pl[2048];

	if (kid)
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	else
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	snprintf(pl, sizeof(pl),
		 "{\"iss\":\"" ISS "\",\"aud\":[\"account\",\"attestation-service\"],\"sub\":\"u-1\","
		 "\"preferred_username\":\"alice\",\"exp\":%d,\"iat\":%d,\"typ\":\"Bearer\","
		 "\"realm_access\":{\"roles\":[\"attestation-operator\"]}%s%s}",
		 NOW + 300, NOW - 10, extra_claims ? "," : "", extra_claims ? extra_claims : "");
	return jwt_sign(k, alg, hdr, pl, NULL, 0);
}

static int verify(const char *tok, const struct att_jwt_rules *r, char *reason, size_t rlen)
{
	json_t *claims = NULL;
	int rc = att_jwt_verify(ks, tok, r, NOW, &claims, reason, rlen);

	if (rc == 0)
		assert_non_null(claims);
	else
		assert_null(claims);
	json_decref(claims);
	return rc;
}

static int expect(const char *tok, int want, const char *reason_part)
{
	char reason[256] = "";
	int rc = verify(tok, &rules, reason, sizeof(reason));

	if (rc != want || (reason_part && !strstr(reason, reason_part)))
		fail_msg("want %d (%s), got %d (%s) for %.80s", want, reason_part ? reason_part : "", rc, reason, tok);
	return rc;
}

static EVP_PKEY *gen(const char *type, const char *param)
{
	return strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(param))
					: EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
}

static int setup(void **state)
{
	char *j256, *j384, *jf, doc[16384];
	char err[256];

	(void)state;
	rsa = gen("RSA", "2048");
	rsa_foreign = gen("RSA", "2048");
	ec256 = gen("EC", "P-256");
	ec384 = gen("EC", "P-384");
	rsa1024 = gen("RSA", "1024");
	rsa_jwk = jwk_public_json(rsa, "rsa-1");
	j256 = jwk_public_json(ec256, "ec-256");
	j384 = jwk_public_json(ec384, "ec-384");
	jf = jwk_public_json(rsa1024, "small");
	snprintf(doc, sizeof(doc),
		 "{\"keys\":[%s,%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\"},"
		 "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
		 rsa_jwk, j256, j384, jf);
	free(j256);
	free(j384);
	free(jf);
	if (att_jwks_parse(doc, strlen(doc), &ks, err, sizeof(err)) != 0)
		fail_msg("jwks: %s", err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	att_jwks_free(ks);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_foreign);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(rsa1024);
	free(rsa_jwk);
	return 0;
}

static void test_jwks_skips_unusable_keys(void **state)
{
	struct att_jwks *k = NULL;
	char err[256];
	const char *bad[] = {
		"", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[]}",
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}]}",
		"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
		"{\"keys\":[1,\"x\",null]}",
	};

	(void)state;
	/* rsa, ec-256, ec-384 kept; the 1024-bit RSA, the oct and the enc key dropped */
	assert_int_equal(att_jwks_count(ks), 3);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(att_jwks_parse(bad[i], strlen(bad[i]), &k, err, sizeof(err)), 0);
}

static void test_valid_tokens_each_algorithm(void **state)
{
	char *t;

	(void)state;
	t = mint(rsa, "RS256", "rsa-1", NULL);
	expect(t, 0, NULL);
	free(t);
	t = mint(rsa, "PS256", "rsa-1", NULL);
	expect(t, 0, NULL);
	free(t);
	t = mint(rsa, "RS512", "rsa-1", NULL);
	expect(t, 0, NULL);
	free(t);
	t = mint(ec256, "ES256", "ec-256", NULL);
	expect(t, 0, NULL);
	free(t);
	t = mint(ec384, "ES384", "ec-384", NULL);
	expect(t, 0, NULL);
	free(t);
	/* no kid: every key of the right family is tried */
	t = mint(ec384, "ES384", NULL, NULL);
	expect(t, 0, NULL);
	free(t);
}

static void test_algorithm_attacks(void **state)
{
	char *t, pl[256];
	const char *pem_like = rsa_jwk;

	(void)state;
	snprintf(pl, sizeof(pl), "{\"iss\":\"" ISS "\",\"aud\":\"attestation-service\",\"sub\":\"x\",\"exp\":%d}",
		 NOW + 100);
	/* alg none, with and without a signature part */
	t = jwt_sign(NULL, "none", "{\"alg\":\"none\"}", pl, NULL, 0);
	expect(t, ATT_E_AUTH, "unsigned");
	{
		char *t2 = malloc(strlen(t) + 8);

		sprintf(t2, "%sAAAA", t);
		expect(t2, ATT_E_AUTH, "algorithm none not allowed");
		free(t2);
	}
	free(t);
	t = jwt_sign(NULL, "none", "{\"alg\":\"NoNe\",\"kid\":\"rsa-1\"}", pl, NULL, 0);
	expect(t, ATT_E_AUTH, NULL);
	free(t);
	/* HS256 keyed with the RSA public key material: key confusion */
	t = jwt_sign(NULL, "HS256", "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", pl, pem_like, strlen(pem_like));
	expect(t, ATT_E_AUTH, "HS256 not allowed");
	free(t);
	t = jwt_sign(NULL, "HS256", "{\"alg\":\"HS256\",\"kid\":\"hmac\"}", pl, "secret", 6);
	expect(t, ATT_E_AUTH, "HS256 not allowed");
	free(t);
	/* ES256 claimed with the RSA key's kid: family mismatch is a bad signature */
	t = mint(ec256, "ES256", "rsa-1", NULL);
	expect(t, ATT_E_AUTH, "bad signature");
	free(t);
	/* ES256 signed with the P-384 key's kid */
	t = mint(ec256, "ES256", "ec-384", NULL);
	expect(t, ATT_E_AUTH, "bad signature");
	free(t);
	/* allowlist narrower than the key set */
	{
		static const char *const only_rs[] = { "RS256" };
		struct att_jwt_rules r = rules;
		char reason[128];

		r.algs = only_rs;
		r.nalgs = 1;
		t = mint(ec256, "ES256", "ec-256", NULL);
		assert_int_equal(verify(t, &r, reason, sizeof(reason)), ATT_E_AUTH);
		assert_non_null(strstr(reason, "ES256 not allowed"));
		free(t);
		t = mint(rsa, "PS256", "rsa-1", NULL);
		assert_int_equal(verify(t, &r, reason, sizeof(reason)), ATT_E_AUTH);
		free(t);
	}
	/* crit header we do not understand */
	t = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"exp\"],\"exp\":1}", pl, NULL, 0);
	expect(t, ATT_E_AUTH, "critical");
	free(t);
}

static void test_foreign_key_and_unknown_kid(void **state)
{
	char *t;

	(void)state;
	/* same kid, another key: a forgery */
	t = mint(rsa_foreign, "RS256", "rsa-1", NULL);
	expect(t, ATT_E_AUTH, "bad signature");
	free(t);
	/* unknown kid: the caller may refresh its JWKS */
	t = mint(rsa_foreign, "RS256", "rotated-2", NULL);
	expect(t, ATT_E_NOTFOUND, "unknown signing key");
	free(t);
	/* no kid and no key verifies: also a refresh candidate */
	t = mint(rsa_foreign, "RS256", NULL, NULL);
	expect(t, ATT_E_NOTFOUND, NULL);
	free(t);
	/* the 1024-bit key was not imported */
	t = mint(rsa1024, "RS256", "small", NULL);
	expect(t, ATT_E_NOTFOUND, NULL);
	free(t);
}

static void test_tampering_and_shape(void **state)
{
	char *t = mint(rsa, "RS256", "rsa-1", NULL), *c, *big;
	char *dot;
	size_t n;

	(void)state;
	/* every truncation fails cleanly */
	n = strlen(t);
	c = strdup(t);
	for (size_t i = 0; i < n; i++) {
		char reason[128];

		c[i] = 0;
		assert_int_not_equal(verify(c, &rules, reason, sizeof(reason)), 0);
		c[i] = t[i];
	}
	/* one flipped character in the payload */
	dot = strchr(c, '.');
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	expect(c, ATT_E_AUTH, NULL);
	free(c);
	/* extra part, padding, bad characters */
	c = malloc(n + 8);
	sprintf(c, "%s.AAAA", t);
	expect(c, ATT_E_AUTH, "not a JWS");
	sprintf(c, "%s=", t);
	expect(c, ATT_E_AUTH, NULL);
	sprintf(c, "%s", t);
	c[n - 3] = '+';
	expect(c, ATT_E_AUTH, NULL);
	free(c);
	big = malloc(ATT_JWT_MAX_LEN + 100);
	memset(big, 'A', ATT_JWT_MAX_LEN + 99);
	big[ATT_JWT_MAX_LEN + 99] = 0;
	big[10] = '.';
	big[20] = '.';
	expect(big, ATT_E_AUTH, "too large");
	free(big);
	expect("", ATT_E_AUTH, "empty");
	expect("a.b", ATT_E_AUTH, NULL);
	expect("..", ATT_E_AUTH, NULL);
	free(t);
	/* duplicate claims are refused, not resolved */
	t = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
		     "{\"iss\":\"" ISS "\",\"aud\":\"attestation-service\",\"aud\":\"x\",\"sub\":\"a\",\"exp\":1900000000}",
		     NULL, 0);
	expect(t, ATT_E_AUTH, "malformed token payload");
	free(t);
	/* a payload that is JSON but not an object */
	t = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", "[1]", NULL, 0);
	expect(t, ATT_E_AUTH, "malformed token payload");
	free(t);
}

static void claim_case(const char *claims_json, int want, const char *reason)
{
	char pl[1024];
	char *t;

	snprintf(pl, sizeof(pl), "%s", claims_json);
	t = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"at+jwt\"}", pl, NULL, 0);
	expect(t, want, reason);
	free(t);
}

static void test_registered_claims(void **state)
{
	char b[512];

	(void)state;
#define C(fmt, ...) (snprintf(b, sizeof(b), fmt, __VA_ARGS__), b)
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW + 1), 0, NULL);
	claim_case(C("{\"iss\":\"%s/\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW + 1), ATT_E_AUTH, "issuer");
	claim_case(C("{\"iss\":\"https://evil.test/realms/itl\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", NOW + 1), ATT_E_AUTH, "issuer");
	claim_case(C("{\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", NOW + 1), ATT_E_AUTH, "issuer");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"account\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW + 1), ATT_E_AUTH, "audience");
	claim_case(C("{\"iss\":\"%s\",\"aud\":[\"account\",\"other\"],\"sub\":\"a\",\"exp\":%d}", ISS, NOW + 1), ATT_E_AUTH, "audience");
	claim_case(C("{\"iss\":\"%s\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW + 1), ATT_E_AUTH, "audience");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\"}", ISS), ATT_E_AUTH, "exp");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":\"%d\"}", ISS, NOW + 100), ATT_E_AUTH, "exp");
	/* exp within the 60 s leeway passes, beyond it fails */
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW - 59), 0, NULL);
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d}", ISS, NOW - 61), ATT_E_AUTH, "expired");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"nbf\":%d}", ISS, NOW + 900, NOW + 30), 0, NULL);
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"nbf\":%d}", ISS, NOW + 900, NOW + 120), ATT_E_AUTH, "not yet valid");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"iat\":%d}", ISS, NOW + 900, NOW + 120), ATT_E_AUTH, "future");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"iat\":-5}", ISS, NOW + 900), ATT_E_AUTH, "future");
	/* token types: Keycloak ID/refresh tokens, glewlwyd id tokens, anything with a nonce */
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"typ\":\"ID\"}", ISS, NOW + 9), ATT_E_AUTH, "not an access token");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"typ\":\"Refresh\"}", ISS, NOW + 9), ATT_E_AUTH, "not an access token");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"type\":\"id_token\"}", ISS, NOW + 9), ATT_E_AUTH, "not an access token");
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"type\":\"access_token\"}", ISS, NOW + 9), 0, NULL);
	claim_case(C("{\"iss\":\"%s\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":%d,\"nonce\":\"n\"}", ISS, NOW + 9), ATT_E_AUTH, "not an access token");
#undef C
	{
		char *t = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"typ\":\"JOSE\"}",
				   "{\"iss\":\"" ISS "\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":1900000000}",
				   NULL, 0);

		expect(t, ATT_E_AUTH, "unexpected token type");
		free(t);
	}
}

static void test_client_allowlist_and_nonce(void **state)
{
	static const char *const clients[] = { "attestation-cli" };
	struct att_jwt_rules r = rules;
	char reason[128], *t;

	(void)state;
	r.clients = clients;
	r.nclients = 1;
	t = mint(rsa, "RS256", "rsa-1", "\"azp\":\"attestation-cli\"");
	assert_int_equal(verify(t, &r, reason, sizeof(reason)), 0);
	free(t);
	t = mint(rsa, "RS256", "rsa-1", "\"azp\":\"other\",\"client_id\":\"attestation-cli\"");
	assert_int_equal(verify(t, &r, reason, sizeof(reason)), ATT_E_AUTH);
	free(t);
	t = mint(rsa, "RS256", "rsa-1", "\"client_id\":\"attestation-cli\"");
	assert_int_equal(verify(t, &r, reason, sizeof(reason)), 0);
	free(t);
	t = mint(rsa, "RS256", "rsa-1", NULL);
	assert_int_equal(verify(t, &r, reason, sizeof(reason)), ATT_E_AUTH);
	free(t);
	/* ID-token mode: nonce required and compared */
	r = rules;
	r.access_token = false;
	r.nonce = "n-123";
	{
		char *id = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
				    "{\"iss\":\"" ISS "\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":1900000000,"
				    "\"typ\":\"ID\",\"nonce\":\"n-123\"}", NULL, 0);
		char *bad = jwt_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}",
				     "{\"iss\":\"" ISS "\",\"aud\":\"attestation-service\",\"sub\":\"a\",\"exp\":1900000000,"
				     "\"nonce\":\"n-124\"}", NULL, 0);

		assert_int_equal(verify(id, &r, reason, sizeof(reason)), 0);
		assert_int_equal(verify(bad, &r, reason, sizeof(reason)), ATT_E_AUTH);
		assert_non_null(strstr(reason, "nonce"));
		/* and the ID token is refused as an access token */
		expect(id, ATT_E_AUTH, "not an access token");
		free(id);
		free(bad);
	}
}

static void test_roles_and_identity(void **state)
{
	json_t *c = json_loads("{\"realm_access\":{\"roles\":[\"offline_access\",\"attestation-operator-x\"]},"
			       "\"resource_access\":{\"attestation/service\":{\"roles\":[\"attestation-operator\"]},"
			       "\"a~b\":{\"roles\":\"x, attestation-auditor\"}},"
			       "\"roles\":\"attestation-viewer,attestation-operator\",\"list\":[\"r0\",\"r1\"],"
			       "\"preferred_username\":\"bob\",\"sub\":\"s-1\"}", 0, NULL);
	const char *realm[] = { "/realm_access/roles" };
	const char *client[] = { "/resource_access/attestation~1service/roles" };
	const char *tilde[] = { "/resource_access/a~0b/roles" };
	const char *flat[] = { "/roles" };
	const char *bad[] = { "/resource_access/a~2b/roles", "roles", "/list/9", "/list/x" };
	json_t *roles;
	char id[64];

	(void)state;
	assert_non_null(c);
	assert_false(att_jwt_has_role(c, realm, 1, "attestation-operator"));	/* no substring match */
	assert_true(att_jwt_has_role(c, client, 1, "attestation-operator"));
	assert_true(att_jwt_has_role(c, tilde, 1, "attestation-auditor"));
	assert_true(att_jwt_has_role(c, flat, 1, "attestation-operator"));
	assert_false(att_jwt_has_role(c, flat, 1, "attestation"));
	assert_false(att_jwt_has_role(c, flat, 1, ""));
	assert_false(att_jwt_has_role(c, bad, 4, "x"));
	assert_string_equal(json_string_value(att_json_pointer(c, "/list/1")), "r1");
	assert_ptr_equal(att_json_pointer(c, ""), c);
	roles = att_jwt_roles(c, flat, 1);
	assert_int_equal(json_array_size(roles), 2);
	json_decref(roles);
	assert_int_equal(att_jwt_identity(c, id, sizeof(id)), 0);
	assert_string_equal(id, "bob");
	json_object_del(c, "preferred_username");
	assert_int_equal(att_jwt_identity(c, id, sizeof(id)), 0);
	assert_string_equal(id, "s-1");
	json_object_set_new(c, "preferred_username", json_string("evil\nname"));
	assert_int_equal(att_jwt_identity(c, id, sizeof(id)), ATT_E_AUTH);
	json_object_set_new(c, "preferred_username", json_string(""));
	json_object_del(c, "sub");
	assert_int_equal(att_jwt_identity(c, id, sizeof(id)), ATT_E_AUTH);
	json_decref(c);
}

/* Plain http is allowed only to a loopback host, judged on the parsed
 * URL: userinfo, look-alike names and other schemes do not pass. */
static void test_loopback_url_parsed(void **state)
{
	static const char *const yes[] = { "http://127.0.0.1:8080/realms/x", "http://127.9.9.9/",
					   "http://localhost/", "http://LOCALHOST:80/x", "http://[::1]:9/" };
	static const char *const no[] = { "http://127.0.0.1@evil.test/", "http://127.0.0.1:80@evil.test/",
					  "http://127.evil.test/", "http://localhost.evil.test/",
					  "http://localhost@evil.test/", "http://[::1]@evil.test/",
					  "https://evil.test/", "ftp://127.0.0.1/", "http://128.0.0.1/",
					  "http://[::2]/", "http://", "127.0.0.1", "" };
	struct att_oidc_conf c = { .audiences = auds, .naudiences = 1, .http_timeout = 1 };
	struct att_oidc *o = NULL;
	char err[512] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(att_oidc_loopback_url(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(att_oidc_loopback_url(no[i]));
	/* the fetch itself refuses the userinfo trick before any connection */
	c.issuer = "http://127.0.0.1@attacker.invalid/realms/x";
	assert_int_equal(att_oidc_new(&c, &o, err, sizeof(err)), 0);
	assert_int_not_equal(att_oidc_prefetch(o, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "refusing non-https"));
	att_oidc_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwks_skips_unusable_keys),
		cmocka_unit_test(test_valid_tokens_each_algorithm),
		cmocka_unit_test(test_algorithm_attacks),
		cmocka_unit_test(test_foreign_key_and_unknown_kid),
		cmocka_unit_test(test_tampering_and_shape),
		cmocka_unit_test(test_registered_claims),
		cmocka_unit_test(test_client_allowlist_and_nonce),
		cmocka_unit_test(test_roles_and_identity),
		cmocka_unit_test(test_loopback_url_parsed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
