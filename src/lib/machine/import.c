/* import.c - POST /machines/import: a machine installed offline comes
 * back as a receipt (fingerprint, optional EK material, hardware, role)
 * and is recorded as registered.  A receipt without EK material carries
 * only a client fingerprint; its EK is bound at first contact
 * (att_machine_bind_ek). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

/* The receipt's fingerprint in lowercase into fp; with ek, the receipt's
 * EK material parsed into ek, which must have that fingerprint. */
static int import_check_ek(const struct att_receipt *rc, char fp[97], struct att_ek *ek, char *reterr,
			   size_t errlen)
{
	size_t fplen = strlen(rc->ek_fingerprint);
	char why[256];
	int r;

	for (size_t i = 0; i <= fplen && i < 97; i++)
		fp[i] = (rc->ek_fingerprint[i] >= 'A' && rc->ek_fingerprint[i] <= 'F')
				? (char)(rc->ek_fingerprint[i] - 'A' + 'a')
				: rc->ek_fingerprint[i];
	if (!ek)
		return 0;
	r = att_ek_parse(rc->ek_b64, strlen(rc->ek_b64), rc->ek_source ? rc->ek_source : "cert",
			 (time_t)att_now().sec, ek, why, sizeof(why));
	if (r < 0) {
		att_machine_set_err(reterr, errlen, "ek_cert_pem: Invalid EK material: %s", why);
		return r == ATT_E_NOMEM ? r : ATT_E_INVAL;
	}
	if (!att_ek_fingerprint_matches(ek, fp)) {
		att_machine_set_err(reterr, errlen,
				    "ek_fingerprint: does not match the EK material (reported %.12s... but computed %.12s...)",
				    fp, ek->fp);
		return ATT_E_INVAL;
	}
	return 0;
}

/* 1 (detail in reterr) when a machine has this machine_id or EK already,
 * 0 when none has, or a negative att_err. */
static int import_find_conflict(struct att_dbc *c, const char *id, const char *fp, const char *ekfp,
				char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s,
			  "SELECT machine_id FROM machines WHERE machine_id = ? OR ek_fingerprint = ?"
			  " OR ek_fingerprint_legacy = ? OR ek_fingerprint_agent = ? OR ek_fingerprint = ? LIMIT 1",
			  "sssss", id, fp, fp, fp, ekfp);
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1)
		att_machine_set_err(reterr, errlen, "Receipt conflicts with existing machine %s (same machine_id or EK)",
				    att_stmt_text(s, 0));
	att_stmt_done(s);
	return r;
}

/* Insert the registered row and audit the import.  ek: NULL for a
 * receipt without EK material, whose fingerprint is then stored as the
 * legacy (96 hex) or agent (64 hex) one. */
static int import_insert(struct att_dbc *c, const struct att_receipt *rc, const char *id, const char *fp,
			 const struct att_ek *ek, const char *status, const struct att_actor *actor)
{
	size_t fplen = strlen(rc->ek_fingerprint);
	struct att_machine_row row = {
		.machine_id = id, .ek_fingerprint = ek ? ek->fp : NULL,
		.ek_fingerprint_legacy = ek ? ek->fp_legacy : (fplen == 96 ? fp : NULL),
		.ek_fingerprint_agent = ek ? ek->fp_agent : (fplen == 64 ? fp : NULL),
		.ek_source = rc->ek_source ? rc->ek_source : "offline-import", .ek_cert_b64 = ek ? rc->ek_b64 : NULL,
		.ek_key_type = ek ? ek->key_type : NULL, .ek_issuer = ek && ek->issuer[0] ? ek->issuer : NULL,
		.hw_uuid = rc->hw_uuid, .hw_mac = rc->hw_mac, .hw_serial = rc->hw_serial, .hw_product = rc->hw_product,
		.role = rc->role ? rc->role : "worker-app", .status = status, .cluster_id = rc->cluster_id,
	};
	char *detail;
	int r;

	r = att_machine_insert_row(c, &row);
	if (r == 0 && (rc->hostname || rc->assigned_ip))
		r = att_dbc_exec(c, "UPDATE machines SET hostname = ?, assigned_ip = ? WHERE machine_id = ?", "sss",
				 rc->hostname, rc->assigned_ip, id);
	if (r < 0)
		return r;
	if (rc->airgap_detail)
		detail = att_asprintf("%s; ek=%.16s...%s", rc->airgap_detail, ek ? ek->fp : fp,
				      strcmp(status, "registered") != 0 ? "; role under dual control — awaiting the approval quorum"
									: "");
	else
		detail = att_asprintf("imported from offline receipt; install_mode=%s installed_at=%s ek=%.16s...%s",
			      rc->install_mode ? rc->install_mode : "unknown",
			      rc->installed_at ? rc->installed_at : "unknown", ek ? ek->fp : fp,
			      strcmp(status, "registered") != 0 ? "; role under dual control — awaiting the approval quorum"
								  : "");
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, rc->airgap_detail ? "airgap_import" : "import", id, NULL, status, detail,
			     actor->source_ip);
	free(detail);
	return r;
}

