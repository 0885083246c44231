/* attest.c - POST /api/v1/attest: a read-only poll answers the states
 * that need no write; everything else is one write transaction that finds
 * or creates the machine for the EK, checks the quote evidence, gates on
 * the role's PCR policy, issues the config token (registered -> attested),
 * and audits and queues the event. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

/* ---- answers -------------------------------------------------------------- */

struct attest_answer {
	const char *status;
	const char *action;
	const char *message;
};

static const struct attest_answer answer_pending = {
	"pending_approval", "none", "Machine awaiting operator approval"
};
static const struct attest_answer answer_locked = {
	"locked", "lock", "Machine is temporarily locked — contact operator to unlock"
};
static const struct attest_answer answer_revoked = { "revoked", "none", "Machine has been revoked" };
static const struct attest_answer answer_wipe = {
	"revoked", "wipe", "Machine has been revoked — wipe initiated"
};
static const struct attest_answer answer_already = { "already_attested", "none", "Machine already attested" };
static const struct attest_answer answer_created = {
	"pending_approval", "none", "Machine not pre-registered — awaiting operator approval"
};
static const struct attest_answer answer_attested = {
	"attested", "apply-config", "Attestation successful — fetch config_url and apply with talosctl apply-config"
};

static void set_answer(struct att_node_result *res, const struct attest_answer *a)
{
	res->status = a->status;
	res->action = a->action;
	res->message = a->message;
}

/* The states whose answer needs no write: awaiting approval, locked,
 * revoked with no wipe to deliver, attested with the config delivered. */
static const struct attest_answer *answer_without_write(const struct att_machine *m)
{
	const char *st = M(m, STATUS);

	if (strcmp(st, "pending_approval") == 0)
		return &answer_pending;
	if (strcmp(st, "locked") == 0)
		return &answer_locked;
	if (strcmp(st, "revoked") == 0 && !m->wipe_pending)
		return &answer_revoked;
	if (strcmp(st, "attested") == 0 && M(m, CONFIG_DELIVERED_AT))
		return &answer_already;
	return NULL;
}

/* ---- the read-only poll --------------------------------------------------- */

/* The machine bound to the EK, with only the columns the poll's answer
 * needs: 0, ATT_E_NOTFOUND or another negative att_err. */
static int attest_poll(struct att_dbc *c, const struct att_ek *ek, struct att_machine *ret)
{
	static const enum att_mcol cols[] = { MC_MACHINE_ID, MC_EK_FINGERPRINT, MC_STATUS,
					      MC_HOSTNAME, MC_ROLE, MC_CONFIG_DELIVERED_AT };
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT id, wipe_pending, machine_id, ek_fingerprint, status, hostname, role,"
			  " config_delivered_at FROM machines WHERE ek_fingerprint = ?",
			  "s", ek->fp);
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		ret->id = att_stmt_int(s, 0);
		ret->wipe_pending = att_stmt_int(s, 1) != 0;
		r = 0;
		for (size_t i = 0; i < ATT_ARRAY_SIZE(cols); i++) {
			const char *v = att_stmt_text(s, (int)i + 2);

			if (v && !(ret->col[cols[i]] = att_strdup(v)))
				r = ATT_E_NOMEM;
		}
	} else if (r == 0) {
		r = ATT_E_NOTFOUND;
	}
	att_stmt_done(s);
	return r;
}

/* ---- the write path ------------------------------------------------------- */

/* Remember the TPM's boot counters from a verified quote: a higher
 * resetCount is a reboot (a replayed quote cannot pass the nonce check). */
static int record_quote(struct att_dbc *c, const struct att_machine *m, const struct att_quote_evidence *q,
			const char *ts)
{
	int r;

	if (M(m, TPM_RESET_COUNT) && strtoll(M(m, TPM_RESET_COUNT), NULL, 10) != (long long)q->reset_count)
		att_log_info(LOGA, "Machine %s rebooted: TPM resetCount %s -> %u", M(m, MACHINE_ID),
			     M(m, TPM_RESET_COUNT), q->reset_count);
	r = att_dbc_exec(c, "UPDATE machines SET tpm_reset_count = ?, tpm_restart_count = ?, last_quote_at = ? WHERE id = ?",
			 "iisi", (int64_t)q->reset_count, (int64_t)q->restart_count, ts, m->id);
	return r < 0 ? r : 0;
}

/* The role's PCR policy, if any, before a config token is issued:
 * ATT_E_INVAL (nothing written) when there is no quote, ATT_E_FORBIDDEN
 * after auditing the refusal when quoted values miss the policy. */
