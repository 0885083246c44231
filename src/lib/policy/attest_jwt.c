/* attest_jwt.c - the attestors whose evidence is a signed JWT, verified
 * with the OIDC module's validation (att_jwt_verify: asymmetric
 * algorithms only, never "none" or HMAC) against keys from the config
 * (jwks: an inline JWK set), a jwksURL, or the issuer's discovery
 * document.  Fetched key sets are cached for five minutes; an unknown kid
 * refetches at most every ten seconds.
 *
 *   k8s_token   projected service account token: namespace, service account, pod, node
 *   gcp_iit     GCE instance identity token (format=full): project, zone, instance
 *   azure_msi   managed identity access token: tenant, principal, resource id
 *   aws_token   IAM outbound web identity token: account, org, principal */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "oidc/jwt.h"
#include "policy/policy-internal.h"

#define CACHE_SLOTS 16
#define CACHE_TTL 300
#define REFRESH_MIN 10

static struct {
	char *url;
	char *jwks;
	int64_t fetched;
} cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static char *cache_get(const char *url, int64_t now, int64_t max_age)
{
	char *out = NULL;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].url && strcmp(cache[i].url, url) == 0 && now - cache[i].fetched < max_age)
			out = att_strdup(cache[i].jwks);
	pthread_mutex_unlock(&cache_lock);
	return out;
}

static void cache_put(const char *url, const char *jwks, int64_t now)
{
	int slot = 0;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].url && strcmp(cache[i].url, url) == 0) {
			slot = i;
			break;
		}
		if (cache[i].fetched < cache[slot].fetched)
			slot = i;
	}
	free(cache[slot].url);
	free(cache[slot].jwks);
	cache[slot].url = att_strdup(url);
	cache[slot].jwks = att_strdup(jwks);
	cache[slot].fetched = now;
	pthread_mutex_unlock(&cache_lock);
}

/* The JWKS document text for this config (malloc'd). */
static int jwks_text(const json_t *config, const char *default_url, int64_t now, bool refresh, char **ret,
		     char *reason, size_t rlen)
{
	const char *inl = json_string_value(json_object_get(config, "jwks"));
	const char *url = json_string_value(json_object_get(config, "jwksURL"));
	const char *iss = json_string_value(json_object_get(config, "issuerURL"));
	char *disc_url = NULL, *body = NULL;
	long status = 0;
	int r;

	if (inl) {
		*ret = att_strdup(inl);
		return *ret ? 0 : ATT_E_NOMEM;
	}
	if (!url && !default_url && iss) {
		json_t *d;
		size_t il = strlen(iss);

		disc_url = att_asprintf("%.*s/.well-known/openid-configuration", (int)(il && iss[il - 1] == '/' ? il - 1 : il),
					iss);
		if (!disc_url)
			return ATT_E_NOMEM;
		body = cache_get(disc_url, now, CACHE_TTL);
		if (!body) {
			r = att_pol_http("GET", disc_url, NULL, true, 5000, 65536, &status, &body, reason, rlen);
			if (r == 0 && status != 200)
				r = POL_FAIL(ATT_E_UNAVAILABLE, "issuer unavailable: %s answered %ld", disc_url, status);
			if (r < 0) {
				free(disc_url);
				free(body);
				return r;
			}
			cache_put(disc_url, body, now);
		}
		d = json_loads(body, 0, NULL);
		free(body);
		body = NULL;
		url = json_string_value(json_object_get(d, "jwks_uri"));
		disc_url = url ? (free(disc_url), att_strdup(url)) : (free(disc_url), NULL);
		json_decref(d);
		if (!disc_url)
			return POL_FAIL(ATT_E_UNAVAILABLE, "issuer unavailable: discovery of %s has no jwks_uri", iss);
		url = disc_url;
	}
	if (!url)
		url = default_url;
	body = refresh ? NULL : cache_get(url, now, CACHE_TTL);
	if (refresh && (body = cache_get(url, now, REFRESH_MIN))) {
		free(body);	/* fetched moments ago: the kid really is unknown */
		free(disc_url);
		return POL_FAIL(ATT_E_AUTH, "unknown signing key: no key of the issuer matches the token's kid");
	}
	if (!body) {
		r = att_pol_http("GET", url, NULL, true, 5000, 256 * 1024, &status, &body, reason, rlen);
		if (r == 0 && status != 200) {
			free(body);
			r = POL_FAIL(ATT_E_UNAVAILABLE, "keys unavailable: %s answered %ld", url, status);
		}
		if (r < 0) {
			free(disc_url);
			return r;
		}
		cache_put(url, body, now);
	}
	free(disc_url);
	*ret = body;
	return 0;
}

