/* deliver.c - the machine reads its secrets: after the caller verified a
 * quote over a fresh nonce against the machine's bound AK, one write
 * transaction re-checks the machine (attested, same AK), applies the
 * role's PCR policy, decrypts every unexpired secret, stamps the
 * delivery and audits it.  The caller seals the result to the TPM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "vault/vault.h"

#define LOGV "attestd.secrets"
#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

struct deliver_tx {
	const struct att_svc *svc;
	struct att_dbc *c;
	const char *machine_id;
	const struct att_quote_evidence *ev;
	const struct att_actor *actor;
	char *reterr;
	size_t errlen;
	bool commit;		/* a refusal that was audited is committed */
};

static int fail_db(struct deliver_tx *tx, int r)
{
	if (r == ATT_E_NOMEM) {
		snprintf(tx->reterr, tx->errlen, "out of memory");
		return r;
	}
	att_log_error(LOGV, "secret delivery to machine %s failed: %s (%s)", tx->machine_id, att_strerror(r),
		      att_dbc_errmsg(tx->c));
	snprintf(tx->reterr, tx->errlen, "Database unavailable — try again");
	return ATT_E_DB;
}

/* A refusal after the quote verified: audited (and committed). */
static int refuse(struct deliver_tx *tx, const struct att_machine *m, int code)
{
	int r = att_audit_append(tx->c, tx->actor->name, "secret_delivery_refused", tx->machine_id, M(m, STATUS),
				 M(m, STATUS), tx->reterr, tx->actor->source_ip);

	if (r < 0)
		return fail_db(tx, r);
	att_log_warning(LOGV, "Secret delivery to machine %s refused: %s", tx->machine_id, tx->reterr);
	tx->commit = true;
	return code;
}

/* Attested, the AK that signed is still the machine's, the PCR policy passes. */
static int deliver_check(struct deliver_tx *tx, const struct att_machine *m)
{
	struct att_stmt *s;
	json_t *pcrs = NULL;
	int r;

	if (strcmp(M(m, STATUS), "attested") != 0) {
		snprintf(tx->reterr, tx->errlen, "Machine %s is %s — secrets are delivered only to an attested machine",
			 tx->machine_id, M(m, STATUS));
		return refuse(tx, m, ATT_E_CONFLICT);
	}
	if (!M(m, AK_NAME) || strcmp(M(m, AK_NAME), tx->ev->ak_name) != 0) {
		snprintf(tx->reterr, tx->errlen, "The attestation key of machine %s changed during the request", tx->machine_id);
		return ATT_E_CONFLICT;
	}
	r = att_dbc_query(tx->c, &s, "SELECT policy FROM pcr_policies WHERE role = ?", "s", M(m, ROLE));
	if (r < 0)
		return fail_db(tx, r);
	if ((r = att_stmt_next(s)) == 1)
		pcrs = json_loads(att_stmt_text(s, 0), 0, NULL);
	att_stmt_done(s);
	if (r < 0)
		return fail_db(tx, r);
	if (r == 0)
		return 0;
	if (!pcrs)
		return fail_db(tx, ATT_E_NOMEM);
	r = att_pcr_policy_check(pcrs, M(m, ROLE), tx->ev->pcrs, tx->reterr, tx->errlen);
	json_decref(pcrs);
	return r == 0 ? 0 : refuse(tx, m, ATT_E_FORBIDDEN);
}

/* Decrypt one row into arr; the names go to names (for the audit). */
static int deliver_row(struct deliver_tx *tx, struct att_stmt *s, json_t *arr, struct att_buf *names)
{
	const char *name = att_stmt_text(s, 0), *kid = att_stmt_text(s, 4);
	int64_t version = att_stmt_int(s, 1);
	uint8_t *val = NULL;
	size_t len = 0;
	char *b64, exp[40];
	json_t *o;
	int r;

	if (!kid || strcmp(kid, att_vault_key_id(tx->svc->vault)) != 0) {
		att_log_error(LOGV, "secret '%s' of machine %s was sealed under master key %s, not the configured %s",
			      name, tx->machine_id, kid ? kid : "?", att_vault_key_id(tx->svc->vault));
		snprintf(tx->reterr, tx->errlen, "Secret vault key mismatch — see the service log");
		return ATT_E_UNAVAILABLE;
	}
	r = att_vault_unseal(tx->svc->vault, tx->machine_id, name, version, att_stmt_text(s, 2), att_stmt_text(s, 3),
			     &val, &len);
	if (r < 0) {
		att_log_error(LOGV, "secret '%s' of machine %s does not decrypt: %s", name, tx->machine_id, att_strerror(r));
		snprintf(tx->reterr, tx->errlen, "A stored secret does not decrypt — see the service log");
		return r == ATT_E_NOMEM ? r : ATT_E_UNAVAILABLE;
	}
	b64 = att_b64_encode(val, len);
	att_wipe(val, len);
	free(val);
	if (!b64)
		return ATT_E_NOMEM;
	o = json_pack("{s:s,s:I,s:s}", "name", name, "version", (json_int_t)version, "value_b64", b64);
	att_wipe(b64, strlen(b64));
	free(b64);
	if (!o)
		return ATT_E_NOMEM;
	if (att_stmt_is_null(s, 5)) {
		json_object_set_new(o, "expires_at", json_null());
	} else {
		att_time_iso_utc((struct att_time){ att_stmt_int(s, 5), 0 }, exp);
		json_object_set_new(o, "expires_at", json_string(exp));
	}
	json_array_append_new(arr, o);
	if (names->len)
		(void)att_buf_puts(names, ", ");
	(void)att_buf_puts(names, name);
	return 0;
}

