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

#define ATT_EK_CHAIN_MAX_LEARNED 4

struct att_ek_chain_result {
	bool verified;
	char error[160];	/* "" when verified */
	char root[256];		/* subject of the anchor, RFC 2253 */
	/* intermediates of the verified chain that did not come from the
	 * bundle (request, NV range or cache): for the intermediate cache */
	int n_learned;
	struct att_ek_learned {
		char sha256[65];	/* of the DER */
		char subject[256];
		char *pem;		/* freed by att_ek_chain_result_release */
	} learned[ATT_EK_CHAIN_MAX_LEARNED];
};

void att_ek_chain_result_release(struct att_ek_chain_result *r);

/* Extra intermediates for one verification. */
struct att_ek_chain_extra {
	const char *pem;		/* request's ek_chain_pem: PEM certificates */
	const uint8_t *nv;		/* request's ek_chain_nv: the TPM's NV chain range */
	size_t nv_len;			/* (concatenated DER, any order, 0x00/0xFF padding) */
	const char *cached_pem;		/* intermediates remembered from earlier chains */
};

/* ek_b64: the request's ek_cert_pem (base64 of PEM or DER, NV padding
 * allowed).  ATT_E_INVAL when an extra chain is malformed; otherwise 0
 * with the verdict in ret. */
int att_ek_chain_verify(const struct att_ek_trust *t, const char *ek_b64, const struct att_ek_chain_extra *extra,
			time_t now, struct att_ek_chain_result *ret, char *reterr, size_t errlen);

/* Split the NV chain range into certificates (for the fuzzer and tests):
 * returns their number or ATT_E_INVAL. */
int att_ek_chain_parse_nv(const uint8_t *p, size_t len, int max, char *reterr, size_t errlen);

#endif
