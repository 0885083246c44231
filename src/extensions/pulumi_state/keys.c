/* keys.c - the master keys that wrap every stack's secrets key
 * (docs/pulumi-backend.md "Secrets").
 *
 * ITL_PULUMI_MASTER_KEY is a file (32 raw bytes or 64 hex digits) or a
 * pkcs11: URI of an EC key pair in an HSM, used through the host's
 * wrapkey_* calls (the private key never leaves the token).  Unset while
 * the Enrollment CA key is in a token: the key 'attestation-pulumi-wrap'
 * of that token, when it exists.  ITL_PULUMI_PREVIOUS_MASTER_KEY (same
 * forms) still unwraps; what it unwraps is rewrapped with the current
 * key at start-up and on use.
 *
 * A stored stack key is one of
 *   <base64>                  a file key: nonce || AES-256-GCM(key) || tag,
 *                             additional data "pulumi_state/stack-key/<stack id>"
 *   hsm1:<key id>:<base64>    an HSM key: the host's wrapped blob, context
 *                             "stack-key/<stack id>" */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pulumi.h"

#define HSM_PREFIX "hsm1:"
#define DEFAULT_OBJECT "attestation-pulumi-wrap"
#define FILE_WRAPPED (12 + 32 + 16)

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* A file of 32 raw bytes or 64 hex digits. */
static int load_file(const char *var, const char *path, struct pl_master *m, char *err, size_t errlen)
{
	uint8_t buf[130];
	size_t n;
	FILE *f = fopen(path, "rb");
	int ok = 1;

	if (!f) {
		snprintf(err, errlen, "%s: cannot open %.200s", var, path);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 32)
		memcpy(m->file, buf, 32);
	for (size_t i = 0; n == 64 && i < 32; i++) {
		int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);

		ok &= hi >= 0 && lo >= 0;
		m->file[i] = (uint8_t)(hi << 4 | lo);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!ok || (n != 32 && n != 64)) {
		OPENSSL_cleanse(m->file, sizeof(m->file));
		snprintf(err, errlen, "%s: %.200s must hold 32 bytes or 64 hex digits", var, path);
		return -1;
	}
	m->set = true;
	snprintf(m->desc, sizeof(m->desc), "file");
	return 0;
}

static int open_hsm(struct att_ext *ext, const char *var, const char *uri, struct pl_master *m, char *err,
		    size_t errlen)
{
	char why[300];
	int rc;

	if (!ATT_EXT_HOST_HAS(pl_host, wrapkey_close)) {
		snprintf(err, errlen, "%s: this attestd offers no HSM wrapping keys", var);
		return ATT_EXT_INVALID;
	}
	rc = pl_host->wrapkey_open(ext, uri, &m->hsm, why, sizeof(why));
	if (rc != ATT_EXT_OK) {
		snprintf(err, errlen, "%s: %s", var, why);
		return rc;
	}
	m->set = true;
	snprintf(m->desc, sizeof(m->desc), "HSM key %s", pl_host->wrapkey_id(m->hsm));
	return 0;
}

static int load_one(struct att_ext *ext, const char *var, struct pl_master *m, char *err, size_t errlen)
{
	const char *v = getenv(var);

	memset(m, 0, sizeof(*m));
	if (!v || !*v)
		return 0;
	if (!strncmp(v, "pkcs11:", 7))
		return open_hsm(ext, var, v, m, err, errlen) == 0 ? 0 : -1;
	return load_file(var, v, m, err, errlen);
}

int pl_keys_configure(struct att_ext *ext, char *err, size_t errlen)
{
	char why[300];
	int rc;

	pl_cfg.why_no_master[0] = '\0';
	if (load_one(ext, "ITL_PULUMI_MASTER_KEY", &pl_cfg.master, err, errlen) < 0 ||
	    load_one(ext, "ITL_PULUMI_PREVIOUS_MASTER_KEY", &pl_cfg.previous, err, errlen) < 0)
		return -1;
	if (!pl_cfg.master.set && ATT_EXT_HOST_HAS(pl_host, wrapkey_close)) {
		/* the CA's token, if it is in one and holds the wrapping key */
		rc = open_hsm(ext, "ITL_PULUMI_MASTER_KEY", "pkcs11:object=" DEFAULT_OBJECT, &pl_cfg.master, why,
			      sizeof(why));
		if (rc == ATT_EXT_NOTFOUND)
			snprintf(pl_cfg.why_no_master, sizeof(pl_cfg.why_no_master),
				 "no ITL_PULUMI_MASTER_KEY is configured and the Enrollment CA's token holds no key '"
				 DEFAULT_OBJECT "' (docs/pulumi-backend.md: pkcs11-tool --keypairgen)");
		else if (rc != ATT_EXT_OK && rc != ATT_EXT_INVALID)
			snprintf(pl_cfg.why_no_master, sizeof(pl_cfg.why_no_master),
				 "no ITL_PULUMI_MASTER_KEY is configured and the CA token's key '" DEFAULT_OBJECT
				 "' cannot be used: %s", why);
	}
	if (!pl_cfg.master.set && pl_cfg.previous.set) {
		snprintf(err, errlen, "ITL_PULUMI_PREVIOUS_MASTER_KEY is set but there is no ITL_PULUMI_MASTER_KEY to rewrap with");
		return -1;
	}
	if (!pl_cfg.why_no_master[0])
		snprintf(pl_cfg.why_no_master, sizeof(pl_cfg.why_no_master),
			 "no ITL_PULUMI_MASTER_KEY is configured for stack secrets");
	return 0;
}

