/* tpmdev.h - the node's TPM, through tpm2-tss ESYS and the TCTI loader.
 *
 * What the agent does with it (tpm.md section 3, the same steps
 * tests/integration/t0013-tpm.sh runs with tpm2-tools):
 *   - read the EK certificate from NV (RSA 0x01c00002, ECC P-256
 *     0x01c0000a, P-384 0x01c00016) and the chain range
 *     0x01c00100-0x01c001ff;
 *   - find the EK key: a persistent key (0x81010000-0x810100ff) whose
 *     public key is the certificate's, else the TCG default template
 *     (low range: RSA-2048 L-1, P-256 L-2) created with CreatePrimary;
 *     with no certificate at all the EK public area stands alone;
 *   - derive a restricted signing AK in the endorsement hierarchy,
 *     TPM2_ActivateCredential (a low-range EK needs a policy session with
 *     PolicySecret(TPM_RH_ENDORSEMENT)), TPM2_Quote.
 * No resource manager is assumed (swtpm): everything loaded is flushed
 * by att_tpmdev_close.  tss2 types stay in tpmdev.c and tpmak.c. */
#ifndef ATT_AGENT_TPMDEV_H
#define ATT_AGENT_TPMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/pcrsel.h"
#include "tpm/tpm.h"

struct att_tpmdev;

/* tcti: a TCTI configuration as tpm2-tools take it ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321"); NULL tries device:/dev/tpmrm0, then
 * device:/dev/tpm0. */
int att_tpmdev_open(const char *tcti, struct att_tpmdev **ret, char *reterr, size_t errlen);
void att_tpmdev_close(struct att_tpmdev *d);

enum att_ek_pref {
	ATT_EK_AUTO,	/* RSA-2048, then P-256, then P-384 */
	ATT_EK_RSA,
	ATT_EK_ECC,	/* P-256, then P-384 */
};

#define ATT_TPM_EK_MAX_NV (64 * 1024)

struct att_tpm_ek {
	char kind[16];		/* "rsa-2048", "ecc-p256", "ecc-p384" */
	uint32_t cert_nv;	/* NV index of the certificate, 0 without one */
	uint8_t *cert;		/* NV contents (DER, possibly with TCG header/padding) */
	size_t cert_len;
	uint8_t *chain;		/* NV chain range, concatenated; NULL when empty */
	size_t chain_len;
	uint8_t *spki;		/* DER SubjectPublicKeyInfo of the EK */
	size_t spki_len;
	uint8_t pub[ATT_TPM_MAX_PUBLIC];	/* the EK's TPM2B_PUBLIC */
	size_t pub_len;
	uint32_t handle;	/* persistent handle; 0 when made from the template */
};

void att_tpm_ek_release(struct att_tpm_ek *ek);

/* Select the EK by preference and keep it loaded for the AK operations. */
int att_tpmdev_ek(struct att_tpmdev *d, enum att_ek_pref pref, struct att_tpm_ek *ret, char *reterr,
		  size_t errlen);

/* The AK: a restricted signing key (fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, restricted, sign) derived with
 * TPM2_CreatePrimary from the endorsement primary seed — the seed the EK
 * comes from, which TPM2_Clear does not change — and a template whose
 * unique field carries the agent's label (the TCG IAK pattern).  The
 * same TPM always derives the same AK, so nothing secret is stored: a
 * node that lost its disk (maintenance mode runs from RAM; an install
 * wipes the disk) still holds the AK the service bound.  Credential
 * activation does not need the AK to be a child of the EK (only its Name
 * counts).  alg: "ecc" (P-256, ECDSA-SHA256) or "rsa" (RSA-2048,
 * RSASSA-SHA256).  Kept loaded until close. */
struct att_tpm_ak {
	uint8_t pub[ATT_TPM_MAX_PUBLIC];	/* TPM2B_PUBLIC, as tpm2_createak -u writes it */
	size_t pub_len;
};

int att_tpmdev_ak(struct att_tpmdev *d, const char *alg, struct att_tpm_ak *ret, char *reterr, size_t errlen);

/* TPM2_ActivateCredential with the loaded AK and the EK: id_object and
 * secret are the marshalled TPM2B structures of a credential blob.
 * Writes the recovered credential (<= 64 bytes). */
int att_tpmdev_activate(struct att_tpmdev *d, const uint8_t *id_object, size_t id_len, const uint8_t *secret,
			size_t secret_len, uint8_t out[64], size_t *ret_len, char *reterr, size_t errlen);

struct att_tpm_quote_out {
	uint8_t *attest;	/* raw TPMS_ATTEST */
	size_t attest_len;
	uint8_t *sig;		/* marshalled TPMT_SIGNATURE */
	size_t sig_len;
	struct att_tpm_pcrs pcrs;	/* the quoted PCR values, selection order */
	uint32_t reset_count;
	uint32_t restart_count;
};

void att_tpm_quote_out_release(struct att_tpm_quote_out *q);

/* Quote the selection over the nonce with the loaded AK, and check the
 * result the way the service will (signature, nonce, pcrDigest over the
 * PCR values read); PCRs that change in between are read again (3 tries). */
int att_tpmdev_quote(struct att_tpmdev *d, const uint8_t *nonce, size_t nonce_len, const struct att_pcrsel *sel,
		     struct att_tpm_quote_out *ret, char *reterr, size_t errlen);

/* The client-certificate key (docs/certificates.md, TPM-resident keys):
 * an unrestricted ECC P-256 ECDSA-SHA256 signing key with fixedTPM,
 * fixedParent, sensitiveDataOrigin, derived with TPM2_CreatePrimary in
 * the owner hierarchy from a labelled template, so the same TPM always
 * derives the same key (until TPM2_Clear) and no key blob is stored.
 * ret->pub is its TPM2B_PUBLIC.  Kept loaded until close. */
int att_tpmdev_client_key(struct att_tpmdev *d, struct att_tpm_ak *ret, char *reterr, size_t errlen);
/* TPM2_Certify of the client key by the AK with the nonce as qualifying
 * data: raw TPMS_ATTEST and marshalled TPMT_SIGNATURE (malloc'd). */
int att_tpmdev_certify(struct att_tpmdev *d, const uint8_t *nonce, size_t nonce_len, uint8_t **ret_attest,
		       size_t *ret_alen, uint8_t **ret_sig, size_t *ret_slen, char *reterr, size_t errlen);
/* TPM2_Sign of a SHA-256 digest with the client key: DER ECDSA-Sig-Value. */
int att_tpmdev_client_sign(struct att_tpmdev *d, const uint8_t digest[32], uint8_t **ret_der, size_t *ret_len,
			   char *reterr, size_t errlen);

/* The loaded AK's Name, lowercase hex (2 * ATT_TPM_MAX_NAME + 1). */
int att_tpmdev_ak_name(struct att_tpmdev *d, char *out, char *reterr, size_t errlen);

#endif
