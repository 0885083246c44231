/* ratelimit.c - bounds on unauthenticated writes (issue 19, hole 5).
 *
 * Every write a request without a credential causes (a new machine, a
 * changed re-registration, a consumed challenge, an AK activation) first
 * takes one unit of its source address's budget: ITL_UNAUTH_WRITE_LIMIT
 * per ITL_UNAUTH_WRITE_WINDOW_SECONDS (fixed windows).  The counters live
 * in the database (rate_limits), inside the write's own transaction, so
 * replicas share one budget per source and a refused request writes
 * nothing at all.  ITL_MAX_PENDING caps the machines awaiting approval
 * that unauthenticated registrations can create. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"

/* 1 when a unit was taken from an existing counter, 0 when none was (no
 * row yet, or the budget is spent), negative on error. */
static int take_existing(struct att_dbc *c, const char *src, int64_t win, int64_t limit)
{
	int r = att_dbc_exec(c, "UPDATE rate_limits SET hits = hits + 1 WHERE source = ? AND window_start = ? AND hits < ?",
			     "sii", src, win, limit);

	return r < 0 ? r : r > 0;
}

int att_unauth_write_take(const struct att_svc *svc, struct att_dbc *c, const struct att_actor *actor,
			  char *reterr, size_t errlen)
{
	int64_t limit = svc->cfg->unauth_write_limit, window = svc->cfg->unauth_write_window_seconds;
	int64_t now = att_now().sec, win = now - now % window;
	const char *src = actor && actor->source_ip && *actor->source_ip ? actor->source_ip : "unknown";
	int r;

	if (!actor || actor->authenticated || limit <= 0)
		return 0;
	r = take_existing(c, src, win, limit);
	if (r == 0) {
		r = att_dbc_exec(c, "INSERT INTO rate_limits (source, window_start, hits) VALUES (?, ?, 1)"
				    " ON CONFLICT (source, window_start) DO NOTHING",
				 "si", src, win);
		/* another request created the row first: take from it */
		if (r == 0)
			r = take_existing(c, src, win, limit);
	}
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (r == 0) {
		att_machine_set_err(reterr, errlen,
				    "Too many unauthenticated writes from %s: the limit is %lld per %lld s (ITL_UNAUTH_WRITE_LIMIT) — retry in %lld s",
				    src, (long long)limit, (long long)window, (long long)(win + window - now));
		return ATT_E_LIMIT;
	}
	return 0;
}

int att_pending_cap_check(const struct att_svc *svc, struct att_dbc *c, const struct att_actor *actor,
			  char *reterr, size_t errlen)
{
	struct att_stmt *s;
	int64_t n = 0;
	int r;

	if ((actor && actor->authenticated) || svc->cfg->max_pending <= 0)
		return 0;
	r = att_dbc_query(c, &s, "SELECT COUNT(*) FROM machines WHERE status = 'pending_approval'", "");
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if ((r = att_stmt_next(s)) == 1)
		n = att_stmt_int(s, 0);
	att_stmt_done(s);
	if (r < 0)
		return att_machine_db_fail(r, reterr, errlen);
	if (n >= svc->cfg->max_pending) {
		att_machine_set_err(reterr, errlen,
				    "%lld machines are awaiting approval (ITL_MAX_PENDING) — approve or revoke some, then retry",
				    (long long)n);
		return ATT_E_LIMIT;
	}
	return 0;
}
