/* fanout.c - from outbox events to deliveries.
 *
 * Runs under the "events" lease (one replica at a time).  Each event not
 * fanned out yet gets one event_deliveries row per consumer that wants
 * it: an extension's hook ("<ext>/<event>"), or one row per target of a
 * target hook ("webhooks/all:<webhook id>").  Rows carry the machine's
 * slot, so one partition worker delivers one machine's events, in order.
 * An event nobody wants is settled at once.  Inserts ignore rows that
 * already exist, so a fan-out repeated after a crash changes nothing. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "ext/ext.h"
#include "obs/log.h"

#define LOG "attestd.events"
#define BATCH ATT_EXT_FANOUT_BATCH

struct fan {
	int64_t id;
	char *machine_id;
	char **consumers;
	size_t n, cap;
};

unsigned att_ext_event_slot(const char *machine_id)
{
	uint32_t h = 2166136261u;

	if (!machine_id)
		return 0;
	for (const unsigned char *p = (const unsigned char *)machine_id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % ATT_EVENT_SLOTS;
}

static int fan_add(struct fan *f, const char *consumer, const char *target)
{
	char *s;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		char **c = realloc(f->consumers, cap * sizeof(*c));

		if (!c)
			return ATT_E_NOMEM;
		f->consumers = c;
		f->cap = cap;
	}
	s = target ? att_asprintf("%s:%s", consumer, target) : att_strdup(consumer);
	if (!s)
		return ATT_E_NOMEM;
	f->consumers[f->n++] = s;
	return 0;
}

static void fan_release(struct fan *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->consumers[i]);
	free(f->consumers);
	free(f->machine_id);
	memset(f, 0, sizeof(*f));
}

/* Every consumer of one event; < 0 when a targets function failed. */
static int consumers_of(const struct att_svc *svc, int64_t id, const char *name, const char *payload, struct fan *f)
{
	size_t n;
	struct att_ext *const *exts = att_ext_list(&n);
	json_t *doc = NULL;
	char *json = NULL;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		for (size_t j = 0; j < exts[i]->nhooks && r == 0; j++) {
			const struct att_ext_hook *h = &exts[i]->hooks[j];
			struct att_ext_targets t;

			if (strcmp(h->event, "*") != 0 && strcmp(h->event, name) != 0)
				continue;
			if (!h->targets) {
				r = fan_add(f, h->consumer, NULL);
				continue;
			}
			if (!doc && (r = att_ext_event_doc(svc, id, f->machine_id, payload, &doc, &json)) < 0)
				break;
			{
				struct att_ext_event ev = { .id = id, .name = name, .json = json, .len = strlen(json),
							    .doc = doc };

				if (att_ext_event_targets(h, exts[i], &ev, &t) != ATT_EXT_OK) {
					att_log_warning(LOG, "Extension %s could not name the targets of event %lld (%s);"
							     " retried later", exts[i]->info->name, (long long)id, name);
					r = ATT_E_UNAVAILABLE;
				}
			}
			for (size_t k = 0; k < t.n && r == 0; k++)
				r = fan_add(f, h->consumer, t.items[k]);
			att_ext_targets_release(&t);
		}
	}
	json_decref(doc);
	free(json);
	return r;
}

static int fan_write(struct att_dbc *c, const struct fan *f, size_t n)
{
	char ts[32];
	int r = 0;

	att_time_iso(att_now(), ts);
	r = att_dbc_is_postgresql(c) ? att_dbc_exec(c, "BEGIN", "") : att_dbc_begin(c);
	for (size_t i = 0; i < n && r >= 0; i++) {
		int64_t slot = att_ext_event_slot(f[i].machine_id);

		for (size_t j = 0; j < f[i].n && r >= 0; j++)
			r = att_dbc_exec(c,
					 "INSERT INTO event_deliveries (event_id, consumer, machine_id, part, created_at,"
					 " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, consumer) DO NOTHING",
					 "ississ", f[i].id, f[i].consumers[j], f[i].machine_id, slot, ts, ts);
		if (r >= 0)
			r = att_dbc_exec(c, "UPDATE outbox_events SET fanned_at = ?, delivered_at = ? WHERE id = ?"
					    " AND fanned_at IS NULL",
					 "ssi", ts, f[i].n ? NULL : ts, f[i].id);
	}
	if (r >= 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	return r < 0 ? r : 0;
}

int att_ext_fanout(const struct att_svc *svc)
{
	struct fan f[BATCH];
	char *names[BATCH] = { 0 }, *payloads[BATCH] = { 0 };
	struct att_dbc *c = att_db_acquire(svc->db);
	struct att_stmt *s;
	size_t n = 0, ready = 0;
	bool stmt_open;
	int r;

	if (!c)
		return ATT_E_DB;
	memset(f, 0, sizeof(f));
	r = att_dbc_query(c, &s,
			  "SELECT id, event, machine_id, payload FROM outbox_events WHERE fanned_at IS NULL"
			  " ORDER BY id LIMIT ?",
			  "i", (int64_t)BATCH);
	stmt_open = r == 0;
	while (r == 0 && n < BATCH && (r = att_stmt_next(s)) == 1) {
		const char *mid = att_stmt_text(s, 2);

		r = 0;
		f[n].id = att_stmt_int(s, 0);
		names[n] = att_strdup(att_stmt_text(s, 1));
		payloads[n] = att_strdup(att_stmt_text(s, 3));
		if (!names[n] || !payloads[n] || (mid && !(f[n].machine_id = att_strdup(mid))))
			r = ATT_E_NOMEM;
		n++;
	}
	if (stmt_open)
		att_stmt_done(s);
	/* no statement open while extensions name their targets (they may query) */
	for (ready = 0; r >= 0 && ready < n; ready++)
		if (consumers_of(svc, f[ready].id, names[ready], payloads[ready], &f[ready]) < 0)
			break;		/* the ones before keep their order; this one waits */
	if (ready > 0) {
		int w = fan_write(c, f, ready);

		if (w < 0)
			r = w;
	}
	att_db_release(svc->db, c);
	for (size_t i = 0; i < n; i++) {
		fan_release(&f[i]);
		free(names[i]);
		free(payloads[i]);
	}
	return r < 0 ? r : (int)ready;
}
