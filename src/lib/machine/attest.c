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

static int attest_write(const struct att_svc *svc, struct att_dbc *c, const struct att_ek *ek,
			bool ek_bound, const struct att_node_claims *cl, const struct att_actor *actor,
			struct att_node_result *res, char *reterr, size_t errlen);

int att_machine_attest(const struct att_svc *svc, const struct att_ek *ek,
		       const struct att_node_claims *cl, const struct att_actor *actor,
		       struct att_node_result *ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_node_result res;
	const char *st;
	bool ek_bound;
	int r;

	memset(&res, 0, sizeof(res));
	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	/* fast path: read-only poll for states that need no write; only the
	 * columns the answer needs are read */
	{
		struct att_stmt *s;

		r = att_dbc_query(c, &s,
				  "SELECT id, wipe_pending, machine_id, ek_fingerprint, status, hostname, role,"
				  " config_delivered_at FROM machines WHERE ek_fingerprint = ?",
				  "s", ek->fp);
		if (r == 0) {
			r = att_stmt_next(s);
			if (r == 1) {
				static const enum att_mcol cols[] = { MC_MACHINE_ID, MC_EK_FINGERPRINT, MC_STATUS,
								      MC_HOSTNAME, MC_ROLE, MC_CONFIG_DELIVERED_AT };

				res.m.id = att_stmt_int(s, 0);
				res.m.wipe_pending = att_stmt_int(s, 1) != 0;
				r = 0;
				for (size_t i = 0; i < ATT_ARRAY_SIZE(cols); i++) {
					const char *v = att_stmt_text(s, (int)i + 2);

					if (v && !(res.m.col[cols[i]] = att_strdup(v)))
						r = ATT_E_NOMEM;
				}
			} else if (r == 0) {
				r = ATT_E_NOTFOUND;
			}
			att_stmt_done(s);
		}
	}
	if (r < 0 && r != ATT_E_NOTFOUND) {
		att_db_release(svc->db, c);
		return att_machine_db_fail(r, reterr, errlen);
	}
	if (r == 0 && M(&res.m, EK_FINGERPRINT) && !cl->quote) {
		st = M(&res.m, STATUS);
		if (strcmp(st, "pending_approval") == 0) {
			res.status = "pending_approval";
			res.action = "none";
			res.message = "Machine awaiting operator approval";
			goto done;
		}
		if (strcmp(st, "locked") == 0) {
			att_log_warning(LOGA, "Locked machine contacted: id=%s", M(&res.m, MACHINE_ID));
			res.status = "locked";
			res.action = "lock";
			res.message = "Machine is temporarily locked — contact operator to unlock";
			goto done;
		}
		if (strcmp(st, "revoked") == 0 && !res.m.wipe_pending) {
			att_log_warning(LOGA, "Revoked machine contacted: id=%s action=none",
					M(&res.m, MACHINE_ID));
			res.status = "revoked";
			res.action = "none";
			res.message = "Machine has been revoked";
			goto done;
		}
		if (strcmp(st, "attested") == 0 && M(&res.m, CONFIG_DELIVERED_AT)) {
			res.status = "already_attested";
			res.action = "none";
			res.message = "Machine already attested";
			goto done;
		}
	}
	ek_bound = r == 0 && M(&res.m, EK_FINGERPRINT) != NULL;
	att_machine_release(&res.m);
	r = attest_write(svc, c, ek, ek_bound, cl, actor, &res, reterr, errlen);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_node_result_release(&res);
		return r;
	}
done:
	att_db_release(svc->db, c);
	*ret = res;
	return 0;
}

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

/* ek_bound: the poll already found a machine bound to this EK (a binding
 * is never undone), so no chain needs verifying — quote attests of known
 * machines skip that work. */
static int attest_write(const struct att_svc *svc, struct att_dbc *c, const struct att_ek *ek,
			bool ek_bound, const struct att_node_claims *cl, const struct att_actor *actor,
			struct att_node_result *res, char *reterr, size_t errlen)
{
	const char *st;
	bool has_ak;
	char ts[32];
	struct att_machine_chain cs;
	int r;

