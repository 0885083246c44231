/* ext-vault.c - an extension that exercises the secret vault's host
 * functions for t0041-secrets.sh: operator routes
 *   POST   /api/v1/ext/vault_probe/{machine}/{name}?value=V&ttl=S -> secret_put
 *   DELETE /api/v1/ext/vault_probe/{machine}/{name}               -> secret_delete
 * answering {"rc": <the host function's result>}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/extension.h"

static const struct att_ext_host *host;

static void answer(struct att_ext_resp *rs, int rc)
{
	char body[32];
	int n = snprintf(body, sizeof(body), "{\"rc\":%d}", rc);

	host->resp_body(rs, 200, "application/json", body, (size_t)n);
}

static void put(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *v = host->req_query(rq, "value"), *ttl = host->req_query(rq, "ttl");

	(void)ud;
	answer(rs, host->secret_put(ext, host->req_param(rq, "machine"), host->req_param(rq, "name"),
				    (const uint8_t *)(v ? v : ""), v ? strlen(v) : 0, ttl ? strtoll(ttl, NULL, 10) : 0));
}

static void del(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	(void)ud;
	answer(rs, host->secret_delete(ext, host->req_param(rq, "machine"), host->req_param(rq, "name")));
}

static int probe_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	const struct att_ext_route p = { .method = "POST", .path = "/api/v1/ext/vault_probe/{machine}/{name}",
					 .auth = ATT_EXT_AUTH_OPERATOR, .fn = put };
	const struct att_ext_route d = { .method = "DELETE", .path = "/api/v1/ext/vault_probe/{machine}/{name}",
					 .auth = ATT_EXT_AUTH_OPERATOR, .fn = del };

	host = h;
	if (!ATT_EXT_HOST_HAS(h, secret_put) || !ATT_EXT_HOST_HAS(h, secret_delete) ||
	    h->add_route(ext, &p) != ATT_EXT_OK || h->add_route(ext, &d) != ATT_EXT_OK) {
		snprintf(err, errlen, "no secret vault host functions, or routes refused");
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

const struct att_ext_info att_extension_v1 = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "vault_probe",
	.version = "1.0.0",
	.description = "test: the secret vault's host functions",
	.init = probe_init,
};