static void close_one(struct pl_master *m)
{
	if (m->hsm)
		pl_host->wrapkey_close(m->hsm);
	OPENSSL_cleanse(m, sizeof(*m));
}

void pl_keys_close(void)
{
	close_one(&pl_cfg.master);
	close_one(&pl_cfg.previous);
}

/* ---- wrapping and unwrapping one stack key ---------------------------------------- */

char *pl_key_wrap(const uint8_t key[32], const char *stack_id)
{
	uint8_t blob[32 + ATT_EXT_WRAP_OVERHEAD];
	char ctx[80], *b64, *out;
	size_t n = 0;

	if (!pl_cfg.master.hsm) {
		snprintf(ctx, sizeof(ctx), "pulumi_state/stack-key/%s", stack_id);
		return pl_gcm_seal(pl_cfg.master.file, ctx, key, 32, blob) == 0 ? pl_b64_encode(blob, FILE_WRAPPED)
										: NULL;
	}
	snprintf(ctx, sizeof(ctx), "stack-key/%s", stack_id);
	if (pl_host->wrapkey_wrap(pl_cfg.master.hsm, ctx, key, 32, blob, sizeof(blob), &n) != ATT_EXT_OK ||
	    !(b64 = pl_b64_encode(blob, n)))
		return NULL;
	out = malloc(strlen(HSM_PREFIX) + 17 + strlen(b64) + 1);
	if (out)
		sprintf(out, HSM_PREFIX "%s:%s", pl_host->wrapkey_id(pl_cfg.master.hsm), b64);
	free(b64);
	return out;
}

static int unwrap_with(const struct pl_master *m, const char *stored, const char *stack_id, uint8_t key[32])
{
	uint8_t *w = NULL;
	size_t wn = 0, n = 0;
	char ctx[80];
	const char *p;
	int rc = ATT_EXT_INVALID;

	if (!m->set)
		return ATT_EXT_INVALID;
	if (strncmp(stored, HSM_PREFIX, strlen(HSM_PREFIX)) != 0) {
		if (m->hsm)
			return ATT_EXT_INVALID;
		snprintf(ctx, sizeof(ctx), "pulumi_state/stack-key/%s", stack_id);
		if (pl_b64_decode(stored, strlen(stored), &w, &wn) == 0 && wn == FILE_WRAPPED &&
		    pl_gcm_open(m->file, ctx, w, wn, key) == 0)
			rc = 0;
		free(w);
		return rc;
	}
	p = stored + strlen(HSM_PREFIX);
	if (!m->hsm || strncmp(p, pl_host->wrapkey_id(m->hsm), 16) != 0 || p[16] != ':')
		return ATT_EXT_INVALID;
	p += 17;
	snprintf(ctx, sizeof(ctx), "stack-key/%s", stack_id);
	if (pl_b64_decode(p, strlen(p), &w, &wn) == 0) {
		rc = pl_host->wrapkey_unwrap(m->hsm, ctx, w, wn, key, 32, &n);
		if (rc == ATT_EXT_OK && n != 32)
			rc = ATT_EXT_INVALID;
	}
	free(w);
	return rc == ATT_EXT_OK ? 0 : rc;
}

/* Does the hsm1: form name this (HSM) master key? */
static bool names(const struct pl_master *m, const char *stored)
{
	return m->hsm && !strncmp(stored + strlen(HSM_PREFIX), pl_host->wrapkey_id(m->hsm), 16);
}

