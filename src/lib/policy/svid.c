/* svid.c - X.509-SVIDs for agents (docs/attestation-policies.md): when an
 * attest request carries a CSR and a policy passed, the enrollment CA
 * certifies the CSR's key (nothing else of the CSR is used) for the
 * session's SPIFFE ID:
 *
 *   subject C=NL, O=ITL Usions, OU=agent, CN=<session id>
 *   SAN     exactly one URI, spiffe://<ITL_AGENT_TRUST_DOMAIN>/agent/...
 *   CA:false; keyUsage digitalSignature (critical); EKU serverAuth,
 *   clientAuth; SKI/AKI; CRL distribution point and OCSP URL
 *   attributes extension ATT_CA_EXT_AGENT_ATTRIBUTES (non-critical)
 *   validity: ITL_AGENT_TOKEN_TTL_SECONDS (notBefore 5 minutes back)
 *
 * The certificate is recorded in issued_certs (machine_id NULL,
 * agent_session set) in the session's transaction, so it is listed,
 * revocable, and in the CRL and OCSP answers like a machine's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "policy/policy-internal.h"

#define ERR(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

/* The attributes extension keeps a certificate under the 16 KiB that
 * the service accepts back (self-revocation, csr.h). */
#define SVID_MAX_ATTRS 8192

int att_agent_svid_make(const struct att_svc *svc, EVP_PKEY *key, const char *sid, const char *spiffe,
			const char *attrs, struct att_ca_leaf *ret, char *reterr, size_t errlen)
{
	char *crl = att_asprintf("%s/api/v1/ca/crl", svc->cfg->service_url);
	char *ocsp = att_asprintf("%s/api/v1/ca/ocsp", svc->cfg->service_url);
	struct att_ca_profile p = {
		.machine_id = sid, .role = "agent", .spiffe_id = spiffe, .crl_url = crl, .ocsp_url = ocsp,
		.seconds = svc->cfg->agent_token_ttl_seconds, .svid = true, .attributes = attrs,
	};
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!svc->ca)
		r = ERR(ATT_E_UNAVAILABLE, "The enrollment CA is not available to issue agent certificates");
	else if (strlen(attrs) > SVID_MAX_ATTRS)
		r = ERR(ATT_E_INVAL, "csr_pem: the attributes (%zu bytes of JSON) exceed the %d bytes a certificate carries;"
			" attest without csr_pem (the token has no such limit)", strlen(attrs), SVID_MAX_ATTRS);
	else if (!crl || !ocsp)
		r = ATT_E_NOMEM;
	else if ((r = att_ca_issue_key(svc->ca, key, &p, ret)) < 0)
		r = ERR(r, "Could not issue the agent certificate");
	free(crl);
	free(ocsp);
	return r;
}

int att_agent_svid_record(struct att_dbc *c, const struct att_ca_leaf *l, const struct att_agent_request *rq,
			  const char *sid, const char *spiffe)
{
	char ts[32], detail[512];
	int r;

	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "INSERT INTO issued_certs (serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint,"
			 " issued_at, issued_by, not_after, not_after_epoch, pem, agent_session)"
			 " VALUES (?, NULL, 'agent', ?, 'agent-svid', ?, NULL, ?, 'agent', ?, ?, ?, ?)",
			 "sssssiss", l->serial, l->ca_serial, l->key_type, ts, l->not_after, l->not_after_epoch,
			 l->cert_pem, sid);
	if (r < 0)
		return r;
	snprintf(detail, sizeof(detail), "cluster=%s session=%s serial=%s key_type=%s not_after=%s spiffe_id=%s",
		 rq->cluster_id, sid, l->serial, l->key_type, l->not_after, spiffe);
	return att_audit_append(c, "agent", "agent_cert_issued", NULL, NULL, NULL, detail, rq->source_ip);
}

