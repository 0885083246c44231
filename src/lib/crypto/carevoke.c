/* carevoke.c - CRLs and OCSP answers signed by the Enrollment CA
 * (ca.h).  What is revoked lives in the database (src/lib/machine/
 * certrev.c); this file only turns it into signed DER. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "crypto/ca-internal.h"
#include "crypto/ca.h"

static const char *const reason_names[] = {
	[OCSP_REVOKED_STATUS_UNSPECIFIED] = "unspecified",
	[OCSP_REVOKED_STATUS_KEYCOMPROMISE] = "keyCompromise",
	[OCSP_REVOKED_STATUS_CACOMPROMISE] = "cACompromise",
	[OCSP_REVOKED_STATUS_AFFILIATIONCHANGED] = "affiliationChanged",
	[OCSP_REVOKED_STATUS_SUPERSEDED] = "superseded",
	[OCSP_REVOKED_STATUS_CESSATIONOFOPERATION] = "cessationOfOperation",
	[OCSP_REVOKED_STATUS_CERTIFICATEHOLD] = "certificateHold",
	[OCSP_REVOKED_STATUS_PRIVILEGEWITHDRAWN] = "privilegeWithdrawn",
};

static int reason_code(const char *name)
{
	for (size_t i = 0; i < sizeof(reason_names) / sizeof(reason_names[0]); i++)
		if (reason_names[i] && name && strcmp(reason_names[i], name) == 0)
			return (int)i;
	return OCSP_REVOKED_STATUS_UNSPECIFIED;
}

static ASN1_INTEGER *serial_from_hex(const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;

	if (BN_hex2bn(&bn, hex) > 0)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

static int add_entry(X509_CRL *crl, const struct att_crl_entry *e)
{
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *sn = serial_from_hex(e->serial);
	ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
	ASN1_ENUMERATED *rc = ASN1_ENUMERATED_new();
	int ok = rv && sn && t && rc && X509_REVOKED_set_serialNumber(rv, sn) &&
		 X509_REVOKED_set_revocationDate(rv, t) && ASN1_ENUMERATED_set(rc, reason_code(e->reason)) &&
		 X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, rc, 0, 0) && X509_CRL_add0_revoked(crl, rv);

	if (ok)
		rv = NULL;
	X509_REVOKED_free(rv);
	ASN1_INTEGER_free(sn);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(rc);
	return ok ? 0 : ATT_E_CRYPTO;
}

static int der_out(int len, unsigned char *der, uint8_t **ret, size_t *ret_len)
{
	uint8_t *copy;

	if (len <= 0 || !der)
		return ATT_E_CRYPTO;
	copy = malloc((size_t)len);
	if (!copy) {
		OPENSSL_free(der);
		return ATT_E_NOMEM;
	}
	memcpy(copy, der, (size_t)len);
	OPENSSL_free(der);
	*ret = copy;
	*ret_len = (size_t)len;
	return 0;
}

int att_ca_crl_sign(const struct att_ca *ca, const char *ca_serial, int64_t crl_number, int64_t this_update,
		    int64_t next_update, const struct att_crl_entry *e, size_t n, uint8_t **ret, size_t *ret_len)
{
	struct att_ca_gen cur;
	const struct att_ca_gen *g = att_ca_gen_find(ca, ca_serial, &cur);
	X509_CRL *crl;
	ASN1_TIME *tu = NULL, *nu = NULL;
	ASN1_INTEGER *num = NULL;
	X509V3_CTX v3;
	X509_EXTENSION *aki = NULL;
	unsigned char *der = NULL;
	int r = ATT_E_CRYPTO, len;

	if (!g)
		return ATT_E_NOTFOUND;
	crl = X509_CRL_new();
	tu = ASN1_TIME_set(NULL, (time_t)this_update);
	nu = ASN1_TIME_set(NULL, (time_t)next_update);
	num = ASN1_INTEGER_new();
	if (!crl || !tu || !nu || !num || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(g->cert)) || !X509_CRL_set1_lastUpdate(crl, tu) ||
	    !X509_CRL_set1_nextUpdate(crl, nu) || !ASN1_INTEGER_set_int64(num, crl_number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
		goto out;
	X509V3_set_ctx(&v3, g->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	if (!aki || !X509_CRL_add_ext(crl, aki, -1))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (add_entry(crl, &e[i]) < 0)
			goto out;
	if (!X509_CRL_sort(crl) || !X509_CRL_sign(crl, g->key, att_ca_md(g->key)))
		goto out;
	len = i2d_X509_CRL(crl, &der);
	r = der_out(len, der, ret, ret_len);
out:
	X509_EXTENSION_free(aki);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	return r;
}

/* ---- OCSP ------------------------------------------------------------------ */

static int ocsp_status_only(int status, uint8_t **ret, size_t *ret_len)
{
	OCSP_RESPONSE *rsp = OCSP_response_create(status, NULL);
	unsigned char *der = NULL;
	int len, r;

	if (!rsp)
		return ATT_E_NOMEM;
	len = i2d_OCSP_RESPONSE(rsp, &der);
	OCSP_RESPONSE_free(rsp);
	r = der_out(len, der, ret, ret_len);
	return r;
}

