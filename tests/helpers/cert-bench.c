/* cert-bench - certificate issuances per second, as attestd does them for
 * every POST /api/v1/machines/{id}/enroll, minus the database: parse and
 * check the PKCS#10 CSR (ECDSA P-384 key, self-signature verified), decode
 * and parse the machine's bound AK (base64 TPM2B_PUBLIC, through the AK
 * cache), verify its quote over the request's nonce (P-256 ECDSA-SHA256,
 * the agent's default AK, 8 PCRs), then build and sign the leaf with the
 * CA key (the production profile: SAN, CRL and OCSP URLs).  16 machines in
 * turn.  Before timing, one issued certificate is checked with OpenSSL
 * (chain to the CA, clientAuth purpose, the CSR's key, the EK SAN) and a
 * quote over another nonce must be refused.
 *
 * Rates are per CPU second of this process (as `openssl speed` counts).
 * Prints "<ca> <issuances/s> <leaf signatures/s>" for an ECDSA P-384 CA
 * (the default) and an RSA-4096 CA, named as `openssl speed` names the
 * signing algorithm (ecdsap384, rsa4096); the second figure is the
 * signing step alone (att_ca_issue_key).  bench/certs.sh compares them
 * with `openssl speed` measured in the same run.
 *
 * cert-bench --bodies DIR: for the end-to-end figure, reads challenges
 * (GET /api/v1/attest/challenge answers, one JSON object a line) on stdin
 * and writes DIR/<n>.json, one enroll request body for each: the same
 * CSR, a quote by one software AK over that challenge's nonce.  Prints
 * "<AK TPM2B_PUBLIC base64> <AK Name hex>" for the machine's row. */
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <jansson.h>

#include "base/util.h"
#include "crypto/ca.h"
#include "crypto/csr.h"
#include "softquote.h"
#include "tpm/tpm.h"

#define NM 16	/* machines */

struct machine {
	char id[33], ek_fp[97];
	char *csr_pem;
	EVP_PKEY *key;		/* the CSR's key */
	struct softak ak;
	char *ak_b64;		/* as stored in machines.ak_public */
	uint8_t nonce[32], attest[2048], sig[1024];
	size_t al, sl;
};

static struct att_tpm_pcrs vals;
static uint8_t pcr[8][32];

/* CPU time of this process: `openssl speed` counts user CPU time too, so
 * the ratio holds on a machine shared with other work. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "cert-bench: %s%s%s\n", what, err ? ": " : "", err ? err : "");
	exit(1);
}

/* A PKCS#10 request for a fresh P-384 key, signed with it (SHA-384). */
static char *make_csr(EVP_PKEY *key, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL, *data;
	long len;

	if (!req || !n || !b || !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, n) || !X509_REQ_set_pubkey(req, key) || !X509_REQ_sign(req, key, EVP_sha384()) ||
	    !PEM_write_bio_X509_REQ(b, req))
		die("cannot make a CSR", NULL);
	len = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)len);
	BIO_free(b);
	X509_NAME_free(n);
	X509_REQ_free(req);
	return pem;
}

static void machine_new(struct machine *m)
{
	uint8_t raw[48];

	att_random(raw, 16);
	att_hex_encode(raw, 16, m->id);
	att_random(raw, 48);
	att_hex_encode(raw, 48, m->ek_fp);
	m->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (!m->key || softak_new(&m->ak, "ecc", 0) < 0)
		die("cannot make keys", NULL);
	m->csr_pem = make_csr(m->key, m->id);
	m->ak_b64 = att_b64_encode(m->ak.pub, m->ak.pub_len);
	att_random(m->nonce, sizeof(m->nonce));
	if (!m->csr_pem || !m->ak_b64 ||
	    softquote_make(&m->ak, m->nonce, 32, (const uint8_t(*)[32])pcr, 8, ATT_TPM_ALG_SHA256, m->attest, &m->al,
			   m->sig, &m->sl) < 0)
		die("cannot make a quote", NULL);
}

static void machine_free(struct machine *m)
{
	free(m->csr_pem);
	free(m->ak_b64);
	EVP_PKEY_free(m->key);
	softak_free(&m->ak);
}

