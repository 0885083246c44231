/* status.c - what auto-approval is set up to do and what it did, for
 * operators (GET /api/v1/auto-approval). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approve/approve.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

static int64_t approved_last_hour(struct att_dbc *c, const char *rule)
{
	struct att_stmt *s;
	int64_t n = -1;

	if (att_dbc_query(c, &s,
			  "SELECT COUNT(*) FROM auto_approvals WHERE rule = ? AND decision IN ('approved', 'approving')"
			  " AND decided_at > ?",
			  "si", rule, att_now().sec - 3600) < 0)
		return -1;
	if (att_stmt_next(s) == 1)
		n = att_stmt_int(s, 0);
	att_stmt_done(s);
	return n;
}

static json_t *recent(struct att_dbc *c, int64_t limit)
{
	json_t *arr = json_array();
	struct att_stmt *s;
	char ts[40];
	int r;

	if (!arr || att_dbc_query(c, &s,
				  "SELECT machine_id, rule, decision, detail, attempts, decided_at FROM auto_approvals"
				  " ORDER BY decided_at DESC, machine_id LIMIT ?",
				  "i", limit) < 0) {
		json_decref(arr);
		return NULL;
	}
	while ((r = att_stmt_next(s)) == 1) {
		att_time_iso_utc((struct att_time){ att_stmt_int(s, 5), 0 }, ts);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s?,s:I,s:s}", "machine_id", att_stmt_text(s, 0), "rule",
						     att_stmt_text(s, 1), "decision", att_stmt_text(s, 2), "detail",
						     att_stmt_text(s, 3), "attempts", (json_int_t)att_stmt_int(s, 4),
						     "decided_at", ts));
	}
	att_stmt_done(s);
	if (r < 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

int att_auto_status(const struct att_svc *svc, int64_t limit, json_t **ret, char *reterr, size_t errlen)
{
	const struct att_config *cfg = svc->cfg;
	struct att_dbc *c = att_db_acquire(svc->db);
	json_t *rules = json_array(), *o = NULL, *rec = NULL;
	int64_t queued = 0, used;
	bool ok = c && rules;

	for (size_t i = 0; ok && i < att_auto_rules_count(svc->auto_rules); i++) {
		const char *name = att_auto_rule_name(svc->auto_rules, (int)i);

		used = approved_last_hour(c, name);
		ok = used >= 0 &&
		     json_array_append_new(rules, json_pack("{s:s,s:s,s:I,s:I,s:b}", "name", name, "role",
							    att_auto_rule_role(svc->auto_rules, (int)i), "max_per_hour",
							    (json_int_t)att_auto_rule_max_per_hour(svc->auto_rules, (int)i),
							    "approved_last_hour", (json_int_t)used, "agent_identity",
							    att_auto_rule_uses_identity(svc->auto_rules, (int)i))) == 0;
	}
	used = ok && cfg->auto_approve_webhook_url[0] ? approved_last_hour(c, "webhook") : 0;
	ok = ok && used >= 0 &&
	     att_dbc_query_int(c, "SELECT COUNT(*) FROM auto_approvals WHERE decision = 'webhook'", &queued) == 0 &&
	     (rec = recent(c, limit)) != NULL;
	if (ok)
		o = json_pack("{s:O,s:{s:b,s:I,s:I,s:I},s:O}", "rules", rules, "webhook", "configured",
			      cfg->auto_approve_webhook_url[0] != '\0', "max_per_hour",
			      (json_int_t)cfg->auto_approve_webhook_max_per_hour, "approved_last_hour", (json_int_t)used,
			      "queued", (json_int_t)queued, "recent", rec);
	if (c)
		att_db_release(svc->db, c);
	json_decref(rules);
	json_decref(rec);
	if (!o)
		return ok ? ATT_E_NOMEM : ERR(ATT_E_DB, "Database unavailable — try again");
	*ret = o;
	return 0;
}
