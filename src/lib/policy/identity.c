/* identity.c - what a passing agent receives: a session (recorded, with
 * its audit entry, in one transaction) and a short-lived JWT signed by
 * the enrollment CA's key (ES384 for the default P-384 CA, RS256 for an
 * RSA CA), whose public key is served as a JWK set.  Claims: iss (the
 * service URL), sub (spiffe://<trust domain>/agent/<cluster>/<policy>/
 * <session>), aud "attestation-agent", iat, nbf, exp, jti (the session
 * id), cluster, policy and attrs (the attestors' namespaced attributes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "machine/machine.h"
#include "policy/policy-internal.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))
#define DBFAIL(r) att_machine_db_fail((r), reterr, errlen)

/* kid: base64url SHA-256 of the CA certificate's SubjectPublicKeyInfo. */
static int key_id(X509 *cert, char out[48])
{
	unsigned char *der = NULL;
	uint8_t h[32];
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	char *s;

	if (n <= 0)
		return ATT_E_CRYPTO;
	att_sha256(der, (size_t)n, h);
	OPENSSL_free(der);
	s = att_b64url_encode(h, sizeof(h));
	if (!s)
		return ATT_E_NOMEM;
	snprintf(out, 48, "%s", s);
	free(s);
	return 0;
}

static bool is_ec(EVP_PKEY *k)
{
	return EVP_PKEY_get_base_id(k) == EVP_PKEY_EC;
}

/* JWS signature of input: ES384 (raw r||s, 48 bytes each) or RS256. */
static char *jws_sign(EVP_PKEY *k, const char *input)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t slen = 0;
	char *out = NULL;

	if (!md || EVP_DigestSignInit(md, NULL, is_ec(k) ? EVP_sha384() : EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(md, NULL, &slen, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = malloc(slen)) ||
	    EVP_DigestSign(md, sig, &slen, (const unsigned char *)input, strlen(input)) != 1)
		goto done;
	if (is_ec(k)) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
		uint8_t raw[96];

		if (!es || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48) != 48 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48) != 48) {
			ECDSA_SIG_free(es);
			goto done;
		}
		ECDSA_SIG_free(es);
		out = att_b64url_encode(raw, sizeof(raw));
	} else {
		out = att_b64url_encode(sig, slen);
	}
done:
	free(sig);
	EVP_MD_CTX_free(md);
	return out;
}

static char *b64url_json(const json_t *o)
{
	char *js = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	char *out = js ? att_b64url_encode((const uint8_t *)js, strlen(js)) : NULL;

	free(js);
	return out;
}

static int make_token(const struct att_svc *svc, json_t *claims, char **ret, char *reterr, size_t errlen)
{
	EVP_PKEY *k;
	X509 *cert;
	char kid[48], *h = NULL, *p = NULL, *in = NULL, *sig = NULL;
	json_t *hdr;
	int r;

	if (!svc->ca || att_ca_key(svc->ca, &k, &cert) < 0 || key_id(cert, kid) < 0)
		return ERR(ATT_E_UNAVAILABLE, "The enrollment CA is not available to sign agent identities");
	hdr = json_pack("{s:s,s:s,s:s}", "alg", is_ec(k) ? "ES384" : "RS256", "typ", "JWT", "kid", kid);
	h = hdr ? b64url_json(hdr) : NULL;
	p = b64url_json(claims);
	in = h && p ? att_asprintf("%s.%s", h, p) : NULL;
	sig = in ? jws_sign(k, in) : NULL;
	*ret = sig ? att_asprintf("%s.%s", in, sig) : NULL;
	r = *ret ? 0 : ERR(ATT_E_CRYPTO, "Could not sign the agent identity");
	json_decref(hdr);
	free(h);
	free(p);
	free(in);
	free(sig);
	return r;
}