static int pcr_policy_gate(struct att_dbc *c, const struct att_machine *m, const struct att_node_claims *cl,
			   const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	json_t *pcrs = NULL;
	int r;

	r = att_dbc_query(c, &s, "SELECT policy FROM pcr_policies WHERE role = ?", "s", M(m, ROLE));
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if ((r = att_stmt_next(s)) == 1)
		pcrs = json_loads(att_stmt_text(s, 0), 0, NULL);
	att_stmt_done(s);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (r == 0)
		return 0;
	if (!pcrs)
		return att_machine_db_fail(ATT_E_NOMEM, reterr, errlen);
	if (!cl->quote) {
		json_decref(pcrs);
		att_machine_set_err(reterr, errlen,
				    "pcr_quote: role '%s' has a PCR policy — attest with a quote (bind an AK with POST /api/v1/machines/%s/ak-activate first)",
				    M(m, ROLE), M(m, MACHINE_ID));
		return ATT_E_INVAL;
	}
	r = att_pcr_policy_check(pcrs, M(m, ROLE), cl->quote->pcrs, reterr, errlen);
	json_decref(pcrs);
	if (r == 0)
		return 0;
	att_log_warning(LOGA, "Attestation of machine %s refused: %s", M(m, MACHINE_ID), reterr);
	r = att_audit_append(c, actor->name, "attest_rejected", M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS), reterr,
			     actor->source_ip);
	return r < 0 ? att_machine_db_fail(r, reterr, errlen) : ATT_E_FORBIDDEN;
}

/* One attestation in one write transaction.  Each step returns 0 to go
 * on, ATTEST_ANSWERED when res holds the answer and the transaction is
 * committed, or a negative att_err with the transaction rolled back and
 * the detail in reterr. */
#define ATTEST_ANSWERED 1

struct attest_tx {
	const struct att_svc *svc;
	struct att_dbc *c;
	const struct att_ek *ek;
	const struct att_node_claims *cl;
	const struct att_actor *actor;
	struct att_node_result *res;	/* res->m: the row under the write lock */
	char ts[32];			/* when, once the row is loaded */
	bool has_ak;			/* the machine has a bound AK */
	char *reterr;
	size_t errlen;
};

/* A database failure, or a lost race on the same machine (ATT_E_CONFLICT). */
static int attest_failed(struct attest_tx *tx, int r)
{
	att_dbc_rollback(tx->c);
	if (r == ATT_E_CONFLICT) {
		att_machine_set_err(tx->reterr, tx->errlen, "Concurrent attestation of the same machine — retry");
		return r;
	}
	att_log_error(LOGA, "attestation failed: %s (%s)", att_strerror(r), att_dbc_errmsg(tx->c));
	return att_machine_db_fail(r, tx->reterr, tx->errlen);
}

/* A refusal whose detail is in reterr already. */
static int attest_refused(struct attest_tx *tx, int r)
{
	att_dbc_rollback(tx->c);
	return r;
}

/* Commit what the transaction wrote and answer a. */
static int attest_answer(struct attest_tx *tx, const struct attest_answer *a)
{
	int r = att_dbc_commit(tx->c);

	if (r < 0)
		return attest_failed(tx, r);
	set_answer(tx->res, a);
	return ATTEST_ANSWERED;
}

