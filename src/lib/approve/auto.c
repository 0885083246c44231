/* auto.c - applying an automatic approval decision.
 *
 * A rule (or the webhook) approves through the ordinary approval path
 * (att_machine_approve: state checks, unique hostname, audit entry,
 * outbox event) as the operator AUTO_APPROVE:<rule>.  Before that, one
 * write transaction reserves a slot under the rule's hourly limit in
 * auto_approvals (serialized with every other writer, replicas too), so
 * the limit holds across replicas; the outcome replaces the reservation.
 * A rule matching on an agent identity also records the identity's jti
 * in that transaction (agent_identity_uses, primary key): one identity
 * approves at most one machine, whichever replica sees it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approve/approve.h"
#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"

#define LOGP "attestd.auto-approve"

#define UPSERT_ROW \
	"INSERT INTO auto_approvals (machine_id, rule, decision, detail, attempts, next_at, decided_at)" \
	" VALUES (?, ?, ?, ?, 0, 0, ?) ON CONFLICT (machine_id) DO UPDATE SET rule = excluded.rule," \
	" decision = excluded.decision, detail = excluded.detail, decided_at = excluded.decided_at"

/* Record the identity's single use: 1 first use, 0 used before (recorded
 * and audited), < 0. */
static int use_identity(struct att_dbc *c, const char *rule, const char *jti, const char *machine_id,
			const char *actor, const char *source_ip)
{
	struct att_stmt *s;
	int64_t now = att_now().sec;
	char detail[200], prev[40] = "";
	int r;

	r = att_dbc_exec(c,
			 "INSERT INTO agent_identity_uses (jti, machine_id, rule, used_at) VALUES (?, ?, ?, ?)"
			 " ON CONFLICT (jti) DO NOTHING",
			 "sssi", jti, machine_id, rule, now);
	if (r != 0)
		return r < 0 ? r : 1;
	r = att_dbc_query(c, &s, "SELECT machine_id FROM agent_identity_uses WHERE jti = ?", "s", jti);
	if (r < 0)
		return r;
	if ((r = att_stmt_next(s)) == 1)
		snprintf(prev, sizeof(prev), "%s", att_stmt_text(s, 0));
	att_stmt_done(s);
	if (r < 0)
		return r;
	snprintf(detail, sizeof(detail), "agent identity jti=%s was already used (machine %s) — not auto-approved", jti,
		 prev);
	r = att_dbc_exec(c, UPSERT_ROW, "ssssi", machine_id, rule, "refused", detail, now);
	if (r >= 0)
		r = att_audit_append(c, actor, "auto_approve_identity_refused", machine_id, "pending_approval",
				     "pending_approval", detail, source_ip);
	return r < 0 ? r : 0;
}

/* Reserve a slot: 1 reserved, 0 rate-limited (recorded and audited), < 0. */
static int reserve(struct att_dbc *c, const char *rule, int64_t max_per_hour, const char *machine_id,
		   const char *actor, const char *source_ip, const char *jti)
{
	struct att_stmt *s;
	int64_t now = att_now().sec, used = 0;
	char detail[160];
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT COUNT(*) FROM auto_approvals WHERE rule = ? AND decision IN ('approved', 'approving')"
			  " AND decided_at > ?",
			  "si", rule, now - 3600);
	if (r < 0)
		return r;
	if ((r = att_stmt_next(s)) == 1)
		used = att_stmt_int(s, 0);
	att_stmt_done(s);
	if (r < 0)
		return r;
	if (used < max_per_hour && jti && (r = use_identity(c, rule, jti, machine_id, actor, source_ip)) <= 0)
		return r;
	if (used < max_per_hour)
		return att_dbc_exec(c, UPSERT_ROW, "ssssi", machine_id, rule, "approving", NULL, now) < 0 ? ATT_E_DB : 1;
	snprintf(detail, sizeof(detail), "rate limit of rule '%s' reached (%lld approvals in the last hour) — left for an operator",
		 rule, (long long)used);
	r = att_dbc_exec(c, UPSERT_ROW, "ssssi", machine_id, rule, "rate_limited", detail, now);
	if (r >= 0)
		r = att_audit_append(c, actor, "auto_approve_rate_limited", machine_id, "pending_approval", "pending_approval",
				     detail, source_ip);
	return r < 0 ? r : 0;
}

static int record(const struct att_svc *svc, const char *machine_id, const char *decision, const char *detail)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c)
		return ATT_E_DB;
	r = att_dbc_exec(c, "UPDATE auto_approvals SET decision = ?, detail = ? WHERE machine_id = ?", "sss", decision,
			 detail, machine_id);
	att_db_release(svc->db, c);
	return r < 0 ? r : 0;
}

int att_auto_apply(const struct att_svc *svc, const char *rule, int64_t max_per_hour, const char *role,
		   const char *hostname, const char *reason, struct att_machine *m, const char *source_ip)
{
	return att_auto_apply_identity(svc, rule, max_per_hour, role, hostname, reason, m, source_ip, NULL);
}

