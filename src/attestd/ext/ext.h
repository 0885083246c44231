/* ext.h - attestd's side of the extension ABI (include/attest/extension.h).
 *
 *   loader.c    finding, loading and checking extensions (dlopen and the
 *               built-in modules), their migrations, start and stop, and
 *               GET /api/v1/extensions
 *   host.c      the host function table handed to every extension
 *   host_vault.c  the secret vault's host functions
 *   host_wrap.c   wrapping keys in an HSM (wrapkey_*)
 *   dispatch.c  delivering lifecycle events from the outbox to hooks */
#ifndef ATTESTD_EXT_H
#define ATTESTD_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "attest/extension.h"
#include "http.h"

struct att_db;
struct att_dbc;

#define ATT_EXT_MAX_PREFIXES 8
#define ATT_EXT_MAX_HOOKS 32

struct att_ext_binding {		/* an extension route's att_route.ud */
	struct att_ext *ext;
	att_ext_handler_fn fn;
	void *ud;
};

struct att_ext_hook {
	char event[64];			/* name or "*" */
	char consumer[112];		/* "<ext>/<event>" (+ "#n" for a second hook on it): deliveries' consumer */
	att_ext_hook_fn fn;		/* plain and target hooks */
	att_ext_context_fn ctx_fn;	/* typed hooks */
	att_ext_targets_fn targets;	/* target hooks */
	void *ud;
};

/* The host-side event handed to hooks (dispatch.c fills it). */
struct att_ext_event {
	int64_t id;
	const char *name;
	const char *json;
	size_t len;
	json_t *doc;
	const char *target;		/* NULL for plain hooks */
	int attempt;
	char *error;			/* event_error() writes here (may be NULL) */
	size_t errlen;
};

struct att_ext_targets {		/* what a targets function names */
	char **items;
	size_t n, cap;
};

struct att_ext {
	const struct att_ext_info *info;
	void *dl;			/* dlopen handle; NULL for built-ins */
	char source[512];		/* file path or "builtin" */
	const struct att_svc *svc;
	bool in_init, started;
	char why[256];			/* why the host refused a registration */
	void *data;
	char *prefixes[ATT_EXT_MAX_PREFIXES];
	size_t nprefixes;
	struct att_route *routes;
	struct att_ext_binding *bindings;
	size_t nroutes;
	struct att_ext_migration *migrations;
	size_t nmigrations;
	struct att_ext_hook hooks[ATT_EXT_MAX_HOOKS];
	size_t nhooks;
};

/* The built-in modules written against the ABI (loader.c's list). */
extern const struct att_ext_info *const att_ext_builtins[];
extern const size_t att_ext_nbuiltins;

/* host.c */
const struct att_ext_host *att_ext_host_table(void);
/* Is name a valid table/index name for this extension? */
bool att_ext_owns_table(const struct att_ext *ext, const char *name, size_t len);
/* Check every object a migration script creates/alters/writes (false
 * with why naming the offending name). */
bool att_ext_sql_confined(const struct att_ext *ext, const char *sql, char *why, size_t whylen);

/* Call one hook with an event (plain, typed or target hook). */
int att_ext_event_deliver(const struct att_ext_hook *h, struct att_ext *ext, const struct att_ext_event *ev);
/* A target hook's targets for an event (release with att_ext_targets_release). */
int att_ext_event_targets(const struct att_ext_hook *h, struct att_ext *ext, const struct att_ext_event *ev,
			  struct att_ext_targets *out);
void att_ext_targets_release(struct att_ext_targets *t);

/* host_vault.c: the secret vault's host functions. */
int att_ext_h_secret_put(struct att_ext *ext, const char *machine_id, const char *name, const uint8_t *value,
			 size_t len, int64_t ttl_seconds);
int att_ext_h_secret_delete(struct att_ext *ext, const char *machine_id, const char *name);

/* host_wrap.c: wrapping keys in an HSM. */
int att_ext_h_wrapkey_open(struct att_ext *ext, const char *spec, struct att_ext_wrapkey **ret, char *err,
			   size_t errlen);
int att_ext_h_wrapkey_wrap(struct att_ext_wrapkey *w, const char *context, const uint8_t *in, size_t len,
			   uint8_t *out, size_t cap, size_t *ret_len);
int att_ext_h_wrapkey_unwrap(struct att_ext_wrapkey *w, const char *context, const uint8_t *in, size_t len,
			     uint8_t *out, size_t cap, size_t *ret_len);
const char *att_ext_h_wrapkey_id(struct att_ext_wrapkey *w);
void att_ext_h_wrapkey_close(struct att_ext_wrapkey *w);

/* loader.c: load every configured extension (built-ins first, then
 * the shared objects of ITL_EXTENSIONS_DIR sorted, then ITL_EXTENSIONS), call init(). */
int att_ext_load_all(const struct att_svc *svc, char *reterr, size_t errlen);
/* All extension routes, for the router. */
int att_ext_routes(struct att_route **ret, size_t *ret_n);
/* Apply the extensions' pending migrations. */
int att_ext_migrate(struct att_db *db, char *reterr, size_t errlen);
int att_ext_start_all(char *reterr, size_t errlen);
void att_ext_stop_all(void);
void att_ext_unload_all(void);
/* The loaded extensions, in load order. */
struct att_ext *const *att_ext_list(size_t *ret_n);
/* Any hook registered for any event? */
bool att_ext_have_hooks(void);

/* ---- event delivery (docs/events.md) ----------------------------------------- */

/* Deliveries are spread over ATT_EVENT_SLOTS slots by machine id; a
 * delivery worker owns a range of slots (so ITL_EVENT_PARTITIONS may
 * change between restarts without stranding rows). */
#define ATT_EVENT_SLOTS 1024
unsigned att_ext_event_slot(const char *machine_id);

/* The event as consumers see it: the stored payload plus id and
 * machine_id (and, for node.provisioned, the boot URLs). */
int att_ext_event_doc(const struct att_svc *svc, int64_t id, const char *machine_id, const char *payload,
		      json_t **ret_doc, char **ret_json);

#define ATT_EXT_FANOUT_BATCH 256
/* fanout.c: one delivery row per consumer for events not fanned out yet,
 * in id order; returns the number of events fanned out or a negative att_err. */
int att_ext_fanout(const struct att_svc *svc);

/* dispatch.c: one partition's delivery worker. */
struct att_ext_runner;
struct att_ext_partition {
	const struct att_svc *svc;
	unsigned lo, hi;		/* slots [lo, hi) */
	char lease[32];			/* "events.<n>" */
	struct att_ext_runner *runner;	/* the thread hooks run on (timeout boundary) */
	uint64_t claims;
	unsigned cursor;		/* the slot the next claim starts from (round-robin) */
};
/* Deliver due deliveries of the partition; returns the number settled
 * or a negative att_err. */
int att_ext_deliver(struct att_ext_partition *p, const char *holder);
void att_ext_partition_release(struct att_ext_partition *p);
/* Hook threads abandoned after a timeout and still running extension code. */
unsigned att_ext_abandoned_runners(void);

#endif
