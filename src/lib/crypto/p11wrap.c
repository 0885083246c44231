/* p11wrap.c - wrapping keys held by a PKCS#11 token (p11wrap.h).
 *
 * Blob (version 1):
 *   0x01 | curve (1 P-256, 2 P-384, 3 P-521) | key id (8 bytes) |
 *   ephemeral public point (uncompressed) | nonce (12) | ciphertext | tag (16)
 * AES key = HKDF-SHA384(ikm = ECDH(ephemeral, wrapping key),
 *                       salt = ephemeral point || wrapping key's point,
 *                       info = "attestation-wrapkey-v1" 0x00 label)
 * and the GCM additional data is everything before the nonce.
 *
 * The token half (att_p11_slot) is shared with the CA key (cahsm.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/p11wrap.h"

#ifdef ATT_HAVE_LIBP11
#include <libp11.h>
#endif

#define BLOB_VERSION 1
#define KEYID 8
#define NONCE 12
#define TAG 16
#define MAX_POINT 133

static const struct {
	const char *group;
	size_t point;
} curves[] = { { NULL, 0 }, { "P-256", 65 }, { "P-384", 97 }, { "P-521", 133 } };

struct att_p11_wrapkey {
	EVP_PKEY *priv;			/* in the token: derive is C_DeriveKey */
	EVP_PKEY *pub;			/* its public half, in software */
	uint8_t point[MAX_POINT];
	size_t point_len;
	int curve;
	uint8_t keyid[KEYID];
	char id[2 * KEYID + 1];
	pthread_mutex_t lock;
};

/* ---- the software half: public keys, ECDH, HKDF, GCM ------------------------------ */

static EVP_PKEY *pub_from_point(int curve, const uint8_t *point, size_t len)
{
	OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curves[curve].group, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len),
		OSSL_PARAM_END,
	};
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;

	if (!c || EVP_PKEY_fromdata_init(c) != 1 || EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, p) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(c);
	return k;
}

static int ecdh(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t *z, size_t *zlen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(mine, NULL);
	int ok = c && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
		 EVP_PKEY_derive(c, z, zlen) == 1;

	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

static int kdf(const uint8_t *z, size_t zlen, const uint8_t *eph, const struct att_p11_wrapkey *k,
	       const char *label, uint8_t out[32])
{
	uint8_t salt[2 * MAX_POINT], info[600];
	size_t infolen = strlen("attestation-wrapkey-v1") + 1 + strlen(label);
	EVP_KDF *kd;
	EVP_KDF_CTX *c;
	int ok;

	if (infolen > sizeof(info))
		return -1;
	memcpy(salt, eph, k->point_len);
	memcpy(salt + k->point_len, k->point, k->point_len);
	memcpy(info, "attestation-wrapkey-v1", 23);	/* with its NUL */
	memcpy(info + 23, label, strlen(label));
	OSSL_PARAM p[] = {
		OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA384", 0),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zlen),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, salt, 2 * k->point_len),
		OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, info, infolen),
		OSSL_PARAM_END,
	};
	kd = EVP_KDF_fetch(NULL, "HKDF", NULL);
	c = kd ? EVP_KDF_CTX_new(kd) : NULL;
	ok = c && EVP_KDF_derive(c, out, 32, p) == 1;
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kd);
	return ok ? 0 : -1;
}

