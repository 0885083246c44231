/* node.c - machine-facing registration: POST /api/v1/register,
 * /api/v1/self-register, and the node claims both share with /attest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "routes/routes.h"
#include "approve/approve.h"

/* agent_identity (optional): the JWT from POST /api/v1/agents/attest, for
 * the auto-approval rules that match its attributes */
static const struct att_jfield register_fields[] = {
	ATT_API_NODE_FIELDS,
	{ "agent_identity", ATT_J_STRING, false, 16384 },
};

void att_api_node_release(struct att_api_node *nr)
{
	free(nr->chain_der);
	nr->chain_der = NULL;
}

/* Validate claims and parse the EK; answers 422 itself on failure. */
bool att_api_node_parse(const struct att_svc *svc, json_t *b, struct att_resp *rs, const char *what,
		       struct att_api_node *nr)
{
	const char *fp = att_json_str(b, "ek_fingerprint");
	const char *pem = att_json_str(b, "ek_cert_pem");
	const char *src = att_json_str(b, "ek_source");
	char why[512];
	size_t i;

	memset(nr, 0, sizeof(*nr));
	/* optional: computed from the EK material when absent (the seed's
	 * own register example sends only ek_cert_pem) */
	if (fp && !att_valid_fingerprint(fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: must be a 64-char (SHA-256) or 96-char (SHA-384) hex digest");
		return false;
	}
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert' or 'pub'");
		return false;
	}
	if (src && strcmp(src, "pub") == 0 && svc->cfg->strict) {
		att_resp_error(rs, 422, "ek_source: 'pub' is refused under ITL_STRICT — a bare public key is not an EK certificate");
		return false;
	}
	for (i = 0; pem[i] == ' ' || pem[i] == '\n' || pem[i] == '\r' || pem[i] == '\t'; i++)
		;
	if (pem[i] == '\0') {
		att_resp_error(rs, 422, "ek_cert_pem: EK certificate material is required — %s without TPM evidence is not permitted", what);
		return false;
	}
	if (att_ek_parse(pem, strlen(pem), src ? src : "cert", (time_t)att_now().sec, &nr->ek, why,
			 sizeof(why)) < 0) {
		att_resp_error(rs, 422, "ek_cert_pem: Invalid EK material: %s", why);
		return false;
	}
	if (fp && !att_ek_fingerprint_matches(&nr->ek, fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: EK fingerprint mismatch: agent reported %.12s... but computed %.12s...",
			       fp, nr->ek.fp);
		return false;
	}
	nr->cl.ek_b64 = pem;
	nr->cl.ek_source = src ? src : "cert";
	nr->cl.hw_uuid = att_json_str(b, "hw_uuid");
	nr->cl.hw_serial = att_json_str(b, "hw_serial");
	nr->cl.hw_product = att_json_str(b, "hw_product");
	nr->cl.desired_role = att_json_str(b, "desired_role");
	nr->cl.cluster_id = att_json_str(b, "cluster_id");
	nr->cl.ek_chain_pem = att_json_str(b, "ek_chain_pem");
	if (att_json_str(b, "ek_chain_nv")) {
		const char *nv = att_json_str(b, "ek_chain_nv");

		if (att_b64_decode(nv, strlen(nv), &nr->chain_der, &nr->cl.ek_chain_der_len) < 0) {
			att_resp_error(rs, 422, "ek_chain_nv: not valid base64");
			return false;
		}
		nr->cl.ek_chain_der = nr->chain_der;
	}
	if (att_json_str(b, "hw_mac")) {
		if (!att_normalize_mac(att_json_str(b, "hw_mac"), nr->mac)) {
			att_resp_error(rs, 422, "hw_mac: expected a MAC address like 52:54:00:12:34:56");
			return false;
		}
		nr->cl.hw_mac = nr->mac;
	}
	if (nr->cl.desired_role && !att_role_valid(nr->cl.desired_role)) {
		att_resp_error(rs, 422, "desired_role: must be one of controlplane, worker-infra, worker-app");
		return false;
	}
	if (nr->cl.cluster_id && !att_valid_cluster_id(nr->cl.cluster_id)) {
		att_resp_error(rs, 422, "cluster_id: must match ^[a-z0-9][a-z0-9-]{0,62}$");
		return false;
	}
	return true;
}

/* A new pending machine meets the auto-approval rules (docs/auto-approval.md). */
static void auto_approve(const struct att_svc *svc, struct att_req *rq, bool self, const char *identity,
			 struct att_node_result *res)
{
	const char *tok = att_req_header(rq, "X-Registration-Token");
	struct att_auto_context ctx = { self, NULL, rq->source_ip, NULL };
	json_t *claims = NULL;
	uint8_t md[32];
	char hex[65];

	if (!svc->auto_rules && !svc->cfg->auto_approve_webhook_url[0])
		return;
	if (tok && *tok) {
		att_sha256(tok, strlen(tok), md);
		att_hex_encode(md, sizeof(md), hex);
		ctx.token_sha256 = hex;
	}
	if (identity && att_auto_identity(svc, identity, &res->m, rq->source_ip, &claims) == 0)
		ctx.identity = claims;
	if (att_auto_approve_new(svc, &res->m, &ctx) == 1) {
		res->status = "registered";
		res->message = "Machine approved automatically — poll POST /api/v1/attest to continue";
	}
	json_decref(claims);
}

static void node_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs,
			  bool self)
{
	json_t *b = att_req_json(rq, rs, register_fields, ATT_ARRAY_SIZE(register_fields));
	struct att_node_result res;
	struct att_api_node nr = { 0 };
	char err[512];
	json_t *o;
	int r;

	if (!b)
		return;
	if (!att_api_node_parse(svc, b, rs, self ? "self-registration" : "registration", &nr))
		goto out;
	r = att_machine_register(svc, &nr.ek, &nr.cl, &rq->actor, self, &res, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	if (res.created && strcmp(M(&res.m, STATUS), "pending_approval") == 0)
		auto_approve(svc, rq, self, att_json_str(b, "agent_identity"), &res);
	o = json_pack("{s:s,s:s,s:s}", "machine_id", M(&res.m, MACHINE_ID), "role", M(&res.m, ROLE),
		      "status", res.status);
	att_api_boot_urls(svc, o);
	json_object_set_new(o, "config_token", json_null());
	json_object_set_new(o, "config_url", json_null());
	json_object_set_new(o, "ek_fingerprint", json_string(nr.ek.fp));
	json_object_set_new(o, "message", json_string(res.message));
	att_resp_json(rs, 200, o);
	att_node_result_release(&res);
out:
	att_api_node_release(&nr);
	json_decref(b);
}

static void h_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	node_register(svc, rq, rs, false);
}

static void h_self_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	node_register(svc, rq, rs, true);
}

static const struct att_route routes[] = {
	{ "POST", "/api/v1/register", AUTH_OPTIONAL, h_register, 0, 0, NULL },
	{ "POST", "/api/v1/self-register", AUTH_NONE, h_self_register, 0, 0, NULL },
};

const struct att_route_set att_routes_node = { routes, ATT_ARRAY_SIZE(routes) };
