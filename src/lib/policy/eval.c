/* eval.c - agent attestation: consume the nonce, load the cluster's
 * current policy document, run the attestors of each policy in order
 * (all must pass: AND) and stop at the first policy that passes (OR).
 * The attributes of the passing attestors, namespaced by type, go into
 * the identity (identity.c).  Also the helpers the attestors share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "policy/policy-internal.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))
#define LOGP "attestd.agents"
#define FAILR(...) (snprintf(reason, sizeof(reason), __VA_ARGS__), ATT_E_AUTH)


const char *att_pol_evidence_str(const json_t *evidence, const char *key, size_t max, char *reason, size_t rlen)
{
	const json_t *v = json_object_get(evidence, key);

	if (!v) {
		snprintf(reason, rlen, "missing evidence: %s", key);
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
		snprintf(reason, rlen, "malformed evidence: %s must be a string of 1-%zu bytes", key, max);
		return NULL;
	}
	return json_string_value(v);
}

bool att_pol_allowed(const json_t *config, const char *key, const char *s)
{
	const json_t *list = json_object_get(config, key);

	if (!list)
		return true;
	for (size_t i = 0; i < json_array_size(list); i++)
		if (s && strcmp(json_string_value(json_array_get(list, i)), s) == 0)
			return true;
	return false;
}

int att_pol_pop_message(const struct att_pol_ctx *ctx, const char *type, uint8_t *out, size_t outlen,
			size_t *ret_len, char *reason, size_t rlen)
{
	static const char label[] = "attestation agent proof of possession v1";
	size_t tl = strlen(type), n = sizeof(label) + tl + 1 + ATT_AGENT_NONCE_LEN;

	if (!ctx->nonce)
		return POL_FAIL(ATT_E_AUTH, "nonce required: this attestor signs a server nonce (nonce_id)");
	if (n > outlen)
		return POL_FAIL(ATT_E_INTERNAL, "internal: message buffer");
	memcpy(out, label, sizeof(label));	/* with its NUL */
	memcpy(out + sizeof(label), type, tl + 1);
	memcpy(out + sizeof(label) + tl + 1, ctx->nonce, ATT_AGENT_NONCE_LEN);
	*ret_len = n;
	return 0;
}

uint8_t *att_pol_b64dec(const char *s, size_t *ret_len)
{
	size_t n = strlen(s);
	char *t = malloc(n + 4);
	uint8_t *out = NULL;
	size_t j = 0;

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++)
		t[j++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (j % 4)
		t[j++] = '=';
	if (att_b64_decode(t, j, &out, ret_len) < 0)
		out = NULL;
	free(t);
	return out;
}

/* Run one policy; 0 when every attestor passed (attrs filled), else the
 * failure {policy, attestor, type, reason} appended to failures and a
 * line for the audit detail. */
static int run_policy(const struct att_pol_ctx *ctx, const json_t *pol, const json_t *evidence, json_t *attrs,
		      json_t *failures, char *audit, size_t alen)
{
	const char *pname = json_string_value(json_object_get(pol, "name"));
	const json_t *req = json_object_get(pol, "requiredAttestors");

	for (size_t i = 0; i < json_array_size(req); i++) {
		const json_t *at = json_array_get(req, i), *cfg = json_object_get(at, "config");
		const char *type = json_string_value(json_object_get(at, "type"));
		const struct att_attestor *a = att_attestor_find(type);
		const json_t *ev = json_object_get(evidence, type);
		json_t *mine = json_object();
		char reason[512] = "", safe[160];
		const char *k;
		json_t *v;
		int r;

		if (!mine)
			return ATT_E_NOMEM;
		if (!a)
			r = FAILR("unknown attestor type");
		else if (!ev)
			r = FAILR("missing evidence: no %s evidence in the request", type);
		else if (!json_is_object(ev))
			r = FAILR("malformed evidence: evidence.%s must be an object", type);
		else
			r = a->verify(ctx, json_is_null(cfg) ? NULL : cfg, ev, mine, reason, sizeof(reason));
		if (r < 0) {
			char *colon = strstr(reason, ": ");
			size_t used = strlen(audit);

			snprintf(safe, sizeof(safe), "%.*s", colon ? (int)(colon - reason) : 120, reason);
			json_array_append_new(failures, json_pack("{s:s,s:I,s:s,s:s}", "policy", pname, "attestor",
								  (json_int_t)i, "type", type, "reason", safe));
			snprintf(audit + used, alen - used, "%s%s[%zu] %s: %s", used ? "; " : "", pname, i, type, reason);
			json_decref(mine);
			return r;
		}
		json_object_foreach(mine, k, v) {
			char key[160];

			snprintf(key, sizeof(key), "%s.%s", type, k);
			json_object_set(attrs, key, v);
		}
		json_decref(mine);
	}
	return 0;
}

