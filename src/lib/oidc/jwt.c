#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "oidc/jwt.h"

#define MAX_KEYS 64

enum kfam { FAM_RSA, FAM_EC };

struct key {
	char *kid;		/* NULL: none */
	char *alg;		/* NULL: any of its family */
	enum kfam fam;
	char crv[8];		/* EC */
	cjose_jwk_t *jwk;
};

struct att_jwks {
	struct key k[MAX_KEYS];
	size_t n;
};

static const char *const default_algs[] = {
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
};

/* Strict base64url without padding (RFC 7515 §2). */
static int b64url_decode(const char *s, size_t n, uint8_t **ret, size_t *retlen)
{
	uint8_t *out;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (n % 4 == 1)
		return ATT_E_PARSE;
	out = malloc(n * 3 / 4 + 1);
	if (!out)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		int v;
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else {
			free(out);
			return ATT_E_PARSE;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* leftover bits must be zero: one encoding per byte string */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(out);
		return ATT_E_PARSE;
	}
	out[o] = 0;
	*ret = out;
	*retlen = o;
	return 0;
}

static json_t *b64url_json(const char *s, size_t n)
{
	uint8_t *raw;
	size_t len;
	json_t *o;

	if (b64url_decode(s, n, &raw, &len) != 0)
		return NULL;
	o = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- key sets ------------------------------------------------------------------ */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool usable_for_sig(const json_t *k)
{
	const json_t *use = json_object_get(k, "use");
	const json_t *ops = json_object_get(k, "key_ops");
	size_t i;
	json_t *v;

	if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
		return false;
	if (ops) {
		if (!json_is_array(ops))
			return false;
		json_array_foreach(ops, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), "verify") == 0)
				return true;
		return false;
	}
	return true;
}

static bool rsa_big_enough(const json_t *k)
{
	const char *n = jstr(k, "n");
	uint8_t *raw;
	size_t len, lead = 0;
	bool ok;

	if (!n || b64url_decode(n, strlen(n), &raw, &len) != 0)
		return false;
	while (lead < len && raw[lead] == 0)
		lead++;
	ok = len - lead >= 256;	/* RFC 7518 §3.3: 2048 bits or more */
	free(raw);
	return ok;
}

int att_jwks_parse(const char *json, size_t len, struct att_jwks **ret, char *reterr, size_t errlen)
{
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *keys = json_object_get(doc, "keys");
	struct att_jwks *ks;
	size_t i;
	json_t *k;

	if (!json_is_array(keys)) {
		snprintf(reterr, errlen, "JWKS is not a JSON object with a \"keys\" array");
		json_decref(doc);
		return ATT_E_PARSE;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		json_decref(doc);
		return ATT_E_NOMEM;
	}
	json_array_foreach(keys, i, k) {
		const char *kty = jstr(k, "kty"), *kid = jstr(k, "kid"), *alg = jstr(k, "alg");
		struct key *e;
		char *dump;
		cjose_err cerr;

		if (ks->n == MAX_KEYS || !json_is_object(k) || !kty || !usable_for_sig(k))
			continue;
		if (json_object_get(k, "kid") && !kid)
			continue;
		if (json_object_get(k, "alg") && !alg)
			continue;
		e = &ks->k[ks->n];
		if (strcmp(kty, "RSA") == 0) {
			if (!rsa_big_enough(k))
				continue;
			e->fam = FAM_RSA;
		} else if (strcmp(kty, "EC") == 0) {
			const char *crv = jstr(k, "crv");

			if (!crv || (strcmp(crv, "P-256") != 0 && strcmp(crv, "P-384") != 0 &&
				     strcmp(crv, "P-521") != 0))
				continue;
			e->fam = FAM_EC;
			snprintf(e->crv, sizeof(e->crv), "%s", crv);
		} else {
			continue;	/* oct (never with a public JWKS), OKP unsupported by cjose 0.6 */
		}
		dump = json_dumps(k, JSON_COMPACT);
		if (!dump)
			continue;
		e->jwk = cjose_jwk_import(dump, strlen(dump), &cerr);
		free(dump);
		if (!e->jwk)
			continue;
		e->kid = kid ? att_strdup(kid) : NULL;
		e->alg = alg ? att_strdup(alg) : NULL;
		if ((kid && !e->kid) || (alg && !e->alg)) {
			cjose_jwk_release(e->jwk);
			free(e->kid);
			free(e->alg);
			memset(e, 0, sizeof(*e));
			continue;
		}
		ks->n++;
	}
	json_decref(doc);
	if (ks->n == 0) {
		snprintf(reterr, errlen, "JWKS holds no usable signature key (RSA >= 2048 bits or EC P-256/384/521)");
		free(ks);
		return ATT_E_PARSE;
	}
	*ret = ks;
	return 0;
}

