/* attest/extension.h - the attestd extension ABI, version 1.
 *
 * An extension is a shared object that attestd loads with dlopen (from
 * ITL_EXTENSIONS_DIR or ITL_EXTENSIONS), or a module built into attestd
 * (the Pulumi state backend, webhooks); both use this header and nothing
 * else of attestd.  It exports one symbol:
 *
 *     const struct att_ext_info att_extension_v1 = {
 *             .abi_version = ATT_EXT_ABI_VERSION,
 *             .name = "hello", .version = "1.0.0",
 *             .description = "says hello, counts events",
 *             .init = hello_init,
 *     };
 *
 * attestd checks abi_version (refusing a different major version), then
 * calls init() once with a table of host functions.  During init() the
 * extension registers (a) HTTP routes under its own URL prefixes, (b)
 * database migrations for tables named extension_<name>_*, and (c) hooks
 * on lifecycle events.  attestd then applies the migrations, calls
 * start(), serves requests and delivers events, and calls stop() at
 * shutdown after the HTTP server has stopped.
 *
 * Rules of the contract:
 * - Handles are opaque; strings passed in are borrowed for the duration
 *   of the call (copy what you keep); strings returned by the host live
 *   as long as the object they came from (request, row, event).
 * - Handlers and hooks run on attestd's threads, several at a time: keep
 *   shared state thread-safe.  A handler never waits on another service
 *   for long: the request thread pool is shared with every machine.
 * - Route paths must lie under one of info->prefixes (default
 *   "/api/v1/ext/<name>/") and must not overlap another route; tables
 *   and indexes created by migrations must be named extension_<name>_*.
 *   Violations refuse the extension at load time, naming the problem.
 * - Hooks see an event at least once: make them idempotent.  Return
 *   ATT_EXT_OK when done, ATT_EXT_ERROR to be retried later, or
 *   ATT_EXT_PERMANENT to give up on that event.
 * - An in-process extension shares attestd's address space: a crash in
 *   it is a crash of attestd (docs/extensions.md).
 *
 * Growing the ABI: fields are only ever appended to struct att_ext_host;
 * host->size tells how much of it the running attestd provides
 * (ATT_EXT_HOST_HAS).  Incompatible changes bump ATT_EXT_ABI_VERSION and
 * the exported symbol's name. */
#ifndef ATTEST_EXTENSION_H
#define ATTEST_EXTENSION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATT_EXT_ABI_VERSION 1u
#define ATT_EXT_SYMBOL "att_extension_v1"

/* Opaque handles owned by attestd. */
struct att_ext;		/* one loaded extension */
struct att_ext_req;	/* an HTTP request being served */
struct att_ext_resp;	/* the response to it */
struct att_ext_db;	/* a database connection lent to the extension */
struct att_ext_rows;	/* the rows of a query */
struct att_ext_event;	/* a lifecycle event */
struct att_ext_wrapkey;	/* a key-wrapping key in an HSM (appended) */

/* Return values of host functions, hooks and init(). */
enum att_ext_result {
	ATT_EXT_OK = 0,
	ATT_EXT_ERROR = -1,		/* failed; a hook's event is retried later */
	ATT_EXT_PERMANENT = -2,		/* a hook gives up on this event for good */
	ATT_EXT_INVALID = -3,		/* bad arguments (or not allowed now) */
	ATT_EXT_CONFLICT = -4,		/* unique constraint or duplicate */
	ATT_EXT_UNAVAILABLE = -5,	/* database unavailable */
	ATT_EXT_NOTFOUND = -6,
};

/* Who may call a route.  NONE: anyone — the handler authenticates
 * callers itself if it must (req_authenticate). */
enum att_ext_auth {
	ATT_EXT_AUTH_NONE = 0,
	ATT_EXT_AUTH_OPERATOR = 1,	/* operator credential, as the core routes */
	ATT_EXT_AUTH_IDENTITY = 2,	/* any valid credential; req_is_operator tells */
};

