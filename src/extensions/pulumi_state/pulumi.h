/* pulumi.h - the pulumi_state built-in extension: a Pulumi HTTP state
 * backend (docs/pulumi-backend.md).  It is written against the public
 * extension ABI only (include/attest/extension.h) plus OpenSSL, jansson
 * and zlib; nothing of attestd's internals.
 *
 *   pulumi.c   init, configuration, the route table, replies, auth, bodies
 *   stacks.c   user, capabilities, stacks, export/import, history
 *   updates.c  the update lifecycle: create, start, checkpoints, events,
 *              leases, complete, cancel
 *   secrets.c  encrypt/decrypt with per-stack keys wrapped by a master key
 *   deploy.c, worker.c, run.c  server-side deployments (deploy.h)
 *   delta.c    pure functions on untrusted bytes: gunzip with a cap, the
 *              checkpoint delta applier, raw JSON member spans (fuzzed) */
#ifndef PULUMI_STATE_H
#define PULUMI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "attest/extension.h"

/* A master key: a file key or an HSM key (keys.c). */
struct pl_master {
	bool set;
	uint8_t file[32];
	struct att_ext_wrapkey *hsm;	/* non-NULL: an HSM key */
	char desc[48];			/* "file", "HSM key <id>" */
};

struct pl_config {
	bool enabled;
	char token[512];		/* ITL_PULUMI_TOKEN ("" = only operator credentials) */
	char org[64];			/* ITL_PULUMI_ORG */
	struct pl_master master;	/* ITL_PULUMI_MASTER_KEY (or the CA token's default key) */
	struct pl_master previous;	/* ITL_PULUMI_PREVIOUS_MASTER_KEY */
	char why_no_master[300];	/* the 503 detail when !master.set */
	size_t max_body;		/* ITL_PULUMI_MAX_BODY_BYTES: as sent (gzip) */
	size_t max_inflated;		/* ITL_PULUMI_MAX_CHECKPOINT_BYTES: after gunzip */
	int64_t lease_seconds;		/* ITL_PULUMI_LEASE_SECONDS */
	int64_t delta_cutoff;		/* ITL_PULUMI_DELTA_CUTOFF_BYTES */
	char cli[256];			/* ITL_PULUMI_CLI: the pulumi executable deployments run */
	char deploy_backend_url[512];	/* ITL_PULUMI_DEPLOY_BACKEND_URL ("": ITL_SERVICE_URL) */
	bool deploy_allow_file;		/* ITL_PULUMI_DEPLOY_ALLOW_FILE: file:// repositories */
	int64_t deploy_timeout;		/* ITL_PULUMI_DEPLOY_TIMEOUT_SECONDS */
	size_t deploy_log_bytes;	/* ITL_PULUMI_DEPLOY_LOG_BYTES */
};

extern const struct att_ext_host *pl_host;
extern struct pl_config pl_cfg;

/* One request being served. */
struct pl_req {
	struct att_ext *ext;
	struct att_ext_req *rq;
	struct att_ext_resp *rs;
	const char *org, *project, *stack, *update;	/* path parameters (or NULL) */
	char actor[128];		/* who: "pulumi" (ITL_PULUMI_TOKEN) or the operator */
	uint8_t *body;			/* the request body, inflated; malloc'd */
	size_t len;
	/* checkpoint.c: a text to cache once the transaction committed */
	char cache_update[40];
	int64_t cache_seq;
	char *cache_text;
	size_t cache_len;
};

/* A stack row. */
struct pl_stack {
	char id[40];
	int64_t version;
	char active[40];		/* active update id or "" */
	char *tags;			/* JSON text, malloc'd */
	char *key;			/* wrapped secrets key (base64) or NULL, malloc'd */
	int64_t resource_count;
	int64_t last_update;
};

