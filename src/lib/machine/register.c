/* register.c - POST /register and /self-register, and the parts every
 * first contact of an EK shares (attest.c creates machines too): the EK
 * chain check (ITL_TPM_VERIFY_CA, with the intermediate cache), the new
 * row, and binding EK material to a receipt-imported row.  A known EK
 * re-registers (hardware details refreshed) unless locked or revoked. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "crypto/ekchain.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

/* ITL_TPM_VERIFY_CA: verify the EK chain (new machines and first binding
 * only: a known EK's verdict is stored).  Strict mode refuses a chain that
 * does not verify; otherwise the verdict is recorded. */
int att_machine_chain_check(const struct att_svc *svc, struct att_dbc *c,
			    const struct att_node_claims *cl, struct att_machine_chain *ret,
			    char *reterr, size_t errlen)
{
	struct att_ek_chain_result res;
	struct att_ek_chain_extra extra = { cl->ek_chain_pem, cl->ek_chain_der, cl->ek_chain_der_len, NULL };
	struct att_buf cached;
	struct att_stmt *s;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!svc->cfg->tpm_verify_ca || !svc->ek_trust)
		return 0;
	/* intermediates learned from earlier chains (request or NV range) */
	att_buf_init(&cached, 1024 * 1024);
	if (att_dbc_query(c, &s, "SELECT pem FROM ek_intermediates ORDER BY first_seen LIMIT 256", "") == 0) {
		while (att_stmt_next(s) == 1)
			(void)att_buf_puts(&cached, att_stmt_text(s, 0));
		att_stmt_done(s);
	}
	extra.cached_pem = cached.p;
	r = att_ek_chain_verify(svc->ek_trust, cl->ek_b64, &extra, (time_t)att_now().sec, &res, reterr, errlen);
	att_buf_release(&cached);
	if (r < 0)
		return r;
	for (int i = 0; i < res.n_learned; i++) {
		char ts[32];

		att_time_iso(att_now(), ts);
		if (att_dbc_exec(c,
				 "INSERT INTO ek_intermediates (cert_sha256, subject, pem, first_seen) VALUES (?, ?, ?, ?)"
				 " ON CONFLICT (cert_sha256) DO NOTHING",
				 "ssss", res.learned[i].sha256, res.learned[i].subject, res.learned[i].pem, ts) > 0)
			att_log_info(LOGR, "EK intermediate CA cached: %s", res.learned[i].subject);
	}
	att_ek_chain_result_release(&res);
	if (!res.verified && svc->cfg->tpm_verify_ca_strict) {
		att_machine_set_err(reterr, errlen,
				    "ek_cert_pem: EK certificate chain does not verify against the TPM manufacturer CAs: %s",
				    res.error);
		return ATT_E_INVAL;
	}
	if (!res.verified)
		att_log_warning(LOGR, "EK certificate chain does not verify (ITL_TPM_VERIFY_CA, non-strict): %s", res.error);
	ret->verified = res.verified ? "1" : "0";
	snprintf(ret->error, sizeof(ret->error), "%s", res.error);
	return 0;
}

int att_machine_store_chain(struct att_dbc *c, const char *machine_id, const struct att_ek *ek,
			   const struct att_machine_chain *cs)
{
	int r = att_dbc_exec(c,
			     "UPDATE machines SET ek_verified = ?, ek_chain_error = ?, ek_manufacturer = ?, ek_model = ?"
			     " WHERE machine_id = ?",
			     "sssss", cs->verified, cs->verified && cs->error[0] ? cs->error : NULL,
			     ek->manufacturer[0] ? ek->manufacturer : NULL, ek->model[0] ? ek->model : NULL, machine_id);

	return r < 0 ? r : 0;
}

int att_machine_insert(struct att_dbc *c, const struct att_ek *ek, const struct att_node_claims *cl,
		       const struct att_machine_chain *cs, const char *status, const char *role,
		       struct att_machine *ret)
{
	struct att_machine_row row = {
		.ek_fingerprint = ek->fp, .ek_fingerprint_legacy = ek->fp_legacy,
		.ek_fingerprint_agent = ek->fp_agent, .ek_source = cl->ek_source ? cl->ek_source : "cert",
		.ek_cert_b64 = cl->ek_b64, .ek_key_type = ek->key_type, .ek_issuer = ek->issuer[0] ? ek->issuer : NULL,
		.hw_uuid = cl->hw_uuid, .hw_mac = cl->hw_mac, .hw_serial = cl->hw_serial, .hw_product = cl->hw_product,
		.role = role, .status = status, .cluster_id = cl->cluster_id,
	};
	char id[37];
	int r;

