/* identity.c - the agent identity a registering machine presents with
 * POST /api/v1/register or /self-register (agent_identity: the JWT from
 * POST /api/v1/agents/attest), for the auto-approval rules' attribute
 * matchers (docs/auto-approval.md).
 *
 * Verified as a token this service issued (policy/identity_verify.c) and
 * bound to the machine: an identity whose attestors included tpm_ek
 * carries tpm_ek.fingerprint, which must be the registering EK.  A token
 * that fails either check never fails the registration (reference
 * clients know nothing of it): the machine stays pending like one that
 * presented nothing, and the reason is logged and audited
 * (auto_approve_identity_refused).  Single use is enforced when a rule
 * actually approves with it (auto.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "approve/approve.h"
#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "policy/identity_verify.h"

#define LOGP "attestd.auto-approve"

static void audit_refusal(const struct att_svc *svc, const struct att_machine *m, const char *detail,
			  const char *source_ip)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c) {
		att_log_warning(LOGP, "cannot audit the refused agent identity of machine %s", M(m, MACHINE_ID));
		return;
	}
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_audit_append(c, "AUTO_APPROVE", "auto_approve_identity_refused", M(m, MACHINE_ID),
				     "pending_approval", "pending_approval", detail, source_ip);
	if (r == 0)
		r = att_dbc_commit(c);
	if (r < 0) {
		att_dbc_rollback(c);
		att_log_warning(LOGP, "cannot audit the refused agent identity of machine %s: %s", M(m, MACHINE_ID),
				att_strerror(r));
	}
	att_db_release(svc->db, c);
}

int att_auto_identity(const struct att_svc *svc, const char *token, const struct att_machine *m,
		      const char *source_ip, json_t **ret)
{
	json_t *claims = NULL;
	const char *bound, *fp = M(m, EK_FINGERPRINT);
	char why[256], detail[400];
	int r;

	*ret = NULL;
	r = att_agent_identity_verify(svc, token, &claims, why, sizeof(why));
	if (r < 0) {
		snprintf(detail, sizeof(detail), "agent identity not accepted: %s — no auto-approval by identity", why);
	} else {
		bound = json_string_value(json_object_get(json_object_get(claims, "attrs"), "tpm_ek.fingerprint"));
		if (json_object_get(json_object_get(claims, "attrs"), "tpm_ek.fingerprint") &&
		    !(bound && fp && strcasecmp(bound, fp) == 0)) {
			snprintf(detail, sizeof(detail),
				 "agent identity jti=%s is bound to another EK (tpm_ek.fingerprint %.16s…, this machine %.16s…)"
				 " — no auto-approval by identity",
				 json_string_value(json_object_get(claims, "jti")), bound ? bound : "?", fp ? fp : "?");
			r = ATT_E_FORBIDDEN;
		}
	}
	if (r < 0) {
		att_log_warning(LOGP, "machine %s: %s", M(m, MACHINE_ID), detail);
		audit_refusal(svc, m, detail, source_ip);
		json_decref(claims);
		return r;
	}
	att_log_info(LOGP, "machine %s presented agent identity %s (policy %s)", M(m, MACHINE_ID),
		     json_string_value(json_object_get(claims, "sub")),
		     json_string_value(json_object_get(claims, "policy")));
	*ret = claims;
	return 0;
}