/* dir 1: seal in -> out (ct || tag), 0: open in (ct || tag) -> out */
static int gcm(int dir, const uint8_t key[32], const uint8_t *nonce, const uint8_t *aad, size_t aadlen,
	       const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	size_t body = dir ? n : n - TAG;
	int l, ok;

	if (!c || (!dir && n < TAG)) {
		EVP_CIPHER_CTX_free(c);
		return -1;
	}
	ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, dir) == 1 &&
	     EVP_CipherUpdate(c, NULL, &l, aad, (int)aadlen) == 1 &&
	     (body == 0 || EVP_CipherUpdate(c, out, &l, in, (int)body) == 1);
	if (ok && dir)
		ok = EVP_CipherFinal_ex(c, out + body, &l) == 1 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, out + body) == 1;
	else if (ok)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(uintptr_t)(in + body)) == 1 &&
		     EVP_CipherFinal_ex(c, out + body, &l) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int att_p11_wrapkey_wrap(struct att_p11_wrapkey *k, const char *label, const uint8_t *in, size_t n,
			 uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t hdr = 2 + KEYID + k->point_len, zlen = 66, plen = 0;
	uint8_t z[66], key[32], *pt = NULL;
	EVP_PKEY *eph;
	int r = ATT_E_CRYPTO;

	if (cap < hdr + NONCE + n + TAG || n > 65536)
		return ATT_E_INVAL;
	eph = EVP_EC_gen(curves[k->curve].group);
	if (!eph || (plen = EVP_PKEY_get1_encoded_public_key(eph, &pt)) != k->point_len ||
	    ecdh(eph, k->pub, z, &zlen) < 0 || kdf(z, zlen, pt, k, label, key) < 0)
		goto out;
	out[0] = BLOB_VERSION;
	out[1] = (uint8_t)k->curve;
	memcpy(out + 2, k->keyid, KEYID);
	memcpy(out + 2 + KEYID, pt, plen);
	if (RAND_bytes(out + hdr, NONCE) != 1 || gcm(1, key, out + hdr, out, hdr, in, n, out + hdr + NONCE) < 0)
		goto out;
	*ret_len = hdr + NONCE + n + TAG;
	r = 0;
out:
	att_wipe(z, sizeof(z));
	att_wipe(key, sizeof(key));
	OPENSSL_free(pt);
	EVP_PKEY_free(eph);
	return r;
}

int att_p11_wrapkey_unwrap(struct att_p11_wrapkey *k, const char *label, const uint8_t *in, size_t n,
			   uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t hdr = 2 + KEYID + k->point_len, zlen = 66;
	uint8_t z[66], key[32];
	EVP_PKEY *eph;
	int r;

	if (n < hdr + NONCE + TAG || in[0] != BLOB_VERSION || in[1] != k->curve || memcmp(in + 2, k->keyid, KEYID) != 0 ||
	    cap < n - hdr - NONCE - TAG)
		return ATT_E_INVAL;
	eph = pub_from_point(k->curve, in + 2 + KEYID, k->point_len);	/* checks the point is on the curve */
	if (!eph)
		return ATT_E_INVAL;
	pthread_mutex_lock(&k->lock);
	r = ecdh(k->priv, eph, z, &zlen);
	pthread_mutex_unlock(&k->lock);
	EVP_PKEY_free(eph);
	if (r < 0)
		return ATT_E_UNAVAILABLE;
	r = kdf(z, zlen, in + 2 + KEYID, k, label, key) < 0 ? ATT_E_CRYPTO
	    : gcm(0, key, in + hdr, in, hdr, in + hdr + NONCE, n - hdr - NONCE, out) < 0 ? ATT_E_INVAL
											  : 0;
	if (r == 0)
		*ret_len = n - hdr - NONCE - TAG;
	att_wipe(z, sizeof(z));
	att_wipe(key, sizeof(key));
	return r;
}

const char *att_p11_wrapkey_id(const struct att_p11_wrapkey *k)
{
	return k->id;
}

