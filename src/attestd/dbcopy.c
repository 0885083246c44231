/* dbcopy.c - attestd db copy --from URL --to URL
 *
 * Copies every table of a (possibly running) installation into an empty,
 * freshly migrated database of either backend: the source is read in one
 * snapshot transaction (writers are not blocked), the target written in
 * one transaction, row ids preserved so the audit chain verifies
 * afterwards (checked before reporting success). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/checkpoint.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "dbcopy.h"

struct copy_table {
	const char *name;
	int ncols;
	bool identity;		/* has an id identity column (PostgreSQL) */
	const char *select_sql;
	const char *insert_sqlite;
	const char *insert_pg;
};

#define MACHINE_COLS                                                                              \
	"id, machine_id, ek_fingerprint, ek_fingerprint_legacy, ek_fingerprint_agent, ek_source,"  \
	" ek_cert_b64, ek_key_type, ek_issuer, hw_uuid, hw_mac, hw_serial, hw_product, role, status," \
	" locked_from, cluster_id, hostname, assigned_ip, registered_at, approved_at, attested_at,"  \
	" locked_at, revoked_at, wipe_pending, config_delivered_at, ak_pub, updated_at,"             \
	" ek_verified, ek_chain_error, ek_manufacturer, ek_model, ak_public, ak_name, ak_bound_at,"   \
	" ek_public, tpm_reset_count, tpm_restart_count, last_quote_at, last_contact_at"
#define Q10 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
#define Q40 Q10 ", " Q10 ", " Q10 ", " Q10
#define AUDIT_COLS \
	"id, timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash, source_ip"
#define Q11 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
#define TOKEN_COLS "token_hash, machine_id, state, created_at, expires_at, first_fetched_at, fetch_count"
#define NONCE_COLS "nonce_id, nonce, created_at, expires_at, consumed_at"
#define SCHEMATIC_COLS "schematic_id, yaml, created_at, acknowledged_at"
#define OUTBOX_COLS "id, event, machine_id, payload, created_at, delivered_at"
#define VOTE_COLS "id, machine_id, operator_cn, role, hostname, assigned_ip, reason, created_at, expires_at, consumed"
#define ACTIVATION_COLS \
	"activation_id, machine_id, ak_public, ak_name, ek_public, secret_hash, created_at, expires_at, consumed_at"
#define POLICY_COLS "role, policy, updated_at, updated_by"
#define INTERMEDIATE_COLS "cert_sha256, subject, pem, first_seen"
#define SECRET_COLS                                                                                 \
	"id, machine_id, name, version, key_id, iv, ciphertext, size, description, created_at, created_by," \
	" updated_at, updated_by, expires_at, delivered_at, delivered_version"
#define Q16 Q10 ", ?, ?, ?, ?, ?, ?"
#define AUTO_COLS "machine_id, rule, decision, detail, attempts, next_at, decided_at"
#define IDENTITY_USE_COLS "jti, machine_id, rule, used_at"
#define CHECKPOINT_COLS "id, issued_at, entries, head_id, head_hash, issuer, payload, signature, timestamp_token"
#define KEY_COLS "name, secret, created_at"
#define CERT_COLS                                                                                   \
	"serial, machine_id, role, ca_serial, kind, key_type, ek_fingerprint, issued_at, issued_by, not_after," \
	" not_after_epoch, pem, revoked_at, revoked_epoch, revocation_reason, revocation_detail, agent_session"
#define DELIVERY_COLS                                                                               \
	"id, event_id, consumer, machine_id, part, status, attempts, next_attempt_at, held_until, holder," \
	" last_error, created_at, updated_at, delivered_at"
#define Q14 Q10 ", ?, ?, ?, ?"
#define AGENT_POLICY_COLS "cluster_id, version, yaml, document, created_at, created_by"
#define AGENT_SESSION_COLS \
	"session_id, cluster_id, policy, spiffe_id, attributes, source_ip, issued_at, expires_at, cert_serial"