/* The quote by the machine's bound AK over nonce (as enroll_verify). */
static int quote_check(const struct machine *m, const uint8_t *nonce, char *err, size_t errlen)
{
	struct att_tpm_pub ak = { 0 };
	uint8_t *raw = NULL;
	size_t n = 0;
	int r;

	if (att_b64_decode(m->ak_b64, strlen(m->ak_b64), &raw, &n) < 0)
		return -1;
	r = att_tpm_pub_parse_cached(raw, n, &ak, err, errlen);
	free(raw);
	if (r == 0)
		r = att_tpm_quote_check(&ak, m->attest, m->al, m->sig, m->sl, nonce, 32, &vals, NULL, err, errlen);
	att_tpm_pub_release(&ak);
	return r;
}

/* One enrollment: CSR, quote, certificate.  ret is the caller's to release. */
static void issue(const struct att_ca *ca, const struct machine *m, struct att_ca_leaf *ret)
{
	struct att_csr csr = { 0 };
	char err[512];
	const struct att_ca_profile p = {
		.machine_id = m->id, .role = "worker-app", .ek_fp = m->ek_fp,
		.crl_url = "https://attest.example.net/api/v1/ca/crl",
		.ocsp_url = "https://attest.example.net/api/v1/ca/ocsp", .seconds = 30 * 86400,
	};

	if (att_csr_parse(m->csr_pem, strlen(m->csr_pem), false, &csr, err, sizeof(err)) < 0)
		die("CSR refused", err);
	if (quote_check(m, m->nonce, err, sizeof(err)) < 0)
		die("quote refused", err);
	if (att_ca_issue_key(ca, csr.key, &p, ret) < 0)
		die("cannot issue", NULL);
	att_csr_release(&csr);
}

/* The certificate as a relying party sees it: chains to the CA with the
 * clientAuth purpose, certifies the CSR's key, names the EK. */
static void self_check(const struct att_ca *ca, const struct machine *m)
{
	struct att_ca_leaf l;
	char *ca_pem = att_ca_cert_pem(ca), want[160], err[512];
	BIO *b1, *b2;
	X509 *leaf, *cacert;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	GENERAL_NAMES *san;
	bool ek = false;
	uint8_t other[32];

	issue(ca, m, &l);
	b1 = BIO_new_mem_buf(l.cert_pem, -1);
	b2 = BIO_new_mem_buf(ca_pem, -1);
	leaf = PEM_read_bio_X509(b1, NULL, NULL, NULL);
	cacert = PEM_read_bio_X509(b2, NULL, NULL, NULL);
	if (!leaf || !cacert || !st || !ctx || !X509_STORE_add_cert(st, cacert) ||
	    !X509_STORE_CTX_init(ctx, st, leaf, NULL) || !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
		die("self-check: cannot read the certificates", NULL);
	if (X509_verify_cert(ctx) != 1)
		die("self-check: the certificate does not verify",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), m->key) != 1)
		die("self-check: the certificate is not for the CSR's key", NULL);
	snprintf(want, sizeof(want), "urn:itl:ek:%s", m->ek_fp);
	san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type == GEN_URI && strcmp((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), want) == 0)
			ek = true;
	}
	if (!ek)
		die("self-check: no EK SAN", want);
	att_random(other, sizeof(other));
	if (quote_check(m, other, err, sizeof(err)) == 0)
		die("self-check: a quote over another nonce was accepted", NULL);
	GENERAL_NAMES_free(san);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(leaf);
	X509_free(cacert);
	BIO_free(b1);
	BIO_free(b2);
	free(ca_pem);
	att_ca_leaf_release(&l);
}

/* Issuances per second; sign_only: just att_ca_issue_key for a parsed key. */
static double run(const struct att_ca *ca, struct machine *ms, bool sign_only, double secs)
{
	const struct att_ca_profile p = { .machine_id = ms[0].id, .role = "worker-app", .ek_fp = ms[0].ek_fp,
					  .crl_url = "https://attest.example.net/api/v1/ca/crl",
					  .ocsp_url = "https://attest.example.net/api/v1/ca/ocsp", .seconds = 30 * 86400 };
	long n = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < NM; i++) {
			struct att_ca_leaf l;

			if (sign_only) {
				if (att_ca_issue_key(ca, ms[i].key, &p, &l) < 0)
					die("cannot issue", NULL);
			} else {
				issue(ca, &ms[i], &l);
			}
			att_ca_leaf_release(&l);
		}
		n += NM;
		t = now_s() - t0;
	} while (t < secs);
	return (double)n / t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* The throwaway CA directory (made by mkdtemp here). */
