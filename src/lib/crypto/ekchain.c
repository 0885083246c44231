#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ekchain.h"

struct att_ek_trust {
	X509_STORE *store;
	STACK_OF(X509) *intermediates;
};

static bool self_signed(X509 *x)
{
	return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0 &&
	       X509_check_issued(x, x) == X509_V_OK;
}

/* All certificates in a buffer: PEM (one or more) or a single DER. */
static int read_certs(const uint8_t *p, size_t len, STACK_OF(X509) *out)
{
	int n = 0;

	if (len > 10 && memmem(p, len, "-----BEGIN", 10)) {
		BIO *bio = BIO_new_mem_buf(p, (int)len);
		X509 *x;

		if (!bio)
			return ATT_E_NOMEM;
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
			if (!sk_X509_push(out, x)) {
				X509_free(x);
				BIO_free(bio);
				return ATT_E_NOMEM;
			}
			n++;
		}
		ERR_clear_error();
		BIO_free(bio);
	} else {
		const unsigned char *q = p;
		X509 *x = d2i_X509(NULL, &q, (long)len);

		if (x) {
			if (!sk_X509_push(out, x)) {
				X509_free(x);
				return ATT_E_NOMEM;
			}
			n++;
		}
	}
	return n > 0 ? n : ATT_E_PARSE;
}

static int slurp(const char *path, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *b = NULL;
	long n;

	if (!f)
		return ATT_E_IO;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 1 << 20 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(b = malloc((size_t)n + 1)) || fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		fclose(f);
		return ATT_E_IO;
	}
	fclose(f);
	*ret = b;
	*ret_len = (size_t)n;
	return 0;
}

int att_ek_trust_load(const char *dir, struct att_ek_trust **ret, int *ret_roots, int *ret_intermediates,
		      char *reterr, size_t errlen)
{
	struct att_ek_trust *t = calloc(1, sizeof(*t));
	STACK_OF(X509) *all = sk_X509_new_null();
	DIR *d;
	struct dirent *e;
	int roots = 0, inter = 0, r = 0;

	if (!t || !all || !(t->store = X509_STORE_new()) || !(t->intermediates = sk_X509_new_null())) {
		r = ATT_E_NOMEM;
		goto out;
	}
	d = opendir(dir);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			const char *dot = strrchr(e->d_name, '.');
			char path[4096];
			uint8_t *buf = NULL;
			size_t len = 0;

			if (e->d_name[0] == '.' || !dot ||
			    !(strcmp(dot, ".pem") == 0 || strcmp(dot, ".crt") == 0 || strcmp(dot, ".der") == 0 ||
			      strcmp(dot, ".cer") == 0))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (slurp(path, &buf, &len) < 0 || read_certs(buf, len, all) < 0) {
				free(buf);
				snprintf(reterr, errlen, "ITL_TPM_CA_BUNDLE_DIR: cannot read a certificate from %s", path);
				r = ATT_E_INVAL;
				closedir(d);
				goto out;
			}
			free(buf);
		}
		closedir(d);
	}
	for (int i = 0; i < sk_X509_num(all); i++) {
		X509 *x = sk_X509_value(all, i);

		if (self_signed(x)) {
			if (X509_STORE_add_cert(t->store, x) != 1)
				ERR_clear_error(); /* duplicate */
			roots++;
		} else {
			X509_up_ref(x);
			if (!sk_X509_push(t->intermediates, x)) {
				X509_free(x);
				r = ATT_E_NOMEM;
				goto out;
			}
			inter++;
		}
	}
out:
	sk_X509_pop_free(all, X509_free);
	if (r < 0) {
		att_ek_trust_free(t);
		return r;
	}
	*ret = t;
	if (ret_roots)
		*ret_roots = roots;
	if (ret_intermediates)
		*ret_intermediates = inter;
	return 0;
}

void att_ek_trust_free(struct att_ek_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->intermediates, X509_free);
	free(t);
}

void att_ek_chain_result_release(struct att_ek_chain_result *r)
{
	for (int i = 0; i < r->n_learned; i++)
		free(r->learned[i].pem);
	r->n_learned = 0;
}

#define NV_MAX_CERTS 8

/* Concatenated DER certificates as TPMs store them in 0x01C00100..;
 * 0x00/0xFF after the last certificate is padding. */