/* Verify evidence.token under the config's keys and rules; *claims on success. */
static int verify_token(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			const char *default_url, const char *issuer, const char *const *auds, size_t naud,
			json_t **claims, char *reason, size_t rlen)
{
	const char *tok = att_pol_evidence_str(evidence, "token", ATT_JWT_MAX_LEN, reason, rlen);
	struct att_jwt_rules rules = { .issuer = issuer, .audiences = auds, .naudiences = naud, .leeway = 60 };

	if (!tok)
		return ATT_E_AUTH;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct att_jwks *ks = NULL;
		char *text = NULL, why[256] = "";
		int r = jwks_text(config, default_url, ctx->now, attempt > 0, &text, reason, rlen);

		if (r < 0)
			return r == ATT_E_NOMEM ? r : ATT_E_AUTH;
		r = att_jwks_parse(text, strlen(text), &ks, why, sizeof(why));
		free(text);
		if (r < 0)
			return POL_FAIL(ATT_E_AUTH, "keys unusable: %s", why);
		r = att_jwt_verify(ks, tok, &rules, ctx->now, claims, why, sizeof(why));
		att_jwks_free(ks);
		if (r == 0)
			return 0;
		if (r != ATT_E_NOTFOUND || json_object_get(config, "jwks"))
			return POL_FAIL(ATT_E_AUTH, "invalid token: %s", why[0] ? why : "no key verified it");
	}
	return POL_FAIL(ATT_E_AUTH, "invalid token: no key of the issuer verified it");
}

static const char *cstr(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);

	if (b)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static void put(json_t *attrs, const char *k, const char *v)
{
	if (v)
		json_object_set_new(attrs, k, json_string(v));
}

static int list_of(const json_t *config, const char *key, const char *def, const char **out, size_t max)
{
	const json_t *l = json_object_get(config, key);
	size_t n = 0;

	if (json_is_string(l))
		out[n++] = json_string_value(l);
	for (size_t i = 0; json_is_array(l) && i < json_array_size(l) && n < max; i++)
		out[n++] = json_string_value(json_array_get(l, i));
	if (n == 0 && def)
		out[n++] = def;
	return (int)n;
}

static int jwks_check(const json_t *config, char *reason, size_t rlen)
{
	const char *inl = json_string_value(json_object_get(config, "jwks"));
	struct att_jwks *ks;
	char why[256];

	if (!inl)
		return 0;
	if (att_jwks_parse(inl, strlen(inl), &ks, why, sizeof(why)) < 0)
		return POL_FAIL(ATT_E_INVAL, "jwks: %s", why);
	att_jwks_free(ks);
	return 0;
}

/* ---- k8s_token ------------------------------------------------------------- */

static int k8s_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence, json_t *attrs,
		      char *reason, size_t rlen)
{
	const char *auds[16];
	int naud = list_of(config, "audiences", "attestation", auds, 16);
	json_t *c = NULL;
	const json_t *k8s;
	const char *ns, *sa;
	char nssa[300];
	int r = verify_token(ctx, config, evidence, NULL, json_string_value(json_object_get(config, "issuerURL")), auds,
			     (size_t)naud, &c, reason, rlen);

	if (r < 0)
		return r;
	k8s = json_object_get(c, "kubernetes.io");
	ns = cstr(k8s, "namespace", NULL);
	sa = cstr(k8s, "serviceaccount", "name");
	if (!ns || !sa) {
		json_decref(c);
		return POL_FAIL(ATT_E_AUTH, "not a projected token: no kubernetes.io namespace/serviceaccount claims");
	}
	snprintf(nssa, sizeof(nssa), "%s:%s", ns, sa);
	if (!att_pol_allowed(config, "allowedNamespaces", ns) || !att_pol_allowed(config, "allowedServiceAccounts", nssa)) {
		json_decref(c);
		return POL_FAIL(ATT_E_AUTH, "service account not allowed: %s", nssa);
	}
	put(attrs, "namespace", ns);
	put(attrs, "service_account", sa);
	put(attrs, "service_account_uid", cstr(k8s, "serviceaccount", "uid"));
	put(attrs, "pod_name", cstr(k8s, "pod", "name"));
	put(attrs, "pod_uid", cstr(k8s, "pod", "uid"));
	put(attrs, "node_name", cstr(k8s, "node", "name"));
	put(attrs, "subject", cstr(c, "sub", NULL));
	put(attrs, "issuer", cstr(c, "iss", NULL));
	json_decref(c);
	return 0;
}

static const struct att_pol_field k8s_fields[] = {
	{ "issuerURL", PK_URL, true },	      { "jwksURL", PK_URL, false },
	{ "jwks", PK_STR, false },	      { "audiences", PK_STRLIST, false },
	{ "allowedNamespaces", PK_STRLIST, false }, { "allowedServiceAccounts", PK_STRLIST, false },
};

const struct att_attestor att_attestor_k8s_token = { "k8s_token", k8s_fields, ATT_ARRAY_SIZE(k8s_fields), jwks_check,
						     k8s_verify };

/* ---- gcp_iit --------------------------------------------------------------- */

