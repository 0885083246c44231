/* gcm-open - open an AES-256-GCM config envelope on the node side.
 *
 *   gcm-open KEY-FILE ENVELOPE-JSON-FILE
 * KEY-FILE holds the 32-byte key (what TPM2_ActivateCredential recovered
 * from credential_blob, or RSA-OAEP unwrapped from wrapped_key).  Writes
 * the plaintext to stdout; exit status 1 when the tag does not verify.
 * The OpenSSL command line cannot do AEAD, hence this helper. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"
#include "crypto/envelope.h"

static int field(json_t *o, const char *k, uint8_t **ret, size_t *len)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? att_b64_decode(v, strlen(v), ret, len) : -1;
}

int main(int argc, char **argv)
{
	uint8_t key[33], *iv = NULL, *ct = NULL, *pt = NULL;
	size_t kl, ivl = 0, ctl = 0, ptl = 0;
	int ok;
	FILE *f;
	json_t *o;

	if (argc != 3) {
		fprintf(stderr, "usage: gcm-open KEY-FILE ENVELOPE-JSON-FILE\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f)
		return 2;
	kl = fread(key, 1, sizeof(key), f);
	fclose(f);
	o = json_load_file(argv[2], 0, NULL);
	if (kl != 32 || !o || field(o, "iv", &iv, &ivl) < 0 || field(o, "ciphertext", &ct, &ctl) < 0 || ivl != 12 ||
	    ctl < 16) {
		fprintf(stderr, "gcm-open: bad key or envelope\n");
		return 2;
	}
	ok = ivl == 12 && att_envelope_gcm_open(key, iv, ct, ctl, &pt, &ptl) == 0;
	if (ok)
		fwrite(pt, 1, ptl, stdout);
	else
		fprintf(stderr, "gcm-open: authentication failed\n");
	free(pt);
	free(iv);
	free(ct);
	json_decref(o);
	return ok ? 0 : 1;
}
