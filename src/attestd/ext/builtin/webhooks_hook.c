/* webhooks_hook.c - the webhooks module's side of event delivery: which
 * webhooks an event goes to (one target each), one delivery attempt
 * (recorded in extension_webhooks_deliveries), the /test route, and the
 * key that seals secrets at rest. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "webhooks.h"

#define H wh_host
#define MAX_TESTS 4

bool wh_have_key;
static atomic_int tests_running;

static bool subscribed(const char *events_json, const char *name)
{
	json_error_t jerr;
	json_t *a = json_loads(events_json, 0, &jerr), *e;
	size_t i;
	bool yes = false;

	json_array_foreach(a, i, e)
		yes |= json_is_string(e) && (strcmp(json_string_value(e), "*") == 0 || strcmp(json_string_value(e), name) == 0);
	json_decref(a);
	return yes;
}

int wh_targets(struct att_ext *ext, const struct att_ext_event *ev, struct att_ext_targets *out, void *ud)
{
	struct att_ext_db *db = H->db_acquire(ext);
	struct att_ext_rows *rows;
	int r;

	(void)ud;
	if (!db)
		return ATT_EXT_UNAVAILABLE;
	r = H->db_query(db, &rows, "SELECT id, events FROM extension_webhooks_hooks WHERE active = 1 ORDER BY id", "");
	if (r == ATT_EXT_OK) {
		while ((r = H->rows_next(rows)) == 1)
			if (subscribed(H->rows_text(rows, 1), H->event_name(ev)) &&
			    H->add_target(out, H->rows_text(rows, 0)) != ATT_EXT_OK) {
				r = ATT_EXT_ERROR;
				break;
			}
		H->rows_done(rows);
	}
	H->db_release(ext, db);
	return r < 0 ? ATT_EXT_ERROR : ATT_EXT_OK;
}

/* Delivery attempts are logged in batches by a flusher thread: one write
 * transaction per batch instead of one per request (the durable record of
 * each delivery is the core's event_deliveries; this is its history). */
struct attempt {
	struct attempt *next;
	char id[33], webhook[65], ts[32], event[64], outcome[12], error[256];
	int64_t event_id, attempt, status, duration_ms;
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cv = PTHREAD_COND_INITIALIZER;
static struct attempt *log_head, **log_tail = &log_head;
static size_t log_len;
static bool log_stop, log_running;
static pthread_t log_th;
static struct att_ext *log_ext;

static void record(struct att_ext *ext, const char *webhook, int64_t event_id, const char *event, int attempt,
		   int outcome, const struct wh_result *res)
{
	struct attempt *a = calloc(1, sizeof(*a));

	(void)ext;
	if (!a)
		return;
	wh_random_hex(a->id, 16);
	wh_now_iso(a->ts);
	snprintf(a->webhook, sizeof(a->webhook), "%s", webhook);
	snprintf(a->event, sizeof(a->event), "%s", event);
	snprintf(a->outcome, sizeof(a->outcome), "%s",
		 outcome == ATT_EXT_OK ? "delivered" : outcome == ATT_EXT_PERMANENT ? "failed" : "retry");
	snprintf(a->error, sizeof(a->error), "%s", res->error);
	a->event_id = event_id;
	a->attempt = attempt;
	a->status = res->status;
	a->duration_ms = res->duration_ms;
	pthread_mutex_lock(&log_mu);
	if (log_len < 100000) {
		*log_tail = a;
		log_tail = &a->next;
		log_len++;
		a = NULL;
		/* wake the flusher for the first one and when a batch is full, not
		 * on every attempt (a wake-up per delivery cost more than the POST) */
		if (log_len == 1 || log_len == 500)
			pthread_cond_signal(&log_cv);
	}
	pthread_mutex_unlock(&log_mu);
	free(a);	/* dropped: the log is full (the database is away) */
}

static void flush_batch(struct attempt *list)
{
	struct att_ext_db *db = H->db_acquire(log_ext);
	int r = db ? H->db_begin(db) : ATT_EXT_UNAVAILABLE;

	for (struct attempt *a = list; a && r >= 0; a = a->next)
		r = H->db_exec(db,
			       "INSERT INTO extension_webhooks_deliveries (id, webhook_id, event_id, event, attempt, status_code,"
			       " outcome, error, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       "ssisiissis", a->id, a->webhook, a->event_id, a->event, a->attempt, a->status, a->outcome,
			       a->error[0] ? a->error : NULL, a->duration_ms, a->ts);
	if (db && r >= 0)
		(void)H->db_commit(db);
	else if (db)
		H->db_rollback(db);
	if (db)
		H->db_release(log_ext, db);
	while (list) {
		struct attempt *n = list->next;

		free(list);
		list = n;
	}
}

static void *flusher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&log_mu);
	for (;;) {
		struct attempt *list;
		struct timespec until;

		while (!log_head && !log_stop)
			pthread_cond_wait(&log_cv, &log_mu);
		if (!log_head && log_stop)
			break;
		/* gather for up to 50 ms, then write them all at once */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!log_stop && log_len < 500 && pthread_cond_timedwait(&log_cv, &log_mu, &until) == 0)
			;
		list = log_head;
		log_head = NULL;
		log_tail = &log_head;
		log_len = 0;
		pthread_mutex_unlock(&log_mu);
		flush_batch(list);
		pthread_mutex_lock(&log_mu);
	}
	pthread_mutex_unlock(&log_mu);
	return NULL;
}

