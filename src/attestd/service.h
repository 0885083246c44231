/* service.h - the parts of a running attestd, opened in order from the
 * configuration and closed in reverse: database (and migrations), the
 * Enrollment CA, TPM manufacturer roots, OIDC, extensions, the route
 * table, background workers and the HTTP server. */
#ifndef ATTESTD_SERVICE_H
#define ATTESTD_SERVICE_H

#include "config/config.h"
#include "machine/machine.h"

struct att_server;
struct att_worker;
struct att_ext_partition;

struct att_service {
	struct att_config *cfg;
	struct att_svc svc;
	struct att_db *db;
	struct att_ca *ca;
	struct att_ek_trust *trust;
	struct att_oidc *oidc;
	struct att_strlist oidc_aud;
	struct att_worker *sweeper, *events, *checkpointer;
	struct att_ext_partition *parts;	/* event delivery: one worker per partition */
	struct att_worker **part_workers;
	size_t nparts;
	struct att_server *srv;
	int migrations_applied;
	bool extensions_loaded, routes_built;
};

/* Database (with core and extension migrations when migrate_only, else
 * everything up to the route table).  Logs what fails; 0 or -1. */
int att_service_open(struct att_service *s, struct att_config *cfg, bool migrate_only);
/* Start the extensions, workers and the HTTP server; write ready_file. */
int att_service_start(struct att_service *s, const char *ready_file);
/* Stop and free everything (safe on a partly opened service). */
void att_service_close(struct att_service *s);

#endif
