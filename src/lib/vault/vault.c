/* vault.c - the secret vault's master key and encryption at rest.
 *
 * Key: ITL_SHARED_SECRET_MASTER_KEY (32 bytes as 64 hex digits) or
 * ITL_SHARED_SECRET_PASSPHRASE (PBKDF2-HMAC-SHA256, fixed salt, 210,000
 * iterations).  Unlike the reference there is no random per-process key:
 * replicas must agree, and a restart must not lose every secret.
 *
 * A value is sealed with AES-256-GCM under the master key, a fresh
 * 12-byte IV per version, and the AAD
 *   "itl-secret-v1" 0x00 machine_id 0x00 name 0x00 version(decimal)
 * so a row copied to another machine, name or version does not open. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "vault/vault.h"

#define PBKDF2_ITERATIONS 210000
#define PBKDF2_SALT "itl-attestation secret vault v1"

struct att_vault {
	uint8_t key[32];
	char key_id[17];
};

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

int att_vault_open(const struct att_config *cfg, struct att_vault **ret, char *reterr, size_t errlen)
{
	const char *hex = cfg->shared_secret_master_key, *pass = cfg->shared_secret_passphrase;
	struct att_vault *v;
	uint8_t id[32];
	char idsrc[16 + 32];

	*ret = NULL;
	if ((!hex || !*hex) && (!pass || !*pass))
		return 0;
	v = calloc(1, sizeof(*v));
	if (!v)
		return ATT_E_NOMEM;
	if (hex && *hex) {
		if (strlen(hex) != 64 || att_hex_decode(hex, 64, v->key) < 0) {
			free(v);
			return ERR(ATT_E_INVAL, "ITL_SHARED_SECRET_MASTER_KEY: must be 32 bytes as 64 hex digits (openssl rand -hex 32)");
		}
	} else if (strlen(pass) < 16) {
		free(v);
		return ERR(ATT_E_INVAL, "ITL_SHARED_SECRET_PASSPHRASE: must be at least 16 characters");
	} else if (PKCS5_PBKDF2_HMAC(pass, (int)strlen(pass), (const unsigned char *)PBKDF2_SALT,
				     (int)strlen(PBKDF2_SALT), PBKDF2_ITERATIONS, EVP_sha256(), 32, v->key) != 1) {
		free(v);
		return ERR(ATT_E_CRYPTO, "ITL_SHARED_SECRET_PASSPHRASE: key derivation failed");
	}
	memcpy(idsrc, "itl-vault-key-id", 16);
	memcpy(idsrc + 16, v->key, 32);
	att_sha256(idsrc, sizeof(idsrc), id);
	att_wipe(idsrc, sizeof(idsrc));
	att_hex_encode(id, 8, v->key_id);
	*ret = v;
	return 0;
}

void att_vault_free(struct att_vault *v)
{
	if (!v)
		return;
	att_wipe(v, sizeof(*v));
	free(v);
}

const char *att_vault_key_id(const struct att_vault *v)
{
	return v->key_id;
}

bool att_vault_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > ATT_VAULT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
			return false;
	}
	return true;
}

static char *aad_of(const char *machine_id, const char *name, int64_t version, size_t *ret_len)
{
	char *a = att_asprintf("itl-secret-v1%c%s%c%s%c%lld", 0, machine_id, 0, name, 0, (long long)version);

	if (!a)
		return NULL;
	/* the NULs are part of the AAD: compute the length by parts */
	*ret_len = 13 + 1 + strlen(machine_id) + 1 + strlen(name) + 1 +
		   (size_t)snprintf(NULL, 0, "%lld", (long long)version);
	return a;
}

static int gcm(bool enc, const uint8_t key[32], const uint8_t iv[12], const char *aad, size_t aad_len,
	       const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0, ok;

	if (!c)
		return ATT_E_NOMEM;
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc ? 1 : 0) == 1 &&
	     EVP_CipherUpdate(c, NULL, &outl, (const unsigned char *)aad, (int)aad_len) == 1 &&
	     (len == 0 || EVP_CipherUpdate(c, out, &outl, in, (int)len) == 1) &&
	     (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
	     EVP_CipherFinal_ex(c, out + (len ? outl : 0), &fin) == 1 &&
	     (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : ATT_E_CRYPTO;
}

int att_vault_seal(const struct att_vault *v, const char *machine_id, const char *name, int64_t version,
		   const uint8_t *value, size_t len, char **ret_iv, char **ret_ct)
{
	uint8_t iv[12], *ct;
	size_t aad_len = 0;
	char *aad, *biv = NULL, *bct = NULL;
	int r;

	if (len > INT_MAX - 16)
		return ATT_E_INVAL;
	if ((r = att_random(iv, sizeof(iv))) < 0)
		return r;
	aad = aad_of(machine_id, name, version, &aad_len);
	ct = malloc(len + 16);
	if (!aad || !ct) {
		r = ATT_E_NOMEM;
		goto out;
	}
	r = gcm(true, v->key, iv, aad, aad_len, value, len, ct, ct + len);
	if (r == 0) {
		biv = att_b64_encode(iv, sizeof(iv));
		bct = att_b64_encode(ct, len + 16);
		r = biv && bct ? 0 : ATT_E_NOMEM;
	}
	if (r == 0) {
		*ret_iv = biv;
		*ret_ct = bct;
		biv = bct = NULL;
	}
out:
	free(biv);
	free(bct);
	free(aad);
	free(ct);
	return r;
}

int att_vault_unseal(const struct att_vault *v, const char *machine_id, const char *name, int64_t version,
		     const char *iv, const char *ct, uint8_t **ret_value, size_t *ret_len)
{
	uint8_t *riv = NULL, *rct = NULL, *pt = NULL;
	size_t ivl = 0, ctl = 0, aad_len = 0;
	char *aad = NULL;
	int r = ATT_E_CRYPTO;

	if (att_b64_decode(iv, strlen(iv), &riv, &ivl) < 0 || att_b64_decode(ct, strlen(ct), &rct, &ctl) < 0 ||
	    ivl != 12 || ctl < 16 || ctl - 16 > INT_MAX)
		goto out;
	aad = aad_of(machine_id, name, version, &aad_len);
	pt = malloc(ctl - 16 + 1);
	if (!aad || !pt) {
		r = ATT_E_NOMEM;
		goto out;
	}
	r = gcm(false, v->key, riv, aad, aad_len, rct, ctl - 16, pt, rct + ctl - 16);
	if (r == 0) {
		pt[ctl - 16] = 0;
		*ret_value = pt;
		*ret_len = ctl - 16;
		pt = NULL;
	}
out:
	if (pt) {
		att_wipe(pt, ctl - 16);
		free(pt);
	}
	free(riv);
	free(rct);
	free(aad);
	return r;
}
