/* api.c - the REST API: machine-facing and operator routes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "audit/audit.h"
#include "audit/report.h"
#include "crypto/ca.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "crypto/ek.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "http.h"
#include "oidc/oidc.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "talos/factory.h"
#include "talos/machineconfig.h"
#include "talos/schematic.h"
#include "tpm/tpm.h"

#define LOGF "attestd.factory"
#define ENC_MEDIA "application/vnd.itl.config.encrypted+json"

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* ---- Image Factory -------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The one schematic every machine boots: generic talos.config URL (no
 * token), official extensions sorted and de-duplicated. */
static int build_schematic(const struct att_config *cfg, char **ret_yaml, char ret_id[65])
{
	const char *exts[64];
	size_t n = 0, k = 0;
	char *karg = att_asprintf("talos.config=%s/api/v1/config?mac=${mac}", cfg->service_url);
	const char *kargs[1];
	struct att_schematic s = { 0 };
	int r;

	if (!karg)
		return ATT_E_NOMEM;
	exts[n++] = "siderolabs/gvisor";
	exts[n++] = "siderolabs/intel-ucode";
	for (size_t i = 0; i < cfg->factory_extensions.n && n < 64; i++)
		exts[n++] = cfg->factory_extensions.items[i];
	qsort(exts, n, sizeof(exts[0]), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(exts[k - 1], exts[i]) != 0)
			exts[k++] = exts[i];
	kargs[0] = karg;
	s.kernel_args = kargs;
	s.n_kernel_args = 1;
	s.extensions = exts;
	s.n_extensions = k;
	r = att_schematic_yaml(&s, ret_yaml);
	free(karg);
	if (r == 0)
		att_schematic_id(*ret_yaml, ret_id);
	return r;
}

/* Tell the factory about the schematic once; never fails the caller. */
static void factory_announce(const struct att_svc *svc, const char *yaml, const char *id)
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	char ts[32], got[65], why[256];
	bool acked = false;
	int r;

	if (!c)
		return;
	att_time_iso(att_now(), ts);
	if (att_dbc_exec(c, "INSERT INTO factory_schematics (schematic_id, yaml, created_at) VALUES (?, ?, ?)"
			    " ON CONFLICT (schematic_id) DO NOTHING",
			 "sss", id, yaml, ts) < 0)
		goto out;
	if (att_dbc_query(c, &s, "SELECT acknowledged_at FROM factory_schematics WHERE schematic_id = ?", "s", id) == 0) {
		acked = att_stmt_next(s) == 1 && !att_stmt_is_null(s, 0);
		att_stmt_done(s);
	}
	if (acked)
		goto out;
	att_db_release(svc->db, c);
	c = NULL;
	r = att_factory_post_schematic(svc->cfg->factory_url, yaml, (long)svc->cfg->factory_timeout_seconds,
				       got, why, sizeof(why));
	if (r < 0) {
		att_log_error(LOGF, "Talos Image Factory unreachable: %s", why);
		return;
	}
	if (strcmp(got, id) != 0)
		att_log_warning(LOGF, "Talos Image Factory returned schematic id %s, computed %s locally", got, id);
	c = att_db_acquire(svc->db);
	if (c)
		(void)att_dbc_exec(c, "UPDATE factory_schematics SET acknowledged_at = ? WHERE schematic_id = ?",
				   "ss", ts, id);
out:
	if (c)
		att_db_release(svc->db, c);
}

static void add_boot_urls(const struct att_svc *svc, json_t *o)
{
	char *yaml = NULL, id[65];

	if (svc->cfg->iso_url[0]) {
		json_object_set_new(o, "iso_url", json_string(svc->cfg->iso_url));
		return;
	}
	if (build_schematic(svc->cfg, &yaml, id) < 0) {
		json_object_set_new(o, "iso_url", json_null());
		return;
	}
	factory_announce(svc, yaml, id);
	{
		char *iso = att_factory_iso_url(svc->cfg->factory_url, id, svc->cfg->talos_version);
		char *inst = att_factory_installer_image(svc->cfg->factory_url, id, svc->cfg->talos_version);

		json_object_set_new(o, "iso_url", jstr_or_null(iso));
		json_object_set_new(o, "schematic_id", json_string(id));
		json_object_set_new(o, "installer_image", jstr_or_null(inst));
		free(iso);
		free(inst);
	}
	free(yaml);
}

/* ---- machine-facing --------------------------------------------------------- */

#define NODE_FIELDS                                                   \
	{ "ek_fingerprint", ATT_J_STRING, true, 128 },                 \
	{ "ek_cert_pem", ATT_J_STRING, true, ATT_EK_MAX_B64 },         \
	{ "ek_source", ATT_J_STRING, false, 32 },                      \
	{ "hw_uuid", ATT_J_STRING, false, 256 },                       \
	{ "hw_mac", ATT_J_STRING, false, 64 },                         \
	{ "hw_serial", ATT_J_STRING, false, 256 },                     \
	{ "hw_product", ATT_J_STRING, false, 256 },                    \
	{ "desired_role", ATT_J_STRING, false, 64 },                   \
	{ "cluster_id", ATT_J_STRING, false, 64 },                     \
	{ "ek_chain_pem", ATT_J_STRING, false, ATT_EK_MAX_B64 },       \
	{ "ek_chain_nv", ATT_J_STRING, false, ATT_EK_MAX_B64 }

static const struct att_jfield register_fields[] = { NODE_FIELDS };
static const struct att_jfield attest_fields[] = {
	NODE_FIELDS,
	{ "nonce_id", ATT_J_STRING, false, 64 },
	{ "nonce_signature", ATT_J_STRING, false, 8192 },
	{ "pcr_quote", ATT_J_STRING, false, 16384 },
	{ "pcr_signature", ATT_J_STRING, false, 16384 },
	{ "pcr_nonce", ATT_J_STRING, false, 256 },
	{ "pcr_values", ATT_J_OBJECT, false, 0 },
};

struct node_req {
	struct att_node_claims cl;
	struct att_ek ek;
	char mac[32];
	uint8_t *chain_der;	/* decoded ek_chain_nv */
};

static void node_req_release(struct node_req *nr)
{
	free(nr->chain_der);
	nr->chain_der = NULL;
}

