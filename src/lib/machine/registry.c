/* registry.c - machine rows: loading, lookup by machine_id or EK, the
 * first insert, the MachineDetail JSON; and the plumbing every file of
 * the machine module shares (error details, the write-transaction frame). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

#define MACHINE_COLS ATT_MACHINE_COLS

void att_machine_release(struct att_machine *m)
{
	for (int i = 0; i < _MC_MAX; i++) {
		free(m->col[i]);
		m->col[i] = NULL;
	}
	m->id = 0;
}

void att_node_result_release(struct att_node_result *r)
{
	att_machine_release(&r->m);
	att_wipe(r->token, sizeof(r->token));
}

static int load_row(struct att_stmt *s, struct att_machine *ret)
{
	struct att_machine m;

	memset(&m, 0, sizeof(m));
	m.id = att_stmt_int(s, 0);
	m.wipe_pending = att_stmt_int(s, 1) != 0;
	for (int i = 0; i < _MC_MAX; i++) {
		const char *v = att_stmt_text(s, i + 2);

		if (v) {
			m.col[i] = att_strdup(v);
			if (!m.col[i]) {
				att_machine_release(&m);
				return ATT_E_NOMEM;
			}
		}
	}
	*ret = m;
	return 0;
}

/* Run a query expected to return at most one machine row. */
static int fetch_one(struct att_stmt *s, struct att_machine *ret)
{
	int r = att_stmt_next(s);

	if (r == 1)
		r = load_row(s, ret);
	else if (r == 0)
		r = ATT_E_NOTFOUND;
	att_stmt_done(s);
	return r;
}

int att_machine_get(struct att_dbc *c, const char *machine_id, struct att_machine *ret)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, "SELECT " MACHINE_COLS " FROM machines WHERE machine_id = ?",
			      "s", machine_id);

	return r < 0 ? r : fetch_one(s, ret);
}

int att_machine_find_by_ek(struct att_dbc *c, const struct att_ek *ek, struct att_machine *ret)
{
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s, "SELECT " MACHINE_COLS " FROM machines WHERE ek_fingerprint = ?", "s",
			  ek->fp);
	if (r < 0)
		return r;
	r = fetch_one(s, ret);
	if (r != ATT_E_NOTFOUND)
		return r;
	/* receipts imported without EK material carry only a client fingerprint */
	r = att_dbc_query(c, &s,
			  "SELECT " MACHINE_COLS " FROM machines WHERE ek_fingerprint IS NULL AND"
			  " (ek_fingerprint_legacy = ? OR ek_fingerprint_legacy = ? OR ek_fingerprint_agent = ?)"
			  " ORDER BY id LIMIT 1",
			  "sss", ek->fp, ek->fp_legacy, ek->fp_agent);
	if (r < 0)
		return r;
	return fetch_one(s, ret);
}

static const char *or_unknown(const char *s)
{
	return s && *s ? s : "unknown";
}

int att_machine_insert_row(struct att_dbc *c, const struct att_machine_row *row)
{
	char ts[32];
	int r;

	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "INSERT INTO machines (machine_id, ek_fingerprint, ek_fingerprint_legacy,"
			 " ek_fingerprint_agent, ek_source, ek_cert_b64, ek_key_type, ek_issuer, hw_uuid,"
			 " hw_mac, hw_serial, hw_product, role, status, cluster_id, registered_at, updated_at)"
			 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "sssssssssssssssss", row->machine_id, row->ek_fingerprint, row->ek_fingerprint_legacy,
			 row->ek_fingerprint_agent, row->ek_source, row->ek_cert_b64, row->ek_key_type,
			 row->ek_issuer, or_unknown(row->hw_uuid), or_unknown(row->hw_mac),
			 or_unknown(row->hw_serial), or_unknown(row->hw_product), row->role, row->status,
			 row->cluster_id ? row->cluster_id : "default", ts, ts);
	return r < 0 ? r : 0;
}

void att_machine_json_set_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, v ? json_string(v) : json_null());
}