void att_jwks_free(struct att_jwks *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		cjose_jwk_release(ks->k[i].jwk);
		free(ks->k[i].kid);
		free(ks->k[i].alg);
	}
	free(ks);
}

size_t att_jwks_count(const struct att_jwks *ks)
{
	return ks ? ks->n : 0;
}

/* ---- verification -------------------------------------------------------------- */

static bool key_fits(const struct key *k, const char *alg)
{
	if (k->alg && strcmp(k->alg, alg) != 0)
		return false;
	if (alg[0] == 'R' || alg[0] == 'P')
		return k->fam == FAM_RSA;
	if (k->fam != FAM_EC)
		return false;
	if (strcmp(alg, "ES256") == 0)
		return strcmp(k->crv, "P-256") == 0;
	if (strcmp(alg, "ES384") == 0)
		return strcmp(k->crv, "P-384") == 0;
	return strcmp(k->crv, "P-521") == 0;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

static bool aud_ok(const json_t *aud, const struct att_jwt_rules *r)
{
	size_t i;
	json_t *v;

	if (r->naudiences == 0)
		return true;
	if (json_is_string(aud))
		return in_list(json_string_value(aud), r->audiences, r->naudiences);
	if (!json_is_array(aud))
		return false;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) && in_list(json_string_value(v), r->audiences, r->naudiences))
			return true;
	return false;
}

/* A NumericDate: a JSON number (integer or not) within a sane range. */
static int numeric_date(const json_t *v, int64_t *ret)
{
	double d;

	if (!json_is_number(v))
		return -1;
	d = json_number_value(v);
	if (!(d >= 0 && d < 253402300800.0))	/* year 10000 */
		return -1;
	*ret = (int64_t)d;
	return 0;
}

#define FAIL(...) do { snprintf(reason, rlen, __VA_ARGS__); r = ATT_E_AUTH; goto out; } while (0)

static int check_claims(const json_t *c, const struct att_jwt_rules *rules, int64_t now, char *reason,
			size_t rlen)
{
	const char *iss = jstr(c, "iss"), *typ = jstr(c, "typ"), *type = jstr(c, "type");
	const json_t *nbfv = json_object_get(c, "nbf"), *iatv = json_object_get(c, "iat");
	int64_t exp, nbf, iat;
	int r = 0;

	if (!iss || strcmp(iss, rules->issuer) != 0)
		FAIL("issuer mismatch");
	if (!aud_ok(json_object_get(c, "aud"), rules))
		FAIL("audience mismatch");
	if (numeric_date(json_object_get(c, "exp"), &exp) != 0)
		FAIL("missing or malformed exp");
	if (now > exp + rules->leeway)
		FAIL("token expired");
	if (nbfv && (numeric_date(nbfv, &nbf) != 0 || nbf > now + rules->leeway))
		FAIL("token not yet valid");
	if (iatv && (numeric_date(iatv, &iat) != 0 || iat > now + rules->leeway))
		FAIL("token issued in the future");
	if (json_object_get(c, "sub") && !jstr(c, "sub"))
		FAIL("malformed sub");
	if (rules->access_token) {
		/* Keycloak marks ID/refresh tokens with typ ID/Refresh/Offline, glewlwyd
		 * with type; an ID token must never pass as an API bearer token. */
		if (json_object_get(c, "typ") && (!typ || strcasecmp(typ, "Bearer") != 0))
			FAIL("not an access token");
		if (json_object_get(c, "type") && (!type || strcmp(type, "access_token") != 0))
			FAIL("not an access token");
		if (json_object_get(c, "nonce"))
			FAIL("not an access token");
	}
	if (rules->nclients) {
		const char *azp = jstr(c, "azp");
		const char *cid = azp ? azp : jstr(c, "client_id");

		if (!cid || !in_list(cid, rules->clients, rules->nclients))
			FAIL("client not allowed");
	}
	if (rules->nonce) {
		const char *nonce = jstr(c, "nonce");

		if (!nonce || !att_ct_equal(nonce, strlen(nonce), rules->nonce, strlen(rules->nonce)))
			FAIL("nonce mismatch");
	}
out:
	return r;
}

