/* secrets.c - the service secrets manager the CLI uses on an http
 * backend (pulumi.md §6): encrypt, decrypt and their batch forms.  Each
 * stack has its own random AES-256-GCM key, stored only wrapped by the
 * master key (ITL_PULUMI_MASTER_KEY: a file or an HSM key, keys.c); a ciphertext is bound to its
 * stack's id, so another stack cannot decrypt it.  Every decryption is
 * audited (who, which stack, how many values). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pulumi.h"

#define NONCE 12
#define TAG 16
#define FORMAT 0x01		/* first byte of every ciphertext: this format */
#define MAX_BATCH 10000

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

/* out = nonce || ciphertext || tag */
int pl_gcm_seal(const uint8_t key[32], const char *aad, const uint8_t *pt, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l, ok;

	if (!c || RAND_bytes(out, NONCE) != 1) {
		EVP_CIPHER_CTX_free(c);
		return -1;
	}
	ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
	     EVP_EncryptUpdate(c, NULL, &l, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
	     (n == 0 || EVP_EncryptUpdate(c, out + NONCE, &l, pt, (int)n) == 1) &&
	     EVP_EncryptFinal_ex(c, out + NONCE + n, &l) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, out + NONCE + n) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int pl_gcm_open(const uint8_t key[32], const char *aad, const uint8_t *in, size_t n, uint8_t *pt)
{
	EVP_CIPHER_CTX *c;
	int l, ok;

	if (n < NONCE + TAG)
		return -1;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return -1;
	n -= NONCE + TAG;
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &l, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
	     (n == 0 || EVP_DecryptUpdate(c, pt, &l, in + NONCE, (int)n) == 1) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(uintptr_t)(in + NONCE + n)) == 1 &&
	     EVP_DecryptFinal_ex(c, pt + n, &l) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

/* ---- the stack key ------------------------------------------------------------------------ */

struct keyctx {
	uint8_t key[32];
	char aad[80];		/* binds ciphertexts to the stack */
};

static int stack_key(struct pl_req *r, struct att_ext_db *db, struct pl_stack *s, bool create, struct keyctx *k)
{
	char why[300], *w;
	bool stale;
	int rc;

	snprintf(k->aad, sizeof(k->aad), "pulumi_state/secret/%s", s->id);
	if (s->key) {
		rc = pl_key_unwrap(s->key, s->id, k->key, &stale, why, sizeof(why));
		if (rc < 0) {
			pl_error(r, rc == ATT_EXT_UNAVAILABLE ? 503 : 500, "%s: %s",
				 rc == ATT_EXT_UNAVAILABLE ? "Service Unavailable" : "Internal Server Error", why);
			return ATT_EXT_PERMANENT;
		}
		if (!stale)
			return 0;
		/* unwrapped by ITL_PULUMI_PREVIOUS_MASTER_KEY: rewrap with the current one */
		if (!(w = pl_key_wrap(k->key, s->id)))
			return ATT_EXT_ERROR;
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET secrets_key = ? WHERE id = ?", "ss",
				      w, s->id);
		free(w);
		if (rc >= 0)
			rc = pl_audit(r, db, "pulumi.secrets.rewrap", "the stack's key was rewrapped with the master key %s",
				      pl_cfg.master.desc);
		return rc < 0 ? rc : 0;
	}
	if (!create) {
		pl_error(r, 400, "Bad Request: stack '%s/%s/%s' has no secrets: this ciphertext is not its own", r->org,
			 r->project, r->stack);
		return ATT_EXT_PERMANENT;
	}
	if (RAND_bytes(k->key, sizeof(k->key)) != 1 || !(w = pl_key_wrap(k->key, s->id))) {
		pl_error(r, 503, "Service Unavailable: the stack's new key could not be wrapped with the master key %s",
			 pl_cfg.master.desc);
		return ATT_EXT_PERMANENT;
	}
	rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET secrets_key = ? WHERE id = ? AND secrets_key IS NULL",
			      "ss", w, s->id);
	free(w);
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.secrets.key", "a secrets key was created for the stack (master key %s)",
			      pl_cfg.master.desc);
	return rc < 0 ? rc : 0;
}

/* ---- one value ----------------------------------------------------------------------------- */

static json_t *seal_b64(const struct keyctx *k, const json_t *pt_b64)
{
	uint8_t *pt = NULL, *ct;
	size_t n = 0;
	json_t *out = NULL;
	char *s;

	if (!json_is_string(pt_b64) ||
	    pl_b64_decode(json_string_value(pt_b64), json_string_length(pt_b64), &pt, &n) < 0)
		return NULL;
	ct = malloc(1 + NONCE + n + TAG);
	if (ct) {
		ct[0] = FORMAT;
		if (pl_gcm_seal(k->key, k->aad, pt, n, ct + 1) == 0 && (s = pl_b64_encode(ct, 1 + NONCE + n + TAG))) {
			out = json_string(s);
			free(s);
		}
		free(ct);
	}
	OPENSSL_cleanse(pt, n);
	free(pt);
	return out;
}

