/* act.c - what the agent does with the service's attest answer:
 * apply-config, lock, wipe, revoked (see agent.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "agent/act.h"
#include "agent/exec.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/envelope.h"
#include "obs/log.h"

#define LOGR "attest-agent"
#define ENC_MEDIA "application/vnd.itl.config.encrypted+json"

static void now_iso(char out[40])
{
	att_time_iso_utc(att_now(), out);
}

static void did(struct att_agent *a, const char *action)
{
	snprintf(a->st.last_action, sizeof(a->st.last_action), "%s", action);
	now_iso(a->st.last_action_at);
}

/* The config URL must be the service's own config endpoint. */
static bool config_url_ok(struct att_agent *a, const char *url, char *why, size_t wl)
{
	struct att_url cu, su;
	size_t pl;

	if (att_url_parse(url, &cu, why, wl) < 0)
		return false;
	if (att_url_parse(a->o->server, &su, why, wl) < 0)
		return false;
	if (!att_url_same_origin(&cu, &su)) {
		snprintf(why, wl, "it is not on the service %s", a->o->server);
		return false;
	}
	pl = strcmp(su.path, "/") == 0 ? 0 : strlen(su.path);
	if (strncmp(cu.path, su.path, pl) != 0 || strncmp(cu.path + pl, "/api/v1/config/", 15) != 0 ||
	    strchr(cu.path + pl + 15, '/') || strchr(cu.path, '?') || cu.path[pl + 15] == '\0') {
		snprintf(why, wl, "it is not the service's /api/v1/config/<token> endpoint");
		return false;
	}
	return true;
}

/* The TPM-bound envelope: ActivateCredential recovers the AES key. */
enum att_poll att_agent_open_envelope(struct att_agent *a, const struct att_http_resp *r, const char *what, uint8_t **ret,
				      size_t *ret_len)
{
	struct att_answer_envelope e;
	struct att_cred_blob cb;
	uint8_t key[64];
	size_t kl = 0;
	char err[512];
	int rc;

	if (att_answer_envelope_parse(r->body, r->body_len, &e, err, sizeof(err)) < 0)
		goto refuse;
	if (strcmp(e.machine_id, a->st.machine_id) != 0) {
		snprintf(err, sizeof(err), "machine_id: the envelope is for machine %s", e.machine_id);
		att_answer_envelope_release(&e);
		goto refuse;
	}
	rc = att_answer_cred_blob_split(e.blob, e.blob_len, &cb, err, sizeof(err));
	if (rc == 0)
		rc = att_tpmdev_activate(a->dev, cb.id_object, cb.id_object_len, cb.secret, cb.secret_len, key, &kl, err,
					 sizeof(err));
	if (rc == 0 && kl != 32) {
		snprintf(err, sizeof(err), "the envelope key is %zu bytes, not 32", kl);
		rc = ATT_E_CRYPTO;
	}
	if (rc == 0 && (rc = att_envelope_gcm_open(key, e.iv, e.ct, e.ct_len, ret, ret_len)) < 0)
		snprintf(err, sizeof(err), "AES-256-GCM: the ciphertext does not authenticate with the TPM-recovered key");
	att_wipe(key, sizeof(key));
	att_answer_envelope_release(&e);
	if (rc == 0)
		return ATT_POLL_OK;
refuse:
	return att_agent_refuse(a, what, err);
}

static enum att_poll run_apply(struct att_agent *a, const char *url, const uint8_t *cfg, size_t len)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char err[512];
	int st = -1;

	if (att_agent_exec(a->o->apply_argv, cfg, len, a->o->cmd_timeout, &st, err, sizeof(err)) < 0 || st != 0) {
		if (st >= 0)
			snprintf(err, sizeof(err), "%s exited with status %d", a->o->apply_argv[0], st);
		att_log_error(LOGR, "apply-config failed (%s); retrying with the same config URL while its token is valid",
			      err);
		att_agent_note(a, "apply: %s", err);
		snprintf(a->st.pending_config_url, sizeof(a->st.pending_config_url), "%s", url);
		return ATT_POLL_FAILED;
	}
	SHA256(cfg, len, md);
	att_hex_encode(md, sizeof(md), a->st.config_sha256);
	now_iso(a->st.config_applied_at);
	a->st.pending_config_url[0] = '\0';
	did(a, "apply-config");
	att_log_info(LOGR, "config applied: %zu bytes, sha256 %s", len, a->st.config_sha256);
	return ATT_POLL_OK;
}

static enum att_poll apply_config(struct att_agent *a, const char *url)
{
	static const char *enc[] = { "Accept: " ENC_MEDIA, NULL }, *plain[] = { "Accept: application/yaml", NULL };
	struct att_http_resp r;
	char why[256];
	uint8_t *pt = NULL;
	size_t pl = 0;
	enum att_poll p;

