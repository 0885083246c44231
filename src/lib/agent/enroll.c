/* enroll.c - `attest-agent enroll`: a client certificate for a key the
 * TPM holds (docs/certificates.md).  With the machine attested and its AK
 * bound (`run` did that): GET a challenge, derive the client key, quote
 * the PCRs and certify the key with the AK over the nonce, build the
 * PKCS#10 request around the TPM key and sign it with TPM2_Sign, POST
 * /api/v1/machines/{id}/enroll, and check that the certificate returned
 * is for that key before writing it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/act.h"
#include "agent/agent.h"
#include "agent/enroll.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/csr.h"
#include "obs/log.h"

#define LOGR "attest-agent"

void att_agent_cert_release(struct att_agent_cert *c)
{
	free(c->cert_pem);
	free(c->ca_pem);
	memset(c, 0, sizeof(*c));
}

/* PKCS#10 for the TPM key (subject CN=<machine id>; the service ignores
 * it), signed by the TPM: ECDSA-SHA256 over the DER CertificationRequestInfo. */
static char *build_csr(struct att_tpmdev *d, EVP_PKEY *key, const char *machine_id, char *reterr, size_t errlen)
{
	X509_REQ *req = X509_REQ_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
	unsigned char *tbs = NULL;
	uint8_t dg[32], *sig = NULL;
	size_t sl = 0;
	unsigned int dl = 0;
	char *pem = NULL, *data;
	BIO *b = NULL;
	long n;
	int tl;

	if (!req || !alg || !bits || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					(const unsigned char *)machine_id, -1, -1, 0) ||
	    (tl = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0 || !EVP_Digest(tbs, (size_t)tl, dg, &dl, EVP_sha256(), NULL)) {
		snprintf(reterr, errlen, "cannot build the certificate request");
		goto out;
	}
	if (att_tpmdev_client_sign(d, dg, &sig, &sl, reterr, errlen) < 0)
		goto out;
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL) ||
	    !ASN1_BIT_STRING_set(bits, sig, (int)sl)) {
		snprintf(reterr, errlen, "cannot assemble the certificate request");
		goto out;
	}
	/* all bits used: without this the encoder trims trailing zero bits */
	bits->flags &= ~(long)(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set1_signature_algo(req, alg);
	X509_REQ_set0_signature(req, bits);
	bits = NULL;
	if (X509_REQ_verify(req, key) != 1) {
		snprintf(reterr, errlen, "the TPM's signature over the certificate request does not verify");
		goto out;
	}
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_X509_REQ(b, req) && (n = BIO_get_mem_data(b, &data)) > 0)
		pem = att_strndup(data, (size_t)n);
	if (pem) {	/* what the service will parse must verify too */
		struct att_csr chk = { 0 };

		if (att_csr_parse(pem, strlen(pem), true, &chk, reterr, errlen) < 0) {
			free(pem);
			pem = NULL;
		}
		att_csr_release(&chk);
	}
out:
	BIO_free(b);
	OPENSSL_free(tbs);
	free(sig);
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(alg);
	X509_REQ_free(req);
	return pem;
}

static char *b64(const uint8_t *p, size_t n)
{
	return att_b64_encode(p, n);
}

/* The request body: CSR, nonce, quote, the key and its certification. */
static char *enroll_body(const char *csr, const char *nonce_id, const struct att_tpm_quote_out *q,
			 const struct att_tpm_ak *key, const uint8_t *ci, size_t cil, const uint8_t *cs, size_t csl)
{
	json_t *pcrs = json_object(), *o;
	char *qs = b64(q->attest, q->attest_len), *ss = b64(q->sig, q->sig_len), *ks = b64(key->pub, key->pub_len);
	char *cis = b64(ci, cil), *css = b64(cs, csl), *out = NULL;

	for (size_t i = 0; pcrs && i < q->pcrs.n; i++) {
		char k[32], hex[129];

		snprintf(k, sizeof(k), "%s:%u", att_tpm_bank_name(q->pcrs.v[i].bank), q->pcrs.v[i].index);
		att_hex_encode(q->pcrs.v[i].value, q->pcrs.v[i].len, hex);
		json_object_set_new(pcrs, k, json_string(hex));
	}
	o = qs && ss && ks && cis && css && pcrs
		    ? json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:s}", "csr_pem", csr, "nonce_id", nonce_id, "pcr_quote", qs,
				"pcr_signature", ss, "pcr_values", pcrs, "tpm_key_public", ks, "certify_info", cis,
				"certify_signature", css)
		    : NULL;
	if (o)
		out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(pcrs);
	free(qs);
	free(ss);
	free(ks);
	free(cis);
	free(css);
	return out;
}

