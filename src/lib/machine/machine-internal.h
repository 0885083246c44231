/* machine-internal.h - helpers shared by the files of src/lib/machine/
 * (the public interface is machine.h).  Nothing outside that folder
 * includes this header.  Each section names the file that defines it. */
#ifndef ATT_MACHINE_INTERNAL_H
#define ATT_MACHINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "machine/machine.h"

/* log categories */
#define LOGR "attestd.registration"
#define LOGA "attestd.attestation"
#define LOGM "attestd.machines"
#define LOGC "attestd.config"
#define LOGT "attestd.tpm"

/* ---- errors and transactions (registry.c) ------------------------------- */

void att_machine_set_err(char *reterr, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* ---- rows (registry.c) -------------------------------------------------- */

/* The columns a machine row starts with.  NULL is stored as NULL, except
 * for the hardware claims ("unknown") and cluster_id ("default"). */
struct att_machine_row {
	const char *machine_id;
	const char *ek_fingerprint, *ek_fingerprint_legacy, *ek_fingerprint_agent;
	const char *ek_source, *ek_cert_b64, *ek_key_type, *ek_issuer;
	const char *hw_uuid, *hw_mac, *hw_serial, *hw_product;
	const char *role, *status, *cluster_id;
};
int att_machine_insert_row(struct att_dbc *c, const struct att_machine_row *row);
/* o[k] = v, or null when v is NULL. */
void att_machine_json_set_str(json_t *o, const char *k, const char *v);
/* Re-read the row of m (same machine_id) into m. */
int att_machine_reload(struct att_dbc *c, struct att_machine *m);

/* ---- event outbox (outbox.c) -------------------------------------------- */

/* Queue a lifecycle event for the machine in the open transaction.  meta
 * (may be NULL) is consumed. */
int att_machine_outbox(struct att_dbc *c, const char *event, const struct att_machine *m,
		       const char *new_status, json_t *meta);

/* ---- config tokens (config_token.c) ------------------------------------- */

/* Replace every config token of the machine by a new one bound to state. */
int att_machine_token_issue(const struct att_svc *svc, struct att_dbc *c, const char *machine_id,
			    const char *state, char out[64]);
/* Revoke every config token of the machine. */
int att_machine_tokens_drop(struct att_dbc *c, const char *machine_id);

/* ---- new EKs (register.c) ----------------------------------------------- */

/* The verdict of the EK chain check (ITL_TPM_VERIFY_CA). */
struct att_machine_chain {
	const char *verified;	/* "1", "0", or NULL when not checked */
	char error[160];
};

/* ---- bounds on unauthenticated writes (ratelimit.c) --------------------- */

/* One unit of the source's budget, inside the write's transaction (0, or
 * ATT_E_LIMIT with detail); authenticated actors are not limited. */
int att_unauth_write_take(const struct att_svc *svc, struct att_dbc *c, const struct att_actor *actor,
			  char *reterr, size_t errlen);
/* ITL_MAX_PENDING for an unauthenticated new machine (0 or ATT_E_LIMIT). */
int att_pending_cap_check(const struct att_svc *svc, struct att_dbc *c, const struct att_actor *actor,
			  char *reterr, size_t errlen);

/* Claimed hardware details that differ from the row (absent claims do
 * not); and writing them with an audit entry naming the fields (register.c). */
bool att_machine_hw_changed(const struct att_node_claims *cl, const struct att_machine *m);
int att_machine_hw_update(struct att_dbc *c, struct att_machine *m, const struct att_node_claims *cl,
			  const char *action, const char *why, const struct att_actor *actor);

/* Store the verdict and the TPM identity on the machine row. */
int att_machine_store_chain(struct att_dbc *c, const char *machine_id, const struct att_ek *ek,
			   const struct att_machine_chain *cs);
int att_machine_chain_check(const struct att_svc *svc, struct att_dbc *c,
			    const struct att_node_claims *cl, struct att_machine_chain *ret,
			    char *reterr, size_t errlen);
/* Insert a new machine row for the EK and read it back into ret. */
int att_machine_insert(struct att_dbc *c, const struct att_ek *ek, const struct att_node_claims *cl,
		       const struct att_machine_chain *cs, const char *status, const char *role,
		       struct att_machine *ret);
/* Audit (action, detail) and queue node.registered for a new row. */
int att_machine_announce_new(struct att_dbc *c, const struct att_machine *m, const char *action,
			     const char *detail, const struct att_actor *actor);
/* A receipt-imported row (no EK fingerprint) meets its EK material for
 * the first time: bind it, audit, re-read m. */
int att_machine_bind_ek(struct att_dbc *c, struct att_machine *m, const struct att_ek *ek,
			const struct att_node_claims *cl, const struct att_machine_chain *cs,
			const struct att_actor *actor);

/* ---- operator transitions (transition.c) -------------------------------- */

/* One state change on a row loaded under the write lock.  Returns 0, a
 * client error (ATT_E_CONFLICT, ATT_E_INVAL, ATT_E_FORBIDDEN, detail in
 * reterr) or another negative att_err (a database failure). */
typedef int (*att_machine_transition_fn)(const struct att_svc *svc, struct att_dbc *c,
					 struct att_machine *m, const void *arg,
					 const struct att_actor *actor, char *reterr, size_t errlen);

/* Load the row under the write lock, run fn, re-read, commit. */
int att_machine_transition_run(const struct att_svc *svc, const char *machine_id,
			       att_machine_transition_fn fn, const void *arg,
			       const struct att_actor *actor, struct att_machine *ret, char *reterr,
			       size_t errlen);

#endif
