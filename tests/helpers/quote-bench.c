/* quote-bench - quote verifications per second, as attestd does them for
 * every attest with a quote: parse the bound AK's TPM2B_PUBLIC (cached), parse the
 * TPMS_ATTEST, verify the TPMT_SIGNATURE, compare the nonce, recompute
 * pcrDigest over 8 reported PCRs, quotes of 16 different AKs in turn.
 * Prints "<alg> <warm/s> <cold/s>" for rsa2048 (RSASSA-SHA256) and
 * ecdsap256 (ECDSA-SHA256): warm = AK already in the service's AK cache,
 * cold = AK imported into OpenSSL for every quote.  bench/run.sh compares
 * them with `openssl speed` verify/s measured in the same run. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "softquote.h"
#include "tpm/tpm.h"

#define NQ 64
#define NAK 16

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);	/* CPU time, as `openssl speed` counts */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Verify every quote once per round; cached: through the AK cache the
 * service uses (steady state: the AK was seen before by this process),
 * else a cold import of the AK for every quote (first boot after start). */
static double run(struct softak *aks, int nak, bool cached, double secs, const struct att_tpm_pcrs *vals)
{
	static uint8_t attest[NQ][2048], sig[NQ][1024], nonce[NQ][32];
	static size_t al[NQ], sl[NQ];
	uint8_t pcr[8][32];
	char err[512];
	long n = 0;
	double t0, t;

	for (unsigned i = 0; i < 8; i++)
		memcpy(pcr[i], vals->v[i].value, 32);
	for (int i = 0; i < NQ; i++) {
		att_random(nonce[i], 32);
		if (softquote_make(&aks[i % nak], nonce[i], 32, (const uint8_t(*)[32])pcr, 8, ATT_TPM_ALG_SHA256, attest[i],
				   &al[i], sig[i], &sl[i]) < 0)
			exit(1);
	}
	t0 = now_s();
	do {
		for (int i = 0; i < NQ; i++) {
			struct softak *ak = &aks[i % nak];
			struct att_tpm_pub p;
			int r = cached ? att_tpm_pub_parse_cached(ak->pub, ak->pub_len, &p, err, sizeof(err))
				       : att_tpm_pub_parse(ak->pub, ak->pub_len, &p, err, sizeof(err));

			if (r < 0 || att_tpm_quote_check(&p, attest[i], al[i], sig[i], sl[i], nonce[i], 32, vals, NULL, err,
							 sizeof(err)) < 0) {
				fprintf(stderr, "quote-bench: %s\n", err);
				exit(1);
			}
			att_tpm_pub_release(&p);
		}
		n += NQ;
		t = now_s() - t0;
	} while (t < secs);
	return (double)n / t;
}

int main(int argc, char **argv)
{
	static const char *kinds[] = { "rsa", "ecc" };
	static const char *names[] = { "rsa2048", "ecdsap256" };
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	struct softak aks[NAK];
	struct att_tpm_pcrs vals;
	uint8_t pcr[32];
	char err[512], key[16], hex[65];

	memset(&vals, 0, sizeof(vals));
	for (unsigned i = 0; i < 8; i++) {
		att_random(pcr, sizeof(pcr));
		snprintf(key, sizeof(key), "sha256:%u", i);
		att_hex_encode(pcr, 32, hex);
		att_tpm_pcrs_add(&vals, key, hex, err, sizeof(err));
	}
	for (int k = 0; k < 2; k++) {
		double warm, cold;

		for (int a = 0; a < NAK; a++)
			if (softak_new(&aks[a], kinds[k], 0) < 0)
				return 1;
		warm = run(aks, NAK, true, secs, &vals);
		cold = run(aks, NAK, false, secs / 2, &vals);
		printf("%s %.0f %.0f\n", names[k], warm, cold);
		for (int a = 0; a < NAK; a++)
			softak_free(&aks[a]);
	}
	return 0;
}