/* Validate claims and parse the EK; answers 422 itself on failure. */
static bool parse_node(const struct att_svc *svc, json_t *b, struct att_resp *rs, const char *what,
		       struct node_req *nr)
{
	const char *fp = att_json_str(b, "ek_fingerprint");
	const char *pem = att_json_str(b, "ek_cert_pem");
	const char *src = att_json_str(b, "ek_source");
	char why[512];
	size_t i;

	(void)svc;
	memset(nr, 0, sizeof(*nr));
	if (!att_valid_fingerprint(fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: must be a 64-char (SHA-256) or 96-char (SHA-384) hex digest");
		return false;
	}
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert' or 'pub'");
		return false;
	}
	for (i = 0; pem[i] == ' ' || pem[i] == '\n' || pem[i] == '\r' || pem[i] == '\t'; i++)
		;
	if (pem[i] == '\0') {
		att_resp_error(rs, 422, "ek_cert_pem: EK certificate material is required — %s without TPM evidence is not permitted", what);
		return false;
	}
	if (att_ek_parse(pem, strlen(pem), src ? src : "cert", (time_t)att_now().sec, &nr->ek, why,
			 sizeof(why)) < 0) {
		att_resp_error(rs, 422, "ek_cert_pem: Invalid EK material: %s", why);
		return false;
	}
	if (!att_ek_fingerprint_matches(&nr->ek, fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: EK fingerprint mismatch: agent reported %.12s... but computed %.12s...",
			       fp, nr->ek.fp);
		return false;
	}
	nr->cl.ek_b64 = pem;
	nr->cl.ek_source = src ? src : "cert";
	nr->cl.hw_uuid = att_json_str(b, "hw_uuid");
	nr->cl.hw_serial = att_json_str(b, "hw_serial");
	nr->cl.hw_product = att_json_str(b, "hw_product");
	nr->cl.desired_role = att_json_str(b, "desired_role");
	nr->cl.cluster_id = att_json_str(b, "cluster_id");
	nr->cl.ek_chain_pem = att_json_str(b, "ek_chain_pem");
	if (att_json_str(b, "ek_chain_nv")) {
		const char *nv = att_json_str(b, "ek_chain_nv");

		if (att_b64_decode(nv, strlen(nv), &nr->chain_der, &nr->cl.ek_chain_der_len) < 0) {
			att_resp_error(rs, 422, "ek_chain_nv: not valid base64");
			return false;
		}
		nr->cl.ek_chain_der = nr->chain_der;
	}
	if (att_json_str(b, "hw_mac")) {
		if (!att_normalize_mac(att_json_str(b, "hw_mac"), nr->mac)) {
			att_resp_error(rs, 422, "hw_mac: expected a MAC address like 52:54:00:12:34:56");
			return false;
		}
		nr->cl.hw_mac = nr->mac;
	}
	if (nr->cl.desired_role && !att_role_valid(nr->cl.desired_role)) {
		att_resp_error(rs, 422, "desired_role: must be one of controlplane, worker-infra, worker-app");
		return false;
	}
	if (nr->cl.cluster_id && !att_valid_cluster_id(nr->cl.cluster_id)) {
		att_resp_error(rs, 422, "cluster_id: must match ^[a-z0-9][a-z0-9-]{0,62}$");
		return false;
	}
	return true;
}

static void node_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs,
			  bool self)
{
	json_t *b = att_req_json(rq, rs, register_fields, ATT_ARRAY_SIZE(register_fields));
	struct att_node_result res;
	struct node_req nr = { 0 };
	char err[512];
	json_t *o;
	int r;

	if (!b)
		return;
	if (!parse_node(svc, b, rs, self ? "self-registration" : "registration", &nr))
		goto out;
	r = att_machine_register(svc, &nr.ek, &nr.cl, &rq->actor, self, &res, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	o = json_pack("{s:s,s:s,s:s}", "machine_id", M(&res.m, MACHINE_ID), "role", M(&res.m, ROLE),
		      "status", res.status);
	add_boot_urls(svc, o);
	json_object_set_new(o, "config_token", json_null());
	json_object_set_new(o, "config_url", json_null());
	json_object_set_new(o, "ek_fingerprint", json_string(nr.ek.fp));
	json_object_set_new(o, "message", json_string(res.message));
	att_resp_json(rs, 200, o);
	att_node_result_release(&res);
out:
	node_req_release(&nr);
	json_decref(b);
}

static void h_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	node_register(svc, rq, rs, false);
}

static void h_self_register(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	node_register(svc, rq, rs, true);
}

static void h_challenge(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	char id[33], nonce[48], err[256], exp[40];
	int64_t expires;
	int r;

	(void)rq;
	r = att_nonce_issue(svc, id, nonce, &expires, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_time_iso_utc((struct att_time){ expires, 0 }, exp);
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s}", "nonce_id", id, "nonce", nonce, "expires_at", exp));
	att_resp_header(rs, "Cache-Control", "no-store");
}

/* A quote's bytes and reported PCR values, checked for shape before any
 * nonce is consumed. */
struct quote_req {
	uint8_t *attest, *sig;
	size_t attest_len, sig_len;
	struct att_tpm_pcrs pcrs;
};

static void quote_req_release(struct quote_req *q)
{
	free(q->attest);
	free(q->sig);
	q->attest = q->sig = NULL;
}

