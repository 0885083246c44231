/* poll.c - one poll of the on-node loop: register, bind the AK, quote,
 * attest (see agent.h).  What the agent does with the answer is in
 * act.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/act.h"
#include "agent/secrets.h"
#include "agent/agent.h"
#include "agent/answer.h"
#include "base/err.h"
#include "base/util.h"
#include "obs/log.h"

#define LOGR "attest-agent"

void att_agent_release(struct att_agent *a)
{
	att_agent_node_release(&a->node);
	att_tpmdev_close(a->dev);
	a->dev = NULL;
	a->have_node = false;
}

int att_agent_save(struct att_agent *a)
{
	char err[512];

	if (att_agent_state_save(a->o->state_dir, &a->st, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "cannot save the state: %s", err);
		return -1;
	}
	return 0;
}

void att_agent_note(struct att_agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->st.last_error, sizeof(a->st.last_error), fmt, ap);
	va_end(ap);
}

enum att_poll att_agent_refuse(struct att_agent *a, const char *what, const char *why)
{
	att_log_error(LOGR, "%s refused, nothing applied: %s", what, why);
	att_agent_note(a, "%s: %s", what, why);
	return ATT_POLL_REFUSED;
}

enum att_poll att_agent_call(struct att_agent *a, const char *method, const char *url, const char *const *headers,
			     const char *body, size_t max, struct att_http_resp *r, const char *what)
{
	struct att_http_req rq = { .method = method, .url = url, .headers = headers, .body = body,
				   .body_len = body ? strlen(body) : 0, .max_body = max };
	char err[512], detail[300];
	int rc;

	memset(r, 0, sizeof(*r));
	a->retry_after = -1;
	rc = att_http_exchange(&a->o->http, &rq, r, err, sizeof(err));
	if (rc == ATT_E_PARSE || rc == ATT_E_LIMIT) {
		char w[64];

		snprintf(w, sizeof(w), "%s: answer", what);
		return att_agent_refuse(a, w, err);
	}
	if (rc == ATT_E_CRYPTO) {
		/* not trusted: as good as unreachable (retried), but an error */
		att_log_error(LOGR, "%s: %s", what, err);
		att_agent_note(a, "%s: %s", what, err);
		return ATT_POLL_RETRY;
	}
	if (rc < 0) {
		att_log_warning(LOGR, "%s: service unreachable: %s", what, err);
		att_agent_note(a, "%s: %s", what, err);
		return ATT_POLL_RETRY;
	}
	if (r->status >= 200 && r->status < 300)
		return ATT_POLL_OK;
	att_answer_detail(r->body, r->body_len, detail, sizeof(detail));
	a->retry_after = r->retry_after;
	if (r->status == 429 || r->status >= 500) {
		att_log_warning(LOGR, "%s: service answered %d %s", what, r->status, detail);
		att_agent_note(a, "%s: HTTP %d %s", what, r->status, detail);
		return ATT_POLL_RETRY;
	}
	att_log_error(LOGR, "%s: service refused (%d): %s", what, r->status, detail[0] ? detail : "(no detail)");
	att_agent_note(a, "%s: HTTP %d %s", what, r->status, detail);
	return ATT_POLL_REFUSED;
}

static const char *json_headers[] = { "Accept: application/json", NULL };

static int api_url(struct att_agent *a, const char *path, char *out)
{
	return att_url_join(a->o->server, path, out, ATT_URL_MAX);
}

/* Open the TPM, select the EK and derive the AK (once per process, again
 * after a TPM failure). */
enum att_poll att_agent_ensure_tpm(struct att_agent *a)
{
	char err[512];

