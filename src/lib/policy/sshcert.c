/* sshcert.c - OpenSSH wire formats (RFC 4251 strings, uint32/uint64,
 * mpints) read with bounds checks on every field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "base/err.h"
#include "base/util.h"
#include "policy/sshcert.h"

#define FAIL(...) (snprintf(reason, rlen, __VA_ARGS__), ATT_E_AUTH)

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;

	if (r->bad || r->len - r->off < 4) {
		r->bad = true;
		return 0;
	}
	v = (uint32_t)r->p[r->off] << 24 | (uint32_t)r->p[r->off + 1] << 16 | (uint32_t)r->p[r->off + 2] << 8 |
	    r->p[r->off + 3];
	r->off += 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);

	return hi << 32 | rd_u32(r);
}

static const uint8_t *rd_str(struct rd *r, size_t *n)
{
	uint32_t l = rd_u32(r);
	const uint8_t *p;

	if (r->bad || r->len - r->off < l) {
		r->bad = true;
		*n = 0;
		return NULL;
	}
	p = r->p + r->off;
	r->off += l;
	*n = l;
	return p;
}

static bool rd_eq(const uint8_t *p, size_t n, const char *s)
{
	return p && n == strlen(s) && memcmp(p, s, n) == 0;
}

/* ---- keys ------------------------------------------------------------------------ */

static const char *curve_of(const uint8_t *p, size_t n)
{
	if (rd_eq(p, n, "nistp256"))
		return "P-256";
	if (rd_eq(p, n, "nistp384"))
		return "P-384";
	if (rd_eq(p, n, "nistp521"))
		return "P-521";
	return NULL;
}

static EVP_PKEY *fromdata(const char *alg, OSSL_PARAM_BLD *b)
{
	OSSL_PARAM *ps = b ? OSSL_PARAM_BLD_to_param(b) : NULL;
	EVP_PKEY_CTX *c = ps ? EVP_PKEY_CTX_new_from_name(NULL, alg, NULL) : NULL;
	EVP_PKEY *k = NULL;

	if (c && EVP_PKEY_fromdata_init(c) == 1)
		EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, ps);
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(ps);
	OSSL_PARAM_BLD_free(b);
	return k;
}

static EVP_PKEY *ec_key(const char *curve, const uint8_t *q, size_t qn)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();

	if (!curve || !q || qn < 65 || qn > 133 || q[0] != 4)
		return OSSL_PARAM_BLD_free(b), NULL;
	if (!b || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, q, qn))
		return OSSL_PARAM_BLD_free(b), NULL;
	return fromdata("EC", b);
}

static EVP_PKEY *rsa_key(const uint8_t *e, size_t en, const uint8_t *n, size_t nn)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	BIGNUM *be = e && en && en <= 8 ? BN_bin2bn(e, (int)en, NULL) : NULL;
	BIGNUM *bn = n && nn >= 128 && nn <= 1025 ? BN_bin2bn(n, (int)nn, NULL) : NULL;
	EVP_PKEY *k = NULL;

	if (b && be && bn && BN_num_bits(bn) >= 2048 && OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be)) {
		k = fromdata("RSA", b);
		b = NULL;
	}
	OSSL_PARAM_BLD_free(b);
	BN_free(be);
	BN_free(bn);
	return k;
}

/* Read the key fields that follow the type (and, in a certificate, the nonce). */
static EVP_PKEY *read_key(struct rd *r, const char *base)
{
	const uint8_t *a, *b;
	size_t an, bn;

	if (strcmp(base, "ssh-ed25519") == 0) {
		a = rd_str(r, &an);
		return a && an == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, an) : NULL;
	}
	if (strncmp(base, "ecdsa-sha2-", 11) == 0) {
		a = rd_str(r, &an);
		b = rd_str(r, &bn);
		if (!curve_of(a, an) || strncmp(base + 11, (const char *)a, an) != 0 || strlen(base + 11) != an)
			return NULL;
		return ec_key(curve_of(a, an), b, bn);
	}
	if (strcmp(base, "ssh-rsa") == 0) {
		a = rd_str(r, &an);	/* e */
		b = rd_str(r, &bn);	/* n */
		return rsa_key(a, an, b, bn);
	}
	return NULL;
}

