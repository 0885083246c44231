/* events.c - lifecycle events as operators see them (docs/events.md):
 * GET /api/v1/events (filters, paging), GET /api/v1/events/{id} (with its
 * deliveries) and POST /api/v1/events/{id}/replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "ext/ext.h"
#include "json/jsonv.h"
#include "routes/routes.h"

/* pending: not settled; dead: settled with a dead delivery; delivered: settled without. */
#define EV_STATUS                                                                                         \
	"CASE WHEN e.delivered_at IS NULL THEN 'pending' WHEN EXISTS (SELECT 1 FROM event_deliveries x"  \
	" WHERE x.event_id = e.id AND x.status = 'dead') THEN 'dead' ELSE 'delivered' END"
#define EV_COLS                                                                                           \
	"e.id, e.event, e.machine_id, e.payload, e.created_at, e.delivered_at, " EV_STATUS ","            \
	" (SELECT COUNT(*) FROM event_deliveries x WHERE x.event_id = e.id),"                            \
	" (SELECT COUNT(*) FROM event_deliveries x WHERE x.event_id = e.id AND x.status = 'pending')"

/* payload: the event as consumers see it (docs/events.md). */
static json_t *event_row_json(const struct att_svc *svc, struct att_stmt *s)
{
	json_t *payload = NULL;
	char *js = NULL;

	if (att_ext_event_doc(svc, att_stmt_int(s, 0), att_stmt_text(s, 2), att_stmt_text(s, 3), &payload, &js) < 0)
		payload = NULL;
	free(js);
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:o}", "id", (json_int_t)att_stmt_int(s, 0), "event",
			 att_api_str_or_null(att_stmt_text(s, 1)), "machine_id", att_api_str_or_null(att_stmt_text(s, 2)),
			 "created_at", att_api_str_or_null(att_stmt_text(s, 4)), "settled_at",
			 att_api_str_or_null(att_stmt_text(s, 5)), "status", att_api_str_or_null(att_stmt_text(s, 6)),
			 "deliveries", (json_int_t)att_stmt_int(s, 7), "pending", (json_int_t)att_stmt_int(s, 8),
			 "payload", payload ? payload : json_null());
}

static bool check_filter(struct att_resp *rs, const char *name, const char *v, size_t max)
{
	if (v && (!*v || strlen(v) > max)) {
		att_resp_error(rs, 422, "%s: must be 1 to %zu characters", name, max);
		return false;
	}
	return true;
}

/* GET /api/v1/events?event=&machine_id=&status=&after_id=&page=&per_page=
 * newest first, or oldest first after after_id (a cursor). */
static void h_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *ev = att_req_query(rq, "event"), *mid = att_req_query(rq, "machine_id");
	const char *st = att_req_query(rq, "status"), *after = att_req_query(rq, "after_id"), *vals[6], *stable;
	char sql[1024], num[3][24];
	int64_t page, per_page;
	uint64_t after_id = 0;
	size_t len;
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *arr;
	int r, n = 0;

	if (!att_api_paging(rq, rs, &page, &per_page, 50) || !check_filter(rs, "event", ev, 64) ||
	    !check_filter(rs, "machine_id", mid, 64))
		return;
	if (st && strcmp(st, "pending") != 0 && strcmp(st, "delivered") != 0 && strcmp(st, "dead") != 0) {
		att_resp_error(rs, 422, "status: must be pending, delivered or dead");
		return;
	}
	if (after && att_parse_u64(after, strlen(after), 0, INT64_MAX, &after_id) < 0) {
		att_resp_error(rs, 422, "after_id: must be an integer >= 0");
		return;
	}
	len = (size_t)snprintf(sql, sizeof(sql), "SELECT " EV_COLS " FROM outbox_events e WHERE 1 = 1");
	if (ev) {
		vals[n++] = ev;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND e.event = ?");
	}
	if (mid) {
		vals[n++] = mid;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND e.machine_id = ?");
	}
	if (st && strcmp(st, "pending") == 0)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND e.delivered_at IS NULL");
	else if (st)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
					" AND e.delivered_at IS NOT NULL AND %sEXISTS (SELECT 1 FROM event_deliveries x"
					" WHERE x.event_id = e.id AND x.status = 'dead')",
					strcmp(st, "dead") == 0 ? "" : "NOT ");
	snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)after_id);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)per_page);
	snprintf(num[2], sizeof(num[2]), "%lld", (long long)((page - 1) * per_page));
	if (after) {
		vals[n++] = num[0];
		snprintf(sql + len, sizeof(sql) - len, " AND e.id > ? ORDER BY e.id LIMIT ? OFFSET ?");
	} else {
		snprintf(sql + len, sizeof(sql) - len, " ORDER BY e.id DESC LIMIT ? OFFSET ?");
	}
	vals[n++] = num[1];
	vals[n++] = num[2];
	stable = att_db_intern(sql);
	c = stable ? att_db_acquire(svc->db) : NULL;
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_dbc_query_texts(c, &s, stable, n, vals);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_api_db_unavailable(rs);
		return;
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(arr, event_row_json(svc, s));
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		att_api_db_unavailable(rs);
		return;
	}
	att_resp_json(rs, 200, json_pack("{s:o,s:I,s:I}", "events", arr, "page", (json_int_t)page, "per_page",
					 (json_int_t)per_page));
}

static bool event_id(struct att_req *rq, struct att_resp *rs, int64_t *ret)
{
	const char *v = rq->params[0];
	uint64_t id;

	if (att_parse_u64(v, strlen(v), 1, INT64_MAX, &id) < 0) {
		att_resp_error(rs, 404, "Event %.32s not found", v);
		return false;
	}
	*ret = (int64_t)id;
	return true;
}

