#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"

enum cfg_type {
	CFG_STR,
	CFG_SECRET,
	CFG_BOOL,
	CFG_INT,
	CFG_LIST,
	CFG_URL,
	CFG_ENUM,
};

struct cfg_var {
	const char *name;
	enum cfg_type type;
	size_t off;
	const char *def;
	int64_t min, max;	/* CFG_INT bounds */
	const char *choices;	/* CFG_ENUM: '|'-separated */
};

#define O(f) offsetof(struct att_config, f)

static const struct cfg_var vars[] = {
	{ "ITL_LISTEN", CFG_STR, O(listen), "0.0.0.0:8080", 0, 0, NULL },
	{ "ITL_DB_URL", CFG_STR, O(db_url), "sqlite:////var/lib/itl-reg/db/machines.db", 0, 0, NULL },
	{ "ITL_SERVICE_URL", CFG_URL, O(service_url), "https://attest.itlusions.com", 0, 0, NULL },
	{ "ITL_THREADS", CFG_INT, O(threads), "0", 0, 256, NULL },
	{ "ITL_DB_POOL_SIZE", CFG_INT, O(db_pool_size), "0", 0, 256, NULL },
	{ "ITL_CONNECTION_LIMIT", CFG_INT, O(connection_limit), "4096", 16, 1000000, NULL },
	{ "ITL_CONNECTION_LIMIT_PER_CLIENT", CFG_INT, O(connection_limit_per_client), "64", 0, 1000000, NULL },
	{ "ITL_HEADER_TIMEOUT_SECONDS", CFG_INT, O(header_timeout_seconds), "10", 1, 300, NULL },
	{ "ITL_TRUSTED_PROXIES", CFG_LIST, O(trusted_proxies), "", 0, 0, NULL },
	{ "ITL_MAX_BODY_BYTES", CFG_INT, O(max_body_bytes), "1048576", 1024, 67108864, NULL },
	{ "ITL_MAX_UNAUTH_BODY_BYTES", CFG_INT, O(max_unauth_body_bytes), "65536", 1024, 67108864, NULL },
	{ "ITL_LOG_LEVEL", CFG_ENUM, O(log_level), "info", 0, 0, "debug|info|warning|error" },
	{ "ITL_LOG_FORMAT", CFG_ENUM, O(log_format), "text", 0, 0, "text|json" },
	{ "ITL_ADMIN_TOKEN", CFG_SECRET, O(admin_token), "", 0, 0, NULL },
	{ "BREAK_GLASS_TOKEN", CFG_SECRET, O(break_glass_token), "", 0, 0, NULL },
	{ "ITL_REGISTRATION_TOKEN", CFG_SECRET, O(registration_token), "", 0, 0, NULL },
	{ "ITL_OIDC_ISSUER", CFG_STR, O(oidc_issuer), "", 0, 0, NULL },
	{ "ITL_OIDC_AUDIENCE", CFG_STR, O(oidc_audience), "attestation-service", 0, 0, NULL },
	{ "ITL_OIDC_OPERATOR_ROLE", CFG_STR, O(oidc_operator_role), "attestation-operator", 0, 0, NULL },
	{ "ITL_OIDC_ENABLED", CFG_BOOL, O(oidc_enabled), "true", 0, 0, NULL },
	{ "ITL_OIDC_ROLE_CLAIMS", CFG_LIST, O(oidc_role_claims), "/realm_access/roles,/resource_access/{audience}/roles", 0, 0, NULL },
	{ "ITL_OIDC_ALGORITHMS", CFG_LIST, O(oidc_algorithms), "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512", 0, 0, NULL },
	{ "ITL_OIDC_ALLOWED_CLIENTS", CFG_LIST, O(oidc_allowed_clients), "", 0, 0, NULL },
	{ "ITL_OIDC_LEEWAY_SECONDS", CFG_INT, O(oidc_leeway_seconds), "60", 0, 600, NULL },
	{ "ITL_OIDC_JWKS_CACHE_SECONDS", CFG_INT, O(oidc_jwks_cache_seconds), "3600", 10, 86400, NULL },
	{ "ITL_OIDC_JWKS_MIN_REFRESH_SECONDS", CFG_INT, O(oidc_jwks_min_refresh_seconds), "60", 1, 3600, NULL },
	{ "ITL_OIDC_HTTP_TIMEOUT_SECONDS", CFG_INT, O(oidc_http_timeout_seconds), "5", 1, 60, NULL },
	{ "ITL_OIDC_CA_FILE", CFG_STR, O(oidc_ca_file), "", 0, 0, NULL },
	{ "ITL_OIDC_ALLOW_HTTP", CFG_BOOL, O(oidc_allow_http), "false", 0, 0, NULL },
	{ "ITL_DUAL_CONTROL_ROLES", CFG_LIST, O(dual_control_roles), "", 0, 0, NULL },
	{ "ITL_DUAL_CONTROL_QUORUM", CFG_INT, O(dual_control_quorum), "2", 2, 16, NULL },
	{ "ITL_DUAL_CONTROL_WINDOW_SECONDS", CFG_INT, O(dual_control_window_seconds), "600", 10, 604800, NULL },
	{ "ITL_FACTORY_URL", CFG_URL, O(factory_url), "https://factory.talos.dev", 0, 0, NULL },
	{ "ITL_FACTORY_EXTENSIONS", CFG_LIST, O(factory_extensions), "", 0, 0, NULL },
	{ "ITL_FACTORY_TIMEOUT_SECONDS", CFG_INT, O(factory_timeout_seconds), "5", 1, 120, NULL },
	{ "ITL_TALOS_VERSION", CFG_STR, O(talos_version), "v1.9.5", 0, 0, NULL },
	{ "ITL_INSTALLER_IMAGE", CFG_STR, O(installer_image), "ghcr.io/itlusions/itl-talos-installer:latest", 0, 0, NULL },
	{ "ITL_ISO_URL", CFG_STR, O(iso_url), "", 0, 0, NULL },
	{ "ITL_CONFIG_CACHE_DIR", CFG_STR, O(config_cache_dir), "/var/lib/itl-reg/configs", 0, 0, NULL },
	{ "ITL_CONFIG_TOKEN_TTL_SECONDS", CFG_INT, O(config_token_ttl_seconds), "3600", 30, 2592000, NULL },
	{ "ITL_ENROLLMENT_CA_DIR", CFG_STR, O(enrollment_ca_dir), "/var/lib/itl-reg/ca", 0, 0, NULL },
	{ "ITL_ENROLLMENT_CERT_DAYS", CFG_INT, O(enrollment_cert_days), "30", 1, 3650, NULL },
	{ "ITL_ENROLLMENT_CA_ALGORITHM", CFG_ENUM, O(enrollment_ca_algorithm), "ecdsa-p384", 0, 0, "ecdsa-p384|rsa-4096" },
	{ "ITL_ENROLLMENT_CA_KEY", CFG_SECRET, O(enrollment_ca_key), "", 0, 0, NULL },
	{ "ITL_PKCS11_MODULE", CFG_STR, O(pkcs11_module), "", 0, 0, NULL },
	{ "ITL_ENROLLMENT_CERT_HOURS", CFG_LIST, O(enrollment_cert_hours), "", 0, 0, NULL },
	{ "ITL_SPIFFE_TRUST_DOMAIN", CFG_STR, O(spiffe_trust_domain), "", 0, 0, NULL },
	{ "ITL_REQUIRE_TPM_KEY_ROLES", CFG_LIST, O(require_tpm_key_roles), "", 0, 0, NULL },
	{ "ITL_CRL_VALIDITY_HOURS", CFG_INT, O(crl_validity_hours), "24", 1, 8760, NULL },
	{ "ITL_TPM_VERIFY_CA", CFG_BOOL, O(tpm_verify_ca), "false", 0, 0, NULL },
	{ "ITL_TPM_VERIFY_CA_STRICT", CFG_BOOL, O(tpm_verify_ca_strict), "false", 0, 0, NULL },
	{ "ITL_TPM_CA_BUNDLE_DIR", CFG_STR, O(tpm_ca_bundle_dir), "/var/lib/itl-reg/ca-bundles", 0, 0, NULL },
	{ "ITL_STRICT", CFG_BOOL, O(strict), "false", 0, 0, NULL },
	{ "ITL_REQUIRE_NONCE", CFG_BOOL, O(require_nonce), "false", 0, 0, NULL },
	{ "ITL_REQUIRE_QUOTE", CFG_BOOL, O(require_quote), "false", 0, 0, NULL },
	{ "ITL_NONCE_TTL_SECONDS", CFG_INT, O(nonce_ttl_seconds), "60", 5, 3600, NULL },
	{ "ITL_NONCE_CAPACITY", CFG_INT, O(nonce_capacity), "10000", 1, 10000000, NULL },
	{ "ITL_UNAUTH_WRITE_LIMIT", CFG_INT, O(unauth_write_limit), "300", 0, 10000000, NULL },
	{ "ITL_UNAUTH_WRITE_WINDOW_SECONDS", CFG_INT, O(unauth_write_window_seconds), "60", 1, 86400, NULL },
	{ "ITL_MAX_PENDING", CFG_INT, O(max_pending), "10000", 0, 100000000, NULL },
	{ "ITL_SWEEP_INTERVAL_SECONDS", CFG_INT, O(sweep_interval_seconds), "60", 1, 86400, NULL },
	{ "ITL_AUDIT_TSA_URL", CFG_STR, O(audit_tsa_url), "", 0, 0, NULL },
	{ "ITL_AUDIT_CHECKPOINT_INTERVAL_SECONDS", CFG_INT, O(audit_checkpoint_interval_seconds), "3600", 0, 604800, NULL },
	{ "ITL_HIGH_ASSURANCE", CFG_BOOL, O(high_assurance), "false", 0, 0, NULL },
	{ "ITL_REQUIRE_ENCRYPTED_DELIVERY", CFG_BOOL, O(require_encrypted_delivery), "false", 0, 0, NULL },
	{ "ITL_TLS_MIN_VERSION", CFG_STR, O(tls_min_version), "TLSv1.3", 0, 0, NULL },
	{ "ITL_TLS_CIPHERS", CFG_STR, O(tls_ciphers), "TLS_AES_256_GCM_SHA384", 0, 0, NULL },
	{ "ITL_CONTACT_RESOLUTION_SECONDS", CFG_INT, O(contact_resolution_seconds), "300", 0, 86400, NULL },
	{ "ITL_CONTACT_SILENT_SECONDS", CFG_INT, O(contact_silent_seconds), "900", 60, 31536000, NULL },
	{ "ITL_UI_ENABLED", CFG_BOOL, O(ui_enabled), "true", 0, 0, NULL },
	{ "ITL_UI_OIDC_CLIENT_ID", CFG_STR, O(ui_oidc_client_id), "attestation-dashboard", 0, 0, NULL },
	{ "ITL_UI_OIDC_SCOPE", CFG_STR, O(ui_oidc_scope), "openid", 0, 0, NULL },
	{ "ITL_UI_OIDC_RESOURCE", CFG_STR, O(ui_oidc_resource), "", 0, 0, NULL },
	{ "ITL_UI_POLL_SECONDS", CFG_INT, O(ui_poll_seconds), "10", 2, 3600, NULL },
	{ "ITL_AGENT_TRUST_DOMAIN", CFG_STR, O(agent_trust_domain), "attestation.local", 0, 0, NULL },
	{ "ITL_AGENT_TOKEN_TTL_SECONDS", CFG_INT, O(agent_token_ttl_seconds), "3600", 60, 86400, NULL },
	{ "ITL_AGENT_ALLOW_PRIVATE", CFG_BOOL, O(agent_allow_private), "false", 0, 0, NULL },
	{ "ITL_PULUMI_TOKEN", CFG_SECRET, O(pulumi_token), "", 0, 0, NULL },
	{ "ITL_PULUMI_ORG", CFG_STR, O(pulumi_org), "itlusions", 0, 0, NULL },
	{ "ITL_PULUMI_ENABLED", CFG_BOOL, O(pulumi_enabled), "true", 0, 0, NULL },
	{ "ITL_PULUMI_MASTER_KEY", CFG_SECRET, O(pulumi_master_key), "", 0, 0, NULL },
	{ "ITL_PULUMI_MAX_BODY_BYTES", CFG_INT, O(pulumi_max_body_bytes), "33554432", 1024, 1073741824, NULL },
	{ "ITL_PULUMI_MAX_CHECKPOINT_BYTES", CFG_INT, O(pulumi_max_checkpoint_bytes), "67108864", 1024, 1073741824, NULL },
	{ "ITL_PULUMI_LEASE_SECONDS", CFG_INT, O(pulumi_lease_seconds), "300", 10, 86400, NULL },
	{ "ITL_PULUMI_DELTA_CUTOFF_BYTES", CFG_INT, O(pulumi_delta_cutoff_bytes), "1048576", 1, 1073741824, NULL },
	{ "ITL_PULUMI_CLI", CFG_STR, O(pulumi_cli), "pulumi", 0, 0, NULL },
	{ "ITL_PULUMI_DEPLOY_BACKEND_URL", CFG_STR, O(pulumi_deploy_backend_url), "", 0, 0, NULL },
	{ "ITL_PULUMI_DEPLOY_ALLOW_FILE", CFG_BOOL, O(pulumi_deploy_allow_file), "false", 0, 0, NULL },
	{ "ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS", CFG_INT, O(pulumi_deploy_timeout_seconds), "3600", 5, 86400, NULL },
	{ "ITL_PULUMI_DEPLOY_LOG_BYTES", CFG_INT, O(pulumi_deploy_log_bytes), "1048576", 1024, 67108864, NULL },
	{ "ITL_PULUMI_DEPLOY_SANDBOX", CFG_ENUM, O(pulumi_deploy_sandbox), "auto", 0, 0, "auto|bwrap|user|none" },
	{ "ITL_PULUMI_DEPLOY_USER", CFG_STR, O(pulumi_deploy_user), "", 0, 0, NULL },
	{ "ITL_PULUMI_BWRAP", CFG_STR, O(pulumi_bwrap), "bwrap", 0, 0, NULL },
	{ "ITL_PULUMI_PREVIOUS_MASTER_KEY", CFG_SECRET, O(pulumi_previous_master_key), "", 0, 0, NULL },
	{ "ITL_SHARED_SECRET_MASTER_KEY", CFG_SECRET, O(shared_secret_master_key), "", 0, 0, NULL },
	{ "ITL_SHARED_SECRET_PASSPHRASE", CFG_SECRET, O(shared_secret_passphrase), "", 0, 0, NULL },
	{ "ITL_EVENT_MAX_ATTEMPTS", CFG_INT, O(event_max_attempts), "10", 1, 1000, NULL },
	{ "ITL_EVENT_RETRY_BASE_MS", CFG_INT, O(event_retry_base_ms), "1000", 10, 3600000, NULL },
	{ "ITL_EVENT_RETRY_MAX_SECONDS", CFG_INT, O(event_retry_max_seconds), "3600", 1, 604800, NULL },
	{ "ITL_EVENT_HOOK_TIMEOUT_SECONDS", CFG_INT, O(event_hook_timeout_seconds), "10", 1, 3600, NULL },
	{ "ITL_EVENT_PARTITIONS", CFG_INT, O(event_partitions), "4", 1, 64, NULL },
	{ "ITL_EVENT_POLL_MS", CFG_INT, O(event_poll_ms), "200", 10, 60000, NULL },
	{ "ITL_HEARTBEAT_MISSED_SECONDS", CFG_INT, O(heartbeat_missed_seconds), "0", 0, 31536000, NULL },
	{ "ITL_SECRET_MAX_BYTES", CFG_INT, O(secret_max_bytes), "65536", 1, 262144, NULL },
	{ "ITL_SECRETS_PER_MACHINE", CFG_INT, O(secrets_per_machine), "32", 1, 1024, NULL },
	{ "ITL_AUTO_APPROVE_RULES_FILE", CFG_STR, O(auto_approve_rules_file), "", 0, 0, NULL },
	{ "ITL_AUTO_APPROVE_WEBHOOK_URL", CFG_STR, O(auto_approve_webhook_url), "", 0, 0, NULL },
	{ "ITL_AUTO_APPROVE_WEBHOOK_SECRET", CFG_SECRET, O(auto_approve_webhook_secret), "", 0, 0, NULL },
	{ "ITL_AUTO_APPROVE_WEBHOOK_TIMEOUT_SECONDS", CFG_INT, O(auto_approve_webhook_timeout_seconds), "5", 1, 30, NULL },
	{ "ITL_AUTO_APPROVE_WEBHOOK_MAX_PER_HOUR", CFG_INT, O(auto_approve_webhook_max_per_hour), "60", 1, 100000, NULL },
	{ "ITL_AUTO_APPROVE_WEBHOOK_ALLOW_HTTP", CFG_BOOL, O(auto_approve_webhook_allow_http), "false", 0, 0, NULL },
	{ "ITL_EXTENSIONS_DIR", CFG_STR, O(extensions_dir), "", 0, 0, NULL },
	{ "ITL_EXTENSIONS", CFG_LIST, O(extensions), "", 0, 0, NULL },
	{ "ITL_TRUSTED_EXPORTERS", CFG_STR, O(trusted_exporters), "", 0, 0, NULL },
};