static bool parse_quote(json_t *b, struct att_resp *rs, struct quote_req *q)
{
	const char *quote = att_json_str(b, "pcr_quote"), *sig = att_json_str(b, "pcr_signature");
	json_t *vals = json_object_get(b, "pcr_values");
	struct att_tpm_quote probe;
	const char *key;
	json_t *v;
	char err[256];

	if (!(quote && *quote && sig && *sig)) {
		att_resp_error(rs, 422, "pcr_quote: pcr_quote and pcr_signature must be sent together");
		return false;
	}
	if (!att_json_str(b, "nonce_id")) {
		att_resp_error(rs, 422, "nonce_id: a quote must answer a challenge — include nonce_id from GET /api/v1/attest/challenge");
		return false;
	}
	if (att_b64_decode(quote, strlen(quote), &q->attest, &q->attest_len) < 0) {
		att_resp_error(rs, 422, "pcr_quote: not valid base64");
		return false;
	}
	if (att_b64_decode(sig, strlen(sig), &q->sig, &q->sig_len) < 0) {
		att_resp_error(rs, 422, "pcr_signature: not valid base64");
		return false;
	}
	if (att_tpm_quote_parse(q->attest, q->attest_len, &probe, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
		return false;
	}
	if (!vals || json_is_null(vals)) {
		att_resp_error(rs, 422, "pcr_values: required with pcr_quote — the PCR values the quote covers, e.g. {\"sha256:7\": \"<hex>\"}");
		return false;
	}
	json_object_foreach(vals, key, v) {
		if (!json_is_string(v)) {
			att_resp_error(rs, 422, "pcr_values: '%.32s' must be a hex string", key);
			return false;
		}
		if (att_tpm_pcrs_add(&q->pcrs, key, json_string_value(v), err, sizeof(err)) < 0) {
			att_resp_error(rs, 422, "%s", err);
			return false;
		}
	}
	return true;
}

/* Verify the quote against the AK bound to the machine of this EK. */
static bool verify_quote(const struct att_svc *svc, const struct att_ek *ek, const struct quote_req *q,
			 const uint8_t nonce[32], struct att_resp *rs, struct att_quote_evidence *ev,
			 char ak_name[2 * ATT_TPM_MAX_NAME + 1])
{
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_machine m = { 0 };
	struct att_tpm_pub ak = { 0 };
	struct att_tpm_quote tq;
	char err[512];
	int r = ATT_E_NOTFOUND;

	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return false;
	}
	r = att_machine_find_by_ek(c, ek, &m);
	att_db_release(svc->db, c);
	if (r < 0 && r != ATT_E_NOTFOUND) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return false;
	}
	if (r == ATT_E_NOTFOUND || !M(&m, AK_PUBLIC)) {
		att_machine_release(&m);
		att_resp_error(rs, 422, "pcr_quote: PCR quote submitted but no AK registered for this machine — call POST /api/v1/machines/{id}/ak-activate first");
		return false;
	}
	r = att_machine_ak_pub(&m, &ak, err, sizeof(err));
	if (r == 0)
		r = att_tpm_quote_check(&ak, q->attest, q->attest_len, q->sig, q->sig_len, nonce, 32, &q->pcrs, &tq,
					err, sizeof(err));
	if (r < 0) {
		att_log_warning("attestd.attestation", "Quote from machine %s rejected: %s", M(&m, MACHINE_ID), err);
		att_resp_error(rs, 422, "pcr_quote: PCR quote verification failed: %s", err);
	} else {
		snprintf(ak_name, 2 * ATT_TPM_MAX_NAME + 1, "%s", M(&m, AK_NAME));
		ev->ak_name = ak_name;
		ev->reset_count = tq.reset_count;
		ev->restart_count = tq.restart_count;
		ev->pcrs = &q->pcrs;
	}
	att_tpm_pub_release(&ak);
	att_machine_release(&m);
	return r == 0;
}

static void h_attest(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, attest_fields, ATT_ARRAY_SIZE(attest_fields));
	const char *nonce_id, *quote, *sig;
	struct att_node_result res;
	struct node_req nr = { 0 };
	struct quote_req *qr = NULL;
	struct att_quote_evidence ev = { 0 };
	uint8_t nonce[32];
	char err[512], ak_name[2 * ATT_TPM_MAX_NAME + 1];
	int r;

	if (!b)
		return;
	nonce_id = att_json_str(b, "nonce_id");
	quote = att_json_str(b, "pcr_quote");
	sig = att_json_str(b, "pcr_signature");
	/* cheap structural checks first, so a bad request never burns a nonce */
	if (!parse_node(svc, b, rs, "attestation", &nr))
		goto out;
	if (!nonce_id && svc->cfg->require_nonce) {
		att_resp_error(rs, 422, "nonce_id: ITL_REQUIRE_NONCE is enabled — include nonce_id from GET /api/v1/attest/challenge");
		goto out;
	}
	if (svc->cfg->require_quote && !(quote && *quote && sig && *sig)) {
		att_resp_error(rs, 422, "pcr_quote: ITL_REQUIRE_QUOTE is enabled — include pcr_quote and pcr_signature");
		goto out;
	}
	if ((quote && *quote) || (sig && *sig)) {
		qr = calloc(1, sizeof(*qr));
		if (!qr) {
			att_resp_error(rs, 503, "out of memory");
			goto out;
		}
		if (!parse_quote(b, rs, qr))
			goto out;
	} else if (json_object_get(b, "pcr_values") && !json_is_null(json_object_get(b, "pcr_values"))) {
		att_resp_error(rs, 422, "pcr_values: only meaningful together with pcr_quote and pcr_signature");
		goto out;
	}
	if (nonce_id) {
		r = att_nonce_consume(svc, nonce_id, nonce, err, sizeof(err));
		if (r < 0) {
			att_resp_from_err(rs, r, err);
			goto out;
		}
	}
	if (qr) {
		if (!verify_quote(svc, &nr.ek, qr, nonce, rs, &ev, ak_name))
			goto out;
		nr.cl.quote = &ev;
	}
	r = att_machine_attest(svc, &nr.ek, &nr.cl, &rq->actor, &res, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	{
		char *url = res.token[0] ? att_asprintf("%s/api/v1/config/%s", svc->cfg->service_url, res.token) : NULL;
		json_t *o = json_object();

		json_object_set_new(o, "machine_id", json_string(M(&res.m, MACHINE_ID)));
		json_object_set_new(o, "status", json_string(res.status));
		json_object_set_new(o, "hostname", jstr_or_null(M(&res.m, HOSTNAME)));
		json_object_set_new(o, "role", jstr_or_null(M(&res.m, ROLE)));
		json_object_set_new(o, "message", json_string(res.message));
		json_object_set_new(o, "action", json_string(res.action));
		json_object_set_new(o, "config_url", jstr_or_null(url));
		json_object_set_new(o, "config_token", res.token[0] ? json_string(res.token) : json_null());
		if (qr)
			json_object_set_new(o, "quote_verified", json_true());
		att_resp_json(rs, 200, o);
		att_resp_header(rs, "Cache-Control", "no-store");
		if (url) {
			att_wipe(url, strlen(url));
			free(url);
		}
	}
	att_node_result_release(&res);
out:
	if (qr) {
		quote_req_release(qr);
		free(qr);
	}
	node_req_release(&nr);
	json_decref(b);
}

/* ---- TPM: AK credential activation ------------------------------------------ */

