/* store.c - the secret vault's rows (table machine_secrets, migration
 * 11): writes by operators and extensions, metadata for operators, and
 * the delivery to the machine.  Every write and every delivery is one
 * write transaction that also appends the audit entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "tpm/tpm.h"
#include "vault/vault.h"

#define LOGV "attestd.secrets"
#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

#define META_COLS \
	"name, version, size, description, created_at, created_by, updated_at, updated_by, expires_at," \
	" delivered_at, delivered_version, key_id"

static int db_fail(struct att_dbc *c, int r, char *reterr, size_t errlen)
{
	if (r == ATT_E_NOMEM)
		return ERR(r, "out of memory");
	att_log_error(LOGV, "secret vault database error: %s (%s)", att_strerror(r), c ? att_dbc_errmsg(c) : "-");
	return ERR(ATT_E_DB, "Database unavailable — try again");
}

static int no_vault(char *reterr, size_t errlen)
{
	return ERR(ATT_E_UNAVAILABLE,
		   "Secret vault not configured — set ITL_SHARED_SECRET_MASTER_KEY (or ITL_SHARED_SECRET_PASSPHRASE)");
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* The metadata of the current row of s (selected with META_COLS). */
static json_t *meta_json(const char *machine_id, struct att_stmt *s, int64_t now)
{
	json_t *o = json_object();
	char exp[40];

	if (!o)
		return NULL;
	json_object_set_new(o, "machine_id", json_string(machine_id));
	json_object_set_new(o, "name", json_string(att_stmt_text(s, 0)));
	json_object_set_new(o, "version", json_integer(att_stmt_int(s, 1)));
	json_object_set_new(o, "size", json_integer(att_stmt_int(s, 2)));
	json_object_set_new(o, "description", str_or_null(att_stmt_text(s, 3)));
	json_object_set_new(o, "created_at", str_or_null(att_stmt_text(s, 4)));
	json_object_set_new(o, "created_by", str_or_null(att_stmt_text(s, 5)));
	json_object_set_new(o, "updated_at", str_or_null(att_stmt_text(s, 6)));
	json_object_set_new(o, "updated_by", str_or_null(att_stmt_text(s, 7)));
	if (att_stmt_is_null(s, 8)) {
		json_object_set_new(o, "expires_at", json_null());
		json_object_set_new(o, "expired", json_false());
	} else {
		att_time_iso_utc((struct att_time){ att_stmt_int(s, 8), 0 }, exp);
		json_object_set_new(o, "expires_at", json_string(exp));
		json_object_set_new(o, "expired", json_boolean(att_stmt_int(s, 8) < now));
	}
	json_object_set_new(o, "delivered_at", str_or_null(att_stmt_text(s, 9)));
	json_object_set_new(o, "delivered_version",
			    att_stmt_is_null(s, 10) ? json_null() : json_integer(att_stmt_int(s, 10)));
	json_object_set_new(o, "key_id", str_or_null(att_stmt_text(s, 11)));
	return o;
}

/* One secret's metadata (ATT_E_NOTFOUND when absent). */
static int meta_get(struct att_dbc *c, const char *machine_id, const char *name, json_t **ret)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, "SELECT " META_COLS " FROM machine_secrets WHERE machine_id = ? AND name = ?", "ss",
			      machine_id, name);

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		*ret = meta_json(machine_id, s, att_now().sec);
		r = *ret ? 0 : ATT_E_NOMEM;
	} else if (r == 0) {
		r = ATT_E_NOTFOUND;
	}
	att_stmt_done(s);
	return r;
}

/* The machine must exist; writes also need it not revoked. */
static int machine_check(struct att_dbc *c, const char *machine_id, bool for_write, char *reterr, size_t errlen)
{
	struct att_machine m = { 0 };
	int r = att_machine_get(c, machine_id, &m);

	if (r == ATT_E_NOTFOUND)
		return ERR(r, "Machine not found");
	if (r < 0)
		return db_fail(c, r, reterr, errlen);
	if (for_write && strcmp(M(&m, STATUS), "revoked") == 0)
		r = ERR(ATT_E_CONFLICT, "Machine %s is revoked — its secrets can no longer be written", machine_id);
	att_machine_release(&m);
	return r;
}

