/* dispatch.c - delivering events to their consumers (docs/events.md).
 *
 * Each partition worker (lease "events.<n>", one replica at a time) owns
 * a range of machine slots.  A run claims the due deliveries of its slots
 * in event order — on PostgreSQL with FOR UPDATE SKIP LOCKED, and always
 * with a hold (holder, held_until) so a replica that lost the lease
 * mid-batch and one that took it over never run the same attempt — and
 * counts the attempt before the hook runs: an attestd killed inside a
 * hook has used that attempt, and a hook that keeps killing attestd
 * ends in the dead letter instead of a crash loop.
 *
 * A delivery is skipped while an earlier delivery of the same consumer
 * for the same machine is pending, so each consumer sees one machine's
 * events in order; other consumers and other machines go on.  Outcomes:
 * OK -> delivered; PERMANENT -> dead; ERROR or timeout -> retried after
 * ITL_EVENT_RETRY_BASE_MS * 2^(attempt-1) (capped), dead after
 * ITL_EVENT_MAX_ATTEMPTS.  An event is settled (delivered_at) when none
 * of its deliveries is pending. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "ext/ext.h"
#include "ext/runner.h"
#include "obs/log.h"
#include "routes/routes.h"

#define LOG "attestd.events"
#define BATCH 256

static int64_t now_ms(void)
{
	struct att_time t = att_now();

	return t.sec * 1000 + t.usec / 1000;
}

/* ---- the event document ------------------------------------------------------------- */

static pthread_mutex_t boot_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *boot_urls;	/* iso_url, schematic_id: the same for every machine */

static void add_boot_urls(const struct att_svc *svc, json_t *doc)
{
	const char *k;
	json_t *v;
	const char *mac = NULL;
	const json_t *raw = json_object_get(json_object_get(doc, "raw"), "node");

	pthread_mutex_lock(&boot_mu);
	if (!boot_urls && (boot_urls = json_object()))
		att_api_boot_urls(svc, boot_urls);
	json_object_foreach(boot_urls, k, v)
		if (!json_object_get(doc, k) && strcmp(k, "installer_image") != 0)
			json_object_set(doc, k, v);
	pthread_mutex_unlock(&boot_mu);
	if (json_is_string(json_object_get(raw, "hw_mac")))
		mac = json_string_value(json_object_get(raw, "hw_mac"));
	if (!json_object_get(doc, "config_url")) {
		char *u = att_asprintf("%s/api/v1/config?mac=%s", svc->cfg->service_url, mac ? mac : "");

		json_object_set_new(doc, "config_url", u ? json_string(u) : json_null());
		free(u);
	}
	if (!json_object_get(doc, "schematic_id"))
		json_object_set_new(doc, "schematic_id", json_null());
}

int att_ext_event_doc(const struct att_svc *svc, int64_t id, const char *machine_id, const char *payload,
		      json_t **ret_doc, char **ret_json)
{
	json_error_t jerr;
	json_t *doc = payload ? json_loads(payload, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	const char *name;
	char *js;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return ATT_E_PARSE;
	}
	json_object_set_new(doc, "id", json_integer(id));
	json_object_set_new(doc, "machine_id", machine_id ? json_string(machine_id) : json_null());
	name = json_string_value(json_object_get(doc, "event"));
	if (name && strcmp(name, "node.provisioned") == 0)
		add_boot_urls(svc, doc);
	js = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!js) {
		json_decref(doc);
		return ATT_E_NOMEM;
	}
	*ret_doc = doc;
	*ret_json = js;
	return 0;
}

/* ---- one claimed delivery ----------------------------------------------------------- */

enum outcome { O_RELEASE, O_DELIVERED, O_RETRY, O_DEAD };

struct claimed {
	int64_t id, event_id, attempts;
	char *consumer, *machine_id, *event, *payload;
	enum outcome out;
	bool queued;		/* handed to the runner, outcome to come */
	int64_t next_at;
	char error[512];
};

static void claimed_release(struct claimed *d)
{
	free(d->consumer);
	free(d->machine_id);
	free(d->event);
	free(d->payload);
}

