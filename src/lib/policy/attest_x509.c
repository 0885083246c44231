/* attest_x509.c - the attestors built on X.509 and PKCS#7, checked with
 * OpenSSL against trust roots from the config.
 *
 *   x509pop     a certificate chain to caBundle + a signature over the
 *               proof-of-possession message (eval.c) with the leaf's key
 *   aws_iid     the EC2 instance identity document and its detached
 *               PKCS#7 signature (the "pkcs7" IMDS document) by a
 *               configured AWS public certificate
 *   azure_imds  Azure IMDS attested data: PKCS#7 with the JSON inside,
 *               signed by a certificate chaining to configured roots; its
 *               nonce must be the request's (10 digits, see docs) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "policy/policy-internal.h"

#define MAX_PEM (64 * 1024)

static STACK_OF(X509) *pem_certs(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	while (b && sk && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x))
			X509_free(x);
	BIO_free(b);
	if (sk && sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sk = NULL;
	}
	return sk;
}

static int certs_check(const json_t *config, const char *key, char *reason, size_t rlen)
{
	const char *pem = json_string_value(json_object_get(config, key));
	STACK_OF(X509) *sk = pem ? pem_certs(pem) : NULL;

	if (pem && !sk)
		return POL_FAIL(ATT_E_INVAL, "%s: no PEM certificate could be read", key);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

static X509_STORE *store_of(STACK_OF(X509) *roots)
{
	X509_STORE *st = X509_STORE_new();

	for (int i = 0; st && i < sk_X509_num(roots); i++)
		X509_STORE_add_cert(st, sk_X509_value(roots, i));
	if (st)
		X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
	return st;
}

/* ---- x509pop ---------------------------------------------------------------- */

static void x509_attrs(X509 *leaf, json_t *attrs)
{
	char *subj = X509_NAME_oneline(X509_get_subject_name(leaf), NULL, 0);
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	char *ser = bn ? BN_bn2hex(bn) : NULL;
	GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	json_t *uris = json_array(), *dns = json_array();
	unsigned char md[32];
	unsigned int mdl = 0;
	char hex[65];

	for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		ASN1_IA5STRING *s = g->type == GEN_URI ? g->d.uniformResourceIdentifier : g->type == GEN_DNS ? g->d.dNSName : NULL;

		if (s)
			json_array_append_new(g->type == GEN_URI ? uris : dns,
					      json_stringn((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)));
	}
	GENERAL_NAMES_free(sans);
	X509_digest(leaf, EVP_sha256(), md, &mdl);
	att_hex_encode(md, 32, hex);
	if (subj)
		json_object_set_new(attrs, "subject", json_string(subj));
	if (ser)
		json_object_set_new(attrs, "serial", json_string(ser));
	json_object_set_new(attrs, "uri_sans", uris);
	json_object_set_new(attrs, "dns_sans", dns);
	json_object_set_new(attrs, "fingerprint", json_string(hex));
	OPENSSL_free(subj);
	OPENSSL_free(ser);
	BN_free(bn);
}

static int verify_chain(X509_STORE *st, X509 *leaf, STACK_OF(X509) *untrusted, char *reason, size_t rlen)
{
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	int ok = x && X509_STORE_CTX_init(x, st, leaf, untrusted) == 1 && X509_verify_cert(x) == 1;
	int err = x ? X509_STORE_CTX_get_error(x) : 0;

	X509_STORE_CTX_free(x);
	if (!ok)
		return POL_FAIL(ATT_E_AUTH, "untrusted certificate: %s", X509_verify_cert_error_string(err));
	return 0;
}

static int pop_verify(EVP_PKEY *k, const uint8_t *msg, size_t mlen, const uint8_t *sig, size_t slen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int id = EVP_PKEY_get_base_id(k);
	const EVP_MD *h = id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448 ? NULL : EVP_sha256();
	int ok = md && EVP_DigestVerifyInit(md, NULL, h, NULL, k) == 1 && EVP_DigestVerify(md, sig, slen, msg, mlen) == 1;

	EVP_MD_CTX_free(md);
	return ok ? 0 : ATT_E_AUTH;
}

