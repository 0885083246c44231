/* fleet.c - the machine list with filters, sorting and a total; the fleet
 * summary and the daily timeline.  See fleet.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "fleet/fleet.h"
#include "machine/machine.h"

#define MAX_PARAMS 12

static void set_err(char *reterr, size_t errlen, const char *msg)
{
	if (reterr && errlen)
		snprintf(reterr, errlen, "%s", msg);
}

int att_fleet_ek_parse(const char *s, enum att_fleet_ek *ret)
{
	if (!s || !*s)
		*ret = ATT_FLEET_EK_ANY;
	else if (strcmp(s, "true") == 0)
		*ret = ATT_FLEET_EK_VERIFIED;
	else if (strcmp(s, "false") == 0)
		*ret = ATT_FLEET_EK_FAILED;
	else if (strcmp(s, "unchecked") == 0)
		*ret = ATT_FLEET_EK_UNCHECKED;
	else
		return ATT_E_INVAL;
	return 0;
}

static const char *const sort_keys[] = {
	"id", "machine_id", "hostname", "status", "role", "registered_at", "attested_at", "last_contact_at",
	"ek_manufacturer",
};

int att_fleet_sort_parse(const char *s, struct att_fleet_sort *ret)
{
	bool desc = false;

	if (!s || !*s) {
		ret->column = "id";
		ret->desc = false;
		return 0;
	}
	if (*s == '-') {
		desc = true;
		s++;
	}
	for (size_t i = 0; i < ATT_ARRAY_SIZE(sort_keys); i++) {
		if (strcmp(s, sort_keys[i]) == 0) {
			ret->column = sort_keys[i];
			ret->desc = desc;
			return 0;
		}
	}
	return ATT_E_INVAL;
}

static bool chars_in(const char *s, size_t min, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr(extra, ch)))
			return false;
	}
	return true;
}

int att_fleet_filter_check(const struct att_fleet_filter *f, char *reterr, size_t errlen)
{
	if (f->machine_id && !chars_in(f->machine_id, 1, 64, "-_.")) {
		set_err(reterr, errlen, "machine_id: 1-64 characters of letters, digits, '-', '_' or '.'");
		return ATT_E_INVAL;
	}
	if (f->status && !att_valid_status(f->status)) {
		set_err(reterr, errlen, "status: must be one of pending_approval, registered, attested, locked, revoked");
		return ATT_E_INVAL;
	}
	if (f->role && !att_role_valid(f->role)) {
		set_err(reterr, errlen, "role: must be one of controlplane, worker-infra, worker-app");
		return ATT_E_INVAL;
	}
	if (f->hostname && strlen(f->hostname) > 253) {
		set_err(reterr, errlen, "hostname: longer than 253 characters");
		return ATT_E_INVAL;
	}
	if (f->q && !chars_in(f->q, 1, 64, "-.")) {
		set_err(reterr, errlen, "q: 1-64 characters of letters, digits, '-' or '.' (a hostname or machine id prefix)");
		return ATT_E_INVAL;
	}
	if (f->manufacturer) {
		size_t n = strlen(f->manufacturer);

		if (n > 64) {
			set_err(reterr, errlen, "manufacturer: longer than 64 characters");
			return ATT_E_INVAL;
		}
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)f->manufacturer[i] < 0x20 || (unsigned char)f->manufacturer[i] > 0x7e) {
				set_err(reterr, errlen, "manufacturer: printable ASCII only");
				return ATT_E_INVAL;
			}
		}
	}
	return 0;
}

/* End a read transaction: commit after success, roll back after a failure (r < 0). */
static int read_done(struct att_dbc *c, int r)
{
	if (r == 0)
		return att_dbc_commit(c);
	att_dbc_rollback(c);
	return r;
}

/* ---- the list ------------------------------------------------------------------ */

struct where {
	char sql[768];
	const char *vals[MAX_PARAMS];
	int n;
	char q[72];		/* lowercased prefix + '%' */
	char cutoff[32];	/* silent_for as a timestamp */
};