bool att_role_valid(const char *role)
{
	return role && (strcmp(role, "controlplane") == 0 || strcmp(role, "worker-infra") == 0 ||
			strcmp(role, "worker-app") == 0);
}

void att_strlist_release(struct att_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

bool att_strlist_contains(const struct att_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

static int list_push(struct att_strlist *l, const char *s, size_t n)
{
	char **ni;

	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	ni = realloc(l->items, (l->n + 1) * sizeof(*ni));
	if (!ni)
		return ATT_E_NOMEM;
	l->items = ni;
	l->items[l->n] = att_strndup(s, n);
	if (!l->items[l->n])
		return ATT_E_NOMEM;
	l->n++;
	return 0;
}

int att_config_parse_list(const char *s, struct att_strlist *ret)
{
	struct att_strlist l = { 0 };
	const char *p = s;
	int r = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		json_error_t jerr;
		json_t *a = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
		size_t i;
		json_t *v;

		if (!a || !json_is_array(a)) {
			json_decref(a);
			return ATT_E_INVAL;
		}
		json_array_foreach(a, i, v) {
			if (!json_is_string(v)) {
				r = ATT_E_INVAL;
				break;
			}
			r = list_push(&l, json_string_value(v), json_string_length(v));
			if (r < 0)
				break;
		}
		json_decref(a);
	} else {
		const char *start = p;

		for (;; p++) {
			if (*p == ',' || *p == '\0') {
				r = list_push(&l, start, (size_t)(p - start));
				if (r < 0 || *p == '\0')
					break;
				start = p + 1;
			}
		}
	}
	if (r < 0) {
		att_strlist_release(&l);
		return r;
	}
	*ret = l;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	static const char *yes[] = { "1", "true", "yes", "on", "y", "t" };
	static const char *no[] = { "0", "false", "no", "off", "n", "f" };

	for (size_t i = 0; i < ATT_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return ATT_E_INVAL;
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	uint64_t v;

	if (att_parse_u64(s, strlen(s), (uint64_t)min, (uint64_t)max, &v) < 0)
		return ATT_E_INVAL;
	*ret = (int64_t)v;
	return 0;
}

static bool enum_ok(const char *choices, const char *s)
{
	size_t n = strlen(s);
	const char *p = choices;

	while (*p) {
		const char *e = strchr(p, '|');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, s, n) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* ITL_STRICT=true: quote-required attestation, encrypted config delivery,
 * strict EK chains (ek_source "pub" is refused where EK material comes
 * in: routes).  A setting that contradicts it is an error, not silently
 * overridden. */
static int apply_strict(struct att_config *c, att_config_getenv_fn getenv_fn, void *ud, char *reterr,
			size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
	} forced[] = {
		{ "ITL_REQUIRE_QUOTE", O(require_quote) },
		{ "ITL_REQUIRE_ENCRYPTED_DELIVERY", O(require_encrypted_delivery) },
		{ "ITL_TPM_VERIFY_CA", O(tpm_verify_ca) },
		{ "ITL_TPM_VERIFY_CA_STRICT", O(tpm_verify_ca_strict) },
	};

	if (!c->strict)
		return 0;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(forced); i++) {
		bool *b = (bool *)((char *)c + forced[i].off);

		if (getenv_fn(forced[i].name, ud) && !*b) {
			snprintf(reterr, errlen, "ITL_STRICT: true contradicts %s=false (unset it, or set it to true)",
				 forced[i].name);
			return ATT_E_INVAL;
		}
		*b = true;
	}
	return 0;
}

/* ITL_ENROLLMENT_CERT_HOURS items are role=hours (1..87600);
 * ITL_REQUIRE_TPM_KEY_ROLES holds roles; the SPIFFE trust domain is a
 * DNS-like name. */
static int cert_config_check(const struct att_config *c, char *reterr, size_t errlen)
{
	for (size_t i = 0; i < c->enrollment_cert_hours.n; i++) {
		const char *it = c->enrollment_cert_hours.items[i], *eq = strchr(it, '=');
		char role[32];
		int64_t h;

		if (!eq || (size_t)(eq - it) >= sizeof(role) ||
		    (snprintf(role, sizeof(role), "%.*s", (int)(eq - it), it), !att_role_valid(role)) ||
		    parse_int(eq + 1, 1, 87600, &h) < 0) {
			snprintf(reterr, errlen,
				 "ITL_ENROLLMENT_CERT_HOURS: expected role=hours items (roles controlplane, worker-infra, worker-app; 1-87600 hours), got '%s'",
				 it);
			return ATT_E_INVAL;
		}
	}
	for (size_t i = 0; i < c->require_tpm_key_roles.n; i++) {
		if (!att_role_valid(c->require_tpm_key_roles.items[i])) {
			snprintf(reterr, errlen,
				 "ITL_REQUIRE_TPM_KEY_ROLES: unknown role '%s' (expected controlplane, worker-infra or worker-app)",
				 c->require_tpm_key_roles.items[i]);
			return ATT_E_INVAL;
		}
	}
	if (c->enrollment_ca_key[0] && strncmp(c->enrollment_ca_key, "pkcs11:", 7) != 0) {
		snprintf(reterr, errlen, "ITL_ENROLLMENT_CA_KEY: expected a pkcs11: URI (RFC 7512) or nothing (the key file in ITL_ENROLLMENT_CA_DIR)");
		return ATT_E_INVAL;
	}
	for (const char *p = c->spiffe_trust_domain; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_') ||
		    p - c->spiffe_trust_domain >= 255) {
			snprintf(reterr, errlen,
				 "ITL_SPIFFE_TRUST_DOMAIN: expected a trust domain name of lowercase letters, digits, '.', '-', '_', got '%s'",
				 c->spiffe_trust_domain);
			return ATT_E_INVAL;
		}
	}
	return 0;
}

