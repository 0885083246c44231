/* tpm.h - TPM 2.0 structures the server handles, in software.
 *
 * Byte-exact algorithms: ../shared/reference/tpm.md section 2.  TPM
 * structures are parsed with libtss2-mu (never by hand-rolled offsets)
 * and every parse must consume the input exactly: trailing bytes are an
 * error.  Hashes and signatures are always computed over the raw bytes
 * received, never over a re-marshalled structure.
 *
 *   att_tpm_pub_*        TPM2B_PUBLIC of an EK or AK, its Name, key checks
 *   att_tpm_kdfa/kdfe    TPM Part 1 11.4.9 key derivation
 *   att_tpm_make_credential
 *                        TPM2_MakeCredential in software against an EK
 *   att_tpm_quote_*      TPMS_ATTEST + TPMT_SIGNATURE verification,
 *                        pcrDigest over reported PCR values
 *
 * Functions return 0 or a negative att_err; on ATT_E_INVAL a reason
 * fit for a 422 detail is written to reterr. */
#ifndef ATT_TPM_TPM_H
#define ATT_TPM_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define ATT_TPM_ALG_RSA 0x0001
#define ATT_TPM_ALG_SHA1 0x0004
#define ATT_TPM_ALG_AES 0x0006
#define ATT_TPM_ALG_SHA256 0x000b
#define ATT_TPM_ALG_SHA384 0x000c
#define ATT_TPM_ALG_SHA512 0x000d
#define ATT_TPM_ALG_NULL 0x0010
#define ATT_TPM_ALG_RSASSA 0x0014
#define ATT_TPM_ALG_RSAPSS 0x0016
#define ATT_TPM_ALG_ECDSA 0x0018
#define ATT_TPM_ALG_ECC 0x0023
#define ATT_TPM_ALG_CFB 0x0043

/* TPMA_OBJECT bits */
#define ATT_TPMA_FIXEDTPM (1u << 1)
#define ATT_TPMA_FIXEDPARENT (1u << 4)
#define ATT_TPMA_SENSITIVEDATAORIGIN (1u << 5)
#define ATT_TPMA_USERWITHAUTH (1u << 6)
#define ATT_TPMA_ADMINWITHPOLICY (1u << 7)
#define ATT_TPMA_RESTRICTED (1u << 16)
#define ATT_TPMA_DECRYPT (1u << 17)
#define ATT_TPMA_SIGN (1u << 18)

#define ATT_TPM_MAX_NAME (2 + 64)
#define ATT_TPM_MAX_PUBLIC 1024

/* A TPM public area: what the server needs of it. */
struct att_tpm_pub {
	uint16_t type;		/* ATT_TPM_ALG_RSA / _ECC */
	uint16_t name_alg;
	uint32_t attrs;
	uint16_t sym_alg;	/* ATT_TPM_ALG_AES or NULL */
	uint16_t sym_bits;
	uint16_t sym_mode;
	uint16_t scheme;	/* signing scheme or NULL */
	uint16_t scheme_hash;
	uint16_t curve;		/* TPM_ECC_CURVE, 0 for RSA */
	int key_bits;
	EVP_PKEY *pkey;
	uint8_t name[ATT_TPM_MAX_NAME];	/* nameAlg || H(TPMT_PUBLIC) */
	size_t name_len;
};

void att_tpm_pub_release(struct att_tpm_pub *p);

/* Parse a TPM2B_PUBLIC (size-prefixed TPMT_PUBLIC, as tpm2_createak -u
 * writes it) and compute its Name over the raw bytes. */
int att_tpm_pub_parse(const uint8_t *buf, size_t len, struct att_tpm_pub *ret, char *reterr,
		      size_t errlen);

/* Same, remembering successful parses in a small process-local cache
 * keyed by SHA-256 of the bytes (the result is a pure function of them,
 * so replicas share nothing): importing the key into OpenSSL costs as
 * much as verifying an RSA signature, and the attest path parses the
 * bound AK on every quote.  The caller releases *ret as usual. */
int att_tpm_pub_parse_cached(const uint8_t *buf, size_t len, struct att_tpm_pub *ret, char *reterr,
			     size_t errlen);

/* The TCG default EK template for a certificate key (EK Credential
 * Profile: RSA-2048/P-256 low range SHA-256/AES-128, RSA-3072/4096 and
 * P-384 high range SHA-384/AES-256, P-521 SHA-512/AES-256).  Takes its
 * own reference to key.  No Name (an EK's Name is never needed). */
int att_tpm_pub_ek_template(EVP_PKEY *key, struct att_tpm_pub *ret, char *reterr, size_t errlen);

/* An attestation key: restricted signing key with fixedTPM,
 * fixedParent, sensitiveDataOrigin, no decrypt, a fixed SHA-2 scheme. */
int att_tpm_pub_check_ak(const struct att_tpm_pub *p, char *reterr, size_t errlen);
/* An endorsement key: restricted decryption key, fixedTPM, fixedParent,
 * AES-CFB symmetric parameters, SHA-2 name algorithm. */
int att_tpm_pub_check_ek(const struct att_tpm_pub *p, char *reterr, size_t errlen);
/* Same public key (OpenSSL comparison of the key parameters). */
bool att_tpm_pub_same_key(const struct att_tpm_pub *p, EVP_PKEY *key);

