/* audit.h - the tamper-evident audit log.
 *
 * Append-only hash chain, byte-compatible with the reference service:
 *   entry_hash = hex(SHA-256(json.dumps(data, separators=(",",":"),
 *                                      sort_keys=True, ensure_ascii=True)))
 *   data = {action, detail, machine_id, new_state, operator_cn,
 *           prev_hash, prev_state, timestamp}
 * where timestamp is the naive-UTC isoformat string stored in the row
 * and the first entry's prev_hash is 64 zeros.  Appends happen inside
 * the caller's write transaction, which holds the database write lock,
 * so the chain cannot fork (a UNIQUE index on prev_hash enforces it). */
#ifndef ATT_AUDIT_AUDIT_H
#define ATT_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct att_dbc;

#define ATT_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

struct att_audit_entry {
	int64_t id;
	const char *timestamp;
	const char *operator_cn;
	const char *action;
	const char *machine_id;	/* may be NULL */
	const char *prev_state;	/* may be NULL */
	const char *new_state;	/* may be NULL */
	const char *detail;	/* may be NULL */
	const char *prev_hash;
	const char *entry_hash;
	const char *source_ip;	/* may be NULL; not hashed */
};

/* Canonical JSON of the hashed fields (caller frees). */
char *att_audit_canonical_json(const struct att_audit_entry *e);
/* entry_hash for e (uses e->prev_hash); out: 65 bytes. */
int att_audit_compute_hash(const struct att_audit_entry *e, char out[65]);

/* Append within the caller's write transaction.  timestamp, prev_hash
 * and entry_hash of e are filled in by this call. */
int att_audit_append(struct att_dbc *c, const char *operator_cn, const char *action,
		     const char *machine_id, const char *prev_state, const char *new_state,
		     const char *detail, const char *source_ip);

struct att_audit_verify {
	bool valid;
	int64_t entries;
	char root_hash[65];	/* "" when none */
	int64_t first_invalid_id; /* 0 when none */
	char error[128];	/* "" when none */
};

int att_audit_verify(struct att_dbc *c, struct att_audit_verify *ret);
/* The same, also copying the entry_hash of the pos-th entry (1-based, in
 * chain order) into hash_at ("" when the chain is shorter or breaks first). */
int att_audit_verify_probe(struct att_dbc *c, int64_t pos, char hash_at[65], struct att_audit_verify *ret);

#endif
