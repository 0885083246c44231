/* attest_http.c - the attestors that make the server call out, and the
 * HTTP client they (and the JWKS fetches) share.
 *
 * http_dns: the agent names a hostname under an allowed domain; the
 * server fetches http://<hostname>:<port>/.well-known/attestation-agent/
 * <nonce_id> and expects the challenge nonce (base64) as the body — only
 * whoever controls that name's address can answer.
 *
 * extension: a configured webhook decides.  The server POSTs {cluster_id,
 * nonce_id, nonce, evidence} and expects 200 {"allow": true|false,
 * "attributes": {...}, "reason": "..."}.
 *
 * Addresses the agent can steer (http_dns) must not be loopback, private,
 * link-local (cloud metadata) or otherwise internal unless the operator
 * allows it (ITL_AGENT_ALLOW_PRIVATE or allowPrivate in the config); the
 * check is made on the socket address curl is about to connect to, so
 * DNS answers cannot move it after the check.  No redirects are followed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "machine/machine.h"
#include "policy/policy-internal.h"

struct body {
	char *p;
	size_t len, max;
	bool over;
};

static size_t on_body(char *d, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = sz * n;
	char *np;

	if (b->len + add > b->max) {
		b->over = true;
		return 0;
	}
	np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, d, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

static bool internal_v4(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
	       (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
}

/* True for every address an agent must not make the server talk to. */
static bool internal_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return internal_v4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(a, mapped, 12) == 0)
			return internal_v4(a + 12);
		return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a) ||
		       IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)a) || (a[0] & 0xfe) == 0xfc ||
		       (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || a[0] == 0xff;
	}
	return true;
}

struct sockcheck {
	bool allow_private;
	bool refused;
};

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct sockcheck *sc = ud;

	if (purpose != CURLSOCKTYPE_IPCXN || (!sc->allow_private && internal_addr(&a->addr))) {
		sc->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

int att_pol_http(const char *method, const char *url, const char *body, bool allow_private, long timeout_ms,
		 size_t max, long *ret_status, char **ret_body, char *reason, size_t rlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct body b = { .max = max };
	struct sockcheck sc = { .allow_private = allow_private };
	CURLcode cr;

	if (!h)
		return POL_FAIL(ATT_E_NOMEM, "out of memory");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &sc);
	if (body) {
		hdr = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	(void)method;
	cr = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (sc.refused) {
		free(b.p);
		return POL_FAIL(ATT_E_FORBIDDEN, "address refused: %.200s resolves to an internal address", url);
	}
	if (b.over) {
		free(b.p);
		return POL_FAIL(ATT_E_LIMIT, "response too large: %.200s answered more than %zu bytes", url, max);
	}
	if (cr != CURLE_OK) {
		free(b.p);
		return POL_FAIL(ATT_E_UNAVAILABLE, "unreachable: %.200s: %s", url, curl_easy_strerror(cr));
	}
	*ret_body = b.p ? b.p : att_strdup("");
	return *ret_body ? 0 : POL_FAIL(ATT_E_NOMEM, "out of memory");
}

/* ---- http_dns ------------------------------------------------------------- */

static bool hostname_under(const char *host, const json_t *domains)
{
	size_t hl = strlen(host);

	for (size_t i = 0; i < json_array_size(domains); i++) {
		const char *d = json_string_value(json_array_get(domains, i));
		size_t dl = strlen(d);

		if (hl == dl && strcasecmp(host, d) == 0)
			return true;
		if (hl > dl + 1 && host[hl - dl - 1] == '.' && strcasecmp(host + hl - dl, d) == 0)
			return true;
	}
	return false;
}

static int http_dns_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			   json_t *attrs, char *reason, size_t rlen)
{
	const char *host = att_pol_evidence_str(evidence, "hostname", 253, reason, rlen);
	json_int_t port = json_integer_value(json_object_get(config, "port"));
	bool priv = json_is_true(json_object_get(config, "allowPrivate")) || ctx->svc->cfg->agent_allow_private;
	char url[512], *want, *body = NULL;
	long status = 0;
	int r;

	if (!host)
		return ATT_E_AUTH;
	if (!att_valid_hostname(host))
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: hostname must be a DNS name");
	if (!hostname_under(host, json_object_get(config, "allowedDomains")))
		return POL_FAIL(ATT_E_AUTH, "hostname not allowed: %s is not under an allowed domain", host);
	if (!ctx->nonce)
		return POL_FAIL(ATT_E_AUTH, "nonce required: http_dns serves the server's nonce (nonce_id)");
	if (port == 0)
		port = 80;
	snprintf(url, sizeof(url), "http://%s:%lld/.well-known/attestation-agent/%s", host, (long long)port,
		 ctx->nonce_id);
	r = att_pol_http("GET", url, NULL, priv, 5000, 1024, &status, &body, reason, rlen);
	if (r < 0)
		return r == ATT_E_NOMEM ? r : ATT_E_AUTH;
	want = att_b64_encode(ctx->nonce, ATT_AGENT_NONCE_LEN);
	{
		size_t bl = strlen(body);

		while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
			body[--bl] = '\0';
		r = status == 200 && want && att_ct_equal(body, bl, want, strlen(want))
			    ? 0
			    : POL_FAIL(ATT_E_AUTH, "challenge not served: %s answered %ld without the nonce", url, status);
	}
	free(want);
	free(body);
	if (r == 0) {
		json_object_set_new(attrs, "hostname", json_string(host));
		json_object_set_new(attrs, "port", json_integer(port));
	}
	return r;
}