	r = att_uuid4(id);
	if (r < 0)
		return r;
	row.machine_id = id;
	r = att_machine_insert_row(c, &row);
	if (r < 0)
		return r;
	r = att_machine_store_chain(c, id, ek, cs);
	if (r < 0)
		return r;
	return att_machine_get(c, id, ret);
}

int att_machine_announce_new(struct att_dbc *c, const struct att_machine *m, const char *action,
			     const char *detail, const struct att_actor *actor)
{
	int r = att_audit_append(c, actor->name, action, M(m, MACHINE_ID), NULL, M(m, STATUS), detail,
				 actor->source_ip);

	if (r < 0)
		return r;
	return att_machine_outbox(c, "node.registered", m, M(m, STATUS),
				  json_pack("{s:s?,s:s?,s:b}", "ip_address", actor->source_ip, "mac_address",
					    M(m, HW_MAC), "tpm_available", 1));
}

int att_machine_bind_ek(struct att_dbc *c, struct att_machine *m, const struct att_ek *ek,
			const struct att_node_claims *cl, const struct att_machine_chain *cs,
			const struct att_actor *actor)
{
	char ts[32], *detail;
	int r;

	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET ek_fingerprint = ?, ek_fingerprint_legacy = ?,"
			 " ek_fingerprint_agent = ?, ek_cert_b64 = ?, ek_key_type = ?, ek_issuer = ?,"
			 " ek_source = ?, updated_at = ? WHERE id = ? AND ek_fingerprint IS NULL",
			 "ssssssssi", ek->fp, ek->fp_legacy, ek->fp_agent, cl->ek_b64, ek->key_type,
			 ek->issuer[0] ? ek->issuer : NULL, cl->ek_source ? cl->ek_source : "cert", ts,
			 m->id);
	if (r < 0)
		return r;
	if (r != 1)
		return ATT_E_CONFLICT;
	r = att_machine_store_chain(c, M(m, MACHINE_ID), ek, cs);
	if (r < 0)
		return r;
	detail = att_asprintf("EK material bound to imported receipt (ek=%.16s...)", ek->fp);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "ek_bound", M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS),
			     detail, actor->source_ip);
	free(detail);
	if (r < 0)
		return r;
	return att_machine_reload(c, m);
}

/* ---- register / self-register ---------------------------------------- */

/* One registration in one write transaction. */
struct reg_tx {
	const struct att_svc *svc;
	struct att_dbc *c;
	const struct att_ek *ek;
	const struct att_node_claims *cl;
	const struct att_machine_chain *cs;
	const struct att_actor *actor;
	bool self_register;
	struct att_node_result *res;
	char *reterr;
	size_t errlen;
};

/* A database failure, or a lost race on the same EK (ATT_E_CONFLICT). */
static int register_failed(struct reg_tx *tx, int r)
{
	if (r == ATT_E_CONFLICT) {
		att_machine_set_err(tx->reterr, tx->errlen, "Concurrent registration of the same EK — retry");
		return r;
	}
	att_log_error(LOGR, "registration failed: %s (%s)", att_strerror(r), att_dbc_errmsg(tx->c));
	return att_machine_db_fail(r, tx->reterr, tx->errlen);
}

/* An EK seen for the first time: a new machine, pre-approved only for an
 * authenticated /register and a role outside ITL_DUAL_CONTROL_ROLES (a
 * role under dual control is reached only through the quorum of
 * approval votes; the registration is not a vote). */