/* ---- writes ------------------------------------------------------------------ */

struct put_tx {
	const struct att_svc *svc;
	struct att_dbc *c;
	const char *machine_id;
	const struct att_secret_input *in;
	const struct att_actor *actor;
	char *reterr;
	size_t errlen;
};

/* Current version of the name (0: none), how many secrets the machine
 * holds, and their total size without this name's. */
static int put_lookup(struct put_tx *tx, int64_t *ret_version, int64_t *ret_count, int64_t *ret_others)
{
	struct att_stmt *s;
	int r = att_dbc_query(tx->c, &s,
			      "SELECT COALESCE(MAX(CASE WHEN name = ? THEN version END), 0), COUNT(*),"
			      " COALESCE(SUM(CASE WHEN name = ? THEN 0 ELSE size END), 0)"
			      " FROM machine_secrets WHERE machine_id = ?",
			      "sss", tx->in->name, tx->in->name, tx->machine_id);

	if (r < 0)
		return r;
	if ((r = att_stmt_next(s)) == 1) {
		*ret_version = att_stmt_int(s, 0);
		*ret_count = att_stmt_int(s, 1);
		*ret_others = att_stmt_int(s, 2);
		r = 0;
	} else if (r == 0) {
		r = ATT_E_DB;
	}
	att_stmt_done(s);
	return r;
}

static int put_row(struct put_tx *tx, int64_t version, const char *iv, const char *ct)
{
	const struct att_secret_input *in = tx->in;
	int64_t expires = in->ttl_seconds > 0 ? att_now().sec + in->ttl_seconds : 0;
	const char *kid = att_vault_key_id(tx->svc->vault);
	char ts[32];

	att_time_iso(att_now(), ts);
	if (version == 1)
		return att_dbc_exec(tx->c,
				    "INSERT INTO machine_secrets (machine_id, name, version, key_id, iv, ciphertext, size,"
				    " description, created_at, created_by, updated_at, updated_by, expires_at)"
				    " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, CAST(0 AS BIGINT)))",
				    "sssssisssssi", tx->machine_id, in->name, kid, iv, ct, (int64_t)in->len,
				    in->description, ts, tx->actor->name, ts, tx->actor->name, expires);
	return att_dbc_exec(tx->c,
			    "UPDATE machine_secrets SET version = ?, key_id = ?, iv = ?, ciphertext = ?, size = ?,"
			    " description = COALESCE(?, description), updated_at = ?, updated_by = ?,"
			    " expires_at = NULLIF(?, CAST(0 AS BIGINT)) WHERE machine_id = ? AND name = ?",
			    "isssisssiss", version, kid, iv, ct, (int64_t)in->len, in->description, ts,
			    tx->actor->name, expires, tx->machine_id, in->name);
}

