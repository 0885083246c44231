/* approval.c - operator approval (pending_approval|registered ->
 * registered with role, hostname and address) and dual control: for the
 * roles in ITL_DUAL_CONTROL_ROLES an approval is a stored vote, and the
 * vote that completes the quorum of distinct operators approves. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

static int check_unique_assignment(struct att_dbc *c, const struct att_machine *m,
				   const char *col_sql, const char *what, const char *value,
				   const char *shown, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s, col_sql, "ss", value, M(m, MACHINE_ID));
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		att_machine_set_err(reterr, errlen, "%s '%s' is already assigned to machine %s (status=%s)", what,
				    shown, att_stmt_text(s, 0), att_stmt_text(s, 1));
		r = ATT_E_CONFLICT;
	}
	att_stmt_done(s);
	return r;
}

/* The hostname (compared case-insensitively: DNS names are) and the
 * address (canonical form, whatever its prefix length) may belong to one
 * machine that is not revoked. */
static int check_assignment(struct att_dbc *c, const struct att_machine *m, const struct att_approval *a,
			    char *reterr, size_t errlen)
{
	char pattern[72];
	const char *slash;
	int r;

	if (a->hostname) {
		r = check_unique_assignment(c, m,
					    "SELECT machine_id, status FROM machines WHERE lower(hostname) = lower(?)"
					    " AND machine_id <> ? AND status <> 'revoked' LIMIT 1",
					    "hostname", a->hostname, a->hostname, reterr, errlen);
		if (r < 0)
			return r;
	}
	if (!a->assigned_ip)
		return 0;
	slash = strchr(a->assigned_ip, '/');
	snprintf(pattern, sizeof(pattern), "%.*s/%%",
		 (int)(slash ? (size_t)(slash - a->assigned_ip) : strlen(a->assigned_ip)), a->assigned_ip);
	r = check_unique_assignment(c, m,
				    "SELECT machine_id, status FROM machines WHERE assigned_ip LIKE ?"
				    " AND machine_id <> ? AND status <> 'revoked' LIMIT 1",
				    "assigned_ip", pattern, a->assigned_ip, reterr, errlen);
	return r < 0 ? r : 0;
}

/* node.provisioned, and node.role_changed when an approved machine gets
 * another role: the node as approved. */
static int approve_announce(struct att_dbc *c, const struct att_machine *m, const struct att_approval *a,
			    bool role_changed, const struct att_actor *actor)
{
	struct att_machine tmp = *m;
	int r;

	tmp.col[MC_ROLE] = (char *)a->role;
	tmp.col[MC_HOSTNAME] = (char *)a->hostname;
	tmp.col[MC_ASSIGNED_IP] = (char *)a->assigned_ip;
	r = att_machine_outbox(c, "node.provisioned", &tmp, "registered",
			       json_pack("{s:s}", "approved_by", actor->name));
	if (r == 0 && role_changed)
		r = att_machine_outbox(c, "node.role_changed", &tmp, "registered",
				       json_pack("{s:s,s:s}", "previous_role", M(m, ROLE), "new_role", a->role));
	return r;
}

struct approve_arg {
	struct att_approval a;	/* hostname / address may be inherited from votes */
	struct att_vote_status *vote;
	char inherited_host[256];
	char inherited_ip[64];
};

static bool same_opt(const char *want, const char *have)
{
	return !want || (have && strcmp(want, have) == 0) || (!have && !*want);
}

/* Record a dual-control vote.  Returns 0 with vote->pending set when the
 * quorum is not reached yet, 0 with pending clear when this vote
 * completes it (the approval proceeds), or an error. */
/* A vote is stored under its voter's label: the name, and for an OIDC
 * identity its issuer and subject, "alice (oidc:<iss>#<sub>)".  Votes are
 * told apart by the key inside the last " (oidc:...)" (the subject: a
 * renamed or second username of the same person is the same voter), or
 * by the whole label for the service's own principals (SYSTEM, ...). */
static void voter_label(const struct att_actor *a, char *out, size_t n)
{
	if (a->key && *a->key)
		snprintf(out, n, "%s (%s)", a->name, a->key);
	else
		snprintf(out, n, "%s", a->name);
}

static bool same_voter(const char *label, const struct att_actor *a)
{
	const char *want = a->key && *a->key ? a->key : a->name, *p = NULL, *q = label;
	size_t n = strlen(label);

	while ((q = strstr(q, " (oidc:")) != NULL)	/* the last one: a username cannot forge it */
		p = q++;
	if (p && n && label[n - 1] == ')')
		return strlen(want) == (size_t)(label + n - 1 - (p + 2)) &&
		       strncmp(p + 2, want, strlen(want)) == 0;
	return strcmp(label, want) == 0;
}

