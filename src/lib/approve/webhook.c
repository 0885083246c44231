/* webhook.c - the external auto-approval decision webhook.
 *
 * A leased background job (one replica at a time) takes machines that
 * no rule matched and that are still pending, POSTs their description to
 * ITL_AUTO_APPROVE_WEBHOOK_URL and applies the answer.  The request is
 * signed: X-Attest-Timestamp: <unix seconds> and
 * X-Attest-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>.
 * No redirects, a timeout, a 64 KiB answer cap; a failed call is retried
 * with exponential backoff (2 s ... 5 min) and given up after 8 tries.
 * The answer is untrusted input: {"approve": true, "role": .., "hostname": ..,
 * "reason": ..} or {"approve": false, "reason": ..}; a role under dual
 * control is never approved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "approve/approve.h"
#include "audit/audit.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine.h"
#include "obs/log.h"

#define LOGP "attestd.auto-approve"
#define MAX_ATTEMPTS 8
#define BATCH 16
#define ERR(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_INVAL)

int att_auto_answer_parse(const struct att_config *cfg, const char *body, size_t len, struct att_auto_answer *ret,
			  char *reterr, size_t errlen)
{
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *ap = json_object_get(o, "approve");
	const char *role = json_string_value(json_object_get(o, "role"));
	const char *host = json_string_value(json_object_get(o, "hostname"));
	const char *reason = json_string_value(json_object_get(o, "reason"));
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(o) || !json_is_boolean(ap))
		r = ERR("the answer is not {\"approve\": true|false, ...}");
	else if (json_object_get(o, "role") && !role)
		r = ERR("role: not a string");
	else if (json_object_get(o, "hostname") && !json_is_null(json_object_get(o, "hostname")) && !host)
		r = ERR("hostname: not a string");
	else if (json_is_true(ap) && !att_role_valid(role))
		r = ERR("role: an approval needs one of controlplane, worker-infra, worker-app");
	else if (json_is_true(ap) && att_strlist_contains(&cfg->dual_control_roles, role))
		r = ERR("role: '%s' is under dual control — never approved automatically", role);
	else if (host && (strlen(host) > 63 || !att_valid_hostname(host)))
		r = ERR("hostname: not a valid hostname");
	if (r == 0) {
		ret->approve = json_is_true(ap);
		snprintf(ret->role, sizeof(ret->role), "%s", role ? role : "");
		snprintf(ret->hostname, sizeof(ret->hostname), "%s", host ? host : "");
		snprintf(ret->reason, sizeof(ret->reason), "%s", reason ? reason : "");
		for (char *p = ret->reason; *p; p++)	/* printable for the audit log */
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
	json_decref(o);
	return r;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	return att_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

/* The signed POST; 0 with the answer body on HTTP 200. */
static int post(const struct att_config *cfg, const char *body, struct att_buf *answer, char *reterr, size_t errlen)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	char ts[32], hex[2 * EVP_MAX_MD_SIZE + 1], line[160];
	struct att_buf msg;
	long code = 0;
	CURLcode cc;
	int r = 0;

	if (!h)
		return ERR("out of memory");
	snprintf(ts, sizeof(ts), "%lld", (long long)att_now().sec);
	att_buf_init(&msg, 1024 * 1024);
	if (att_buf_printf(&msg, "%s.%s", ts, body) < 0 ||
	    !HMAC(EVP_sha256(), cfg->auto_approve_webhook_secret, (int)strlen(cfg->auto_approve_webhook_secret),
		  (const unsigned char *)msg.p, msg.len, mac, &ml)) {
		att_buf_release(&msg);
		curl_easy_cleanup(h);
		return ERR("cannot sign the request");
	}
	att_buf_release(&msg);
	att_hex_encode(mac, ml, hex);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "X-Attest-Event: auto-approval.request");
	snprintf(line, sizeof(line), "X-Attest-Timestamp: %s", ts);
	hdr = curl_slist_append(hdr, line);
	snprintf(line, sizeof(line), "X-Attest-Signature: sha256=%s", hex);
	hdr = curl_slist_append(hdr, line);
	curl_easy_setopt(h, CURLOPT_URL, cfg->auto_approve_webhook_url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, cfg->auto_approve_webhook_allow_http ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)cfg->auto_approve_webhook_timeout_seconds);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)cfg->auto_approve_webhook_timeout_seconds);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		r = ERR("%s", curl_easy_strerror(cc));
	else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code), code != 200)
		r = ERR("HTTP %ld", code);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return r;
}

static char *request_body(const struct att_machine *m, const char *context)
{
	json_t *ctx = context ? json_loads(context, 0, NULL) : NULL;
	json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?}", "machine_id", M(m, MACHINE_ID),
			      "ek_fingerprint", M(m, EK_FINGERPRINT), "hw_uuid", M(m, HW_UUID), "hw_serial",
			      M(m, HW_SERIAL), "hw_product", M(m, HW_PRODUCT), "hw_mac", M(m, HW_MAC), "desired_role",
			      M(m, ROLE), "cluster_id", M(m, CLUSTER_ID), "ek_manufacturer", M(m, EK_MANUFACTURER),
			      "ek_model", M(m, EK_MODEL), "registered_at", M(m, REGISTERED_AT));
	char *s;

	if (!o) {
		json_decref(ctx);
		return NULL;
	}
	json_object_set_new(o, "ek_verified", !M(m, EK_VERIFIED) ? json_null() : json_boolean(!strcmp(M(m, EK_VERIFIED), "1")));
	if (json_is_object(ctx)) {
		json_object_del(ctx, "last_error");	/* ours, not the receiver's */
		json_object_update(o, ctx);
	}
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	json_decref(ctx);
	return s;
}