static const struct att_jfield ak_activate_fields[] = {
	{ "ek_cert_pem", ATT_J_STRING, true, ATT_EK_MAX_B64 },
	{ "ek_source", ATT_J_STRING, false, 32 },
	{ "ek_fingerprint", ATT_J_STRING, false, 128 },
	{ "ak_public", ATT_J_STRING, false, 4096 },
	{ "ek_public", ATT_J_STRING, false, 4096 },
	/* the reference's and the seeds' fields: accepted, explained */
	{ "ak_pub", ATT_J_STRING, false, 8192 },
	{ "ak_pub_pem", ATT_J_STRING, false, 8192 },
	{ "quote", ATT_J_STRING, false, 16384 },
	{ "quote_sig", ATT_J_STRING, false, 16384 },
	{ "pcr_values", ATT_J_OBJECT, false, 0 },
	{ "nonce_id", ATT_J_STRING, false, 64 },
};

static bool id_shape_ok(const char *id);

static bool decode_field(json_t *b, const char *name, struct att_resp *rs, uint8_t **ret, size_t *ret_len)
{
	const char *v = att_json_str(b, name);

	*ret = NULL;
	*ret_len = 0;
	if (!v)
		return true;
	if (att_b64_decode(v, strlen(v), ret, ret_len) < 0 || *ret_len == 0) {
		att_resp_error(rs, 422, "%s: not valid base64 of a TPM2B_PUBLIC", name);
		return false;
	}
	return true;
}

static void h_ak_activate(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	const char *pem, *src, *fp;
	struct att_ek ek;
	struct att_ak_challenge ch = { 0 };
	uint8_t *akp = NULL, *ekp = NULL;
	size_t akl = 0, ekl = 0;
	char err[512];
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine not found");
		return;
	}
	b = att_req_json(rq, rs, ak_activate_fields, ATT_ARRAY_SIZE(ak_activate_fields));
	if (!b)
		return;
	pem = att_json_str(b, "ek_cert_pem");
	src = att_json_str(b, "ek_source");
	fp = att_json_str(b, "ek_fingerprint");
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert' or 'pub'");
		goto out;
	}
	if (att_ek_parse(pem, strlen(pem), src ? src : "cert", (time_t)att_now().sec, &ek, err, sizeof(err)) < 0) {
		att_resp_error(rs, 422, "ek_cert_pem: Invalid EK material: %s", err);
		goto out;
	}
	if (fp && !att_ek_fingerprint_matches(&ek, fp)) {
		att_resp_error(rs, 422, "ek_fingerprint: EK fingerprint mismatch");
		goto out;
	}
	if (!att_json_str(b, "ak_public")) {
		att_resp_error(rs, 422, "ak_public: required — credential activation needs the AK's TPM2B_PUBLIC (base64 of the file tpm2_createak -u writes); an SPKI PEM (ak_pub, ak_pub_pem) cannot prove that the key lives in this machine's TPM");
		goto out;
	}
	if (!decode_field(b, "ak_public", rs, &akp, &akl) || !decode_field(b, "ek_public", rs, &ekp, &ekl))
		goto out;
	r = att_ak_activation_start(svc, rq->params[0], &ek, akp, akl, ekp, ekl, &ch, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	{
		char *msg = att_asprintf("Recover the secret with TPM2_ActivateCredential and POST it as base64 to /api/v1/machines/%s/ak-activate/complete before %s",
					 rq->params[0], ch.expires_at);

		att_resp_json(rs, 200,
			      json_pack("{s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "machine_id", rq->params[0], "ak_accepted", 0,
					"activation_id", ch.activation_id, "ak_name", ch.ak_name, "credential_blob",
					ch.credential_blob, "id_object", ch.id_object, "encrypted_secret",
					ch.encrypted_secret, "expires_at", ch.expires_at, "message", msg ? msg : ""));
		att_resp_header(rs, "Cache-Control", "no-store");
		free(msg);
	}
out:
	att_ak_challenge_release(&ch);
	free(akp);
	free(ekp);
	json_decref(b);
}

static const struct att_jfield ak_complete_fields[] = {
	{ "activation_id", ATT_J_STRING, true, 64 },
	{ "secret", ATT_J_STRING, true, 256 },
};

static void h_ak_activate_complete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_machine m = { 0 };
	uint8_t *secret = NULL;
	size_t n = 0;
	char err[512];
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine not found");
		return;
	}
	b = att_req_json(rq, rs, ak_complete_fields, ATT_ARRAY_SIZE(ak_complete_fields));
	if (!b)
		return;
	if (att_b64_decode(att_json_str(b, "secret"), strlen(att_json_str(b, "secret")), &secret, &n) < 0 || n == 0) {
		att_resp_error(rs, 422, "secret: not valid base64");
		goto out;
	}
	r = att_ak_activation_complete(svc, rq->params[0], att_json_str(b, "activation_id"), secret, n, &rq->actor, &m,
				       err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	att_resp_json(rs, 200,
		      json_pack("{s:s,s:b,s:s,s:s,s:s}", "machine_id", M(&m, MACHINE_ID), "ak_accepted", 1, "ak_name",
				M(&m, AK_NAME), "ak_bound_at", M(&m, AK_BOUND_AT), "message",
				"AK bound to the machine by credential activation"));
	att_machine_release(&m);
out:
	if (secret) {
		att_wipe(secret, n);
		free(secret);
	}
	json_decref(b);
}

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

static void h_config_mac(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *mac = att_req_query(rq, "mac");
	char norm[32], *y = NULL;

	if (!mac) {
		att_resp_error(rs, 422, "mac: query parameter required");
		return;
	}
	if (!att_normalize_mac(mac, norm) || strcmp(norm, "unknown") == 0) {
		att_resp_error(rs, 422, "mac: expected a MAC address like 52:54:00:12:34:56");
		return;
	}
	/* never a full config by MAC: the MAC is not a secret */
	if (att_machineconfig_pending(svc->cfg->service_url, &y) < 0) {
		att_resp_error(rs, 500, "Internal Server Error");
		return;
	}
	att_resp_text(rs, 200, "text/plain; charset=utf-8", y, strlen(y));
}

/* ---- operator -------------------------------------------------------------- */

static bool parse_paging(struct att_req *rq, struct att_resp *rs, int64_t *page, int64_t *per_page,
			 int64_t def_per_page)
{
	const char *p = att_req_query(rq, "page"), *pp = att_req_query(rq, "per_page");
	uint64_t v;

	*page = 1;
	*per_page = def_per_page;
	if (p) {
		if (att_parse_u64(p, strlen(p), 1, 1000000000, &v) < 0) {
			att_resp_error(rs, 422, "page: must be an integer >= 1");
			return false;
		}
		*page = (int64_t)v;
	}
	if (pp) {
		if (att_parse_u64(pp, strlen(pp), 1, 200, &v) < 0) {
			att_resp_error(rs, 422, "per_page: must be an integer between 1 and 200");
			return false;
		}
		*per_page = (int64_t)v;
	}
	return true;
}