/* Hash algorithm of a TPM_ALG id (SHA-1/256/384/512), NULL otherwise. */
const EVP_MD *att_tpm_md(uint16_t alg);
/* Bank names: "sha1", "sha256", "sha384", "sha512". */
const char *att_tpm_bank_name(uint16_t alg);
uint16_t att_tpm_bank_alg(const char *name, size_t len);

/* KDFa (HMAC counter mode) and KDFe (ECDH concatenation KDF); out holds
 * (bits+7)/8 bytes.  label is a C string, used with its NUL. */
int att_tpm_kdfa(const EVP_MD *md, const uint8_t *key, size_t keylen, const char *label,
		 const uint8_t *ctx_u, size_t ulen, const uint8_t *ctx_v, size_t vlen, uint32_t bits,
		 uint8_t *out);
int att_tpm_kdfe(const EVP_MD *md, const uint8_t *z, size_t zlen, const char *label,
		 const uint8_t *party_u, size_t ulen, const uint8_t *party_v, size_t vlen,
		 uint32_t bits, uint8_t *out);

/* TPM2_MakeCredential: protect credential cv (1..64 bytes) for the
 * object named name, under the EK.  Outputs the marshalled
 * TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. */
struct att_tpm_credential {
	uint8_t id_object[2 + 2 + 64 + 2 + 64];
	size_t id_object_len;
	uint8_t secret[2 + 512];
	size_t secret_len;
};
int att_tpm_make_credential(const struct att_tpm_pub *ek, const uint8_t *name, size_t name_len,
			    const uint8_t *cv, size_t cvlen, struct att_tpm_credential *ret,
			    char *reterr, size_t errlen);
/* tpm2-tools blob file: BE32 0xBADCC0DE | BE32 1 | ID object | secret.
 * Returns base64 (caller frees) or NULL. */
char *att_tpm_credential_blob_b64(const struct att_tpm_credential *c);

/* ---- quotes ------------------------------------------------------------ */

#define ATT_TPM_MAX_BANKS 4
#define ATT_TPM_NUM_PCRS 24

struct att_tpm_quote {
	uint8_t extra[64];
	size_t extra_len;
	uint64_t clock;
	uint32_t reset_count;
	uint32_t restart_count;
	bool safe;
	uint64_t firmware;
	/* the selection, in quote order */
	size_t n_sel;
	struct {
		uint16_t bank;
		uint32_t mask;	/* bit n = PCR n */
	} sel[16];
	uint8_t pcr_digest[64];
	size_t pcr_digest_len;
	uint16_t sig_hash;	/* hash of the verified signature */
};

/* Reported PCR values: "sha256:7" -> digest. */
struct att_tpm_pcrs {
	size_t n;
	struct {
		uint16_t bank;
		uint8_t index;
		uint8_t len;
		uint8_t value[64];
	} v[ATT_TPM_MAX_BANKS * ATT_TPM_NUM_PCRS];
};

/* Add "sha256:7" = hex; ATT_E_INVAL on a bad key, bad hex, a digest of
 * the wrong length for the bank, or a duplicate. */
int att_tpm_pcrs_add(struct att_tpm_pcrs *p, const char *key, const char *hex, char *reterr,
		     size_t errlen);
const uint8_t *att_tpm_pcrs_find(const struct att_tpm_pcrs *p, uint16_t bank, unsigned index,
				 size_t *ret_len);

/* Parse a raw TPMS_ATTEST; magic and type (quote) are checked. */
int att_tpm_quote_parse(const uint8_t *attest, size_t len, struct att_tpm_quote *ret, char *reterr,
			size_t errlen);

/* Verify sig over the raw attest bytes with the AK.  sig is a
 * TPMT_SIGNATURE, or the reference's raw form (DER ECDSA for an ECC AK,
 * the bare RSA signature for an RSA AK) interpreted with the AK's scheme.
 * The signature algorithm and hash must be the AK's scheme. */
int att_tpm_quote_verify_sig(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen,
			     const uint8_t *sig, size_t slen, uint16_t *ret_hash, char *reterr,
			     size_t errlen);

/* Full check in the order of tpm.md 2.8: signature, magic/type, nonce
 * (constant time, same length), pcrDigest over pcrs in selection order
 * (every quoted PCR reported, every reported PCR quoted). */
int att_tpm_quote_check(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen,
			const uint8_t *sig, size_t slen, const uint8_t *nonce, size_t nonce_len,
			const struct att_tpm_pcrs *pcrs, struct att_tpm_quote *ret, char *reterr,
			size_t errlen);

/* ---- TPM2_Certify (certify.c) --------------------------------------------- */

struct att_tpm_certify {
	uint8_t extra[64];
	size_t extra_len;
	uint8_t name[ATT_TPM_MAX_NAME];	/* the certified object's Name */
	size_t name_len;
};

/* Parse a raw TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY. */
int att_tpm_certify_parse(const uint8_t *attest, size_t len, struct att_tpm_certify *ret, char *reterr,
			  size_t errlen);
/* A key fit for a client certificate: sign, fixedTPM, fixedParent,
 * sensitiveDataOrigin, not decrypt. */
int att_tpm_pub_check_client_key(const struct att_tpm_pub *p, char *reterr, size_t errlen);
/* Signature by the AK over the raw bytes, extraData = nonce, certified
 * Name = key's Name. */
int att_tpm_certify_check(const struct att_tpm_pub *ak, const uint8_t *attest, size_t alen, const uint8_t *sig,
			  size_t slen, const uint8_t *nonce, size_t nonce_len, const struct att_tpm_pub *key,
			  char *reterr, size_t errlen);

#endif
