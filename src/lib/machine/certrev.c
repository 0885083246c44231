/* certrev.c - issued certificates as the API shows them (list, one),
 * revoking one certificate (operator, or the machine itself), the CRL of
 * each CA generation cached in ca_crls, and OCSP status lookups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

#define CERT_COLS "serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint, issued_at, issued_by," \
		  " not_after, revoked_at, revocation_reason, revocation_detail, agent_session, pem"

static json_t *cert_row(struct att_stmt *s, bool with_pem)
{
	static const char *const names[] = { "serial", "machine_id", "role", "ca_serial", "kind", "key_type",
					     "ek_fingerprint", "issued_at", "issued_by", "not_after", "revoked_at",
					     "revocation_reason", "revocation_detail", "agent_session", "certificate_pem" };
	json_t *o = json_object();

	for (int i = 0; i < (int)ATT_ARRAY_SIZE(names); i++) {
		if (i == 14 && !with_pem)
			break;
		att_machine_json_set_str(o, names[i], att_stmt_text(s, i));
	}
	json_object_set_new(o, "status", json_string(att_stmt_is_null(s, 10) ? "valid"
						     : strcmp(att_stmt_text(s, 11), "certificateHold") == 0 ? "on_hold"
						     : "revoked"));
	return o;
}

/* Certificates WHERE col = val (col: machine_id or agent_session). */
static int cert_list_where(const struct att_svc *svc, const char *col, const char *val, json_t **ret, char *reterr,
			   size_t errlen)
{
	char sql[256];
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	json_t *arr = json_array();
	int r;

	if (!c || !arr) {
		json_decref(arr);
		if (c)
			att_db_release(svc->db, c);
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	}
	snprintf(sql, sizeof(sql), "SELECT " CERT_COLS " FROM issued_certs WHERE %s = ? ORDER BY issued_at DESC, serial",
		 col);
	r = att_dbc_query(c, &s, sql, "s", val);
	if (r >= 0) {
		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(arr, cert_row(s, false));
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		return att_machine_db_fail(r, reterr, errlen);
	}
	*ret = arr;
	return 0;
}

int att_cert_list(const struct att_svc *svc, const char *machine_id, json_t **ret, char *reterr, size_t errlen)
{
	return cert_list_where(svc, "machine_id", machine_id, ret, reterr, errlen);
}

int att_cert_list_agent(const struct att_svc *svc, const char *session_id, json_t **ret, char *reterr,
			size_t errlen)
{
	return cert_list_where(svc, "agent_session", session_id, ret, reterr, errlen);
}

static int cert_load(struct att_dbc *c, const char *serial, json_t **ret)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, "SELECT " CERT_COLS " FROM issued_certs WHERE serial = ?", "s", serial);

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1)
		*ret = cert_row(s, true);
	att_stmt_done(s);
	return r < 0 ? r : r == 1 ? 0 : ATT_E_NOTFOUND;
}

int att_cert_get(const struct att_svc *svc, const char *serial, json_t **ret, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = cert_load(c, serial, ret);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND)
		att_machine_set_err(reterr, errlen, "Certificate %s not found", serial);
	else if (r < 0)
		r = att_machine_db_fail(r, reterr, errlen);
	return r;
}

/* ---- revoking one certificate ------------------------------------------------ */

struct revoke_one {
	const char *serial, *reason, *detail, *only_machine;
	json_t *cert;
};

