#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "crypto/envelope.h"
#include "tpm/tpm.h"

/* AES-256-GCM with a 12-byte random IV, no AAD; base64 of iv and of
 * ciphertext || tag. */
static int gcm_seal(const uint8_t key[32], const char *plaintext, size_t len, char **ret_iv,
		    char **ret_ct)
{
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t iv[12], *ct = NULL;
	int outl = 0, fin = 0, r = ATT_E_CRYPTO;

	*ret_iv = *ret_ct = NULL;
	if (len > INT32_MAX - 32 || att_random(iv, sizeof(iv)) < 0)
		return ATT_E_CRYPTO;
	ct = malloc(len + 16);
	if (!ct)
		return ATT_E_NOMEM;
	cctx = EVP_CIPHER_CTX_new();
	if (!cctx || EVP_EncryptInit_ex(cctx, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, ct, &outl, (const unsigned char *)plaintext, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(cctx, ct + outl, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_GCM_GET_TAG, 16, ct + outl + fin) != 1)
		goto out;
	*ret_iv = att_b64_encode(iv, sizeof(iv));
	*ret_ct = att_b64_encode(ct, (size_t)(outl + fin) + 16);
	r = *ret_iv && *ret_ct ? 0 : ATT_E_NOMEM;
out:
	if (r < 0) {
		free(*ret_iv);
		free(*ret_ct);
		*ret_iv = *ret_ct = NULL;
	}
	free(ct);
	EVP_CIPHER_CTX_free(cctx);
	return r;
}

static int envelope_json(const char *format, const char *machine_id, const char *key_field,
			 const char *key_b64, const char *iv, const char *ct, char **ret_json)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "format", format, "machine_id", machine_id, key_field,
			      key_b64, "iv", iv, "ciphertext", ct);

	if (!o)
		return ATT_E_NOMEM;
	*ret_json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return *ret_json ? 0 : ATT_E_NOMEM;
}

int att_envelope_ek_aes256gcm(const char *ek_b64, const char *ek_source, const char *machine_id,
			      const char *plaintext, size_t len, char **ret_json)
{
	EVP_PKEY *pk = att_ek_load_key(ek_b64, ek_source);
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t key[32], *wrapped = NULL;
	size_t wlen = 0;
	int r = ATT_E_INVAL;
	char *b_wrapped = NULL, *b_iv = NULL, *b_ct = NULL;

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		goto out;
	r = ATT_E_CRYPTO;
	if (att_random(key, sizeof(key)) < 0)
		goto out;
	pctx = EVP_PKEY_CTX_new(pk, NULL);
	if (!pctx || EVP_PKEY_encrypt_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_encrypt(pctx, NULL, &wlen, key, sizeof(key)) <= 0)
		goto out;
	wrapped = malloc(wlen);
	if (!wrapped) {
		r = ATT_E_NOMEM;
		goto out;
	}
	if (EVP_PKEY_encrypt(pctx, wrapped, &wlen, key, sizeof(key)) <= 0)
		goto out;
	r = gcm_seal(key, plaintext, len, &b_iv, &b_ct);
	if (r < 0)
		goto out;
	b_wrapped = att_b64_encode(wrapped, wlen);
	r = b_wrapped ? envelope_json("ek-aes256gcm-v1", machine_id, "wrapped_key", b_wrapped, b_iv, b_ct, ret_json)
		      : ATT_E_NOMEM;
out:
	att_wipe(key, sizeof(key));
	free(b_wrapped);
	free(b_iv);
	free(b_ct);
	free(wrapped);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pk);
	return r;
}

int att_envelope_tpm_credential(const struct att_tpm_pub *ek, const uint8_t *ak_name, size_t name_len,
				const char *machine_id, const char *plaintext, size_t len,
				char **ret_json)
{
	struct att_tpm_credential cred;
	uint8_t key[32];
	char why[128], *blob = NULL, *b_iv = NULL, *b_ct = NULL;
	int r;

	r = att_random(key, sizeof(key));
	if (r < 0)
		return r;
	r = att_tpm_make_credential(ek, ak_name, name_len, key, sizeof(key), &cred, why, sizeof(why));
	if (r == 0)
		r = gcm_seal(key, plaintext, len, &b_iv, &b_ct);
	att_wipe(key, sizeof(key));
	if (r < 0)
		goto out;
	blob = att_tpm_credential_blob_b64(&cred);
	r = blob ? envelope_json("tpm-credential-aes256gcm-v1", machine_id, "credential_blob", blob, b_iv, b_ct,
				 ret_json)
		 : ATT_E_NOMEM;
out:
	free(blob);
	free(b_iv);
	free(b_ct);
	return r;
}

int att_envelope_gcm_open(const uint8_t key[32], const uint8_t iv[12], const uint8_t *ct, size_t ct_len,
			  uint8_t **ret_pt, size_t *ret_len)
{
	EVP_CIPHER_CTX *c;
	uint8_t *pt;
	int outl = 0, fl = 0, ok;

	if (ct_len < 16 || ct_len - 16 > INT_MAX)
		return ATT_E_INVAL;
	pt = malloc(ct_len - 16 + 1);
	c = EVP_CIPHER_CTX_new();
	ok = pt && c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
	     EVP_DecryptUpdate(c, pt, &outl, ct, (int)(ct_len - 16)) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(ct + ct_len - 16)) == 1 &&
	     EVP_DecryptFinal_ex(c, pt + outl, &fl) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		if (pt)
			att_wipe(pt, ct_len - 16);
		free(pt);
		return pt ? ATT_E_CRYPTO : ATT_E_NOMEM;
	}
	pt[outl + fl] = 0;
	*ret_pt = pt;
	*ret_len = (size_t)(outl + fl);
	return 0;
}