/* The CA generation that issued the certificate id names. */
static const struct att_ca_gen *issuer_of(const struct att_ca *ca, OCSP_CERTID *id, struct att_ca_gen *cur)
{
	ASN1_OBJECT *md_obj = NULL;
	const EVP_MD *md;

	if (!OCSP_id_get0_info(NULL, &md_obj, NULL, NULL, id))
		return NULL;
	md = EVP_get_digestbyobj(md_obj);
	if (!md)
		return NULL;
	for (size_t i = 0; i <= ca->nprev; i++) {
		const struct att_ca_gen *g = i == 0 ? att_ca_gen_find(ca, ca->serial, cur) : &ca->prev[i - 1];
		OCSP_CERTID *mine = OCSP_cert_to_id(md, NULL, g->cert);
		int same = mine ? OCSP_id_issuer_cmp(mine, id) == 0 : 0;

		OCSP_CERTID_free(mine);
		if (same)
			return g;
	}
	return NULL;
}

static void hex_serial(const ASN1_INTEGER *ai, char out[80])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;

	snprintf(out, 80, "%s", h ? h : "");
	OPENSSL_free(h);
	BN_free(bn);
}

/* Add one SingleResponse; *signer is the generation that must sign. */
static int answer_one(const struct att_ca *ca, OCSP_BASICRESP *bs, OCSP_ONEREQ *one, att_ocsp_lookup_fn lookup,
		      void *ud, ASN1_TIME *now, ASN1_TIME *next, const struct att_ca_gen **signer,
		      struct att_ca_gen *cur)
{
	OCSP_CERTID *id = OCSP_onereq_get0_id(one);
	ASN1_INTEGER *sn = NULL;
	const struct att_ca_gen *g = issuer_of(ca, id, cur);
	struct att_ocsp_answer a = { .status = ATT_OCSP_UNKNOWN };
	ASN1_TIME *rt = NULL;
	char serial[80];
	int r, st;

	if (!g || (*signer && *signer != g))
		return OCSP_RESPONSE_STATUS_UNAUTHORIZED;
	*signer = g;
	OCSP_id_get0_info(NULL, NULL, NULL, &sn, id);
	hex_serial(sn, serial);
	r = serial[0] ? lookup(ud, g->serial, serial, &a) : 0;
	if (r < 0)
		return OCSP_RESPONSE_STATUS_TRYLATER;
	st = a.status == ATT_OCSP_GOOD ? V_OCSP_CERTSTATUS_GOOD
	     : a.status == ATT_OCSP_REVOKED ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_UNKNOWN;
	if (st == V_OCSP_CERTSTATUS_REVOKED)
		rt = ASN1_TIME_set(NULL, (time_t)a.revoked_at);
	if (!OCSP_basic_add1_status(bs, id, st, st == V_OCSP_CERTSTATUS_REVOKED ? reason_code(a.reason) : -1, rt,
				    now, next)) {
		ASN1_TIME_free(rt);
		return OCSP_RESPONSE_STATUS_INTERNALERROR;
	}
	ASN1_TIME_free(rt);
	return OCSP_RESPONSE_STATUS_SUCCESSFUL;
}

int att_ca_ocsp_respond(const struct att_ca *ca, const uint8_t *req, size_t len, att_ocsp_lookup_fn lookup,
			void *ud, int64_t validity, uint8_t **ret, size_t *ret_len)
{
	const unsigned char *p = req;
	OCSP_REQUEST *rq = len < 65536 ? d2i_OCSP_REQUEST(NULL, &p, (long)len) : NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *rsp = NULL;
	const struct att_ca_gen *signer = NULL;
	struct att_ca_gen cur;
	ASN1_TIME *now = NULL, *next = NULL;
	unsigned char *der = NULL;
	int status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, n, dlen;
	int64_t t = (int64_t)time(NULL);

	if (!rq || p != req + len || (n = OCSP_request_onereq_count(rq)) <= 0 || n > 16)
		goto status_only;
	bs = OCSP_BASICRESP_new();
	now = ASN1_TIME_set(NULL, (time_t)t);
	next = ASN1_TIME_set(NULL, (time_t)(t + validity));
	status = OCSP_RESPONSE_STATUS_INTERNALERROR;
	if (!bs || !now || !next)
		goto status_only;
	for (int i = 0; i < n; i++) {
		status = answer_one(ca, bs, OCSP_request_onereq_get0(rq, i), lookup, ud, now, next, &signer, &cur);
		if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL)
			goto status_only;
	}
	status = OCSP_RESPONSE_STATUS_INTERNALERROR;
	if (OCSP_copy_nonce(bs, rq) <= 0 ||
	    !OCSP_basic_sign(bs, signer->cert, signer->key, att_ca_md(signer->key), NULL, OCSP_NOCERTS | OCSP_RESPID_KEY))
		goto status_only;
	rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	if (!rsp)
		goto status_only;
	dlen = i2d_OCSP_RESPONSE(rsp, &der);
	OCSP_RESPONSE_free(rsp);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(rq);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	return der_out(dlen, der, ret, ret_len);
status_only:
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(rq);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	return ocsp_status_only(status, ret, ret_len);
}