static int x509pop_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			  json_t *attrs, char *reason, size_t rlen)
{
	const char *pem = att_pol_evidence_str(evidence, "certificate_chain", MAX_PEM, reason, rlen);
	const char *sigb64 = pem ? att_pol_evidence_str(evidence, "signature", 2048, reason, rlen) : NULL;
	STACK_OF(X509) *chain = NULL, *roots = NULL;
	X509_STORE *st = NULL;
	uint8_t msg[256], *sig = NULL;
	size_t mlen, slen = 0;
	X509 *leaf;
	int r;

	if (!pem || !sigb64)
		return ATT_E_AUTH;
	r = att_pol_pop_message(ctx, "x509pop", msg, sizeof(msg), &mlen, reason, rlen);
	if (r < 0)
		return r;
	chain = pem_certs(pem);
	if (!chain)
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: certificate_chain holds no PEM certificate");
	roots = pem_certs(json_string_value(json_object_get(config, "caBundle")));
	st = roots ? store_of(roots) : NULL;
	leaf = sk_X509_shift(chain);
	r = st ? verify_chain(st, leaf, chain, reason, rlen) : POL_FAIL(ATT_E_AUTH, "no trust roots: caBundle");
	if (r == 0) {
		sig = att_pol_b64dec(sigb64, &slen);
		if (!sig || pop_verify(X509_get0_pubkey(leaf), msg, mlen, sig, slen) < 0)
			r = POL_FAIL(ATT_E_AUTH, "bad signature: the nonce was not signed by the certificate's key");
	}
	if (r == 0)
		x509_attrs(leaf, attrs);
	free(sig);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(roots, X509_free);
	X509_STORE_free(st);
	return r;
}

static int x509pop_check(const json_t *config, char *reason, size_t rlen)
{
	return certs_check(config, "caBundle", reason, rlen);
}

static const struct att_pol_field x509pop_fields[] = {
	{ "caBundle", PK_STR, true },
};

const struct att_attestor att_attestor_x509pop = { "x509pop", x509pop_fields, ATT_ARRAY_SIZE(x509pop_fields),
						   x509pop_check, x509pop_verify };

/* ---- PKCS#7 ------------------------------------------------------------------ */

/* Verify a base64 DER PKCS#7 signature.  detached: the content is doc;
 * otherwise the embedded content is returned in *ret_content.  signers:
 * the signer must be one of them (no chain); roots: the signer's chain
 * (from the PKCS#7) must end in one of them. */
static int pkcs7_check(const char *b64, const char *doc, STACK_OF(X509) *signers, STACK_OF(X509) *roots,
		       char **ret_content, char *reason, size_t rlen)
{
	size_t dl = 0;
	uint8_t *der = att_pol_b64dec(b64, &dl);
	const unsigned char *p = der;
	PKCS7 *p7 = der ? d2i_PKCS7(NULL, &p, (long)dl) : NULL;
	BIO *in = doc ? BIO_new_mem_buf(doc, -1) : NULL, *out = doc ? NULL : BIO_new(BIO_s_mem());
	X509_STORE *st = roots ? store_of(roots) : NULL;
	int ok, r = 0;

	free(der);
	if (!p7 || !PKCS7_type_is_signed(p7)) {
		PKCS7_free(p7);
		BIO_free(in);
		BIO_free(out);
		X509_STORE_free(st);
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: signature is not a base64 DER PKCS#7 signed-data");
	}
	ok = signers ? PKCS7_verify(p7, signers, NULL, in, out, PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_BINARY)
		     : PKCS7_verify(p7, NULL, st, in, out, PKCS7_BINARY);
	if (ok != 1) {
		r = POL_FAIL(ATT_E_AUTH, "bad signature: the document's PKCS#7 signature does not verify");
	} else if (out) {
		char *data;
		long n = BIO_get_mem_data(out, &data);

		*ret_content = n > 0 && n < 65536 ? att_strndup(data, (size_t)n) : NULL;
		if (!*ret_content)
			r = POL_FAIL(ATT_E_AUTH, "malformed evidence: the signed content is empty or too large");
	}
	PKCS7_free(p7);
	BIO_free(in);
	BIO_free(out);
	X509_STORE_free(st);
	return r;
}

/* ---- aws_iid ------------------------------------------------------------------ */

static int aws_iid_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			  json_t *attrs, char *reason, size_t rlen)
{
	static const char *const keys[][2] = {
		{ "accountId", "account_id" },	 { "region", "region" },	{ "instanceId", "instance_id" },
		{ "instanceType", "instance_type" }, { "imageId", "image_id" }, { "availabilityZone", "availability_zone" },
		{ "architecture", "architecture" },
	};
	const char *doc = att_pol_evidence_str(evidence, "document", 16384, reason, rlen);
	const char *sig = doc ? att_pol_evidence_str(evidence, "signature", 16384, reason, rlen) : NULL;
	STACK_OF(X509) *certs;
	json_t *d;
	int r;

	(void)ctx;
	if (!doc || !sig)
		return ATT_E_AUTH;
	certs = pem_certs(json_string_value(json_object_get(config, "certificates")));
	r = certs ? pkcs7_check(sig, doc, certs, NULL, NULL, reason, rlen) : POL_FAIL(ATT_E_AUTH, "no certificates");
	sk_X509_pop_free(certs, X509_free);
	if (r < 0)
		return r;
	d = json_loads(doc, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(d) || !json_is_string(json_object_get(d, "accountId")) ||
	    !json_is_string(json_object_get(d, "instanceId"))) {
		json_decref(d);
		return POL_FAIL(ATT_E_AUTH, "malformed evidence: the document is not an instance identity document");
	}
	if (!att_pol_allowed(config, "accounts", json_string_value(json_object_get(d, "accountId"))) ||
	    !att_pol_allowed(config, "regions", json_string_value(json_object_get(d, "region")))) {
		json_decref(d);
		return POL_FAIL(ATT_E_AUTH, "account or region not allowed");
	}
	for (size_t i = 0; i < ATT_ARRAY_SIZE(keys); i++)
		if (json_is_string(json_object_get(d, keys[i][0])))
			json_object_set(attrs, keys[i][1], json_object_get(d, keys[i][0]));
	json_decref(d);
	return 0;
}

