/* certs.c - machine certificates: CSR enrollment (the write path after
 * the route has verified the quote), the issued-certificate records,
 * their revocation (one certificate, every certificate of a machine on
 * revoke, a hold while the machine is locked) and the per-CA CRL kept in
 * the database so that every replica serves the same one. */
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

static const char *const reasons[] = {
	"unspecified", "keyCompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "privilegeWithdrawn",
};

bool att_cert_reason_valid(const char *reason)
{
	for (size_t i = 0; i < ATT_ARRAY_SIZE(reasons); i++)
		if (strcmp(reason, reasons[i]) == 0)
			return true;
	return false;
}

/* ---- the certificate content ---------------------------------------------- */

struct cert_urls {
	char *spiffe, *crl, *ocsp;
};

static void cert_urls_release(struct cert_urls *u)
{
	free(u->spiffe);
	free(u->crl);
	free(u->ocsp);
}

static int cert_profile(const struct att_svc *svc, const struct att_machine *m, bool tpm_resident,
			struct att_ca_profile *p, struct cert_urls *u)
{
	const char *fp = M(m, EK_FINGERPRINT) ? M(m, EK_FINGERPRINT) : M(m, EK_FINGERPRINT_LEGACY);

	memset(u, 0, sizeof(*u));
	if (fp && svc->cfg->spiffe_trust_domain[0])
		u->spiffe = att_asprintf("spiffe://%s/nodes/%.16s", svc->cfg->spiffe_trust_domain, fp);
	u->crl = att_asprintf("%s/api/v1/ca/crl", svc->cfg->service_url);
	u->ocsp = att_asprintf("%s/api/v1/ca/ocsp", svc->cfg->service_url);
	if (!u->crl || !u->ocsp || (fp && svc->cfg->spiffe_trust_domain[0] && !u->spiffe)) {
		cert_urls_release(u);
		return ATT_E_NOMEM;
	}
	*p = (struct att_ca_profile){
		.machine_id = M(m, MACHINE_ID), .role = M(m, ROLE), .ek_fp = fp, .spiffe_id = u->spiffe,
		.crl_url = u->crl, .ocsp_url = u->ocsp, .tpm_resident = tpm_resident,
		.seconds = att_config_cert_seconds(svc->cfg, M(m, ROLE)),
	};
	return 0;
}

int att_cert_issue_for(const struct att_svc *svc, struct att_dbc *c, const struct att_machine *m,
		       EVP_PKEY *key, const char *kind, const struct att_actor *actor, struct att_ca_leaf *ret)
{
	struct att_ca_profile p;
	struct cert_urls u;
	char ts[32];
	int r;

	if (!svc->ca)
		return ATT_E_UNAVAILABLE;
	r = cert_profile(svc, m, strcmp(kind, "tpm") == 0, &p, &u);
	if (r < 0)
		return r;
	r = key ? att_ca_issue_key(svc->ca, key, &p, ret) : att_ca_issue(svc->ca, &p, ret);
	cert_urls_release(&u);
	if (r < 0)
		return r;
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "INSERT INTO issued_certs (serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint,"
			 " issued_at, issued_by, not_after, not_after_epoch, pem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "ssssssssssis", ret->serial, M(m, MACHINE_ID), M(m, ROLE), ret->ca_serial, kind, ret->key_type,
			 p.ek_fp, ts, actor->name, ret->not_after, ret->not_after_epoch, ret->cert_pem);
	if (r >= 0)
		r = att_machine_outbox(c, "node.cert_issued", m, M(m, STATUS),
				       json_pack("{s:s,s:s,s:s,s:s,s:s}", "serial", ret->serial, "kind", kind,
						 "key_type", ret->key_type, "not_after", ret->not_after, "ca_serial",
						 ret->ca_serial));
	if (r < 0)
		att_ca_leaf_release(ret);
	return r < 0 ? r : 0;
}

void att_cert_log_issued(const struct att_ca_leaf *l, const char *machine_id, const char *role, int64_t seconds)
{
	char days[32];

	if (seconds % 86400 == 0)
		snprintf(days, sizeof(days), "%lld", (long long)(seconds / 86400));
	else
		snprintf(days, sizeof(days), "%.2f", (double)seconds / 86400.0);
	att_log_info("attestd.pki", "Enrollment cert issued: machine_id=%s role=%s serial=%s valid_days=%s", machine_id,
		     role ? role : "", l->serial, days);
}

/* ---- enrollment ------------------------------------------------------------- */

struct enroll_arg {
	const struct att_cert_enroll *e;
	struct att_ca_leaf *leaf;
};