static void h_machines_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *status = att_req_query(rq, "status"), *role = att_req_query(rq, "role");
	const char *hostname = att_req_query(rq, "hostname");
	int64_t page, per_page;
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *arr;
	int r;

	if (status && !att_valid_status(status)) {
		att_resp_error(rs, 422, "status: must be one of pending_approval, registered, attested, locked, revoked");
		return;
	}
	if (role && !att_role_valid(role)) {
		att_resp_error(rs, 422, "role: must be one of controlplane, worker-infra, worker-app");
		return;
	}
	if (hostname && strlen(hostname) > 253) {
		att_resp_error(rs, 422, "hostname: longer than 253 characters");
		return;
	}
	if (!parse_paging(rq, rs, &page, &per_page, 1000000000))
		return;
	if (!att_req_query(rq, "per_page") && att_req_query(rq, "page"))
		per_page = 50;
	c = att_db_acquire(svc->db);
	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	r = att_dbc_query(c, &s,
			  "SELECT " ATT_MACHINE_COLS " FROM machines"
			  " WHERE (CAST(? AS TEXT) IS NULL OR status = ?) AND (CAST(? AS TEXT) IS NULL OR role = ?)"
			  " AND (CAST(? AS TEXT) IS NULL OR hostname = ?) ORDER BY id LIMIT ? OFFSET ?",
			  "ssssssii", status, status, role, role, hostname, hostname, per_page,
			  (page - 1) * per_page);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1) {
		struct att_machine m = { 0 };

		m.id = att_stmt_int(s, 0);
		m.wipe_pending = att_stmt_int(s, 1) != 0;
		for (int i = 0; i < _MC_MAX; i++)
			m.col[i] = (char *)att_stmt_text(s, i + 2);
		json_array_append_new(arr, att_machine_detail(&m));
	}
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	att_resp_json(rs, 200, arr);
}

static bool id_shape_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

static void h_machine_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *id = rq->params[0];
	struct att_machine m = { 0 };
	struct att_dbc *c;
	int r;

	if (!id_shape_ok(id)) {
		att_resp_error(rs, 404, "Machine %.64s not found", id);
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	r = att_machine_get(c, id, &m);
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_resp_error(rs, 404, "Machine %s not found", id);
		return;
	}
	if (r < 0) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	att_resp_json(rs, 200, att_machine_detail(&m));
	att_machine_release(&m);
}

static void reply_machine(struct att_resp *rs, int r, struct att_machine *m, const char *err)
{
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, att_machine_detail(m));
	att_machine_release(m);
}