int att_config_weaknesses(const struct att_config *c, const char *out[], int max)
{
	int n = 0;

	if (!c->require_quote && n < max)
		out[n++] = "configs are served to machines that proved nothing but an EK certificate (public data): a machine without a bound AK attests with its EK certificate alone (set ITL_REQUIRE_QUOTE=true or ITL_STRICT=true)";
	if (!c->strict && n < max)
		out[n++] = "ek_source \"pub\" (a bare public key, no certificate) is accepted (ITL_STRICT=true refuses it)";
	if (!c->tpm_verify_ca_strict && n < max)
		out[n++] = "EK certificates that do not chain to a TPM manufacturer root are accepted (ITL_TPM_VERIFY_CA_STRICT=true refuses them)";
	if (!c->require_encrypted_delivery && n < max)
		out[n++] = "configs may be delivered in plaintext to the holder of a config token (ITL_REQUIRE_ENCRYPTED_DELIVERY=true refuses that)";
	return n;
}

int64_t att_config_cert_seconds(const struct att_config *c, const char *role)
{
	size_t rl = role ? strlen(role) : 0;

	for (size_t i = 0; i < c->enrollment_cert_hours.n; i++) {
		const char *it = c->enrollment_cert_hours.items[i];
		int64_t h;

		if (rl && strncmp(it, role, rl) == 0 && it[rl] == '=' && parse_int(it + rl + 1, 1, 87600, &h) == 0)
			return h * 3600;
	}
	return c->enrollment_cert_days * 86400;
}

