/* factory.c - the schematic announced to the Image Factory by a leased
 * background worker (factory.h). */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "db/db.h"
#include "factory.h"
#include "machine/machine.h"
#include "obs/log.h"
#include "routes/routes.h"
#include "talos/factory.h"
#include "worker.h"

#define LOGF "attestd.factory"
#define FACTORY_MIN_RETRY_SECONDS 2

static struct att_worker *worker;
static atomic_bool acknowledged;
static double last_attempt;	/* worker thread only */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record the schematic; 1 when the factory acknowledged it already. */
static int schematic_row(struct att_db *db, const char *yaml, const char *id)
{
	struct att_dbc *c = att_db_acquire(db);
	struct att_stmt *s;
	char ts[32];
	int r;

	if (!c)
		return ATT_E_UNAVAILABLE;
	att_time_iso(att_now(), ts);
	r = att_dbc_exec(c, "INSERT INTO factory_schematics (schematic_id, yaml, created_at) VALUES (?, ?, ?)"
			    " ON CONFLICT (schematic_id) DO NOTHING",
			 "sss", id, yaml, ts);
	if (r >= 0)
		r = att_dbc_query(c, &s, "SELECT acknowledged_at FROM factory_schematics WHERE schematic_id = ?", "s",
				  id);
	if (r >= 0) {
		r = att_stmt_next(s) == 1 && !att_stmt_is_null(s, 0);
		att_stmt_done(s);
	}
	att_db_release(db, c);
	return r;
}

/* One turn of the worker: 1 when the factory acknowledged the schematic
 * now, 0 when nothing was to do (or it is too soon to retry), < 0 when
 * the factory or the database failed (logged). */
static int announce(void *ctx, const char *holder)
{
	const struct att_svc *svc = ctx;
	char *yaml = NULL, id[65], got[65], why[256], ts[32];
	struct att_dbc *c;
	int r;

	(void)holder;
	if (atomic_load(&acknowledged))
		return 0;
	r = att_api_schematic(svc->cfg, &yaml, id);
	if (r == 0)
		r = schematic_row(svc->db, yaml, id);
	if (r != 0) {
		if (r == 1)
			atomic_store(&acknowledged, true);
		free(yaml);
		return r < 0 ? r : 0;
	}
	if (last_attempt > 0 && mono_now() - last_attempt < FACTORY_MIN_RETRY_SECONDS) {
		free(yaml);
		return 0;
	}
	last_attempt = mono_now();
	r = att_factory_post_schematic(svc->cfg->factory_url, yaml, (long)svc->cfg->factory_timeout_seconds, got,
				       why, sizeof(why));
	free(yaml);
	if (r < 0) {
		att_log_error(LOGF, "Talos Image Factory unreachable: %s", why);
		return 0;	/* logged here; retried on the next turn or kick */
	}
	if (strcmp(got, id) != 0)
		att_log_warning(LOGF, "Talos Image Factory returned schematic id %s, computed %s locally", got, id);
	att_time_iso(att_now(), ts);
	c = att_db_acquire(svc->db);
	if (!c)
		return ATT_E_UNAVAILABLE;
	r = att_dbc_exec(c, "UPDATE factory_schematics SET acknowledged_at = ? WHERE schematic_id = ?", "ss", ts, id);
	att_db_release(svc->db, c);
	if (r < 0)
		return r;
	atomic_store(&acknowledged, true);
	att_log_info(LOGF, "Talos Image Factory acknowledged schematic %s", id);
	return 1;
}

int att_factory_start(const struct att_svc *svc)
{
	struct att_worker_conf conf = { "factory", svc->cfg->sweep_interval_seconds * 1000, announce, (void *)svc, NULL };
	int r;

	if (svc->cfg->iso_url[0])
		return 0;
	atomic_store(&acknowledged, false);
	last_attempt = 0;
	r = att_worker_start(svc->db, &conf, &worker);
	if (r == 0)
		att_worker_kick(worker);	/* the first announcement now, not after an interval */
	return r;
}

void att_factory_kick(void)
{
	if (worker && !atomic_load(&acknowledged))
		att_worker_kick(worker);
}

void att_factory_stop(void)
{
	att_worker_stop(worker);
	worker = NULL;
}