static int load_policies(const struct att_svc *svc, const char *cluster_id, json_t **ret, char *reterr,
			 size_t errlen)
{
	json_t *cur;
	int r = att_policy_get(svc, cluster_id, 0, &cur, reterr, errlen);

	if (r == ATT_E_NOTFOUND)
		return ERR(ATT_E_FORBIDDEN, "Cluster '%s' has no agent attestation policy", cluster_id);
	if (r < 0)
		return r;
	*ret = json_incref(json_object_get(json_object_get(json_object_get(cur, "document"), "spec"), "policies"));
	json_decref(cur);
	return *ret ? 0 : ERR(ATT_E_INTERNAL, "stored policy document is unreadable");
}

int att_agent_attest(const struct att_svc *svc, const struct att_agent_request *rq, json_t **ret,
		     json_t **ret_failures, char *reterr, size_t errlen)
{
	uint8_t nonce[32];
	struct att_pol_ctx ctx = { .svc = svc, .cluster_id = rq->cluster_id, .nonce_id = rq->nonce_id };
	json_t *pols = NULL, *failures, *attrs = NULL;
	const char *matched = NULL;
	char audit[2048] = "";
	int r;

	*ret_failures = NULL;
	if (!att_valid_cluster_id(rq->cluster_id))
		return ERR(ATT_E_INVAL, "cluster_id: 1-63 of [a-z0-9-], not starting with '-'");
	if (!json_is_object(rq->evidence) || json_object_size(rq->evidence) == 0)
		return ERR(ATT_E_INVAL, "evidence: an object keyed by attestor type is required");
	r = load_policies(svc, rq->cluster_id, &pols, reterr, errlen);
	if (r < 0)
		return r;
	if (rq->nonce_id) {
		/* an unauthenticated write: the source's budget (ratelimit.c) */
		struct att_actor actor = { "machine", false, rq->source_ip, NULL };

		r = att_nonce_consume(svc, rq->nonce_id, &actor, nonce, reterr, errlen);
		if (r < 0) {
			json_decref(pols);
			return r;
		}
		ctx.nonce = nonce;
	}
	ctx.now = att_now().sec;
	failures = json_array();
	for (size_t i = 0; failures && i < json_array_size(pols) && !matched; i++) {
		const json_t *pol = json_array_get(pols, i);

		json_decref(attrs);
		attrs = json_object();
		if (!attrs)
			break;
		r = run_policy(&ctx, pol, rq->evidence, attrs, failures, audit, sizeof(audit));
		if (r == ATT_E_NOMEM)
			break;
		if (r == 0)
			matched = json_string_value(json_object_get(pol, "name"));
	}
	if (!failures || !attrs) {
		r = ATT_E_NOMEM;
	} else if (matched) {
		r = att_agent_issue(svc, rq, matched, attrs, ret, reterr, errlen);
	} else {
		att_log_info(LOGP, "Agent attestation refused: cluster=%s source=%s %s", rq->cluster_id,
			     rq->source_ip ? rq->source_ip : "-", audit);
		/* Audited when a nonce was spent on it: that bounds the
		 * unauthenticated writes by the nonce store's own limits. */
		if (ctx.nonce)
			att_agent_audit_failure(svc, rq, audit);
		*ret_failures = failures;
		failures = NULL;
		r = ERR(ATT_E_FORBIDDEN, "No attestation policy of cluster '%s' was satisfied", rq->cluster_id);
	}
	att_wipe(nonce, sizeof(nonce));
	json_decref(failures);
	json_decref(attrs);
	json_decref(pols);
	return r;
}
