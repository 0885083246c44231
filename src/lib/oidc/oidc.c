#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "obs/log.h"
#include "oidc/jwt.h"
#include "oidc/oidc.h"

#define LOGO "attestd.oidc"
#define MAX_DOC (1024 * 1024)

struct kset {
	struct att_jwks *ks;
	int refs;		/* under o->mu */
	int64_t loaded_at;	/* mono_ms() */
};

struct att_oidc {
	char *issuer;
	char **aud;
	size_t naud;
	char *role;
	char **claims;		/* expanded pointers */
	size_t nclaims;
	char **algs;
	size_t nalgs;
	char **clients;
	size_t nclients;
	int64_t leeway, ttl, min_refresh;
	long timeout;
	char *ca_file;
	bool allow_http;

	pthread_mutex_t mu;		/* cur, generation, last_attempt, stats */
	pthread_mutex_t fetch_mu;	/* single flight */
	struct kset *cur;
	uint64_t generation;
	int64_t last_attempt;	/* mono_ms(), 0: never */
	struct att_oidc_stats st;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Milliseconds on the monotonic clock: cache age and the refetch rate
 * limit (whole wall-clock seconds let two fetches come 1.01 s apart
 * under a 2 s limit, and a clock step would stop or unleash refetches). */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char **dup_list(const char *const *in, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof(char *));

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = att_strdup(in[i]))) {
			for (size_t j = 0; j < i; j++)
				free(out[j]);
			free(out);
			return NULL;
		}
	return out;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		free(l[i]);
	free(l);
}

/* "/resource_access/{audience}/roles" -> one pointer per audience, with the
 * audience escaped per RFC 6901 (client ids may hold '/' or '~'). */
static int expand_claims(struct att_oidc *o, const char *const *in, size_t n)
{
	size_t cap = n * (o->naud + 1) + 1;

	o->claims = calloc(cap, sizeof(char *));
	if (!o->claims)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *ph = strstr(in[i], "{audience}");

		if (!ph) {
			if (!(o->claims[o->nclaims++] = att_strdup(in[i])))
				return ATT_E_NOMEM;
			continue;
		}
		for (size_t a = 0; a < o->naud; a++) {
			struct att_buf b;

			att_buf_init(&b, 4096);
			(void)att_buf_append(&b, in[i], (size_t)(ph - in[i]));
			(void)att_json_pointer_append(&b, o->aud[a]);
			(void)att_buf_puts(&b, ph + strlen("{audience}"));
			if (!b.p) {
				att_buf_release(&b);
				return ATT_E_NOMEM;
			}
			o->claims[o->nclaims++] = att_buf_steal(&b, NULL);
		}
	}
	return 0;
}

void att_oidc_free(struct att_oidc *o)
{
	if (!o)
		return;
	if (o->cur)
		att_jwks_free(o->cur->ks);
	free(o->cur);
	free(o->issuer);
	free_list(o->aud, o->naud);
	free(o->role);
	free_list(o->claims, o->nclaims);
	free_list(o->algs, o->nalgs);
	free_list(o->clients, o->nclients);
	free(o->ca_file);
	pthread_mutex_destroy(&o->mu);
	pthread_mutex_destroy(&o->fetch_mu);
	free(o);
}