static int dual_control_vote(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m,
			     struct approve_arg *aa, const struct att_actor *actor, char *reterr,
			     size_t errlen)
{
	struct att_stmt *s;
	int64_t now = att_now().sec, earliest = 0;
	int quorum = (int)svc->cfg->dual_control_quorum, n = 0, r;
	char partners[512] = "", ts[32], *detail, label[800];
	const char *st = M(m, STATUS);

	r = att_dbc_query(c, &s,
			  "SELECT operator_cn, role, hostname, assigned_ip, expires_at FROM approval_votes"
			  " WHERE machine_id = ? AND consumed = 0 AND expires_at >= ? ORDER BY id",
			  "si", M(m, MACHINE_ID), now);
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		const char *op = att_stmt_text(s, 0), *role = att_stmt_text(s, 1);
		const char *host = att_stmt_text(s, 2), *ip = att_stmt_text(s, 3);

		if (same_voter(op, actor)) {
			att_machine_set_err(reterr, errlen,
					    "Operator '%s' has already voted to approve machine %s — a different operator must approve (dual control, quorum=%d)",
					    actor->name, M(m, MACHINE_ID), quorum);
			r = ATT_E_CONFLICT;
			break;
		}
		if (strcmp(role, aa->a.role) != 0 || !same_opt(aa->a.hostname, host) ||
		    !same_opt(aa->a.assigned_ip, ip)) {
			att_machine_set_err(reterr, errlen,
					    "Pending approval votes for machine %s are for role=%s hostname=%s assigned_ip=%s — vote with the same values, or let them expire",
					    M(m, MACHINE_ID), role, host ? host : "None", ip ? ip : "None");
			r = ATT_E_CONFLICT;
			break;
		}
		if (!aa->a.hostname && host) {
			snprintf(aa->inherited_host, sizeof(aa->inherited_host), "%s", host);
			aa->a.hostname = aa->inherited_host;
		}
		if (!aa->a.assigned_ip && ip) {
			snprintf(aa->inherited_ip, sizeof(aa->inherited_ip), "%s", ip);
			aa->a.assigned_ip = aa->inherited_ip;
		}
		if (!earliest || att_stmt_int(s, 4) < earliest)
			earliest = att_stmt_int(s, 4);
		snprintf(partners + strlen(partners), sizeof(partners) - strlen(partners), "%s%s",
			 n ? ", " : "", op);
		n++;
	}
	att_stmt_done(s);
	if (r < 0)
		return r;
	att_time_iso(att_now(), ts);
	voter_label(actor, label, sizeof(label));
	r = att_dbc_exec(c,
			 "INSERT INTO approval_votes (machine_id, operator_cn, role, hostname, assigned_ip, reason,"
			 " created_at, expires_at, consumed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "sssssssib", M(m, MACHINE_ID), label, aa->a.role, aa->a.hostname, aa->a.assigned_ip,
			 aa->a.reason, ts, now + svc->cfg->dual_control_window_seconds, (int)(n + 1 >= quorum));
	if (r < 0)
		return r;
	if (n == 0)
		earliest = now + svc->cfg->dual_control_window_seconds;
	aa->vote->received = n + 1;
	aa->vote->required = quorum;
	att_time_iso((struct att_time){ earliest, 0 }, aa->vote->expires_at);
	if (n + 1 < quorum) {
		detail = att_asprintf("approval vote %d of %d for role=%s hostname=%s — awaiting another operator",
				      n + 1, quorum, aa->a.role, aa->a.hostname ? aa->a.hostname : "None");
		if (!detail)
			return ATT_E_NOMEM;
		r = att_audit_append(c, actor->name, "approve_vote", M(m, MACHINE_ID), st, st, detail, actor->source_ip);
		free(detail);
		aa->vote->pending = true;
		return r;
	}
	r = att_dbc_exec(c, "UPDATE approval_votes SET consumed = 1 WHERE machine_id = ? AND consumed = 0", "s",
			 M(m, MACHINE_ID));
	if (r < 0)
		return r;
	detail = att_asprintf("approval vote %d of %d — quorum reached (with %s)", n + 1, quorum, partners);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "approve_vote", M(m, MACHINE_ID), st, st, detail, actor->source_ip);
	free(detail);
	return r;
}

