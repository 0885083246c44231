/* pcr_policies.c - per-role PCR policies: GET/PUT/DELETE /api/v1/pcr-policies[/{role}]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "routes/routes.h"
#include "talos/machineconfig.h"

static bool role_param_ok(const char *role, struct att_resp *rs)
{
	if (!att_role_valid(role)) {
		att_resp_error(rs, 404, "No such role '%.64s' — roles are controlplane, worker-infra, worker-app", role);
		return false;
	}
	return true;
}

static void h_pcr_policies(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr;
	char err[256];
	int r;

	(void)rq;
	r = att_pcr_policy_list(svc, &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(arr), "policies", arr));
}

static void h_pcr_policy_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[256];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	r = att_pcr_policy_get(svc, rq->params[0], &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, o);
}

static const struct att_jfield policy_put_fields[] = {
	{ "pcrs", ATT_J_OBJECT, true, 0 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_pcr_policy_put(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b, *o;
	char err[512];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	b = att_req_json(rq, rs, policy_put_fields, ATT_ARRAY_SIZE(policy_put_fields));
	if (!b)
		return;
	r = att_pcr_policy_put(svc, rq->params[0], json_object_get(b, "pcrs"), att_json_str(b, "reason"), &rq->actor,
			       &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
	json_decref(b);
}

static const struct att_jfield policy_delete_fields[] = {
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_pcr_policy_delete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	char err[256];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	b = att_req_json(rq, rs, policy_delete_fields, ATT_ARRAY_SIZE(policy_delete_fields));
	if (!b)
		return;
	r = att_pcr_policy_delete(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, json_pack("{s:s,s:b}", "role", rq->params[0], "deleted", 1));
	json_decref(b);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/pcr-policies", AUTH_OPERATOR, h_pcr_policies, 0, 0, NULL },
	{ "GET", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_get, 0, 0, NULL },
	{ "PUT", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_put, 0, 0, NULL },
	{ "DELETE", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_delete, 0, 0, NULL },
};

const struct att_route_set att_routes_pcr_policies = { routes, ATT_ARRAY_SIZE(routes) };