int att_oidc_new(const struct att_oidc_conf *c, struct att_oidc **ret, char *reterr, size_t errlen)
{
	struct att_oidc *o;
	size_t il;

	if (!c->issuer || !*c->issuer) {
		snprintf(reterr, errlen, "OIDC issuer is empty");
		return ATT_E_INVAL;
	}
	il = strlen(c->issuer);
	if (strncmp(c->issuer, "https://", 8) != 0 && strncmp(c->issuer, "http://", 7) != 0) {
		snprintf(reterr, errlen, "OIDC issuer must be an https:// URL");
		return ATT_E_INVAL;
	}
	if (c->issuer[il - 1] == '/') {
		snprintf(reterr, errlen, "OIDC issuer must not end with '/' (Keycloak: https://HOST/realms/REALM)");
		return ATT_E_INVAL;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return ATT_E_NOMEM;
	pthread_mutex_init(&o->mu, NULL);
	pthread_mutex_init(&o->fetch_mu, NULL);
	o->naud = c->naudiences;
	o->nalgs = c->algs ? c->nalgs : 0;
	o->nclients = c->nclients;
	o->issuer = att_strdup(c->issuer);
	o->aud = dup_list(c->audiences, c->naudiences);
	o->role = att_strdup(c->operator_role ? c->operator_role : "");
	o->algs = c->algs ? dup_list(c->algs, c->nalgs) : NULL;
	o->clients = dup_list(c->clients, c->nclients);
	o->ca_file = c->ca_file && *c->ca_file ? att_strdup(c->ca_file) : NULL;
	o->leeway = c->leeway;
	o->ttl = c->jwks_ttl;
	o->min_refresh = c->min_refresh;
	o->timeout = c->http_timeout > 0 ? c->http_timeout : 5;
	o->allow_http = c->allow_http;
	if (!o->issuer || !o->aud || !o->role || (c->algs && !o->algs) || !o->clients ||
	    (c->ca_file && *c->ca_file && !o->ca_file) ||
	    expand_claims(o, c->role_claims, c->nrole_claims) != 0) {
		att_oidc_free(o);
		return ATT_E_NOMEM;
	}
	for (size_t i = 0; i < o->nalgs; i++)
		if (strncmp(o->algs[i], "HS", 2) == 0 || strcasecmp(o->algs[i], "none") == 0 ||
		    (o->algs[i][0] != 'R' && o->algs[i][0] != 'P' && o->algs[i][0] != 'E')) {
			snprintf(reterr, errlen, "OIDC algorithm %s is not allowed (RS*, PS*, ES* only)", o->algs[i]);
			att_oidc_free(o);
			return ATT_E_INVAL;
		}
	*ret = o;
	return 0;
}

/* ---- fetching ------------------------------------------------------------------ */

/* An http:// URL whose host (parsed, not a prefix: "http://127.0.0.1@evil/"
 * is evil's) is localhost, 127.0.0.0/8 or ::1. */
bool att_oidc_loopback_url(const char *u)
{
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (!h)
		return false;
	if (curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK && strcasecmp(scheme, "http") == 0) {
		struct in_addr a4;
		struct in6_addr a6;
		size_t n = strlen(host);

		if (strcasecmp(host, "localhost") == 0)
			ok = true;
		else if (inet_pton(AF_INET, host, &a4) == 1)
			ok = (ntohl(a4.s_addr) >> 24) == 127;
		else if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
			host[n - 1] = '\0';
			ok = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return ok;
}

static int url_allowed(const struct att_oidc *o, const char *u, char *reterr, size_t errlen)
{
	if (strncmp(u, "https://", 8) == 0)
		return 0;
	if (strncmp(u, "http://", 7) == 0 && (o->allow_http || att_oidc_loopback_url(u)))
		return 0;
	snprintf(reterr, errlen, "refusing non-https OIDC URL %s (set ITL_OIDC_ALLOW_HTTP=true to allow)", u);
	return ATT_E_INVAL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct att_buf *b = ud;
	size_t n = size * nmemb;

	return att_buf_append(b, data, n) == 0 ? n : 0;
}

static int http_get(const struct att_oidc *o, const char *url, struct att_buf *body, char *reterr,
		    size_t errlen)
{
	CURL *h;
	CURLcode cc;
	long code = 0;
	int r;

	r = url_allowed(o, url, reterr, errlen);
	if (r)
		return r;
	h = curl_easy_init();
	if (!h)
		return ATT_E_NOMEM;
	att_buf_init(body, MAX_DOC);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		snprintf(reterr, errlen, "GET %s: %s", url, curl_easy_strerror(cc));
		att_buf_release(body);
		return ATT_E_UNAVAILABLE;
	}
	if (code != 200) {
		snprintf(reterr, errlen, "GET %s: HTTP %ld", url, code);
		att_buf_release(body);
		return ATT_E_UNAVAILABLE;
	}
	return 0;
}

/* Discovery, then the key set.  No lock held. */
static int fetch_keys(const struct att_oidc *o, struct att_jwks **ret, char *reterr, size_t errlen)
{
	struct att_buf b;
	char *url = att_asprintf("%s/.well-known/openid-configuration", o->issuer);
	json_t *doc = NULL;
	const char *iss, *jwks_uri;
	int r;

	if (!url)
		return ATT_E_NOMEM;
	r = http_get(o, url, &b, reterr, errlen);
	free(url);
	if (r)
		return r;
	doc = json_loadb(b.p ? b.p : "", b.len, 0, NULL);
	att_buf_release(&b);
	iss = json_string_value(json_object_get(doc, "issuer"));
	jwks_uri = json_string_value(json_object_get(doc, "jwks_uri"));
	if (!iss || strcmp(iss, o->issuer) != 0) {
		snprintf(reterr, errlen, "discovery document issuer \"%s\" differs from ITL_OIDC_ISSUER \"%s\"",
			 iss ? iss : "(none)", o->issuer);
		r = ATT_E_UNAVAILABLE;
		goto out;
	}
	if (!jwks_uri) {
		snprintf(reterr, errlen, "discovery document has no jwks_uri");
		r = ATT_E_UNAVAILABLE;
		goto out;
	}
	r = http_get(o, jwks_uri, &b, reterr, errlen);
	if (r)
		goto out;
	r = att_jwks_parse(b.p ? b.p : "", b.len, ret, reterr, errlen);
	if (r)
		r = ATT_E_UNAVAILABLE;
	att_buf_release(&b);
out:
	json_decref(doc);
	return r;
}

static void kset_put(struct att_oidc *o, struct kset *k)
{
	bool last;

	if (!k)
		return;
	pthread_mutex_lock(&o->mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (last) {
		att_jwks_free(k->ks);
		free(k);
	}
}

/* Get the key set, refreshing when stale (ttl) or when force is set and the
 * rate limit allows.  Returns a referenced kset or NULL (no keys at all). */
static struct kset *kset_get(struct att_oidc *o, bool force, char *reterr, size_t errlen)
{
	struct kset *k, *old = NULL;
	struct att_jwks *ks = NULL;
	uint64_t gen;
	int64_t now = mono_ms();
	int r;

	pthread_mutex_lock(&o->mu);
	k = o->cur;
	gen = o->generation;
	if (k && !force && now - k->loaded_at < o->ttl * 1000) {
		k->refs++;
		pthread_mutex_unlock(&o->mu);
		return k;
	}
	if (o->last_attempt && now - o->last_attempt < (k ? o->min_refresh : 1) * 1000) {
		/* rate limited: without keys at all, retry at most once a second */
		if (k)
			k->refs++;
		else
			snprintf(reterr, errlen, "OIDC provider unavailable (last attempt failed)");
		pthread_mutex_unlock(&o->mu);
		return k;
	}
	pthread_mutex_unlock(&o->mu);

	pthread_mutex_lock(&o->fetch_mu);
	pthread_mutex_lock(&o->mu);
	if (o->generation != gen || (o->last_attempt && mono_ms() - o->last_attempt < 1000)) {
		/* someone fetched while we waited */
		k = o->cur;
		if (k)
			k->refs++;
		else
			snprintf(reterr, errlen, "OIDC provider unavailable");
		pthread_mutex_unlock(&o->mu);
		pthread_mutex_unlock(&o->fetch_mu);
		return k;
	}
	o->last_attempt = mono_ms();
	pthread_mutex_unlock(&o->mu);

	r = fetch_keys(o, &ks, reterr, errlen);

	pthread_mutex_lock(&o->mu);
	if (r == 0) {
		struct kset *n = calloc(1, sizeof(*n));

		if (n) {
			n->ks = ks;
			n->refs = 1;
			n->loaded_at = mono_ms();
			old = o->cur;
			o->cur = n;
			o->generation++;
			o->st.fetch_ok++;
			o->st.nkeys = att_jwks_count(ks);
		} else {
			att_jwks_free(ks);
		}
	} else {
		o->st.fetch_failed++;
	}
	k = o->cur;
	if (k)
		k->refs++;
	pthread_mutex_unlock(&o->mu);
	pthread_mutex_unlock(&o->fetch_mu);
	if (r == 0)
		att_log_info(LOGO, "OIDC signing keys loaded from %s (%zu keys)", o->issuer, att_jwks_count(ks));
	else
		att_log_warning(LOGO, "OIDC key refresh failed: %s%s", reterr,
				k ? " — keeping the previous key set" : "");
	kset_put(o, old);
	return k;
}

int att_oidc_prefetch(struct att_oidc *o, char *reterr, size_t errlen)
{
	struct kset *k = kset_get(o, true, reterr, errlen);

	if (!k)
		return ATT_E_UNAVAILABLE;
	kset_put(o, k);
	return 0;
}

/* ---- authentication ------------------------------------------------------------- */

static void count(struct att_oidc *o, bool ok)
{
	pthread_mutex_lock(&o->mu);
	if (ok)
		o->st.tokens_ok++;
	else
		o->st.tokens_rejected++;
	pthread_mutex_unlock(&o->mu);
}

int att_oidc_authenticate(struct att_oidc *o, const char *token, struct att_oidc_identity *id,
			  char *reason, size_t rlen)
{
	struct att_jwt_rules rules = {
		.issuer = o->issuer,
		.audiences = (const char *const *)o->aud,
		.naudiences = o->naud,
		.algs = (const char *const *)o->algs,
		.nalgs = o->nalgs,
		.clients = (const char *const *)o->clients,
		.nclients = o->nclients,
		.leeway = o->leeway,
		.access_token = true,
	};
	json_t *claims = NULL;
	struct kset *k;
	char ferr[256] = "";
	int r;

	memset(id, 0, sizeof(*id));
	k = kset_get(o, false, ferr, sizeof(ferr));
	if (!k) {
		snprintf(reason, rlen, "%s", ferr);
		return ATT_E_UNAVAILABLE;
	}
	r = att_jwt_verify(k->ks, token, &rules, now_s(), &claims, reason, rlen);
	if (r == ATT_E_NOTFOUND) {
		/* unknown kid: the provider may have rotated its keys */
		struct kset *k2 = kset_get(o, true, ferr, sizeof(ferr));

		if (k2 && k2 != k) {
			r = att_jwt_verify(k2->ks, token, &rules, now_s(), &claims, reason, rlen);
		}
		kset_put(o, k2);
		if (r == ATT_E_NOTFOUND)
			r = ATT_E_AUTH;
	}
	kset_put(o, k);
	if (r == 0 && att_jwt_identity(claims, id->name, sizeof(id->name)) != 0) {
		snprintf(reason, rlen, "token has no usable preferred_username or sub");
		r = ATT_E_AUTH;
	}
	if (r) {
		json_decref(claims);
		count(o, false);
		return r;
	}
	snprintf(id->sub, sizeof(id->sub), "%s", json_string_value(json_object_get(claims, "sub")) ?: "");
	{
		const char *azp = json_string_value(json_object_get(claims, "azp"));
		const char *cid = json_string_value(json_object_get(claims, "client_id"));

		snprintf(id->client, sizeof(id->client), "%s", azp ? azp : cid ? cid : "");
	}
	id->exp = (int64_t)json_number_value(json_object_get(claims, "exp"));
	id->roles = att_jwt_roles(claims, (const char *const *)o->claims, o->nclaims);
	id->operator = !*o->role ||
		       att_jwt_has_role(claims, (const char *const *)o->claims, o->nclaims, o->role);
	json_decref(claims);
	count(o, true);
	return 0;
}

void att_oidc_stats(struct att_oidc *o, struct att_oidc_stats *ret)
{
	pthread_mutex_lock(&o->mu);
	*ret = o->st;
	pthread_mutex_unlock(&o->mu);
}
