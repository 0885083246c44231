/* report_select.c - which audit entries the signed PDF report lists.
 *
 * Everything when the machine has at most `max` entries.  Otherwise
 * (a flood of unauthenticated re-registrations, say): every operator
 * action, whatever its age, and the newest `newest` entries; what is left
 * out is counted per action with its id range, so the report states
 * exactly what it omits (report.c).  Entries by unauthenticated callers
 * (operator_cn "machine") and by the registration token are the only
 * ones that can be omitted. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audit/report.h"
#include "base/err.h"
#include "db/db.h"

#define COLS "id, timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash"
#define NOT_OPERATOR "operator_cn IN ('machine', 'REGISTRATION_TOKEN')"

static json_t *row_json(struct att_stmt *s)
{
	static const char *const names[] = { "timestamp", "operator_cn", "action", "machine_id", "prev_state",
					     "new_state", "detail", "prev_hash", "entry_hash" };
	json_t *o = json_pack("{s:I}", "id", (json_int_t)att_stmt_int(s, 0));

	for (int i = 0; o && i < 9; i++) {
		const char *v = att_stmt_text(s, i + 1);

		json_object_set_new(o, names[i], v ? json_string(v) : json_null());
	}
	return o;
}

/* Append the rows of a query to arr; in id order when asc, else reversed
 * into place by the caller. */
static int collect(struct att_dbc *c, const char *sql, const char *mid, int64_t limit, json_t *arr)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, sql, "si", mid, limit);

	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		json_t *o = row_json(s);

		if (!o || json_array_append_new(arr, o) < 0) {
			r = ATT_E_NOMEM;
			break;
		}
	}
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

static int64_t id_of(const json_t *e)
{
	return (int64_t)json_integer_value(json_object_get(e, "id"));
}

/* Merge the operator actions (ascending) and the newest entries
 * (descending) into one ascending list without duplicates. */
static json_t *merge(const json_t *ops, const json_t *newest)
{
	json_t *out = json_array();
	size_t i = 0, j = json_array_size(newest);

	while (out && (i < json_array_size(ops) || j > 0)) {
		const json_t *a = i < json_array_size(ops) ? json_array_get(ops, i) : NULL;
		const json_t *b = j > 0 ? json_array_get(newest, j - 1) : NULL;

		if (a && b && id_of(a) == id_of(b)) {
			json_array_append(out, (json_t *)a);
			i++, j--;
		} else if (a && (!b || id_of(a) < id_of(b))) {
			json_array_append(out, (json_t *)a), i++;
		} else {
			json_array_append(out, (json_t *)b), j--;
		}
	}
	return out;
}

static int summarize_omitted(struct att_dbc *c, const char *mid, int64_t below, json_t *omitted)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s,
			      "SELECT action, COUNT(*), MIN(id), MAX(id) FROM audit_log WHERE machine_id = ? AND id < ?"
			      " AND " NOT_OPERATOR " GROUP BY action ORDER BY action",
			      "si", mid, below);

	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(omitted, json_pack("{s:s,s:I,s:I,s:I}", "action", att_stmt_text(s, 0), "count",
							 (json_int_t)att_stmt_int(s, 1), "first_id",
							 (json_int_t)att_stmt_int(s, 2), "last_id",
							 (json_int_t)att_stmt_int(s, 3)));
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

int att_audit_report_select(struct att_dbc *c, const char *mid, int64_t max, int64_t newest,
			    struct att_report_selection *ret)
{
	json_t *ops = NULL, *recent = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	{
		struct att_stmt *s;

		r = att_dbc_query(c, &s, "SELECT COUNT(*) FROM audit_log WHERE machine_id = ?", "s", mid);
		if (r < 0)
			return r;
		if ((r = att_stmt_next(s)) == 1)
			ret->total = att_stmt_int(s, 0);
		att_stmt_done(s);
		if (r < 0)
			return r;
	}
	ret->omitted = json_array();
	if (ret->total <= max) {
		ret->entries = json_array();
		r = collect(c, "SELECT " COLS " FROM audit_log WHERE machine_id = ? ORDER BY id LIMIT ?", mid, max,
			    ret->entries);
		goto out;
	}
	ops = json_array();
	recent = json_array();
	r = collect(c, "SELECT " COLS " FROM audit_log WHERE machine_id = ? AND NOT (" NOT_OPERATOR ") ORDER BY id LIMIT ?",
		    mid, INT64_MAX, ops);
	if (r == 0)
		r = collect(c, "SELECT " COLS " FROM audit_log WHERE machine_id = ? ORDER BY id DESC LIMIT ?", mid, newest,
			    recent);
	if (r == 0) {
		ret->entries = merge(ops, recent);
		ret->n_operator = (int64_t)json_array_size(ops);
		ret->n_newest = (int64_t)json_array_size(recent);
		ret->selected = true;
		r = summarize_omitted(c, mid, id_of(json_array_get(recent, json_array_size(recent) - 1)), ret->omitted);
	}
out:
	json_decref(ops);
	json_decref(recent);
	if (r == 0 && (!ret->entries || !ret->omitted))
		r = ATT_E_NOMEM;
	if (r < 0) {
		json_decref(ret->entries);
		json_decref(ret->omitted);
		memset(ret, 0, sizeof(*ret));
	}
	return r;
}
