/* tsa.c - RFC 3161 timestamps for audit checkpoints (see tsa.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ts.h>
#include <openssl/x509_vfy.h>

#include "audit/tsa.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"

#define TSA_MAX_REPLY (256 * 1024)

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct att_buf *b = ud;
	size_t n = size * nmemb;

	return att_buf_append(b, data, n) == 0 ? n : 0;
}

/* DER TimeStampReq for SHA-256(payload) with a random nonce. */
static TS_REQ *make_req(const char *payload, ASN1_INTEGER **ret_nonce)
{
	unsigned char md[SHA256_DIGEST_LENGTH], rnd[8];
	TS_REQ *req = TS_REQ_new();
	TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *nonce = NULL;
	bool ok = false;

	SHA256((const unsigned char *)payload, strlen(payload), md);
	if (!req || !mi || !alg || att_random(rnd, sizeof(rnd)) < 0)
		goto out;
	rnd[0] &= 0x7f;
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	nonce = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ok = nonce && X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) &&
	     TS_MSG_IMPRINT_set_algo(mi, alg) && TS_MSG_IMPRINT_set_msg(mi, md, sizeof(md)) &&
	     TS_REQ_set_version(req, 1) && TS_REQ_set_msg_imprint(req, mi) && TS_REQ_set_nonce(req, nonce) &&
	     TS_REQ_set_cert_req(req, 1);
out:
	BN_free(bn);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(mi);
	if (!ok) {
		ASN1_INTEGER_free(nonce);
		TS_REQ_free(req);
		return NULL;
	}
	*ret_nonce = nonce;
	return req;
}

static int post(const char *url, const unsigned char *der, int derlen, long timeout, struct att_buf *reply,
		char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/timestamp-query");
	long code = 0;
	CURLcode cc = CURLE_OUT_OF_MEMORY;

	if (h && hdr) {
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, der);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)derlen);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK || code != 200) {
		snprintf(err, errlen, "TSA %s: %s", url, cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
		if (cc == CURLE_OK)
			snprintf(err, errlen, "TSA %s answered HTTP %ld", url, code);
		return ATT_E_UNAVAILABLE;
	}
	return 0;
}

/* A granted reply for our request: its token, DER, base64. */
static int reply_token(const struct att_buf *reply, TS_REQ *req, char **ret, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)reply->p;
	TS_RESP *resp = reply->len ? d2i_TS_RESP(NULL, &p, (long)reply->len) : NULL;
	TS_VERIFY_CTX *vc = resp ? TS_REQ_to_TS_VERIFY_CTX(req, NULL) : NULL;
	unsigned char *der = NULL;
	int derlen, r = ATT_E_PARSE;
	PKCS7 *tok;

	if (!resp) {
		snprintf(err, errlen, "TSA reply is not a TimeStampResp");
		goto out;
	}
	/* imprint and nonce only: the TSA's own signature is checked by whoever trusts it */
	TS_VERIFY_CTX_set_flags(vc, TS_VFY_IMPRINT | TS_VFY_NONCE | TS_VFY_VERSION);
	if (!vc || TS_RESP_verify_response(vc, resp) != 1) {
		snprintf(err, errlen, "TSA reply not granted or not for this request");
		goto out;
	}
	tok = TS_RESP_get_token(resp);
	if (!tok || (derlen = i2d_PKCS7(tok, &der)) <= 0)
		goto out;
	*ret = att_b64_encode(der, (size_t)derlen);
	r = *ret ? 0 : ATT_E_NOMEM;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	TS_VERIFY_CTX_free(vc);
	TS_RESP_free(resp);
	return r;
}

int att_tsa_request(const char *url, const char *payload, long timeout_seconds, char **ret_token_b64, char *err,
		    size_t errlen)
{
	ASN1_INTEGER *nonce = NULL;
	TS_REQ *req = make_req(payload, &nonce);
	unsigned char *der = NULL;
	struct att_buf reply;
	int derlen, r;

	*ret_token_b64 = NULL;
	if (!req || (derlen = i2d_TS_REQ(req, &der)) <= 0) {
		TS_REQ_free(req);
		ASN1_INTEGER_free(nonce);
		return ATT_E_NOMEM;
	}
	att_buf_init(&reply, TSA_MAX_REPLY);
	r = post(url, der, derlen, timeout_seconds, &reply, err, errlen);
	if (r == 0)
		r = reply_token(&reply, req, ret_token_b64, err, errlen);
	att_buf_release(&reply);
	OPENSSL_free(der);
	TS_REQ_free(req);
	ASN1_INTEGER_free(nonce);
	return r;
}

static X509_STORE *store_from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
	X509_STORE *st = X509_STORE_new();
	X509 *x;
	int n = 0;

	while (b && st && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		n += X509_STORE_add_cert(st, x) == 1;
		X509_free(x);
	}
	BIO_free(b);
	if (n == 0) {
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

int att_tsa_check(const char *token_b64, const char *payload, const char *ca_pem, char *gen_time, size_t timelen,
		  char *err, size_t errlen)
{
	unsigned char md[SHA256_DIGEST_LENGTH], *mdcopy = NULL;
	uint8_t *der = NULL;
	size_t derlen = 0;
	const unsigned char *p;
	PKCS7 *tok = NULL;
	TS_TST_INFO *info = NULL;
	TS_VERIFY_CTX *vc = TS_VERIFY_CTX_new();
	X509_STORE *st = NULL;
	int r = ATT_E_PARSE, flags = TS_VFY_VERSION | TS_VFY_IMPRINT;

	gen_time[0] = 0;
	if (att_b64_decode(token_b64, strlen(token_b64), &der, &derlen) < 0 || derlen == 0 || derlen > TSA_MAX_REPLY) {
		snprintf(err, errlen, "timestamp_token: not base64 DER");
		goto out;
	}
	p = der;
	tok = d2i_PKCS7(NULL, &p, (long)derlen);
	info = tok ? PKCS7_to_TS_TST_INFO(tok) : NULL;
	if (!info || !vc) {
		snprintf(err, errlen, "timestamp_token: not an RFC 3161 TimeStampToken");
		goto out;
	}
	SHA256((const unsigned char *)payload, strlen(payload), md);
	mdcopy = OPENSSL_memdup(md, sizeof(md));
	if (ca_pem) {
		st = store_from_pem(ca_pem);
		if (!st) {
			snprintf(err, errlen, "the TSA CA certificate cannot be read");
			goto out;
		}
		flags |= TS_VFY_SIGNATURE;
		TS_VERIFY_CTX_set_store(vc, st);
		st = NULL;
	}
	TS_VERIFY_CTX_set_flags(vc, flags);
	TS_VERIFY_CTX_set_imprint(vc, mdcopy, sizeof(md));
	mdcopy = NULL;
	r = ATT_E_CRYPTO;
	if (TS_RESP_verify_token(vc, tok) != 1) {
		unsigned long e = ERR_peek_last_error();

		snprintf(err, errlen, "timestamp does not verify (%s)", e ? ERR_reason_error_string(e) : "imprint");
		goto out;
	}
	snprintf(gen_time, timelen, "%.*s", ASN1_STRING_length(TS_TST_INFO_get_time(info)),
		 (const char *)ASN1_STRING_get0_data(TS_TST_INFO_get_time(info)));
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(mdcopy);
	X509_STORE_free(st);
	TS_VERIFY_CTX_free(vc);
	TS_TST_INFO_free(info);
	PKCS7_free(tok);
	free(der);
	return r;
}
