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
#include <stdint.h>

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

/* ---- certificates presented by machines -------------------------------- */

/* Proof of possession: cert_pem is one PEM certificate (<= 16 KiB) and
 * sig a signature by its key over msg — ECDSA-SHA384 for P-384 keys,
 * ECDSA-SHA256 for P-256, RSA PKCS#1 v1.5 SHA-256 for RSA (the
 * reference's enrollment signature).  Returns the serial (hex, as the CA
 * writes it) and the SHA-256 of the certificate's DER (hex). */
int att_cert_pop_check(const char *cert_pem, size_t len, const char *msg, size_t msglen, const uint8_t *sig,
		       size_t siglen, char ret_serial[80], char ret_sha256[65], char *reterr, size_t errlen);
/* RSA-OAEP (SHA-256, MGF1-SHA-256, no label) of data to an RSA public
 * key in PEM (>= 2048 bits), base64 (malloc'd) — the reference's
 * request-cert key wrapping.  ATT_E_INVAL with a reason. */
int att_crypto_oaep_wrap_b64(const char *pub_pem, const uint8_t *data, size_t len, char **ret, char *reterr,
			     size_t errlen);
/* The PKCS#8 DER of a PEM private key (malloc'd; wipe after use). */
int att_crypto_key_pem_der(const char *pem, uint8_t **ret, size_t *ret_len);
/* SHA-256 of the DER of a PEM certificate (hex). */
int att_cert_pem_sha256(const char *pem, char ret[65]);

#endif
