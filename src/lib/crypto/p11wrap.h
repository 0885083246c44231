/* p11wrap.h - wrapping keys held by a PKCS#11 token (p11wrap.c) and the
 * RFC 7512 URI parser shared with the CA's token key (cahsm.c).
 *
 * A wrapping key is an EC key pair (P-256, P-384 or P-521) whose private
 * key may derive (CKA_DERIVE).  Wrapping needs only the public key:
 * ECDH with a fresh ephemeral key, HKDF-SHA384, AES-256-GCM.  Unwrapping
 * derives the shared secret inside the token (C_DeriveKey,
 * CKM_ECDH1_DERIVE); the private key never leaves it.  The blob format
 * is described in docs/extensions.md ("Wrapping keys"). */
#ifndef ATT_CRYPTO_P11WRAP_H
#define ATT_CRYPTO_P11WRAP_H

#include <stddef.h>
#include <stdint.h>

struct att_p11_uri {
	char token[128], object[128], pin[256], module[1024], pin_file[1024];
	unsigned char id[64];
	size_t id_len;
};

/* Parse "pkcs11:token=..;object=..;id=..?pin-value=..&pin-source=file:..&module-path=.."
 * (pin-source is read into pin).  -1: malformed percent-encoding. */
int att_p11_uri_parse(const char *uri, struct att_p11_uri *a);

/* The token slot (a PKCS11_SLOT *) a parsed URI names (a->module set;
 * no token=: the first initialized token), logged in with its PIN.
 * Every user in the process shares one libp11 context per module, never
 * unloaded, and one login per token: a later URI naming the token with
 * another PIN fails.  ATT_E_UNAVAILABLE (module, login), ATT_E_NOTFOUND
 * (token); err names the module or token, never the PIN. */
int att_p11_slot(const struct att_p11_uri *a, void **ret_slot, char *err, size_t errlen);

/* Largest size a blob adds to what it wraps. */
#define ATT_P11_WRAP_OVERHEAD 192

struct att_p11_wrapkey;

/* Open the key uri names.  A URI without token= is looked up in the
 * token of ca_uri (the Enrollment CA key, when it is a pkcs11: URI),
 * with its PIN and module.  ATT_E_INVAL: malformed, or no token to look
 * in; ATT_E_NOTFOUND: no such token or key; ATT_E_UNAVAILABLE: module
 * or login failed; ATT_E_CRYPTO: not an EC key.  err never holds the PIN. */
int att_p11_wrapkey_open(const char *uri, const char *ca_uri, const char *default_module,
			 struct att_p11_wrapkey **ret, char *err, size_t errlen);
/* label binds the blob to its purpose (domain separation).  out holds
 * at least n + ATT_P11_WRAP_OVERHEAD (wrap) or n (unwrap) bytes.
 * unwrap: ATT_E_INVAL when the blob is not this key's for this label
 * (or was altered), ATT_E_UNAVAILABLE when the token failed. */
int att_p11_wrapkey_wrap(struct att_p11_wrapkey *k, const char *label, const uint8_t *in, size_t n,
			 uint8_t *out, size_t cap, size_t *ret_len);
int att_p11_wrapkey_unwrap(struct att_p11_wrapkey *k, const char *label, const uint8_t *in, size_t n,
			   uint8_t *out, size_t cap, size_t *ret_len);
/* A wrapping key from a software EC private key (tests and fuzzing):
 * takes a reference to priv.  ATT_E_CRYPTO: not a P-256/384/521 key. */
struct evp_pkey_st;
int att_p11_wrapkey_soft(struct evp_pkey_st *priv, struct att_p11_wrapkey **ret);
/* 16 hex digits: SHA-256 of the public key's point, truncated. */
const char *att_p11_wrapkey_id(const struct att_p11_wrapkey *k);
void att_p11_wrapkey_free(struct att_p11_wrapkey *k);

#endif
