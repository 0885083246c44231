/* dispatch.c - delivering lifecycle events from the outbox to the
 * extensions' hooks.
 *
 * Events are written to outbox_events in the transaction of the state
 * change.  This runs under the "events" lease (one replica at a time):
 * it reads undelivered events in id order, calls every hook registered
 * for the event's name or "*", and marks the event delivered once every
 * hook returned OK or PERMANENT.  A hook returning ERROR stops the batch
 * (order is kept) and the event is offered again on the next run, so a
 * hook sees an event at least once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "ext/ext.h"
#include "obs/log.h"

#define LOG "attestd.events"
#define BATCH 200

struct pending {
	int64_t id;
	char *event;
	char *json;
	json_t *doc;
};

/* The event as hooks see it: the stored payload plus id and machine_id. */
static int load_event(struct att_stmt *s, struct pending *p)
{
	json_error_t jerr;
	const char *mid = att_stmt_text(s, 2);

	p->id = att_stmt_int(s, 0);
	p->event = att_strdup(att_stmt_text(s, 1));
	p->doc = json_loads(att_stmt_text(s, 3), JSON_REJECT_DUPLICATES, &jerr);
	if (!p->event || !json_is_object(p->doc))
		return ATT_E_PARSE;
	json_object_set_new(p->doc, "id", json_integer(p->id));
	json_object_set_new(p->doc, "machine_id", mid ? json_string(mid) : json_null());
	p->json = json_dumps(p->doc, JSON_COMPACT | JSON_SORT_KEYS);
	return p->json ? 0 : ATT_E_NOMEM;
}

static void pending_release(struct pending *p)
{
	free(p->event);
	free(p->json);
	json_decref(p->doc);
	memset(p, 0, sizeof(*p));
}

/* Every matching hook; false when one asks to be retried. */
static bool deliver(const struct pending *p)
{
	size_t n;
	struct att_ext *const *exts = att_ext_list(&n);

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < exts[i]->nhooks; j++) {
			const struct att_ext_hook *h = &exts[i]->hooks[j];
			int r;

			if (strcmp(h->event, "*") != 0 && strcmp(h->event, p->event) != 0)
				continue;
			r = att_ext_event_deliver(h, exts[i], p->id, p->event, p->json, strlen(p->json), p->doc);
			if (r == ATT_EXT_PERMANENT) {
				att_log_warning(LOG, "Extension %s gave up on event %lld (%s)", exts[i]->info->name,
						(long long)p->id, p->event);
			} else if (r != ATT_EXT_OK) {
				att_log_warning(LOG, "Extension %s failed on event %lld (%s); retried later",
						exts[i]->info->name, (long long)p->id, p->event);
				return false;
			}
		}
	}
	return true;
}

int att_ext_dispatch(const struct att_svc *svc)
{
	struct pending batch[BATCH];
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	size_t n = 0;
	int r, done = 0;

	if (!c)
		return ATT_E_DB;
	r = att_dbc_query(c, &s,
			  "SELECT id, event, machine_id, payload FROM outbox_events WHERE delivered_at IS NULL"
			  " ORDER BY id LIMIT ?",
			  "i", (int64_t)BATCH);
	if (r == 0) {
		while (n < BATCH && (r = att_stmt_next(s)) == 1) {
			memset(&batch[n], 0, sizeof(batch[n]));
			if (load_event(s, &batch[n]) < 0)
				att_log_error(LOG, "outbox event %lld is not valid JSON; skipped",
					      (long long)batch[n].id);
			n++;
		}
		att_stmt_done(s);
	}
	att_db_release(svc->db, c);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char ts[32];

		if (batch[i].json && !deliver(&batch[i]))
			break;
		c = att_db_acquire(svc->db);
		if (!c) {
			r = ATT_E_DB;
			break;
		}
		att_time_iso(att_now(), ts);
		r = att_dbc_exec(c, "UPDATE outbox_events SET delivered_at = ? WHERE id = ?", "si", ts, batch[i].id);
		att_db_release(svc->db, c);
		if (r < 0)
			break;
		done++;
	}
out:
	for (size_t i = 0; i < n; i++)
		pending_release(&batch[i]);
	return r < 0 ? r : done;
}