static int do_revoke_one(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m, const void *arg,
			 const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct revoke_one *a = (struct revoke_one *)arg;
	const char *st;
	char ts[32], *detail;
	int r;

	(void)svc;
	json_decref(a->cert);
	a->cert = NULL;
	r = cert_load(c, a->serial, &a->cert);
	if (r == ATT_E_NOTFOUND || (r == 0 && strcmp(json_string_value(json_object_get(a->cert, "machine_id")),
						      M(m, MACHINE_ID)) != 0)) {
		att_machine_set_err(reterr, errlen, "Certificate %s not found", a->serial);
		return ATT_E_INVAL;	/* mapped to 404 by the caller */
	}
	if (r < 0)
		return r;
	st = json_string_value(json_object_get(a->cert, "status"));
	if (strcmp(st, "revoked") == 0) {
		att_machine_set_err(reterr, errlen, "Certificate %s is already revoked", a->serial);
		return ATT_E_CONFLICT;
	}
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "UPDATE issued_certs SET revoked_at = ?, revoked_epoch = ?, revocation_reason = ?,"
			 " revocation_detail = ? WHERE serial = ?",
			 "sisss", ts, att_now().sec, a->reason, a->detail, a->serial);
	if (r >= 0)
		r = att_dbc_exec(c, "UPDATE ca_crls SET stale = 1 WHERE ca_serial = ?", "s",
				 json_string_value(json_object_get(a->cert, "ca_serial")));
	if (r >= 0)
		r = att_machine_outbox(c, "node.cert_revoked", m, M(m, STATUS),
				       json_pack("{s:s,s:s,s:s?}", "serial", a->serial, "reason", a->reason, "detail",
						 a->detail));
	if (r < 0)
		return r;
	detail = att_asprintf("certificate serial=%s revoked; reason=%s%s%s%s", a->serial, a->reason,
			      a->detail ? "; detail='" : "", a->detail ? a->detail : "", a->detail ? "'" : "");
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "cert_revoked", M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS), detail,
			     actor->source_ip);
	free(detail);
	return r;
}

int att_cert_revoke(const struct att_svc *svc, const char *machine_id, const char *serial, const char *reason,
		    const char *detail, const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen)
{
	struct revoke_one a = { serial, reason, detail, machine_id, NULL };
	struct att_machine m = { 0 };
	int r;

	r = att_machine_transition_run(svc, machine_id, do_revoke_one, &a, actor, &m, reterr, errlen);
	if (r == ATT_E_INVAL)
		r = ATT_E_NOTFOUND;
	json_decref(a.cert);
	if (r < 0)
		return r;
	att_machine_release(&m);
	att_log_info("attestd.pki", "Enrollment cert revoked: machine_id=%s serial=%s reason=%s by=%s", machine_id, serial,
		     reason, actor->name);
	return att_cert_get(svc, serial, ret, reterr, errlen);
}

/* The machine a certificate belongs to (for routes addressed by serial). */
int att_cert_owner(const struct att_svc *svc, const char *serial, char ret_machine_id[80], char *reterr,
		   size_t errlen)
{
	json_t *o = NULL;
	int r = att_cert_get(svc, serial, &o, reterr, errlen);

	if (r < 0)
		return r;
	/* "" for an agent's certificate (no machine) */
	snprintf(ret_machine_id, 80, "%s", json_is_string(json_object_get(o, "machine_id"))
		 ? json_string_value(json_object_get(o, "machine_id")) : "");
	json_decref(o);
	return 0;
}

/* ---- CRL --------------------------------------------------------------------- */

static int crl_build(const struct att_svc *svc, struct att_dbc *c, const char *ca_serial, int64_t number,
		     uint8_t **der, size_t *len)
{
	struct att_stmt *s;
	struct att_crl_entry *e = NULL;
	json_t *rows = json_array();
	int64_t now = att_now().sec;
	size_t n = 0, i;
	json_t *v;
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT serial, revoked_epoch, revocation_reason FROM issued_certs WHERE ca_serial = ?"
			  " AND revoked_epoch IS NOT NULL AND not_after_epoch > ? ORDER BY serial",
			  "si", ca_serial, now);
	if (r < 0) {
		json_decref(rows);
		return r;
	}
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(rows, json_pack("[s,I,s]", att_stmt_text(s, 0), (json_int_t)att_stmt_int(s, 1),
						      att_stmt_text(s, 2)));
	att_stmt_done(s);
	n = json_array_size(rows);
	e = calloc(n ? n : 1, sizeof(*e));
	if (r < 0 || !e) {
		json_decref(rows);
		free(e);
		return r < 0 ? r : ATT_E_NOMEM;
	}
	json_array_foreach(rows, i, v)
		e[i] = (struct att_crl_entry){ json_string_value(json_array_get(v, 0)),
					       json_integer_value(json_array_get(v, 1)),
					       json_string_value(json_array_get(v, 2)) };
	r = att_ca_crl_sign(svc->ca, ca_serial, number, now, now + svc->cfg->crl_validity_hours * 3600, e, n, der, len);
	free(e);
	json_decref(rows);
	return r;
}