/* The answer: a certificate for exactly the TPM key. */
static int enroll_answer(const struct att_http_resp *resp, EVP_PKEY *key, struct att_agent_cert *ret, char *reterr,
			 size_t errlen)
{
	json_t *o = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL);
	const char *pem = json_string_value(json_object_get(o, "certificate_pem"));
	const char *ca = json_string_value(json_object_get(o, "enrollment_ca_pem"));
	const char *serial = json_string_value(json_object_get(o, "serial"));
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *got = x ? X509_get0_pubkey(x) : NULL;
	int r = ATT_E_PARSE;

	if (!got || !ca || !serial || strlen(serial) >= sizeof(ret->serial))
		snprintf(reterr, errlen, "no certificate, CA bundle and serial in the answer");
	else if (EVP_PKEY_eq(got, key) != 1)
		snprintf(reterr, errlen, "the certificate is not for the TPM key");
	else {
		snprintf(ret->serial, sizeof(ret->serial), "%s", serial);
		ret->cert_pem = att_strdup(pem);
		ret->ca_pem = att_strdup(ca);
		r = ret->cert_pem && ret->ca_pem ? 0 : ATT_E_NOMEM;
	}
	X509_free(x);
	BIO_free(b);
	json_decref(o);
	return r;
}

static const char *json_headers[] = { "Accept: application/json", NULL };

enum att_poll att_agent_enroll(struct att_agent *a, const char *dump_file, struct att_agent_cert *ret)
{
	struct att_answer_challenge ch;
	struct att_tpm_quote_out q = { 0 };
	struct att_http_resp r = { 0 };
	struct att_tpm_ak key;
	struct att_tpm_pub kp = { 0 };
	uint8_t *ci = NULL, *cs = NULL;
	size_t cil = 0, csl = 0;
	char url[ATT_URL_MAX], path[160], err[512];
	char *csr = NULL, *body = NULL;
	enum att_poll p;

	memset(ret, 0, sizeof(*ret));
	if (!a->st.machine_id[0] || !a->st.ak_bound)
		return att_agent_refuse(a, "enroll", "the machine has no bound AK yet: run `attest-agent run` until it is attested");
	p = att_agent_ensure_tpm(a);
	if (p != ATT_POLL_OK)
		return p;
	if (att_url_join(a->o->server, "/api/v1/attest/challenge", url, sizeof(url)) < 0)
		return ATT_POLL_FAILED;
	p = att_agent_call(a, "GET", url, json_headers, NULL, ATT_ANSWER_MAX_BODY, &r, "challenge");
	if (p != ATT_POLL_OK)
		goto out;
	if (att_answer_challenge_parse(r.body, r.body_len, &ch, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "challenge: answer", err);
		goto out;
	}
	att_http_resp_release(&r);
	p = ATT_POLL_FAILED;
	if (att_tpmdev_client_key(a->dev, &key, err, sizeof(err)) < 0 ||
	    att_tpm_pub_parse(key.pub, key.pub_len, &kp, err, sizeof(err)) < 0 ||
	    att_tpmdev_quote(a->dev, ch.nonce, ch.nonce_len, &a->o->pcrs, &q, err, sizeof(err)) < 0 ||
	    att_tpmdev_certify(a->dev, ch.nonce, ch.nonce_len, &ci, &cil, &cs, &csl, err, sizeof(err)) < 0 ||
	    !(csr = build_csr(a->dev, kp.pkey, a->st.machine_id, err, sizeof(err)))) {
		att_log_error(LOGR, "enroll: TPM: %s", err);
		goto out;
	}
	body = enroll_body(csr, ch.nonce_id, &q, &key, ci, cil, cs, csl);
	snprintf(path, sizeof(path), "/api/v1/machines/%s/enroll", a->st.machine_id);
	if (!body || att_url_join(a->o->server, path, url, sizeof(url)) < 0)
		goto out;
	if (dump_file) {
		FILE *f = fopen(dump_file, "we");

		p = f && fputs(body, f) >= 0 && fclose(f) == 0 ? ATT_POLL_OK : ATT_POLL_FAILED;
		if (f && p != ATT_POLL_OK)
			fclose(f);
		goto out;
	}
	p = att_agent_call(a, "POST", url, json_headers, body, ATT_ANSWER_MAX_BODY, &r, "enroll");
	if (p == ATT_POLL_OK && enroll_answer(&r, kp.pkey, ret, err, sizeof(err)) < 0)
		p = att_agent_refuse(a, "enroll: answer", err);
	if (p == ATT_POLL_OK)
		att_log_info(LOGR, "enrollment certificate %s issued for the TPM key of machine %s", ret->serial,
			     a->st.machine_id);
out:
	free(body);
	free(csr);
	free(ci);
	free(cs);
	att_tpm_pub_release(&kp);
	att_tpm_quote_out_release(&q);
	att_http_resp_release(&r);
	return p;
}
