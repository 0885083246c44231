/* approve.h - automatic approval of new machines (docs/auto-approval.md):
 * declarative rules and an external decision webhook, for fleets of
 * disposable machines such as CI/CD build runners.
 *
 *   rules.c    the rules file (ITL_AUTO_APPROVE_RULES_FILE): loading,
 *              validation (never a role under dual control), matching,
 *              hostnames from a naming pattern
 *   auto.c     applying a decision: a rate-limit slot reserved in the
 *              database, then the ordinary approval as the operator
 *              AUTO_APPROVE:<rule>, the outcome recorded (auto_approvals)
 *   identity.c the agent identity a registering machine presents
 *              (agent_identity): verified, bound to its EK, used once
 *   webhook.c  the decision webhook: a leased background job asks an
 *              external service (HMAC-signed POST) about pending machines
 *              no rule matched; request threads never wait on it */
#ifndef ATT_APPROVE_APPROVE_H
#define ATT_APPROVE_APPROVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_config;
struct att_svc;
struct att_machine;
struct att_actor;

struct att_auto_rules;

/* Load ITL_AUTO_APPROVE_RULES_FILE (NULL *ret when unset) and check the
 * webhook settings.  ATT_E_INVAL with the rule and field named. */
int att_auto_rules_load(const struct att_config *cfg, struct att_auto_rules **ret, char *reterr, size_t errlen);
/* Parse rules from JSON text (exposed for tests). */
int att_auto_rules_parse(const struct att_config *cfg, const char *json, size_t len, struct att_auto_rules **ret,
			 char *reterr, size_t errlen);
void att_auto_rules_free(struct att_auto_rules *r);
size_t att_auto_rules_count(const struct att_auto_rules *r);

/* How a machine arrived. */
struct att_auto_context {
	bool self_register;		/* /self-register (else /register) */
	const char *token_sha256;	/* hex SHA-256 of X-Registration-Token, or NULL */
	const char *source_ip;
	const json_t *identity;		/* verified, EK-bound agent identity claims, or NULL */
};

/* The first rule matching a new pending machine, or -1. */
int att_auto_rules_match(const struct att_auto_rules *r, const struct att_machine *m,
			 const struct att_auto_context *ctx);
/* Whether rule i matches on the agent identity (attributes, policy,
 * cluster); then its approval consumes the identity (single use). */
bool att_auto_rule_uses_identity(const struct att_auto_rules *r, int i);
/* "identity jti=… sub=… cluster=… policy=… <attribute>=<value> …" (the
 * attributes rule i matched on), for the approval's audit entry. */
void att_auto_rule_identity_detail(const struct att_auto_rules *r, int i, const json_t *identity, char *out,
				   size_t outlen);
const char *att_auto_rule_name(const struct att_auto_rules *r, int i);
const char *att_auto_rule_role(const struct att_auto_rules *r, int i);
int64_t att_auto_rule_max_per_hour(const struct att_auto_rules *r, int i);
/* The rule's hostname for m (lowercase, [a-z0-9-], at most 63), or ""
 * when the rule names none.  ATT_E_INVAL when the result is no hostname. */
int att_auto_rule_hostname(const struct att_auto_rules *r, int i, const struct att_machine *m, char out[64]);
/* Expand a naming pattern ({id8}, {machine_id}, {serial}, {mac}, {uuid}). */
int att_auto_hostname_expand(const char *pattern, const struct att_machine *m, char out[64]);

/* After a new machine landed in pending_approval: the first matching
 * rule approves it (rate limit permitting) and *m is replaced by the
 * approved row (returns 1); without a match, with a webhook configured,
 * the machine is queued for the webhook (returns 0).  Failures are
 * logged and leave the machine pending (returns 0). */
int att_auto_approve_new(const struct att_svc *svc, struct att_machine *m, const struct att_auto_context *ctx);

/* Approve as AUTO_APPROVE:<rule> under the rule's hourly limit (shared by
 * rules and the webhook).  1 approved (*m replaced), 0 not (rate-limited
 * or refused, recorded and logged), < 0 database failure. */
int att_auto_apply(const struct att_svc *svc, const char *rule, int64_t max_per_hour, const char *role,
		   const char *hostname, const char *reason, struct att_machine *m, const char *source_ip);
/* The same, consuming the agent identity jti in the reservation's
 * transaction: an identity already used approves nothing (0, recorded
 * as "refused" and audited auto_approve_identity_refused). */
int att_auto_apply_identity(const struct att_svc *svc, const char *rule, int64_t max_per_hour, const char *role,
			    const char *hostname, const char *reason, struct att_machine *m, const char *source_ip,
			    const char *jti);

/* The agent identity token a new pending machine presented
 * (agent_identity): verified as this service's own (signature, iss, aud,
 * exp, nbf) and bound to the machine — a tpm_ek.fingerprint attribute
 * must be the machine's EK.  0 with *ret (the claims); otherwise < 0, the
 * reason logged and audited (auto_approve_identity_refused), and the
 * machine continues without an identity. */
int att_auto_identity(const struct att_svc *svc, const char *token, const struct att_machine *m,
		      const char *source_ip, json_t **ret);

/* The webhook's answer (untrusted): {"approve": bool, "role"?, "hostname"?, "reason"?}. */
struct att_auto_answer {
	bool approve;
	char role[32];
	char hostname[64];
	char reason[256];
};
int att_auto_answer_parse(const struct att_config *cfg, const char *body, size_t len, struct att_auto_answer *ret,
			  char *reterr, size_t errlen);

/* GET /api/v1/auto-approval: the rules (what they match, role, naming,
 * limit and approvals in the last hour), the webhook's settings and
 * queue, and the latest decisions (at most limit). */
int att_auto_status(const struct att_svc *svc, int64_t limit, json_t **ret, char *reterr, size_t errlen);

/* One round of the webhook job (worker.c): the machines queued for the
 * webhook and due.  Returns how many were decided, or < 0. */
int att_auto_webhook_run(const struct att_svc *svc);

#endif