static int do_approve(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m,
		      const void *arg, const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct approve_arg *aa = (struct approve_arg *)arg;
	const struct att_approval *a = &aa->a;
	const char *st = M(m, STATUS);
	bool role_changed;
	char ts[32], *detail;
	int r;

	if (strcmp(st, "pending_approval") != 0 && strcmp(st, "registered") != 0) {
		att_machine_set_err(reterr, errlen,
				    "Machine %s cannot be approved in state '%s' (only pending_approval or registered machines can be approved)",
				    M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	if (att_strlist_contains(&svc->cfg->dual_control_roles, a->role)) {
		r = dual_control_vote(svc, c, m, aa, actor, reterr, errlen);
		if (r < 0 || aa->vote->pending)
			return r;
	}
	r = check_assignment(c, m, a, reterr, errlen);
	if (r < 0)
		return r;
	role_changed = strcmp(M(m, ROLE), a->role) != 0; /* also the first approval: requested -> assigned */
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE machines SET status = 'registered', role = ?, hostname = ?, assigned_ip = ?,"
			 " approved_at = ?, updated_at = ? WHERE id = ?",
			 "sssssi", a->role, a->hostname, a->assigned_ip, ts, ts, m->id);
	if (r < 0)
		return r;
	r = att_machine_tokens_drop(c, M(m, MACHINE_ID));
	if (r < 0)
		return r;
	detail = att_asprintf("role=%s hostname=%s%s%s%s", a->role, a->hostname ? a->hostname : "None",
			      a->assigned_ip ? " assigned_ip=" : "", a->assigned_ip ? a->assigned_ip : "",
			      "");
	if (detail && a->reason) {
		char *d2 = att_asprintf("%s; reason='%s'", detail, a->reason);

		free(detail);
		detail = d2;
	}
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "approve", M(m, MACHINE_ID), st, "registered", detail,
			     actor->source_ip);
	free(detail);
	if (r < 0)
		return r;
	r = approve_announce(c, m, a, role_changed, actor);
	if (r == 0)
		att_log_info(LOGM, "Machine approved: id=%s role=%s hostname=%s by=%s", M(m, MACHINE_ID),
			     a->role, a->hostname ? a->hostname : "-", actor->name);
	return r;
}

int att_machine_approve(const struct att_svc *svc, const char *machine_id,
			const struct att_approval *a, const struct att_actor *actor,
			struct att_machine *ret, struct att_vote_status *ret_vote, char *reterr,
			size_t errlen)
{
	struct approve_arg aa;
	struct att_vote_status dummy;

	memset(&aa, 0, sizeof(aa));
	aa.a = *a;
	aa.vote = ret_vote ? ret_vote : &dummy;
	memset(aa.vote, 0, sizeof(*aa.vote));
	return att_machine_transition_run(svc, machine_id, do_approve, &aa, actor, ret, reterr, errlen);
}

int att_machine_votes(const struct att_svc *svc, const char *machine_id, json_t **ret, char *reterr,
		      size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_machine m = { 0 };
	struct att_stmt *s;
	json_t *arr;
	int r;

	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = att_machine_get(c, machine_id, &m);
	att_machine_release(&m);
	if (r == ATT_E_NOTFOUND) {
		att_db_release(svc->db, c);
		att_machine_set_err(reterr, errlen, "Machine %s not found", machine_id);
		return r;
	}
	if (r == 0)
		r = att_dbc_query(c, &s,
				  "SELECT id, operator_cn, role, hostname, assigned_ip, reason, created_at, expires_at, consumed"
				  " FROM approval_votes WHERE machine_id = ? ORDER BY id DESC",
				  "s", machine_id);
	if (r < 0) {
		att_db_release(svc->db, c);
		return att_machine_db_fail(r, reterr, errlen);
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1) {
		char exp[32];

		att_time_iso((struct att_time){ att_stmt_int(s, 7), 0 }, exp);
		json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s,s:s,s:b}", "id",
						     (json_int_t)att_stmt_int(s, 0), "machine_id", machine_id,
						     "operator_cn", att_stmt_text(s, 1), "role", att_stmt_text(s, 2),
						     "hostname", att_stmt_text(s, 3), "assigned_ip", att_stmt_text(s, 4),
						     "reason", att_stmt_text(s, 5), "created_at", att_stmt_text(s, 6),
						     "expires_at", exp, "consumed", (int)att_stmt_int(s, 8)));
	}
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return att_machine_db_fail(r, reterr, errlen);
	}
	*ret = arr;
	return 0;
}