static const struct copy_table tables[] = {
	{ "machines", 40, true, "SELECT " MACHINE_COLS " FROM machines ORDER BY id",
	  "INSERT INTO machines (" MACHINE_COLS ") VALUES (" Q40 ")",
	  "INSERT INTO machines (" MACHINE_COLS ") OVERRIDING SYSTEM VALUE VALUES (" Q40 ")" },
	{ "audit_log", 11, true, "SELECT " AUDIT_COLS " FROM audit_log ORDER BY id",
	  "INSERT INTO audit_log (" AUDIT_COLS ") VALUES (" Q11 ")",
	  "INSERT INTO audit_log (" AUDIT_COLS ") OVERRIDING SYSTEM VALUE VALUES (" Q11 ")" },
	{ "config_tokens", 7, false, "SELECT " TOKEN_COLS " FROM config_tokens ORDER BY token_hash",
	  "INSERT INTO config_tokens (" TOKEN_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO config_tokens (" TOKEN_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)" },
	{ "nonces", 5, false, "SELECT " NONCE_COLS " FROM nonces ORDER BY nonce_id",
	  "INSERT INTO nonces (" NONCE_COLS ") VALUES (?, ?, ?, ?, ?)",
	  "INSERT INTO nonces (" NONCE_COLS ") VALUES (?, ?, ?, ?, ?)" },
	{ "factory_schematics", 4, false, "SELECT " SCHEMATIC_COLS " FROM factory_schematics ORDER BY schematic_id",
	  "INSERT INTO factory_schematics (" SCHEMATIC_COLS ") VALUES (?, ?, ?, ?)",
	  "INSERT INTO factory_schematics (" SCHEMATIC_COLS ") VALUES (?, ?, ?, ?)" },
	{ "outbox_events", 6, true, "SELECT " OUTBOX_COLS " FROM outbox_events ORDER BY id",
	  "INSERT INTO outbox_events (" OUTBOX_COLS ") VALUES (?, ?, ?, ?, ?, ?)",
	  "INSERT INTO outbox_events (" OUTBOX_COLS ") OVERRIDING SYSTEM VALUE VALUES (?, ?, ?, ?, ?, ?)" },
	{ "approval_votes", 10, true, "SELECT " VOTE_COLS " FROM approval_votes ORDER BY id",
	  "INSERT INTO approval_votes (" VOTE_COLS ") VALUES (" Q10 ")",
	  "INSERT INTO approval_votes (" VOTE_COLS ") OVERRIDING SYSTEM VALUE VALUES (" Q10 ")" },
	{ "ak_activations", 9, false, "SELECT " ACTIVATION_COLS " FROM ak_activations ORDER BY activation_id",
	  "INSERT INTO ak_activations (" ACTIVATION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO ak_activations (" ACTIVATION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" },
	{ "pcr_policies", 4, false, "SELECT " POLICY_COLS " FROM pcr_policies ORDER BY role",
	  "INSERT INTO pcr_policies (" POLICY_COLS ") VALUES (?, ?, ?, ?)",
	  "INSERT INTO pcr_policies (" POLICY_COLS ") VALUES (?, ?, ?, ?)" },
	{ "ek_intermediates", 4, false, "SELECT " INTERMEDIATE_COLS " FROM ek_intermediates ORDER BY cert_sha256",
	  "INSERT INTO ek_intermediates (" INTERMEDIATE_COLS ") VALUES (?, ?, ?, ?)",
	  "INSERT INTO ek_intermediates (" INTERMEDIATE_COLS ") VALUES (?, ?, ?, ?)" },
	{ "machine_secrets", 16, true, "SELECT " SECRET_COLS " FROM machine_secrets ORDER BY id",
	  "INSERT INTO machine_secrets (" SECRET_COLS ") VALUES (" Q16 ")",
	  "INSERT INTO machine_secrets (" SECRET_COLS ") OVERRIDING SYSTEM VALUE VALUES (" Q16 ")" },
	{ "auto_approvals", 7, false, "SELECT " AUTO_COLS " FROM auto_approvals ORDER BY machine_id",
	  "INSERT INTO auto_approvals (" AUTO_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO auto_approvals (" AUTO_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)" },
	{ "agent_identity_uses", 4, false, "SELECT " IDENTITY_USE_COLS " FROM agent_identity_uses ORDER BY jti",
	  "INSERT INTO agent_identity_uses (" IDENTITY_USE_COLS ") VALUES (?, ?, ?, ?)",
	  "INSERT INTO agent_identity_uses (" IDENTITY_USE_COLS ") VALUES (?, ?, ?, ?)" },
	{ "audit_checkpoints", 9, true, "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id",
	  "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ") OVERRIDING SYSTEM VALUE VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" },
	/* the challenge key: outstanding challenges stay valid across the copy */
	{ "service_keys", 3, false, "SELECT " KEY_COLS " FROM service_keys ORDER BY name",
	  "INSERT INTO service_keys (" KEY_COLS ") VALUES (?, ?, ?)"
	  " ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
	  "INSERT INTO service_keys (" KEY_COLS ") VALUES (?, ?, ?)"
	  " ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at" },
	/* issued certificates and their revocations (CRL and OCSP answers come from them) */
	{ "issued_certs", 17, false, "SELECT " CERT_COLS " FROM issued_certs ORDER BY serial",
	  "INSERT INTO issued_certs (" CERT_COLS ") VALUES (" Q16 ", ?)",
	  "INSERT INTO issued_certs (" CERT_COLS ") VALUES (" Q16 ", ?)" },
	/* where each event's delivery to each consumer stands (nothing redelivered or lost) */
	{ "event_deliveries", 14, true, "SELECT " DELIVERY_COLS " FROM event_deliveries ORDER BY id",
	  "INSERT INTO event_deliveries (" DELIVERY_COLS ") VALUES (" Q14 ")",
	  "INSERT INTO event_deliveries (" DELIVERY_COLS ") OVERRIDING SYSTEM VALUE VALUES (" Q14 ")" },
	{ "agent_policies", 6, false, "SELECT " AGENT_POLICY_COLS " FROM agent_policies ORDER BY cluster_id, version",
	  "INSERT INTO agent_policies (" AGENT_POLICY_COLS ") VALUES (?, ?, ?, ?, ?, ?)",
	  "INSERT INTO agent_policies (" AGENT_POLICY_COLS ") VALUES (?, ?, ?, ?, ?, ?)" },
	{ "agent_sessions", 9, false, "SELECT " AGENT_SESSION_COLS " FROM agent_sessions ORDER BY session_id",
	  "INSERT INTO agent_sessions (" AGENT_SESSION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO agent_sessions (" AGENT_SESSION_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" },
};

static const char *const reset_identity[] = {
	"SELECT setval(pg_get_serial_sequence('machines', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM machines",
	"SELECT setval(pg_get_serial_sequence('audit_log', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM audit_log",
	"SELECT setval(pg_get_serial_sequence('outbox_events', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM outbox_events",
	"SELECT setval(pg_get_serial_sequence('approval_votes', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM approval_votes",
	"SELECT setval(pg_get_serial_sequence('machine_secrets', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM machine_secrets",
	"SELECT setval(pg_get_serial_sequence('audit_checkpoints', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM audit_checkpoints",
	"SELECT setval(pg_get_serial_sequence('event_deliveries', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM event_deliveries",
};

int att_dbcopy_run(const char *from, const char *to)
{
	struct att_dbcopy_result res;

	return att_dbcopy("attestd db copy", from, to, true, &res) == 0 ? 0 : 1;
}

/* One table, row by row in the source's order; its row count. */
static int copy_one(struct att_dbc *sc, struct att_dbc *dc, const struct copy_table *ct, const char *what,
		    int64_t *ret_rows)
{
	const char *ins = att_dbc_is_postgresql(dc) ? ct->insert_pg : ct->insert_sqlite;
	struct att_stmt *s;
	int64_t rows = 0;
	int r = att_dbc_query(sc, &s, ct->select_sql, "");

	if (r < 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", what, ct->name, att_dbc_errmsg(sc));
		return -1;
	}
	while ((r = att_stmt_next(s)) == 1) {
		const char *vals[48];
		struct att_stmt *w;

		for (int i = 0; i < ct->ncols; i++)
			vals[i] = att_stmt_text(s, i);
		r = att_dbc_query_texts(dc, &w, ins, ct->ncols, vals);
		if (r == 0) {
			while ((r = att_stmt_next(w)) == 1)
				;
			att_stmt_done(w);
		}
		if (r < 0) {
			fprintf(stderr, "%s: cannot write %s row: %s\n", what, ct->name, att_dbc_errmsg(dc));
			att_stmt_done(s);
			return -1;
		}
		rows++;
	}
	att_stmt_done(s);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read %s\n", what, ct->name);
		return -1;
	}
	*ret_rows = rows;
	return 0;
}

/* PostgreSQL: identity sequences continue after the copied ids. */
static int reset_identities(struct att_dbc *dc, const char *what)
{
	if (!att_dbc_is_postgresql(dc))
		return 0;
	for (size_t i = 0; i < sizeof(reset_identity) / sizeof(reset_identity[0]); i++) {
		if (att_dbc_exec(dc, reset_identity[i], "") < 0) {
			fprintf(stderr, "%s: cannot reset identity: %s\n", what, att_dbc_errmsg(dc));
			return -1;
		}
	}
	return 0;
}

/* The copied audit chain verifies and extends its newest checkpoint:
 * commit the target; otherwise nothing is committed. */
static int verify_commit(struct att_dbc *dc, const char *what, bool verbose, struct att_dbcopy_result *ret)
{
	struct att_audit_verify v = { 0 };
	struct att_checkpoint cp = { 0 };
	char hash_at[65] = "";
	int g = att_checkpoint_get(dc, 0, &cp);

	if ((g < 0 && g != ATT_E_NOTFOUND) || att_audit_verify_probe(dc, cp.entries, hash_at, &v) < 0 || !v.valid) {
		fprintf(stderr, "%s: the copied audit chain does not verify (%s); nothing committed\n", what,
			v.error[0] ? v.error : "cannot read it");
		att_checkpoint_release(&cp);
		return -1;
	}
	if (g == 0 && cp.entries > 0 && strcmp(hash_at, cp.head_hash) != 0) {
		fprintf(stderr, "%s: the copied log does not extend its newest checkpoint (%lld entries);"
			" nothing committed\n", what, (long long)cp.entries);
		att_checkpoint_release(&cp);
		return -1;
	}
	att_checkpoint_release(&cp);
	if (att_dbc_commit(dc) < 0) {
		fprintf(stderr, "%s: commit failed: %s\n", what, att_dbc_errmsg(dc));
		return -1;
	}
	if (verbose)
		printf("audit chain verified: %lld entries, root %s\n", (long long)v.entries,
		       v.root_hash[0] ? v.root_hash : "(empty)");
	ret->audit_entries = v.entries;
	snprintf(ret->root_hash, sizeof(ret->root_hash), "%s", v.root_hash);
	return 0;
}

int att_dbcopy(const char *what, const char *from, const char *to, bool verbose, struct att_dbcopy_result *ret)
{
	struct att_db *src = NULL, *dst = NULL;
	struct att_dbc *sc = NULL, *dc = NULL;
	char err[1024];
	int64_t n = 0;
	int applied = 0, rc = -1;

	memset(ret, 0, sizeof(*ret));
	if (att_db_open(from, 1, &src, err, sizeof(err)) < 0 || att_db_migrate(src, &applied, err, sizeof(err)) < 0 ||
	    att_db_schema_version(src, &ret->schema_version) < 0) {
		fprintf(stderr, "%s: source: %s\n", what, err);
		goto out;
	}
	if (att_db_open(to, 1, &dst, err, sizeof(err)) < 0 || att_db_migrate(dst, &applied, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: target: %s\n", what, err);
		goto out;
	}
	sc = att_db_acquire(src);
	dc = att_db_acquire(dst);
	if (!sc || !dc) {
		fprintf(stderr, "%s: cannot connect\n", what);
		goto out;
	}
	if (att_dbc_begin(dc) < 0 || att_dbc_begin_read(sc) < 0) {
		fprintf(stderr, "%s: cannot start transactions\n", what);
		goto out;
	}
	if (att_dbc_query_int(dc, "SELECT COUNT(*) FROM machines", &n) < 0 || n != 0 ||
	    att_dbc_query_int(dc, "SELECT COUNT(*) FROM audit_log", &n) < 0 || n != 0) {
		fprintf(stderr, "%s: the target database is not empty; copy into a new database\n", what);
		goto out;
	}
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		int64_t rows = 0;

		if (copy_one(sc, dc, &tables[t], what, &rows) < 0)
			goto out;
		if (verbose)
			printf("%-20s %lld rows\n", tables[t].name, (long long)rows);
		if (strcmp(tables[t].name, "machines") == 0)
			ret->machines = rows;
	}
	if (reset_identities(dc, what) < 0 || verify_commit(dc, what, verbose, ret) < 0)
		goto out;
	rc = 0;
out:
	if (sc) {
		att_dbc_rollback(sc);
		att_db_release(src, sc);
	}
	if (dc) {
		att_dbc_rollback(dc);
		att_db_release(dst, dc);
	}
	att_db_close(src);
	att_db_close(dst);
	return rc;
}
