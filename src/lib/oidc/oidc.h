/* oidc.h - OIDC bearer-token authentication for attestd.
 *
 * Discovery ($issuer/.well-known/openid-configuration, whose "issuer"
 * must equal the configured one) gives the jwks_uri; the JWK set is
 * cached for jwks_ttl seconds and kept when a refresh fails.  A token
 * signed with an unknown kid forces one refetch, at most one per
 * min_refresh seconds (single flight: concurrent requests wait for the
 * fetch in progress instead of starting their own).  Thread-safe. */
#ifndef ATT_OIDC_OIDC_H
#define ATT_OIDC_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_oidc_conf {
	const char *issuer;
	const char *const *audiences;
	size_t naudiences;
	const char *operator_role;		/* "" or NULL: any valid token is an operator */
	const char *const *role_claims;		/* JSON pointers; "{audience}" expands */
	size_t nrole_claims;
	const char *const *algs;		/* NULL: default allowlist */
	size_t nalgs;
	const char *const *clients;		/* azp/client_id allowlist; 0: any */
	size_t nclients;
	int64_t leeway;
	int64_t jwks_ttl;
	int64_t min_refresh;
	long http_timeout;
	const char *ca_file;			/* NULL: system store */
	bool allow_http;			/* http:// issuer/jwks_uri off loopback */
};

struct att_oidc;

int att_oidc_new(const struct att_oidc_conf *conf, struct att_oidc **ret, char *reterr, size_t errlen);
void att_oidc_free(struct att_oidc *o);

/* Fetch discovery + keys now (start-up); failure is only logged by the caller. */
int att_oidc_prefetch(struct att_oidc *o, char *reterr, size_t errlen);

struct att_oidc_identity {
	char name[208];		/* preferred_username or sub: the audit operator_cn */
	char sub[208];
	char client[128];	/* azp or client_id */
	bool operator;		/* holds operator_role */
	int64_t exp;
	json_t *roles;		/* every role found at the claim paths; caller json_decref()s */
};

/* 0: valid token, *id filled (operator says whether the role is held);
 * ATT_E_AUTH: invalid token, reason set; ATT_E_UNAVAILABLE: no keys could
 * be obtained from the provider. */
int att_oidc_authenticate(struct att_oidc *o, const char *token, struct att_oidc_identity *id,
			  char *reason, size_t rlen);

/* Is u an http:// URL whose parsed host is loopback (localhost,
 * 127.0.0.0/8, [::1])?  The only plain-http URLs allowed without
 * ITL_OIDC_ALLOW_HTTP. */
bool att_oidc_loopback_url(const char *u);

struct att_oidc_stats {
	uint64_t fetch_ok, fetch_failed, tokens_ok, tokens_rejected;
	size_t nkeys;
};
void att_oidc_stats(struct att_oidc *o, struct att_oidc_stats *ret);

#endif
