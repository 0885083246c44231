/* intern.c - stable addresses for SQL built at run time.
 *
 * Both backends cache prepared statements by the address of the SQL text
 * (SQL is normally a literal).  Queries assembled from a fixed set of
 * fragments — the fleet list's filters and sort keys, never values —
 * are interned here first, so the same text always has the same address
 * and lives as long as the process.  The fragment sets are finite
 * (fleet list: at most 768 WHERE shapes x 18 orders, plus the counts;
 * audit: 8), so the table has a fixed cap above that. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "db/db.h"

#define INTERN_SLOTS 32768	/* power of two, > 2 x the shapes above */

static char *table[INTERN_SLOTS];
static size_t used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *att_db_intern(const char *sql)
{
	uint64_t h = 1469598103934665603ull;
	const char *ret = NULL;
	size_t i;

	for (const char *p = sql; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
	}
	pthread_mutex_lock(&lock);
	for (i = h & (INTERN_SLOTS - 1); table[i]; i = (i + 1) & (INTERN_SLOTS - 1)) {
		if (strcmp(table[i], sql) == 0) {
			ret = table[i];
			goto out;
		}
	}
	if (used < INTERN_SLOTS / 2) {
		table[i] = att_strdup(sql);
		if (table[i]) {
			used++;
			ret = table[i];
		}
	}
out:
	pthread_mutex_unlock(&lock);
	return ret;
}
