/* softquote.h - TPM quotes made in software, for unit tests and the
 * quote-verification benchmark: an AK key pair with its TPM2B_PUBLIC,
 * and TPMS_ATTEST + TPMT_SIGNATURE over chosen nonce and PCR values,
 * marshalled with libtss2-mu.  Real-TPM coverage is t0013 (swtpm). */
#ifndef ATT_TESTS_SOFTQUOTE_H
#define ATT_TESTS_SOFTQUOTE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct softak {
	EVP_PKEY *key;
	uint16_t scheme;	/* ATT_TPM_ALG_RSASSA / RSAPSS / ECDSA */
	uint8_t pub[1024];	/* TPM2B_PUBLIC */
	size_t pub_len;
};

/* kind: "rsa" (RSASSA-SHA256), "rsapss", "ecc" (P-256 ECDSA-SHA256).
 * attrs: TPMA_OBJECT (0 = a proper AK). */
int softak_new(struct softak *ak, const char *kind, uint32_t attrs);
void softak_free(struct softak *ak);

/* A quote of sha256 PCRs 0..n-1 with the given values (32 bytes each).
 * sig_hash: hash for the signature (and pcrDigest). */
int softquote_make(const struct softak *ak, const uint8_t *nonce, size_t nonce_len,
		   const uint8_t (*pcr)[32], unsigned n, uint16_t sig_hash, uint8_t *attest,
		   size_t *attest_len, uint8_t *sig, size_t *sig_len);

#endif
