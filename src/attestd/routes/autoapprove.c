/* autoapprove.c - GET /api/v1/auto-approval: the auto-approval rules,
 * the decision webhook and the latest decisions (docs/auto-approval.md). */
#include <stdio.h>
#include <string.h>

#include "approve/approve.h"
#include "base/util.h"
#include "routes/routes.h"

static void h_status(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *l = att_req_query(rq, "limit");
	uint64_t limit = 50;
	char err[256];
	json_t *o;
	int r;

	if (l && att_parse_u64(l, strlen(l), 1, 500, &limit) < 0) {
		att_resp_error(rs, 422, "limit: an integer between 1 and 500");
		return;
	}
	r = att_auto_status(svc, (int64_t)limit, &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/auto-approval", AUTH_OPERATOR, h_status, 0, 0, NULL },
};

const struct att_route_set att_routes_autoapprove = { routes, ATT_ARRAY_SIZE(routes) };