static void where_add(struct where *w, const char *frag, const char *v1, const char *v2)
{
	size_t len = strlen(w->sql);

	snprintf(w->sql + len, sizeof(w->sql) - len, "%s%s", len ? " AND " : " WHERE ", frag);
	if (v1)
		w->vals[w->n++] = v1;
	if (v2)
		w->vals[w->n++] = v2;
}

static void where_build(struct att_dbc *c, const struct att_fleet_filter *f, struct where *w)
{
	bool pg = att_dbc_is_postgresql(c);

	memset(w, 0, sizeof(*w));
	if (f->machine_id)
		where_add(w, "machine_id = ?", f->machine_id, NULL);
	if (f->status)
		where_add(w, "status = ?", f->status, NULL);
	if (f->role)
		where_add(w, "role = ?", f->role, NULL);
	if (f->hostname)
		where_add(w, "hostname = ?", f->hostname, NULL);
	if (f->q) {
		size_t i = 0;

		for (; f->q[i] && i < sizeof(w->q) - 2; i++)
			w->q[i] = (char)((f->q[i] >= 'A' && f->q[i] <= 'Z') ? f->q[i] + 32 : f->q[i]);
		w->q[i] = '%';
		/* SQLite's LIKE is ASCII case-insensitive (NOCASE indexes);
		 * PostgreSQL's is not (indexes on lower(), text_pattern_ops) */
		where_add(w, pg ? "(lower(hostname) LIKE ? OR lower(machine_id) LIKE ?)"
				: "(hostname LIKE ? OR machine_id LIKE ?)",
			  w->q, w->q);
	}
	if (f->manufacturer && !*f->manufacturer)
		where_add(w, "(ek_manufacturer IS NULL OR ek_manufacturer = '')", NULL, NULL);
	else if (f->manufacturer)
		where_add(w, "ek_manufacturer = ?", f->manufacturer, NULL);
	if (f->ek == ATT_FLEET_EK_VERIFIED)
		where_add(w, "ek_verified = 1", NULL, NULL);
	else if (f->ek == ATT_FLEET_EK_FAILED)
		where_add(w, "ek_verified = 0", NULL, NULL);
	else if (f->ek == ATT_FLEET_EK_UNCHECKED)
		where_add(w, "ek_verified IS NULL", NULL, NULL);
	if (f->silent_for > 0) {
		struct att_time t = att_now();

		t.sec -= f->silent_for;
		att_time_iso(t, w->cutoff);
		where_add(w, "(last_contact_at IS NULL OR last_contact_at < ?)", w->cutoff, NULL);
	}
}

/* Run interned SQL with the filter's values and extra trailing values. */
static int where_query(struct att_dbc *c, const char *sql, const struct where *w, const char *const *extra,
		       int nextra, struct att_stmt **ret)
{
	const char *vals[MAX_PARAMS + 2], *stable = att_db_intern(sql);
	int n = 0;

	if (!stable)
		return ATT_E_NOMEM;
	for (int i = 0; i < w->n; i++)
		vals[n++] = w->vals[i];
	for (int i = 0; i < nextra; i++)
		vals[n++] = extra[i];
	return att_dbc_query_texts(c, ret, stable, n, vals);
}

static int count_matching(struct att_dbc *c, const struct where *w, int64_t *ret)
{
	char sql[1024];
	struct att_stmt *s;
	int r;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM machines%s", w->sql);
	r = where_query(c, sql, w, NULL, 0, &s);
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1)
		*ret = att_stmt_int(s, 0);
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