/* The hook a consumer names: "<ext>/<event>[#n][:target]". */
static const struct att_ext_hook *find_consumer(const char *consumer, struct att_ext **ret_ext, const char **ret_target)
{
	const char *colon = strchr(consumer, ':');
	size_t len = colon ? (size_t)(colon - consumer) : strlen(consumer), n;
	struct att_ext *const *exts = att_ext_list(&n);

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < exts[i]->nhooks; j++) {
			const struct att_ext_hook *h = &exts[i]->hooks[j];

			if (strlen(h->consumer) == len && memcmp(h->consumer, consumer, len) == 0 &&
			    (colon != NULL) == (h->targets != NULL)) {
				*ret_ext = exts[i];
				*ret_target = colon ? colon + 1 : NULL;
				return h;
			}
		}
	return NULL;
}

static int64_t backoff_ms(const struct att_config *cfg, int64_t attempt)
{
	int64_t ms = cfg->event_retry_base_ms, cap = cfg->event_retry_max_seconds * 1000;

	for (int64_t i = 1; i < attempt && ms < cap; i++)
		ms *= 2;
	return ms < cap ? ms : cap;
}

static void fail(struct att_ext_partition *p, struct claimed *d, const char *why)
{
	const struct att_config *cfg = p->svc->cfg;

	if (why && why != d->error)
		snprintf(d->error, sizeof(d->error), "%s", why);
	if (d->attempts >= cfg->event_max_attempts) {
		d->out = O_DEAD;
		att_log_warning(LOG, "Event %lld (%s) to %s: attempt %lld failed (%s); dead-lettered after %lld attempts",
				(long long)d->event_id, d->event, d->consumer, (long long)d->attempts, d->error,
				(long long)d->attempts);
		return;
	}
	d->out = O_RETRY;
	d->next_at = now_ms() + backoff_ms(cfg, d->attempts);
	att_log_warning(LOG, "Event %lld (%s) to %s: attempt %lld failed (%s); retried in %lld ms", (long long)d->event_id,
			d->event, d->consumer, (long long)d->attempts, d->error,
			(long long)(d->next_at - now_ms()));
}

/* The call for one claimed delivery, or NULL with its outcome decided
 * here (an attempt that did not finish, no such consumer, a bad event). */
static struct att_ext_job *prepare(struct att_ext_partition *p, struct claimed *d)
{
	const struct att_config *cfg = p->svc->cfg;
	struct att_ext *ext = NULL;
	const char *target = NULL;
	const struct att_ext_hook *h = find_consumer(d->consumer, &ext, &target);
	struct att_ext_job *j;

	if (d->attempts > cfg->event_max_attempts) {
		/* the attempts before did not finish: attestd died inside them */
		snprintf(d->error, sizeof(d->error), "attempt %lld did not finish (attestd stopped during the hook)",
			 (long long)(d->attempts - 1));
		d->attempts--;
		fail(p, d, d->error);
		return NULL;
	}
	if (!h) {
		fail(p, d, "no such consumer is loaded");
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j || att_ext_event_doc(p->svc, d->event_id, d->machine_id, d->payload, &j->doc, &j->json) < 0 ||
	    !(j->name = att_strdup(d->event)) || (target && !(j->target = att_strdup(target))) ||
	    (d->machine_id && !(j->key = att_asprintf("%s %s", d->consumer, d->machine_id)))) {
		att_ext_job_free(j);
		fail(p, d, "the event could not be prepared (invalid JSON or out of memory)");
		return NULL;
	}
	j->ext = ext;
	j->hook = h;
	j->id = d->event_id;
	j->len = strlen(j->json);
	j->attempt = (int)d->attempts;
	j->retry_on_error = d->attempts < cfg->event_max_attempts;
	return j;
}