static int do_enroll(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m, const void *arg,
		     const struct att_actor *actor, char *reterr, size_t errlen)
{
	const struct enroll_arg *a = arg;
	const struct att_cert_enroll *e = a->e;
	const char *st = M(m, STATUS);
	char *detail;
	int r;

	att_ca_leaf_release(a->leaf);	/* a retried transaction starts over */
	if (strcmp(st, "locked") == 0 || strcmp(st, "revoked") == 0 || strcmp(st, "rejected") == 0) {
		att_machine_set_err(reterr, errlen, "Machine %s status=%s — cert issuance denied", M(m, MACHINE_ID), st);
		return ATT_E_FORBIDDEN;
	}
	if (strcmp(st, "attested") != 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is %s — only an attested machine can enroll",
				    M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	if (!M(m, AK_NAME) || strcmp(M(m, AK_NAME), e->ak_name) != 0) {
		att_machine_set_err(reterr, errlen, "Machine %s: the attestation key changed during the request",
				    M(m, MACHINE_ID));
		return ATT_E_CONFLICT;
	}
	if (!e->tpm_resident && att_strlist_contains(&svc->cfg->require_tpm_key_roles, M(m, ROLE))) {
		att_machine_set_err(reterr, errlen,
				    "tpm_key_public: role %s requires a TPM-resident key (ITL_REQUIRE_TPM_KEY_ROLES) — send tpm_key_public, certify_info and certify_signature",
				    M(m, ROLE));
		return ATT_E_INVAL;
	}
	r = att_cert_issue_for(svc, c, m, e->key, e->kind, actor, a->leaf);
	if (r < 0) {
		att_machine_set_err(reterr, errlen, "Cannot issue the enrollment certificate");
		return r;
	}
	detail = att_asprintf("enrollment certificate issued (%s); serial=%s key=%s%s; valid until %s", e->kind,
			      a->leaf->serial, a->leaf->key_type, e->tpm_resident ? " (TPM-resident, certified by the AK)" : "",
			      a->leaf->not_after);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "cert_issued", M(m, MACHINE_ID), st, st, detail, actor->source_ip);
	free(detail);
	return r;
}

int att_machine_enroll(const struct att_svc *svc, const char *machine_id, const struct att_cert_enroll *e,
		       const struct att_actor *actor, struct att_ca_leaf *ret, struct att_machine *ret_m,
		       char *reterr, size_t errlen)
{
	struct enroll_arg a = { e, ret };
	int r;

	memset(ret, 0, sizeof(*ret));
	r = att_machine_transition_run(svc, machine_id, do_enroll, &a, actor, ret_m, reterr, errlen);
	if (r < 0) {
		att_ca_leaf_release(ret);
		return r;
	}
	att_cert_log_issued(ret, M(ret_m, MACHINE_ID), M(ret_m, ROLE), att_config_cert_seconds(svc->cfg, M(ret_m, ROLE)));
	return 0;
}

/* ---- revocation -------------------------------------------------------------- */

/* Queue node.cert_revoked for every certificate the UPDATE is about to
 * touch, then mark the CRLs of their CAs stale. */
static int announce_revocations(struct att_dbc *c, const struct att_machine *m, const char *where_sql,
				const char *arg, const char *reason)
{
	struct att_stmt *s;
	char sql[256];
	json_t *serials = json_array();
	size_t i;
	json_t *v;
	int r;

	if (!serials)
		return ATT_E_NOMEM;
	snprintf(sql, sizeof(sql), "SELECT serial, ca_serial FROM issued_certs WHERE %s", where_sql);
	r = att_dbc_query(c, &s, sql, "s", arg);
	if (r < 0) {
		json_decref(serials);
		return r;
	}
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(serials, json_pack("[s,s]", att_stmt_text(s, 0), att_stmt_text(s, 1)));
	att_stmt_done(s);
	json_array_foreach(serials, i, v) {
		const char *serial = json_string_value(json_array_get(v, 0));

		if (r >= 0)
			r = att_dbc_exec(c, "UPDATE ca_crls SET stale = 1 WHERE ca_serial = ?", "s",
					 json_string_value(json_array_get(v, 1)));
		if (r >= 0 && m)
			r = att_machine_outbox(c, "node.cert_revoked", m, M(m, STATUS),
					       json_pack("{s:s,s:s}", "serial", serial, "reason", reason));
	}
	json_decref(serials);
	return r < 0 ? r : 0;
}