int pl_key_unwrap(const char *stored, const char *stack_id, uint8_t key[32], bool *stale, char *why, size_t whylen)
{
	int rc = unwrap_with(&pl_cfg.master, stored, stack_id, key), rc2;

	*stale = false;
	if (rc == 0)
		return 0;
	rc2 = unwrap_with(&pl_cfg.previous, stored, stack_id, key);
	if (rc2 == 0) {
		*stale = true;
		return 0;
	}
	if (rc == ATT_EXT_UNAVAILABLE || rc2 == ATT_EXT_UNAVAILABLE) {
		snprintf(why, whylen, "the HSM holding the master key did not answer (token removed or logged out?)");
		return ATT_EXT_UNAVAILABLE;
	}
	if (!strncmp(stored, HSM_PREFIX, strlen(HSM_PREFIX)) && (names(&pl_cfg.master, stored) || names(&pl_cfg.previous, stored)))
		snprintf(why, whylen, "the stack's key does not unwrap with HSM key %.16s (altered, or another stack's)",
			 stored + strlen(HSM_PREFIX));
	else if (!strncmp(stored, HSM_PREFIX, strlen(HSM_PREFIX)))
		snprintf(why, whylen, "the stack's key is wrapped by HSM key %.16s, which neither ITL_PULUMI_MASTER_KEY (%s) nor ITL_PULUMI_PREVIOUS_MASTER_KEY is",
			 stored + strlen(HSM_PREFIX), pl_cfg.master.desc);
	else
		snprintf(why, whylen, "the stack's key is wrapped by a master key file that does not unwrap it (ITL_PULUMI_MASTER_KEY: %s)",
			 pl_cfg.master.desc);
	return ATT_EXT_INVALID;
}

/* ---- rewrapping at start-up --------------------------------------------------------- */

/* One stack key: rewrapped with the current master key when only the
 * previous one unwraps it.  1 rewrapped, 0 left, -1 not unwrappable, or
 * a host error. */
static int rewrap_one(struct att_ext *ext, struct att_ext_db *db, const char *id, const char *stored)
{
	uint8_t key[32];
	char why[300], *w = NULL;
	bool stale;
	int rc;

	if (pl_key_unwrap(stored, id, key, &stale, why, sizeof(why)) < 0) {
		pl_host->log(ext, ATT_EXT_LOG_WARNING, "stack %s: %s", id, why);
		return -1;
	}
	w = stale ? pl_key_wrap(key, id) : NULL;
	OPENSSL_cleanse(key, sizeof(key));
	if (!stale)
		return 0;
	if (!w)
		return ATT_EXT_ERROR;
	rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET secrets_key = ? WHERE id = ? AND secrets_key = ?",
			      "sss", w, id, stored);
	free(w);
	return rc < 0 ? rc : 1;
}

/* Stack keys the previous master key unwraps are rewrapped with the
 * current one, in one transaction; keys neither unwraps stay as they are
 * (logged).  Returns the number rewrapped or < 0. */
int pl_keys_rewrap_all(struct att_ext *ext)
{
	struct att_ext_db *db;
	struct att_ext_rows *rows = NULL;
	json_t *all = json_array(), *v;
	int rc, done = 0, bad = 0;
	size_t i;
	char detail[120];

	if (!pl_cfg.previous.set || !all || !(db = pl_host->db_acquire(ext))) {
		json_decref(all);
		return pl_cfg.previous.set ? ATT_EXT_UNAVAILABLE : 0;
	}
	rc = pl_host->db_begin(db);
	if (rc >= 0)
		rc = pl_host->db_query(db, &rows,
				       "SELECT id, secrets_key FROM extension_pulumi_state_stacks WHERE secrets_key IS NOT NULL", "");
	while (rc >= 0 && (rc = pl_host->rows_next(rows)) == 1)
		json_array_append_new(all, json_pack("[ss]", pl_host->rows_text(rows, 0), pl_host->rows_text(rows, 1)));
	if (rows)
		pl_host->rows_done(rows);
	json_array_foreach(all, i, v) {
		int one;

		if (rc < 0)
			break;
		one = rewrap_one(ext, db, json_string_value(json_array_get(v, 0)), json_string_value(json_array_get(v, 1)));
		if (one < -1)
			rc = one;
		done += one == 1;
		bad += one == -1;
	}
	json_decref(all);
	snprintf(detail, sizeof(detail), "%d stack key(s) rewrapped with the master key %s", done, pl_cfg.master.desc);
	if (rc >= 0 && done)
		rc = pl_host->audit(db, "SYSTEM", "pulumi.secrets.rewrap", NULL, detail, NULL);
	if (rc >= 0)
		rc = pl_host->db_commit(db);
	if (rc < 0)
		pl_host->db_rollback(db);
	pl_host->db_release(ext, db);
	if (rc >= 0)
		pl_host->log(ext, bad ? ATT_EXT_LOG_WARNING : ATT_EXT_LOG_INFO, "%s; %d not unwrappable by either key",
			     detail, bad);
	return rc < 0 ? rc : done;
}