/* The outcome of a call that was handed to the runner. */
static void outcome(struct att_ext_partition *p, struct claimed *d, const struct att_ext_outcome *o)
{
	const struct att_config *cfg = p->svc->cfg;

	if (o->result == ATT_EXT_RUN_SKIPPED) {
		d->out = O_RELEASE;
	} else if (o->result == ATT_EXT_RUN_TIMEOUT) {
		snprintf(d->error, sizeof(d->error), "timed out after %lld s", (long long)cfg->event_hook_timeout_seconds);
		fail(p, d, d->error);
	} else if (o->result == ATT_EXT_OK) {
		d->out = O_DELIVERED;
	} else if (o->result == ATT_EXT_PERMANENT) {
		snprintf(d->error, sizeof(d->error), "%s", o->error[0] ? o->error : "the consumer gave up on the event");
		d->out = O_DEAD;
		att_log_warning(LOG, "Consumer %s gave up on event %lld (%s): %s", d->consumer, (long long)d->event_id,
				d->event, d->error);
	} else {
		snprintf(d->error, sizeof(d->error), "%s", o->error[0] ? o->error : "the hook returned an error");
		fail(p, d, d->error);
	}
}

/* ---- claiming and recording ----------------------------------------------------------- */

static int tx_begin(struct att_dbc *c)
{
	/* PostgreSQL: row locks only, not the global write lock */
	return att_dbc_is_postgresql(c) ? att_dbc_exec(c, "BEGIN", "") : att_dbc_begin(c);
}

/* Due, not held, and not behind an earlier pending delivery of the same
 * consumer and machine that is not due or is held.  In slot order, then
 * event order: the due index (status, part, event_id) serves that order,
 * so the scan stops after LIMIT rows instead of sorting the whole backlog
 * (88 ms per claim of 5,000 pending on PostgreSQL, most of its CPU).  A
 * machine lives in one slot, so its events still come in event order. */
#define CLAIM_WHERE \
	" WHERE id IN (SELECT d.id FROM event_deliveries d WHERE d.status = 'pending' AND d.part >= ? AND d.part < ?" \
	" AND d.next_attempt_at <= ? AND d.held_until < ?" \
	" AND NOT EXISTS (SELECT 1 FROM event_deliveries e WHERE e.consumer = d.consumer AND e.machine_id = d.machine_id" \
	" AND e.status = 'pending' AND e.event_id < d.event_id AND (e.next_attempt_at > ? OR e.held_until >= ?))" \
	" ORDER BY d.part, d.event_id, d.id LIMIT ?"

/* Anything due in the partition?  A read: an idle partition never takes
 * the write lock. */
static int any_due(struct att_dbc *c, const struct att_ext_partition *p, int64_t now)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s,
			      "SELECT 1 FROM event_deliveries WHERE status = 'pending' AND part >= ? AND part < ?"
			      " AND next_attempt_at <= ? AND held_until < ? LIMIT 1",
			      "iiii", (int64_t)p->lo, (int64_t)p->hi, now, now);

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	att_stmt_done(s);
	return r;
}

static int claim_range(struct att_dbc *c, const char *hold, unsigned from, unsigned to, int64_t now, int64_t until,
		       size_t limit)
{
	if (from >= to || limit == 0)
		return 0;
	return att_dbc_exec(c,
			    att_dbc_is_postgresql(c)
				    ? "UPDATE event_deliveries SET holder = ?, held_until = ?, attempts = attempts + 1" CLAIM_WHERE
				      " FOR UPDATE OF d SKIP LOCKED)"
				    : "UPDATE event_deliveries SET holder = ?, held_until = ?, attempts = attempts + 1" CLAIM_WHERE ")",
			    "siiiiiiii", hold, until, (int64_t)from, (int64_t)to, now, now, now, now, (int64_t)limit);
}

/* Inside the caller's transaction: hold up to BATCH due deliveries as
 * `hold`, count their attempt, and read them back in event order.  The
 * partition's slots are visited round-robin from p->cursor, so a backlog
 * in one slot does not keep the others waiting. */
static int claim_tx(struct att_dbc *c, struct att_ext_partition *p, const char *hold, int64_t now, int64_t until,
		    struct claimed *out, size_t *ret_n)
{
	unsigned cur = p->cursor >= p->lo && p->cursor < p->hi ? p->cursor : p->lo, last1 = 0, last2 = 0;
	struct att_stmt *s;
	size_t n = 0;
	int r, r2 = 0;

