/* bundle.c - the offline install bundle (GET /machines/{id}/offline-bundle):
 * a fresh enrollment certificate and key, the machine's config with both
 * embedded as machine.files, and a new config token; audited. */
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
	r = att_cert_issue_for(svc, c, m, NULL, "bundle", actor, &b->leaf);
	if (r < 0) {
		att_machine_set_err(reterr, errlen, "Cannot issue the enrollment certificate");
		return r;
	}
	{
		const struct att_mc_file files[] = {
			{ "/var/lib/itl-tpm/enrollment.crt", b->leaf.cert_pem, 0444 },
			{ "/var/lib/itl-tpm/enrollment.key", b->leaf.key_pem, 0400 },
		};
		struct att_mc_params p = {
			.role = M(m, ROLE), .machine_id = M(m, MACHINE_ID), .ek_fingerprint = fp,
			.hostname = M(m, HOSTNAME), .assigned_ip = M(m, ASSIGNED_IP),
			.installer_image = svc->cfg->installer_image, .files = files, .nfiles = 2,
		};

		if (att_machineconfig_render(svc->cfg->config_cache_dir, &p, &b->yaml, b->yaml_err,
					     sizeof(b->yaml_err)) < 0)
			b->yaml = NULL;
	}
	r = att_machine_token_issue(svc, c, M(m, MACHINE_ID), st, b->token);
	if (r < 0)
		return r;
	detail = att_asprintf("offline bundle built; enrollment cert serial=%s valid until %s%s", b->leaf.serial,
			      b->leaf.not_after, b->yaml ? "" : "; machineconfig unavailable");
	if (!detail)
		return ATT_E_NOMEM;
	r = att_audit_append(c, actor->name, "offline_bundle", M(m, MACHINE_ID), st, st, detail, actor->source_ip);
	free(detail);
	return r;
}

int att_machine_offline_bundle(const struct att_svc *svc, const char *machine_id, const struct att_actor *actor,
			       json_t **ret, char *reterr, size_t errlen)
{
	struct bundle_ctx b = { 0 };
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
	att_log_info(LOGM, "Offline bundle built: id=%s cert serial=%s by=%s", machine_id, b.leaf.serial, actor->name);
	url = att_asprintf("%s/api/v1/config/%s", svc->cfg->service_url, b.token);
	ca_pem = att_ca_cert_pem(svc->ca);
	att_time_iso_utc(att_now(), ts);
	o = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:s?,s:s?,s:s,s:s,s:s,s:s,s:s?,s:s,s:s}", "machine_id",
		      M(&m, MACHINE_ID), "role", M(&m, ROLE), "status", M(&m, STATUS), "ek_fingerprint",
		      M(&m, EK_FINGERPRINT) ? M(&m, EK_FINGERPRINT) : M(&m, EK_FINGERPRINT_LEGACY), "hostname",
		      M(&m, HOSTNAME), "assigned_ip", M(&m, ASSIGNED_IP), "config_url", url, "config_token", b.token,
		      "machineconfig", b.yaml, "machineconfig_error", b.yaml ? NULL : b.yaml_err, "enrollment_cert_pem",
		      b.leaf.cert_pem, "enrollment_key_pem", b.leaf.key_pem, "enrollment_cert_serial", b.leaf.serial,
		      "enrollment_cert_expires_at", b.leaf.not_after, "enrollment_ca_pem", ca_pem, "install_mode",
		      "offline", "built_at", ts);
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