int att_machine_import(const struct att_svc *svc, const struct att_receipt *rc,
		       const struct att_actor *actor, struct att_machine *ret, char *reterr,
		       size_t errlen)
{
	struct att_dbc *c;
	struct att_machine m = { 0 };
	struct att_ek ek, *have_ek = rc->ek_b64 && *rc->ek_b64 ? &ek : NULL;
	struct att_machine_chain cs;
	char id[37], fp[97];
	const char *ekfp, *status;
	int r;

	/* a role under dual control is reached only through the quorum of
	 * approval votes: the import lands in pending_approval */
	status = att_strlist_contains(&svc->cfg->dual_control_roles, rc->role ? rc->role : "worker-app")
			 ? "pending_approval"
			 : "registered";
	memset(&ek, 0, sizeof(ek));
	r = import_check_ek(rc, fp, have_ek, reterr, errlen);
	if (r < 0)
		return r;
	ekfp = have_ek ? ek.fp : fp;
	if (rc->machine_id)
		snprintf(id, sizeof(id), "%s", rc->machine_id);
	else if ((r = att_uuid4(id)) < 0)
		return r;
	c = att_db_acquire(svc->db);
	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	/* the same EK chain check as /register (ITL_TPM_VERIFY_CA[_STRICT]);
	 * a receipt without EK material is checked when its EK is bound */
	memset(&cs, 0, sizeof(cs));
	if (have_ek) {
		struct att_node_claims cl = { .ek_b64 = rc->ek_b64, .ek_source = rc->ek_source };

		r = att_machine_chain_check(svc, c, &cl, &cs, reterr, errlen);
		if (r < 0) {
			att_db_release(svc->db, c);
			return r;
		}
	}
	r = att_dbc_begin(c);
	if (r == 0)
		r = import_find_conflict(c, id, fp, ekfp, reterr, errlen);
	if (r == 1) {
		r = ATT_E_CONFLICT;
		goto fail;
	}
	if (r == 0)
		r = import_insert(c, rc, id, fp, have_ek, status, actor);
	if (r == 0 && have_ek)
		r = att_machine_store_chain(c, id, &ek, &cs);
	if (r == 0)
		r = att_machine_get(c, id, &m);
	if (r == 0)
		r = att_machine_outbox(c, "node.registered", &m, status,
				       json_pack("{s:s,s:s?}", "source", rc->airgap_detail ? "airgap-bundle" : "offline-import",
						 "imported_by", actor->name));
	if (r == 0)
		r = att_dbc_commit(c);
	if (r < 0)
		goto dberr;
	att_db_release(svc->db, c);
	att_log_info(LOGR, "New machine registered: id=%s role=%s ek=%.16s... (%s)", id,
		     M(&m, ROLE), ekfp, rc->airgap_detail ? "signed air-gap bundle" : "offline import");
	*ret = m;
	return 0;
dberr:
	att_log_error(LOGM, "import failed: %s (%s)", att_strerror(r), att_dbc_errmsg(c));
	r = r == ATT_E_CONFLICT ? (att_machine_set_err(reterr, errlen, "Receipt conflicts with an existing machine"), r)
				: att_machine_db_fail(r, reterr, errlen);
fail:
	att_dbc_rollback(c);
	att_db_release(svc->db, c);
	att_machine_release(&m);
	return r;
}