static const struct att_jfield approve_fields[] = {
	{ "role", ATT_J_STRING, true, 64 },
	{ "hostname", ATT_J_STRING, false, 253 },
	{ "assigned_ip", ATT_J_STRING, false, 64 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_approve(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	struct att_approval a = { 0 };
	struct att_machine m = { 0 };
	char cidr[64], err[512];
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, approve_fields, ATT_ARRAY_SIZE(approve_fields));
	if (!b)
		return;
	a.role = att_json_str(b, "role");
	a.hostname = att_json_str(b, "hostname");
	a.reason = att_json_str(b, "reason");
	if (!att_role_valid(a.role)) {
		att_resp_error(rs, 422, "role: must be one of controlplane, worker-infra, worker-app");
		goto out;
	}
	if (a.hostname && !att_valid_hostname(a.hostname)) {
		att_resp_error(rs, 422, "hostname: must be an RFC 1123 host name (letters, digits, '-', dot-separated labels of at most 63)");
		goto out;
	}
	if (att_json_str(b, "assigned_ip")) {
		if (!att_normalize_cidr(att_json_str(b, "assigned_ip"), cidr)) {
			att_resp_error(rs, 422, "assigned_ip: expected an IPv4 or IPv6 address with optional /prefix, e.g. 10.0.1.13/24");
			goto out;
		}
		a.assigned_ip = cidr;
	}
	{
		struct att_vote_status vote;

		r = att_machine_approve(svc, rq->params[0], &a, &rq->actor, &m, &vote, err, sizeof(err));
		if (r == 0 && vote.pending) {
			char *msg = att_asprintf("Approval vote recorded for operator '%s'. %d more operator(s) must also approve before the machine is registered.",
						 rq->actor.name, vote.required - vote.received);

			att_resp_json(rs, 202, json_pack("{s:s,s:s,s:s,s:i,s:i,s:s}", "machine_id", M(&m, MACHINE_ID),
							  "status", "pending_second_approval", "message", msg ? msg : "",
							  "approvals_received", vote.received, "approvals_required",
							  vote.required, "expires_at", vote.expires_at));
			free(msg);
			att_machine_release(&m);
		} else {
			reply_machine(rs, r, &m, err);
		}
	}
out:
	json_decref(b);
}

static void h_approvals(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr = NULL;
	char err[256];
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	r = att_machine_votes(svc, rq->params[0], &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, arr);
}

static const struct att_jfield reason_fields[] = {
	{ "reason", ATT_J_STRING, false, 1024 },
};

static const struct att_jfield revoke_fields[] = {
	{ "wipe", ATT_J_BOOL, false, 0 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_lock(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, reason_fields, ATT_ARRAY_SIZE(reason_fields));
	if (!b)
		return;
	r = att_machine_lock(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, &m, err, sizeof(err));
	reply_machine(rs, r, &m, err);
	json_decref(b);
}

static void h_unlock(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, reason_fields, ATT_ARRAY_SIZE(reason_fields));
	if (!b)
		return;
	r = att_machine_unlock(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, &m, err, sizeof(err));
	reply_machine(rs, r, &m, err);
	json_decref(b);
}

static void h_revoke(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_machine m = { 0 };
	char err[512];
	json_t *b;
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	b = att_req_json(rq, rs, revoke_fields, ATT_ARRAY_SIZE(revoke_fields));
	if (!b)
		return;
	r = att_machine_revoke(svc, rq->params[0], att_json_bool(b, "wipe", false), att_json_str(b, "reason"),
			       &rq->actor, &m, err, sizeof(err));
	reply_machine(rs, r, &m, err);
	json_decref(b);
}

static const struct att_jfield import_fields[] = {
	{ "ek_fingerprint", ATT_J_STRING, true, 128 },
	{ "ek_cert_pem", ATT_J_STRING, false, ATT_EK_MAX_B64 },
	{ "ek_source", ATT_J_STRING, false, 32 },
	{ "machine_id", ATT_J_STRING, false, 64 },
	{ "role", ATT_J_STRING, false, 64 },
	{ "hw_uuid", ATT_J_STRING, false, 256 },
	{ "hw_mac", ATT_J_STRING, false, 64 },
	{ "hw_serial", ATT_J_STRING, false, 256 },
	{ "hw_product", ATT_J_STRING, false, 256 },
	{ "cluster_id", ATT_J_STRING, false, 64 },
	{ "install_mode", ATT_J_STRING, false, 64 },
	{ "installed_at", ATT_J_STRING, false, 64 },
};

static void h_import(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b = att_req_json(rq, rs, import_fields, ATT_ARRAY_SIZE(import_fields));
	struct att_receipt rc = { 0 };
	struct att_machine m = { 0 };
	char err[512], mac[32];
	const char *src;
	int r;

	if (!b)
		return;
	rc.ek_fingerprint = att_json_str(b, "ek_fingerprint");
	rc.ek_b64 = att_json_str(b, "ek_cert_pem");
	rc.machine_id = att_json_str(b, "machine_id");
	rc.role = att_json_str(b, "role");
	rc.hw_uuid = att_json_str(b, "hw_uuid");
	rc.hw_serial = att_json_str(b, "hw_serial");
	rc.hw_product = att_json_str(b, "hw_product");
	rc.cluster_id = att_json_str(b, "cluster_id");
	rc.install_mode = att_json_str(b, "install_mode");
	rc.installed_at = att_json_str(b, "installed_at");
	src = att_json_str(b, "ek_source");
	if (!att_valid_fingerprint(rc.ek_fingerprint)) {
		att_resp_error(rs, 422, "ek_fingerprint: must be a 64-char (SHA-256) or 96-char (SHA-384) hex digest");
		goto out;
	}
	if (src && strcmp(src, "cert") != 0 && strcmp(src, "pub") != 0 && strcmp(src, "offline-import") != 0) {
		att_resp_error(rs, 422, "ek_source: must be 'cert', 'pub' or 'offline-import'");
		goto out;
	}
	if (rc.ek_b64 && src && strcmp(src, "offline-import") == 0)
		src = "cert";
	rc.ek_source = src;
	if (rc.machine_id && !id_shape_ok(rc.machine_id)) {
		att_resp_error(rs, 422, "machine_id: 1-64 characters of letters, digits, '-', '_' or '.'");
		goto out;
	}
	if (rc.role && !att_role_valid(rc.role)) {
		att_resp_error(rs, 422, "role: must be one of controlplane, worker-infra, worker-app");
		goto out;
	}
	if (rc.cluster_id && !att_valid_cluster_id(rc.cluster_id)) {
		att_resp_error(rs, 422, "cluster_id: must match ^[a-z0-9][a-z0-9-]{0,62}$");
		goto out;
	}
	if (att_json_str(b, "hw_mac")) {
		if (!att_normalize_mac(att_json_str(b, "hw_mac"), mac)) {
			att_resp_error(rs, 422, "hw_mac: expected a MAC address like 52:54:00:12:34:56");
			goto out;
		}
		rc.hw_mac = mac;
	}
	r = att_machine_import(svc, &rc, &rq->actor, &m, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		goto out;
	}
	att_resp_json(rs, 200, json_pack("{s:s,s:s,s:s,s:n,s:s}", "machine_id", M(&m, MACHINE_ID), "role",
					  M(&m, ROLE), "status", M(&m, STATUS), "config_url", "message",
					  "Machine imported from offline receipt — ready for attestation"));
	att_machine_release(&m);
out:
	json_decref(b);
}

#define AUDIT_COLS "id, timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash"

/* One audit_log row selected as AUDIT_COLS, as the API shows it. */
static json_t *audit_row_json(struct att_stmt *s)
{
	return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)att_stmt_int(s, 0), "timestamp",
			 jstr_or_null(att_stmt_text(s, 1)), "operator_cn", jstr_or_null(att_stmt_text(s, 2)), "action",
			 jstr_or_null(att_stmt_text(s, 3)), "machine_id", jstr_or_null(att_stmt_text(s, 4)),
			 "prev_state", jstr_or_null(att_stmt_text(s, 5)), "new_state", jstr_or_null(att_stmt_text(s, 6)),
			 "detail", jstr_or_null(att_stmt_text(s, 7)), "prev_hash", jstr_or_null(att_stmt_text(s, 8)),
			 "entry_hash", jstr_or_null(att_stmt_text(s, 9)));
}

