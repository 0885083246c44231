/* policy.h - agent attestation policies (seed 004, docs/attestation-policies.md).
 *
 * A policy document is the seed's YAML:
 *
 *   section: AgentAttestation
 *   schema: v1
 *   spec:
 *     policies:
 *       - name: eks_cluster_policy
 *         requiredAttestors:
 *           - type: k8s_token
 *             config: { issuerURL: ... }
 *           - type: aws_iid
 *
 * stored per cluster, versioned and audited.  An agent is authorized when
 * every attestor of one policy passes (AND inside, OR across); it then
 * receives a short-lived identity carrying the attributes its attestors
 * produced, namespaced by attestor type (k8s_token.namespace, ...). */
#ifndef ATT_POLICY_POLICY_H
#define ATT_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_svc;
struct att_actor;

#define ATT_POLICY_MAX_DOC (64 * 1024)
#define ATT_POLICY_MAX_POLICIES 32
#define ATT_POLICY_MAX_ATTESTORS 8

/* Parse and strictly validate a policy document (YAML or JSON, which is
 * YAML).  On success *ret is the normalized document as JSON.  On failure
 * ATT_E_INVAL with the message naming the path, e.g.
 * "spec.policies[0].requiredAttestors[1].config.issuerURL: required". */
int att_policy_parse(const char *text, size_t len, json_t **ret, char *reterr, size_t errlen);

/* Every attestor type, NULL-terminated (for listings and docs). */
extern const char *const att_policy_types[];

/* ---- storage (store.c) ---------------------------------------------------- */

/* Store a new version of the cluster's document (audited); *ret is the
 * stored version's summary. */
int att_policy_put(const struct att_svc *svc, const char *cluster_id, const char *yaml, size_t len,
		   const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen);
/* The current version (version 0) or a given one; ATT_E_NOTFOUND when
 * the cluster has none (or it was deleted). */
int att_policy_get(const struct att_svc *svc, const char *cluster_id, int64_t version, json_t **ret,
		   char *reterr, size_t errlen);
/* Record a deletion (a version without a document). */
int att_policy_delete(const struct att_svc *svc, const char *cluster_id, const struct att_actor *actor,
		      char *reterr, size_t errlen);
/* Every version of the cluster's document, newest first, without bodies. */
int att_policy_history(const struct att_svc *svc, const char *cluster_id, json_t **ret, char *reterr,
		       size_t errlen);

/* ---- agent attestation (eval.c, identity.c) ------------------------------- */

struct att_agent_request {
	const char *cluster_id;
	const char *nonce_id;		/* optional: a /attest/challenge nonce */
	const json_t *evidence;		/* {"<type>": {...}, ...} */
	const char *source_ip;
};

/* Evaluate the cluster's policies against the evidence.  On success
 * *ret is the session: {session_id, cluster_id, policy, spiffe_id,
 * attributes, token, token_type, expires_at}.  ATT_E_FORBIDDEN when no
 * policy passed, with *ret_failures listing {policy, attestor, type,
 * reason} (safe to show the caller; the audit entry has the details). */
int att_agent_attest(const struct att_svc *svc, const struct att_agent_request *rq, json_t **ret,
		     json_t **ret_failures, char *reterr, size_t errlen);

/* Recent sessions, newest first, optionally of one cluster. */
int att_agent_sessions(const struct att_svc *svc, const char *cluster_id, int64_t page, int64_t per_page,
		       json_t **ret, char *reterr, size_t errlen);

/* The public keys that sign agent identity tokens, as a JWK set. */
int att_agent_jwks(const struct att_svc *svc, json_t **ret, char *reterr, size_t errlen);

#endif
