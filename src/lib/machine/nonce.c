/* nonce.c - attestation challenges that cost no storage until used.
 *
 * A challenge is nonce_id = hex(expires[8] || random[8] || tag[16]) with
 * tag = HMAC-SHA256(K, "itl-challenge-v1" || expires || random)[0..16] and
 * nonce = HMAC-SHA256(K, "itl-nonce-v1" || expires || random).  K is the
 * service key "nonce-hmac" in the database (service_keys), created once
 * by whichever replica starts first, so every replica issues and checks
 * the same challenges.  Issuing writes nothing: the store cannot be
 * filled from outside.  Consuming one records its id in the nonces table
 * (primary key: a second use, on any replica, is a replay) until it
 * expires; the sweeper removes expired records. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

#define CHALLENGE_RAW 32	/* expires 8 + random 8 + tag 16 */

/* 1 and the key when the row exists, 0 when it does not, or an error. */
static int service_key_read(struct att_dbc *c, const char *name, uint8_t ret_key[32])
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, "SELECT secret FROM service_keys WHERE name = ?", "s", name);

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		const char *k = att_stmt_text(s, 0);

		r = k && strlen(k) == 64 && att_hex_decode(k, 64, ret_key) == 0 ? 1 : ATT_E_INTERNAL;
	}
	att_stmt_done(s);
	return r;
}

int att_service_key_load(struct att_db *db, const char *name, uint8_t ret_key[32])
{
	struct att_dbc *c = att_db_acquire(db);
	uint8_t fresh[32];
	char hex[65], ts[32];
	int r;

	if (!c)
		return ATT_E_DB;
	/* read first: a database that is read-only for now still starts */
	r = service_key_read(c, name, ret_key);
	if (r != 0) {
		att_db_release(db, c);
		return r < 0 ? r : 0;
	}
	if (att_random(fresh, sizeof(fresh)) < 0) {
		att_db_release(db, c);
		return ATT_E_CRYPTO;
	}
	att_hex_encode(fresh, sizeof(fresh), hex);
	att_wipe(fresh, sizeof(fresh));
	att_time_iso(att_now(), ts);
	/* the first replica's key wins; the others read it */
	r = att_dbc_exec(c, "INSERT INTO service_keys (name, secret, created_at) VALUES (?, ?, ?)"
			    " ON CONFLICT (name) DO NOTHING",
			 "sss", name, hex, ts);
	att_wipe(hex, sizeof(hex));
	if (r >= 0)
		r = service_key_read(c, name, ret_key);
	att_db_release(db, c);
	return r == 1 ? 0 : r < 0 ? r : ATT_E_INTERNAL;
}

/* out = HMAC(K, label || body) */
static void challenge_mac(const uint8_t key[32], const char *label, const uint8_t body[16], uint8_t out[32])
{
	uint8_t msg[32];
	size_t n = strlen(label);

	memcpy(msg, label, n);
	memcpy(msg + n, body, 16);
	att_hmac_sha256(key, 32, msg, n + 16, out);
}

int att_nonce_issue(const struct att_svc *svc, char ret_id[65], char ret_nonce_b64[48],
		    int64_t *ret_expires, char *reterr, size_t errlen)
{
	uint8_t raw[CHALLENGE_RAW], mac[32];
	int64_t expires = att_now().sec + svc->cfg->nonce_ttl_seconds;
	char *b64;

	(void)reterr;
	(void)errlen;
	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)((uint64_t)expires >> (56 - 8 * i));
	if (att_random(raw + 8, 8) < 0)
		return ATT_E_CRYPTO;
	challenge_mac(svc->nonce_key, "itl-challenge-v1", raw, mac);
	memcpy(raw + 16, mac, 16);
	att_hex_encode(raw, sizeof(raw), ret_id);
	challenge_mac(svc->nonce_key, "itl-nonce-v1", raw, mac);
	b64 = att_b64_encode(mac, sizeof(mac));
	att_wipe(mac, sizeof(mac));
	if (!b64)
		return ATT_E_NOMEM;
	snprintf(ret_nonce_b64, 48, "%s", b64);
	free(b64);
	*ret_expires = expires;
	return 0;
}

int att_challenge_open(const uint8_t key[32], const char *nonce_id, int64_t now, int64_t *ret_expires,
		       uint8_t ret_nonce[32])
{
	uint8_t raw[CHALLENGE_RAW], mac[32];
	uint64_t expires = 0;
	bool lower = strlen(nonce_id) == 2 * CHALLENGE_RAW;

	/* lowercase only: one spelling per challenge, so the primary key
	 * of the used record catches every replay */
	for (size_t i = 0; lower && nonce_id[i]; i++)
		lower = (nonce_id[i] >= '0' && nonce_id[i] <= '9') || (nonce_id[i] >= 'a' && nonce_id[i] <= 'f');
	if (!lower || att_hex_decode(nonce_id, 2 * CHALLENGE_RAW, raw) != 0)
		return ATT_E_INVAL;
	challenge_mac(key, "itl-challenge-v1", raw, mac);
	if (!att_ct_equal(mac, 16, raw + 16, 16))
		return ATT_E_INVAL;
	for (int i = 0; i < 8; i++)
		expires = expires << 8 | raw[i];
	if (expires > (uint64_t)INT64_MAX || (int64_t)expires < now)
		return ATT_E_GONE;
	challenge_mac(key, "itl-nonce-v1", raw, ret_nonce);
	*ret_expires = (int64_t)expires;
	return 0;
}

int att_nonce_consume(const struct att_svc *svc, const char *nonce_id, const struct att_actor *actor,
		      uint8_t ret_nonce[32], char *reterr, size_t errlen)
{
	struct att_dbc *c;
	int64_t expires = 0;
	int r;

	r = att_challenge_open(svc->nonce_key, nonce_id, att_now().sec, &expires, ret_nonce);
	if (r == ATT_E_GONE) {
		att_machine_set_err(reterr, errlen, "Attestation nonce has expired — request a new challenge");
		return r;
	}
	if (r < 0) {
		att_machine_set_err(reterr, errlen, "Unknown nonce_id — request a fresh challenge first");
		return r;
	}
	r = att_machine_tx_begin(svc, &c, reterr, errlen);
	if (r < 0)
		return r;
	r = att_unauth_write_take(svc, c, actor, reterr, errlen);
	/* single use on every replica: the id is the primary key */
	if (r == 0) {
		r = att_dbc_exec(c,
				 "INSERT INTO nonces (nonce_id, nonce, created_at, expires_at, consumed_at)"
				 " VALUES (?, '', ?, ?, ?) ON CONFLICT (nonce_id) DO NOTHING",
				 "siii", nonce_id, att_now().sec, expires, att_now().sec);
		if (r == 0) {
			att_machine_set_err(reterr, errlen, "Attestation nonce has already been used — replay detected");
			r = ATT_E_CONFLICT;
		} else if (r < 0) {
			r = att_machine_db_fail(r, reterr, errlen);
		} else {
			r = 0;
		}
	}
	r = att_machine_tx_end(svc, c, r, reterr, errlen);
	if (r < 0)
		att_wipe(ret_nonce, 32);
	return r;
}