static const char *env_lookup(const char *name, void *ud)
{
	(void)ud;
	return getenv(name);
}

/* One variable's value (val: set or the default) into its field of c. */
static int parse_var(struct att_config *c, const struct cfg_var *v, const char *val, char *reterr, size_t errlen)
{
	void *field = (char *)c + v->off;
	int r = 0;

	switch (v->type) {
	case CFG_STR:
	case CFG_SECRET:
		*(char **)field = att_strdup(val);
		if (!*(char **)field)
			r = ATT_E_NOMEM;
		break;
	case CFG_URL: {
		size_t n = strlen(val);
		char *s;

		while (n && val[n - 1] == '/')
			n--;
		if (strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0) {
			snprintf(reterr, errlen, "%s: expected an http:// or https:// URL, got '%s'",
				 v->name, val);
			r = ATT_E_INVAL;
			break;
		}
		s = att_strndup(val, n);
		if (!s)
			r = ATT_E_NOMEM;
		*(char **)field = s;
		break;
	}
	case CFG_ENUM:
		if (!enum_ok(v->choices, val)) {
			snprintf(reterr, errlen, "%s: expected one of %s, got '%s'", v->name,
				 v->choices, val);
			r = ATT_E_INVAL;
			break;
		}
		*(char **)field = att_strdup(val);
		if (!*(char **)field)
			r = ATT_E_NOMEM;
		break;
	case CFG_BOOL:
		if (parse_bool(val, (bool *)field) < 0) {
			snprintf(reterr, errlen, "%s: expected a boolean (true/false), got '%s'",
				 v->name, val);
			r = ATT_E_INVAL;
		}
		break;
	case CFG_INT:
		if (parse_int(val, v->min, v->max, (int64_t *)field) < 0) {
			snprintf(reterr, errlen,
				 "%s: expected an integer between %lld and %lld, got '%s'", v->name,
				 (long long)v->min, (long long)v->max, val);
			r = ATT_E_INVAL;
		}
		break;
	case CFG_LIST:
		if (att_config_parse_list(val, (struct att_strlist *)field) < 0) {
			snprintf(reterr, errlen,
				 "%s: expected a comma-separated list or a JSON array of strings, got '%s'",
				 v->name, val);
			r = ATT_E_INVAL;
		}
		break;
	}
	return r;
}