	if (a->have_node)
		return ATT_POLL_OK;
	if (!a->dev && att_tpmdev_open(a->o->tcti, &a->dev, err, sizeof(err)) < 0)
		goto fail;
	if (att_agent_node_read(a->dev, a->o->ek_pref, a->o->sysroot, &a->node, err, sizeof(err)) < 0 ||
	    att_tpmdev_ak(a->dev, a->o->ak_alg, &a->ak, err, sizeof(err)) < 0 ||
	    att_tpmdev_ak_name(a->dev, a->ak_name, err, sizeof(err)) < 0)
		goto fail;
	a->have_node = true;
	if (a->st.ek_fingerprint[0] && strcmp(a->st.ek_fingerprint, a->node.fp) != 0) {
		att_log_error(LOGR, "the state directory %s belongs to another TPM (EK %.16s..., this TPM %.16s...); refusing to use it",
			      a->o->state_dir, a->st.ek_fingerprint, a->node.fp);
		att_agent_note(a, "state directory of another TPM");
		return ATT_POLL_FAILED;
	}
	if (a->st.ak_bound && a->st.ak_name[0] && strcmp(a->st.ak_name, a->ak_name) != 0) {
		att_log_error(LOGR, "the AK this TPM derives (%.20s..., --ak-alg %s) is not the one the service bound (%.20s...)",
			      a->ak_name, a->o->ak_alg, a->st.ak_name);
		att_agent_note(a, "AK differs from the bound one");
		return ATT_POLL_FAILED;
	}
	memcpy(a->st.ek_fingerprint, a->node.fp, sizeof(a->node.fp));
	snprintf(a->st.ek_kind, sizeof(a->st.ek_kind), "%s", a->node.ek.kind);
	return ATT_POLL_OK;
fail:
	att_log_error(LOGR, "TPM: %s", err);
	att_agent_note(a, "TPM: %s", err);
	att_agent_release(a);
	return ATT_POLL_FAILED;
}

/* First contact: the machine id. */
static enum att_poll self_register(struct att_agent *a)
{
	struct att_answer_register g;
	struct att_http_resp r;
	char url[ATT_URL_MAX], err[512];
	char *body = att_agent_body_register(&a->node, a->o->role, NULL);
	enum att_poll p;

	if (body && a->o->agent_identity_file &&
	    !(body = att_agent_body_add_identity(body, a->o->agent_identity_file, err, sizeof(err)))) {
		att_agent_note(a, "self-register: %s", err);
		return ATT_POLL_FAILED;
	}
	if (!body || api_url(a, "/api/v1/self-register", url) < 0) {
		free(body);
		return ATT_POLL_FAILED;
	}
	p = att_agent_call(a, "POST", url, json_headers, body, ATT_ANSWER_MAX_BODY, &r, "self-register");
	free(body);
	if (p == ATT_POLL_REFUSED && r.status == 409) {
		/* a locked or revoked EK: the attest answer says which machine */
		att_http_resp_release(&r);
		return ATT_POLL_OK;
	}
	if (p != ATT_POLL_OK)
		goto out;
	if (att_answer_register_parse(r.body, r.body_len, &g, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "self-register: answer", err);
		goto out;
	}
	memcpy(a->st.machine_id, g.machine_id, sizeof(g.machine_id));
	memcpy(a->st.status, g.status, sizeof(g.status));
	snprintf(a->st.role, sizeof(a->st.role), "%s", g.role);
	att_log_info(LOGR, "registered with %s: machine %s, status %s", a->o->server, g.machine_id, g.status);
	att_agent_save(a);
out:
	att_http_resp_release(&r);
	return p;
}

/* Credential activation, both steps. */
static enum att_poll bind_ak(struct att_agent *a)
{
	struct att_answer_activation act = { 0 };
	struct att_cred_blob cb;
	struct att_http_resp r = { 0 };
	char url[ATT_URL_MAX], path[200], err[512];
	const char *name = a->ak_name;
	uint8_t secret[64];
	size_t sl = 0;
	char *body = NULL;
	enum att_poll p;

