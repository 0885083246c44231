/* ca-internal.h - the Enrollment CA's state, shared by ca.c (keys,
 * issuance, rotation) and carevoke.c (CRLs, OCSP).  Nothing outside
 * src/lib/crypto/ includes this header. */
#ifndef ATT_CRYPTO_CA_INTERNAL_H
#define ATT_CRYPTO_CA_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/ca.h"

/* One CA generation: the current one issues; previous ones (kept after a
 * rotation) still sign CRLs and OCSP answers for what they issued. */
struct att_ca_gen {
	EVP_PKEY *key;
	X509 *cert;
	char serial[80];
};

#define ATT_CA_MAX_PREV 16

struct att_ca {
	EVP_PKEY *key;		/* current generation */
	X509 *cert;
	char serial[80];
	char algorithm[16];
	struct att_ca_gen prev[ATT_CA_MAX_PREV];
	size_t nprev;
	struct att_ca_hsm *hsm;	/* the key is in a PKCS#11 token (cahsm.c), NULL: a file */
	EVP_PKEY *signer_key;	/* audit report signing (made at start-up) */
	X509 *signer_cert;
};

/* cahsm.c: the private key named by a pkcs11: URI (the token session
 * stays open in *ret_hsm until att_ca_hsm_free). */
struct att_ca_hsm;
int att_ca_hsm_load(const char *uri, const char *default_module, EVP_PKEY **ret, struct att_ca_hsm **ret_hsm,
		    char *reterr, size_t errlen);
void att_ca_hsm_free(struct att_ca_hsm *h);

/* The generation whose serial is ca_serial (current or previous), or NULL. */
const struct att_ca_gen *att_ca_gen_find(const struct att_ca *ca, const char *ca_serial, struct att_ca_gen *cur);
/* Signing digest for a CA key. */
const EVP_MD *att_ca_md(EVP_PKEY *key);

#endif