static void rm_ca_dir(const char *dir)
{
	if (nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cert-bench: could not remove %s\n", dir);
}

/* An enroll request body for each challenge on stdin (see the top). */
static int bodies(const char *dir)
{
	struct machine m;
	struct att_tpm_pub ak = { 0 };
	char line[1024], err[512], name[2 * ATT_TPM_MAX_NAME + 1], path[600], hex[65];
	json_t *pv = json_object();
	int n = 0;

	machine_new(&m);
	if (att_tpm_pub_parse(m.ak.pub, m.ak.pub_len, &ak, err, sizeof(err)) < 0)
		die("AK", err);
	att_hex_encode(ak.name, ak.name_len, name);
	for (unsigned i = 0; i < 8; i++) {
		char key[16];

		snprintf(key, sizeof(key), "sha256:%u", i);
		att_hex_encode(pcr[i], 32, hex);
		json_object_set_new(pv, key, json_string(hex));
	}
	while (fgets(line, sizeof(line), stdin)) {
		json_t *ch = json_loads(line, 0, NULL), *body;
		const char *id = json_string_value(json_object_get(ch, "nonce_id"));
		const char *nb = json_string_value(json_object_get(ch, "nonce"));
		uint8_t *nonce = NULL;
		size_t nl = 0;
		char *q, *qs;

		if (!id || !nb || att_b64_decode(nb, strlen(nb), &nonce, &nl) < 0 || nl != 32)
			die("not a challenge", line);
		if (softquote_make(&m.ak, nonce, 32, (const uint8_t(*)[32])pcr, 8, ATT_TPM_ALG_SHA256, m.attest, &m.al,
				   m.sig, &m.sl) < 0)
			die("cannot make a quote", NULL);
		q = att_b64_encode(m.attest, m.al);
		qs = att_b64_encode(m.sig, m.sl);
		body = json_pack("{s:s,s:s,s:s,s:s,s:O}", "csr_pem", m.csr_pem, "nonce_id", id, "pcr_quote", q,
				 "pcr_signature", qs, "pcr_values", pv);
		snprintf(path, sizeof(path), "%s/%d.json", dir, n++);
		if (!body || json_dump_file(body, path, JSON_COMPACT) < 0)
			die("cannot write", path);
		json_decref(body);
		json_decref(ch);
		free(q);
		free(qs);
		free(nonce);
	}
	printf("%s %s\n", m.ak_b64, name);
	json_decref(pv);
	att_tpm_pub_release(&ak);
	machine_free(&m);
	return n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const char *algs[] = { "ecdsa-p384", "rsa-4096" };
	static const char *names[] = { "ecdsap384", "rsa4096" };
	double secs = argc == 2 ? atof(argv[1]) : 3.0;
	static struct machine ms[NM];
	char err[512], key[16], hex[65];

	for (unsigned i = 0; i < 8; i++) {
		att_random(pcr[i], 32);
		snprintf(key, sizeof(key), "sha256:%u", i);
		att_hex_encode(pcr[i], 32, hex);
		if (att_tpm_pcrs_add(&vals, key, hex, err, sizeof(err)) < 0)
			die("PCR values", err);
	}
	if (argc == 3 && strcmp(argv[1], "--bodies") == 0)
		return bodies(argv[2]);
	for (int i = 0; i < NM; i++)
		machine_new(&ms[i]);
	for (int k = 0; k < 2; k++) {
		char dir[] = "/tmp/cert-bench.XXXXXX";
		struct att_ca *ca = NULL;
		bool created;
		double full, sign;

		if (!mkdtemp(dir))
			die("mkdtemp", NULL);
		if (att_ca_init(dir, algs[k], &ca, &created, err, sizeof(err)) < 0) {
			rm_ca_dir(dir);
			die("CA", err);
		}
		self_check(ca, &ms[0]);
		full = run(ca, ms, false, secs);
		sign = run(ca, ms, true, secs / 2);
		printf("%s %.0f %.0f\n", names[k], full, sign);
		fflush(stdout);
		att_ca_free(ca);
		rm_ca_dir(dir);
	}
	for (int i = 0; i < NM; i++)
		machine_free(&ms[i]);
	return 0;
}
