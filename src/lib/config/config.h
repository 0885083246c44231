/* config.h - attestd configuration from ITL_* environment variables.
 *
 * One declarative table (config.c) names each variable, its type, its
 * default and its bounds.  att_config_load() parses everything into a
 * fresh struct; the first invalid value fails the load with a message
 * naming the variable.  docs/configuration.md lists every variable. */
#ifndef ATT_CONFIG_CONFIG_H
#define ATT_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct att_strlist {
	char **items;
	size_t n;
};

struct att_config {
	/* service */
	char *listen;
	char *db_url;
	char *service_url;
	int64_t threads;
	int64_t db_pool_size;
	int64_t connection_limit;
	int64_t connection_limit_per_client;	/* 0: none */
	int64_t header_timeout_seconds;		/* request line + headers, total */
	struct att_strlist trusted_proxies;	/* addresses/CIDRs whose X-Forwarded-Proto counts */
	int64_t max_body_bytes;
	int64_t max_unauth_body_bytes;
	char *log_level;
	char *log_format;
	/* operator authentication */
	char *admin_token;
	char *break_glass_token;
	char *registration_token;
	char *oidc_issuer;
	char *oidc_audience;
	char *oidc_operator_role;
	bool oidc_enabled;
	struct att_strlist oidc_role_claims;
	struct att_strlist oidc_algorithms;
	struct att_strlist oidc_allowed_clients;
	int64_t oidc_leeway_seconds;
	int64_t oidc_jwks_cache_seconds;
	int64_t oidc_jwks_min_refresh_seconds;
	int64_t oidc_http_timeout_seconds;
	char *oidc_ca_file;
	bool oidc_allow_http;
	struct att_strlist dual_control_roles;
	int64_t dual_control_quorum;
	int64_t dual_control_window_seconds;
	/* Talos / Image Factory */
	char *factory_url;
	struct att_strlist factory_extensions;
	int64_t factory_timeout_seconds;
	char *talos_version;
	char *installer_image;
	char *iso_url;
	char *config_cache_dir;
	int64_t config_token_ttl_seconds;
	/* enrollment CA */
	char *enrollment_ca_dir;
	int64_t enrollment_cert_days;
	char *enrollment_ca_algorithm;
	char *enrollment_ca_key;			/* "" or a pkcs11: URI (may hold a PIN) */
	char *pkcs11_module;
	struct att_strlist enrollment_cert_hours;	/* role=hours overrides */
	char *spiffe_trust_domain;			/* "" = no SPIFFE URI SAN */
	struct att_strlist require_tpm_key_roles;
	int64_t crl_validity_hours;
	/* TPM trust */
	bool tpm_verify_ca;
	bool tpm_verify_ca_strict;
	char *tpm_ca_bundle_dir;
	bool strict;		/* ITL_STRICT: forces the four below (config.c) */
	bool require_nonce;
	bool require_quote;
	int64_t nonce_ttl_seconds;
	int64_t nonce_capacity;	/* ignored: challenges are stateless (nonce.c) */
	/* unauthenticated writes (ratelimit.c) */
	int64_t unauth_write_limit;	/* per source and window; 0: off */
	int64_t unauth_write_window_seconds;
	int64_t max_pending;		/* pending_approval machines; 0: no cap */
	int64_t sweep_interval_seconds;
	int64_t audit_checkpoint_interval_seconds;	/* 0: no periodic checkpoints */
	char *audit_tsa_url;				/* RFC 3161 TSA; "" when none */
	/* transport */
	bool high_assurance;
	bool require_encrypted_delivery;
	char *tls_min_version;
	char *tls_ciphers;
	/* fleet view and web dashboard (docs/dashboard.md) */
	int64_t contact_resolution_seconds;
	int64_t contact_silent_seconds;
	bool ui_enabled;
	char *ui_oidc_client_id;
	char *ui_oidc_scope;
	char *ui_oidc_resource;
	int64_t ui_poll_seconds;
	/* agent attestation policies (docs/attestation-policies.md) */
	char *agent_trust_domain;
	int64_t agent_token_ttl_seconds;
	bool agent_allow_private;	/* http_dns/extension may reach loopback/private addresses */
	/* extensions */
	char *pulumi_token;
	char *pulumi_org;
	bool pulumi_enabled;
	/* read by the pulumi_state built-in itself (environment); listed
	 * here so that they are validated and shown by --check-config */
	char *pulumi_master_key;
	int64_t pulumi_max_body_bytes;
	int64_t pulumi_max_checkpoint_bytes;
	int64_t pulumi_lease_seconds;
	int64_t pulumi_delta_cutoff_bytes;
	char *pulumi_cli;
	char *pulumi_deploy_backend_url;
	bool pulumi_deploy_allow_file;
	int64_t pulumi_deploy_timeout_seconds;
	int64_t pulumi_deploy_log_bytes;
	char *pulumi_deploy_sandbox;	/* auto|bwrap|user|none */
	char *pulumi_deploy_user;
	char *pulumi_bwrap;
	char *pulumi_previous_master_key;
	char *shared_secret_master_key;
	char *shared_secret_passphrase;
	/* event delivery (docs/events.md) */
	int64_t event_max_attempts;
	int64_t event_retry_base_ms;
	int64_t event_retry_max_seconds;
	int64_t event_hook_timeout_seconds;
	int64_t event_partitions;
	int64_t event_poll_ms;
	int64_t heartbeat_missed_seconds;	/* 0: node.heartbeat_missed off */
	int64_t secret_max_bytes;	/* secret vault (docs/secrets.md) */
	int64_t secrets_per_machine;
	/* auto-approval (docs/auto-approval.md) */
	char *auto_approve_rules_file;
	char *auto_approve_webhook_url;
	char *auto_approve_webhook_secret;
	int64_t auto_approve_webhook_timeout_seconds;
	int64_t auto_approve_webhook_max_per_hour;
	bool auto_approve_webhook_allow_http;
	char *extensions_dir;		/* every *.so in it is loaded */
	struct att_strlist extensions;	/* extension .so paths */
	char *trusted_exporters;	/* PEM CA bundle: whose air-gap bundles import accepts (docs/airgap.md) */
};

/* getenv-like lookup so tests can feed their own environment. */
typedef const char *(*att_config_getenv_fn)(const char *name, void *ud);

/* Load from the process environment (getenv_fn NULL) or a custom
 * lookup.  On error returns ATT_E_INVAL and writes a message naming
 * the variable into reterr (errlen bytes). */
int att_config_load(struct att_config *ret, att_config_getenv_fn getenv_fn, void *ud,
		    char *reterr, size_t errlen);
void att_config_release(struct att_config *c);
/* Lifetime of an enrollment certificate for role, in seconds:
 * ITL_ENROLLMENT_CERT_HOURS for the role, else ITL_ENROLLMENT_CERT_DAYS. */
int64_t att_config_cert_seconds(const struct att_config *c, const char *role);

/* Parse "a,b" or ["a","b"] into list (exposed for tests). */
int att_config_parse_list(const char *s, struct att_strlist *ret);
bool att_strlist_contains(const struct att_strlist *l, const char *s);
void att_strlist_release(struct att_strlist *l);

/* Print every variable with its effective value (secrets masked). */
void att_config_dump(const struct att_config *c, int fd);
/* What this configuration lets an attacker get away with, one sentence
 * each (--check-config, /readyz); returns how many were stored. */
int att_config_weaknesses(const struct att_config *c, const char *out[], int max);

/* Machine roles known to the service. */
bool att_role_valid(const char *role);

#endif
