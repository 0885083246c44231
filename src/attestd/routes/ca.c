/* ca.c - the Enrollment CA for relying parties: the trust bundle, the
 * CRL (DER or PEM) and the OCSP responder (RFC 6960, POST; GET with the
 * base64 request as the last path segment).  No authentication: these
 * are public by design (docs/certificates.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "routes/routes.h"

/* GET /api/v1/ca: PEM bundle, or ?format=json */
static void h_ca(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *fmt = att_req_query(rq, "format");
	char *pem;

	if (!svc->ca) {
		att_resp_error(rs, 503, "Enrollment CA not loaded");
		return;
	}
	if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "pem") != 0) {
		att_resp_error(rs, 422, "format: must be pem or json");
		return;
	}
	pem = att_ca_bundle_pem(svc->ca);
	if (!pem) {
		att_resp_error(rs, 503, "out of memory");
		return;
	}
	if (fmt && strcmp(fmt, "json") == 0) {
		att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s,s:o}", "current_serial", att_ca_serial(svc->ca), "algorithm",
						  att_ca_algorithm(svc->ca), "bundle_pem", pem, "previous_serials",
						  att_ca_previous_serials(svc->ca)));
		free(pem);
		return;
	}
	att_resp_text(rs, 200, "application/x-pem-file", pem, strlen(pem));
}

/* GET /api/v1/ca/crl[?format=pem][&ca=<serial>] */
static void h_crl(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *fmt = att_req_query(rq, "format"), *ca = att_req_query(rq, "ca");
	uint8_t *der = NULL;
	size_t len = 0;
	char err[256] = "";
	int r;

	if (fmt && strcmp(fmt, "pem") != 0 && strcmp(fmt, "der") != 0) {
		att_resp_error(rs, 422, "format: must be der or pem");
		return;
	}
	if (ca && (strlen(ca) == 0 || strlen(ca) > 64 || !att_is_hex(ca, strlen(ca)))) {
		att_resp_error(rs, 404, "No CA with serial %.64s", ca);
		return;
	}
	r = att_cert_crl(svc, ca, &der, &len, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	if (fmt && strcmp(fmt, "pem") == 0) {
		char *b64 = att_b64_encode(der, len), *pem;
		struct att_buf out;

		free(der);
		att_buf_init(&out, 4 * len + 256);
		att_buf_puts(&out, "-----BEGIN X509 CRL-----\n");
		for (size_t i = 0, bl = b64 ? strlen(b64) : 0; i < bl; i += 64) {
			att_buf_append(&out, b64 + i, bl - i < 64 ? bl - i : 64);
			att_buf_puts(&out, "\n");
		}
		att_buf_puts(&out, "-----END X509 CRL-----\n");
		free(b64);
		pem = att_buf_steal(&out, &len);
		if (!b64 || !pem) {
			free(pem);
			att_resp_error(rs, 503, "out of memory");
			return;
		}
		att_resp_text(rs, 200, "application/x-pem-file", pem, len);
		return;
	}
	att_resp_text(rs, 200, "application/pkix-crl", (char *)der, len);
}

static void ocsp_answer(const struct att_svc *svc, const uint8_t *req, size_t len, struct att_resp *rs)
{
	uint8_t *der = NULL;
	size_t dlen = 0;
	char maxage[32];

	if (!svc->ca || att_ca_ocsp_respond(svc->ca, req, len, att_cert_ocsp_lookup, (void *)svc,
					    svc->cfg->crl_validity_hours * 3600, &der, &dlen) < 0) {
		att_resp_error(rs, 503, "OCSP responder unavailable");
		return;
	}
	att_resp_text(rs, 200, "application/ocsp-response", (char *)der, dlen);
	snprintf(maxage, sizeof(maxage), "max-age=%d", 300);
	att_resp_header(rs, "Cache-Control", maxage);
}

/* POST /api/v1/ca/ocsp (application/ocsp-request) */
static void h_ocsp_post(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *ct = att_req_header(rq, "Content-Type");

	if (!ct || strncmp(ct, "application/ocsp-request", 24) != 0) {
		att_resp_error(rs, 415, "Unsupported Media Type — send Content-Type: application/ocsp-request");
		return;
	}
	ocsp_answer(svc, (const uint8_t *)(rq->body.p ? rq->body.p : ""), rq->body.len, rs);
}

/* GET /api/v1/ca/ocsp/{base64 DER request} (RFC 6960 A.1) */
static void h_ocsp_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *in = rq->params[0];
	uint8_t *der = NULL;
	size_t len = 0;

	if (att_b64_decode(in, strlen(in), &der, &len) < 0) {
		ocsp_answer(svc, (const uint8_t *)"", 0, rs);	/* malformedRequest */
		return;
	}
	ocsp_answer(svc, der, len, rs);
	free(der);
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/ca", AUTH_NONE, h_ca, 0, 0, NULL },
	{ "GET", "/api/v1/ca/crl", AUTH_NONE, h_crl, 0, 0, NULL },
	{ "POST", "/api/v1/ca/ocsp", AUTH_NONE, h_ocsp_post, 65536, ATT_ROUTE_ANY_BODY, NULL },
	{ "GET", "/api/v1/ca/ocsp/{*req}", AUTH_NONE, h_ocsp_get, 0, 0, NULL },
};

const struct att_route_set att_routes_ca = { routes, ATT_ARRAY_SIZE(routes) };
