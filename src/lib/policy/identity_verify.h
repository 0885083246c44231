/* identity_verify.h - checking agent identity tokens this service issued
 * (identity_verify.c), for consumers outside the policy module such as
 * the auto-approval rules (docs/auto-approval.md). */
#ifndef ATT_POLICY_IDENTITY_VERIFY_H
#define ATT_POLICY_IDENTITY_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct att_svc;

/* Verify an identity token this service issued: the enrollment CA's
 * current key and its one algorithm, iss ITL_SERVICE_URL, aud
 * attestation-agent, exp/nbf/iat (30 s leeway), and the claims jti, sub,
 * cluster, policy, attrs.  0 with *ret_claims (new reference), or
 * ATT_E_AUTH with a short reason. */
int att_agent_identity_verify(const struct att_svc *svc, const char *tok, json_t **ret_claims, char *reason,
			      size_t rlen);

/* True when type names an attestor (k8s_token, tpm_ek, ...). */
bool att_agent_attestor_known(const char *type);

#endif