	*ret_n = 0;
	r = claim_range(c, hold, cur, p->hi, now, until, BATCH);
	if (r >= 0 && r < BATCH)
		r2 = claim_range(c, hold, p->lo, cur, now, until, BATCH - (size_t)r);
	if (r < 0 || r2 < 0)
		return r < 0 ? r : r2;
	if (r + r2 == 0)
		return 0;
	r = att_dbc_query(c, &s,
			  "SELECT d.id, d.event_id, d.consumer, d.machine_id, d.attempts, o.event, o.payload, d.part"
			  " FROM event_deliveries d JOIN outbox_events o ON o.id = d.event_id"
			  " WHERE d.holder = ? AND d.status = 'pending' ORDER BY d.event_id, d.id",
			  "s", hold);
	while (r == 0 && n < BATCH && (r = att_stmt_next(s)) == 1) {
		struct claimed *d = &out[n++];
		unsigned part = (unsigned)att_stmt_int(s, 7);

		memset(d, 0, sizeof(*d));
		d->id = att_stmt_int(s, 0);
		d->event_id = att_stmt_int(s, 1);
		d->consumer = att_strdup(att_stmt_text(s, 2));
		d->machine_id = att_stmt_text(s, 3) ? att_strdup(att_stmt_text(s, 3)) : NULL;
		d->attempts = att_stmt_int(s, 4);
		d->event = att_strdup(att_stmt_text(s, 5));
		d->payload = att_strdup(att_stmt_text(s, 6));
		r = d->consumer && d->event && d->payload ? 0 : ATT_E_NOMEM;
		if (part >= cur && part + 1 > last1)
			last1 = part + 1;
		if (part < cur && part + 1 > last2)
			last2 = part + 1;
	}
	if (r >= 0)
		att_stmt_done(s);
	/* on from the slot after the last one served (the commit may still fail: only fairness is at stake) */
	p->cursor = r2 > 0 ? last2 : last1;
	*ret_n = n;
	return r < 0 ? r : 0;
}

/* Up to GROUP ids per statement (text parameters: both backends compare
 * them as integers); a group is padded by repeating its first id. */
#define GROUP 64
#define Q8 "?,?,?,?,?,?,?,?"
#define Q64 Q8 "," Q8 "," Q8 "," Q8 "," Q8 "," Q8 "," Q8 "," Q8

static int exec_group(struct att_dbc *c, const char *sql, const char *const *fixed, int nfixed, const int64_t *ids,
		      size_t n)
{
	char buf[GROUP][24];
	const char *vals[4 + GROUP];
	struct att_stmt *s;
	int r;

	for (int i = 0; i < nfixed; i++)
		vals[i] = fixed[i];
	for (size_t i = 0; i < GROUP; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)ids[i < n ? i : 0]);
		vals[nfixed + (int)i] = buf[i];
	}
	r = att_dbc_query_texts(c, &s, sql, nfixed + GROUP, vals);
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1)
		;
	att_stmt_done(s);
	return r;
}

/* ids[0..n) in groups of GROUP */
static int exec_grouped(struct att_dbc *c, const char *sql, const char *const *fixed, int nfixed, const int64_t *ids,
			size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i += GROUP)
		r = exec_group(c, sql, fixed, nfixed, ids + i, n - i < GROUP ? n - i : GROUP);
	return r;
}

/* One outcome other than delivered (rare): a statement of its own. */
static int record_one(struct att_dbc *c, const char *hold, const struct claimed *d, const char *ts)
{
	switch (d->out) {
	case O_RELEASE:
		return att_dbc_exec(c, "UPDATE event_deliveries SET attempts = attempts - 1, holder = NULL, held_until = 0"
				       " WHERE id = ? AND holder = ?", "is", d->id, hold);
	case O_RETRY:
		return att_dbc_exec(c, "UPDATE event_deliveries SET next_attempt_at = ?, last_error = ?, updated_at = ?,"
				       " holder = NULL, held_until = 0 WHERE id = ? AND holder = ?",
				    "issis", d->next_at, d->error, ts, d->id, hold);
	case O_DEAD:
		return att_dbc_exec(c, "UPDATE event_deliveries SET status = 'dead', last_error = ?, updated_at = ?,"
				       " attempts = ?, holder = NULL, held_until = 0 WHERE id = ? AND holder = ?",
				    "ssiis", d->error, ts, d->attempts, d->id, hold);
	case O_DELIVERED:
		break;
	}
	return 0;
}

