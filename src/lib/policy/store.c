/* store.c - policy documents per cluster: every change is a new version
 * (a deletion is a version without a document), written with its audit
 * entry in one transaction.  Readers take the newest version on every
 * request, so each replica applies a change as soon as it is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine.h"
#include "policy/policy-internal.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))
#define DBFAIL(r) att_machine_db_fail((r), reterr, errlen)

/* Append version (yaml/doc NULL: deletion) and its audit entry. */
static int write_version(const struct att_svc *svc, const char *cluster_id, const char *yaml, const char *doc,
			 const struct att_actor *actor, int64_t *ret_version, char *ts, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	struct att_stmt *s;
	int64_t v = 0;
	char detail[160];
	int r = att_machine_tx_begin(svc, &c, reterr, errlen);

	if (r < 0)
		return r;
	r = att_dbc_query(c, &s, "SELECT COALESCE(MAX(version), 0) FROM agent_policies WHERE cluster_id = ?", "s",
			  cluster_id);
	if (r == 0) {
		if (att_stmt_next(s) == 1)
			v = att_stmt_int(s, 0);
		att_stmt_done(s);
	}
	if (r == 0 && !yaml && v > 0) {
		r = att_dbc_query(c, &s, "SELECT CASE WHEN yaml IS NULL THEN 1 ELSE 0 END FROM agent_policies WHERE cluster_id = ? AND version = ?",
				  "si", cluster_id, v);
		if (r == 0) {
			bool deleted = att_stmt_next(s) == 1 && att_stmt_int(s, 0) != 0;

			att_stmt_done(s);
			if (deleted)
				v = 0;
		}
	}
	if (r == 0 && !yaml && v == 0)
		return att_machine_tx_end(svc, c, ERR(ATT_E_NOTFOUND, "No AgentAttestation configuration for cluster '%s'", cluster_id),
			      reterr, errlen);
	att_time_iso(att_now(), ts);
	v++;
	if (r == 0)
		r = att_dbc_exec(c,
				 "INSERT INTO agent_policies (cluster_id, version, yaml, document, created_at, created_by)"
				 " VALUES (?, ?, ?, ?, ?, ?)",
				 "sissss", cluster_id, v, yaml, doc, ts, actor->name);
	if (r > 0)
		r = 0;	/* rows changed */
	snprintf(detail, sizeof(detail), "cluster=%s section=AgentAttestation version=%lld", cluster_id, (long long)v);
	if (r == 0)
		r = att_audit_append(c, actor->name, yaml ? "agent_policy_set" : "agent_policy_deleted", NULL, NULL, NULL,
				     detail, actor->source_ip);
	if (r < 0)
		r = DBFAIL(r);
	*ret_version = v;
	return att_machine_tx_end(svc, c, r, reterr, errlen);
}

int att_policy_put(const struct att_svc *svc, const char *cluster_id, const char *yaml, size_t len,
		   const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen)
{
	json_t *doc;
	char *js, *text, ts[32];
	int64_t v;
	int r;

	if (!att_valid_cluster_id(cluster_id))
		return ERR(ATT_E_INVAL, "cluster id: 1-63 of [a-z0-9-], not starting with '-'");
	r = att_policy_parse(yaml, len, &doc, reterr, errlen);
	if (r < 0)
		return r;
	js = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	text = strndup(yaml, len);
	r = js && text ? write_version(svc, cluster_id, text, js, actor, &v, ts, reterr, errlen) : ATT_E_NOMEM;
	free(js);
	free(text);
	if (r < 0) {
		json_decref(doc);
		return r;
	}
	*ret = json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "cluster_id", cluster_id, "section", "AgentAttestation", "version",
			 (json_int_t)v, "updated_at", ts, "updated_by", actor->name, "document", doc);
	return *ret ? 0 : ATT_E_NOMEM;
}

int att_policy_delete(const struct att_svc *svc, const char *cluster_id, const struct att_actor *actor,
		      char *reterr, size_t errlen)
{
	char ts[32];
	int64_t v;

	if (!att_valid_cluster_id(cluster_id))
		return ERR(ATT_E_INVAL, "cluster id: 1-63 of [a-z0-9-], not starting with '-'");
	return write_version(svc, cluster_id, NULL, NULL, actor, &v, ts, reterr, errlen);
}

int att_policy_get(const struct att_svc *svc, const char *cluster_id, int64_t version, json_t **ret,
		   char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	json_t *o = NULL;
	int r;

	if (!c)
		return DBFAIL(ATT_E_DB);
	r = version > 0 ? att_dbc_query(c, &s,
					 "SELECT version, yaml, document, created_at, created_by FROM agent_policies"
					 " WHERE cluster_id = ? AND version = ?",
					 "si", cluster_id, version)
			: att_dbc_query(c, &s,
					"SELECT version, yaml, document, created_at, created_by FROM agent_policies"
					" WHERE cluster_id = ? ORDER BY version DESC LIMIT 1",
					"s", cluster_id);
	if (r == 0) {
		r = att_stmt_next(s);
		if (r == 1 && att_stmt_text(s, 1)) {
			json_t *doc = json_loads(att_stmt_text(s, 2), 0, NULL);

			o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "cluster_id", cluster_id, "section",
				      "AgentAttestation", "version", (json_int_t)att_stmt_int(s, 0), "updated_at",
				      att_stmt_text(s, 3), "updated_by", att_stmt_text(s, 4), "yaml", att_stmt_text(s, 1),
				      "document", doc ? doc : json_null());
			r = o ? 0 : ATT_E_NOMEM;
		} else if (r >= 0) {
			r = ATT_E_NOTFOUND;
		}
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND)
		return version > 0 ? ERR(r, "Cluster '%s' has no AgentAttestation version %lld", cluster_id,
					 (long long)version)
				   : ERR(r, "No AgentAttestation configuration for cluster '%s'", cluster_id);
	if (r < 0)
		return DBFAIL(r);
	*ret = o;
	return 0;
}

int att_policy_history(const struct att_svc *svc, const char *cluster_id, json_t **ret, char *reterr,
		       size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	json_t *arr = json_array();
	int r;

	if (!c || !arr) {
		json_decref(arr);
		if (c)
			att_db_release(svc->db, c);
		return c ? ATT_E_NOMEM : DBFAIL(ATT_E_DB);
	}
	r = att_dbc_query(c, &s,
			  "SELECT version, CASE WHEN yaml IS NULL THEN 1 ELSE 0 END, created_at, created_by FROM agent_policies"
			  " WHERE cluster_id = ? ORDER BY version DESC",
			  "s", cluster_id);
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(arr, json_pack("{s:I,s:b,s:s,s:s}", "version",
							     (json_int_t)att_stmt_int(s, 0), "deleted",
							     att_stmt_int(s, 1) != 0, "updated_at", att_stmt_text(s, 2),
							     "updated_by", att_stmt_text(s, 3)));
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return DBFAIL(r);
	}
	*ret = arr;
	return 0;
}
