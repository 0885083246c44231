/* ekchain.h - EK certificate chains to TPM manufacturer roots.
 *
 * Roots (self-signed) and intermediates are loaded from every PEM/DER
 * file in ITL_TPM_CA_BUNDLE_DIR at start-up.  A chain is built from the
 * EK certificate with intermediates from the bundle and from the
 * request (ek_chain_pem), and verified with OpenSSL over the original
 * bytes.  Purpose checks are off: EK certificates carry the TCG EKU
 * 2.23.133.8.1, not a TLS purpose. */
#ifndef ATT_CRYPTO_EKCHAIN_H
#define ATT_CRYPTO_EKCHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct att_ek_trust;

/* A missing directory is an empty trust store; an unreadable certificate
 * file is an error naming the file. */
int att_ek_trust_load(const char *dir, struct att_ek_trust **ret, int *ret_roots, int *ret_intermediates,
		      char *reterr, size_t errlen);
void att_ek_trust_free(struct att_ek_trust *t);

struct att_ek_chain_result {
	bool verified;
	char error[160];	/* "" when verified */
	char root[256];		/* subject of the anchor, RFC 2253 */
};

/* ek_b64: the request's ek_cert_pem (base64 of PEM or DER, NV padding
 * allowed); chain_pem: optional PEM intermediates.  ATT_E_INVAL when the
 * extra chain is malformed; otherwise 0 with the verdict in ret. */
int att_ek_chain_verify(const struct att_ek_trust *t, const char *ek_b64, const char *chain_pem,
			time_t now, struct att_ek_chain_result *ret, char *reterr, size_t errlen);

#endif
