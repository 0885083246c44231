/* fleet.c - the fleet seen from above: GET /api/v1/fleet/summary and
 * /api/v1/fleet/timeline, and the query parameters of the machine list
 * (filters, sort) that machines.c hands to the fleet module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "fleet/fleet.h"
#include "routes/routes.h"

/* ?name= as seconds in [min, max]; absent leaves *ret; answers 422 itself. */
static bool query_seconds(struct att_req *rq, struct att_resp *rs, const char *name, uint64_t min, uint64_t max,
			  int64_t *ret)
{
	const char *v = att_req_query(rq, name);
	uint64_t n;

	if (!v)
		return true;
	if (att_parse_u64(v, strlen(v), min, max, &n) < 0) {
		att_resp_error(rs, 422, "%s: must be an integer between %llu and %llu", name, (unsigned long long)min,
			       (unsigned long long)max);
		return false;
	}
	*ret = (int64_t)n;
	return true;
}

bool att_api_fleet_query(struct att_req *rq, struct att_resp *rs, struct att_fleet_filter *f,
			 struct att_fleet_sort *so)
{
	char err[256];

	memset(f, 0, sizeof(*f));
	f->machine_id = att_req_query(rq, "machine_id");
	f->status = att_req_query(rq, "status");
	f->role = att_req_query(rq, "role");
	f->hostname = att_req_query(rq, "hostname");
	f->q = att_req_query(rq, "q");
	f->manufacturer = att_req_query(rq, "manufacturer");
	if (att_fleet_filter_check(f, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "%s", err);
		return false;
	}
	if (att_fleet_ek_parse(att_req_query(rq, "ek_verified"), &f->ek) < 0) {
		att_resp_error(rs, 422, "ek_verified: must be true, false or unchecked");
		return false;
	}
	if (!query_seconds(rq, rs, "silent_for", 1, 315360000, &f->silent_for))
		return false;
	if (att_fleet_sort_parse(att_req_query(rq, "sort"), so) < 0) {
		att_resp_error(rs, 422, "sort: must be one of id, machine_id, hostname, status, role, registered_at,"
					" attested_at, last_contact_at, ek_manufacturer, optionally prefixed by '-' (descending)");
		return false;
	}
	return true;
}

/* One fleet query on a pooled connection; NULL after answering 503. */
static json_t *fleet_query(const struct att_svc *svc, struct att_resp *rs,
			   int (*fn)(struct att_dbc *, int64_t, json_t **), int64_t arg)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	json_t *o = NULL;
	int r = ATT_E_DB;

	if (c) {
		r = fn(c, arg, &o);
		att_db_release(svc->db, c);
	}
	if (r < 0) {
		att_api_db_unavailable(rs);
		return NULL;
	}
	return o;
}

static int timeline(struct att_dbc *c, int64_t days, json_t **ret)
{
	return att_fleet_timeline(c, (int)days, ret);
}

static void h_summary(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	int64_t silent_for = svc->cfg->contact_silent_seconds;
	json_t *o, *dc;

	if (!query_seconds(rq, rs, "silent_for", 1, 315360000, &silent_for))
		return;
	o = fleet_query(svc, rs, att_fleet_summary, silent_for);
	if (!o)
		return;
	dc = json_array();
	for (size_t i = 0; i < svc->cfg->dual_control_roles.n; i++)
		json_array_append_new(dc, json_string(svc->cfg->dual_control_roles.items[i]));
	json_object_set_new(o, "dual_control",
			    json_pack("{s:o,s:I,s:I}", "roles", dc, "quorum", (json_int_t)svc->cfg->dual_control_quorum,
				      "window_seconds", (json_int_t)svc->cfg->dual_control_window_seconds));
	json_object_set_new(o, "contact_resolution_seconds", json_integer(svc->cfg->contact_resolution_seconds));
	att_resp_json(rs, 200, o);
}

static void h_timeline(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	int64_t days = 30;
	json_t *o;

	if (!query_seconds(rq, rs, "days", 1, 366, &days))
		return;
	o = fleet_query(svc, rs, timeline, days);
	if (o)
		att_resp_json(rs, 200, o);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/fleet/summary", AUTH_OPERATOR, h_summary, 0, 0, NULL },
	{ "GET", "/api/v1/fleet/timeline", AUTH_OPERATOR, h_timeline, 0, 0, NULL },
};

const struct att_route_set att_routes_fleet = { routes, ATT_ARRAY_SIZE(routes) };