/* NULL: not a ciphertext of this stack */
static json_t *open_b64(const struct keyctx *k, const json_t *ct_b64)
{
	uint8_t *ct = NULL, *pt;
	size_t n = 0;
	json_t *out = NULL;
	char *s;

	if (!json_is_string(ct_b64) ||
	    pl_b64_decode(json_string_value(ct_b64), json_string_length(ct_b64), &ct, &n) < 0)
		return NULL;
	if (n >= 1 + NONCE + TAG && ct[0] == FORMAT && (pt = malloc(n))) {
		if (pl_gcm_open(k->key, k->aad, ct + 1, n - 1, pt) == 0 && (s = pl_b64_encode(pt, n - 1 - NONCE - TAG))) {
			out = json_string(s);
			OPENSSL_cleanse(s, strlen(s));
			free(s);
		}
		OPENSSL_cleanse(pt, n);
		free(pt);
	}
	free(ct);
	return out;
}

/* ---- the routes ----------------------------------------------------------------------------- */

enum op { ENCRYPT, DECRYPT, BATCH_ENCRYPT, BATCH_DECRYPT };

static int run_op(struct pl_req *r, enum op op, const json_t *j, const struct keyctx *k, json_t **ret, size_t *ret_n)
{
	const char *field = op == ENCRYPT ? "plaintext" : op == DECRYPT ? "ciphertext" : op == BATCH_ENCRYPT ? "plaintexts" : "ciphertexts";
	const json_t *in = json_object_get(j, field), *v;
	json_t *out;
	size_t i;

	if (op <= DECRYPT) {
		out = op == ENCRYPT ? seal_b64(k, in) : open_b64(k, in);
		if (out)
			*ret = json_pack("{s:o}", op == ENCRYPT ? "ciphertext" : "plaintext", out);
		*ret_n = 1;
	} else {
		if (!json_is_array(in) || json_array_size(in) > MAX_BATCH) {
			pl_error(r, 400, "Bad Request: %s must be an array of at most %d base64 strings", field, MAX_BATCH);
			return ATT_EXT_PERMANENT;
		}
		out = op == BATCH_ENCRYPT ? json_array() : json_object();
		json_array_foreach(in, i, v) {
			json_t *x = op == BATCH_ENCRYPT ? seal_b64(k, v) : open_b64(k, v);

			if (!x) {
				json_decref(out);
				out = NULL;
				break;
			}
			/* keyed by the exact strings received (the CLI looks them up) */
			if (op == BATCH_ENCRYPT)
				json_array_append_new(out, x);
			else
				json_object_setn_new(out, json_string_value(v), json_string_length(v), x);
		}
		if (out)
			*ret = json_pack("{s:o}", op == BATCH_ENCRYPT ? "ciphertexts" : "plaintexts", out);
		*ret_n = json_array_size(in);
	}
	if (!*ret) {
		pl_error(r, 400, "Bad Request: %s: %s", field,
			 op == ENCRYPT || op == BATCH_ENCRYPT ? "expected standard base64"
							     : "not a ciphertext of this stack (or not base64)");
		return ATT_EXT_PERMANENT;
	}
	return 0;
}

static void secrets(struct pl_req *r, enum op op)
{
	json_t *j, *reply = NULL;
	struct att_ext_db *db;
	struct pl_stack s;
	struct keyctx k;
	size_t n = 0;
	int rc;

	if (!pl_cfg.master.set) {
		pl_error(r, 503, "Service Unavailable: %s", pl_cfg.why_no_master);
		return;
	}
	if (!(j = pl_body_json(r)))
		return;
	db = pl_host->db_acquire(r->ext);
	if (!db) {
		json_decref(j);
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	if (pl_stack_begin(r, db, &s) < 0)
		goto out;
	rc = stack_key(r, db, &s, op == ENCRYPT || op == BATCH_ENCRYPT, &k);
	if (rc >= 0)
		rc = run_op(r, op, j, &k, &reply, &n);
	if (rc >= 0 && (op == DECRYPT || op == BATCH_DECRYPT))
		rc = pl_audit(r, db, "pulumi.decrypt", "%zu secret value(s) decrypted", n);
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	OPENSSL_cleanse(&k, sizeof(k));
	pl_stack_free(&s);
	if (rc < 0) {
		pl_host->db_rollback(db);
		json_decref(reply);
		if (rc != ATT_EXT_PERMANENT)
			pl_db_error(r, rc);
	} else {
		pl_reply_json(r, 200, reply);
	}
out:
	pl_host->db_release(r->ext, db);
	json_decref(j);
}

void pl_h_encrypt(struct pl_req *r)
{
	secrets(r, ENCRYPT);
}

void pl_h_decrypt(struct pl_req *r)
{
	secrets(r, DECRYPT);
}

void pl_h_batch_encrypt(struct pl_req *r)
{
	secrets(r, BATCH_ENCRYPT);
}

void pl_h_batch_decrypt(struct pl_req *r)
{
	secrets(r, BATCH_DECRYPT);
}

/* `--show-secrets` tells the service it showed them: audited, body ignored. */
void pl_h_log_decryption(struct pl_req *r)
{
	struct att_ext_db *db = pl_host->db_acquire(r->ext);
	int rc;

	if (!db) {
		pl_db_error(r, ATT_EXT_UNAVAILABLE);
		return;
	}
	rc = pl_host->db_begin(db);
	if (rc >= 0)
		rc = pl_audit(r, db, "pulumi.decrypt.shown", "the CLI displayed decrypted secrets");
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0) {
		pl_host->db_rollback(db);
		pl_db_error(r, rc);
	} else {
		pl_reply_raw(r, 200, "{}", 2);
	}
	pl_host->db_release(r->ext, db);
}