static int put_run(struct put_tx *tx, json_t **ret, bool *ret_created)
{
	const struct att_secret_input *in = tx->in;
	char *iv = NULL, *ct = NULL, *detail = NULL;
	int64_t version = 0, count = 0, others = 0;
	int r;

	r = machine_check(tx->c, tx->machine_id, true, tx->reterr, tx->errlen);
	if (r < 0)
		return r;
	if ((r = put_lookup(tx, &version, &count, &others)) < 0)
		return db_fail(tx->c, r, tx->reterr, tx->errlen);
	if (version && in->create_only) {
		snprintf(tx->reterr, tx->errlen, "Secret '%s' already exists for machine %s — PUT .../secrets/%s replaces it",
			 in->name, tx->machine_id, in->name);
		return ATT_E_CONFLICT;
	}
	if (!version && count >= tx->svc->cfg->secrets_per_machine) {
		snprintf(tx->reterr, tx->errlen, "name: machine %s already holds %lld secrets (ITL_SECRETS_PER_MACHINE)",
			 tx->machine_id, (long long)count);
		return ATT_E_INVAL;
	}
	if (others + (int64_t)in->len > ATT_VAULT_MACHINE_MAX_BYTES) {
		snprintf(tx->reterr, tx->errlen, "value: the machine's secrets would total %lld bytes (at most %d: one delivery)",
			 (long long)(others + (int64_t)in->len), ATT_VAULT_MACHINE_MAX_BYTES);
		return ATT_E_INVAL;
	}
	version++;
	r = att_vault_seal(tx->svc->vault, tx->machine_id, in->name, version, in->value, in->len, &iv, &ct);
	if (r == 0)
		r = put_row(tx, version, iv, ct);
	if (r >= 0) {
		detail = att_asprintf("secret '%s' %s (version %lld, %zu bytes)%s%s", in->name,
				      version == 1 ? "created" : "replaced", (long long)version, in->len,
				      in->reason ? ": " : "", in->reason ? in->reason : "");
		r = detail ? att_audit_append(tx->c, tx->actor->name, "secret_put", tx->machine_id, NULL, NULL, detail,
					      tx->actor->source_ip)
			   : ATT_E_NOMEM;
	}
	if (r >= 0)
		r = meta_get(tx->c, tx->machine_id, in->name, ret);
	free(iv);
	free(ct);
	free(detail);
	if (r < 0)
		return db_fail(tx->c, r, tx->reterr, tx->errlen);
	*ret_created = version == 1;
	return 0;
}

/* Run fn-like bodies in one write transaction on a pooled connection. */
static int tx_begin(const struct att_svc *svc, struct att_dbc **ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c)
		return db_fail(NULL, ATT_E_DB, reterr, errlen);
	if ((r = att_dbc_begin(c)) < 0) {
		r = db_fail(c, r, reterr, errlen);
		att_db_release(svc->db, c);
		return r;
	}
	*ret = c;
	return 0;
}

/* Commit when r == 0 (or keep_commit), else roll back; release. */
static int tx_end(const struct att_svc *svc, struct att_dbc *c, int r, bool commit, char *reterr, size_t errlen)
{
	if (commit) {
		int rc = att_dbc_commit(c);

		if (rc < 0) {
			att_dbc_rollback(c);
			r = db_fail(c, rc, reterr, errlen);
		}
	} else {
		att_dbc_rollback(c);
	}
	att_db_release(svc->db, c);
	return r;
}

int att_vault_put(const struct att_svc *svc, const char *machine_id, const struct att_secret_input *in,
		  const struct att_actor *actor, json_t **ret, bool *ret_created, char *reterr, size_t errlen)
{
	struct put_tx tx = { svc, NULL, machine_id, in, actor, reterr, errlen };
	json_t *meta = NULL;
	bool created = false;
	int r;

	if (!svc->vault)
		return no_vault(reterr, errlen);
	if (!att_vault_name_ok(in->name))
		return ERR(ATT_E_INVAL, "name: 1-%d characters of [A-Za-z0-9._-], starting with a letter or digit",
			   ATT_VAULT_NAME_MAX);
	if (!in->value)
		return ERR(ATT_E_INVAL, "value: required (value or value_b64)");
	if (in->len > (size_t)svc->cfg->secret_max_bytes)
		return ERR(ATT_E_INVAL, "value: %zu bytes exceed ITL_SECRET_MAX_BYTES (%lld)", in->len,
			   (long long)svc->cfg->secret_max_bytes);
	if (in->description && strlen(in->description) > ATT_VAULT_DESCRIPTION_MAX)
		return ERR(ATT_E_INVAL, "description: at most %d characters", ATT_VAULT_DESCRIPTION_MAX);
	if (in->ttl_seconds < 0 || in->ttl_seconds > 366LL * 86400)
		return ERR(ATT_E_INVAL, "ttl_seconds: between 1 and 31622400 (or 0/absent: no expiry)");
	if ((r = tx_begin(svc, &tx.c, reterr, errlen)) < 0)
		return r;
	r = put_run(&tx, &meta, &created);
	r = tx_end(svc, tx.c, r, r == 0, reterr, errlen);
	if (r < 0) {
		json_decref(meta);
		return r;
	}
	att_log_info(LOGV, "Secret '%s' of machine %s %s by %s", in->name, machine_id, created ? "created" : "replaced",
		     actor->name);
	*ret = meta;
	*ret_created = created;
	return 0;
}