	/* new or unbound EKs: verify their chain before the write lock */
	memset(&cs, 0, sizeof(cs));
	if (!ek_bound) {
		r = att_machine_chain_check(svc, c, cl, &cs, reterr, errlen);
		if (r < 0)
			return r;
	}
	r = att_dbc_begin(c);
	if (r < 0)
		goto dberr;
	r = att_machine_find_by_ek(c, ek, &res->m);
	if (ek_bound && (r == ATT_E_NOTFOUND || (r == 0 && !M(&res->m, EK_FINGERPRINT)))) {
		r = ATT_E_CONFLICT;	/* cannot happen: bindings are permanent */
		goto dberr;
	}
	if (r == ATT_E_NOTFOUND) {
		struct att_node_claims c2 = *cl;

		c2.desired_role = NULL;
		r = att_machine_insert(c, ek, &c2, &cs, "pending_approval", "worker-app", &res->m);
		if (r < 0)
			goto dberr;
		r = att_audit_append(c, actor->name, "self_register", M(&res->m, MACHINE_ID), NULL,
				     "pending_approval",
				     "attestation from an unknown EK; machine created awaiting approval",
				     actor->source_ip);
		if (r < 0)
			goto dberr;
		r = att_machine_outbox(c, "node.registered", &res->m, "pending_approval",
			   json_pack("{s:s?,s:s?,s:b}", "ip_address", actor->source_ip, "mac_address",
				     M(&res->m, HW_MAC), "tpm_available", 1));
		if (r < 0)
			goto dberr;
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		att_log_warning(LOGA, "Attestation from unknown EK %.16s... — created machine %s awaiting approval",
				ek->fp, M(&res->m, MACHINE_ID));
		res->created = true;
		res->status = "pending_approval";
		res->action = "none";
		res->message = "Machine not pre-registered — awaiting operator approval";
		return 0;
	}
	if (r < 0)
		goto dberr;
	if (!M(&res->m, EK_FINGERPRINT)) {
		r = att_machine_bind_ek(c, &res->m, ek, cl, &cs, actor);
		if (r < 0)
			goto dberr;
	}
	st = M(&res->m, STATUS);
	att_time_iso(att_now(), ts);
	has_ak = M(&res->m, AK_NAME) != NULL;
	if (cl->quote) {
		if (!has_ak || strcmp(M(&res->m, AK_NAME), cl->quote->ak_name) != 0) {
			r = ATT_E_CONFLICT;
			att_machine_set_err(reterr, errlen, "The machine's attestation key changed during attestation — retry");
			goto fail;
		}
		r = record_quote(c, &res->m, cl->quote, ts);
		if (r < 0)
			goto dberr;
	}
	if (strcmp(st, "pending_approval") == 0 || strcmp(st, "locked") == 0 ||
	    (strcmp(st, "revoked") == 0 && !res->m.wipe_pending)) {
		/* state changed between the read and the write lock: answer from the row */
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		res->action = strcmp(st, "locked") == 0 ? "lock" : "none";
		res->status = strcmp(st, "locked") == 0 ? "locked"
			      : strcmp(st, "revoked") == 0 ? "revoked"
							     : "pending_approval";
		res->message = strcmp(st, "locked") == 0 ? "Machine is temporarily locked — contact operator to unlock"
			       : strcmp(st, "revoked") == 0 ? "Machine has been revoked"
							      : "Machine awaiting operator approval";
		return 0;
	}
	if (strcmp(st, "revoked") == 0 && has_ak && !cl->quote) {
		/* without TPM proof anyone holding the public EK certificate could
		 * consume the one-time wipe: answer it, record nothing */
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		res->status = "revoked";
		res->action = "wipe";
		res->message = "Machine has been revoked — wipe initiated";
		return 0;
	}
	if (strcmp(st, "revoked") == 0) {
		/* deliver the wipe once, and record that it was delivered */
		r = att_dbc_exec(c, "UPDATE machines SET wipe_pending = 0, updated_at = ? WHERE id = ?", "si",
				 ts, res->m.id);
		if (r < 0)
			goto dberr;
		r = att_audit_append(c, actor->name, "wipe_delivered", M(&res->m, MACHINE_ID), "revoked",
				     "revoked", "action=wipe delivered to the machine", actor->source_ip);
		if (r < 0)
			goto dberr;
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		res->m.wipe_pending = false;
		att_log_warning(LOGA, "Revoked machine contacted: id=%s action=wipe", M(&res->m, MACHINE_ID));
		res->status = "revoked";
		res->action = "wipe";
		res->message = "Machine has been revoked — wipe initiated";
		return 0;
	}
	if (strcmp(st, "attested") == 0 && M(&res->m, CONFIG_DELIVERED_AT)) {
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		res->status = "already_attested";
		res->action = "none";
		res->message = "Machine already attested";
		return 0;
	}
	/* registered -> attested, or attested without a delivered config */
	r = pcr_policy_gate(c, &res->m, cl, actor, reterr, errlen);
	if (r == ATT_E_FORBIDDEN) {
		/* keep the audit entry of the refusal, change nothing else */
		r = att_dbc_commit(c);
		if (r < 0)
			goto dberr;
		return ATT_E_INVAL;
	}
	if (r < 0)
		goto fail;
	if (has_ak && !cl->quote) {
		r = ATT_E_INVAL;
		att_machine_set_err(reterr, errlen,
			"pcr_quote: machine %s has a bound attestation key — attest with a quote: GET /api/v1/attest/challenge,"
			" then send nonce_id, pcr_quote, pcr_signature and pcr_values",
			M(&res->m, MACHINE_ID));
		goto fail;
	}
	r = att_machine_token_issue(svc, c, M(&res->m, MACHINE_ID), "attested", res->token);
	if (r < 0)
		goto dberr;
	if (strcmp(st, "registered") == 0) {
		r = att_dbc_exec(c,
				 "UPDATE machines SET status = 'attested', attested_at = ?, updated_at = ?,"
				 " config_delivered_at = NULL WHERE id = ? AND status = 'registered'",
				 "ssi", ts, ts, res->m.id);
		if (r < 0)
			goto dberr;
		r = att_audit_append(c, actor->name, "attest", M(&res->m, MACHINE_ID), "registered", "attested",
				     cl->quote ? "EK verified; TPM quote verified with the bound AK; config token issued"
					       : "EK verified; config token issued",
				     actor->source_ip);
		if (r < 0)
			goto dberr;
		r = att_machine_outbox(c, "node.online", &res->m, "attested",
			   json_pack("{s:s}", "attested_at", ts));
		if (r < 0)
			goto dberr;
	} else {
		r = att_audit_append(c, actor->name, "config_token_reissued", M(&res->m, MACHINE_ID),
				     "attested", "attested",
				     "config not yet delivered; new config token issued", actor->source_ip);
		if (r < 0)
			goto dberr;
	}
	{
		char mid[64];

		snprintf(mid, sizeof(mid), "%s", M(&res->m, MACHINE_ID));
		att_machine_release(&res->m);
		r = att_machine_get(c, mid, &res->m);
		if (r < 0)
			goto dberr;
	}
	r = att_dbc_commit(c);
	if (r < 0)
		goto dberr;
	att_log_info(LOGA, "Machine attested: id=%s role=%s", M(&res->m, MACHINE_ID), M(&res->m, ROLE));
	res->status = "attested";
	res->action = "apply-config";
	res->message = "Attestation successful — fetch config_url and apply with talosctl apply-config";
	return 0;
dberr:
	att_dbc_rollback(c);
	if (r == ATT_E_CONFLICT) {
		att_machine_set_err(reterr, errlen, "Concurrent attestation of the same machine — retry");
		return r;
	}
	att_log_error(LOGA, "attestation failed: %s (%s)", att_strerror(r), att_dbc_errmsg(c));
	return att_machine_db_fail(r, reterr, errlen);
fail:
	att_dbc_rollback(c);
	return r;
}