static int gcp_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence, json_t *attrs,
		      char *reason, size_t rlen)
{
	const char *auds[1] = { json_string_value(json_object_get(config, "audience")) };
	json_t *c = NULL;
	const json_t *gce;
	const char *project;
	int r = verify_token(ctx, config, evidence, "https://www.googleapis.com/oauth2/v3/certs",
			     "https://accounts.google.com", auds, 1, &c, reason, rlen);

	if (r < 0)
		return r;
	gce = json_object_get(json_object_get(c, "google"), "compute_engine");
	project = cstr(gce, "project_id", NULL);
	if (!project) {
		json_decref(c);
		return POL_FAIL(ATT_E_AUTH, "not an instance identity token: no google.compute_engine claims (format=full)");
	}
	if (!att_pol_allowed(config, "projectIDs", project)) {
		r = POL_FAIL(ATT_E_AUTH, "project not allowed: %.128s", project);
		json_decref(c);
		return r;
	}
	put(attrs, "project_id", project);
	put(attrs, "zone", cstr(gce, "zone", NULL));
	put(attrs, "instance_id", cstr(gce, "instance_id", NULL));
	put(attrs, "instance_name", cstr(gce, "instance_name", NULL));
	put(attrs, "service_account", cstr(c, "email", NULL));
	json_decref(c);
	return 0;
}

static const struct att_pol_field gcp_fields[] = {
	{ "audience", PK_STR, true },
	{ "projectIDs", PK_STRLIST, false },
	{ "jwksURL", PK_URL, false },
	{ "jwks", PK_STR, false },
};

const struct att_attestor att_attestor_gcp_iit = { "gcp_iit", gcp_fields, ATT_ARRAY_SIZE(gcp_fields), jwks_check,
						   gcp_verify };

/* ---- azure_msi -------------------------------------------------------------- */

static int azure_msi_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			    json_t *attrs, char *reason, size_t rlen)
{
	const char *tenant = json_string_value(json_object_get(config, "tenantID"));
	const char *auds[8];
	int naud = list_of(config, "audience", "https://management.azure.com/", auds, 8);
	char iss[300];
	json_t *c = NULL;
	int r;

	snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tenant);
	r = verify_token(ctx, config, evidence, "https://login.microsoftonline.com/common/discovery/keys", iss, auds,
			 (size_t)naud, &c, reason, rlen);
	if (r < 0)
		return r;
	if (!cstr(c, "tid", NULL) || strcmp(cstr(c, "tid", NULL), tenant) != 0) {
		json_decref(c);
		return POL_FAIL(ATT_E_AUTH, "wrong tenant: the token's tid is not %s", tenant);
	}
	put(attrs, "tenant_id", tenant);
	put(attrs, "principal_id", cstr(c, "oid", NULL) ? cstr(c, "oid", NULL) : cstr(c, "sub", NULL));
	put(attrs, "resource_id", cstr(c, "xms_mirid", NULL));
	json_decref(c);
	return 0;
}

static const struct att_pol_field azure_msi_fields[] = {
	{ "tenantID", PK_STR, true },
	{ "audience", PK_STR, false },
	{ "jwksURL", PK_URL, false },
	{ "jwks", PK_STR, false },
};

const struct att_attestor att_attestor_azure_msi = { "azure_msi", azure_msi_fields, ATT_ARRAY_SIZE(azure_msi_fields),
						     jwks_check, azure_msi_verify };

/* ---- aws_token -------------------------------------------------------------- */

static int aws_token_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			    json_t *attrs, char *reason, size_t rlen)
{
	const char *auds[1] = { json_string_value(json_object_get(config, "audience")) };
	json_t *c = NULL;
	const json_t *sts;
	const char *account;
	int r = verify_token(ctx, config, evidence, NULL, json_string_value(json_object_get(config, "issuerURL")), auds,
			     1, &c, reason, rlen);

	if (r < 0)
		return r;
	sts = json_object_get(c, "https://sts.amazonaws.com/");
	account = cstr(sts, "aws_account", NULL);
	if (!account) {
		json_decref(c);
		return POL_FAIL(ATT_E_AUTH, "not an AWS web identity token: no https://sts.amazonaws.com/ aws_account claim");
	}
	if (!att_pol_allowed(config, "accounts", account)) {
		r = POL_FAIL(ATT_E_AUTH, "account not allowed: %.128s", account);
		json_decref(c);
		return r;
	}
	put(attrs, "account", account);
	put(attrs, "org_id", cstr(sts, "org_id", NULL));
	put(attrs, "principal_id", cstr(c, "sub", NULL));
	json_decref(c);
	return 0;
}

static const struct att_pol_field aws_token_fields[] = {
	{ "issuerURL", PK_URL, true }, { "audience", PK_STR, true }, { "accounts", PK_STRLIST, false },
	{ "jwksURL", PK_URL, false },  { "jwks", PK_STR, false },
};

const struct att_attestor att_attestor_aws_token = { "aws_token", aws_token_fields, ATT_ARRAY_SIZE(aws_token_fields),
						     jwks_check, aws_token_verify };