	if (!config_url_ok(a, url, why, sizeof(why))) {
		a->st.pending_config_url[0] = '\0';
		return att_agent_refuse(a, "config_url", why);
	}
	p = att_agent_call(a, "GET", url, a->st.ak_bound ? enc : plain, NULL, ATT_ANSWER_MAX_CONFIG * 4 / 3 + 4096, &r,
			   "config");
	if (p == ATT_POLL_RETRY) {
		snprintf(a->st.pending_config_url, sizeof(a->st.pending_config_url), "%s", url);
		goto out;
	}
	if (p != ATT_POLL_OK) {
		a->st.pending_config_url[0] = '\0';	/* gone (404/410) or refused for good */
		goto out;
	}
	a->st.pending_config_url[0] = '\0';
	if (strcmp(r.content_type, ENC_MEDIA) == 0) {
		p = att_agent_open_envelope(a, &r, "config envelope", &pt, &pl);
		if (p != ATT_POLL_OK)
			goto out;
	} else if (a->st.ak_bound && !a->o->allow_plaintext) {
		att_log_error(LOGR, "plaintext config refused, nothing applied: machine %s has a bound AK, so its config must come sealed to this TPM (--allow-plaintext accepts it)",
			      a->st.machine_id);
		att_agent_note(a, "plaintext config refused");
		p = ATT_POLL_REFUSED;
		goto out;
	} else {
		pt = (uint8_t *)r.body;
		pl = r.body_len;
		r.body = NULL;
	}
	p = run_apply(a, url, pt, pl);
out:
	if (pt) {
		att_wipe(pt, pl);
		free(pt);
	}
	att_http_resp_release(&r);
	return p;
}

static enum att_poll wipe(struct att_agent *a)
{
	char err[512];
	int st = -1;

	if (a->st.wipe_started_at[0]) {
		att_log_warning(LOGR, "wipe ordered again; the reset command already ran at %s — not again",
				a->st.wipe_started_at);
		return ATT_POLL_OK;
	}
	/* recorded before it runs: exactly once, even if the reset kills us */
	now_iso(a->st.wipe_started_at);
	did(a, "wipe");
	if (att_agent_save(a) < 0)
		return ATT_POLL_FAILED;
	att_log_warning(LOGR, "wipe ordered by the service for machine %s: running the reset command (%s)",
			a->st.machine_id, a->o->reset_argv[0]);
	if (att_agent_exec(a->o->reset_argv, NULL, 0, a->o->cmd_timeout, &st, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "reset command: %s", err);
		att_agent_note(a, "reset: %s", err);
		return ATT_POLL_FAILED;
	}
	a->st.wipe_exit = st;
	if (st != 0) {
		att_log_error(LOGR, "reset command exited with status %d", st);
		att_agent_note(a, "reset exited with %d", st);
		return ATT_POLL_FAILED;
	}
	att_log_info(LOGR, "reset command done");
	return ATT_POLL_OK;
}

enum att_poll att_agent_act(struct att_agent *a, const struct att_answer_attest *ans, bool quoted)
{
	bool locked = strcmp(ans->status, "locked") == 0;
	enum att_poll p = ATT_POLL_OK;

	if (a->st.machine_id[0] && strcmp(ans->machine_id, a->st.machine_id) != 0) {
		att_log_error(LOGR, "attest: the answer is for machine %s, this node is %s — refused, nothing applied",
			      ans->machine_id, a->st.machine_id);
		att_agent_note(a, "answer for another machine");
		return ATT_POLL_REFUSED;
	}
	if (!a->st.machine_id[0])
		att_log_info(LOGR, "attest: this node is machine %s", ans->machine_id);
	memcpy(a->st.machine_id, ans->machine_id, sizeof(ans->machine_id));
	if (quoted && !ans->quote_verified)
		att_log_warning(LOGR, "attest: the service did not confirm the quote");
	if (strcmp(a->st.status, ans->status) != 0 || strcmp(ans->action, "none") != 0)
		att_log_info(LOGR, "attest: status %s, action %s%s", ans->status, ans->action,
			     quoted ? " (quote verified)" : "");
	memcpy(a->st.status, ans->status, sizeof(ans->status));
	snprintf(a->st.role, sizeof(a->st.role), "%s", ans->role);
	snprintf(a->st.hostname, sizeof(a->st.hostname), "%s", ans->hostname);
	now_iso(a->st.last_attest_at);
	if (locked && !a->st.locked) {
		att_log_warning(LOGR, "machine locked by the service: nothing is applied until it is unlocked");
		did(a, "lock");
	} else if (!locked && a->st.locked) {
		att_log_info(LOGR, "machine unlocked: resuming");
	}
	a->st.locked = locked;
	if (strcmp(ans->action, "apply-config") == 0)
		p = apply_config(a, ans->config_url);
	else if (a->st.pending_config_url[0] && strstr(ans->status, "attested"))
		p = apply_config(a, a->st.pending_config_url);
	else if (strcmp(ans->action, "wipe") == 0)
		p = wipe(a);
	if (strcmp(ans->status, "revoked") == 0) {
		a->st.revoked = true;
		a->st.pending_config_url[0] = '\0';
		att_log_warning(LOGR, "machine %s is revoked: the agent stops contacting the service", a->st.machine_id);
		return ATT_POLL_STOP;
	}
	return p;
}
