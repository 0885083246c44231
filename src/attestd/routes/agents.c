/* agents.c - agent attestation (docs/attestation-policies.md):
 *   PUT/GET/DELETE /api/v1/clusters/{id}/config/AgentAttestation  the policy document
 *   GET  /api/v1/clusters/{id}/config/AgentAttestation/versions    its history
 *   POST /api/v1/agents/attest                                     evidence in, identity out
 *   GET  /api/v1/agents                                            recent sessions
 *   GET  /api/v1/agents/jwks                                       keys that sign identities
 *   GET  /api/v1/agents/{session}/certificates                     a session's X.509-SVID */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/csr.h"
#include "machine/machine.h"
#include "policy/policy.h"
#include "routes/routes.h"

#define SECTION "AgentAttestation"

static bool cluster_ok(const char *id, struct att_resp *rs)
{
	if (!att_valid_cluster_id(id)) {
		att_resp_error(rs, 404, "No such cluster '%.63s' — cluster ids are 1-63 of [a-z0-9-]", id);
		return false;
	}
	return true;
}

static bool yaml_ctype(const char *ct)
{
	static const char *const ok[] = { "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
					  "application/json", "text/plain" };
	size_t n;

	if (!ct)
		return true;
	n = strcspn(ct, "; ");
	for (size_t i = 0; i < ATT_ARRAY_SIZE(ok); i++)
		if (n == strlen(ok[i]) && strncasecmp(ct, ok[i], n) == 0)
			return true;
	return false;
}

static void h_policy_put(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[512];
	int r;

	if (!cluster_ok(rq->params[0], rs))
		return;
	if (!yaml_ctype(att_req_header(rq, "Content-Type"))) {
		att_resp_error(rs, 415, "Unsupported Media Type — send the policy document as application/yaml");
		return;
	}
	r = att_policy_put(svc, rq->params[0], rq->body.p ? (const char *)rq->body.p : "", rq->body.len, &rq->actor,
			   &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
}

static void h_policy_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *v = att_req_query(rq, "version");
	uint64_t version = 0;
	json_t *o;
	char err[256];
	int r;

	if (!cluster_ok(rq->params[0], rs))
		return;
	if (v && att_parse_u64(v, strlen(v), 1, INT64_MAX, &version) < 0) {
		att_resp_error(rs, 422, "version: must be a positive integer");
		return;
	}
	r = att_policy_get(svc, rq->params[0], (int64_t)version, &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, o);
}

static void h_policy_versions(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr;
	char err[256];
	int r;

	if (!cluster_ok(rq->params[0], rs))
		return;
	r = att_policy_history(svc, rq->params[0], &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:o}", "cluster_id", rq->params[0], "section", SECTION, "versions", arr));
}

static void h_policy_delete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	char err[256];
	int r;

	if (!cluster_ok(rq->params[0], rs))
		return;
	r = att_policy_delete(svc, rq->params[0], &rq->actor, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, json_pack("{s:s,s:s,s:b}", "cluster_id", rq->params[0], "section", SECTION,
						 "deleted", 1));
}

static const struct att_jfield attest_fields[] = {
	{ "cluster_id", ATT_J_STRING, false, 64 },
	{ "nonce_id", ATT_J_STRING, false, 64 },
	{ "evidence", ATT_J_OBJECT, true, 0 },
	{ "csr_pem", ATT_J_STRING, false, ATT_CSR_MAX_PEM },
};

static void h_agent_attest(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, attest_fields, ATT_ARRAY_SIZE(attest_fields)), *o = NULL, *fails = NULL;
	const char *csr_pem = b ? att_json_str(b, "csr_pem") : NULL;
	struct att_csr csr = { 0 };
	struct att_agent_request ar;
	char err[512];
	int r;

	if (!b)
		return;
	/* the CSR is checked before anything is spent or written (the nonce) */
	if (csr_pem && att_csr_parse(csr_pem, strlen(csr_pem), false, &csr, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "%s", err);
		json_decref(b);
		return;
	}
	ar = (struct att_agent_request){
		.cluster_id = att_json_str(b, "cluster_id") ? att_json_str(b, "cluster_id") : "default",
		.nonce_id = att_json_str(b, "nonce_id"),
		.evidence = json_object_get(b, "evidence"),
		.source_ip = rq->source_ip,
		.csr_key = csr.key,
	};
	r = att_agent_attest(svc, &ar, &o, &fails, err, sizeof(err));
	if (r == 0)
		att_resp_json(rs, 200, o);
	else if (r == ATT_E_FORBIDDEN && fails)
		att_resp_json(rs, 403, json_pack("{s:s,s:o}", "detail", err, "failures", fails));
	else
		att_resp_from_err(rs, r, err);
	att_csr_release(&csr);
	json_decref(b);
}

static void h_agents(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *cl = att_req_query(rq, "cluster_id");
	int64_t page, per_page;
	json_t *o;
	char err[256];
	int r;

	if (cl && !att_valid_cluster_id(cl)) {
		att_resp_error(rs, 422, "cluster_id: 1-63 of [a-z0-9-]");
		return;
	}
	if (!att_api_paging(rq, rs, &page, &per_page, 50))
		return;
	r = att_agent_sessions(svc, cl, page, per_page, &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
}

static void h_agents_jwks(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[256];
	int r;

	(void)rq;
	r = att_agent_jwks(svc, &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, o);
	att_resp_header(rs, "Cache-Control", "public, max-age=300");
}

static bool session_id_ok(const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !strchr(hex, s[i]) || !s[i])
			return false;
	return true;
}

static void h_agent_certs(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr;
	char err[256];
	int r;

	if (!session_id_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Agent session %.64s not found", rq->params[0]);
		return;
	}
	r = att_cert_list_agent(svc, rq->params[0], &arr, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, arr);
}

static const struct att_route routes[] = {
	{ "PUT", "/api/v1/clusters/{id}/config/" SECTION, AUTH_OPERATOR, h_policy_put, 0, ATT_ROUTE_ANY_BODY, NULL },
	{ "GET", "/api/v1/clusters/{id}/config/" SECTION, AUTH_OPERATOR, h_policy_get, 0, 0, NULL },
	{ "DELETE", "/api/v1/clusters/{id}/config/" SECTION, AUTH_OPERATOR, h_policy_delete, 0, 0, NULL },
	{ "GET", "/api/v1/clusters/{id}/config/" SECTION "/versions", AUTH_OPERATOR, h_policy_versions, 0, 0, NULL },
	{ "POST", "/api/v1/agents/attest", AUTH_NONE, h_agent_attest, 256 * 1024, 0, NULL },
	{ "GET", "/api/v1/agents/jwks", AUTH_NONE, h_agents_jwks, 0, 0, NULL },
	{ "GET", "/api/v1/agents", AUTH_OPERATOR, h_agents, 0, 0, NULL },
	{ "GET", "/api/v1/agents/{id}/certificates", AUTH_OPERATOR, h_agent_certs, 0, 0, NULL },
};

const struct att_route_set att_routes_agents = { routes, ATT_ARRAY_SIZE(routes) };