static int register_new(struct reg_tx *tx)
{
	const struct att_node_claims *cl = tx->cl;
	const char *role = cl->desired_role && *cl->desired_role ? cl->desired_role : "worker-app";
	bool dual = att_strlist_contains(&tx->svc->cfg->dual_control_roles, role);
	bool approved = !tx->self_register && tx->actor->authenticated && !dual;
	const char *status = approved ? "registered" : "pending_approval";
	struct att_node_result *res = tx->res;
	char *detail;
	int r;

	if (!approved) {
		r = att_pending_cap_check(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
		if (r == 0)
			r = att_unauth_write_take(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
		if (r < 0)
			return r;
	}
	r = att_machine_insert(tx->c, tx->ek, cl, tx->cs, status, role, &res->m);
	if (r < 0)
		return register_failed(tx, r);
	detail = att_asprintf("%s via %s; ek=%.16s... source=%s%s", status,
			      tx->self_register ? "self-register" : "register", tx->ek->fp,
			      cl->ek_source ? cl->ek_source : "cert",
			      dual && tx->actor->authenticated && !tx->self_register
				      ? "; role under dual control — awaiting the approval quorum"
				      : "");
	if (!detail)
		return register_failed(tx, ATT_E_NOMEM);
	r = att_machine_announce_new(tx->c, &res->m, tx->self_register ? "self_register" : "register", detail,
				     tx->actor);
	free(detail);
	if (r == 0)
		r = att_dbc_commit(tx->c);
	if (r < 0)
		return register_failed(tx, r);
	res->created = true;
	att_log_info(LOGR, "New machine registered: id=%s role=%s ek=%.16s...", M(&res->m, MACHINE_ID),
		     M(&res->m, ROLE), tx->ek->fp);
	res->status = approved ? "registered" : "pending_approval";
	res->message = approved ? "Machine registered — download ISO and boot to continue"
		       : dual	 ? "Machine registered — its role is under dual control: awaiting approval by a quorum of operators"
				 : "Machine registered — awaiting operator approval. Poll POST /api/v1/attest every 60 s; when action=apply-config, fetch config_url and run: talosctl apply-config --insecure --file <(curl -sf <config_url>)";
	return 0;
}

/* A claimed hardware field that differs from the stored one (an absent
 * claim changes nothing). */
static bool hw_differs(const char *claim, const char *stored)
{
	return claim && (!stored || strcmp(claim, stored) != 0);
}

int att_machine_hw_update(struct att_dbc *c, struct att_machine *m, const struct att_node_claims *cl,
			  const char *action, const char *why, const struct att_actor *actor)
{
	char ts[32], *detail;
	int r;

	detail = att_asprintf("%s; hardware details changed:%s%s%s%s", why,
			      hw_differs(cl->hw_uuid, M(m, HW_UUID)) ? " hw_uuid" : "",
			      hw_differs(cl->hw_mac, M(m, HW_MAC)) ? " hw_mac" : "",
			      hw_differs(cl->hw_serial, M(m, HW_SERIAL)) ? " hw_serial" : "",
			      hw_differs(cl->hw_product, M(m, HW_PRODUCT)) ? " hw_product" : "");
	if (!detail)
		return ATT_E_NOMEM;
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET hw_uuid = ?, hw_mac = ?, hw_serial = ?, hw_product = ?,"
			 " updated_at = ? WHERE id = ?",
			 "sssssi", cl->hw_uuid ? cl->hw_uuid : M(m, HW_UUID), cl->hw_mac ? cl->hw_mac : M(m, HW_MAC),
			 cl->hw_serial ? cl->hw_serial : M(m, HW_SERIAL), cl->hw_product ? cl->hw_product : M(m, HW_PRODUCT),
			 ts, m->id);
	if (r >= 0)
		r = att_audit_append(c, actor->name, action, M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS), detail,
				     actor->source_ip);
	free(detail);
	if (r >= 0)
		r = att_machine_reload(c, m);
	return r < 0 ? r : 0;
}

bool att_machine_hw_changed(const struct att_node_claims *cl, const struct att_machine *m)
{
	return hw_differs(cl->hw_uuid, M(m, HW_UUID)) || hw_differs(cl->hw_mac, M(m, HW_MAC)) ||
	       hw_differs(cl->hw_serial, M(m, HW_SERIAL)) || hw_differs(cl->hw_product, M(m, HW_PRODUCT));
}

/* An operator credential (not the registration token, not a machine). */
static bool actor_is_operator(const struct att_actor *a)
{
	return a->authenticated && strcmp(a->name, "REGISTRATION_TOKEN") != 0;
}