static bool known_base(const uint8_t *t, size_t n, char out[48])
{
	static const char *const types[] = { "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
					     "ecdsa-sha2-nistp521", "ssh-rsa" };

	for (size_t i = 0; i < ATT_ARRAY_SIZE(types); i++)
		if (rd_eq(t, n, types[i])) {
			snprintf(out, 48, "%s", types[i]);
			return true;
		}
	return false;
}

int att_ssh_pubkey_parse(const uint8_t *blob, size_t len, EVP_PKEY **ret, char type[48])
{
	struct rd r = { blob, len, 0, false };
	size_t tn;
	const uint8_t *t = rd_str(&r, &tn);
	EVP_PKEY *k;

	if (!t || !known_base(t, tn, type))
		return ATT_E_INVAL;
	k = read_key(&r, type);
	if (!k || r.bad || r.off != len) {
		EVP_PKEY_free(k);
		return ATT_E_INVAL;
	}
	*ret = k;
	return 0;
}

int att_ssh_line_blob(const char *line, char type[64], uint8_t **ret, size_t *ret_len)
{
	const char *sp = strchr(line, ' '), *end;
	size_t tl = sp ? (size_t)(sp - line) : 0;

	if (!sp || tl == 0 || tl >= 64)
		return ATT_E_INVAL;
	memcpy(type, line, tl);
	type[tl] = '\0';
	while (*sp == ' ')
		sp++;
	end = sp;
	while (*end && *end != ' ' && *end != '\n' && *end != '\r')
		end++;
	return att_b64_decode(sp, (size_t)(end - sp), ret, ret_len) < 0 ? ATT_E_INVAL : 0;
}

/* ---- signatures -------------------------------------------------------------------- */

/* Verify an SSH signature blob (string alg, string sig) by k over data. */
static int sig_verify(EVP_PKEY *k, const uint8_t *blob, size_t len, const uint8_t *data, size_t dlen)
{
	struct rd r = { blob, len, 0, false };
	size_t an, sn;
	const uint8_t *alg = rd_str(&r, &an), *sig = rd_str(&r, &sn);
	const EVP_MD *md = NULL;
	uint8_t *der = NULL;
	int id = EVP_PKEY_get_base_id(k), dl = 0, ok;
	EVP_MD_CTX *c;

	if (r.bad || r.off != len)
		return ATT_E_AUTH;
	if (id == EVP_PKEY_ED25519) {
		if (!rd_eq(alg, an, "ssh-ed25519") || sn != 64)
			return ATT_E_AUTH;
	} else if (id == EVP_PKEY_RSA) {
		md = rd_eq(alg, an, "rsa-sha2-256") ? EVP_sha256() : rd_eq(alg, an, "rsa-sha2-512") ? EVP_sha512() : NULL;
		if (!md)
			return ATT_E_AUTH;
	} else if (id == EVP_PKEY_EC) {
		struct rd s = { sig, sn, 0, false };
		size_t rn, ssn;
		const uint8_t *rr = rd_str(&s, &rn), *ss = rd_str(&s, &ssn);
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *br = rr && rn <= 67 ? BN_bin2bn(rr, (int)rn, NULL) : NULL, *bs = ss && ssn <= 67 ? BN_bin2bn(ss, (int)ssn, NULL) : NULL;
		int bits = EVP_PKEY_get_bits(k);

		md = bits <= 256 ? EVP_sha256() : bits <= 384 ? EVP_sha384() : EVP_sha512();
		if (s.bad || s.off != sn || !es || !br || !bs || strncmp((const char *)alg, "ecdsa-sha2-", 11) != 0 ||
		    ECDSA_SIG_set0(es, br, bs) != 1) {
			BN_free(br);
			BN_free(bs);
			ECDSA_SIG_free(es);
			return ATT_E_AUTH;
		}
		dl = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (dl <= 0)
			return ATT_E_AUTH;
	} else {
		return ATT_E_AUTH;
	}
	c = EVP_MD_CTX_new();
	ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, k) == 1 &&
	     EVP_DigestVerify(c, der ? der : sig, der ? (size_t)dl : sn, data, dlen) == 1;
	EVP_MD_CTX_free(c);
	OPENSSL_free(der);
	return ok ? 0 : ATT_E_AUTH;
}