static json_t *row_json(struct att_stmt *s)
{
	struct att_machine m = { 0 };
	json_t *o;

	m.id = att_stmt_int(s, 0);
	m.wipe_pending = att_stmt_int(s, 1) != 0;
	for (int i = 0; i < _MC_MAX; i++)
		m.col[i] = (char *)att_stmt_text(s, i + 2);
	o = att_machine_detail(&m);
	if (o) {
		const char *lc = att_stmt_text(s, _MC_MAX + 2);

		json_object_set_new(o, "last_contact_at", lc ? json_string(lc) : json_null());
	}
	return o;
}

/* One slice of the ordered result.  The inner query picks the slice's ids
 * from an index (narrow entries); only those rows are read in full. */
static int slice_rows(struct att_dbc *c, const struct where *w, const struct att_fleet_sort *so, int64_t offset,
		      int64_t limit, json_t *arr, int *ret_n)
{
	char sql[2048], order[96], lim[24], off[24];
	const char *extra[2] = { lim, off };
	const char *dir = so->desc ? "DESC" : "ASC";
	struct att_stmt *s;
	int r, n = 0;

	if (strcmp(so->column, "id") == 0)
		snprintf(order, sizeof(order), "id %s", dir);
	else
		snprintf(order, sizeof(order), "%s %s NULLS LAST, id %s", so->column, dir, dir);
	snprintf(sql, sizeof(sql),
		 "SELECT " ATT_MACHINE_COLS ", last_contact_at FROM machines WHERE id IN"
		 " (SELECT id FROM machines%s ORDER BY %s LIMIT ? OFFSET ?) ORDER BY %s",
		 w->sql, order, order);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit);
	snprintf(off, sizeof(off), "%lld", (long long)offset);
	r = where_query(c, sql, w, extra, 2, &s);
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		json_t *o = row_json(s);

		if (!o) {
			r = ATT_E_NOMEM;
			break;
		}
		json_array_append_new(arr, o);
		n++;
	}
	att_stmt_done(s);
	*ret_n = n;
	return r < 0 ? r : 0;
}

#define SLICE 1000

int att_fleet_list(struct att_dbc *c, const struct att_fleet_filter *f, const struct att_fleet_sort *so,
		   int64_t page, int64_t per_page, json_t **ret_page, int64_t *ret_total)
{
	struct where w;
	int64_t total = 0;
	json_t *arr = json_array();
	int r;

	if (!arr)
		return ATT_E_NOMEM;
	where_build(c, f, &w);
	r = att_dbc_begin_read(c);
	if (r == 0)
		r = count_matching(c, &w, &total);
	/* a page is read in slices (the unpaged list, the reference's plain
	 * array, is one page of everything) */
	for (int64_t done = 0; r == 0 && done < per_page;) {
		int64_t want = per_page - done < SLICE ? per_page - done : SLICE;
		int64_t off = (page - 1) * per_page + done;
		int n = 0;

		if (off >= total)
			break;
		r = slice_rows(c, &w, so, off, want, arr, &n);
		if (n < want)
			break;
		done += n;
	}
	r = read_done(c, r);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	*ret_page = arr;
	*ret_total = total;
	return 0;
}

/* ---- summary ---------------------------------------------------------------------- */

static const char *const statuses[] = { "pending_approval", "registered", "attested", "locked", "revoked" };
static const char *const roles[] = { "controlplane", "worker-infra", "worker-app" };

static json_t *zero_counts(const char *const *keys, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, keys[i], json_integer(0));
	return o;
}

static void count_add(json_t *o, const char *key, int64_t n)
{
	json_t *v = key ? json_object_get(o, key) : NULL;

	if (v)
		json_integer_set(v, json_integer_value(v) + n);
}