static int record(const struct att_svc *svc, const struct att_agent_request *rq, const char *sid,
		  const char *policy, const char *spiffe, const char *attrs, const char *iat, const char *exp,
		  const struct att_ca_leaf *leaf, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char detail[512];
	int r = att_machine_tx_begin(svc, &c, reterr, errlen);

	if (r < 0)
		return r;
	snprintf(detail, sizeof(detail), "cluster=%s policy=%s session=%s spiffe_id=%s", rq->cluster_id, policy, sid,
		 spiffe);
	r = att_dbc_exec(c,
			 "INSERT INTO agent_sessions (session_id, cluster_id, policy, spiffe_id, attributes,"
			 " source_ip, issued_at, expires_at, cert_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "sssssssss", sid, rq->cluster_id, policy, spiffe, attrs, rq->source_ip, iat, exp,
			 leaf ? leaf->serial : NULL);
	if (r > 0)
		r = 0;	/* rows changed */
	if (r == 0)
		r = att_audit_append(c, "agent", "agent_attested", NULL, NULL, NULL, detail, rq->source_ip);
	if (r == 0 && leaf)
		r = att_agent_svid_record(c, leaf, rq, sid, spiffe);
	if (r < 0)
		r = DBFAIL(r);
	return att_machine_tx_end(svc, c, r, reterr, errlen);
}

int att_agent_issue(const struct att_svc *svc, const struct att_agent_request *rq, const char *policy,
		    json_t *attributes, json_t **ret, char *reterr, size_t errlen)
{
	const struct att_config *cfg = svc->cfg;
	struct att_time now = att_now();
	struct att_ca_leaf leaf = { 0 };
	char sid[37], iat[32], exp[32], *spiffe = NULL, *tok = NULL, *attrs = NULL;
	json_t *claims = NULL;
	int r;

	if (att_uuid4(sid) < 0)
		return ERR(ATT_E_CRYPTO, "no randomness");
	att_time_iso(now, iat);
	att_time_iso((struct att_time){ now.sec + cfg->agent_token_ttl_seconds, 0 }, exp);
	spiffe = att_asprintf("spiffe://%s/agent/%s/%s/%s", cfg->agent_trust_domain, rq->cluster_id, policy, sid);
	attrs = json_dumps(attributes, JSON_COMPACT | JSON_SORT_KEYS);
	if (spiffe && attrs)
		claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:O}", "iss", cfg->service_url, "sub", spiffe,
				   "aud", "attestation-agent", "iat", (json_int_t)now.sec, "nbf", (json_int_t)now.sec,
				   "exp", (json_int_t)(now.sec + cfg->agent_token_ttl_seconds), "jti", sid, "cluster",
				   rq->cluster_id, "policy", policy, "attrs", attributes);
	r = claims ? make_token(svc, claims, &tok, reterr, errlen) : ATT_E_NOMEM;
	if (r == 0 && rq->csr_key)
		r = att_agent_svid_make(svc, rq->csr_key, sid, spiffe, attrs, &leaf, reterr, errlen);
	if (r == 0)
		r = record(svc, rq, sid, policy, spiffe, attrs, iat, exp, rq->csr_key ? &leaf : NULL, reterr, errlen);
	if (r == 0) {
		*ret = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:s,s:s}", "session_id", sid, "cluster_id", rq->cluster_id,
				 "policy", policy, "spiffe_id", spiffe, "attributes", attributes, "token", tok,
				 "token_type", "JWT", "issued_at", iat, "expires_at", exp);
		if (*ret && rq->csr_key) {
			att_agent_svid_log(&leaf, sid, spiffe);
			json_object_set_new(*ret, "svid", att_agent_svid_json(svc, &leaf, spiffe));
		}
		r = *ret ? 0 : ATT_E_NOMEM;
	}
	att_ca_leaf_release(&leaf);
	json_decref(claims);
	free(spiffe);
	free(attrs);
	free(tok);
	return r;
}

int att_agent_audit_failure(const struct att_svc *svc, const struct att_agent_request *rq, const char *detail)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	char d[1100];
	int r;

	if (!c)
		return ATT_E_DB;
	snprintf(d, sizeof(d), "cluster=%s %.1000s", rq->cluster_id, detail);
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_audit_append(c, "agent", "agent_attest_refused", NULL, NULL, NULL, d, rq->source_ip);
	if (r == 0)
		r = att_dbc_commit(c);
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(svc->db, c);
	return r;
}

