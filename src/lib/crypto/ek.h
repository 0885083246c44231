/* ek.h - Endorsement Key material: parsing, checks, fingerprints.
 *
 * Input is what clients put in "ek_cert_pem": base64 of the EK
 * material bytes, which may be PEM text or DER, an X.509 certificate
 * (ek_source "cert") or a SubjectPublicKeyInfo (ek_source "pub").
 * Raw TPM NV dumps (TCG 7-byte header, 0x00/0xFF padding) are accepted.
 *
 * Fingerprints (ARCHITECTURE.md section 3):
 *   canonical: hex SHA-384 of the DER SubjectPublicKeyInfo
 *   legacy:    hex SHA-384 of the base64-decoded bytes as sent
 *   agent:     hex SHA-256 of the base64-decoded bytes as sent (what the
 *              reference USB agent computes over its PEM file) */
#ifndef ATT_CRYPTO_EK_H
#define ATT_CRYPTO_EK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ATT_EK_MAX_B64 (64 * 1024)

struct att_ek {
	char fp[97];
	char fp_legacy[97];
	char fp_agent[65];
	bool is_cert;
	char key_type[16];	/* "rsa-2048", "rsa-3072", "ecc-p256", "ecc-p384" */
	char issuer[256];	/* RFC 2253; "" for a bare public key */
	char not_after[32];	/* ISO; "" for a bare public key */
	char manufacturer[16];	/* TPM manufacturer from the SAN (2.23.133.2.1), e.g. "STM" */
	char model[64];		/* TPM model (2.23.133.2.2) */
	int64_t valid_from;	/* epoch seconds; 0 / INT64_MAX for a bare key */
	int64_t valid_until;
};

/* Parse and check EK material.  now: the time validity is checked
 * against.  On failure returns ATT_E_INVAL/ATT_E_NOMEM and a reason
 * (without the "Invalid EK material: " prefix) in reterr. */
int att_ek_parse(const char *b64, size_t b64len, const char *source, time_t now,
		 struct att_ek *ret, char *reterr, size_t errlen);

/* att_ek_parse() remembers the outcome of successful parses in a small
 * process-local cache keyed by SHA-256 of (source, input): the result
 * is a pure function of the bytes, so the cache holds no state that
 * replicas must share.  The validity window is re-checked on every hit.
 * OpenSSL 3 certificate decoding is the attest poll's dominant cost. */

/* Same on raw bytes (fuzzing, tests); never cached. */
int att_ek_parse_bytes(const uint8_t *der, size_t len, const char *source, time_t now,
		       struct att_ek *ret, char *reterr, size_t errlen);

/* Does a client-reported fingerprint identify this EK?  Accepts the
 * canonical, legacy and agent forms, case-insensitively, in constant
 * time per candidate. */
bool att_ek_fingerprint_matches(const struct att_ek *ek, const char *reported);

/* The public key of stored EK material (same input as att_ek_parse, no
 * checks); NULL when it cannot be read.  Caller frees. */
struct evp_pkey_st *att_ek_load_key(const char *ek_b64, const char *source);

#endif