json_t *att_agent_svid_json(const struct att_svc *svc, const struct att_ca_leaf *l, const char *spiffe)
{
	char *bundle = att_ca_bundle_pem(svc->ca);
	json_t *o = bundle ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "cert_pem", l->cert_pem, "chain_pem",
				       l->cert_pem, "bundle_pem", bundle, "serial", l->serial, "key_type",
				       l->key_type, "expires_at", l->not_after, "spiffe_id", spiffe)
			   : NULL;

	free(bundle);
	return o;
}

void att_agent_svid_log(const struct att_ca_leaf *l, const char *sid, const char *spiffe)
{
	att_log_info("attestd.pki", "Agent SVID issued: session=%s spiffe_id=%s serial=%s not_after=%s", sid, spiffe,
		     l->serial, l->not_after);
}

/* ---- revocation ----------------------------------------------------------- */

struct revoke_row {
	char session[48], ca_serial[80];
	bool revoked, found;
};

static int load_row(struct att_dbc *c, const char *serial, struct revoke_row *w)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s,
			      "SELECT agent_session, ca_serial, revoked_at, revocation_reason FROM issued_certs"
			      " WHERE serial = ? AND machine_id IS NULL AND agent_session IS NOT NULL",
			      "s", serial);

	if (r < 0)
		return r;
	memset(w, 0, sizeof(*w));
	r = att_stmt_next(s);
	if (r == 1) {
		w->found = true;
		snprintf(w->session, sizeof(w->session), "%s", att_stmt_text(s, 0));
		snprintf(w->ca_serial, sizeof(w->ca_serial), "%s", att_stmt_text(s, 1));
		w->revoked = !att_stmt_is_null(s, 2);
	}
	att_stmt_done(s);
	return r < 0 ? r : 0;
}

int att_agent_cert_revoke(const struct att_svc *svc, const char *serial, const char *reason, const char *detail,
			  const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen)
{
	struct revoke_row w;
	struct att_dbc *c;
	char ts[32], *audit = NULL;
	int r = att_machine_tx_begin(svc, &c, reterr, errlen);

	if (r < 0)
		return r;
	r = load_row(c, serial, &w);
	if (r < 0)
		r = att_machine_db_fail(r, reterr, errlen);
	else if (!w.found)
		r = ERR(ATT_E_NOTFOUND, "Certificate %s not found", serial);
	else if (w.revoked)
		r = ERR(ATT_E_CONFLICT, "Certificate %s is already revoked", serial);
	if (r == 0) {
		att_time_iso(att_now(), ts);
		r = att_dbc_exec(c,
				 "UPDATE issued_certs SET revoked_at = ?, revoked_epoch = ?, revocation_reason = ?,"
				 " revocation_detail = ? WHERE serial = ?",
				 "sisss", ts, att_now().sec, reason, detail, serial);
		if (r >= 0)
			r = att_dbc_exec(c, "UPDATE ca_crls SET stale = 1 WHERE ca_serial = ?", "s", w.ca_serial);
		if (r >= 0) {
			audit = att_asprintf("certificate serial=%s session=%s revoked; reason=%s%s%.900s%s", serial,
					     w.session, reason, detail ? "; detail='" : "", detail ? detail : "",
					     detail ? "'" : "");
			r = audit ? att_audit_append(c, actor->name, "agent_cert_revoked", NULL, NULL, NULL, audit,
						     actor->source_ip)
				  : ATT_E_NOMEM;
			free(audit);
		}
		if (r > 0)
			r = 0;
		if (r < 0)
			r = att_machine_db_fail(r, reterr, errlen);
	}
	r = att_machine_tx_end(svc, c, r, reterr, errlen);
	if (r < 0)
		return r;
	att_log_info("attestd.pki", "Agent SVID revoked: session=%s serial=%s reason=%s by=%s", w.session, serial,
		     reason, actor->name);
	return att_cert_get(svc, serial, ret, reterr, errlen);
}
