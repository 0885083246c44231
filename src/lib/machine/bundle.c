/* bundle.c - the offline install bundle (GET /machines/{id}/offline-bundle):
 * the machine's config and a new config token; with include_key=true (or
 * for a signed air-gap archive, airgap.c) also a fresh enrollment
 * certificate and key, embedded in the config as machine.files.  Audited:
 * offline_bundle (the detail says whether the private key left), or
 * airgap_export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ca.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "talos/machineconfig.h"

struct bundle_ctx {
	enum att_bundle_kind kind;
	struct att_ca_leaf leaf;
	char token[64];
	char *yaml;
	char yaml_err[256];
};

static void bundle_ctx_release(struct bundle_ctx *b)
{
	att_ca_leaf_release(&b->leaf);
	if (b->yaml) {
		att_wipe(b->yaml, strlen(b->yaml));
		free(b->yaml);
	}
	b->yaml = NULL;
}

static int do_bundle(const struct att_svc *svc, struct att_dbc *c, struct att_machine *m, const void *arg,
		     const struct att_actor *actor, char *reterr, size_t errlen)
{
	struct bundle_ctx *b = (struct bundle_ctx *)arg;
	const char *st = M(m, STATUS), *fp = M(m, EK_FINGERPRINT) ? M(m, EK_FINGERPRINT) : M(m, EK_FINGERPRINT_LEGACY);
	char *detail;
	int r;

	bundle_ctx_release(b);	/* a retried transaction starts over */
	if (strcmp(st, "registered") != 0 && strcmp(st, "attested") != 0) {
		att_machine_set_err(reterr, errlen, "Machine %s is %s — an offline bundle needs an approved machine (registered or attested)",
				    M(m, MACHINE_ID), st);
		return ATT_E_CONFLICT;
	}
	if (!svc->ca) {
		att_machine_set_err(reterr, errlen, "Enrollment CA not loaded");
		return ATT_E_UNAVAILABLE;
	}
	if (b->kind != ATT_BUNDLE_NO_KEY) {
		r = att_cert_issue_for(svc, c, m, NULL, "bundle", actor, &b->leaf);
		if (r < 0) {
			att_machine_set_err(reterr, errlen, "Cannot issue the enrollment certificate");
			return r;
		}
	}
	{
		const struct att_mc_file files[] = {
			{ "/var/lib/itl-tpm/enrollment.crt", b->leaf.cert_pem, 0444 },
			{ "/var/lib/itl-tpm/enrollment.key", b->leaf.key_pem, 0400 },
		};
		struct att_mc_params p = {
			.role = M(m, ROLE), .machine_id = M(m, MACHINE_ID), .ek_fingerprint = fp,
			.hostname = M(m, HOSTNAME), .assigned_ip = M(m, ASSIGNED_IP),
			.installer_image = svc->cfg->installer_image, .files = files,
			.nfiles = b->kind == ATT_BUNDLE_NO_KEY ? 0 : 2,
		};

		if (att_machineconfig_render(svc->cfg->config_cache_dir, &p, &b->yaml, b->yaml_err,
					     sizeof(b->yaml_err)) < 0)
			b->yaml = NULL;
	}
	r = att_machine_token_issue(svc, c, M(m, MACHINE_ID), st, b->token);
	if (r < 0)
		return r;
	if (b->kind == ATT_BUNDLE_NO_KEY)
		detail = att_asprintf("offline bundle built without the enrollment key (no certificate issued)%s",
				      b->yaml ? "" : "; machineconfig unavailable");
	else
		detail = att_asprintf("%s; enrollment cert serial=%s valid until %s; %s%s",
				      b->kind == ATT_BUNDLE_ARCHIVE ? "signed air-gap bundle exported" : "offline bundle built",
				      b->leaf.serial, b->leaf.not_after,
				      b->kind == ATT_BUNDLE_ARCHIVE ? "the archive carries the enrollment private key"
								    : "enrollment private key returned (include_key=true)",
				      b->yaml ? "" : "; machineconfig unavailable");
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, b->kind == ATT_BUNDLE_ARCHIVE ? "airgap_export" : "offline_bundle",
			     M(m, MACHINE_ID), st, st, detail, actor->source_ip);
	free(detail);
	return r;
}