enum att_ext_log_level {
	ATT_EXT_LOG_DEBUG = 0,
	ATT_EXT_LOG_INFO = 1,
	ATT_EXT_LOG_WARNING = 2,
	ATT_EXT_LOG_ERROR = 3,
};

/* Route flags. */
#define ATT_EXT_ROUTE_ANY_BODY 0x1u	/* accept any Content-Type (else JSON only) */
/* Errors the host answers on this route itself (413, 415, a refused
 * req_authenticate, 500) carry "code": <status> next to "detail" — the
 * convention of clients such as the Pulumi CLI.  Added after ABI 1.0: an
 * attestd that predates it refuses the route. */
#define ATT_EXT_ROUTE_ERROR_CODE 0x2u

typedef void (*att_ext_handler_fn)(struct att_ext *ext, struct att_ext_req *rq, struct att_ext_resp *rs,
				   void *ud);
typedef int (*att_ext_hook_fn)(struct att_ext *ext, const struct att_ext_event *ev, void *ud);

/* A hook whose work splits into independent targets (the webhooks
 * module: one per subscribed URL) names them for each event; every
 * target then has its own delivery, retried, dead-lettered and replayed
 * on its own, so one failing target never holds up another. */
struct att_ext_targets;
typedef int (*att_ext_targets_fn)(struct att_ext *ext, const struct att_ext_event *ev,
				  struct att_ext_targets *out, void *ud);

/* The typed context of an event (docs/events.md), as the seeds'
 * decorators give it: the members every event carries, then the ones of
 * each event (NULL / 0 where the event has none).  Strings live as long
 * as the hook call. */
struct att_ext_hardware {
	const char *hw_uuid, *hw_serial, *hw_product, *hw_mac;
};

struct att_ext_context {
	size_t size;			/* sizeof(struct att_ext_context) in the running attestd */
	const struct att_ext_event *ev;	/* for event_json, event_target, event_error */
	const char *event;		/* "node.registered" ... */
	int64_t id;
	const char *ek_fingerprint, *machine_id, *timestamp;
	const char *raw;		/* JSON text of the event's raw member: {node, meta} */
	const char *hostname, *role;
	/* node.registered (on_registered) */
	const char *mac_address, *ip_address;
	int tpm_available;
	struct att_ext_hardware hardware;
	/* node.provisioned (on_provisioning) */
	const char *config_url, *schematic_id, *iso_url;
	/* node.online */
	const char *first_seen_at;
	/* node.role_changed */
	const char *previous_role, *new_role;
	/* node.decommissioned, node.locked, node.unlocked, node.cert_revoked */
	const char *reason;
	/* node.heartbeat_missed */
	const char *last_seen_at;
	int64_t missed_count;
};

typedef int (*att_ext_context_fn)(struct att_ext *ext, const struct att_ext_context *ctx, void *ud);

struct att_ext_route {
	const char *method;	/* GET, POST, PUT, PATCH, DELETE, HEAD */
	const char *path;	/* absolute; "{name}" captures one segment */
	enum att_ext_auth auth;
	unsigned flags;		/* ATT_EXT_ROUTE_* */
	size_t max_body;	/* request body cap in bytes; 0: the service default */
	att_ext_handler_fn fn;
	void *ud;		/* passed to fn */
};

struct att_ext_migration {
	int version;		/* per extension: 1, 2, ... applied once each, in order */
	const char *name;
	const char *sqlite;	/* SQL script for SQLite */
	const char *postgresql;	/* for PostgreSQL; NULL: the same as sqlite */
};

/* Query parameter type letters for db_exec/db_query: 's' const char *
 * (NULL binds SQL NULL), 'i' int64_t, 'b' int (0/1).  SQL uses '?'
 * placeholders and the subset both SQLite and PostgreSQL accept. */

struct att_ext_host {
	uint32_t abi_version;	/* ATT_EXT_ABI_VERSION of the running attestd */
	uint32_t size;		/* sizeof(struct att_ext_host) in the running attestd */