/* Inside the caller's transaction: the outcomes of a delivered batch.
 * The delivered ones (nearly all) go in groups, then every event whose
 * deliveries are all done is settled, also in groups. */
static int record_tx(struct att_dbc *c, const char *hold, struct claimed *d, size_t n)
{
	char ts[32];
	int64_t ok[BATCH], ev[BATCH];
	size_t nok = 0, nev = 0;
	int r = 0;

	att_time_iso(att_now(), ts);
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (d[i].out == O_DELIVERED)
			ok[nok++] = d[i].id;
		else
			r = record_one(c, hold, &d[i], ts);
		if ((d[i].out == O_DELIVERED || d[i].out == O_DEAD) && (nev == 0 || ev[nev - 1] != d[i].event_id))
			ev[nev++] = d[i].event_id;
	}
	if (r >= 0) {
		const char *fixed[3] = { ts, ts, hold };

		r = exec_grouped(c, "UPDATE event_deliveries SET status = 'delivered', delivered_at = ?, updated_at = ?,"
				    " last_error = NULL, holder = NULL, held_until = 0 WHERE holder = ? AND id IN (" Q64 ")",
				 fixed, 3, ok, nok);
	}
	if (r >= 0)
		r = exec_grouped(c, "UPDATE outbox_events SET delivered_at = ? WHERE delivered_at IS NULL"
				    " AND fanned_at IS NOT NULL AND id IN (" Q64 ") AND NOT EXISTS (SELECT 1 FROM"
				    " event_deliveries e WHERE e.event_id = outbox_events.id AND e.status = 'pending')",
				 (const char *[]){ ts }, 1, ev, nev);
	return r < 0 ? r : 0;
}

/* Is (consumer, machine) held up earlier in this batch: by a failure
 * decided before the run (a retry, a delivery given back) or, with
 * `queued`, by a call still to run?  (Calls held up by calls are the
 * runner's to weigh: it skips them when the earlier one fails.) */
static bool blocked(const struct claimed *d, size_t upto, const struct claimed *me, bool queued)
{
	if (!me->machine_id)
		return false;
	for (size_t i = 0; i < upto; i++)
		if (((queued && d[i].queued) || (!d[i].queued && (d[i].out == O_RETRY || d[i].out == O_RELEASE))) &&
		    d[i].machine_id && strcmp(d[i].machine_id, me->machine_id) == 0 &&
		    strcmp(d[i].consumer, me->consumer) == 0)
			return true;
	return false;
}

/* One batch in hand: a partition's claimed deliveries and their hold. */
struct batch {
	struct claimed d[BATCH];
	size_t n;
	char hold[192];
	int64_t claimed_at;
};

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		claimed_release(&b->d[i]);
	b->n = 0;
}

static int64_t hold_until(const struct att_ext_partition *p, int64_t now)
{
	return now + 2 * p->svc->cfg->event_hook_timeout_seconds * 1000 + 5000;
}

static void next_hold(struct att_ext_partition *p, const char *holder, struct batch *b)
{
	snprintf(b->hold, sizeof(b->hold), "%s#%s#%llu", holder, p->lease, (unsigned long long)++p->claims);
	b->claimed_at = now_ms();
}

/* One transaction: the outcomes of `done` (when it has any) and, when
 * `next` is given, the claim of the next batch.  A batch's outcomes and
 * the following claim share one durable commit. */
