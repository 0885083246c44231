/* fleet.h - the fleet seen from above (the dashboard and the CLI).
 *
 *   fleet.c    the machine list with filters, sorting and a total; the
 *              summary (counts by status, role, manufacturer and EK
 *              verdict, last-contact ages) and the daily timeline
 *   contact.c  when each machine was last heard from, written at most
 *              once per ITL_CONTACT_RESOLUTION_SECONDS per machine
 *
 * Queries stay on indexes (migration 10) so they remain fast with
 * 100,000 machines: the list first picks the page's ids from an index,
 * then reads only those rows.  Functions return 0 or a negative att_err;
 * ATT_E_INVAL comes with a detail naming the query parameter. */
#ifndef ATT_FLEET_FLEET_H
#define ATT_FLEET_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct att_db;
struct att_dbc;

enum att_fleet_ek {
	ATT_FLEET_EK_ANY,
	ATT_FLEET_EK_VERIFIED,	/* chain verified to a manufacturer root */
	ATT_FLEET_EK_FAILED,	/* checked, did not verify */
	ATT_FLEET_EK_UNCHECKED,	/* never checked (ITL_TPM_VERIFY_CA off) */
};

/* NULL members do not filter. */
struct att_fleet_filter {
	const char *machine_id;		/* exact */
	const char *status;
	const char *role;
	const char *hostname;		/* exact */
	const char *q;			/* case-insensitive prefix of hostname or machine id */
	const char *manufacturer;	/* exact; "" = unknown */
	enum att_fleet_ek ek;
	int64_t silent_for;		/* > 0: not heard from for this many seconds (or never) */
};

struct att_fleet_sort {
	const char *column;	/* one of the sort keys, "id" by default */
	bool desc;
};

/* "true" | "false" | "unchecked" -> ret. */
int att_fleet_ek_parse(const char *s, enum att_fleet_ek *ret);
/* "[-]key": id, machine_id, hostname, status, role, registered_at,
 * attested_at, last_contact_at, ek_manufacturer; NULL or "" is "id". */
int att_fleet_sort_parse(const char *s, struct att_fleet_sort *ret);
/* Check every filter value; ATT_E_INVAL with the parameter named. */
int att_fleet_filter_check(const struct att_fleet_filter *f, char *reterr, size_t errlen);

/* One page of MachineDetail objects (plus last_contact_at) and the
 * number of machines matching the filter. */
int att_fleet_list(struct att_dbc *c, const struct att_fleet_filter *f, const struct att_fleet_sort *s,
		   int64_t page, int64_t per_page, json_t **ret_page, int64_t *ret_total);

/* Counts over the whole fleet (see docs/api.md, GET /api/v1/fleet/summary). */
int att_fleet_summary(struct att_dbc *c, int64_t silent_for, json_t **ret);

/* Registrations and first attestations per UTC day for the last days
 * days (today included), every day present. */
int att_fleet_timeline(struct att_dbc *c, int days, json_t **ret);

/* A machine was heard from now: stamp its last_contact_at unless this
 * process stamped it less than resolution seconds ago (a process-local
 * cache that can only cause extra writes, never missed ones across a
 * resolution window).  Failures are ignored by design (returned for tests). */
int att_fleet_contact(struct att_db *db, const char *machine_id, int64_t resolution);

#endif
