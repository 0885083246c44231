/* jwt-bench - OIDC bearer-token validations per second on one core, as
 * attestd does them for every operator request: the whole att_jwt_verify
 * (shape, header, JWKS key choice, cjose signature check, payload parse,
 * claims) over 64 distinct tokens from a 2-key JWKS.  Prints
 * "<alg> <verifications/s>" for rsa2048 (RS256) and ecdsap256 (ES256);
 * bench/run.sh sets them against `openssl speed` from the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "oidc/jwt.h"
#include "jwtsign.h"

#define NT 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);	/* CPU time, as `openssl speed` counts */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(EVP_PKEY *key, const char *alg, const char *kid, const struct att_jwks *ks, double secs)
{
	static const char *const auds[] = { "attestation-service" };
	const struct att_jwt_rules rules = {
		.issuer = "https://sts.example/realms/itl", .audiences = auds, .naudiences = 1, .leeway = 60,
		.access_token = true,
	};
	char *tok[NT], hdr[128], pl[512], reason[256];
	long n = 0;
	double t0, t;

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	for (int i = 0; i < NT; i++) {
		snprintf(pl, sizeof(pl),
			 "{\"iss\":\"https://sts.example/realms/itl\",\"aud\":[\"attestation-service\",\"account\"],"
			 "\"sub\":\"user-%d\",\"preferred_username\":\"op%d\",\"exp\":%ld,\"iat\":%ld,\"typ\":\"Bearer\","
			 "\"azp\":\"attestation-cli\",\"realm_access\":{\"roles\":[\"offline_access\",\"attestation-operator\"]}}",
			 i, i, (long)time(NULL) + 3600, (long)time(NULL));
		tok[i] = jwt_sign(key, alg, hdr, pl, NULL, 0);
		if (!tok[i])
			exit(1);
	}
	t0 = now_s();
	do {
		for (int i = 0; i < NT; i++) {
			json_t *claims = NULL;

			if (att_jwt_verify(ks, tok[i], &rules, (int64_t)time(NULL), &claims, reason, sizeof(reason)) != 0) {
				fprintf(stderr, "jwt-bench: %s\n", reason);
				exit(1);
			}
			json_decref(claims);
		}
		n += NT;
		t = now_s() - t0;
	} while (t < secs);
	for (int i = 0; i < NT; i++)
		free(tok[i]);
	return (double)n / t;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *jr = jwk_public_json(rsa, "rsa"), *je = jwk_public_json(ec, "ec"), doc[4096], err[256];
	struct att_jwks *ks = NULL;

	snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", jr, je);
	if (att_jwks_parse(doc, strlen(doc), &ks, err, sizeof(err)) != 0) {
		fprintf(stderr, "jwt-bench: %s\n", err);
		return 1;
	}
	printf("rsa2048 %.0f\n", run(rsa, "RS256", "rsa", ks, secs));
	printf("ecdsap256 %.0f\n", run(ec, "ES256", "ec", ks, secs));
	att_jwks_free(ks);
	free(jr);
	free(je);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return 0;
}
