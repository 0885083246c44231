/* ext-wrap.c - a third-party extension that exercises the HSM wrapping
 * key host functions for t0047-pulumi-hsm.sh.  init() opens the key named
 * by WRAP_PROBE_KEY (keeping the result, not failing); operator routes
 *   GET  /api/v1/ext/wrap_probe/key                -> {"rc": open's result, "id": wrapkey_id, "err": ...}
 *   POST /api/v1/ext/wrap_probe/wrap?context=C     body: bytes -> {"rc", "hex": blob}
 *   POST /api/v1/ext/wrap_probe/unwrap?context=C   body: blob as hex -> {"rc", "hex": bytes} */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/extension.h"

static const struct att_ext_host *host;
static struct att_ext_wrapkey *key;
static int open_rc;
static char open_err[256];

static void answer(struct att_ext_resp *rs, int rc, const uint8_t *p, size_t n)
{
	char *body = malloc(2 * n + 400);
	size_t o;

	if (!body)
		return;
	o = (size_t)sprintf(body, "{\"rc\":%d,\"hex\":\"", rc);
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(body + o, "%02x", p[i]);
	o += (size_t)sprintf(body + o, "\",\"id\":\"%s\",\"err\":\"%.200s\"}", key ? host->wrapkey_id(key) : "",
			     open_err);
	host->resp_body(rs, 200, "application/json", body, o);
	free(body);
}

static int nibble(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void info(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	(void)ext;
	(void)rq;
	(void)ud;
	answer(rs, open_rc, NULL, 0);
}

static void op(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	size_t n = 0, m = 0, len;
	const uint8_t *b = host->req_body(rq, &n);
	uint8_t *in, *out;
	int rc = ATT_EXT_INVALID, unwrap = ud != NULL;

	(void)ext;
	in = malloc(n + 1);
	out = malloc(n + ATT_EXT_WRAP_OVERHEAD);
	len = n;
	if (in && unwrap) {
		len = n / 2;
		for (size_t i = 0; i < len; i++) {
			int hi = nibble(b[2 * i]), lo = nibble(b[2 * i + 1]);

			if (hi < 0 || lo < 0)
				len = 0;
			in[i] = (uint8_t)(hi << 4 | lo);
		}
	} else if (in) {
		memcpy(in, b, n);
	}
	if (key && in && out)
		rc = unwrap ? host->wrapkey_unwrap(key, host->req_query(rq, "context"), in, len, out,
						   n + ATT_EXT_WRAP_OVERHEAD, &m)
			    : host->wrapkey_wrap(key, host->req_query(rq, "context"), in, len, out,
						 n + ATT_EXT_WRAP_OVERHEAD, &m);
	answer(rs, rc, out, rc == ATT_EXT_OK ? m : 0);
	free(in);
	free(out);
}

static int probe_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	static int yes = 1;
	const struct att_ext_route i = { .method = "GET", .path = "/api/v1/ext/wrap_probe/key",
					 .auth = ATT_EXT_AUTH_OPERATOR, .fn = info };
	const struct att_ext_route w = { .method = "POST", .path = "/api/v1/ext/wrap_probe/wrap",
					 .auth = ATT_EXT_AUTH_OPERATOR, .flags = ATT_EXT_ROUTE_ANY_BODY, .fn = op };
	const struct att_ext_route u = { .method = "POST", .path = "/api/v1/ext/wrap_probe/unwrap",
					 .auth = ATT_EXT_AUTH_OPERATOR, .flags = ATT_EXT_ROUTE_ANY_BODY, .fn = op,
					 .ud = &yes };

	host = h;
	if (!ATT_EXT_HOST_HAS(h, wrapkey_close) || h->add_route(ext, &i) != ATT_EXT_OK ||
	    h->add_route(ext, &w) != ATT_EXT_OK || h->add_route(ext, &u) != ATT_EXT_OK) {
		snprintf(err, errlen, "no wrapping key host functions, or routes refused");
		return ATT_EXT_ERROR;
	}
	open_rc = h->wrapkey_open(ext, getenv("WRAP_PROBE_KEY") ? getenv("WRAP_PROBE_KEY") : "", &key, open_err,
				  sizeof(open_err));
	return ATT_EXT_OK;
}

static void probe_stop(struct att_ext *ext)
{
	(void)ext;
	if (key)
		host->wrapkey_close(key);
	key = NULL;
}

const struct att_ext_info att_extension_v1 = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "wrap_probe",
	.version = "1.0.0",
	.description = "test: the HSM wrapping key host functions",
	.init = probe_init,
	.stop = probe_stop,
};
