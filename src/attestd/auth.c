/* auth.c - operator authentication: the admin token (SYSTEM), the
 * break-glass header, OIDC access tokens (roles by claim), and the
 * registration token that pre-approves a registration.  Secrets are
 * compared in constant time. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "http.h"
#include "obs/log.h"
#include "oidc/oidc.h"

#define LOGH "attestd.http"

static bool secret_eq(const char *configured, const char *given)
{
	return configured && *configured && given &&
	       att_ct_equal(configured, strlen(configured), given, strlen(given));
}

static const char *bearer(struct att_req *rq)
{
	const char *h = att_req_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

/* Names the service gives its own principals, in any case and with any
 * surrounding white space ("SYSTEM ", "Machine"): an OIDC identity may not
 * take them, or the audit log could not tell them apart. */
static bool reserved_identity(const char *name)
{
	static const char *const reserved[] = { "SYSTEM", "BREAK_GLASS", "REGISTRATION_TOKEN", "anonymous", "machine" };
	size_t n;

	while (*name == ' ' || *name == '\t')
		name++;
	n = strlen(name);
	while (n && (name[n - 1] == ' ' || name[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(reserved); i++)
		if (n == strlen(reserved[i]) && strncasecmp(name, reserved[i], n) == 0)
			return true;
	return false;
}

static int auth_oidc(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, const char *tok,
		     bool identity_only)
{
	struct att_oidc_identity id;
	char reason[256] = "";
	int r = att_oidc_authenticate(svc->oidc, tok, &id, reason, sizeof(reason));

	if (r == ATT_E_UNAVAILABLE) {
		att_log_warning(LOGH, "OIDC token for %s %s not checked: %s", rq->method, rq->path, reason);
		att_resp_error(rs, 503, "OIDC provider unavailable — bearer tokens cannot be verified now (break-glass still works)");
		att_resp_header(rs, "Retry-After", "5");
		return 503;
	}
	if (r == 0)
		rq->oidc_roles = id.roles;	/* freed with the request, whatever the verdict */
	if (r == 0 && reserved_identity(id.name)) {
		snprintf(reason, sizeof(reason), "identity %s is reserved", id.name);
		r = ATT_E_AUTH;
	}
	if (r) {
		att_log_info(LOGH, "OIDC token rejected for %s %s from %s: %s", rq->method, rq->path, rq->source_ip,
			     reason);
		att_resp_error(rs, 401, "Invalid bearer token: %s", reason);
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	snprintf(rq->actor_name, sizeof(rq->actor_name), "%s", id.name);
	snprintf(rq->actor_key, sizeof(rq->actor_key), "oidc:%s#%s", svc->cfg->oidc_issuer, id.sub);
	rq->actor.key = rq->actor_key;
	rq->oidc_exp = id.exp;
	rq->is_operator = id.operator;
	snprintf(rq->auth_method, sizeof(rq->auth_method), "oidc");
	if (!id.operator && !identity_only) {
		att_log_info(LOGH, "OIDC identity %s lacks role %s for %s %s", id.name, svc->cfg->oidc_operator_role,
			     rq->method, rq->path);
		att_resp_error(rs, 403, "Identity %s does not hold the operator role %s", id.name,
			       svc->cfg->oidc_operator_role);
		att_resp_header(rs, "WWW-Authenticate",
				"Bearer realm=\"attestation\", error=\"insufficient_scope\"");
		return 403;
	}
	rq->actor.authenticated = true;
	return 0;
}

/* 0 when rq->actor is an operator; otherwise an HTTP status with rs set. */
static int auth_operator(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs,
			 bool optional_registration, bool identity_only)
{
	const struct att_config *cfg = svc->cfg;
	const char *bg = att_req_header(rq, "X-Break-Glass");
	const char *tok = bearer(rq);
	const char *regtok = att_req_header(rq, "X-Registration-Token");
	const char *authz = att_req_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	bool oidc = cfg->oidc_enabled && cfg->oidc_issuer[0];
	bool any = cfg->admin_token[0] || cfg->break_glass_token[0] || oidc;

	if (bg) {
		if (!any) {
			/* nothing could verify it: the same 503 as any operator call */
			att_resp_error(rs, 503, "Operator authentication is not configured — set ITL_OIDC_ISSUER or ITL_ADMIN_TOKEN");
			return 503;
		}
		if (secret_eq(cfg->break_glass_token, bg)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "BREAK_GLASS");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "break-glass");
			rq->is_operator = true;
			rq->actor.authenticated = true;
			att_log_warning(LOGH, "Break-glass credential used for %s %s from %s", rq->method,
					rq->path, rq->source_ip);
			return 0;
		}
		att_resp_error(rs, 401, "Invalid break-glass token");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	if (tok) {
		if (secret_eq(cfg->admin_token, tok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "SYSTEM");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "admin-token");
			rq->is_operator = true;
			rq->actor.authenticated = true;
			return 0;
		}
		if (optional_registration && secret_eq(cfg->registration_token, tok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "REGISTRATION_TOKEN");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "registration-token");
			rq->actor.authenticated = true;
			return 0;
		}
		if (oidc && svc->oidc)
			return auth_oidc(svc, rq, rs, tok, identity_only);
		if (!any && !optional_registration) {
			att_resp_error(rs, 503, "Operator authentication is not configured — set ITL_OIDC_ISSUER or ITL_ADMIN_TOKEN");
			return 503;
		}
		att_resp_error(rs, 401, "Invalid or expired bearer token");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	if (optional_registration && regtok) {
		if (secret_eq(cfg->registration_token, regtok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "REGISTRATION_TOKEN");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "registration-token");
			rq->actor.authenticated = true;
			return 0;
		}
		att_resp_error(rs, 401, "Invalid registration token");
		return 401;
	}
	if (authz && optional_registration) {
		att_resp_error(rs, 401, "Unsupported Authorization scheme — use Bearer");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\"");
		return 401;
	}
	if (optional_registration)
		return 0; /* anonymous registration */
	if (!any) {
		att_resp_error(rs, 503, "Operator authentication is not configured — set ITL_OIDC_ISSUER or ITL_ADMIN_TOKEN");
		return 503;
	}
	att_resp_error(rs, 401,
		       "Operator authentication required. Provide a Keycloak JWT Bearer token, or the ITL_ADMIN_TOKEN Bearer token / X-Break-Glass header (break-glass).");
	att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\"");
	return 401;
}

int att_auth_check(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, enum route_auth mode)
{
	if (mode == AUTH_NONE)
		return 0;
	return auth_operator(svc, rq, rs, mode == AUTH_OPTIONAL, mode == AUTH_IDENTITY);
}

int att_auth_bearer(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, const char *credential,
		    bool identity_only)
{
	const struct att_config *cfg = svc->cfg;

	if (secret_eq(cfg->admin_token, credential)) {
		snprintf(rq->actor_name, sizeof(rq->actor_name), "SYSTEM");
		snprintf(rq->auth_method, sizeof(rq->auth_method), "admin-token");
		rq->is_operator = true;
		rq->actor.authenticated = true;
		return 0;
	}
	if (cfg->oidc_enabled && cfg->oidc_issuer[0] && svc->oidc)
		return auth_oidc(svc, rq, rs, credential, identity_only);
	att_resp_error(rs, 401, "Invalid or expired token");
	att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
	return 401;
}