static void h_audit_list(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	const char *mid = att_req_query(rq, "machine_id"), *action = att_req_query(rq, "action");
	int64_t page, per_page;
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *arr;
	int r;

	if (!parse_paging(rq, rs, &page, &per_page, 50))
		return;
	if (mid && strlen(mid) > 64) {
		att_resp_error(rs, 422, "machine_id: longer than 64 characters");
		return;
	}
	if (action && strlen(action) > 64) {
		att_resp_error(rs, 422, "action: longer than 64 characters");
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	r = att_dbc_query(c, &s,
			  "SELECT " AUDIT_COLS " FROM audit_log"
			  " WHERE (CAST(? AS TEXT) IS NULL OR machine_id = ?) AND (CAST(? AS TEXT) IS NULL OR action = ?)"
			  " ORDER BY id DESC LIMIT ? OFFSET ?",
			  "ssssii", mid, mid, action, action, per_page, (page - 1) * per_page);
	if (r < 0) {
		att_db_release(svc->db, c);
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	arr = json_array();
	while ((r = att_stmt_next(s)) == 1)
		json_array_append_new(arr, audit_row_json(s));
	att_stmt_done(s);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(arr);
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	att_resp_json(rs, 200, arr);
}

static void h_audit_verify(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_audit_verify v;
	struct att_dbc *c = att_db_acquire(svc->db);
	int r;

	(void)rq;
	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	r = att_audit_verify(c, &v);
	att_db_release(svc->db, c);
	if (r < 0) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	att_resp_json(rs, 200,
		      json_pack("{s:b,s:I,s:o,s:o,s:o}", "valid", v.valid, "entries", (json_int_t)v.entries, "root_hash",
				v.root_hash[0] ? json_string(v.root_hash) : json_null(), "first_invalid_id",
				v.first_invalid_id ? json_integer(v.first_invalid_id) : json_null(), "error",
				v.error[0] ? json_string(v.error) : json_null()));
}

/* ---- PCR policies ------------------------------------------------------------- */

static bool role_param_ok(const char *role, struct att_resp *rs)
{
	if (!att_role_valid(role)) {
		att_resp_error(rs, 404, "No such role '%.64s' — roles are controlplane, worker-infra, worker-app", role);
		return false;
	}
	return true;
}

static void h_pcr_policies(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *arr;
	char err[256];
	int r;

	(void)rq;
	r = att_pcr_policy_list(svc, &arr, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(arr), "policies", arr));
}

static void h_pcr_policy_get(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o;
	char err[256];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	r = att_pcr_policy_get(svc, rq->params[0], &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	att_resp_json(rs, 200, o);
}

static const struct att_jfield policy_put_fields[] = {
	{ "pcrs", ATT_J_OBJECT, true, 0 },
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_pcr_policy_put(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b, *o;
	char err[512];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	b = att_req_json(rq, rs, policy_put_fields, ATT_ARRAY_SIZE(policy_put_fields));
	if (!b)
		return;
	r = att_pcr_policy_put(svc, rq->params[0], json_object_get(b, "pcrs"), att_json_str(b, "reason"), &rq->actor,
			       &o, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, o);
	json_decref(b);
}

static const struct att_jfield policy_delete_fields[] = {
	{ "reason", ATT_J_STRING, false, 1024 },
};

static void h_pcr_policy_delete(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *b;
	char err[256];
	int r;

	if (!role_param_ok(rq->params[0], rs))
		return;
	b = att_req_json(rq, rs, policy_delete_fields, ATT_ARRAY_SIZE(policy_delete_fields));
	if (!b)
		return;
	r = att_pcr_policy_delete(svc, rq->params[0], att_json_str(b, "reason"), &rq->actor, err, sizeof(err));
	if (r < 0)
		att_resp_from_err(rs, r, err);
	else
		att_resp_json(rs, 200, json_pack("{s:s,s:b}", "role", rq->params[0], "deleted", 1));
	json_decref(b);
}

/* ---- service endpoints -------------------------------------------------------- */

static void h_healthz(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)svc;
	(void)rq;
	att_resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)rq;
	if (att_db_ping(svc->db) < 0) {
		att_resp_error(rs, 503, "Database unreachable");
		return;
	}
	att_resp_json(rs, 200, json_pack("{s:s}", "status", "ready"));
}

/* GET /api/v1/machines/{id}/offline-bundle */
static void h_offline_bundle(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o = NULL;
	char err[512] = "";
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	r = att_machine_offline_bundle(svc, rq->params[0], &rq->actor, &o, err, sizeof(err));
	if (r < 0) {
		att_resp_from_err(rs, r, err);
		return;
	}
	add_boot_urls(svc, o);
	att_resp_json(rs, 200, o);
	att_resp_header(rs, "Cache-Control", "no-store");
}

/* GET /api/v1/machines/{id}/audit-report: signed PDF */
#define REPORT_MAX_ENTRIES 20000

static void h_audit_report(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_audit_verify v;
	struct att_machine m = { 0 };
	struct att_dbc *c;
	struct att_stmt *s;
	json_t *entries = NULL, *detail = NULL;
	EVP_PKEY *key;
	X509 *cert, *ca;
	char *pdf = NULL, disp[160];
	size_t len = 0;
	int r;

	if (!id_shape_ok(rq->params[0])) {
		att_resp_error(rs, 404, "Machine %.64s not found", rq->params[0]);
		return;
	}
	if (!svc->ca || att_ca_report_signer(svc->ca, &key, &cert, &ca) < 0) {
		att_resp_error(rs, 503, "Report signing key unavailable");
		return;
	}
	c = att_db_acquire(svc->db);
	if (!c) {
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	r = att_machine_get(c, rq->params[0], &m);
	if (r == ATT_E_NOTFOUND) {
		att_db_release(svc->db, c);
		att_resp_error(rs, 404, "Machine %s not found", rq->params[0]);
		return;
	}
	if (r == 0)
		r = att_dbc_query(c, &s,
				  "SELECT " AUDIT_COLS " FROM audit_log WHERE machine_id = ? ORDER BY id LIMIT ?",
				  "si", rq->params[0], (int64_t)REPORT_MAX_ENTRIES + 1);
	if (r == 0) {
		entries = json_array();
		while ((r = att_stmt_next(s)) == 1)
			json_array_append_new(entries, audit_row_json(s));
		att_stmt_done(s);
	}
	if (r == 0)
		r = att_audit_verify(c, &v);
	att_db_release(svc->db, c);
	if (r < 0) {
		json_decref(entries);
		att_machine_release(&m);
		att_resp_error(rs, 503, "Database unavailable — try again");
		return;
	}
	detail = att_machine_detail(&m);
	{
		bool truncated = json_array_size(entries) > REPORT_MAX_ENTRIES;
		struct att_report_input in = {
			.machine = detail, .entries = entries, .truncated = truncated, .chain = &v,
			.generated_by = rq->actor.name, .service_url = svc->cfg->service_url,
		};

		if (truncated)
			json_array_remove(entries, REPORT_MAX_ENTRIES);
		r = att_audit_report_pdf(&in, key, cert, ca, &pdf, &len);
	}
	json_decref(detail);
	json_decref(entries);
	if (r < 0) {
		att_log_error("attestd.api", "audit report for %s failed: %s", rq->params[0], att_strerror(r));
		att_resp_error(rs, 500, "Cannot build the audit report");
		att_machine_release(&m);
		return;
	}
	att_log_info("attestd.api", "Audit report for %s (%zu bytes) made for %s", rq->params[0], len, rq->actor.name);
	att_resp_text(rs, 200, "application/pdf", pdf, len);
	snprintf(disp, sizeof(disp), "attachment; filename=\"machine-audit-%s.pdf\"", M(&m, MACHINE_ID));
	att_machine_release(&m);
	att_resp_header_copy(rs, "Content-Disposition", disp);
	att_resp_header(rs, "Cache-Control", "no-store");
}

/* GET /api/v1/auth/whoami: who the service thinks the caller is. */
static void h_whoami(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "identity", rq->actor_name, "method", rq->auth_method,
			      "operator", rq->is_operator);

	if (!o) {
		att_resp_error(rs, 500, "Internal Server Error");
		return;
	}
	if (rq->oidc_roles) {
		json_object_set(o, "roles", rq->oidc_roles);
		json_object_set_new(o, "expires_at", json_integer(rq->oidc_exp));
		json_object_set_new(o, "required_role", json_string(svc->cfg->oidc_operator_role));
	}
	att_resp_json(rs, 200, o);
}

static void oidc_metrics(const struct att_svc *svc, struct att_buf *b)
{
	struct att_oidc_stats st;

	if (!svc->oidc)
		return;
	att_oidc_stats(svc->oidc, &st);
	(void)att_buf_printf(b,
			     "# HELP attestd_oidc_jwks_fetches_total OIDC discovery+JWKS fetches by result.\n"
			     "# TYPE attestd_oidc_jwks_fetches_total counter\n"
			     "attestd_oidc_jwks_fetches_total{result=\"ok\"} %llu\n"
			     "attestd_oidc_jwks_fetches_total{result=\"error\"} %llu\n"
			     "# HELP attestd_oidc_tokens_total OIDC bearer tokens by verdict.\n"
			     "# TYPE attestd_oidc_tokens_total counter\n"
			     "attestd_oidc_tokens_total{result=\"valid\"} %llu\n"
			     "attestd_oidc_tokens_total{result=\"rejected\"} %llu\n"
			     "# HELP attestd_oidc_jwks_keys Signing keys in the cached JWKS.\n"
			     "# TYPE attestd_oidc_jwks_keys gauge\n"
			     "attestd_oidc_jwks_keys %zu\n",
			     (unsigned long long)st.fetch_ok, (unsigned long long)st.fetch_failed,
			     (unsigned long long)st.tokens_ok, (unsigned long long)st.tokens_rejected, st.nkeys);
}

static void h_metrics(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	struct att_buf b;
	struct att_dbc *c;
	char *body;
	size_t len;

	(void)rq;
	att_buf_init(&b, 4 * 1024 * 1024);
	(void)att_metrics_render(&b);
	oidc_metrics(svc, &b);
	c = att_db_acquire(svc->db);
	if (c) {
		static const char *st[] = { "pending_approval", "registered", "attested", "locked", "revoked" };
		int64_t counts[5] = { 0 };
		struct att_stmt *s;

		if (att_dbc_query(c, &s, "SELECT status, COUNT(*) FROM machines GROUP BY status", "") == 0) {
			while (att_stmt_next(s) == 1)
				for (int i = 0; i < 5; i++)
					if (strcmp(att_stmt_text(s, 0), st[i]) == 0)
						counts[i] = att_stmt_int(s, 1);
			att_stmt_done(s);
		}
		att_db_release(svc->db, c);
		(void)att_buf_puts(&b, "# HELP attestd_machines Machines by lifecycle status.\n# TYPE attestd_machines gauge\n");
		for (int i = 0; i < 5; i++)
			(void)att_buf_printf(&b, "attestd_machines{status=\"%s\"} %lld\n", st[i], (long long)counts[i]);
	}
	body = att_buf_steal(&b, &len);
	att_resp_text(rs, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static void h_extensions(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs)
{
	(void)svc;
	(void)rq;
	att_resp_json(rs, 200, json_pack("{s:[],s:i}", "extensions", "total", 0));
}

struct att_route att_routes[] = {
	{ "GET", "/healthz", AUTH_NONE, h_healthz, 0 },
	{ "GET", "/readyz", AUTH_NONE, h_readyz, 0 },
	{ "GET", "/metrics", AUTH_NONE, h_metrics, 0 },
	{ "GET", "/api/v1/extensions", AUTH_NONE, h_extensions, 0 },
	{ "GET", "/api/v1/auth/whoami", AUTH_IDENTITY, h_whoami, 0 },
	{ "POST", "/api/v1/register", AUTH_OPTIONAL, h_register, 0 },
	{ "POST", "/api/v1/self-register", AUTH_NONE, h_self_register, 0 },
	{ "GET", "/api/v1/attest/challenge", AUTH_NONE, h_challenge, 0 },
	{ "POST", "/api/v1/attest", AUTH_NONE, h_attest, 0 },
	{ "GET", "/api/v1/config", AUTH_NONE, h_config_mac, 0 },
	{ "GET", "/api/v1/config/{token}", AUTH_NONE, h_config_token, 0 },
	{ "GET", "/api/v1/machines", AUTH_OPERATOR, h_machines_list, 0 },
	{ "POST", "/api/v1/machines/import", AUTH_OPERATOR, h_import, 0 },
	{ "GET", "/api/v1/machines/{id}", AUTH_OPERATOR, h_machine_get, 0 },
	{ "POST", "/api/v1/machines/{id}/approve", AUTH_OPERATOR, h_approve, 0 },
	{ "GET", "/api/v1/machines/{id}/approvals", AUTH_OPERATOR, h_approvals, 0 },
	{ "GET", "/api/v1/machines/{id}/offline-bundle", AUTH_OPERATOR, h_offline_bundle, 0 },
	{ "GET", "/api/v1/machines/{id}/audit-report", AUTH_OPERATOR, h_audit_report, 0 },
	{ "POST", "/api/v1/machines/{id}/lock", AUTH_OPERATOR, h_lock, 0 },
	{ "POST", "/api/v1/machines/{id}/unlock", AUTH_OPERATOR, h_unlock, 0 },
	{ "POST", "/api/v1/machines/{id}/revoke", AUTH_OPERATOR, h_revoke, 0 },
	{ "POST", "/api/v1/machines/{id}/ak-activate", AUTH_NONE, h_ak_activate, 0 },
	{ "POST", "/api/v1/machines/{id}/ak-activate/complete", AUTH_NONE, h_ak_activate_complete, 0 },
	{ "GET", "/api/v1/pcr-policies", AUTH_OPERATOR, h_pcr_policies, 0 },
	{ "GET", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_get, 0 },
	{ "PUT", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_put, 0 },
	{ "DELETE", "/api/v1/pcr-policies/{role}", AUTH_OPERATOR, h_pcr_policy_delete, 0 },
	{ "GET", "/api/v1/audit", AUTH_OPERATOR, h_audit_list, 0 },
	{ "GET", "/api/v1/audit/verify", AUTH_OPERATOR, h_audit_verify, 0 },
};

const size_t att_nroutes = ATT_ARRAY_SIZE(att_routes);