static int read_nv(const uint8_t *p, size_t len, int max, STACK_OF(X509) *out, char *reterr, size_t errlen)
{
	size_t off = 0;
	int n = 0;

	while (off < len && p[off] != 0x00 && p[off] != 0xFF) {
		const unsigned char *q = p + off;
		X509 *x;

		if (n >= max) {
			snprintf(reterr, errlen, "ek_chain_nv: more than %d certificates", max);
			return ATT_E_INVAL;
		}
		x = d2i_X509(NULL, &q, (long)(len - off));
		if (!x) {
			ERR_clear_error();
			snprintf(reterr, errlen, "ek_chain_nv: certificate %d at offset %zu is not DER X.509", n + 1, off);
			return ATT_E_INVAL;
		}
		off = (size_t)(q - p);
		if (out && !sk_X509_push(out, x)) {
			X509_free(x);
			return ATT_E_NOMEM;
		}
		if (!out)
			X509_free(x);
		n++;
	}
	for (; off < len; off++)
		if (p[off] != 0x00 && p[off] != 0xFF) {
			snprintf(reterr, errlen, "ek_chain_nv: unexpected bytes after the certificates");
			return ATT_E_INVAL;
		}
	return n;
}

int att_ek_chain_parse_nv(const uint8_t *p, size_t len, int max, char *reterr, size_t errlen)
{
	return read_nv(p, len, max, NULL, reterr, errlen);
}

static bool in_stack(STACK_OF(X509) *st, X509 *x)
{
	for (int i = 0; i < sk_X509_num(st); i++)
		if (X509_cmp(sk_X509_value(st, i), x) == 0)
			return true;
	return false;
}

static void name_rfc2253(X509_NAME *nm, char *out, size_t outlen)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;

	out[0] = '\0';
	if (!mem)
		return;
	X509_NAME_print_ex(mem, nm, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(mem, &data);
	if (len > 0)
		snprintf(out, outlen, "%.*s", (int)len, data);
	BIO_free(mem);
}

/* Remember the chain's intermediates that the bundle does not hold. */
static void learn(const struct att_ek_trust *t, STACK_OF(X509) *chain, struct att_ek_chain_result *res)
{
	for (int i = 1; i < sk_X509_num(chain) - 1 && res->n_learned < ATT_EK_CHAIN_MAX_LEARNED; i++) {
		X509 *x = sk_X509_value(chain, i);
		unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
		int dl;
		BIO *mem;

		if (in_stack(t->intermediates, x))
			continue;
		dl = i2d_X509(x, &der);
		if (dl <= 0)
			continue;
		SHA256(der, (size_t)dl, md);
		OPENSSL_free(der);
		mem = BIO_new(BIO_s_mem());
		if (mem && PEM_write_bio_X509(mem, x) == 1) {
			char *data;
			long len = BIO_get_mem_data(mem, &data);
			struct att_ek_learned *l = &res->learned[res->n_learned];

			l->pem = att_strndup(data, (size_t)len);
			if (l->pem) {
				att_hex_encode(md, sizeof(md), l->sha256);
				name_rfc2253(X509_get_subject_name(x), l->subject, sizeof(l->subject));
				res->n_learned++;
			}
		}
		BIO_free(mem);
	}
}

static bool leaf_is_oaep(X509 *x)
{
	ASN1_OBJECT *alg = NULL;
	X509_PUBKEY *xpk = x ? X509_get_X509_PUBKEY(x) : NULL;

	return xpk && X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, xpk) == 1 && OBJ_obj2nid(alg) == NID_rsaesOaep;
}

static X509 *signed_by(STACK_OF(X509) *cands, X509 *leaf)
{
	for (int i = 0; i < sk_X509_num(cands); i++) {
		X509 *c = sk_X509_value(cands, i);
		EVP_PKEY *k = X509_get0_pubkey(c);

		if (k && X509_check_issued(c, leaf) == X509_V_OK && X509_verify(leaf, k) == 1)
			return c;
	}
	return NULL;
}

/* An EK published under id-RSAES-OAEP (see crypto/ek.c): OpenSSL cannot
 * decode the leaf's key and so refuses to build a chain from it.  The
 * chain does not need that key: the leaf is checked here (validity, and
 * its signature with its issuer's key, found among the request's, the
 * bundle's and the trusted certificates), and the issuer's chain by
 * OpenSSL as usual.  NULL (error set) when no issuer signed it. */
