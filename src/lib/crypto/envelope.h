/* envelope.h - the reference's "ek-aes256gcm-v1" config envelope:
 *   {"format":"ek-aes256gcm-v1","machine_id":..,"wrapped_key":b64,"iv":b64,"ciphertext":b64}
 * AES-256-GCM (random key, 12-byte IV, no AAD; ciphertext || 16-byte tag),
 * key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, no label) under the
 * machine's EK public key.  Only RSA EKs can receive it; note that a
 * real TPM EK is a restricted key (see docs/config-delivery.md). */
#ifndef ATT_CRYPTO_ENVELOPE_H
#define ATT_CRYPTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

struct att_tpm_pub;

/* Returns the envelope JSON (caller frees), ATT_E_INVAL when the EK is
 * not an RSA key or cannot be parsed. */
int att_envelope_ek_aes256gcm(const char *ek_b64, const char *ek_source, const char *machine_id,
			      const char *plaintext, size_t len, char **ret_json);

/* The TPM-bound envelope, for machines with an AK bound by credential
 * activation:
 *   {"format":"tpm-credential-aes256gcm-v1","machine_id":..,
 *    "credential_blob":b64,"iv":b64,"ciphertext":b64}
 * AES-256-GCM as above; the 32-byte key is the credential of a
 * TPM2_MakeCredential to the EK for the AK's Name (credential_blob is the
 * tpm2-tools blob: 0xBADCC0DE | 1 | TPM2B_ID_OBJECT | TPM2B_ENCRYPTED_SECRET).
 * Only TPM2_ActivateCredential in the TPM holding both keys recovers it. */
int att_envelope_tpm_credential(const struct att_tpm_pub *ek, const uint8_t *ak_name, size_t name_len,
				const char *machine_id, const char *plaintext, size_t len,
				char **ret_json);

/* Open AES-256-GCM: ct is ciphertext || 16-byte tag (both envelopes).
 * *ret_pt is NUL-terminated (not counted); ATT_E_CRYPTO when the tag
 * does not verify, ATT_E_INVAL for a ciphertext shorter than the tag. */
int att_envelope_gcm_open(const uint8_t key[32], const uint8_t iv[12], const uint8_t *ct, size_t ct_len,
			  uint8_t **ret_pt, size_t *ret_len);

#endif
