/* heartbeat.c - node.heartbeat_missed (docs/events.md): an attested
 * machine not heard from for missed_seconds gets one event per further
 * period of silence, missed_count 1, 2, ...  The count is kept on the
 * machine row together with the last contact it refers to, so a
 * machine that is heard from again starts over at 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "machine/machine-internal.h"
#include "machine/machine.h"
#include "machine/sweep.h"

#define BATCH 500

struct silent {
	char machine_id[80];
	char seen[40];
	int64_t count;
};

static int emit(struct att_dbc *c, const struct silent *s, int64_t missed)
{
	struct att_machine m = { 0 };
	int r = att_dbc_exec(c,
			     "UPDATE machines SET heartbeat_missed_count = ?, heartbeat_missed_for = ? WHERE machine_id = ?"
			     " AND status = 'attested' AND COALESCE(last_contact_at, attested_at) = ?",
			     "isss", missed, s->seen, s->machine_id, s->seen);

	if (r <= 0)
		return r;	/* heard from meanwhile */
	r = att_machine_get(c, s->machine_id, &m);
	if (r == 0)
		r = att_machine_outbox(c, "node.heartbeat_missed", &m, "attested",
				       json_pack("{s:s,s:I}", "last_seen_at", s->seen, "missed_count", (json_int_t)missed));
	att_machine_release(&m);
	return r < 0 ? r : 1;
}

int att_heartbeat_sweep(struct att_db *db, int64_t missed_seconds)
{
	struct att_dbc *c;
	struct att_stmt *st;
	struct silent *s;
	struct att_time now = att_now(), cut = now;
	char cutoff[32];
	size_t n = 0;
	int r, emitted = 0;

	if (missed_seconds <= 0)
		return 0;
	cut.sec -= missed_seconds;
	att_time_iso(cut, cutoff);
	s = calloc(BATCH, sizeof(*s));
	c = s ? att_db_acquire(db) : NULL;
	if (!c) {
		free(s);
		return s ? ATT_E_DB : ATT_E_NOMEM;
	}
	r = att_dbc_begin(c);
	if (r == 0)
		r = att_dbc_query(c, &st,
				  "SELECT machine_id, COALESCE(last_contact_at, attested_at), heartbeat_missed_count,"
				  " heartbeat_missed_for FROM machines WHERE status = 'attested'"
				  " AND COALESCE(last_contact_at, attested_at) < ? ORDER BY id LIMIT ?",
				  "si", cutoff, (int64_t)BATCH);
	while (r == 0 && n < BATCH && (r = att_stmt_next(st)) == 1) {
		const char *for_ = att_stmt_text(st, 3), *seen = att_stmt_text(st, 1);

		r = 0;
		if (!seen)
			continue;
		snprintf(s[n].machine_id, sizeof(s[n].machine_id), "%s", att_stmt_text(st, 0));
		snprintf(s[n].seen, sizeof(s[n].seen), "%s", seen);
		s[n].count = for_ && strcmp(for_, seen) == 0 ? att_stmt_int(st, 2) : 0;
		n++;
	}
	if (r >= 0)
		att_stmt_done(st);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct att_time t;
		int64_t missed;

		if (att_time_parse(s[i].seen, &t) < 0)
			continue;
		missed = (now.sec - t.sec) / missed_seconds;
		if (missed > s[i].count) {
			r = emit(c, &s[i], missed);
			emitted += r > 0;
		}
	}
	if (r >= 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	att_db_release(db, c);
	free(s);
	return r < 0 ? r : emitted;
}