int att_cert_revoke_machine(struct att_dbc *c, const struct att_machine *m, const char *reason,
			    const char *detail)
{
	const char *id = M(m, MACHINE_ID);
	char ts[32];
	int64_t now = att_now().sec;
	int r;

	att_time_iso(att_now(), ts);
	r = announce_revocations(c, m,
				 "machine_id = ? AND (revoked_at IS NULL OR revocation_reason = 'certificateHold')", id,
				 reason);
	if (r == 0)
		r = att_dbc_exec(c,
				 "UPDATE issued_certs SET revoked_at = ?, revoked_epoch = ?, revocation_reason = ?,"
				 " revocation_detail = ? WHERE machine_id = ?"
				 " AND (revoked_at IS NULL OR revocation_reason = 'certificateHold')",
				 "sisss", ts, now, reason, detail, id);
	return r < 0 ? r : 0;
}

int att_cert_release_hold(struct att_dbc *c, const struct att_machine *m)
{
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT DISTINCT ca_serial FROM issued_certs WHERE machine_id = ? AND revocation_reason = 'certificateHold'",
			  "s", M(m, MACHINE_ID));
	if (r < 0)
		return r;
	{
		json_t *cas = json_array();
		size_t i;
		json_t *v;

		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(cas, json_string(att_stmt_text(s, 0)));
		att_stmt_done(s);
		json_array_foreach(cas, i, v)
			if (r >= 0)
				r = att_dbc_exec(c, "UPDATE ca_crls SET stale = 1 WHERE ca_serial = ?", "s",
						 json_string_value(v));
		json_decref(cas);
	}
	if (r >= 0)
		r = att_dbc_exec(c,
				 "UPDATE issued_certs SET revoked_at = NULL, revoked_epoch = NULL, revocation_reason = NULL,"
				 " revocation_detail = NULL WHERE machine_id = ? AND revocation_reason = 'certificateHold'",
				 "s", M(m, MACHINE_ID));
	if (r > 0)
		r = att_machine_outbox(c, "node.cert_reinstated", m, M(m, STATUS), json_pack("{s:i}", "count", r));
	return r < 0 ? r : 0;
}

/* ---- offline self-enrollment (POST /machines/enroll) ---------------------------- */

struct cert_attest_arg {
	const char *ek_fp, *serial;
	char *token;	/* 64 */
};

static int do_cert_attest(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m, const void *arg,
			  const struct att_actor *actor, char *reterr, size_t errlen)
{
	const struct cert_attest_arg *a = arg;
	const char *st = M(m, STATUS), *fp = M(m, EK_FINGERPRINT);
	char ts[32], *detail;
	int r;

	if (strcmp(st, "locked") == 0 || strcmp(st, "revoked") == 0 || strcmp(st, "rejected") == 0) {
		att_machine_set_err(reterr, errlen, "Machine %s status=%s — enrollment denied", M(m, MACHINE_ID), st);
		return ATT_E_FORBIDDEN;
	}
	if (!fp || strcmp(fp, a->ek_fp) != 0) {
		att_machine_set_err(reterr, errlen, "Enrollment cert EK fingerprint does not match registered machine hardware identity");
		return ATT_E_FORBIDDEN;
	}
	if (strcmp(st, "registered") != 0 && strcmp(st, "attested") != 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is %s — it needs an operator's approval first", M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	att_time_iso(att_now(), ts);
	if (strcmp(st, "registered") == 0) {
		r = att_dbc_exec(c, "UPDATE machines SET status = 'attested', attested_at = ?, updated_at = ?,"
				    " config_delivered_at = NULL WHERE id = ?", "ssi", ts, ts, m->id);
		if (r >= 0)
			r = att_machine_outbox(c, "node.online", m, "attested", json_pack("{s:s}", "attested_at", ts));
		if (r < 0)
			return r;
	}
	r = att_machine_token_issue(svc, c, M(m, MACHINE_ID), "attested", a->token);
	if (r < 0)
		return r;
	detail = att_asprintf("offline self-enrollment with enrollment certificate serial=%s (signature over a server nonce); config token issued",
			      a->serial);
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "enroll", M(m, MACHINE_ID), st, "attested", detail, actor->source_ip);
	free(detail);
	return r;
}

int att_machine_cert_attest(const struct att_svc *svc, const char *machine_id, const char *ek_fp, const char *serial,
			    const struct att_actor *actor, struct att_machine *ret, char token[64], char *reterr,
			    size_t errlen)
{
	struct cert_attest_arg a = { ek_fp, serial, token };

	return att_machine_transition_run(svc, machine_id, do_cert_attest, &a, actor, ret, reterr, errlen);
}
