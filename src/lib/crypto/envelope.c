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
#include "crypto/envelope.h"

static EVP_PKEY *load_ek_key(const char *ek_b64, const char *source)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	EVP_PKEY *pk = NULL;

	if (att_b64_decode(ek_b64, strlen(ek_b64), &raw, &n) < 0)
		return NULL;
	if (n > 7 && raw[0] == 0x10 && raw[1] == 0x01 && raw[5] == 0x10 && raw[6] == 0x02) {
		memmove(raw, raw + 7, n - 7);
		n -= 7;
	}
	{
		BIO *bio = BIO_new_mem_buf(raw, (int)n);
		bool pem = n > 10 && memmem(raw, n, "-----BEGIN", 10) != NULL;

		if (bio) {
			if (source && strcmp(source, "pub") == 0) {
				pk = pem ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : d2i_PUBKEY_bio(bio, NULL);
			} else {
				X509 *x = pem ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : d2i_X509_bio(bio, NULL);

				if (x)
					pk = X509_get_pubkey(x);
				X509_free(x);
			}
			BIO_free(bio);
		}
	}
	free(raw);
	return pk;
}

int att_envelope_ek_aes256gcm(const char *ek_b64, const char *ek_source, const char *machine_id,
			      const char *plaintext, size_t len, char **ret_json)
{
	EVP_PKEY *pk = load_ek_key(ek_b64, ek_source);
	EVP_PKEY_CTX *pctx = NULL;
	EVP_CIPHER_CTX *cctx = NULL;
	uint8_t key[32], iv[12], *wrapped = NULL, *ct = NULL;
	size_t wlen = 0;
	int outl = 0, fin = 0, r = ATT_E_INVAL;
	char *b_wrapped = NULL, *b_iv = NULL, *b_ct = NULL;
	json_t *o = NULL;

	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		goto out;
	r = ATT_E_CRYPTO;
	if (len > INT32_MAX - 32 || att_random(key, sizeof(key)) < 0 || att_random(iv, sizeof(iv)) < 0)
		goto out;
	pctx = EVP_PKEY_CTX_new(pk, NULL);
	if (!pctx || EVP_PKEY_encrypt_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_encrypt(pctx, NULL, &wlen, key, sizeof(key)) <= 0)
		goto out;
	wrapped = malloc(wlen);
	ct = malloc(len + 16);
	if (!wrapped || !ct) {
		r = ATT_E_NOMEM;
		goto out;
	}
	if (EVP_PKEY_encrypt(pctx, wrapped, &wlen, key, sizeof(key)) <= 0)
		goto out;
	cctx = EVP_CIPHER_CTX_new();
	if (!cctx || EVP_EncryptInit_ex(cctx, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, ct, &outl, (const unsigned char *)plaintext, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(cctx, ct + outl, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_GCM_GET_TAG, 16, ct + outl + fin) != 1)
		goto out;
	b_wrapped = att_b64_encode(wrapped, wlen);
	b_iv = att_b64_encode(iv, sizeof(iv));
	b_ct = att_b64_encode(ct, (size_t)(outl + fin) + 16);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "format", "ek-aes256gcm-v1", "machine_id", machine_id,
		      "wrapped_key", b_wrapped ? b_wrapped : "", "iv", b_iv ? b_iv : "", "ciphertext",
		      b_ct ? b_ct : "");
	if (!o || !b_wrapped || !b_iv || !b_ct) {
		r = ATT_E_NOMEM;
		goto out;
	}
	*ret_json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	r = *ret_json ? 0 : ATT_E_NOMEM;
out:
	att_wipe(key, sizeof(key));
	json_decref(o);
	free(b_wrapped);
	free(b_iv);
	free(b_ct);
	free(wrapped);
	free(ct);
	EVP_CIPHER_CTX_free(cctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pk);
	return r;
}
