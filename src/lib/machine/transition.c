/* transition.c - operator state changes of one machine: the transition
 * runner (row re-read under the write lock, check, update, audit, outbox,
 * re-read, commit) and lock, unlock and revoke on top of it.  Approval
 * (approval.c) and the offline bundle (bundle.c) run on it too. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

int att_machine_transition_run(const struct att_svc *svc, const char *machine_id,
			       att_machine_transition_fn fn, const void *arg,
			       const struct att_actor *actor, struct att_machine *ret, char *reterr,
			       size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_machine m = { 0 };
	int r;

	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = att_dbc_begin(c);
	if (r < 0)
		goto dberr;
	r = att_machine_get(c, machine_id, &m);
	if (r == ATT_E_NOTFOUND) {
		att_machine_set_err(reterr, errlen, "Machine %s not found", machine_id);
		goto fail;
	}
	if (r < 0)
		goto dberr;
	r = fn(svc, c, &m, arg, actor, reterr, errlen);
	if (r == ATT_E_CONFLICT || r == ATT_E_INVAL || r == ATT_E_FORBIDDEN)
		goto fail;
	if (r < 0)
		goto dberr;
	att_machine_release(&m);
	r = att_machine_get(c, machine_id, &m);
	if (r < 0)
		goto dberr;
	r = att_dbc_commit(c);
	if (r < 0)
		goto dberr;
	att_db_release(svc->db, c);
	*ret = m;
	return 0;
dberr:
	att_log_error(LOGM, "transition of machine %s failed: %s (%s)", machine_id, att_strerror(r),
		      att_dbc_errmsg(c));
	r = att_machine_db_fail(r, reterr, errlen);
fail:
	att_dbc_rollback(c);
	att_db_release(svc->db, c);
	att_machine_release(&m);
	return r;
}

static char *reason_detail(const char *prefix, const char *reason)
{
	if (reason && *reason)
		return att_asprintf("%s; reason='%s'", prefix, reason);
	return att_strdup(prefix);
}

static int do_lock(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m,
		   const void *arg, const struct att_actor *actor, char *reterr, size_t errlen)
{
	const char *reason = arg, *st = M(m, STATUS);
	char ts[32], *detail;
	int r;

	(void)svc;
	if (strcmp(st, "revoked") == 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is already revoked — cannot lock a revoked machine",
				    M(m, MACHINE_ID));
		return ATT_E_CONFLICT;
	}
	if (strcmp(st, "registered") != 0 && strcmp(st, "attested") != 0) {
		att_machine_set_err(reterr, errlen,
				    "Machine %s cannot be locked in state '%s' (only registered or attested machines can be locked)",
				    M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET status = 'locked', locked_from = ?, locked_at = ?, updated_at = ?"
			 " WHERE id = ?",
			 "sssi", st, ts, ts, m->id);
	if (r < 0)
		return r;
	r = att_machine_tokens_drop(c, M(m, MACHINE_ID));
	if (r < 0)
		return r;
	detail = reason_detail("locked", reason);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "lock", M(m, MACHINE_ID), st, "locked", detail,
			     actor->source_ip);
	free(detail);
	if (r == 0)
		r = att_machine_outbox(c, "node.locked", m, "locked",
				       json_pack("{s:s?,s:s,s:s}", "reason", reason, "previous_status", st, "locked_by",
						 actor->name));
	if (r == 0)
		att_log_info(LOGM, "Machine locked: id=%s by=%s", M(m, MACHINE_ID), actor->name);
	return r;
}

int att_machine_lock(const struct att_svc *svc, const char *machine_id, const char *reason,
		     const struct att_actor *actor, struct att_machine *ret, char *reterr,
		     size_t errlen)
{
	return att_machine_transition_run(svc, machine_id, do_lock, reason, actor, ret, reterr, errlen);
}

static int do_unlock(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m,
		     const void *arg, const struct att_actor *actor, char *reterr, size_t errlen)
{
	const char *reason = arg, *st = M(m, STATUS);
	const char *back = M(m, LOCKED_FROM) ? M(m, LOCKED_FROM) : "attested";
	char ts[32], *detail;
	int r;

	(void)svc;
	if (strcmp(st, "locked") != 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is not locked (status=%s)", M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET status = ?, locked_from = NULL, locked_at = NULL, updated_at = ?"
			 " WHERE id = ?",
			 "ssi", back, ts, m->id);
	if (r < 0)
		return r;
	detail = reason_detail("unlocked", reason);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "unlock", M(m, MACHINE_ID), "locked", back, detail,
			     actor->source_ip);
	free(detail);
	if (r == 0)
		r = att_machine_outbox(c, "node.unlocked", m, back,
				       json_pack("{s:s?,s:s,s:s}", "reason", reason, "new_status", back, "unlocked_by",
						 actor->name));
	if (r == 0)
		att_log_info(LOGM, "Machine unlocked: id=%s status=%s by=%s", M(m, MACHINE_ID), back,
			     actor->name);
	return r;
}

int att_machine_unlock(const struct att_svc *svc, const char *machine_id, const char *reason,
		       const struct att_actor *actor, struct att_machine *ret, char *reterr,
		       size_t errlen)
{
	return att_machine_transition_run(svc, machine_id, do_unlock, reason, actor, ret, reterr, errlen);
}

struct revoke_arg {
	bool wipe;
	const char *reason;
};

static int do_revoke(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m,
		     const void *arg, const struct att_actor *actor, char *reterr, size_t errlen)
{
	const struct revoke_arg *a = arg;
	const char *st = M(m, STATUS);
	char ts[32], *detail;
	int r;

	(void)svc;
	if (strcmp(st, "revoked") == 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is already revoked", M(m, MACHINE_ID));
		return ATT_E_CONFLICT;
	}
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET status = 'revoked', wipe_pending = ?, revoked_at = ?,"
			 " locked_from = NULL, updated_at = ? WHERE id = ?",
			 "bssi", (int)a->wipe, ts, ts, m->id);
	if (r < 0)
		return r;
	r = att_machine_tokens_drop(c, M(m, MACHINE_ID));
	if (r < 0)
		return r;
	detail = att_asprintf("%s; reason='%s'",
			      a->wipe ? "wipe scheduled on next attestation contact" : "blocked",
			      a->reason ? a->reason : "");
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "revoke", M(m, MACHINE_ID), st, "revoked", detail,
			     actor->source_ip);
	free(detail);
	if (r == 0)
		r = att_machine_outbox(c, "node.decommissioned", m, "revoked",
				       json_pack("{s:s?,s:b}", "reason", a->reason, "wipe", (int)a->wipe));
	if (r == 0)
		att_log_info(LOGM, "Machine revoked: id=%s wipe=%s by=%s", M(m, MACHINE_ID),
			     a->wipe ? "true" : "false", actor->name);
	return r;
}

int att_machine_revoke(const struct att_svc *svc, const char *machine_id, bool wipe,
		       const char *reason, const struct att_actor *actor, struct att_machine *ret,
		       char *reterr, size_t errlen)
{
	struct revoke_arg a = { wipe, reason };

	return att_machine_transition_run(svc, machine_id, do_revoke, &a, actor, ret, reterr, errlen);
}