/* The last secret each delivery thread opened, by its sealed text: a
 * thread delivering a backlog to one webhook decrypts its secret once,
 * and a changed secret is a different sealed text (nothing goes stale). */
struct opened {
	char *sealed, *plain;
};

static pthread_key_t opened_key;
static pthread_once_t opened_once = PTHREAD_ONCE_INIT;

static void opened_clear(struct opened *o)
{
	if (o->plain)
		OPENSSL_cleanse(o->plain, strlen(o->plain));
	free(o->plain);
	free(o->sealed);
	o->plain = o->sealed = NULL;
}

static void opened_free(void *p)
{
	opened_clear(p);
	free(p);
}

static void opened_key_init(void)
{
	(void)pthread_key_create(&opened_key, opened_free);
}

static char *secret_open_cached(const char *sealed)
{
	struct opened *o;

	pthread_once(&opened_once, opened_key_init);
	o = pthread_getspecific(opened_key);
	if (!o && (o = calloc(1, sizeof(*o))) != NULL && pthread_setspecific(opened_key, o) != 0) {
		free(o);
		o = NULL;
	}
	if (o && o->sealed && strcmp(o->sealed, sealed) == 0)
		return strdup(o->plain);
	if (o) {
		opened_clear(o);
		o->plain = wh_secret_open(sealed);
		o->sealed = o->plain ? strdup(sealed) : NULL;
		if (o->plain && !o->sealed)
			opened_clear(o);
	}
	return o && o->plain ? strdup(o->plain) : wh_secret_open(sealed);
}

/* url and the opened secret of an active webhook; ATT_EXT_NOTFOUND when gone or disabled. */
static int load(struct att_ext *ext, const char *id, char **ret_url, char **ret_secret)
{
	struct att_ext_db *db = H->db_acquire(ext);
	struct att_ext_rows *rows;
	int r;

	*ret_url = *ret_secret = NULL;
	if (!db)
		return ATT_EXT_UNAVAILABLE;
	r = H->db_query(db, &rows, "SELECT url, secret_sealed, active FROM extension_webhooks_hooks WHERE id = ?", "s", id);
	if (r == ATT_EXT_OK) {
		r = H->rows_next(rows);
		if (r == 1 && H->rows_int(rows, 2)) {
			*ret_url = strdup(H->rows_text(rows, 0));
			*ret_secret = secret_open_cached(H->rows_text(rows, 1));
			r = *ret_url && *ret_secret ? ATT_EXT_OK : ATT_EXT_INVALID;
		} else {
			r = r < 0 ? r : ATT_EXT_NOTFOUND;
		}
		H->rows_done(rows);
	}
	H->db_release(ext, db);
	return r;
}