static int deliveries_json(struct att_dbc *c, int64_t id, json_t *arr)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s,
			      "SELECT consumer, status, attempts, next_attempt_at, last_error, created_at, updated_at,"
			      " delivered_at FROM event_deliveries WHERE event_id = ? ORDER BY id",
			      "i", id);

	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		int64_t next = att_stmt_int(s, 3);

		json_array_append_new(
			arr, json_pack("{s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o}", "consumer", att_api_str_or_null(att_stmt_text(s, 0)),
				       "status", att_api_str_or_null(att_stmt_text(s, 1)), "attempts",
				       (json_int_t)att_stmt_int(s, 2), "next_attempt_at",
				       next ? json_integer(next / 1000) : json_null(), "last_error",
				       att_api_str_or_null(att_stmt_text(s, 4)), "created_at",
				       att_api_str_or_null(att_stmt_text(s, 5)), "updated_at",
				       att_api_str_or_null(att_stmt_text(s, 6)), "delivered_at",
				       att_api_str_or_null(att_stmt_text(s, 7))));
	}
	att_stmt_done(s);
	return r;
}

static void h_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *o = NULL, *arr;
	int64_t id;
	int r;

	if (!event_id(rq, rs, &id))
		return;
	c = att_db_acquire(svc->db);
	if (!c) {
		att_api_db_unavailable(rs);
		return;
	}
	r = att_dbc_query(c, &s, "SELECT " EV_COLS " FROM outbox_events e WHERE e.id = ?", "i", id);
	if (r == 0) {
		if ((r = att_stmt_next(s)) == 1)
			o = event_row_json(svc, s);
		att_stmt_done(s);
	}
	arr = json_array();
	if (o && r >= 0)
		r = deliveries_json(c, id, arr);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(o);
		json_decref(arr);
		att_api_db_unavailable(rs);
		return;
	}
	if (!o) {
		json_decref(arr);
		att_resp_error(rs, 404, "Event %lld not found", (long long)id);
		return;
	}
	json_object_set_new(o, "delivery_log", arr);
	att_resp_json(rs, 200, o);
}

static const struct att_jfield replay_fields[] = {
	{ "consumer", ATT_J_STRING, false, 200 },
};

/* Deliver the event again: to every consumer (fanned out afresh, so
 * consumers added since get it too) or to one consumer named in the body. */
static int replay(struct att_dbc *c, int64_t id, const char *consumer, const struct att_actor *actor, char *mid,
		  size_t midlen)
{
	struct att_stmt *s;
	char detail[300];
	int r = att_dbc_begin(c);

	if (r < 0)
		return r;
	r = att_dbc_query(c, &s, "SELECT machine_id FROM outbox_events WHERE id = ?", "i", id);
	if (r == 0) {
		r = att_stmt_next(s);
		if (r == 1)
			snprintf(mid, midlen, "%s", att_stmt_text(s, 0) ? att_stmt_text(s, 0) : "");
		att_stmt_done(s);
		r = r == 1 ? 0 : r == 0 ? ATT_E_NOTFOUND : r;
	}
	if (r == 0 && consumer) {
		r = att_dbc_exec(c, "UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0,"
				    " held_until = 0, holder = NULL, last_error = NULL, delivered_at = NULL"
				    " WHERE event_id = ? AND consumer = ?", "is", id, consumer);
		r = r == 0 ? ATT_E_INVAL : r;
		if (r > 0)
			r = att_dbc_exec(c, "UPDATE outbox_events SET delivered_at = NULL WHERE id = ?", "i", id);
	} else if (r == 0) {
		r = att_dbc_exec(c, "DELETE FROM event_deliveries WHERE event_id = ?", "i", id);
		if (r >= 0)
			r = att_dbc_exec(c, "UPDATE outbox_events SET fanned_at = NULL, delivered_at = NULL WHERE id = ?",
					 "i", id);
	}
	snprintf(detail, sizeof(detail), "event %lld replayed to %.200s", (long long)id, consumer ? consumer : "every consumer");
	if (r >= 0)
		r = att_audit_append(c, actor->name, "event_replay", *mid ? mid : NULL, NULL, NULL, detail, actor->source_ip);
	if (r >= 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	return r < 0 ? r : 0;
}

static void h_replay(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *consumer = NULL;
	char mid[80] = "";
	struct att_dbc *c;
	json_t *b = NULL;
	int64_t id;
	int r;

	if (!event_id(rq, rs, &id))
		return;
	if (rq->body.len > 0) {
		b = att_req_json(rq, rs, replay_fields, ATT_ARRAY_SIZE(replay_fields));
		if (!b)
			return;
		consumer = att_json_str(b, "consumer");
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		json_decref(b);
		att_api_db_unavailable(rs);
		return;
	}
	r = replay(c, id, consumer, &rq->actor, mid, sizeof(mid));
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND)
		att_resp_error(rs, 404, "Event %lld not found", (long long)id);
	else if (r == ATT_E_INVAL)
		att_resp_error(rs, 422, "consumer: event %lld has no delivery to '%.200s'", (long long)id, consumer);
	else if (r < 0)
		att_api_db_unavailable(rs);
	else
		att_resp_json(rs, 202, json_pack("{s:I,s:s,s:s?}", "id", (json_int_t)id, "status", "pending", "consumer",
						 consumer));
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/events", AUTH_OPERATOR, h_list, 0, 0, NULL },
	{ "GET", "/api/v1/events/{id}", AUTH_OPERATOR, h_get, 0, 0, NULL },
	{ "POST", "/api/v1/events/{id}/replay", AUTH_OPERATOR, h_replay, 0, 0, NULL },
};

const struct att_route_set att_routes_events = { routes, ATT_ARRAY_SIZE(routes) };
