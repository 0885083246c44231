/* worker.h - leased background jobs.
 *
 * A worker is a thread that runs fn every interval while this replica
 * holds the database lease of the same name (one replica at a time runs
 * each job; a dead replica's lease expires after 3 intervals and another
 * takes over).  att_worker_kick runs it again now. */
#ifndef ATTESTD_WORKER_H
#define ATTESTD_WORKER_H

#include <stdint.h>

struct att_db;
struct att_worker;

/* fn returns a count of work done (logged when > 0 and log_done is set)
 * or a negative att_err (logged once until it succeeds again). */
typedef int (*att_worker_fn)(void *ctx, const char *holder);

struct att_worker_conf {
	const char *name;		/* lease name and log topic */
	int64_t interval_ms;
	att_worker_fn fn;
	void *ctx;
	const char *log_done;		/* printf format with one %d, or NULL */
};

int att_worker_start(struct att_db *db, const struct att_worker_conf *conf, struct att_worker **ret);
void att_worker_kick(struct att_worker *w);
/* Stop and join (NULL is fine). */
void att_worker_stop(struct att_worker *w);
/* "host:pid:random", the holder name of this process's leases. */
const char *att_worker_holder(void);

#endif