static int aws_iid_check(const json_t *config, char *reason, size_t rlen)
{
	return certs_check(config, "certificates", reason, rlen);
}

static const struct att_pol_field aws_iid_fields[] = {
	{ "certificates", PK_STR, true },
	{ "accounts", PK_STRLIST, false },
	{ "regions", PK_STRLIST, false },
};

const struct att_attestor att_attestor_aws_iid = { "aws_iid", aws_iid_fields, ATT_ARRAY_SIZE(aws_iid_fields),
						   aws_iid_check, aws_iid_verify };

/* ---- azure_imds ----------------------------------------------------------------- */

/* The 10-digit IMDS nonce derived from the request nonce (docs). */
static void azure_nonce(const uint8_t *nonce, char out[11])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | nonce[i];
	snprintf(out, 11, "%010llu", (unsigned long long)(v % 10000000000ULL));
}

static int azure_expired(const char *exp, int64_t now)
{
	struct tm tm = { 0 };
	const char *end = exp ? strptime(exp, "%m/%d/%y %H:%M:%S", &tm) : NULL;

	if (!end)
		return -1;
	return (int64_t)timegm(&tm) < now ? 1 : 0;
}

static int azure_imds_verify(const struct att_pol_ctx *ctx, const json_t *config, const json_t *evidence,
			     json_t *attrs, char *reason, size_t rlen)
{
	const char *sig = att_pol_evidence_str(evidence, "signature", 32768, reason, rlen);
	STACK_OF(X509) *roots;
	char *content = NULL, want[11];
	json_t *d;
	const char *sub;
	int r;

	if (!sig)
		return ATT_E_AUTH;
	if (!ctx->nonce)
		return POL_FAIL(ATT_E_AUTH, "nonce required: azure_imds attested data must carry the server nonce");
	roots = pem_certs(json_string_value(json_object_get(config, "certificates")));
	r = roots ? pkcs7_check(sig, NULL, NULL, roots, &content, reason, rlen) : POL_FAIL(ATT_E_AUTH, "no roots");
	sk_X509_pop_free(roots, X509_free);
	if (r < 0)
		return r;
	d = json_loads(content, JSON_REJECT_DUPLICATES, NULL);
	free(content);
	azure_nonce(ctx->nonce, want);
	sub = json_string_value(json_object_get(d, "subscriptionId"));
	if (!json_is_object(d) || !sub || !json_is_string(json_object_get(d, "vmId")))
		r = POL_FAIL(ATT_E_AUTH, "malformed evidence: the signed content is not attested data");
	else if (!json_is_string(json_object_get(d, "nonce")) || strcmp(json_string_value(json_object_get(d, "nonce")), want) != 0)
		r = POL_FAIL(ATT_E_AUTH, "wrong nonce: the attested data was made for another request");
	else if (azure_expired(json_string_value(json_object_get(json_object_get(d, "timeStamp"), "expiresOn")), ctx->now) != 0)
		r = POL_FAIL(ATT_E_AUTH, "expired: the attested data's timeStamp.expiresOn is past or unreadable");
	else if (!att_pol_allowed(config, "subscriptions", sub))
		r = POL_FAIL(ATT_E_AUTH, "subscription not allowed: %s", sub);
	if (r == 0) {
		json_object_set(attrs, "vm_id", json_object_get(d, "vmId"));
		json_object_set_new(attrs, "subscription_id", json_string(sub));
		if (json_is_string(json_object_get(d, "sku")))
			json_object_set(attrs, "sku", json_object_get(d, "sku"));
	}
	json_decref(d);
	return r;
}

static int azure_imds_check(const json_t *config, char *reason, size_t rlen)
{
	return certs_check(config, "certificates", reason, rlen);
}

static const struct att_pol_field azure_imds_fields[] = {
	{ "certificates", PK_STR, true },
	{ "subscriptions", PK_STRLIST, false },
};

const struct att_attestor att_attestor_azure_imds = { "azure_imds", azure_imds_fields,
						      ATT_ARRAY_SIZE(azure_imds_fields), azure_imds_check,
						      azure_imds_verify };