/* The public half as a plain software key; sets curve, point and id. */
static int set_public(struct att_p11_wrapkey *k, EVP_PKEY *from)
{
	char group[32];
	uint8_t *pt = NULL, md[32];
	size_t n;
	unsigned int mdlen = sizeof(md);

	if (EVP_PKEY_get_base_id(from) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(from, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
		return -1;
	for (int i = 1; i < 4; i++)
		if (!strcmp(group, curves[i].group) ||
		    (i == 1 && !strcmp(group, "prime256v1")) || (i == 2 && !strcmp(group, "secp384r1")) ||
		    (i == 3 && !strcmp(group, "secp521r1")))
			k->curve = i;
	n = k->curve ? EVP_PKEY_get1_encoded_public_key(from, &pt) : 0;
	if (!k->curve || n != curves[k->curve].point || !(k->pub = pub_from_point(k->curve, pt, n))) {
		OPENSSL_free(pt);
		return -1;
	}
	memcpy(k->point, pt, n);
	k->point_len = n;
	OPENSSL_free(pt);
	EVP_Digest(k->point, n, md, &mdlen, EVP_sha256(), NULL);
	memcpy(k->keyid, md, KEYID);
	for (int i = 0; i < KEYID; i++)
		snprintf(k->id + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int att_p11_wrapkey_soft(EVP_PKEY *priv, struct att_p11_wrapkey **ret)
{
	struct att_p11_wrapkey *k = calloc(1, sizeof(*k));

	if (!k)
		return ATT_E_NOMEM;
	pthread_mutex_init(&k->lock, NULL);
	if (EVP_PKEY_up_ref(priv) != 1) {
		att_p11_wrapkey_free(k);
		return ATT_E_CRYPTO;
	}
	k->priv = priv;
	if (set_public(k, priv) < 0) {
		att_p11_wrapkey_free(k);
		return ATT_E_CRYPTO;
	}
	*ret = k;
	return 0;
}

void att_p11_wrapkey_free(struct att_p11_wrapkey *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->priv);
	EVP_PKEY_free(k->pub);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* ---- the token half -------------------------------------------------------------------- */

#ifdef ATT_HAVE_LIBP11
/* One libp11 context per module for the whole process, shared by the CA
 * key (cahsm.c) and the wrapping keys: a second context would close the
 * first one's sessions (libp11 opens a slot's session with
 * C_CloseAllSessions) and an unload would C_Finalize under it. */
struct module {
	char path[1024];
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned int nslots;
	struct {
		PKCS11_SLOT *slot;
		uint8_t pin[32];	/* SHA-256 of the PIN that logged in */
	} logins[8];
	size_t nlogins;
};

static struct module modules[4];
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

static struct module *module_get(const char *path)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(modules); i++)
		if (modules[i].ctx && !strcmp(modules[i].path, path))
			return &modules[i];
	for (size_t i = 0; i < ATT_ARRAY_SIZE(modules); i++)
		if (!modules[i].ctx && (modules[i].ctx = PKCS11_CTX_new())) {
			snprintf(modules[i].path, sizeof(modules[i].path), "%s", path);
			if (path[0] && PKCS11_CTX_load(modules[i].ctx, path) == 0 &&
			    PKCS11_enumerate_slots(modules[i].ctx, &modules[i].slots, &modules[i].nslots) == 0)
				return &modules[i];
			/* kept (never unloaded): a later call fails the same way */
			modules[i].nslots = 0;
			return NULL;
		}
	return NULL;
}

/* Log in once per token; a later URI must give the same PIN. */
static int login(struct module *m, PKCS11_SLOT *slot, const char *pin)
{
	uint8_t h[32];
	unsigned int hl = sizeof(h);
	int r = 0;

	EVP_Digest(pin, strlen(pin), h, &hl, EVP_sha256(), NULL);
	for (size_t i = 0; i < m->nlogins; i++)
		if (m->logins[i].slot == slot) {
			r = CRYPTO_memcmp(m->logins[i].pin, h, sizeof(h)) == 0 ? 0 : -1;
			goto out;
		}
	if (m->nlogins == ATT_ARRAY_SIZE(m->logins) ||
	    (slot->token->loginRequired && (PKCS11_open_session(slot, 0) < 0 || PKCS11_login(slot, 0, pin) < 0))) {
		r = -1;
		goto out;
	}
	m->logins[m->nlogins].slot = slot;
	memcpy(m->logins[m->nlogins++].pin, h, sizeof(h));
out:
	att_wipe(h, sizeof(h));
	return r;
}

int att_p11_slot(const struct att_p11_uri *a, void **ret_slot, char *err, size_t errlen)
{
	struct module *m;
	PKCS11_SLOT *slot = NULL;
	int r = 0;

	pthread_mutex_lock(&modules_lock);
	m = module_get(a->module);
	for (unsigned int i = 0; m && i < m->nslots && !slot; i++)
		if (m->slots[i].token && m->slots[i].token->initialized &&
		    (!a->token[0] || strcmp(m->slots[i].token->label, a->token) == 0))
			slot = &m->slots[i];
	if (!m) {
		snprintf(err, errlen, "cannot load the PKCS#11 module '%s' (module-path= or ITL_PKCS11_MODULE)", a->module);
		r = ATT_E_UNAVAILABLE;
	} else if (!slot) {
		snprintf(err, errlen, "no PKCS#11 token labelled '%s'", a->token);
		r = ATT_E_NOTFOUND;
	} else if (login(m, slot, a->pin) < 0) {
		snprintf(err, errlen, "login to token '%s' failed (wrong PIN?)", a->token);
		r = ATT_E_UNAVAILABLE;
	} else {
		*ret_slot = slot;
	}
	pthread_mutex_unlock(&modules_lock);
	return r;
}

static int find_pair(PKCS11_TOKEN *tok, const struct att_p11_uri *a, PKCS11_KEY **ret_priv, PKCS11_KEY **ret_pub)
{
	PKCS11_KEY *keys = NULL;
	unsigned int n = 0;

	*ret_priv = *ret_pub = NULL;
	for (int pub = 0; pub < 2; pub++) {
		if ((pub ? PKCS11_enumerate_public_keys(tok, &keys, &n) : PKCS11_enumerate_keys(tok, &keys, &n)) < 0)
			return -1;
		for (unsigned int i = 0; i < n; i++) {
			bool label_ok = !a->object[0] || (keys[i].label && strcmp(keys[i].label, a->object) == 0);
			bool id_ok = !a->id_len ||
				     (keys[i].id_len == a->id_len && memcmp(keys[i].id, a->id, a->id_len) == 0);

			if (label_ok && id_ok) {
				*(pub ? ret_pub : ret_priv) = &keys[i];
				break;
			}
		}
	}
	return 0;
}

/* Fill what the URI leaves out from the CA's URI. */
static int merge_ca(struct att_p11_uri *a, const char *ca_uri, char *err, size_t errlen)
{
	struct att_p11_uri ca;

	if (a->token[0])
		return 0;
	if (!ca_uri || strncmp(ca_uri, "pkcs11:", 7) != 0 || att_p11_uri_parse(ca_uri, &ca) < 0) {
		snprintf(err, errlen, "the URI names no token= and the Enrollment CA key is not in a PKCS#11 token");
		return ATT_E_INVAL;
	}
	memcpy(a->token, ca.token, sizeof(a->token));
	if (!a->pin[0])
		memcpy(a->pin, ca.pin, sizeof(a->pin));
	if (!a->module[0])
		memcpy(a->module, ca.module, sizeof(a->module));
	att_wipe(&ca, sizeof(ca));
	return 0;
}

/* A wrap and an unwrap, so that a key the token will not derive with is
 * refused now rather than after stack keys were wrapped for it. */
static int selftest(struct att_p11_wrapkey *k)
{
	uint8_t v[32], blob[32 + ATT_P11_WRAP_OVERHEAD], back[32];
	size_t n = 0, m = 0;
	int r;

	if (RAND_bytes(v, sizeof(v)) != 1)
		return -1;
	r = att_p11_wrapkey_wrap(k, "selftest", v, sizeof(v), blob, sizeof(blob), &n) == 0 &&
		    att_p11_wrapkey_unwrap(k, "selftest", blob, n, back, sizeof(back), &m) == 0 && m == sizeof(v) &&
		    CRYPTO_memcmp(v, back, m) == 0
	    ? 0
	    : -1;
	att_wipe(v, sizeof(v));
	att_wipe(back, sizeof(back));
	return r;
}

static int open_in(struct att_p11_uri *a, struct att_p11_wrapkey *k, char *err, size_t errlen)
{
	PKCS11_SLOT *slot;
	PKCS11_KEY *priv, *pub;
	EVP_PKEY *pk;
	void *sl = NULL;
	int r = att_p11_slot(a, &sl, err, errlen);

	if (r < 0)
		return r;
	slot = sl;
	pthread_mutex_lock(&modules_lock);
	if (find_pair(slot->token, a, &priv, &pub) < 0 || !priv) {
		snprintf(err, errlen, "no private key '%s' in token '%s'", a->object, slot->token->label);
		r = ATT_E_NOTFOUND;
	} else {
		k->priv = PKCS11_get_private_key(priv);
		pk = pub ? PKCS11_get_public_key(pub) : NULL;
		if (!k->priv || set_public(k, pk ? pk : k->priv) < 0) {
			snprintf(err, errlen, "key '%s' in token '%s' is not an EC P-256/P-384/P-521 key pair with a public key",
				 a->object, slot->token->label);
			r = ATT_E_CRYPTO;
		}
		EVP_PKEY_free(pk);
	}
	pthread_mutex_unlock(&modules_lock);
	if (r == 0 && selftest(k) < 0) {
		snprintf(err, errlen, "key '%s' in token '%s' does not derive (ECDH in the token failed: CKA_DERIVE not set? pkcs11-tool --usage-derive)",
			 a->object, slot->token->label);
		r = ATT_E_CRYPTO;
	}
	return r;
}

int att_p11_wrapkey_open(const char *uri, const char *ca_uri, const char *default_module,
			 struct att_p11_wrapkey **ret, char *err, size_t errlen)
{
	struct att_p11_wrapkey *k;
	struct att_p11_uri a;
	int r;

	if (!uri || strncmp(uri, "pkcs11:", 7) != 0 || att_p11_uri_parse(uri, &a) < 0 || (!a.object[0] && !a.id_len)) {
		snprintf(err, errlen, "expected pkcs11:[token=<label>;]object=<label>[?pin-value=<pin>]");
		return ATT_E_INVAL;
	}
	r = merge_ca(&a, ca_uri, err, errlen);
	if (r == 0 && !a.module[0])
		snprintf(a.module, sizeof(a.module), "%s", default_module ? default_module : "");
	k = r == 0 ? calloc(1, sizeof(*k)) : NULL;
	if (r == 0 && !k)
		r = ATT_E_NOMEM;
	if (k) {
		pthread_mutex_init(&k->lock, NULL);
		r = open_in(&a, k, err, errlen);
		if (r < 0)
			att_p11_wrapkey_free(k);
		else
			*ret = k;
	}
	att_wipe(&a, sizeof(a));
	return r;
}
#else
int att_p11_slot(const struct att_p11_uri *a, void **ret_slot, char *err, size_t errlen)
{
	(void)a;
	(void)ret_slot;
	snprintf(err, errlen, "this attestd was built without PKCS#11 support (libp11)");
	return ATT_E_UNAVAILABLE;
}

int att_p11_wrapkey_open(const char *uri, const char *ca_uri, const char *default_module,
			 struct att_p11_wrapkey **ret, char *err, size_t errlen)
{
	(void)uri;
	(void)ca_uri;
	(void)default_module;
	(void)ret;
	snprintf(err, errlen, "this attestd was built without PKCS#11 support (libp11)");
	return ATT_E_UNAVAILABLE;
}
#endif
