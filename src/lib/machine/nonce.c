/* nonce.c - attestation challenges: single-use nonces stored in the
 * database (shared by every replica), capped by ITL_NONCE_CAPACITY,
 * expiring after ITL_NONCE_TTL_SECONDS; consuming one twice is a replay. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

/* Store a new nonce unless ITL_NONCE_CAPACITY nonces are outstanding;
 * drop a bounded batch of expired ones on the way. */
static int nonce_store(const struct att_svc *svc, struct att_dbc *c, const char *id, const char *nonce_b64,
		       int64_t now, char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int64_t outstanding = 0;
	int r;

	r = att_dbc_query(c, &s, "SELECT COUNT(*) FROM nonces WHERE expires_at >= ?", "i", now);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if ((r = att_stmt_next(s)) == 1)
		outstanding = att_stmt_int(s, 0);
	att_stmt_done(s);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (outstanding >= svc->cfg->nonce_capacity) {
		att_machine_set_err(reterr, errlen,
				    "Nonce store capacity (%lld) exceeded — too many outstanding challenges",
				    (long long)svc->cfg->nonce_capacity);
		return ATT_E_LIMIT;
	}
	/* expired nonces are useless: drop a bounded batch of them */
	r = att_dbc_exec(c,
			 "DELETE FROM nonces WHERE nonce_id IN (SELECT nonce_id FROM nonces WHERE expires_at < ? LIMIT 1000)",
			 "i", now);
	if (r >= 0)
		r = att_dbc_exec(c, "INSERT INTO nonces (nonce_id, nonce, created_at, expires_at) VALUES (?, ?, ?, ?)",
				 "ssii", id, nonce_b64, now, now + svc->cfg->nonce_ttl_seconds);
	return r < 0 ? att_machine_db_fail(r, reterr, errlen) : 0;
}

int att_nonce_issue(const struct att_svc *svc, char ret_id[33], char ret_nonce_b64[48],
		    int64_t *ret_expires, char *reterr, size_t errlen)
{
	struct att_dbc *c;
	uint8_t idraw[16], nonce[32];
	char *b64;
	int64_t now = att_now().sec;
	int r;

	if (att_random(idraw, sizeof(idraw)) < 0 || att_random(nonce, sizeof(nonce)) < 0)
		return ATT_E_CRYPTO;
	att_hex_encode(idraw, sizeof(idraw), ret_id);
	b64 = att_b64_encode(nonce, sizeof(nonce));
	if (!b64)
		return ATT_E_NOMEM;
	snprintf(ret_nonce_b64, 48, "%s", b64);
	free(b64);
	r = att_machine_tx_begin(svc, &c, reterr, errlen);
	if (r < 0)
		return r;
	r = nonce_store(svc, c, ret_id, ret_nonce_b64, now, reterr, errlen);
	r = att_machine_tx_end(svc, c, r, reterr, errlen);
	if (r < 0)
		return r;
	*ret_expires = now + svc->cfg->nonce_ttl_seconds;
	return 0;
}

/* Mark the nonce used, once: unknown, used or expired nonces are refused
 * (an expired one is deleted, and that deletion committed). */
static int nonce_take(struct att_dbc *c, const char *nonce_id, char ret_b64[64], char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int64_t expires = 0, now = att_now().sec;
	bool consumed = false;
	int r;

	r = att_dbc_query(c, &s, "SELECT nonce, expires_at, consumed_at FROM nonces WHERE nonce_id = ?", "s",
			  nonce_id);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	r = att_stmt_next(s);
	if (r == 1) {
		snprintf(ret_b64, 64, "%s", att_stmt_text(s, 0));
		expires = att_stmt_int(s, 1);
		consumed = !att_stmt_is_null(s, 2);
	}
	att_stmt_done(s);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (r == 0) {
		att_machine_set_err(reterr, errlen, "Unknown nonce_id — request a fresh challenge first");
		return ATT_E_INVAL;
	}
	if (consumed) {
		att_machine_set_err(reterr, errlen, "Attestation nonce has already been used — replay detected");
		return ATT_E_CONFLICT;
	}
	if (expires < now) {
		(void)att_dbc_exec(c, "DELETE FROM nonces WHERE nonce_id = ?", "s", nonce_id);
		(void)att_dbc_commit(c);
		att_machine_set_err(reterr, errlen, "Attestation nonce has expired — request a new challenge");
		return ATT_E_GONE;
	}
	r = att_dbc_exec(c, "UPDATE nonces SET consumed_at = ? WHERE nonce_id = ? AND consumed_at IS NULL", "is",
			 now, nonce_id);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (r != 1) {
		att_machine_set_err(reterr, errlen, "Attestation nonce has already been used — replay detected");
		return ATT_E_CONFLICT;
	}
	return 0;
}

int att_nonce_consume(const struct att_svc *svc, const char *nonce_id, uint8_t ret_nonce[32],
		      char *reterr, size_t errlen)
{
	struct att_dbc *c;
	char b64[64] = "";
	uint8_t *raw = NULL;
	size_t n = 0;
	int r;

	if (strlen(nonce_id) != 32 || !att_is_hex(nonce_id, 32)) {
		att_machine_set_err(reterr, errlen, "Unknown nonce_id — request a fresh challenge first");
		return ATT_E_INVAL;
	}
	r = att_machine_tx_begin(svc, &c, reterr, errlen);
	if (r < 0)
		return r;
	r = nonce_take(c, nonce_id, b64, reterr, errlen);
	r = att_machine_tx_end(svc, c, r, reterr, errlen);
	if (r < 0)
		return r;
	if (att_b64_decode(b64, strlen(b64), &raw, &n) < 0 || n != 32) {
		free(raw);
		return ATT_E_INTERNAL;
	}
	memcpy(ret_nonce, raw, 32);
	free(raw);
	return 0;
}