int att_agent_sessions(const struct att_svc *svc, const char *cluster_id, int64_t page, int64_t per_page,
		       json_t **ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	json_t *arr = json_array();
	int64_t total = 0, off = (page - 1) * per_page;
	int r;

	if (!c || !arr) {
		json_decref(arr);
		if (c)
			att_db_release(svc->db, c);
		return c ? ATT_E_NOMEM : DBFAIL(ATT_E_DB);
	}
	r = att_dbc_query(c, &s, "SELECT COUNT(*) FROM agent_sessions WHERE (? = '' OR cluster_id = ?)", "ss",
			  cluster_id ? cluster_id : "", cluster_id ? cluster_id : "");
	if (r == 0) {
		if (att_stmt_next(s) == 1)
			total = att_stmt_int(s, 0);
		att_stmt_done(s);
		r = att_dbc_query(c, &s,
				  "SELECT session_id, cluster_id, policy, spiffe_id, attributes, source_ip, issued_at,"
				  " expires_at, cert_serial FROM agent_sessions WHERE (? = '' OR cluster_id = ?)"
				  " ORDER BY issued_at DESC, session_id LIMIT ? OFFSET ?",
				  "ssii", cluster_id ? cluster_id : "", cluster_id ? cluster_id : "", per_page, off);
	}
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1) {
			json_t *a = json_loads(att_stmt_text(s, 4), 0, NULL);

			json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:o,s:s?,s:s,s:s,s:s?}", "session_id",
							     att_stmt_text(s, 0), "cluster_id", att_stmt_text(s, 1),
							     "policy", att_stmt_text(s, 2), "spiffe_id", att_stmt_text(s, 3),
							     "attributes", a ? a : json_object(), "source_ip",
							     att_stmt_text(s, 5), "issued_at", att_stmt_text(s, 6),
							     "expires_at", att_stmt_text(s, 7), "cert_serial",
							     att_stmt_text(s, 8)));
		}
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return DBFAIL(r);
	}
	*ret = json_pack("{s:I,s:I,s:I,s:o}", "total", (json_int_t)total, "page", (json_int_t)page, "per_page",
			 (json_int_t)per_page, "sessions", arr);
	return *ret ? 0 : ATT_E_NOMEM;
}

static char *bn_b64url(const BIGNUM *bn, int pad)
{
	int n = pad ? pad : BN_num_bytes(bn);
	uint8_t *buf = malloc((size_t)n);
	char *out = NULL;

	if (buf && BN_bn2binpad(bn, buf, n) == n)
		out = att_b64url_encode(buf, (size_t)n);
	free(buf);
	return out;
}

int att_agent_jwks(const struct att_svc *svc, json_t **ret, char *reterr, size_t errlen)
{
	EVP_PKEY *k;
	X509 *cert;
	BIGNUM *a = NULL, *b = NULL;
	char kid[48], *s1 = NULL, *s2 = NULL;
	json_t *key = NULL;

	if (!svc->ca || att_ca_key(svc->ca, &k, &cert) < 0 || key_id(cert, kid) < 0)
		return ERR(ATT_E_UNAVAILABLE, "The enrollment CA is not available");
	if (is_ec(k)) {
		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &a);
		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &b);
		s1 = a ? bn_b64url(a, 48) : NULL;
		s2 = b ? bn_b64url(b, 48) : NULL;
		if (s1 && s2)
			key = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-384", "x", s1, "y", s2,
					"kid", kid, "alg", "ES384");
	} else {
		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &a);
		EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &b);
		s1 = a ? bn_b64url(a, 0) : NULL;
		s2 = b ? bn_b64url(b, 0) : NULL;
		if (s1 && s2)
			key = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kty", "RSA", "n", s1, "e", s2, "kid", kid, "alg", "RS256");
	}
	if (key)
		json_object_set_new(key, "use", json_string("sig"));
	BN_free(a);
	BN_free(b);
	free(s1);
	free(s2);
	*ret = key ? json_pack("{s:[o]}", "keys", key) : NULL;
	return *ret ? 0 : ATT_E_NOMEM;
}