	/* ---- registration: only inside init() ---------------------------- */
	int (*add_route)(struct att_ext *ext, const struct att_ext_route *route);
	int (*add_migration)(struct att_ext *ext, const struct att_ext_migration *m);
	/* event: a name such as "node.registered", or "*" for every event */
	int (*add_hook)(struct att_ext *ext, const char *event, att_ext_hook_fn fn, void *ud);

	/* ---- the extension's own state and the service ------------------- */
	void (*set_data)(struct att_ext *ext, void *data);
	void *(*data)(struct att_ext *ext);
	const char *(*name)(struct att_ext *ext);
	/* ITL_SERVICE_URL: the public base URL of this service */
	const char *(*service_url)(struct att_ext *ext);
	void (*log)(struct att_ext *ext, enum att_ext_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* ---- requests (valid during the handler call) --------------------- */
	const char *(*req_method)(struct att_ext_req *rq);
	const char *(*req_path)(struct att_ext_req *rq);
	const char *(*req_param)(struct att_ext_req *rq, const char *name);	/* {name} */
	const char *(*req_query)(struct att_ext_req *rq, const char *name);
	const char *(*req_header)(struct att_ext_req *rq, const char *name);
	const uint8_t *(*req_body)(struct att_ext_req *rq, size_t *ret_len);
	const char *(*req_source_ip)(struct att_ext_req *rq);
	/* The authenticated identity ("SYSTEM", "BREAK_GLASS", the OIDC
	 * username ...) or NULL; req_is_operator: 1 if it holds the operator role. */
	const char *(*req_identity)(struct att_ext_req *rq);
	int (*req_is_operator)(struct att_ext_req *rq);
	/* Check an operator credential the handler found itself (an admin
	 * token or an OIDC access token).  ATT_EXT_OK sets the request's
	 * identity; otherwise the response is already set (401/403/503). */
	int (*req_authenticate)(struct att_ext_req *rq, struct att_ext_resp *rs, const char *credential);

	/* ---- responses ---------------------------------------------------- */
	/* Status, content type and body (copied). */
	int (*resp_body)(struct att_ext_resp *rs, int status, const char *content_type, const void *body,
			 size_t len);
	/* {"detail": detail} with status, the service's error convention. */
	int (*resp_error)(struct att_ext_resp *rs, int status, const char *detail);
	int (*resp_header)(struct att_ext_resp *rs, const char *name, const char *value);

	/* ---- database ----------------------------------------------------- */
	struct att_ext_db *(*db_acquire)(struct att_ext *ext);	/* NULL: unavailable */
	void (*db_release)(struct att_ext *ext, struct att_ext_db *db);
	const char *(*db_backend)(struct att_ext_db *db);	/* "sqlite" or "postgresql" */
	/* Write transaction: serialized with every other writer (replicas too). */
	int (*db_begin)(struct att_ext_db *db);
	int (*db_commit)(struct att_ext_db *db);
	void (*db_rollback)(struct att_ext_db *db);
	/* Changed rows (>= 0) or an att_ext_result. */
	int (*db_exec)(struct att_ext_db *db, const char *sql, const char *types, ...);
	int (*db_query)(struct att_ext_db *db, struct att_ext_rows **ret, const char *sql, const char *types,
			...);
	int (*rows_next)(struct att_ext_rows *rows);		/* 1 row, 0 done, < 0 error */
	const char *(*rows_text)(struct att_ext_rows *rows, int col);	/* NULL for SQL NULL */
	int64_t (*rows_int)(struct att_ext_rows *rows, int col);
	int (*rows_is_null)(struct att_ext_rows *rows, int col);
	void (*rows_done)(struct att_ext_rows *rows);

	/* ---- audit log ---------------------------------------------------- */
	/* Append an entry inside the caller's write transaction on db (the
	 * hash chain needs the write lock: call db_begin first). */
	int (*audit)(struct att_ext_db *db, const char *actor, const char *action, const char *machine_id,
		     const char *detail, const char *source_ip);

	/* ---- coordination across replicas --------------------------------- */
	/* Claim or renew a named lease (stored in the database) for ttl
	 * seconds; *ret_held is 1 while this replica holds it. */
	int (*lease_claim)(struct att_ext *ext, const char *lease, int64_t ttl_seconds, int *ret_held);

	/* ---- events (valid during the hook call) -------------------------- */
	const char *(*event_name)(const struct att_ext_event *ev);	/* "node.registered" */
	int64_t (*event_id)(const struct att_ext_event *ev);
	/* A string member by name ("machine_id", "hostname") or by JSON
	 * pointer ("/hardware/hw_uuid"); NULL when absent or not a string. */
	const char *(*event_field)(const struct att_ext_event *ev, const char *name);
	/* The whole event as JSON text (docs/events.md). */
	const char *(*event_json)(const struct att_ext_event *ev, size_t *ret_len);

	/* ---- appended: delivery targets, typed hooks, delivery details --- */
	/* Only inside init(): a hook with independent targets (see
	 * att_ext_targets_fn); targets() calls add_target once per target
	 * ([A-Za-z0-9._-]{1,64}), fn is called once per target. */
	int (*add_target_hook)(struct att_ext *ext, const char *event, att_ext_targets_fn targets,
			       att_ext_hook_fn fn, void *ud);
	int (*add_target)(struct att_ext_targets *out, const char *target);
	/* Only inside init(): a hook that gets the typed context
	 * (att_ext_on_registered() ... below). */
	int (*add_context_hook)(struct att_ext *ext, const char *event, att_ext_context_fn fn, void *ud);
	/* During a hook: the target being delivered to (NULL for plain
	 * hooks), the attempt number (1, 2, ...), and why it failed — recorded
	 * against the delivery (GET /api/v1/events/{id}). */
	const char *(*event_target)(const struct att_ext_event *ev);
	int (*event_attempt)(const struct att_ext_event *ev);
	void (*event_error)(const struct att_ext_event *ev, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* ---- the secret vault (docs/secrets.md) ---------------------------- */
	/* Write a secret for a machine (a new version when the name exists).
	 * Only the machine itself reads it, after a verified quote, sealed to
	 * its TPM; operators see metadata only.  Audited as EXTENSION:<name>.
	 * name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}; ttl_seconds 0: no expiry.
	 * Runs its own write transaction: never call it between db_begin and
	 * db_commit.  ATT_EXT_INVALID (name, size, count), ATT_EXT_NOTFOUND
	 * (machine), ATT_EXT_CONFLICT (revoked machine), ATT_EXT_UNAVAILABLE
	 * (no master key configured, database down). */
	int (*secret_put)(struct att_ext *ext, const char *machine_id, const char *name, const uint8_t *value,
			  size_t len, int64_t ttl_seconds);
	int (*secret_delete)(struct att_ext *ext, const char *machine_id, const char *name);

	/* ---- wrapping keys in an HSM (docs/extensions.md) ------------------ */
	/* Open a key-wrapping key held by a PKCS#11 token: spec is an RFC
	 * 7512 URI of an EC key pair (P-256, P-384, P-521) whose private key
	 * may derive (CKA_DERIVE):
	 *   pkcs11:token=<label>;object=<label>?pin-value=<pin>
	 * (or pin-source=file:<path>; module-path= or ITL_PKCS11_MODULE).
	 * Without token= the key is looked up in the token of the Enrollment
	 * CA key (ITL_ENROLLMENT_CA_KEY), with its PIN and module.  Never the
	 * CA's signing key itself: a key of its own in that token.  Results:
	 * ATT_EXT_INVALID (malformed; or no token= and the CA key is not in a
	 * token), ATT_EXT_NOTFOUND (no such token or key), ATT_EXT_UNAVAILABLE
	 * (module or login failed), ATT_EXT_ERROR (not an EC key pair, or the
 * token will not derive with it: checked by a wrap and unwrap); err
	 * says which and never holds the PIN.  Callable from init() on. */
	int (*wrapkey_open)(struct att_ext *ext, const char *spec, struct att_ext_wrapkey **ret, char *err,
			    size_t errlen);
	/* Wrap (encrypt and authenticate) len <= 65536 bytes, bound to the
	 * calling extension's name and to context (domain separation: a blob
	 * unwraps only for the same extension and context).  Needs only the
	 * public key.  out holds len + ATT_EXT_WRAP_OVERHEAD bytes. */
	int (*wrapkey_wrap)(struct att_ext_wrapkey *k, const char *context, const uint8_t *in, size_t len,
			    uint8_t *out, size_t cap, size_t *ret_len);
	/* The private key operation (ECDH) runs inside the token.
	 * ATT_EXT_INVALID: not a blob of this key, extension and context (or
	 * altered); ATT_EXT_UNAVAILABLE: the token failed.  out holds len. */
	int (*wrapkey_unwrap)(struct att_ext_wrapkey *k, const char *context, const uint8_t *in, size_t len,
			      uint8_t *out, size_t cap, size_t *ret_len);
	/* 16 hex digits naming the key (SHA-256 of its public point). */
	const char *(*wrapkey_id)(struct att_ext_wrapkey *k);
	void (*wrapkey_close)(struct att_ext_wrapkey *k);
};

/* The most a wrapped blob adds to what it wraps. */
#define ATT_EXT_WRAP_OVERHEAD 192

/* Typed hooks, one per event (the seeds' @on_registered ... @on_any_event). */
#define att_ext_on_registered(h, ext, fn, ud) (h)->add_context_hook((ext), "node.registered", (fn), (ud))
#define att_ext_on_provisioning(h, ext, fn, ud) (h)->add_context_hook((ext), "node.provisioned", (fn), (ud))
#define att_ext_on_online(h, ext, fn, ud) (h)->add_context_hook((ext), "node.online", (fn), (ud))
#define att_ext_on_role_changed(h, ext, fn, ud) (h)->add_context_hook((ext), "node.role_changed", (fn), (ud))
#define att_ext_on_decommissioned(h, ext, fn, ud) (h)->add_context_hook((ext), "node.decommissioned", (fn), (ud))
#define att_ext_on_locked(h, ext, fn, ud) (h)->add_context_hook((ext), "node.locked", (fn), (ud))
#define att_ext_on_unlocked(h, ext, fn, ud) (h)->add_context_hook((ext), "node.unlocked", (fn), (ud))
#define att_ext_on_heartbeat_missed(h, ext, fn, ud) (h)->add_context_hook((ext), "node.heartbeat_missed", (fn), (ud))
#define att_ext_on_cert_issued(h, ext, fn, ud) (h)->add_context_hook((ext), "node.cert_issued", (fn), (ud))
#define att_ext_on_cert_revoked(h, ext, fn, ud) (h)->add_context_hook((ext), "node.cert_revoked", (fn), (ud))
#define att_ext_on_any_event(h, ext, fn, ud) (h)->add_context_hook((ext), "*", (fn), (ud))

/* Is host field f provided by the running attestd? */
#define ATT_EXT_HOST_HAS(host, f) \
	((host)->size >= offsetof(struct att_ext_host, f) + sizeof((host)->f) && (host)->f != NULL)

struct att_ext_info {
	uint32_t abi_version;	/* ATT_EXT_ABI_VERSION the extension was built with */
	const char *name;	/* [a-z][a-z0-9_]{0,31}: tables are extension_<name>_* */
	const char *version;
	const char *description;
	/* URL prefixes the extension owns, NULL-terminated; NULL means
	 * { "/api/v1/ext/<name>/" } */
	const char *const *prefixes;
	/* Register routes, migrations and hooks.  Return ATT_EXT_OK, or an
	 * error with a message in err: attestd then refuses to start. */
	int (*init)(struct att_ext *ext, const struct att_ext_host *host, char *err, size_t errlen);
	/* After migrations, before requests are served (optional). */
	int (*start)(struct att_ext *ext);
	/* At shutdown, after the HTTP server stopped (optional). */
	void (*stop)(struct att_ext *ext);
};

#ifdef __cplusplus
}
#endif

#endif
