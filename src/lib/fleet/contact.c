/* contact.c - when each machine was last heard from.
 *
 * The attest poll is the hot path (every machine, every minute), so a
 * contact is written at most once per resolution seconds per machine:
 * a process-local, fixed-size table remembers which machines this
 * process stamped recently.  It is derived and disposable — a collision
 * or a restart only causes an extra write — and the UPDATE itself only
 * moves a stamp that is older than the resolution, so replicas do not
 * multiply the writes beyond one per replica per window. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "fleet/fleet.h"

#define SLOTS (1u << 18)	/* 4 MiB: 100,000 machines with few collisions */

struct slot {
	uint64_t hash;
	int64_t at;
};

static struct slot slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ull;
	}
	return h | 1;	/* 0 marks an empty slot */
}

int att_fleet_contact(struct att_db *db, const char *machine_id, int64_t resolution)
{
	uint64_t h = fnv1a(machine_id);
	struct slot *sl = &slots[h & (SLOTS - 1)];
	struct att_time now = att_now();
	char ts[32], cutoff[32];
	struct att_dbc *c;
	bool fresh;
	int r;

	pthread_mutex_lock(&slots_lock);
	fresh = resolution > 0 && sl->hash == h && now.sec - sl->at < resolution;
	pthread_mutex_unlock(&slots_lock);
	if (fresh)
		return 0;
	att_time_iso(now, ts);
	att_time_iso((struct att_time){ now.sec - resolution, now.usec }, cutoff);
	c = att_db_acquire(db);
	if (!c)
		return ATT_E_DB;
	r = att_dbc_exec(c, "UPDATE machines SET last_contact_at = ? WHERE machine_id = ?"
			    " AND (last_contact_at IS NULL OR last_contact_at < ?)",
			 "sss", ts, machine_id, cutoff);
	att_db_release(db, c);
	if (r < 0)
		return r;
	pthread_mutex_lock(&slots_lock);
	sl->hash = h;
	sl->at = now.sec;
	pthread_mutex_unlock(&slots_lock);
	return 0;
}