static bool typ_ok(const char *typ, bool access_token)
{
	if (!typ)
		return true;
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, "JWT") == 0 || (access_token && strcasecmp(typ, "at+jwt") == 0);
}

int att_jwt_verify(const struct att_jwks *ks, const char *tok, const struct att_jwt_rules *rules,
		   int64_t now, json_t **ret_claims, char *reason, size_t rlen)
{
	const char *const *algs = rules->algs ? rules->algs : default_algs;
	size_t nalgs = rules->algs ? rules->nalgs : ATT_ARRAY_SIZE(default_algs);
	size_t len = tok ? strnlen(tok, ATT_JWT_MAX_LEN + 1) : 0;
	const char *d1, *d2, *alg, *kid, *typ;
	json_t *hdr = NULL, *claims = NULL;
	cjose_jws_t *jws = NULL;
	bool kid_known = false, verified = false;
	cjose_err cerr;
	int r = 0;

	*ret_claims = NULL;
	if (len == 0)
		FAIL("empty token");
	if (len > ATT_JWT_MAX_LEN)
		FAIL("token too large");
	d1 = memchr(tok, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		FAIL("not a JWS compact token");
	if (d1 == tok || d2 == d1 + 1 || d2 + 1 == tok + len)
		FAIL("unsigned or empty token part");
	hdr = b64url_json(tok, (size_t)(d1 - tok));
	if (!hdr)
		FAIL("malformed token header");
	alg = jstr(hdr, "alg");
	kid = jstr(hdr, "kid");
	typ = jstr(hdr, "typ");
	if (!alg)
		FAIL("missing alg");
	if (strcasecmp(alg, "none") == 0 || strncmp(alg, "HS", 2) == 0 || !in_list(alg, algs, nalgs))
		FAIL("algorithm %s not allowed", strcasecmp(alg, "none") == 0 ? "none" : alg);
	if (json_object_get(hdr, "kid") && !kid)
		FAIL("malformed kid");
	if (json_object_get(hdr, "typ") && (!typ || !typ_ok(typ, rules->access_token)))
		FAIL("unexpected token type");
	if (json_object_get(hdr, "crit"))
		FAIL("unsupported critical header");
	if (json_object_get(hdr, "enc") || json_object_get(hdr, "zip"))
		FAIL("encrypted tokens are not accepted");
	claims = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!claims)
		FAIL("malformed token payload");
	/* signature part must be base64url too (cjose is lenient) */
	for (const char *p = d2 + 1; p < tok + len; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			FAIL("malformed signature");
	jws = cjose_jws_import(tok, len, &cerr);
	if (!jws)
		FAIL("malformed JWS");
	for (size_t i = 0; ks && i < ks->n && !verified; i++) {
		const struct key *k = &ks->k[i];

		if (kid && (!k->kid || strcmp(k->kid, kid) != 0))
			continue;
		kid_known = true;
		if (!key_fits(k, alg))
			continue;
		if (cjose_jws_verify(jws, k->jwk, &cerr))
			verified = true;
	}
	if (!verified) {
		if (!kid_known || !kid) {
			snprintf(reason, rlen, kid ? "unknown signing key" : "signature not verified by any key");
			r = ATT_E_NOTFOUND;
			goto out;
		}
		FAIL("bad signature");
	}
	r = check_claims(claims, rules, now, reason, rlen);
	if (r == 0) {
		*ret_claims = claims;
		claims = NULL;
	}
out:
	if (jws)
		cjose_jws_release(jws);
	json_decref(hdr);
	json_decref(claims);
	return r;
}

json_t *att_jwt_peek(const char *tok)
{
	const char *d1 = tok ? strchr(tok, '.') : NULL;
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	if (!d2)
		return NULL;
	return b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
}

/* ---- roles, identity ------------------------------------------------------------ */

int att_json_pointer_append(struct att_buf *b, const char *token)
{
	int r = 0;

	for (const char *p = token; *p && r == 0; p++)
		r = *p == '~' ? att_buf_puts(b, "~0") : *p == '/' ? att_buf_puts(b, "~1") : att_buf_append(b, p, 1);
	return r;
}

const json_t *att_json_pointer(const json_t *doc, const char *ptr)
{
	char tok[256];

	if (!ptr)
		return NULL;
	if (*ptr != '/')
		return *ptr ? NULL : doc;
	while (doc && *ptr == '/') {
		size_t o = 0;

		ptr++;
		while (*ptr && *ptr != '/') {
			char c = *ptr++;

			if (c == '~') {
				if (*ptr == '0')
					c = '~';
				else if (*ptr == '1')
					c = '/';
				else
					return NULL;
				ptr++;
			}
			if (o + 1 >= sizeof(tok))
				return NULL;
			tok[o++] = c;
		}
		tok[o] = 0;
		if (json_is_object(doc)) {
			doc = json_object_get(doc, tok);
		} else if (json_is_array(doc)) {
			uint64_t idx;

			if (att_parse_u64(tok, o, 0, 1000000, &idx) != 0)
				return NULL;
			doc = json_array_get(doc, (size_t)idx);
		} else {
			return NULL;
		}
	}
	return doc;
}

typedef bool (*role_fn)(const char *role, size_t len, void *ud);

static bool each_role(const json_t *claims, const char *const *pointers, size_t n, role_fn fn, void *ud)
{
	for (size_t i = 0; i < n; i++) {
		const json_t *v = att_json_pointer(claims, pointers[i]);
		size_t j;
		json_t *e;

		if (json_is_array(v)) {
			json_array_foreach(v, j, e)
				if (json_is_string(e) &&
				    fn(json_string_value(e), json_string_length(e), ud))
					return true;
		} else if (json_is_string(v)) {
			const char *s = json_string_value(v);

			while (*s) {
				size_t l;

				s += strspn(s, ", \t");
				l = strcspn(s, ", \t");
				if (l && fn(s, l, ud))
					return true;
				s += l;
			}
		}
	}
	return false;
}

static bool role_eq(const char *role, size_t len, void *ud)
{
	const char *want = ud;

	return strlen(want) == len && memcmp(role, want, len) == 0;
}

bool att_jwt_has_role(const json_t *claims, const char *const *pointers, size_t n, const char *role)
{
	return role && *role && each_role(claims, pointers, n, role_eq, (void *)role);
}

static bool role_collect(const char *role, size_t len, void *ud)
{
	json_t *arr = ud;
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_string_length(v) == len && memcmp(json_string_value(v), role, len) == 0)
			return false;
	json_array_append_new(arr, json_stringn(role, len));
	return false;
}

json_t *att_jwt_roles(const json_t *claims, const char *const *pointers, size_t n)
{
	json_t *arr = json_array();

	if (arr)
		each_role(claims, pointers, n, role_collect, arr);
	return arr;
}

int att_jwt_identity(const json_t *claims, char *out, size_t outlen)
{
	const char *name = jstr(claims, "preferred_username");

	if (!name || !*name)
		name = jstr(claims, "sub");
	if (!name || !*name || strlen(name) > 200 || strlen(name) >= outlen)
		return ATT_E_AUTH;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return ATT_E_AUTH;
	memcpy(out, name, strlen(name) + 1);
	return 0;
}