static X509 *oaep_issuer(const struct att_ek_trust *t, STACK_OF(X509) *untrusted, X509 *leaf, time_t now,
			 struct att_ek_chain_result *res)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(t->store);
	STACK_OF(X509) *roots = sk_X509_new_null();
	X509 *c;
	time_t tt = now;

	if (X509_cmp_time(X509_get0_notAfter(leaf), &tt) < 0 || X509_cmp_time(X509_get0_notBefore(leaf), &tt) > 0) {
		snprintf(res->error, sizeof(res->error), "certificate is not valid at this time");
		sk_X509_free(roots);
		return NULL;
	}
	for (int i = 0; roots && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (x)
			sk_X509_push(roots, x);
	}
	c = signed_by(untrusted, leaf);
	if (!c)
		c = signed_by(t->intermediates, leaf);
	if (!c && roots)
		c = signed_by(roots, leaf);
	sk_X509_free(roots);
	if (!c)
		snprintf(res->error, sizeof(res->error), "unable to get local issuer certificate");
	return c;
}

int att_ek_chain_verify(const struct att_ek_trust *t, const char *ek_b64, const struct att_ek_chain_extra *extra,
			time_t now, struct att_ek_chain_result *ret, char *reterr, size_t errlen)
{
	struct att_ek_chain_result res;
	STACK_OF(X509) *untrusted = sk_X509_new_null(), *leafs = sk_X509_new_null();
	X509_STORE_CTX *ctx = NULL;
	X509 *oaep = NULL;	/* an OAEP leaf's issuer: the chain is verified from there */
	uint8_t *raw = NULL;
	size_t n = 0;
	int r = 0;

	memset(&res, 0, sizeof(res));
	memset(ret, 0, sizeof(*ret));
	if (!untrusted || !leafs) {
		r = ATT_E_NOMEM;
		goto out;
	}
	for (int i = 0; i < sk_X509_num(t->intermediates); i++) {
		X509 *x = sk_X509_value(t->intermediates, i);

		X509_up_ref(x);
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			r = ATT_E_NOMEM;
			goto out;
		}
	}
	if (extra && extra->pem && *extra->pem &&
	    read_certs((const uint8_t *)extra->pem, strlen(extra->pem), untrusted) < 0) {
		snprintf(reterr, errlen, "ek_chain_pem: expected one or more PEM certificates");
		r = ATT_E_INVAL;
		goto out;
	}
	if (extra && extra->nv && extra->nv_len) {
		r = read_nv(extra->nv, extra->nv_len, NV_MAX_CERTS, untrusted, reterr, errlen);
		if (r < 0)
			goto out;
		r = 0;
	}
	if (extra && extra->cached_pem && *extra->cached_pem)
		(void)read_certs((const uint8_t *)extra->cached_pem, strlen(extra->cached_pem), untrusted);
	if (att_b64_decode(ek_b64, strlen(ek_b64), &raw, &n) < 0) {
		snprintf(reterr, errlen, "ek_cert_pem: invalid base64");
		r = ATT_E_INVAL;
		goto out;
	}
	/* the leaf as the EK parser accepted it: NV header and padding removed */
	if (n > 7 && raw[0] == 0x10 && raw[1] == 0x01 && raw[5] == 0x10 && raw[6] == 0x02) {
		memmove(raw, raw + 7, n - 7);
		n -= 7;
	}
	if (read_certs(raw, n, leafs) < 0) {
		snprintf(res.error, sizeof(res.error), "not an X.509 certificate (bare public key)");
		goto done;
	}
	if (leaf_is_oaep(sk_X509_value(leafs, 0))) {
		oaep = oaep_issuer(t, untrusted, sk_X509_value(leafs, 0), now, &res);
		if (!oaep)
			goto done;
	}
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, t->store, oaep ? oaep : sk_X509_value(leafs, 0), untrusted) != 1) {
		r = ATT_E_NOMEM;
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
	if (X509_verify_cert(ctx) == 1) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		res.verified = true;
		name_rfc2253(X509_get_subject_name(sk_X509_value(chain, sk_X509_num(chain) - 1)), res.root,
			     sizeof(res.root));
		if (oaep) {	/* the chain above the leaf: put the leaf back in front for learn() */
			STACK_OF(X509) *full = sk_X509_dup(chain);

			if (full && sk_X509_insert(full, sk_X509_value(leafs, 0), 0))
				learn(t, full, &res);
			sk_X509_free(full);
		} else {
			learn(t, chain, &res);
		}
	} else {
		snprintf(res.error, sizeof(res.error), "%s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
done:
	*ret = res;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_pop_free(leafs, X509_free);
	free(raw);
	return r;
}