static const struct att_pol_field http_dns_fields[] = {
	{ "allowedDomains", PK_STRLIST, true },
	{ "port", PK_INT, false },
	{ "allowPrivate", PK_BOOL, false },
};

const struct att_attestor att_attestor_http_dns = { "http_dns", http_dns_fields, ATT_ARRAY_SIZE(http_dns_fields),
						    NULL, http_dns_verify };

/* ---- extension ------------------------------------------------------------ */

static int extension_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			    json_t *attrs, char *reason, size_t rlen)
{
	const char *url = json_string_value(json_object_get(config, "url"));
	json_int_t tmo = json_integer_value(json_object_get(config, "timeoutSeconds"));
	char *nonce = ctx->nonce ? att_b64_encode(ctx->nonce, ATT_AGENT_NONCE_LEN) : NULL;
	json_t *req = json_pack("{s:s,s:s?,s:s?,s:O}", "cluster_id", ctx->cluster_id, "nonce_id", ctx->nonce_id,
				"nonce", nonce, "evidence", evidence);
	char *js = req ? json_dumps(req, JSON_COMPACT) : NULL, *body = NULL;
	json_t *ans = NULL, *a;
	long status = 0;
	int r;

	free(nonce);
	json_decref(req);
	if (!js)
		return POL_FAIL(ATT_E_NOMEM, "out of memory");
	r = att_pol_http("POST", url, js, true, (tmo > 0 ? tmo : 5) * 1000, 65536, &status, &body, reason, rlen);
	free(js);
	if (r < 0)
		return r == ATT_E_NOMEM ? r : ATT_E_AUTH;
	ans = status == 200 ? json_loads(body, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(body);
	if (!json_is_object(ans) || !json_is_boolean(json_object_get(ans, "allow"))) {
		json_decref(ans);
		return POL_FAIL(ATT_E_AUTH, "extension failed: %s answered %ld without {\"allow\": bool}", url, status);
	}
	if (!json_is_true(json_object_get(ans, "allow"))) {
		const char *why = json_string_value(json_object_get(ans, "reason"));

		r = POL_FAIL(ATT_E_AUTH, "denied by extension: %.200s", why ? why : "no reason given");
		json_decref(ans);
		return r;
	}
	a = json_object_get(ans, "attributes");
	if (a && json_is_object(a)) {
		const char *k;
		json_t *v;

		json_object_foreach(a, k, v)
			if (strlen(k) <= 64 && (json_is_string(v) || json_is_integer(v) || json_is_boolean(v)))
				json_object_set(attrs, k, v);
	}
	json_decref(ans);
	return 0;
}

static const struct att_pol_field extension_fields[] = {
	{ "url", PK_URL, true },
	{ "timeoutSeconds", PK_INT, false },
};

const struct att_attestor att_attestor_extension = { "extension", extension_fields,
						     ATT_ARRAY_SIZE(extension_fields), NULL, extension_verify };