int wh_deliver(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	const char *id = H->event_target(ev), *body;
	char delivery[128], *url = NULL, *secret = NULL;
	struct wh_result res = { 0 };
	size_t len;
	int r;

	(void)ud;
	r = load(ext, id, &url, &secret);
	if (r == ATT_EXT_NOTFOUND) {
		H->event_error(ev, "webhook %s was deleted or disabled", id);
		return ATT_EXT_PERMANENT;
	}
	if (r == ATT_EXT_INVALID) {
		H->event_error(ev, "webhook %s: its secret cannot be opened (was the key changed?)", id);
		free(url);
		free(secret);
		return ATT_EXT_PERMANENT;
	}
	if (r != ATT_EXT_OK) {
		H->event_error(ev, "database unavailable");
		return ATT_EXT_ERROR;
	}
	body = H->event_json(ev, &len);
	/* stable across retries of this delivery: receivers de-duplicate on it */
	snprintf(delivery, sizeof(delivery), "%lld-%s", (long long)H->event_id(ev), id);
	r = wh_post(url, secret, id, H->event_name(ev), delivery, body, len, &res);
	record(ext, id, H->event_id(ev), H->event_name(ev), H->event_attempt(ev), r, &res);
	if (r != ATT_EXT_OK)
		H->event_error(ev, "%s", res.error);
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
	free(url);
	return r;
}

/* ---- POST /api/v1/webhooks/{id}/test: a webhook.test event, sent off the request thread ------- */

struct test_job {
	struct att_ext *ext;
	char id[33], delivery[64], *url, *secret, *body;
};

static void *test_main(void *arg)
{
	struct test_job *t = arg;
	struct wh_result res;
	int r = wh_post(t->url, t->secret, t->id, "webhook.test", t->delivery, t->body, strlen(t->body), &res);

	record(t->ext, t->id, 0, "webhook.test", 1, r, &res);
	wh_send_cleanup();
	OPENSSL_cleanse(t->secret, strlen(t->secret));
	free(t->secret);
	free(t->url);
	free(t->body);
	free(t);
	atomic_fetch_sub(&tests_running, 1);
	return NULL;
}

void wh_h_test(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs, void *ud)
{
	const char *id = H->req_param(rq, "id");
	struct test_job *t;
	char ts[32], rnd[17];
	pthread_t th;
	int r;

	(void)ud;
	if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
		H->resp_error(rs, 404, "Webhook not found");
		return;
	}
	if (atomic_fetch_add(&tests_running, 1) >= MAX_TESTS) {
		atomic_fetch_sub(&tests_running, 1);
		H->resp_error(rs, 429, "Too many webhook tests in flight; try again shortly");
		return;
	}
	t = calloc(1, sizeof(*t));
	r = t ? load(ext, id, &t->url, &t->secret) : ATT_EXT_ERROR;
	if (r != ATT_EXT_OK) {
		if (t) {
			free(t->url);
			free(t->secret);
		}
		free(t);
		atomic_fetch_sub(&tests_running, 1);
		if (r == ATT_EXT_NOTFOUND)
			H->resp_error(rs, 404, "Webhook not found (or disabled)");
		else
			H->resp_error(rs, 503, "Database unavailable");
		return;
	}
	t->ext = ext;
	snprintf(t->id, sizeof(t->id), "%s", id);
	wh_random_hex(rnd, 8);
	snprintf(t->delivery, sizeof(t->delivery), "test-%s", rnd);
	wh_now_iso(ts);
	{
		json_t *o = json_pack("{s:s,s:I,s:n,s:n,s:s,s:s,s:s,s:{}}", "event", "webhook.test", "id", (json_int_t)0,
				      "machine_id", "ek_fingerprint", "timestamp", ts, "webhook_id", id, "requested_by",
				      H->req_identity(rq) ? H->req_identity(rq) : "", "raw");

		t->body = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(o);
	}
	if (!t->body || pthread_create(&th, NULL, test_main, t) != 0) {
		free(t->body);
		free(t->url);
		free(t->secret);
		free(t);
		atomic_fetch_sub(&tests_running, 1);
		H->resp_error(rs, 503, "cannot start the test delivery");
		return;
	}
	pthread_detach(th);
	{
		char out[160];

		snprintf(out, sizeof(out), "{\"webhook_id\":\"%s\",\"delivery\":\"%s\",\"status\":\"queued\"}", id, t->delivery);
		H->resp_body(rs, 202, "application/json", out, strlen(out));
	}
}

