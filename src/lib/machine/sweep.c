/* sweep.c - leases (one replica runs a job) and the sweep of expired
 * nonces and config tokens; see sweep.h. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/sweep.h"

int att_lease_claim(struct att_db *db, const char *name, const char *holder, int64_t ttl,
		    bool *ret_claimed)
{
	struct att_dbc *c = att_db_acquire(db);
	struct att_stmt *s;
	int64_t now = att_now().sec, expires = 0;
	char cur[128] = "";
	bool found = false;
	int r;

	*ret_claimed = false;
	if (!c)
		return ATT_E_DB;
	/* a plain transaction: SKIP LOCKED must not wait behind the global write lock */
	r = att_dbc_is_postgresql(c) ? att_dbc_exec(c, "BEGIN", "") : att_dbc_begin(c);
	if (r < 0)
		goto out;
	r = att_dbc_query(c, &s,
			  att_dbc_is_postgresql(c)
				  ? "SELECT holder, expires_at FROM leases WHERE name = ? FOR UPDATE SKIP LOCKED"
				  : "SELECT holder, expires_at FROM leases WHERE name = ?",
			  "s", name);
	if (r < 0)
		goto out;
	if ((r = att_stmt_next(s)) == 1) {
		found = true;
		snprintf(cur, sizeof(cur), "%s", att_stmt_text(s, 0) ? att_stmt_text(s, 0) : "");
		expires = att_stmt_int(s, 1);
	}
	att_stmt_done(s);
	if (r < 0)
		goto out;
	if (!found) {
		/* leases other than the sweep's are created on first use */
		r = att_dbc_exec(c, "INSERT INTO leases (name) VALUES (?) ON CONFLICT (name) DO NOTHING", "s", name);
		if (r < 0)
			goto out;
	}
	if (!found || expires < now || strcmp(cur, holder) == 0) {
		r = att_dbc_exec(c, "UPDATE leases SET holder = ?, expires_at = ? WHERE name = ?"
				    " AND (expires_at < ? OR holder = ?)",
				 "sisis", holder, now + ttl, name, now, holder);
		if (r < 0)
			goto out;
		*ret_claimed = r == 1;
	}
	r = att_dbc_is_postgresql(c) ? att_dbc_exec(c, "COMMIT", "") : att_dbc_commit(c);
	if (r < 0)
		*ret_claimed = false;
out:
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(db, c);
	return r < 0 ? r : 0;
}

int att_sweep_run(struct att_db *db, const char *holder)
{
	struct att_dbc *c = att_db_acquire(db);
	int64_t now = att_now().sec;
	int removed = 0, r;
	char ts[32], result[96];

	if (!c)
		return ATT_E_DB;
	r = att_dbc_begin(c);
	if (r < 0)
		goto out;
	/* nonces stay a little past expiry so a late use answers 410, not 422 */
	r = att_dbc_exec(c,
			 "DELETE FROM nonces WHERE nonce_id IN (SELECT nonce_id FROM nonces WHERE expires_at < ? LIMIT 5000)",
			 "i", now - 300);
	if (r < 0)
		goto out;
	removed += r;
	r = att_dbc_exec(c,
			 "DELETE FROM config_tokens WHERE token_hash IN (SELECT token_hash FROM config_tokens WHERE expires_at < ? LIMIT 5000)",
			 "i", now - 300);
	if (r < 0)
		goto out;
	removed += r;
	/* unauthenticated-write counters of windows long closed (the longest
	 * ITL_UNAUTH_WRITE_WINDOW_SECONDS is a day) */
	r = att_dbc_exec(c, "DELETE FROM rate_limits WHERE window_start < ?", "i", now - 86400 - 60);
	if (r < 0)
		goto out;
	removed += r;
	att_time_iso(att_now(), ts);
	snprintf(result, sizeof(result), "removed %d expired rows (by %s)", removed, holder);
	r = att_dbc_exec(c, "UPDATE leases SET last_run_at = ?, last_result = ? WHERE name = 'sweep'", "ss", ts, result);
	if (r < 0)
		goto out;
	r = att_dbc_commit(c);
out:
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(db, c);
	return r < 0 ? r : removed;
}
