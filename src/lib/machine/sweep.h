/* sweep.h - background housekeeping shared by every replica.
 *
 * Work is claimed through a lease row (table leases): a replica runs a
 * job only while it holds the job's lease.  On PostgreSQL the lease row
 * is read with SELECT ... FOR UPDATE SKIP LOCKED, so a replica never
 * waits for another one; on SQLite the database write lock serializes
 * claims.  A lease expires after ttl seconds, so the work of a replica
 * that died is picked up by another one. */
#ifndef ATT_MACHINE_SWEEP_H
#define ATT_MACHINE_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

struct att_db;

/* Claim (or renew) lease name for holder; *ret_claimed tells whether we
 * hold it now. */
int att_lease_claim(struct att_db *db, const char *name, const char *holder, int64_t ttl,
		    bool *ret_claimed);

/* One sweep: delete expired nonces and config tokens (bounded batches).
 * Returns the number of rows removed, or a negative att_err. */
int att_sweep_run(struct att_db *db, const char *holder);

/* heartbeat.c: node.heartbeat_missed for attested machines silent for
 * missed_seconds (0: nothing).  Returns the number of events written. */
int att_heartbeat_sweep(struct att_db *db, int64_t missed_seconds);

#endif