/* ---- certificates -------------------------------------------------------------------- */

void att_ssh_cert_release(struct att_ssh_cert *c)
{
	EVP_PKEY_free(c->key);
	for (size_t i = 0; i < c->nprincipals; i++)
		free(c->principals[i]);
	memset(c, 0, sizeof(*c));
}

static int read_principals(struct att_ssh_cert *c, const uint8_t *p, size_t n, char *reason, size_t rlen)
{
	struct rd r = { p, n, 0, false };

	while (r.off < n) {
		size_t l;
		const uint8_t *s = rd_str(&r, &l);

		if (r.bad || l == 0 || l > 255 || memchr(s, '\0', l) || c->nprincipals == ATT_SSH_MAX_PRINCIPALS)
			return FAIL("malformed certificate: principals");
		c->principals[c->nprincipals] = att_strndup((const char *)s, l);
		if (!c->principals[c->nprincipals++])
			return ATT_E_NOMEM;
	}
	return 0;
}

int att_ssh_cert_parse(const uint8_t *blob, size_t len, struct att_ssh_cert *c, char *reason, size_t rlen)
{
	struct rd r = { blob, len, 0, false };
	size_t tn, n, kidn, pn, crn, sign, sgn;
	const uint8_t *t = rd_str(&r, &tn), *kid, *pr, *crit, *sigkey, *sig;
	char type[64];
	EVP_PKEY *ca = NULL;
	char catype[48];
	size_t signed_len;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!t || tn >= sizeof(type) || memchr(t, '\0', tn))
		return FAIL("malformed certificate: no certificate type");
	memcpy(type, t, tn);
	type[tn] = '\0';
	if (tn <= 21 || strcmp(type + tn - 21, "-cert-v01@openssh.com") != 0)
		return FAIL("malformed certificate: %s is not a certificate type", type);
	type[tn - 21] = '\0';
	if (!known_base((const uint8_t *)type, strlen(type), c->key_type))
		return FAIL("unsupported certificate: key type %s", type);
	rd_str(&r, &n);	/* nonce */
	c->key = read_key(&r, c->key_type);
	c->serial = rd_u64(&r);
	c->cert_type = rd_u32(&r);
	kid = rd_str(&r, &kidn);
	pr = rd_str(&r, &pn);
	c->valid_after = rd_u64(&r);
	c->valid_before = rd_u64(&r);
	crit = rd_str(&r, &crn);
	rd_str(&r, &n);	/* extensions */
	rd_str(&r, &n);	/* reserved */
	sigkey = rd_str(&r, &sign);
	signed_len = r.off;
	sig = rd_str(&r, &sgn);
	if (r.bad || r.off != len || !c->key || !sig || kidn >= sizeof(c->key_id)) {
		att_ssh_cert_release(c);
		return FAIL("malformed certificate: truncated or trailing bytes or bad key");
	}
	(void)crit;
	c->has_critical_options = crn > 0;
	memcpy(c->key_id, kid, kidn);
	c->key_id[kidn] = '\0';
	rc = read_principals(c, pr, pn, reason, rlen);
	if (rc == 0 && att_ssh_pubkey_parse(sigkey, sign, &ca, catype) < 0)
		rc = FAIL("malformed certificate: signature key");
	if (rc == 0 && sig_verify(ca, sig, sgn, blob, signed_len) < 0)
		rc = FAIL("bad certificate signature: not signed by its CA key");
	EVP_PKEY_free(ca);
	if (rc < 0) {
		att_ssh_cert_release(c);
		return rc;
	}
	c->ca_key = sigkey;
	c->ca_key_len = sign;
	return 0;
}