/* What the archive's machine.json needs besides the bundle itself: the
 * record the importing instance recreates (airgap.c). */
static json_t *machine_record(const struct att_machine *m)
{
	return json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?}", "machine_id",
			 M(m, MACHINE_ID), "role", M(m, ROLE), "status", M(m, STATUS), "ek_fingerprint",
			 M(m, EK_FINGERPRINT), "ek_fingerprint_legacy", M(m, EK_FINGERPRINT_LEGACY),
			 "ek_fingerprint_agent", M(m, EK_FINGERPRINT_AGENT), "ek_source", M(m, EK_SOURCE), "ek_cert_b64",
			 M(m, EK_CERT_B64), "hostname", M(m, HOSTNAME), "assigned_ip", M(m, ASSIGNED_IP), "cluster_id",
			 M(m, CLUSTER_ID), "hw_uuid", M(m, HW_UUID), "hw_mac", M(m, HW_MAC), "hw_serial", M(m, HW_SERIAL));
}

int att_machine_offline_bundle(const struct att_svc *svc, const char *machine_id, enum att_bundle_kind kind,
			       const struct att_actor *actor, json_t **ret, char *reterr, size_t errlen)
{
	struct bundle_ctx b = { .kind = kind };
	struct att_machine m = { 0 };
	char ts[40];
	char *url, *ca_pem;
	json_t *o;
	int r = att_machine_transition_run(svc, machine_id, do_bundle, &b, actor, &m, reterr, errlen);

	if (r < 0) {
		bundle_ctx_release(&b);
		return r;
	}
	if (!b.yaml)
		att_log_warning(LOGM, "offline bundle for %s has no machineconfig: %s", machine_id, b.yaml_err);
	att_log_info(LOGM, "Offline bundle built: id=%s cert serial=%s by=%s%s", machine_id,
		     kind == ATT_BUNDLE_NO_KEY ? "none" : b.leaf.serial, actor->name,
		     kind == ATT_BUNDLE_NO_KEY ? "" : " (enrollment key included)");
	url = att_asprintf("%s/api/v1/config/%s", svc->cfg->service_url, b.token);
	ca_pem = att_ca_cert_pem(svc->ca);
	att_time_iso_utc(att_now(), ts);
	o = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:s}", "machine_id",
		      M(&m, MACHINE_ID), "role", M(&m, ROLE), "status", M(&m, STATUS), "ek_fingerprint",
		      M(&m, EK_FINGERPRINT) ? M(&m, EK_FINGERPRINT) : M(&m, EK_FINGERPRINT_LEGACY), "hostname",
		      M(&m, HOSTNAME), "assigned_ip", M(&m, ASSIGNED_IP), "config_url", url, "config_token", b.token,
		      "machineconfig", b.yaml, "machineconfig_error", b.yaml ? NULL : b.yaml_err, "enrollment_cert_pem",
		      b.leaf.cert_pem, "enrollment_key_pem", b.leaf.key_pem, "enrollment_cert_serial",
		      b.leaf.cert_pem ? b.leaf.serial : NULL, "enrollment_cert_expires_at",
		      b.leaf.cert_pem ? b.leaf.not_after : NULL, "enrollment_ca_pem", ca_pem, "install_mode",
		      "offline", "built_at", ts);
	if (o && kind == ATT_BUNDLE_NO_KEY)
		json_object_set_new(o, "enrollment_key_included", json_false());
	else if (o)
		json_object_set_new(o, "enrollment_key_included", json_true());
	if (o && kind == ATT_BUNDLE_ARCHIVE) {
		json_t *rec = machine_record(&m);

		json_object_set_new(rec, "enrollment_cert_serial", json_string(b.leaf.serial));
		if (M(&m, HW_PRODUCT))
			json_object_set_new(rec, "hw_product", json_string(M(&m, HW_PRODUCT)));
		json_object_set_new(o, "machine", rec);
	}
	free(url);
	free(ca_pem);
	att_wipe(b.token, sizeof(b.token));
	bundle_ctx_release(&b);
	att_machine_release(&m);
	if (!o)
		return ATT_E_NOMEM;
	*ret = o;
	return 0;
}
