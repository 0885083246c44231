/* config.c - MachineConfig delivery: GET /api/v1/config/{token}
 * (plaintext or sealed envelope) and the generic GET /api/v1/config
 * (the partial config of the generic ISO). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/envelope.h"
#include "obs/log.h"
#include "routes/routes.h"
#include "talos/machineconfig.h"
#include "tpm/tpm.h"

#define ENC_MEDIA "application/vnd.itl.config.encrypted+json"

static bool token_shape_ok(const char *t)
{
	size_t n = strlen(t);

	if (n < 16 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = t[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

static bool accepts_encrypted(struct att_req *rq)
{
	const char *a = att_req_header(rq, MHD_HTTP_HEADER_ACCEPT);

	return a && strcasestr(a, ENC_MEDIA) != NULL;
}

/* Accept: application/vnd.itl.config.encrypted+json; format=ek-aes256gcm-v1 */
static bool wants_reference_envelope(struct att_req *rq)
{
	const char *a = att_req_header(rq, MHD_HTTP_HEADER_ACCEPT);

	return a && strcasestr(a, "format=ek-aes256gcm-v1") != NULL;
}

/* The TPM-bound envelope for a machine with a bound AK (unless the
 * reference's is asked for), else the reference's envelope (RSA EKs). */
static bool seal_config(const struct att_machine *m, bool reference, const char *yaml, char **ret)
{
	if (M(m, AK_NAME) && !reference) {
		struct att_tpm_pub ek;
		uint8_t name[ATT_TPM_MAX_NAME];
		size_t nl = strlen(M(m, AK_NAME)) / 2;
		char why[256];
		bool ok = false;

		if (nl <= sizeof(name) && att_hex_decode(M(m, AK_NAME), nl * 2, name) == 0 &&
		    att_machine_ek_pub(m, &ek, why, sizeof(why)) == 0) {
			ok = att_envelope_tpm_credential(&ek, name, nl, M(m, MACHINE_ID), yaml, strlen(yaml), ret) == 0;
			att_tpm_pub_release(&ek);
		}
		if (!ok)
			att_log_error("attestd.config", "cannot seal the config of machine %s to its TPM", M(m, MACHINE_ID));
		return ok;
	}
	return M(m, EK_CERT_B64) &&
	       att_envelope_ek_aes256gcm(M(m, EK_CERT_B64), M(m, EK_SOURCE), M(m, MACHINE_ID), yaml, strlen(yaml), ret) == 0;
}

static void h_config_token(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *token = rq->params[0];
	struct att_machine m = { 0 };
	struct att_mc_params p = { 0 };
	char err[512], *yaml = NULL, *env = NULL;
	bool refetch = false, encrypted = false;
	int r;

	if (!token_shape_ok(token)) {
		att_resp_error(rs, 404, "Config token not found");
		return;
	}
	r = att_config_token_lookup(svc, token, &m, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	p.role = M(&m, ROLE);
	p.machine_id = M(&m, MACHINE_ID);
	p.ek_fingerprint = M(&m, EK_FINGERPRINT);
	p.hostname = M(&m, HOSTNAME);
	p.assigned_ip = M(&m, ASSIGNED_IP);
	p.installer_image = svc->cfg->installer_image;
	r = att_machineconfig_render(svc->cfg->config_cache_dir, &p, &yaml, err, sizeof(err));
	if (r < 0) {
		att_log_error("attestd.config", "cannot build MachineConfig for machine %s: %s", M(&m, MACHINE_ID), err);
		att_resp_error(rs, 503, "%s", r == ATT_E_UNAVAILABLE ? "Base config not available — ensure CI configs are downloaded"
								     : "Base config for this role is invalid — see the service log");
		goto out;
	}
	if (accepts_encrypted(rq))
		encrypted = seal_config(&m, wants_reference_envelope(rq), yaml, &env);
	if (!encrypted && svc->cfg->require_encrypted_delivery) {
		att_resp_error(rs, 406, "Plaintext config delivery is disabled — set Accept: %s to receive the encrypted envelope", ENC_MEDIA);
		goto out;
	}
	r = att_config_token_record_fetch(svc, token, &m, &rq->actor, &refetch, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	if (encrypted) {
		att_resp_text(rs, 200, ENC_MEDIA, env, strlen(env));
		env = NULL;
	} else {
		att_resp_text(rs, 200, "application/yaml", yaml, strlen(yaml));
		yaml = NULL;
	}
	att_resp_header(rs, "Cache-Control", "no-store");
out:
	free(env);
	free(yaml);
	att_machine_release(&m);
}

/* A query value for the log: printable ASCII, at most 64 characters
 * (Talos leaves unfilled placeholders such as ${mac} in the URL). */
static void log_value(const char *v, char out[72])
{
	size_t n = 0;

	if (!v) {
		snprintf(out, 72, "-");
		return;
	}
	for (; *v && n < 64; v++)
		out[n++] = (*v >= 0x20 && *v < 0x7f) ? *v : '?';
	out[n] = '\0';
}

/* GET /api/v1/config[?uuid=&mac=&serial=...]: the generic ISO's
 * talos.config= URL.  Always the partial config (never a machine's own:
 * nothing in the query is a secret), and always 200 — Talos retries any
 * other status for three hours and then reboots (talos.md 2.5). */
static void h_config_generic(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	char uuid[72], mac[72], serial[72], *y = NULL;

	if (att_machineconfig_partial(svc->cfg->service_url, &y) < 0) {
		att_resp_error(rs, 500, "Internal Server Error");
		return;
	}
	log_value(att_req_query(rq, "uuid"), uuid);
	log_value(att_req_query(rq, "mac"), mac);
	log_value(att_req_query(rq, "serial"), serial);
	att_log_info("attestd.config", "Generic config served (uuid=%s mac=%s serial=%s): the node continues into maintenance mode",
		     uuid, mac, serial);
	att_resp_text(rs, 200, "application/yaml", y, strlen(y));
	att_resp_header(rs, "Cache-Control", "no-store");
}

static const struct att_route routes[] = {
	{ "GET", "/api/v1/config", AUTH_NONE, h_config_generic, 0, 0, NULL },
	{ "GET", "/api/v1/config/{token}", AUTH_NONE, h_config_token, 0, 0, NULL },
};

const struct att_route_set att_routes_config = { routes, ATT_ARRAY_SIZE(routes) };