/* ---- SSHSIG ------------------------------------------------------------------------ */

static uint8_t *unarmor(const char *s, size_t *ret_len)
{
	static const char begin[] = "-----BEGIN SSH SIGNATURE-----", end[] = "-----END SSH SIGNATURE-----";
	const char *b = strstr(s, begin), *e;
	uint8_t *out = NULL;

	if (!b)
		return NULL;
	b += sizeof(begin) - 1;
	e = strstr(b, end);
	if (!e || att_b64_decode(b, (size_t)(e - b), &out, ret_len) < 0)
		return NULL;
	return out;
}

static void put_str(uint8_t *out, size_t *off, const void *p, size_t n)
{
	out[(*off)++] = (uint8_t)(n >> 24);
	out[(*off)++] = (uint8_t)(n >> 16);
	out[(*off)++] = (uint8_t)(n >> 8);
	out[(*off)++] = (uint8_t)n;
	memcpy(out + *off, p, n);
	*off += n;
}

int att_sshsig_verify(const char *armored, EVP_PKEY *key, const char *ns, const uint8_t *msg, size_t mlen,
		      char *reason, size_t rlen)
{
	size_t len = 0, pkn, nsn, rsn, hn, sgn, off = 0;
	uint8_t *blob = unarmor(armored, &len), h[64], tbs[512];
	struct rd r = { blob, len, 0, false };
	const uint8_t *pk, *sns, *res, *halg, *sig;
	EVP_PKEY *sk = NULL;
	char kt[48];
	unsigned int hl = 0;
	int rc;

	if (!blob || len < 6 || memcmp(blob, "SSHSIG", 6) != 0) {
		free(blob);
		return FAIL("malformed signature: not an armored SSHSIG");
	}
	r.off = 6;
	if (rd_u32(&r) != 1) {
		free(blob);
		return FAIL("malformed signature: SSHSIG version");
	}
	pk = rd_str(&r, &pkn);
	sns = rd_str(&r, &nsn);
	res = rd_str(&r, &rsn);
	halg = rd_str(&r, &hn);
	sig = rd_str(&r, &sgn);
	if (r.bad || r.off != len || att_ssh_pubkey_parse(pk, pkn, &sk, kt) < 0) {
		free(blob);
		return FAIL("malformed signature: truncated SSHSIG");
	}
	rc = EVP_PKEY_eq(sk, key) == 1 ? 0 : FAIL("wrong key: the signature is not by the certified key");
	if (rc == 0 && !rd_eq(sns, nsn, ns))
		rc = FAIL("wrong namespace: the signature's namespace is not %s", ns);
	if (rc == 0 && rsn > 64)
		rc = FAIL("malformed signature: reserved field");
	if (rc == 0 && !rd_eq(halg, hn, "sha256") && !rd_eq(halg, hn, "sha512"))
		rc = FAIL("unsupported signature hash");
	if (rc == 0) {
		EVP_Digest(msg, mlen, h, &hl, rd_eq(halg, hn, "sha256") ? EVP_sha256() : EVP_sha512(), NULL);
		memcpy(tbs, "SSHSIG", 6);
		off = 6;
		put_str(tbs, &off, sns, nsn);
		put_str(tbs, &off, res, rsn);
		put_str(tbs, &off, halg, hn);
		put_str(tbs, &off, h, hl);
		if (sig_verify(key, sig, sgn, tbs, off) < 0)
			rc = FAIL("bad signature: the SSHSIG does not verify");
	}
	EVP_PKEY_free(sk);
	free(blob);
	return rc;
}