/* status x role from one index (machines_status_role) */
static int summary_status_role(struct att_dbc *c, json_t *out)
{
	json_t *st = zero_counts(statuses, ATT_ARRAY_SIZE(statuses));
	json_t *ro = zero_counts(roles, ATT_ARRAY_SIZE(roles));
	struct att_stmt *s;
	int64_t total = 0;
	int r;

	if (!st || !ro) {
		json_decref(st);
		json_decref(ro);
		return ATT_E_NOMEM;
	}
	r = att_dbc_query(c, &s, "SELECT status, role, COUNT(*) FROM machines GROUP BY status, role", "");
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1) {
			int64_t n = att_stmt_int(s, 2);

			count_add(st, att_stmt_text(s, 0), n);
			count_add(ro, att_stmt_text(s, 1), n);
			total += n;
		}
		att_stmt_done(s);
	}
	json_object_set_new(out, "total", json_integer(total));
	json_object_set_new(out, "by_status", st);
	json_object_set_new(out, "by_role", ro);
	return r < 0 ? r : 0;
}

/* The entry of one manufacturer (NULL: unknown) in list, added if new. */
static json_t *manufacturer_entry(json_t *list, const char *man)
{
	static const char *const verdicts[] = { "verified", "failed", "unchecked" };
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e) {
		json_t *name = json_object_get(e, "manufacturer");

		if (man ? json_is_string(name) && strcmp(json_string_value(name), man) == 0 : json_is_null(name))
			return e;
	}
	e = zero_counts(verdicts, 3);
	if (!e)
		return NULL;
	json_object_set_new(e, "manufacturer", man ? json_string(man) : json_null());
	json_object_set_new(e, "total", json_integer(0));
	json_array_append_new(list, e);
	return e;
}

/* EK verdicts, overall and by manufacturer (machines_manufacturer) */
static int summary_ek(struct att_dbc *c, json_t *out)
{
	static const char *const verdicts[] = { "verified", "failed", "unchecked" };
	json_t *all = zero_counts(verdicts, 3), *list = json_array();
	struct att_stmt *s;
	int r;

	if (!all || !list) {
		json_decref(all);
		json_decref(list);
		return ATT_E_NOMEM;
	}
	r = att_dbc_query(c, &s, "SELECT ek_manufacturer, ek_verified, COUNT(*) FROM machines GROUP BY ek_manufacturer, ek_verified", "");
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1) {
			const char *man = att_stmt_text(s, 0);
			const char *v = att_stmt_is_null(s, 1) ? "unchecked" : att_stmt_int(s, 1) ? "verified" : "failed";
			int64_t n = att_stmt_int(s, 2);
			json_t *e = manufacturer_entry(list, man && *man ? man : NULL);	/* NULL and '' are unknown */

			if (!e) {
				r = ATT_E_NOMEM;
				break;
			}
			count_add(e, v, n);
			count_add(e, "total", n);
			count_add(all, v, n);
		}
		att_stmt_done(s);
	}
	json_object_set_new(out, "ek", all);
	json_object_set_new(out, "manufacturers", list);
	return r < 0 ? r : 0;
}

/* last-contact ages of attested machines (machines_status_contact) */
static int summary_contact(struct att_dbc *c, int64_t silent_for, json_t *out)
{
	static const int64_t edges[] = { 300, 3600, 86400 };
	char cut[4][32];
	struct att_time now = att_now();
	struct att_stmt *s;
	json_t *o, *ages;
	int r;

	for (int i = 0; i < 3; i++)
		att_time_iso((struct att_time){ now.sec - edges[i], now.usec }, cut[i]);
	att_time_iso((struct att_time){ now.sec - silent_for, now.usec }, cut[3]);
	r = att_dbc_query(c, &s,
			  "SELECT COUNT(*),"
			  " SUM(CASE WHEN last_contact_at IS NULL THEN 1 ELSE 0 END),"
			  " SUM(CASE WHEN last_contact_at >= ? THEN 1 ELSE 0 END),"
			  " SUM(CASE WHEN last_contact_at >= ? THEN 1 ELSE 0 END),"
			  " SUM(CASE WHEN last_contact_at >= ? THEN 1 ELSE 0 END),"
			  " SUM(CASE WHEN last_contact_at IS NULL OR last_contact_at < ? THEN 1 ELSE 0 END)"
			  " FROM machines WHERE status = 'attested'",
			  "ssss", cut[0], cut[1], cut[2], cut[3]);
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		int64_t within[3];

		for (int i = 0; i < 3; i++)
			within[i] = att_stmt_int(s, 2 + i);
		ages = json_pack("[{s:I,s:I},{s:I,s:I},{s:I,s:I},{s:n,s:I}]", "max_seconds", (json_int_t)edges[0], "count",
				 (json_int_t)within[0], "max_seconds", (json_int_t)edges[1], "count",
				 (json_int_t)(within[1] - within[0]), "max_seconds", (json_int_t)edges[2], "count",
				 (json_int_t)(within[2] - within[1]), "max_seconds", "count",
				 (json_int_t)(att_stmt_int(s, 0) - att_stmt_int(s, 1) - within[2]));
		o = json_pack("{s:I,s:I,s:I,s:I,s:o}", "silent_for", (json_int_t)silent_for, "attested",
			      (json_int_t)att_stmt_int(s, 0), "silent", (json_int_t)att_stmt_int(s, 5), "never",
			      (json_int_t)att_stmt_int(s, 1), "ages", ages);
		json_object_set_new(out, "contact", o);
	}
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