int att_config_load(struct att_config *ret, att_config_getenv_fn getenv_fn, void *ud,
		    char *reterr, size_t errlen)
{
	struct att_config c;
	int r = 0;

	memset(&c, 0, sizeof(c));
	if (!getenv_fn)
		getenv_fn = env_lookup;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(vars); i++) {
		const struct cfg_var *v = &vars[i];
		const char *val = getenv_fn(v->name, ud);

		if (!val)
			val = v->def;
		r = parse_var(&c, v, val, reterr, errlen);
		if (r < 0)
			goto out;
	}
	r = apply_strict(&c, getenv_fn, ud, reterr, errlen);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < c.dual_control_roles.n; i++) {
		if (!att_role_valid(c.dual_control_roles.items[i])) {
			snprintf(reterr, errlen,
				 "ITL_DUAL_CONTROL_ROLES: unknown role '%s' (expected controlplane, worker-infra or worker-app)",
				 c.dual_control_roles.items[i]);
			r = ATT_E_INVAL;
			goto out;
		}
	}
	if (c.heartbeat_missed_seconds && c.heartbeat_missed_seconds <= c.contact_resolution_seconds) {
		snprintf(reterr, errlen,
			 "ITL_HEARTBEAT_MISSED_SECONDS: must be 0 (off) or larger than ITL_CONTACT_RESOLUTION_SECONDS (%lld), got %lld",
			 (long long)c.contact_resolution_seconds, (long long)c.heartbeat_missed_seconds);
		r = ATT_E_INVAL;
		goto out;
	}
	r = cert_config_check(&c, reterr, errlen);
	if (r < 0)
		goto out;
	if (c.contact_silent_seconds <= c.contact_resolution_seconds) {
		snprintf(reterr, errlen,
			 "ITL_CONTACT_SILENT_SECONDS: must be larger than ITL_CONTACT_RESOLUTION_SECONDS (%lld), got %lld",
			 (long long)c.contact_resolution_seconds, (long long)c.contact_silent_seconds);
		r = ATT_E_INVAL;
		goto out;
	}
	if (strncmp(c.db_url, "sqlite:///", 10) != 0 && strncmp(c.db_url, "postgresql://", 13) != 0 &&
	    strncmp(c.db_url, "postgres://", 11) != 0) {
		snprintf(reterr, errlen,
			 "ITL_DB_URL: expected sqlite:///<path> or postgresql://..., got '%s'", c.db_url);
		r = ATT_E_INVAL;
		goto out;
	}
	if (c.iso_url[0] && strncmp(c.iso_url, "http://", 7) != 0 &&
	    strncmp(c.iso_url, "https://", 8) != 0) {
		snprintf(reterr, errlen, "ITL_ISO_URL: expected an http:// or https:// URL, got '%s'",
			 c.iso_url);
		r = ATT_E_INVAL;
		goto out;
	}
	if (c.audit_tsa_url[0] && strncmp(c.audit_tsa_url, "http://", 7) != 0 &&
	    strncmp(c.audit_tsa_url, "https://", 8) != 0) {
		snprintf(reterr, errlen, "ITL_AUDIT_TSA_URL: expected an http:// or https:// URL, got '%s'",
			 c.audit_tsa_url);
		r = ATT_E_INVAL;
		goto out;
	}
	if (c.shared_secret_master_key[0] &&
	    (strlen(c.shared_secret_master_key) != 64 ||
	     !att_is_hex(c.shared_secret_master_key, 64))) {
		snprintf(reterr, errlen, "ITL_SHARED_SECRET_MASTER_KEY: expected 64 hex characters (32 bytes)");
		r = ATT_E_INVAL;
		goto out;
	}