	snprintf(path, sizeof(path), "/api/v1/machines/%s/ak-activate", a->st.machine_id);
	body = att_agent_body_activate(&a->node, &a->ak);
	if (!body || api_url(a, path, url) < 0) {
		free(body);
		return ATT_POLL_FAILED;
	}
	p = att_agent_call(a, "POST", url, json_headers, body, ATT_ANSWER_MAX_BODY, &r, "ak-activate");
	free(body);
	body = NULL;
	if (p == ATT_POLL_REFUSED && r.status == 409 && r.body && strstr(r.body, "already bound")) {
		/* bound before the state said so (a crash between the steps):
		 * the quotes tell whether it is this AK */
		att_log_warning(LOGR, "the service already holds an AK for machine %s; attesting with the one this TPM derives",
				a->st.machine_id);
		a->st.ak_bound = true;
		snprintf(a->st.ak_name, sizeof(a->st.ak_name), "%s", name);
		att_agent_save(a);
		p = ATT_POLL_OK;
		goto out;
	}
	if (p == ATT_POLL_REFUSED && (r.status == 403 || r.status == 404)) {
		if (r.status == 404) {
			att_log_warning(LOGR, "the service does not know machine %s any more; registering again",
					a->st.machine_id);
			a->st.machine_id[0] = '\0';
			att_agent_save(a);
		}
		p = ATT_POLL_OK;	/* the attest answer tells the state */
		goto out;
	}
	if (p != ATT_POLL_OK)
		goto out;
	if (att_answer_activation_parse(r.body, r.body_len, &act, err, sizeof(err)) < 0 ||
	    (strcmp(act.ak_name, name) != 0 && snprintf(err, sizeof(err), "ak_name: a credential for another key") > 0) ||
	    att_answer_cred_blob_split(act.blob, act.blob_len, &cb, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "ak-activate: answer", err);
		goto out;
	}
	if (att_tpmdev_activate(a->dev, cb.id_object, cb.id_object_len, cb.secret, cb.secret_len, secret, &sl, err,
				sizeof(err)) < 0) {
		att_log_error(LOGR, "ak-activate: %s", err);
		att_agent_note(a, "ak-activate: %s", err);
		p = ATT_POLL_REFUSED;
		goto out;
	}
	att_http_resp_release(&r);
	snprintf(path, sizeof(path), "/api/v1/machines/%s/ak-activate/complete", a->st.machine_id);
	body = att_agent_body_complete(act.activation_id, secret, sl);
	att_wipe(secret, sizeof(secret));
	if (!body || api_url(a, path, url) < 0) {
		p = ATT_POLL_FAILED;
		goto out;
	}
	p = att_agent_call(a, "POST", url, json_headers, body, ATT_ANSWER_MAX_BODY, &r, "ak-activate/complete");
	if (p != ATT_POLL_OK)
		goto out;
	if (att_answer_activation_done_parse(r.body, r.body_len, a->st.machine_id, name, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "ak-activate/complete: answer", err);
		goto out;
	}
	a->st.ak_bound = true;
	snprintf(a->st.ak_name, sizeof(a->st.ak_name), "%s", name);
	att_log_info(LOGR, "AK (%s, derived in the endorsement hierarchy) bound to machine %s by credential activation (name %.20s...)",
		     a->o->ak_alg, a->st.machine_id, name);
	att_agent_save(a);
out:
	if (body) {
		att_wipe(body, strlen(body));
		free(body);
	}
	att_answer_activation_release(&act);
	att_http_resp_release(&r);
	return p;
}

/* Challenge + quote (with an AK bound), then POST /attest. */
static enum att_poll attest(struct att_agent *a, struct att_answer_attest *ret, bool *ret_quoted)
{
	struct att_answer_challenge ch;
	struct att_tpm_quote_out q = { 0 };
	struct att_http_resp r = { 0 };
	char url[ATT_URL_MAX], err[512];
	char *body;
	bool quoted = a->st.ak_bound;
	enum att_poll p = ATT_POLL_OK;