/* ---- pulumi.c ------------------------------------------------------------ */
void pl_error(struct pl_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pl_reply_json(struct pl_req *r, int status, json_t *body);		/* steals body */
void pl_reply_raw(struct pl_req *r, int status, const char *json, size_t len);
/* Map a host result to a reply (503 unavailable, 409 conflict, else 500). */
void pl_db_error(struct pl_req *r, int rc);
/* Parse the (inflated) body as a JSON object; NULL: reply already set. */
json_t *pl_body_json(struct pl_req *r);
void pl_stack_free(struct pl_stack *s);
/* Load the stack of the path; rc < 0 host error, ATT_EXT_NOTFOUND. */
int pl_stack_load(struct att_ext_db *db, const char *org, const char *project, const char *stack,
		  struct pl_stack *ret);
/* Load and reply 404/503 when it fails; 0 on success. */
int pl_stack_get(struct pl_req *r, struct att_ext_db *db, struct pl_stack *ret);
int pl_stack_begin(struct pl_req *r, struct att_ext_db *db, struct pl_stack *ret);
void pl_random_id(char out[37]);
void pl_random_token(char out[65]);
void pl_sha256_hex(const void *p, size_t n, char out[65]);
int64_t pl_now(void);
/* Audit inside the caller's write transaction. */
int pl_audit(struct pl_req *r, struct att_ext_db *db, const char *action, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

typedef void (*pl_handler_fn)(struct pl_req *r);

/* ---- keys.c: master keys ----------------------------------------------------- */
/* Read ITL_PULUMI_MASTER_KEY / ITL_PULUMI_PREVIOUS_MASTER_KEY (init()). */
int pl_keys_configure(struct att_ext *ext, char *err, size_t errlen);
void pl_keys_close(void);
/* A stack key wrapped with the current master key, as stored (malloc'd). */
char *pl_key_wrap(const uint8_t key[32], const char *stack_id);
/* 0 (stale: only the previous master key unwrapped it), ATT_EXT_INVALID
 * or ATT_EXT_UNAVAILABLE (the HSM failed), with why. */
int pl_key_unwrap(const char *stored, const char *stack_id, uint8_t key[32], bool *stale, char *why,
		  size_t whylen);
/* Rewrap what the previous master key unwraps (start()). */
int pl_keys_rewrap_all(struct att_ext *ext);

/* ---- secrets.c --------------------------------------------------------------- */
/* AES-256-GCM: out = nonce (12) || ciphertext || tag (16). */
int pl_gcm_seal(const uint8_t key[32], const char *aad, const uint8_t *pt, size_t n, uint8_t *out);
int pl_gcm_open(const uint8_t key[32], const char *aad, const uint8_t *in, size_t n, uint8_t *pt);

/* ---- stacks.c ---------------------------------------------------------------- */
void pl_h_capabilities(struct pl_req *r);
void pl_h_user(struct pl_req *r);
void pl_h_default_org(struct pl_req *r);
void pl_h_cli_version(struct pl_req *r);
void pl_h_list_stacks(struct pl_req *r);
void pl_h_project_head(struct pl_req *r);
void pl_h_stack_create(struct pl_req *r);
void pl_h_stack_get(struct pl_req *r);
void pl_h_stack_delete(struct pl_req *r);
void pl_h_stack_tags(struct pl_req *r);
void pl_h_stack_rename(struct pl_req *r);
void pl_h_export(struct pl_req *r);
void pl_h_export_version(struct pl_req *r);
void pl_h_import(struct pl_req *r);

/* Count the resources of an UntypedDeployment text. */
int64_t pl_resource_count(const char *cp, size_t len);
/* Is this update running with an unexpired lease? */
bool pl_update_active(struct att_ext_db *db, const char *update);
extern const char pl_empty_deployment[];

/* ---- updates.c --------------------------------------------------------------- */
void pl_h_update_create(struct pl_req *r);	/* POST .../update|preview|refresh|destroy */
void pl_h_update_start(struct pl_req *r);
void pl_h_update_status(struct pl_req *r);
/* ---- checkpoint.c ---- */
/* The stack's current text (stored checkpoint + delta rows), malloc'd;
 * *ret NULL when it has none. */
int pl_checkpoint_text(struct att_ext_db *db, const char *stack_id, char **ret, size_t *ret_len, int *ret_ndeltas);
/* Write the current text back as the stored checkpoint (drops delta rows). */
int pl_checkpoint_compact(struct att_ext_db *db, const char *stack_id);
void pl_checkpoint_stash(struct pl_req *r, const char *update, int64_t seq, char *text, size_t len);
/* After the transaction: cache the stashed text (ok) or drop it. */
void pl_checkpoint_committed(struct pl_req *r, bool ok);
void pl_checkpoint_forget(const char *update);
void pl_h_checkpoint(struct pl_req *r);
void pl_h_checkpoint_verbatim(struct pl_req *r);
void pl_h_checkpoint_delta(struct pl_req *r);
void pl_h_events(struct pl_req *r);
void pl_h_renew(struct pl_req *r);
void pl_h_complete(struct pl_req *r);
void pl_h_cancel(struct pl_req *r);
/* An update row, authenticated by its `update-token` (within the
 * caller's transaction). */
struct pl_update {
	char id[40], stack_id[40], status[16];
	int64_t seq, base_seq, version, expires;
	bool dry_run;
};
/* 0: running with a valid lease; 1: finished (allow_done only); -1: the
 * reply is set (401 wrong token, 403 expired, 404, 409 not running). */
int pl_update_auth(struct pl_req *r, struct att_ext_db *db, struct pl_update *ret, bool allow_done);
/* Check the update token, run fn in a write transaction, reply 200 with
 * *ret_reply or {}; fn returns ATT_EXT_PERMANENT after setting a reply. */
typedef int (*pl_update_fn)(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *body,
			    json_t **ret_reply);
void pl_update_write(struct pl_req *r, pl_update_fn fn, bool allow_done);


/* ---- history.c ---- */
void pl_h_history(struct pl_req *r);
void pl_h_latest(struct pl_req *r);

/* ---- secrets.c --------------------------------------------------------------- */
void pl_h_encrypt(struct pl_req *r);
void pl_h_decrypt(struct pl_req *r);
void pl_h_batch_encrypt(struct pl_req *r);
void pl_h_batch_decrypt(struct pl_req *r);
void pl_h_log_decryption(struct pl_req *r);

/* ---- deploy.c ---- */
void pl_h_deploy_create(struct pl_req *r);
void pl_h_deploy_list(struct pl_req *r);
void pl_h_deploy_get(struct pl_req *r);
void pl_h_deploy_cancel(struct pl_req *r);
/* A running deployment's `pd-` token: 0 and r->actor set, or -1. */
int pl_deploy_auth(struct pl_req *r, const char *token);

/* ---- delta.c (no host calls: fuzzed) ---------------------------------------- */
enum { PL_OK = 0, PL_EMALFORMED = -1, PL_ETOOBIG = -2, PL_ENOMEM = -3 };
/* Standard base64 with padding, strict. */
char *pl_b64_encode(const uint8_t *p, size_t n);
int pl_b64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len);
/* Inflate a gzip body into at most cap bytes (plus a terminating NUL). */
int pl_gunzip(const uint8_t *in, size_t n, size_t cap, uint8_t **ret, size_t *ret_len);
struct pl_edit {
	size_t start, end;		/* byte offsets into the previous text */
	const char *text;		/* borrowed */
	size_t len;
};
/* Parse a gotextdiff TextEdit array (borrowing strings from arr). */
int pl_edits_parse(const json_t *arr, struct pl_edit **ret, size_t *ret_n);
/* Apply edits to prev (sorted stably by start; out of range or
 * overlapping: PL_EMALFORMED; result over cap: PL_ETOOBIG). */
int pl_delta_apply(const char *prev, size_t prevlen, struct pl_edit *edits, size_t n, size_t cap, char **ret,
		   size_t *ret_len);
/* The raw bytes of member name's value in the JSON object text p
 * (validated JSON); PL_EMALFORMED when absent. */
int pl_json_member(const char *p, size_t n, const char *name, size_t *ret_off, size_t *ret_len);

#endif