int att_fleet_summary(struct att_dbc *c, int64_t silent_for, json_t **ret)
{
	json_t *o = json_object();
	int r;

	if (!o)
		return ATT_E_NOMEM;
	r = att_dbc_begin_read(c);
	if (r == 0)
		r = summary_status_role(c, o);
	if (r == 0)
		r = summary_ek(c, o);
	if (r == 0)
		r = summary_contact(c, silent_for, o);
	r = read_done(c, r);
	if (r < 0) {
		json_decref(o);
		return r;
	}
	*ret = o;
	return 0;
}

/* ---- timeline ---------------------------------------------------------------------- */

static int timeline_count(struct att_dbc *c, const char *column, const char *from, json_t *series,
			  const char *key)
{
	char sql[256];
	const char *stable;
	struct att_stmt *s;
	int r;

	snprintf(sql, sizeof(sql),
		 "SELECT substr(%s, 1, 10), COUNT(*) FROM machines WHERE %s >= ? GROUP BY substr(%s, 1, 10)", column,
		 column, column);
	stable = att_db_intern(sql);	/* statement caches key on the address */
	if (!stable)
		return ATT_E_NOMEM;
	r = att_dbc_query(c, &s, stable, "s", from);
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		const char *day = att_stmt_text(s, 0);
		size_t i;
		json_t *e;

		json_array_foreach(series, i, e) {
			if (day && strcmp(json_string_value(json_object_get(e, "date")), day) == 0) {
				json_object_set_new(e, key, json_integer(att_stmt_int(s, 1)));
				break;
			}
		}
	}
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

int att_fleet_timeline(struct att_dbc *c, int days, json_t **ret)
{
	struct att_time now = att_now();
	json_t *series = json_array();
	char from[32] = "";
	int r;

	if (!series)
		return ATT_E_NOMEM;
	for (int i = days - 1; i >= 0; i--) {
		char ts[32];

		att_time_iso((struct att_time){ (now.sec / 86400 - i) * 86400, 0 }, ts);
		ts[10] = '\0';
		if (i == days - 1)
			snprintf(from, sizeof(from), "%sT00:00:00", ts);
		json_array_append_new(series, json_pack("{s:s,s:i,s:i}", "date", ts, "registered", 0, "attested", 0));
	}
	r = att_dbc_begin_read(c);
	if (r == 0)
		r = timeline_count(c, "registered_at", from, series, "registered");
	if (r == 0)
		r = timeline_count(c, "attested_at", from, series, "attested");
	r = read_done(c, r);
	if (r < 0) {
		json_decref(series);
		return r;
	}
	*ret = json_pack("{s:i,s:o}", "days", days, "series", series);
	return *ret ? 0 : ATT_E_NOMEM;
}
