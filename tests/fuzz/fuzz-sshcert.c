/* OpenSSH wire formats on arbitrary bytes: the input as a public key
 * blob, as a certificate blob, as an authorized_keys-style line, and as
 * an armored SSHSIG checked against a fixed Ed25519 key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policy/sshcert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t pub[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
	struct att_ssh_cert c;
	EVP_PKEY *k = NULL, *fixed;
	char type[64], reason[256], *s = malloc(size + 1);
	uint8_t *blob = NULL;
	size_t n = 0;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (att_ssh_pubkey_parse(data, size, &k, type) == 0)
		EVP_PKEY_free(k);
	if (att_ssh_cert_parse(data, size, &c, reason, sizeof(reason)) == 0)
		att_ssh_cert_release(&c);
	if (att_ssh_line_blob(s, type, &blob, &n) == 0) {
		if (att_ssh_cert_parse(blob, n, &c, reason, sizeof(reason)) == 0)
			att_ssh_cert_release(&c);
		free(blob);
	}
	fixed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
	if (fixed) {
		(void)att_sshsig_verify(s, fixed, "attestation-agent", (const uint8_t *)"m", 1, reason, sizeof(reason));
		EVP_PKEY_free(fixed);
	}
	free(s);
	return 0;
}
