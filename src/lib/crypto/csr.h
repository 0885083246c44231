/* csr.h - PKCS#10 certificate requests from machines (untrusted bytes).
 *
 * Only the public key of a CSR is ever used: its subject, attributes and
 * requested extensions are ignored (the certificate's content is decided
 * by the service).  The CSR must be one PEM block (CERTIFICATE REQUEST),
 * DER that parses exactly, and carry a valid self-signature (proof that
 * the requester holds the key).  Accepted keys: ECDSA P-384, RSA
 * 3072-8192; for a key the TPM certified (TPM2_Certify) also P-256 and
 * RSA-2048, the sizes every TPM 2.0 implements. */
#ifndef ATT_CRYPTO_CSR_H
#define ATT_CRYPTO_CSR_H

#include <stdbool.h>
#include <stddef.h>

#define ATT_CSR_MAX_PEM 16384

typedef struct evp_pkey_st EVP_PKEY;

struct att_csr {
	EVP_PKEY *key;		/* owned */
	char key_type[24];	/* ecdsa-p384, ecdsa-p256, rsa-3072, ... */
};

/* Parse and check csr_pem (len bytes); tpm_key widens the accepted key
 * types as above.  ATT_E_INVAL with a reason for a 422 detail. */
int att_csr_parse(const char *pem, size_t len, bool tpm_key, struct att_csr *ret, char *reterr,
		  size_t errlen);
void att_csr_release(struct att_csr *c);

/* The key type name of any public key (as above), "" if unsupported. */
void att_csr_key_type(EVP_PKEY *key, char out[24]);

#endif