/* The answer to a known EK, whatever was (not) written. */
static void register_again_answer(struct reg_tx *tx, bool hw_kept)
{
	const struct att_machine *m = &tx->res->m;
	const char *st = M(m, STATUS);

	tx->res->status = strcmp(st, "registered") == 0 ? "registered"
			  : strcmp(st, "attested") == 0 ? "attested"
							: "pending_approval";
	if (hw_kept)
		tx->res->message = "Machine already approved — the reported hardware details differ from the approved record and were NOT changed (only a verified quote or an operator's re-registration changes them)";
	else
		tx->res->message = strcmp(st, "attested") == 0
					   ? "Machine already attested — re-apply config via config_url if needed"
					   : "Machine already registered — call POST /api/v1/attest to continue";
}

/* A known EK registers again.  Nothing changed: nothing is written (no
 * audit row either).  Changed hardware details of a pending machine are
 * refreshed (one unit of the source's unauthenticated-write budget);
 * those of an approved machine only by an operator. */
static int register_again(struct reg_tx *tx)
{
	const struct att_node_claims *cl = tx->cl;
	struct att_machine *m = &tx->res->m;
	bool wrote = false, changed, hw_kept = false;
	int r;

	if (!M(m, EK_FINGERPRINT)) {
		r = att_unauth_write_take(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
		if (r < 0)
			return r;
		r = att_machine_bind_ek(tx->c, m, tx->ek, cl, tx->cs, tx->actor);
		if (r < 0)
			return register_failed(tx, r);
		wrote = true;
	}
	if (strcmp(M(m, STATUS), "revoked") == 0 || strcmp(M(m, STATUS), "locked") == 0) {
		att_machine_set_err(tx->reterr, tx->errlen,
				    "Machine %s is %s — re-registration is not allowed (status=%s); unlock it, or register replacement hardware as a new machine",
				    M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS));
		return ATT_E_CONFLICT;
	}
	changed = att_machine_hw_changed(cl, m);
	if (changed && strcmp(M(m, STATUS), "pending_approval") != 0 && !actor_is_operator(tx->actor)) {
		att_log_warning(LOGR, "Re-registration of approved machine %s from %s reported other hardware details: not changed",
				M(m, MACHINE_ID), tx->actor->source_ip ? tx->actor->source_ip : "-");
		changed = false;
		hw_kept = true;
	}
	if (changed) {
		r = att_unauth_write_take(tx->svc, tx->c, tx->actor, tx->reterr, tx->errlen);
		if (r < 0)
			return r;
		r = att_machine_hw_update(tx->c, m, cl, tx->self_register ? "self_register" : "re_register",
					  "re-registration of a known EK", tx->actor);
		if (r < 0)
			return register_failed(tx, r);
		wrote = true;
	}
	r = wrote ? att_dbc_commit(tx->c) : (att_dbc_rollback(tx->c), 0);
	if (r < 0)
		return register_failed(tx, r);
	if (wrote)
		att_log_info(LOGR, "Re-registration of machine %s (ek=%.16s...)", M(m, MACHINE_ID), tx->ek->fp);
	register_again_answer(tx, hw_kept);
	return 0;
}

int att_machine_register(const struct att_svc *svc, const struct att_ek *ek,
			 const struct att_node_claims *cl, const struct att_actor *actor,
			 bool self_register, struct att_node_result *ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_node_result res;
	struct att_machine_chain cs;
	struct reg_tx tx = { svc, c, ek, cl, &cs, actor, self_register, &res, reterr, errlen };
	int r;

	memset(&res, 0, sizeof(res));
	if (!c) {
		/* no connection to be had (the database is down): said like any other failure */
		att_log_error(LOGR, "registration failed: %s (no database connection)", att_strerror(ATT_E_DB));
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	}
	r = att_machine_chain_check(svc, c, cl, &cs, reterr, errlen);
	if (r < 0) {
		att_db_release(svc->db, c);
		return r;
	}
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_machine_find_by_ek(c, ek, &res.m);
	if (r == ATT_E_NOTFOUND)
		r = register_new(&tx);
	else if (r == 0)
		r = register_again(&tx);
	else
		r = register_failed(&tx, r);
	if (r < 0) {
		att_dbc_rollback(c);
		att_db_release(svc->db, c);
		att_machine_release(&res.m);
		return r;
	}
	att_db_release(svc->db, c);
	*ret = res;
	return 0;
}
