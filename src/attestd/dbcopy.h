/* dbcopy.h - attestd db copy (see dbcopy.c). */
#ifndef ATTESTD_DBCOPY_H
#define ATTESTD_DBCOPY_H

#include <stdbool.h>
#include <stdint.h>

struct att_dbcopy_result {
	int64_t machines, audit_entries;
	char root_hash[65];	/* the copied audit chain's last entry_hash, "" when empty */
	int schema_version;	/* the source's */
};

/* Copy every table of `from` into the empty, freshly migrated `to` in
 * one transaction, verifying the copied audit chain before commit.
 * Progress lines on stdout when verbose; errors on stderr prefixed with
 * `what`.  0 or -1. */
int att_dbcopy(const char *what, const char *from, const char *to, bool verbose, struct att_dbcopy_result *ret);

/* attestd db copy: returns the process exit status. */
int att_dbcopy_run(const char *from, const char *to);

#endif
