/* policy-internal.h - what the files of src/lib/policy/ share: the
 * attestor table (each attestor's config schema, evidence check and
 * attributes) and the helpers the attestors have in common. */
#ifndef ATT_POLICY_INTERNAL_H
#define ATT_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy/policy.h"

#define ATT_AGENT_NONCE_LEN 32

/* What an attestor may know about the request. */
struct att_pol_ctx {
	const struct att_svc *svc;
	const char *cluster_id;
	const uint8_t *nonce;		/* NULL: the request carried no nonce */
	const char *nonce_id;
	int64_t now;
};

enum att_pol_kind {
	PK_STR,		/* non-empty string, at most 8 KiB */
	PK_STRLIST,	/* non-empty list of non-empty strings */
	PK_BOOL,
	PK_INT,		/* non-negative integer */
	PK_URL,		/* http:// or https:// URL */
};

struct att_pol_field {
	const char *name;
	enum att_pol_kind kind;
	bool required;
};

/* Check a passing attestor's evidence.  Returns 0 and fills attrs
 * (un-namespaced keys) or a negative att_err with reason: the first
 * word(s) up to ": " are safe for the caller, the rest goes to audit. */
typedef int (*att_pol_verify_fn)(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
				 json_t *attrs, char *reason, size_t rlen);
/* Semantic checks of a config at apply time (keys parse, URLs). */
typedef int (*att_pol_check_fn)(const json_t *config, char *reason, size_t rlen);

struct att_attestor {
	const char *type;
	const struct att_pol_field *fields;
	size_t nfields;
	att_pol_check_fn check;
	att_pol_verify_fn verify;
};

const struct att_attestor *att_attestor_find(const char *type);

/* The attestors, by file. */
extern const struct att_attestor att_attestor_k8s_token, att_attestor_gcp_iit, att_attestor_azure_msi,
	att_attestor_aws_token;						/* attest_jwt.c */
extern const struct att_attestor att_attestor_x509pop, att_attestor_aws_iid,
	att_attestor_azure_imds;					/* attest_x509.c */
extern const struct att_attestor att_attestor_ssh_pop;			/* attest_ssh.c */
extern const struct att_attestor att_attestor_http_dns, att_attestor_extension;	/* attest_http.c */
extern const struct att_attestor att_attestor_tpm_ek;			/* attest_tpm.c */

/* ---- shared helpers (eval.c) ---------------------------------------------- */

#define POL_FAIL(code, ...) (snprintf(reason, rlen, __VA_ARGS__), (code))

/* evidence[key] as a string of at most max bytes, or NULL with reason set. */
const char *att_pol_evidence_str(const json_t *evidence, const char *key, size_t max, char *reason, size_t rlen);
/* True when s is in the config list key (absent list: true). */
bool att_pol_allowed(const json_t *config, const char *key, const char *s);
/* The bytes a proof-of-possession signature covers: a fixed label, the
 * attestor type and the nonce (docs/attestation-policies.md). */
int att_pol_pop_message(const struct att_pol_ctx *ctx, const char *type, uint8_t *out, size_t outlen,
			size_t *ret_len, char *reason, size_t rlen);
/* base64 (standard or URL-safe, padding optional) into a malloc'd buffer. */
uint8_t *att_pol_b64dec(const char *s, size_t *ret_len);

/* ---- identity.c ------------------------------------------------------------- */

/* Record the session (audited) and sign its token; *ret as att_agent_attest. */
int att_agent_issue(const struct att_svc *svc, const struct att_agent_request *rq, const char *policy,
		    json_t *attributes, json_t **ret, char *reterr, size_t errlen);
int att_agent_audit_failure(const struct att_svc *svc, const struct att_agent_request *rq, const char *detail);

/* ---- X.509-SVIDs (svid.c) --------------------------------------------------- */

struct att_ca_leaf;
struct att_dbc;
/* Certify key for the session (no database access). */
int att_agent_svid_make(const struct att_svc *svc, EVP_PKEY *key, const char *sid, const char *spiffe,
			const char *attrs, struct att_ca_leaf *ret, char *reterr, size_t errlen);
/* In the session's transaction: the issued_certs row and the audit entry
 * agent_cert_issued. */
int att_agent_svid_record(struct att_dbc *c, const struct att_ca_leaf *l, const struct att_agent_request *rq,
			  const char *sid, const char *spiffe);
/* The response's "svid" object. */
json_t *att_agent_svid_json(const struct att_svc *svc, const struct att_ca_leaf *l, const char *spiffe);
void att_agent_svid_log(const struct att_ca_leaf *l, const char *sid, const char *spiffe);

/* ---- HTTP for attestors (attest_http.c) ----------------------------------- */

/* GET or POST (body != NULL, JSON) url with a timeout; the address the
 * host resolves to must not be loopback/private/link-local unless
 * allow_private.  *ret_body malloc'd, NUL-terminated, at most max bytes. */
int att_pol_http(const char *method, const char *url, const char *body, bool allow_private, long timeout_ms,
		 size_t max, long *ret_status, char **ret_body, char *reason, size_t rlen);

#endif