/* Regenerate under the write lock unless another replica just did. */
static int crl_refresh(const struct att_svc *svc, const char *ca_serial, uint8_t **der, size_t *len)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	int64_t number = 0, now = att_now().sec, half = svc->cfg->crl_validity_hours * 1800;
	bool exists = false;
	char *b64 = NULL;
	int r;

	if (!c)
		return ATT_E_DB;
	r = att_dbc_begin(c);
	if (r >= 0)
		r = att_dbc_query(c, &s, "SELECT crl_number, next_update, stale, der_b64 FROM ca_crls WHERE ca_serial = ?",
				  "s", ca_serial);
	if (r >= 0) {
		r = att_stmt_next(s);
		if (r == 1) {
			exists = true;
			number = att_stmt_int(s, 0);
			if (att_stmt_int(s, 2) == 0 && att_stmt_int(s, 1) - half > now && att_stmt_text(s, 3))
				b64 = att_strdup(att_stmt_text(s, 3));
		}
		att_stmt_done(s);
	}
	if (r >= 0 && b64) {
		att_dbc_rollback(c);
		att_db_release(svc->db, c);
		r = att_b64_decode(b64, strlen(b64), der, len);
		free(b64);
		return r;
	}
	if (r >= 0)
		r = crl_build(svc, c, ca_serial, number + 1, der, len);
	if (r >= 0) {
		b64 = att_b64_encode(*der, *len);
		r = !b64 ? ATT_E_NOMEM
		    : exists ? att_dbc_exec(c, "UPDATE ca_crls SET crl_number = ?, this_update = ?, next_update = ?, stale = 0,"
					       " der_b64 = ? WHERE ca_serial = ?", "iiiss", number + 1, now,
					    now + svc->cfg->crl_validity_hours * 3600, b64, ca_serial)
			     : att_dbc_exec(c, "INSERT INTO ca_crls (crl_number, this_update, next_update, stale, der_b64, ca_serial)"
					       " VALUES (?, ?, ?, 0, ?, ?)", "iiiss", number + 1, now,
					    now + svc->cfg->crl_validity_hours * 3600, b64, ca_serial);
		free(b64);
	}
	if (r >= 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	att_db_release(svc->db, c);
	if (r < 0 && *der) {
		free(*der);
		*der = NULL;
	}
	return r < 0 ? r : 0;
}

int att_cert_crl(const struct att_svc *svc, const char *ca_serial, uint8_t **ret, size_t *ret_len, char *reterr,
		 size_t errlen)
{
	int r;

	*ret = NULL;
	if (!svc->ca)
		return ATT_E_UNAVAILABLE;
	r = crl_refresh(svc, ca_serial ? ca_serial : att_ca_serial(svc->ca), ret, ret_len);
	if (r == ATT_E_NOTFOUND)
		att_machine_set_err(reterr, errlen, "No CA with serial %s", ca_serial ? ca_serial : "");
	else if (r < 0 && r != ATT_E_NOMEM) {
		att_log_error("attestd.pki", "cannot produce the CRL: %s", att_strerror(r));
		r = att_machine_db_fail(r, reterr, errlen);
	}
	return r;
}

/* ---- OCSP -------------------------------------------------------------------- */

int att_cert_ocsp_lookup(void *ud, const char *ca_serial, const char *serial, struct att_ocsp_answer *ret)
{
	const struct att_svc *svc = ud;
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	int r;

	if (!c)
		return ATT_E_DB;
	ret->status = ATT_OCSP_UNKNOWN;
	r = att_dbc_query(c, &s,
			  "SELECT revoked_epoch, revocation_reason FROM issued_certs WHERE serial = ? AND ca_serial = ?", "ss",
			  serial, ca_serial);
	if (r >= 0) {
		r = att_stmt_next(s);
		if (r == 1 && att_stmt_is_null(s, 0)) {
			ret->status = ATT_OCSP_GOOD;
		} else if (r == 1) {
			ret->status = ATT_OCSP_REVOKED;
			ret->revoked_at = att_stmt_int(s, 0);
			snprintf(ret->reason, sizeof(ret->reason), "%s", att_stmt_text(s, 1));
		}
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	return r < 0 ? r : 0;
}
