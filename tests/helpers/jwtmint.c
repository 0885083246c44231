/* jwtmint - mint JWS tokens and JWKs for the integration tests.
 *   jwtmint sign --key PEM --alg RS256 [--kid K] [--typ T] [--header JSON] --claims JSON
 *   jwtmint sign --alg HS256 --hs-secret-file F ...   (key-confusion attempts)
 *   jwtmint sign --alg none ...
 *   jwtmint jwk --key PEM --kid K                      (public JWK of a private key) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "jwtsign.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
		b[n] = 0;
		*len = (size_t)n;
	} else {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

int main(int argc, char **argv)
{
	const char *keyf = NULL, *alg = "RS256", *kid = NULL, *typ = NULL, *hdr = NULL, *claims = NULL,
		   *hsf = NULL;
	EVP_PKEY *key = NULL;
	char header[512], *out;
	char *hs = NULL;
	size_t hslen = 0;

	if (argc < 2)
		goto usage;
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--key") == 0)
			keyf = argv[i + 1];
		else if (strcmp(argv[i], "--alg") == 0)
			alg = argv[i + 1];
		else if (strcmp(argv[i], "--kid") == 0)
			kid = argv[i + 1];
		else if (strcmp(argv[i], "--typ") == 0)
			typ = argv[i + 1];
		else if (strcmp(argv[i], "--header") == 0)
			hdr = argv[i + 1];
		else if (strcmp(argv[i], "--claims") == 0)
			claims = argv[i + 1];
		else if (strcmp(argv[i], "--hs-secret-file") == 0)
			hsf = argv[i + 1];
		else
			goto usage;
	}
	if (keyf) {
		FILE *f = fopen(keyf, "r");

		key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!key) {
			fprintf(stderr, "jwtmint: cannot read private key %s\n", keyf);
			return 1;
		}
	}
	if (strcmp(argv[1], "jwk") == 0) {
		if (!key || !kid)
			goto usage;
		out = jwk_public_json(key, kid);
	} else if (strcmp(argv[1], "sign") == 0) {
		if (!claims || (!key && strcmp(alg, "none") != 0 && !hsf))
			goto usage;
		if (hsf && !(hs = slurp(hsf, &hslen))) {
			fprintf(stderr, "jwtmint: cannot read %s\n", hsf);
			return 1;
		}
		if (!hdr) {
			int n = snprintf(header, sizeof(header), "{\"alg\":\"%s\"", alg);

			if (typ)
				n += snprintf(header + n, sizeof(header) - (size_t)n, ",\"typ\":\"%s\"", typ);
			if (kid)
				n += snprintf(header + n, sizeof(header) - (size_t)n, ",\"kid\":\"%s\"", kid);
			snprintf(header + n, sizeof(header) - (size_t)n, "}");
			hdr = header;
		}
		out = jwt_sign(key, alg, hdr, claims, hs, hslen);
	} else {
		goto usage;
	}
	EVP_PKEY_free(key);
	free(hs);
	if (!out) {
		fprintf(stderr, "jwtmint: failed\n");
		return 1;
	}
	printf("%s\n", out);
	free(out);
	return 0;
usage:
	fprintf(stderr, "usage: jwtmint sign|jwk --key PEM [--alg A] [--kid K] [--typ T] [--header JSON] [--claims JSON] [--hs-secret-file F]\n");
	return 2;
}