/* ---- the key for secrets at rest ------------------------------------------------------- */

static int hexbyte(const char *p)
{
	int v = 0;

	for (int i = 0; i < 2; i++) {
		char c = p[i];

		v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1000);
	}
	return v;
}

/* Without ITL_SHARED_SECRET_MASTER_KEY / _PASSPHRASE the key is kept in
 * the database (created once, shared by replicas): secrets then are as
 * safe as the database.  Logged as a warning. */
static int start_flusher(struct att_ext *ext)
{
	log_ext = ext;
	log_stop = false;
	if (pthread_create(&log_th, NULL, flusher, NULL) != 0)
		return ATT_EXT_ERROR;
	log_running = true;
	return ATT_EXT_OK;
}

/* 1 and the key when stored, 0 when not, or an ATT_EXT error. */
static int read_key(struct att_ext_db *db)
{
	struct att_ext_rows *rows;
	int r = H->db_query(db, &rows, "SELECT key_hex FROM extension_webhooks_keys WHERE id = 1", "");

	if (r < 0)
		return r;
	r = H->rows_next(rows);
	if (r == 1) {
		const char *k = H->rows_text(rows, 0);

		if (k && strlen(k) == 64) {
			for (int i = 0; i < 32; i++)
				wh_conf.key[i] = (uint8_t)hexbyte(k + 2 * i);
		} else {
			r = ATT_EXT_ERROR;
		}
	}
	H->rows_done(rows);
	return r;
}

int wh_start(struct att_ext *ext)
{
	struct att_ext_db *db;
	char hex[65];
	int r;

	if (start_flusher(ext) != ATT_EXT_OK)
		return ATT_EXT_ERROR;
	if (wh_have_key)
		return ATT_EXT_OK;
	db = H->db_acquire(ext);
	if (!db)
		return ATT_EXT_UNAVAILABLE;
	/* read first: a database that is read-only for now still starts */
	r = read_key(db);
	if (r == 0) {
		wh_random_hex(hex, 32);
		r = H->db_exec(db, "INSERT INTO extension_webhooks_keys (id, key_hex) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
			       "s", hex);
		OPENSSL_cleanse(hex, sizeof(hex));
		if (r >= 0)
			r = read_key(db);
		if (r == 0)
			r = ATT_EXT_ERROR;
	}
	H->db_release(ext, db);
	if (r >= 0)
		H->log(ext, ATT_EXT_LOG_WARNING,
		       "webhook secrets are sealed with a key kept in the database; set ITL_SHARED_SECRET_MASTER_KEY to keep it elsewhere");
	return r < 0 ? ATT_EXT_ERROR : ATT_EXT_OK;
}

void wh_stop(struct att_ext *ext)
{
	(void)ext;
	if (log_running) {
		pthread_mutex_lock(&log_mu);
		log_stop = true;
		pthread_cond_signal(&log_cv);
		pthread_mutex_unlock(&log_mu);
		pthread_join(log_th, NULL);
		log_running = false;
	}
	OPENSSL_cleanse(wh_conf.key, sizeof(wh_conf.key));
}