out:
	if (r < 0) {
		att_config_release(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void att_config_release(struct att_config *c)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(vars); i++) {
		void *field = (char *)c + vars[i].off;

		switch (vars[i].type) {
		case CFG_SECRET:
			if (*(char **)field)
				att_wipe(*(char **)field, strlen(*(char **)field));
			/* fall through */
		case CFG_STR:
		case CFG_URL:
		case CFG_ENUM:
			free(*(char **)field);
			*(char **)field = NULL;
			break;
		case CFG_LIST:
			att_strlist_release((struct att_strlist *)field);
			break;
		default:
			break;
		}
	}
}

void att_config_dump(const struct att_config *c, int fd)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(vars); i++) {
		const void *field = (const char *)c + vars[i].off;

		switch (vars[i].type) {
		case CFG_SECRET:
			dprintf(fd, "%s=%s\n", vars[i].name,
				(*(char *const *)field)[0] ? "(set)" : "(empty)");
			break;
		case CFG_STR:
		case CFG_URL:
		case CFG_ENUM:
			dprintf(fd, "%s=%s\n", vars[i].name, *(char *const *)field);
			break;
		case CFG_BOOL:
			dprintf(fd, "%s=%s\n", vars[i].name, *(const bool *)field ? "true" : "false");
			break;
		case CFG_INT:
			dprintf(fd, "%s=%lld\n", vars[i].name, (long long)*(const int64_t *)field);
			break;
		case CFG_LIST: {
			const struct att_strlist *l = field;

			dprintf(fd, "%s=", vars[i].name);
			for (size_t k = 0; k < l->n; k++)
				dprintf(fd, "%s%s", k ? "," : "", l->items[k]);
			dprintf(fd, "\n");
			break;
		}
		}
	}
}