json_t *att_machine_detail(const struct att_machine *m)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	att_machine_json_set_str(o, "machine_id", M(m, MACHINE_ID));
	att_machine_json_set_str(o, "ek_fingerprint",
		     M(m, EK_FINGERPRINT) ? M(m, EK_FINGERPRINT)
					  : (M(m, EK_FINGERPRINT_LEGACY) ? M(m, EK_FINGERPRINT_LEGACY)
									 : M(m, EK_FINGERPRINT_AGENT)));
	att_machine_json_set_str(o, "hw_uuid", M(m, HW_UUID));
	att_machine_json_set_str(o, "hw_mac", M(m, HW_MAC));
	att_machine_json_set_str(o, "hw_serial", M(m, HW_SERIAL));
	att_machine_json_set_str(o, "hw_product", M(m, HW_PRODUCT));
	att_machine_json_set_str(o, "role", M(m, ROLE));
	att_machine_json_set_str(o, "status", M(m, STATUS));
	att_machine_json_set_str(o, "hostname", M(m, HOSTNAME));
	att_machine_json_set_str(o, "assigned_ip", M(m, ASSIGNED_IP));
	att_machine_json_set_str(o, "registered_at", M(m, REGISTERED_AT));
	att_machine_json_set_str(o, "attested_at", M(m, ATTESTED_AT));
	att_machine_json_set_str(o, "locked_at", M(m, LOCKED_AT));
	att_machine_json_set_str(o, "revoked_at", M(m, REVOKED_AT));
	json_object_set_new(o, "wipe_pending", json_boolean(m->wipe_pending));
	/* additions to the reference's MachineDetail */
	att_machine_json_set_str(o, "cluster_id", M(m, CLUSTER_ID));
	att_machine_json_set_str(o, "ek_source", M(m, EK_SOURCE));
	att_machine_json_set_str(o, "ek_key_type", M(m, EK_KEY_TYPE));
	att_machine_json_set_str(o, "ek_issuer", M(m, EK_ISSUER));
	att_machine_json_set_str(o, "approved_at", M(m, APPROVED_AT));
	att_machine_json_set_str(o, "config_delivered_at", M(m, CONFIG_DELIVERED_AT));
	att_machine_json_set_str(o, "locked_from", M(m, LOCKED_FROM));
	json_object_set_new(o, "ak_bound", json_boolean(M(m, AK_NAME) != NULL));
	att_machine_json_set_str(o, "ak_name", M(m, AK_NAME));
	att_machine_json_set_str(o, "ak_bound_at", M(m, AK_BOUND_AT));
	json_object_set_new(o, "tpm_reset_count",
			    M(m, TPM_RESET_COUNT) ? json_integer(strtoll(M(m, TPM_RESET_COUNT), NULL, 10)) : json_null());
	json_object_set_new(o, "tpm_restart_count",
			    M(m, TPM_RESTART_COUNT) ? json_integer(strtoll(M(m, TPM_RESTART_COUNT), NULL, 10)) : json_null());
	att_machine_json_set_str(o, "last_quote_at", M(m, LAST_QUOTE_AT));
	json_object_set_new(o, "ek_verified", M(m, EK_VERIFIED) ? json_boolean(strcmp(M(m, EK_VERIFIED), "1") == 0)
							 : json_null());
	att_machine_json_set_str(o, "ek_chain_error", M(m, EK_CHAIN_ERROR));
	att_machine_json_set_str(o, "ek_manufacturer", M(m, EK_MANUFACTURER));
	att_machine_json_set_str(o, "ek_model", M(m, EK_MODEL));
	return o;
}

/* ---- errors and transactions ------------------------------------------- */

void att_machine_set_err(char *reterr, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reterr, errlen, fmt, ap);
	va_end(ap);
}

int att_machine_db_fail(int r, char *reterr, size_t errlen)
{
	if (r == ATT_E_NOMEM)
		att_machine_set_err(reterr, errlen, "out of memory");
	else
		att_machine_set_err(reterr, errlen, "%s", att_db_unavailable_detail());
	return r == ATT_E_NOMEM ? r : ATT_E_DB;
}

int att_machine_reload(struct att_dbc *c, struct att_machine *m)
{
	char mid[64];

	snprintf(mid, sizeof(mid), "%s", M(m, MACHINE_ID));
	att_machine_release(m);
	return att_machine_get(c, mid, m);
}

int att_machine_tx_begin(const struct att_svc *svc, struct att_dbc **ret_c, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = att_dbc_begin(c);
	if (r < 0) {
		att_dbc_rollback(c);
		att_db_release(svc->db, c);
		return att_machine_db_fail(r, reterr, errlen);
	}
	*ret_c = c;
	return 0;
}

int att_machine_tx_end(const struct att_svc *svc, struct att_dbc *c, int r, char *reterr, size_t errlen)
{
	if (r == 0) {
		r = att_dbc_commit(c);
		if (r < 0)
			r = att_machine_db_fail(r, reterr, errlen);
	}
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(svc->db, c);
	return r;
}