static int settle_and_claim(struct att_ext_partition *p, struct batch *done, struct batch *next)
{
	struct att_dbc *c = att_db_acquire(p->svc->db);
	int r;

	if (!c)
		return ATT_E_DB;
	if (next && next->n == 0 && (!done || done->n == 0)) {
		/* nothing to write down: take the write lock only when something is due */
		r = any_due(c, p, next->claimed_at);
		if (r <= 0) {
			att_db_release(p->svc->db, c);
			return r;
		}
	}
	r = tx_begin(c);
	if (r >= 0 && done && done->n)
		r = record_tx(c, done->hold, done->d, done->n);
	if (r >= 0 && next)
		r = claim_tx(c, p, next->hold, next->claimed_at, hold_until(p, next->claimed_at), next->d, &next->n);
	if (r >= 0)
		r = att_dbc_commit(c);
	else
		att_dbc_rollback(c);
	att_db_release(p->svc->db, c);	/* no connection held while hooks run */
	if (r < 0 && next)
		batch_release(next);
	return r < 0 ? r : 0;
}

/* Run the hooks of a claimed batch, in order, handed to the runner
 * thread in one go; the count settled. */
static int run_batch(struct att_ext_partition *p, struct batch *b)
{
	const struct att_config *cfg = p->svc->cfg;
	struct att_ext_job **jobs = calloc(BATCH, sizeof(*jobs));
	struct att_ext_outcome *out = calloc(BATCH, sizeof(*out));
	size_t idx[BATCH], nj = 0;
	int64_t left = b->claimed_at + cfg->event_hook_timeout_seconds * 1000 - now_ms();
	int settled = 0;

	if (!jobs || !out) {
		free(jobs);
		free(out);
		for (size_t i = 0; i < b->n; i++)
			b->d[i].out = O_RELEASE;
		return 0;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct claimed *d = &b->d[i];

		/* past half the hold: give the rest back rather than outlive it */
		if (left <= 0 || blocked(b->d, i, d, false)) {
			d->out = O_RELEASE;
			continue;
		}
		if ((jobs[nj] = prepare(p, d)) != NULL) {
			d->queued = true;
			idx[nj++] = i;
		} else if (blocked(b->d, i, d, true)) {
			d->out = O_RELEASE;	/* decided early, but an earlier call may yet fail */
		}
	}
	if (nj > 0)
		(void)att_ext_run_batch(&p->runner, jobs, nj, cfg->event_hook_timeout_seconds * 1000, left, out);
	else
		free(jobs);
	for (size_t k = 0; k < nj; k++) {
		b->d[idx[k]].queued = false;
		outcome(p, &b->d[idx[k]], &out[k]);
	}
	free(out);
	for (size_t i = 0; i < b->n; i++)
		settled += b->d[i].out == O_DELIVERED || b->d[i].out == O_DEAD;
	return settled;
}

/* Batches until the partition has nothing due (or a second passed: the
 * lease is renewed between runs).  Each batch's outcomes are committed
 * together with the claim of the next one. */
int att_ext_deliver(struct att_ext_partition *p, const char *holder)
{
	struct batch *b = calloc(2, sizeof(*b)), *cur, *nxt;
	int64_t until = now_ms() + 1000;
	int total = 0, r;

	if (!b)
		return ATT_E_NOMEM;
	cur = &b[0];
	nxt = &b[1];
	next_hold(p, holder, cur);
	r = settle_and_claim(p, NULL, cur);
	while (r >= 0 && cur->n > 0) {
		/* claim again in the same transaction even after a short batch: the
		 * fan-out hands deliveries over a few at a time, and a claim that
		 * finds nothing costs less than a commit of its own */
		bool more = now_ms() < until;

		total += run_batch(p, cur);
		if (more)
			next_hold(p, holder, nxt);
		/* the outcomes are known: keep trying to write them down (busy
		 * database), else the held rows come back after their hold and
		 * are delivered twice */
		for (int k = 0; k < 5; k++) {
			r = settle_and_claim(p, cur, more ? nxt : NULL);
			if (r == 0)
				break;
			usleep(100000u << k);
		}
		batch_release(cur);
		if (r < 0 || !more)
			break;
		cur = nxt;
		nxt = cur == &b[0] ? &b[1] : &b[0];
	}
	batch_release(cur);
	batch_release(nxt);
	free(b);
	return r < 0 && total == 0 ? r : total;
}

void att_ext_partition_release(struct att_ext_partition *p)
{
	att_ext_runner_free(p->runner);
	p->runner = NULL;
}