int att_auto_apply_identity(const struct att_svc *svc, const char *rule, int64_t max_per_hour, const char *role,
			    const char *hostname, const char *reason, struct att_machine *m, const char *source_ip,
			    const char *jti)
{
	struct att_approval a = { role, hostname && *hostname ? hostname : NULL, NULL, reason };
	struct att_actor actor = { NULL, true, source_ip, NULL };
	struct att_vote_status vote = { 0 };
	struct att_machine approved = { 0 };
	struct att_dbc *c;
	char who[64], err[512];
	int r;

	snprintf(who, sizeof(who), "AUTO_APPROVE:%s", rule);
	actor.name = who;
	if (att_strlist_contains(&svc->cfg->dual_control_roles, role)) {	/* rules are checked at load; answers here */
		att_log_warning(LOGP, "%s: role %s is under dual control — machine %s left for operators", who, role,
				M(m, MACHINE_ID));
		return 0;
	}
	c = att_db_acquire(svc->db);
	if (!c)
		return ATT_E_DB;
	r = att_dbc_begin(c);
	if (r == 0)
		r = reserve(c, rule, max_per_hour, M(m, MACHINE_ID), who, source_ip, jti);
	if (r >= 0 && att_dbc_commit(c) < 0)
		r = ATT_E_DB;
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(svc->db, c);
	if (r <= 0) {
		if (r == 0)
			att_log_warning(LOGP, "%s: %s — machine %s left for operators", who,
					jti ? "hourly limit reached or agent identity already used" : "hourly limit reached",
					M(m, MACHINE_ID));
		return r;
	}
	r = att_machine_approve(svc, M(m, MACHINE_ID), &a, &actor, &approved, &vote, err, sizeof(err));
	if (r == 0 && vote.pending) {
		r = ATT_E_CONFLICT;
		snprintf(err, sizeof(err), "the approval became a dual-control vote");
	}
	if (r < 0) {
		att_log_warning(LOGP, "%s could not approve machine %s: %s", who, M(m, MACHINE_ID), err);
		(void)record(svc, M(m, MACHINE_ID), "failed", err);
		att_machine_release(&approved);
		return 0;
	}
	(void)record(svc, M(m, MACHINE_ID), "approved", reason);
	att_log_info(LOGP, "%s approved machine %s as %s%s%s", who, M(m, MACHINE_ID), role, hostname && *hostname ? " " : "",
		     hostname ? hostname : "");
	att_machine_release(m);
	*m = approved;
	return 1;
}

/* Queue a machine no rule matched for the decision webhook. */
static void queue_for_webhook(const struct att_svc *svc, const struct att_machine *m, const struct att_auto_context *ctx)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	json_t *d = json_pack("{s:s,s:b}", "via", ctx->self_register ? "self-register" : "register",
			      "registration_token_presented", ctx->token_sha256 != NULL);
	const json_t *id = ctx->identity;

	/* a verified agent identity goes to the webhook too (what it proved) */
	if (d && id)
		json_object_set_new(d, "agent_identity",
				    json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}", "jti", json_object_get(id, "jti"), "sub",
					      json_object_get(id, "sub"), "cluster", json_object_get(id, "cluster"),
					      "policy", json_object_get(id, "policy"), "attributes",
					      json_object_get(id, "attrs")));
	char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
	int64_t now = att_now().sec;

	if (c && detail &&
	    att_dbc_exec(c,
			 "INSERT INTO auto_approvals (machine_id, rule, decision, detail, attempts, next_at, decided_at)"
			 " VALUES (?, 'webhook', 'webhook', ?, 0, ?, ?) ON CONFLICT (machine_id) DO NOTHING",
			 "ssii", M(m, MACHINE_ID), detail, now, now) >= 0)
		att_log_info(LOGP, "Machine %s queued for the auto-approval webhook", M(m, MACHINE_ID));
	else
		att_log_warning(LOGP, "cannot queue machine %s for the auto-approval webhook", M(m, MACHINE_ID));
	if (c)
		att_db_release(svc->db, c);
	free(detail);
	json_decref(d);
}

int att_auto_approve_new(const struct att_svc *svc, struct att_machine *m, const struct att_auto_context *ctx)
{
	const struct att_auto_rules *rs = svc->auto_rules;
	char host[64], reason[900], id[800] = "";
	bool uses_id;
	int i = att_auto_rules_match(rs, m, ctx), r;

	if (i < 0) {
		if (svc->cfg->auto_approve_webhook_url[0])
			queue_for_webhook(svc, m, ctx);
		return 0;
	}
	if (att_auto_rule_hostname(rs, i, m, host) < 0) {
		att_log_warning(LOGP, "AUTO_APPROVE:%s: the naming pattern yields no valid hostname for machine %s — left for operators",
				att_auto_rule_name(rs, i), M(m, MACHINE_ID));
		return 0;
	}
	uses_id = att_auto_rule_uses_identity(rs, i);
	if (uses_id)
		att_auto_rule_identity_detail(rs, i, ctx->identity, id, sizeof(id));
	snprintf(reason, sizeof(reason), "auto-approval rule '%s'%s%s", att_auto_rule_name(rs, i), uses_id ? " " : "", id);
	r = att_auto_apply_identity(svc, att_auto_rule_name(rs, i), att_auto_rule_max_per_hour(rs, i),
				    att_auto_rule_role(rs, i), host, reason, m, ctx->source_ip,
				    uses_id ? json_string_value(json_object_get(ctx->identity, "jti")) : NULL);
	if (r < 0)
		att_log_warning(LOGP, "auto-approval of machine %s skipped: %s", M(m, MACHINE_ID), att_strerror(r));
	return r > 0 ? 1 : 0;
}