/* Wipe every value_b64 of the delivery document. */
static void wipe_doc(json_t *arr)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o) {
		const char *v = json_string_value(json_object_get(o, "value_b64"));

		if (v)
			att_wipe((char *)v, strlen(v));
	}
}

static int deliver_rows(struct deliver_tx *tx, json_t *arr, struct att_buf *names)
{
	struct att_stmt *s;
	int64_t now = att_now().sec;
	int r;

	r = att_dbc_query(tx->c, &s,
			  "SELECT name, version, iv, ciphertext, key_id, expires_at FROM machine_secrets"
			  " WHERE machine_id = ? AND (expires_at IS NULL OR expires_at >= ?) ORDER BY name",
			  "si", tx->machine_id, now);
	if (r < 0)
		return fail_db(tx, r);
	while ((r = att_stmt_next(s)) == 1)
		if ((r = deliver_row(tx, s, arr, names)) < 0)
			break;
	att_stmt_done(s);
	if (r < 0)
		return r == ATT_E_DB ? fail_db(tx, r) : r;
	return 0;
}

static int deliver_run(struct deliver_tx *tx, json_t *arr)
{
	struct att_machine m = { 0 };
	struct att_buf names;
	char ts[32], *detail = NULL;
	int r;

	att_buf_init(&names, 64 * 1024);
	r = att_machine_get(tx->c, tx->machine_id, &m);
	if (r == ATT_E_NOTFOUND) {
		snprintf(tx->reterr, tx->errlen, "Machine not found");
		goto out;
	}
	if (r < 0) {
		r = fail_db(tx, r);
		goto out;
	}
	if ((r = deliver_check(tx, &m)) < 0 || (r = deliver_rows(tx, arr, &names)) < 0)
		goto out;
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(tx->c,
			 "UPDATE machine_secrets SET delivered_at = ?, delivered_version = version"
			 " WHERE machine_id = ? AND (expires_at IS NULL OR expires_at >= ?)",
			 "ssi", ts, tx->machine_id, att_now().sec);
	if (r >= 0) {
		detail = att_asprintf("%zu secret(s) delivered sealed to the TPM after a verified quote%s%s",
				      json_array_size(arr), names.len ? ": " : "", names.len ? names.p : "");
		r = detail ? att_audit_append(tx->c, tx->actor->name, "secrets_delivered", tx->machine_id, M(&m, STATUS),
					      M(&m, STATUS), detail, tx->actor->source_ip)
			   : ATT_E_NOMEM;
	}
	if (r < 0)
		r = fail_db(tx, r);
	else
		tx->commit = true;
out:
	free(detail);
	att_buf_release(&names);
	att_machine_release(&m);
	return r < 0 ? r : 0;
}

int att_vault_deliver(const struct att_svc *svc, const char *machine_id, const struct att_quote_evidence *ev,
		      const struct att_actor *actor, char **ret_plain, size_t *ret_len, int *ret_count,
		      char *reterr, size_t errlen)
{
	struct deliver_tx tx = { svc, NULL, machine_id, ev, actor, reterr, errlen, false };
	json_t *arr, *doc = NULL;
	char *plain = NULL;
	int r;

	if (!svc->vault)
		return ERR(ATT_E_UNAVAILABLE, "Secret vault not configured");
	arr = json_array();
	if (!arr)
		return ATT_E_NOMEM;
	tx.c = att_db_acquire(svc->db);
	if (!tx.c) {
		json_decref(arr);
		return ERR(ATT_E_DB, "Database unavailable — try again");
	}
	r = att_dbc_begin(tx.c);
	r = r < 0 ? fail_db(&tx, r) : deliver_run(&tx, arr);
	if (tx.commit && att_dbc_commit(tx.c) < 0)
		r = fail_db(&tx, ATT_E_DB);
	if (!tx.commit || r < 0)
		att_dbc_rollback(tx.c);
	att_db_release(svc->db, tx.c);
	if (r == 0) {
		doc = json_pack("{s:s,s:O}", "machine_id", machine_id, "secrets", arr);
		plain = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		r = plain ? 0 : ATT_E_NOMEM;
	}
	if (doc)
		wipe_doc(json_object_get(doc, "secrets"));
	*ret_count = (int)json_array_size(arr);
	wipe_doc(arr);
	json_decref(doc);
	json_decref(arr);
	if (r < 0)
		return r;
	att_log_info(LOGV, "%d secret(s) delivered to machine %s", *ret_count, machine_id);
	*ret_plain = plain;
	*ret_len = strlen(plain);
	return 0;
}
