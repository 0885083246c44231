/* config_token.c - single-machine config tokens: 32 random bytes
 * (base64url), stored as SHA-256 only, bound to the machine and its
 * state, expiring after ITL_CONFIG_TOKEN_TTL_SECONDS; issue, revoke,
 * lookup and the fetch bookkeeping of GET /config/{token}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "audit/audit.h"
#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "obs/log.h"

static int new_token(char out[64], char hash[65])
{
	uint8_t raw[32];
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *t;
	int r = att_random(raw, sizeof(raw));

	if (r < 0)
		return r;
	t = att_b64url_encode(raw, sizeof(raw));
	att_wipe(raw, sizeof(raw));
	if (!t)
		return ATT_E_NOMEM;
	snprintf(out, 64, "%s", t);
	SHA256((const unsigned char *)t, strlen(t), md);
	att_hex_encode(md, sizeof(md), hash);
	att_wipe(t, strlen(t));
	free(t);
	return 0;
}

static void token_hash(const char *token, char hash[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, strlen(token), md);
	att_hex_encode(md, sizeof(md), hash);
}

/* Replace every token of the machine by one bound to state. */
int att_machine_token_issue(const struct att_svc *svc, struct att_dbc *c, const char *machine_id,
		       const char *state, char out[64])
{
	char hash[65], ts[32];
	int r;

	r = att_dbc_exec(c, "DELETE FROM config_tokens WHERE machine_id = ?", "s", machine_id);
	if (r < 0)
		return r;
	r = new_token(out, hash);
	if (r < 0)
		return r;
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c,
			 "INSERT INTO config_tokens (token_hash, machine_id, state, created_at, expires_at)"
			 " VALUES (?, ?, ?, ?, ?)",
			 "ssssi", hash, machine_id, state, ts,
			 (int64_t)(att_now().sec + svc->cfg->config_token_ttl_seconds));
	return r < 0 ? r : 0;
}

int att_machine_tokens_drop(struct att_dbc *c, const char *machine_id)
{
	int r = att_dbc_exec(c, "DELETE FROM config_tokens WHERE machine_id = ?", "s", machine_id);

	return r < 0 ? r : 0;
}

int att_config_token_lookup(const struct att_svc *svc, const char *token, struct att_machine *ret,
			    char *reterr, size_t errlen)
{
	struct att_dbc *c;
	struct att_stmt *s;
	char hash[65], state[32] = "";
	int64_t expires = 0;
	int r;

	token_hash(token, hash);
	c = att_db_acquire(svc->db);
	if (!c)
		return att_machine_db_fail(ATT_E_DB, reterr, errlen);
	r = att_dbc_query(c, &s, "SELECT machine_id, state, expires_at FROM config_tokens WHERE token_hash = ?",
			  "s", hash);
	if (r < 0)
		goto dberr;
	r = att_stmt_next(s);
	if (r == 1) {
		char mid[64];

		snprintf(mid, sizeof(mid), "%s", att_stmt_text(s, 0));
		snprintf(state, sizeof(state), "%s", att_stmt_text(s, 1));
		expires = att_stmt_int(s, 2);
		att_stmt_done(s);
		r = att_machine_get(c, mid, ret);
	} else {
		att_stmt_done(s);
		if (r == 0)
			r = ATT_E_NOTFOUND;
	}
	att_db_release(svc->db, c);
	if (r == ATT_E_NOTFOUND) {
		att_machine_set_err(reterr, errlen, "Config token not found");
		return r;
	}
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (expires < att_now().sec) {
		att_machine_release(ret);
		att_machine_set_err(reterr, errlen, "Config token expired — attest again to receive a new one");
		return ATT_E_GONE;
	}
	if (strcmp(state, M(ret, STATUS)) != 0) {
		att_machine_release(ret);
		att_machine_set_err(reterr, errlen, "Config token not found");
		return ATT_E_NOTFOUND;
	}
	return 0;
dberr:
	att_db_release(svc->db, c);
	return att_machine_db_fail(r, reterr, errlen);
}

/* Count a fetch of the token, mark the config delivered, audit.
 * *ret_count: the fetches before this one. */
static int token_fetch(struct att_dbc *c, const char *hash, const struct att_machine *m,
		       const struct att_actor *actor, int64_t *ret_count, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	char ts[32];
	int64_t count = 0;
	int r;

	att_time_iso(att_now(), ts);
	r = att_dbc_query(c, &s, "SELECT fetch_count FROM config_tokens WHERE token_hash = ? AND machine_id = ?",
			  "ss", hash, M(m, MACHINE_ID));
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	r = att_stmt_next(s);
	if (r == 1)
		count = att_stmt_int(s, 0);
	att_stmt_done(s);
	if (r == 0) { /* revoked or rotated since the lookup */
		att_machine_set_err(reterr, errlen, "Config token not found");
		return ATT_E_NOTFOUND;
	}
	if (r >= 0)
		r = att_dbc_exec(c,
				 "UPDATE config_tokens SET fetch_count = fetch_count + 1,"
				 " first_fetched_at = COALESCE(first_fetched_at, ?) WHERE token_hash = ?",
				 "ss", ts, hash);
	if (r >= 0)
		r = att_dbc_exec(c,
				 "UPDATE machines SET config_delivered_at = COALESCE(config_delivered_at, ?)"
				 " WHERE machine_id = ?",
				 "ss", ts, M(m, MACHINE_ID));
	if (r >= 0)
		r = att_audit_append(c, actor->name, "config_fetch", M(m, MACHINE_ID), M(m, STATUS), M(m, STATUS),
				     count ? "config re-fetched with a used token" : "config delivered", actor->source_ip);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	*ret_count = count;
	return 0;
}

int att_config_token_record_fetch(const struct att_svc *svc, const char *token,
				  const struct att_machine *m, const struct att_actor *actor,
				  bool *ret_refetch, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char hash[65];
	int64_t count = 0;
	int r;

	r = att_machine_tx_begin(svc, &c, reterr, errlen);
	if (r < 0)
		return r;
	token_hash(token, hash);
	r = token_fetch(c, hash, m, actor, &count, reterr, errlen);
	r = att_machine_tx_end(svc, c, r, reterr, errlen);
	if (r < 0)
		return r;
	if (count)
		att_log_info(LOGC, "Config re-fetch for machine %s (token already consumed)", M(m, MACHINE_ID));
	else
		att_log_info(LOGC, "Config token consumed for machine %s", M(m, MACHINE_ID));
	*ret_refetch = count > 0;
	return 0;
}