/* A failed call: back off, or give up after MAX_ATTEMPTS.  While retrying,
 * detail keeps the queued context (via, token, agent identity) with the
 * last error added; given up, it is the error. */
static void retry_later(const struct att_svc *svc, struct att_dbc *c, const char *machine_id, const char *context,
			int64_t attempts, const char *why)
{
	int64_t delay = attempts >= 8 ? 300 : (int64_t)2 << attempts;
	bool give_up = attempts + 1 >= MAX_ATTEMPTS;
	json_t *ctx = context && !give_up ? json_loads(context, 0, NULL) : NULL;
	char *detail = NULL;

	if (delay > 300)
		delay = 300;
	(void)svc;
	if (json_is_object(ctx) && json_object_set_new(ctx, "last_error", json_string(why)) == 0)
		detail = json_dumps(ctx, JSON_COMPACT);
	(void)att_dbc_exec(c,
			   "UPDATE auto_approvals SET attempts = attempts + 1, next_at = ?, detail = ?, decision = ?"
			   " WHERE machine_id = ? AND decision = 'webhook'",
			   "isss", att_now().sec + delay, detail ? detail : why, give_up ? "failed" : "webhook", machine_id);
	free(detail);
	json_decref(ctx);
	att_log_warning(LOGP, "auto-approval webhook for machine %s failed (attempt %lld): %s%s", machine_id,
			(long long)attempts + 1, why, attempts + 1 >= MAX_ATTEMPTS ? " — given up, left for operators" : "");
}

static void declined(struct att_dbc *c, const char *machine_id, const struct att_auto_answer *a)
{
	char detail[320];
	int r;

	snprintf(detail, sizeof(detail), "decision webhook declined%s%s", a->reason[0] ? ": " : "", a->reason);
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_dbc_exec(c, "UPDATE auto_approvals SET decision = 'declined', detail = ? WHERE machine_id = ?", "ss",
				 a->reason, machine_id);
	if (r >= 0)
		r = att_audit_append(c, "AUTO_APPROVE:webhook", "auto_approve_declined", machine_id, "pending_approval",
				     "pending_approval", detail, NULL);
	if (r >= 0)
		r = att_dbc_commit(c);
	if (r < 0)
		att_dbc_rollback(c);
	att_log_info(LOGP, "auto-approval webhook declined machine %s — left for operators", machine_id);
}

/* Ask about one machine and apply the answer; 1 when decided. */
static int ask_one(const struct att_svc *svc, struct att_dbc *c, const char *machine_id, const char *context,
		   int64_t attempts)
{
	struct att_machine m = { 0 };
	struct att_auto_answer a;
	struct att_buf answer;
	char err[256], reason[400], *body = NULL;
	int r;

	if (att_machine_get(c, machine_id, &m) < 0)
		return 0;
	att_buf_init(&answer, 64 * 1024);
	body = request_body(&m, context);
	r = body ? post(svc->cfg, body, &answer, err, sizeof(err)) : ATT_E_NOMEM;
	if (r == 0)
		r = att_auto_answer_parse(svc->cfg, answer.p ? answer.p : "", answer.len, &a, err, sizeof(err));
	if (r < 0) {
		retry_later(svc, c, machine_id, context, attempts, body ? err : "out of memory");
		r = 0;
	} else if (!a.approve) {
		declined(c, machine_id, &a);
		r = 1;
	} else {
		json_t *ctx = context ? json_loads(context, 0, NULL) : NULL;
		const char *jti = json_string_value(json_object_get(json_object_get(ctx, "agent_identity"), "jti"));

		/* an approval with an agent identity in the request uses it up, as a rule's does */
		snprintf(reason, sizeof(reason), "decision webhook%s%s%s%s", a.reason[0] ? ": " : "", a.reason,
			 jti ? "; agent identity jti=" : "", jti ? jti : "");
		r = att_auto_apply_identity(svc, "webhook", svc->cfg->auto_approve_webhook_max_per_hour, a.role, a.hostname,
					    reason, &m, NULL, jti) >= 0;
		json_decref(ctx);
	}
	free(body);
	att_buf_release(&answer);
	att_machine_release(&m);
	return r;
}

int att_auto_webhook_run(const struct att_svc *svc)
{
	struct att_dbc *c;
	struct att_stmt *s;
	char ids[BATCH][64], *ctx[BATCH] = { 0 };
	int64_t att[BATCH];
	int n = 0, done = 0, r;

	if (!svc->cfg->auto_approve_webhook_url[0])
		return 0;
	c = att_db_acquire(svc->db);
	if (!c)
		return ATT_E_DB;
	/* operators (or rules) decided first: nothing to ask */
	(void)att_dbc_exec(c,
			   "UPDATE auto_approvals SET decision = 'superseded' WHERE decision = 'webhook' AND machine_id NOT IN"
			   " (SELECT machine_id FROM machines WHERE status = 'pending_approval')",
			   "");
	r = att_dbc_query(c, &s,
			  "SELECT machine_id, detail, attempts FROM auto_approvals WHERE decision = 'webhook' AND next_at <= ?"
			  " ORDER BY next_at LIMIT 16",
			  "i", att_now().sec);
	if (r == 0) {
		while (n < BATCH && (r = att_stmt_next(s)) == 1) {
			snprintf(ids[n], sizeof(ids[n]), "%s", att_stmt_text(s, 0));
			ctx[n] = att_stmt_text(s, 1) ? att_strdup(att_stmt_text(s, 1)) : NULL;
			att[n++] = att_stmt_int(s, 2);
		}
		att_stmt_done(s);
	}
	for (int i = 0; i < n; i++) {
		done += ask_one(svc, c, ids[i], ctx[i], att[i]);
		free(ctx[i]);
	}
	att_db_release(svc->db, c);
	return r < 0 ? r : done;
}