	if (quoted) {
		if (api_url(a, "/api/v1/attest/challenge", url) < 0)
			return ATT_POLL_FAILED;
		p = att_agent_call(a, "GET", url, json_headers, NULL, ATT_ANSWER_MAX_BODY, &r, "challenge");
		if (p != ATT_POLL_OK)
			goto out;
		if (att_answer_challenge_parse(r.body, r.body_len, &ch, err, sizeof(err)) < 0) {
			p = att_agent_refuse(a, "challenge: answer", err);
			goto out;
		}
		att_http_resp_release(&r);
		if (att_tpmdev_quote(a->dev, ch.nonce, ch.nonce_len, &a->o->pcrs, &q, err, sizeof(err)) < 0) {
			att_log_warning(LOGR, "quote: %s (reopening the TPM)", err);
			att_agent_note(a, "quote: %s", err);
			att_agent_release(a);	/* reopen next time: the TPM may have been reset */
			p = ATT_POLL_FAILED;
			goto out;
		}
	}
	body = att_agent_body_attest(&a->node, a->o->role, quoted ? ch.nonce_id : NULL, quoted ? &q : NULL);
	if (!body || api_url(a, "/api/v1/attest", url) < 0) {
		free(body);
		p = ATT_POLL_FAILED;
		goto out;
	}
	p = att_agent_call(a, "POST", url, json_headers, body, ATT_ANSWER_MAX_BODY, &r, "attest");
	free(body);
	if (p != ATT_POLL_OK)
		goto out;
	if (att_answer_attest_parse(r.body, r.body_len, ret, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "attest: answer", err);
		goto out;
	}
	if (quoted && q.reset_count != (uint32_t)a->st.reset_count) {
		if (a->st.reset_count >= 0)
			att_log_info(LOGR, "TPM reset since the last quote: resetCount %lld -> %u (reported to the service)",
				     (long long)a->st.reset_count, q.reset_count);
		a->st.reset_count = q.reset_count;
	}
	if (quoted)
		a->st.restart_count = q.restart_count;
	*ret_quoted = quoted;
out:
	att_tpm_quote_out_release(&q);
	att_http_resp_release(&r);
	return p;
}

/* With --secrets-dir: fetch the secrets of an attested machine when its
 * config was just applied, and then every --secrets-interval.  A failed
 * fetch is logged and retried in a minute; it never fails the poll. */
static void secrets_due(struct att_agent *a, const struct att_answer_attest *ans)
{
	struct timespec ts;
	double now;

	if (!a->o->secrets_dir || !strstr(ans->status, "attested") || !a->st.ak_bound)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	if (strcmp(ans->action, "apply-config") != 0 && a->secrets_next > 0 && now < a->secrets_next)
		return;
	a->secrets_next = now + (att_agent_fetch_secrets(a) == ATT_POLL_OK ? a->o->secrets_interval : 60);
}

enum att_poll att_agent_poll(struct att_agent *a)
{
	struct att_answer_attest ans;
	bool quoted = false;
	enum att_poll p = ATT_POLL_OK;

	a->st.last_error[0] = '\0';
	a->retry_after = -1;
	snprintf(a->st.server, sizeof(a->st.server), "%s", a->o->server);
	for (int attempt = 0; attempt < 2; attempt++) {
		bool kept = a->have_node;	/* a TPM context from an earlier poll */

		p = att_agent_ensure_tpm(a);
		if (p == ATT_POLL_OK && !a->st.machine_id[0])
			p = self_register(a);
		if (p == ATT_POLL_OK && a->st.machine_id[0] && !a->st.ak_bound &&
		    strcmp(a->st.status, "locked") != 0 && strcmp(a->st.status, "revoked") != 0)
			p = bind_ak(a);
		if (p == ATT_POLL_OK)
			p = attest(a, &ans, &quoted);
		/* a kept context that failed (the TPM was reset): once more, fresh */
		if (p == ATT_POLL_FAILED && kept && !a->have_node)
			continue;
		break;
	}
	if (p == ATT_POLL_OK)
		p = att_agent_act(a, &ans, quoted);
	if (p == ATT_POLL_OK)
		secrets_due(a, &ans);
	a->st.polls++;
	att_agent_save(a);
	return p;
}