int att_vault_delete(const struct att_svc *svc, const char *machine_id, const char *name, const char *reason,
		     const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char *detail = NULL;
	int r;

	if (!svc->vault)
		return no_vault(reterr, errlen);
	if (!att_vault_name_ok(name))
		return ERR(ATT_E_NOTFOUND, "Secret not found");
	if ((r = tx_begin(svc, &c, reterr, errlen)) < 0)
		return r;
	r = machine_check(c, machine_id, false, reterr, errlen);
	if (r == 0) {
		r = att_dbc_exec(c, "DELETE FROM machine_secrets WHERE machine_id = ? AND name = ?", "ss", machine_id, name);
		if (r == 0)
			r = ERR(ATT_E_NOTFOUND, "Secret not found");
		else if (r > 0) {
			detail = att_asprintf("secret '%s' deleted%s%s", name, reason ? ": " : "", reason ? reason : "");
			r = detail ? att_audit_append(c, actor->name, "secret_delete", machine_id, NULL, NULL, detail,
						      actor->source_ip)
				   : ATT_E_NOMEM;
			if (r < 0)
				r = db_fail(c, r, reterr, errlen);
		} else {
			r = db_fail(c, r, reterr, errlen);
		}
	}
	free(detail);
	return tx_end(svc, c, r, r == 0, reterr, errlen);
}

/* ---- reads (metadata only) --------------------------------------------------- */

int att_vault_list(const struct att_svc *svc, const char *machine_id, json_t **ret, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *arr = json_array();
	int64_t now = att_now().sec;
	int r;

	if (!arr)
		return ATT_E_NOMEM;
	c = att_db_acquire(svc->db);
	if (!c) {
		json_decref(arr);
		return db_fail(NULL, ATT_E_DB, reterr, errlen);
	}
	r = machine_check(c, machine_id, false, reterr, errlen);
	if (r == 0)
		r = att_dbc_query(c, &s, "SELECT " META_COLS " FROM machine_secrets WHERE machine_id = ? ORDER BY name", "s",
				  machine_id);
	if (r == 0) {
		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(arr, meta_json(machine_id, s, now));
		att_stmt_done(s);
		if (r < 0)
			r = db_fail(c, r, reterr, errlen);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return r;
	}
	*ret = json_pack("{s:s,s:I,s:o}", "machine_id", machine_id, "total", (json_int_t)json_array_size(arr),
			 "secrets", arr);
	return *ret ? 0 : ATT_E_NOMEM;
}

int att_vault_get(const struct att_svc *svc, const char *machine_id, const char *name, json_t **ret,
		  char *reterr, size_t errlen)
{
	struct att_dbc *c;
	int r;

	if (!att_vault_name_ok(name))
		return ERR(ATT_E_NOTFOUND, "Secret not found");
	c = att_db_acquire(svc->db);
	if (!c)
		return db_fail(NULL, ATT_E_DB, reterr, errlen);
	r = machine_check(c, machine_id, false, reterr, errlen);
	if (r == 0) {
		r = meta_get(c, machine_id, name, ret);
		if (r == ATT_E_NOTFOUND)
			r = ERR(r, "Secret not found");
		else if (r < 0)
			r = db_fail(c, r, reterr, errlen);
	}
	att_db_release(svc->db, c);
	return r;
}