/* An unknown EK: a new machine awaiting approval. */
static int attest_create(struct attest_tx *tx, const struct att_machine_chain *cs)
{
	struct att_machine *m = &tx->res->m;
	int r;

	r = att_pending_cap_check(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
	if (r < 0)
		return attest_refused(tx, r);
	r = att_machine_insert(tx->c, tx->ek, tx->cl, cs, "pending_approval", "worker-app", m);
	if (r == 0)
		r = att_machine_announce_new(tx->c, m, "self_register",
					     "attestation from an unknown EK; machine created awaiting approval",
					     tx->actor);
	if (r < 0)
		return attest_failed(tx, r);
	r = attest_answer(tx, &answer_created);
	if (r != ATTEST_ANSWERED)
		return r;
	att_log_warning(LOGA, "Attestation from unknown EK %.16s... — created machine %s awaiting approval",
			tx->ek->fp, M(m, MACHINE_ID));
	tx->res->created = true;
	return r;
}

/* Step 1: the machine of the EK under the write lock.  An EK the poll did
 * not find bound has its chain verified first (before the lock); unknown,
 * it creates a machine (answered); a receipt-imported row gets the EK
 * bound.  ek_bound: the poll found the EK bound, and a binding is never
 * undone, so no chain needs verifying. */
static int attest_load(struct attest_tx *tx, bool ek_bound)
{
	struct att_machine *m = &tx->res->m;
	struct att_machine_chain cs;
	int r;

	memset(&cs, 0, sizeof(cs));
	if (!ek_bound) {
		r = att_machine_chain_check(tx->svc, tx->c, tx->cl, &cs, tx->reterr, tx->errlen);
		if (r < 0)
			return r;
	}
	r = att_dbc_begin(tx->c);
	if (r < 0)
		return attest_failed(tx, r);
	/* the write path (the read-only poll answered unchanged states): one
	 * unit of the source's unauthenticated-write budget */
	r = att_unauth_write_take(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
	if (r < 0)
		return attest_refused(tx, r);
	r = att_machine_find_by_ek(tx->c, tx->ek, m);
	if (ek_bound && (r == ATT_E_NOTFOUND || (r == 0 && !M(m, EK_FINGERPRINT))))
		return attest_failed(tx, ATT_E_CONFLICT);	/* cannot happen: bindings are permanent */
	if (r == ATT_E_NOTFOUND)
		return attest_create(tx, &cs);
	if (r == 0 && !M(m, EK_FINGERPRINT))
		r = att_machine_bind_ek(tx->c, m, tx->ek, tx->cl, &cs, tx->actor);
	if (r < 0)
		return attest_failed(tx, r);
	att_time_iso(att_now(), tx->ts);
	tx->has_ak = M(m, AK_NAME) != NULL;
	return 0;
}

/* Step 2: quote evidence.  The quote verified against the AK the handler
 * read; it must still be the machine's AK.  The TPM's boot counters are
 * recorded. */
static int attest_check_quote(struct attest_tx *tx)
{
	const struct att_quote_evidence *q = tx->cl->quote;
	const struct att_machine *m = &tx->res->m;
	int r;

	if (!q)
		return 0;
	if (!tx->has_ak || strcmp(M(m, AK_NAME), q->ak_name) != 0) {
		att_machine_set_err(tx->reterr, tx->errlen,
				    "The machine's attestation key changed during attestation — retry");
		return attest_refused(tx, ATT_E_CONFLICT);
	}
	r = record_quote(tx->c, m, q, tx->ts);
	/* a verified quote proves possession: the machine's own hardware
	 * details may change with it (otherwise only an operator changes
	 * those of an approved machine, register.c) */
	if (r == 0 && att_machine_hw_changed(tx->cl, m) && strcmp(M(m, STATUS), "locked") != 0 &&
	    strcmp(M(m, STATUS), "revoked") != 0)
		r = att_machine_hw_update(tx->c, &tx->res->m, tx->cl, "hw_updated", "attestation with a verified quote",
					  tx->actor);
	return r < 0 ? attest_failed(tx, r) : 0;
}

/* Step 3: states that get no config.  Those the poll answers (the state
 * may have changed between the read and the write lock), and a revoked
 * machine with a wipe pending: the wipe is delivered once, and that is
 * recorded - but only with TPM proof when the machine has an AK, since
 * anyone holding the public EK certificate could consume it otherwise
 * (then it is answered and nothing is recorded). */
static int attest_answer_state(struct attest_tx *tx)
{
	const struct attest_answer *a = answer_without_write(&tx->res->m);
	struct att_machine *m = &tx->res->m;
	int r;

	if (a)
		return attest_answer(tx, a);
	if (strcmp(M(m, STATUS), "revoked") != 0)
		return 0;
	if (tx->has_ak && !tx->cl->quote)
		return attest_answer(tx, &answer_wipe);
	r = att_dbc_exec(tx->c, "UPDATE machines SET wipe_pending = 0, updated_at = ? WHERE id = ?", "si", tx->ts,
			 m->id);
	if (r >= 0)
		r = att_audit_append(tx->c, tx->actor->name, "wipe_delivered", M(m, MACHINE_ID), "revoked", "revoked",
				     "action=wipe delivered to the machine", tx->actor->source_ip);
	if (r < 0)
		return attest_failed(tx, r);
	r = attest_answer(tx, &answer_wipe);
	if (r != ATTEST_ANSWERED)
		return r;
	m->wipe_pending = false;
	att_log_warning(LOGA, "Revoked machine contacted: id=%s action=wipe", M(m, MACHINE_ID));
	return r;
}

/* Step 4: the role's PCR policy (a refusal is audited and committed, and
 * answered ATT_E_INVAL), and a machine with a bound AK must quote. */
static int attest_policy_gate(struct attest_tx *tx)
{
	int r = pcr_policy_gate(tx->c, &tx->res->m, tx->cl, tx->actor, tx->reterr, tx->errlen);

	if (r == ATT_E_FORBIDDEN) {
		/* keep the audit entry of the refusal, change nothing else */
		r = att_dbc_commit(tx->c);
		return r < 0 ? attest_failed(tx, r) : ATT_E_INVAL;
	}
	if (r < 0)
		return attest_refused(tx, r);
	if (tx->has_ak && !tx->cl->quote) {
		att_machine_set_err(tx->reterr, tx->errlen,
				    "pcr_quote: machine %s has a bound attestation key — attest with a quote: GET /api/v1/attest/challenge,"
				    " then send nonce_id, pcr_quote, pcr_signature and pcr_values",
				    M(&tx->res->m, MACHINE_ID));
		return attest_refused(tx, ATT_E_INVAL);
	}
	return 0;
}

/* registered -> attested: the state, the audit entry, node.online. */
static int attest_promote(struct attest_tx *tx)
{
	const struct att_machine *m = &tx->res->m;
	int r;

	r = att_dbc_exec(tx->c,
			 "UPDATE machines SET status = 'attested', attested_at = ?, updated_at = ?,"
			 " config_delivered_at = NULL WHERE id = ? AND status = 'registered'",
			 "ssi", tx->ts, tx->ts, m->id);
	if (r < 0)
		return r;
	r = att_audit_append(tx->c, tx->actor->name, "attest", M(m, MACHINE_ID), "registered", "attested",
			     tx->cl->quote ? "EK verified; TPM quote verified with the bound AK; config token issued"
					   : "EK verified; config token issued",
			     tx->actor->source_ip);
	if (r < 0)
		return r;
	return att_machine_outbox(tx->c, "node.online", m, "attested", json_pack("{s:s}", "attested_at", tx->ts));
}

/* Step 5: a new config token; a registered machine becomes attested, an
 * attested one whose config was not delivered yet gets the token again.
 * Then the row is re-read and the transaction committed. */
static int attest_issue_config(struct attest_tx *tx)
{
	struct att_machine *m = &tx->res->m;
	int r;

	r = att_machine_token_issue(tx->svc, tx->c, M(m, MACHINE_ID), "attested", tx->res->token);
	if (r < 0)
		return attest_failed(tx, r);
	if (strcmp(M(m, STATUS), "registered") == 0)
		r = attest_promote(tx);
	else
		r = att_audit_append(tx->c, tx->actor->name, "config_token_reissued", M(m, MACHINE_ID), "attested",
				     "attested", "config not yet delivered; new config token issued",
				     tx->actor->source_ip);
	if (r >= 0)
		r = att_machine_reload(tx->c, m);
	if (r < 0)
		return attest_failed(tx, r);
	r = attest_answer(tx, &answer_attested);
	if (r == ATTEST_ANSWERED)
		att_log_info(LOGA, "Machine attested: id=%s role=%s", M(m, MACHINE_ID), M(m, ROLE));
	return r;
}

static int attest_write(const struct att_svc *svc, struct att_dbc *c, const struct att_ek *ek,
			bool ek_bound, const struct att_node_claims *cl, const struct att_actor *actor,
			struct att_node_result *res, char *reterr, size_t errlen)
{
	struct attest_tx tx = { svc, c, ek, cl, actor, res, "", false, reterr, errlen };
	int r;

	r = attest_load(&tx, ek_bound);
	if (r == 0)
		r = attest_check_quote(&tx);
	if (r == 0)
		r = attest_answer_state(&tx);
	if (r == 0)
		r = attest_policy_gate(&tx);
	if (r == 0)
		r = attest_issue_config(&tx);
	return r < 0 ? r : 0;
}

/* ---- POST /attest ----------------------------------------------------------- */

int att_machine_attest(const struct att_svc *svc, const struct att_ek *ek,
		       const struct att_node_claims *cl, const struct att_actor *actor,
		       struct att_node_result *ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_node_result res;
	const struct attest_answer *a = NULL;
	bool ek_bound;
	int r;

	memset(&res, 0, sizeof(res));
	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	/* fast path: a read-only poll for the states that need no write */
	r = attest_poll(c, ek, &res.m);
	if (r < 0 && r != ATT_E_NOTFOUND) {
		att_db_release(svc->db, c);
		att_machine_release(&res.m);
		return att_machine_db_fail(r, reterr, errlen);
	}
	ek_bound = r == 0 && M(&res.m, EK_FINGERPRINT) != NULL;
	if (ek_bound && !cl->quote)
		a = answer_without_write(&res.m);
	if (a == &answer_locked)
		att_log_warning(LOGA, "Locked machine contacted: id=%s", M(&res.m, MACHINE_ID));
	else if (a == &answer_revoked)
		att_log_warning(LOGA, "Revoked machine contacted: id=%s action=none", M(&res.m, MACHINE_ID));
	if (a) {
		set_answer(&res, a);
	} else {
		att_machine_release(&res.m);
		r = attest_write(svc, c, ek, ek_bound, cl, actor, &res, reterr, errlen);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		att_node_result_release(&res);
		return r;
	}
	*ret = res;
	return 0;
}
