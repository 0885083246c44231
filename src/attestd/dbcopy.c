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
#define CHECKPOINT_COLS "id, issued_at, entries, head_id, head_hash, issuer, payload, signature, timestamp_token"
#define KEY_COLS "name, secret, created_at"

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
	{ "audit_checkpoints", 9, true, "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints ORDER BY id",
	  "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	  "INSERT INTO audit_checkpoints (" CHECKPOINT_COLS ") OVERRIDING SYSTEM VALUE VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" },
	/* the challenge key: outstanding challenges stay valid across the copy */
	{ "service_keys", 3, false, "SELECT " KEY_COLS " FROM service_keys ORDER BY name",
	  "INSERT INTO service_keys (" KEY_COLS ") VALUES (?, ?, ?)"
	  " ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
	  "INSERT INTO service_keys (" KEY_COLS ") VALUES (?, ?, ?)"
	  " ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at" },
};

static const char *const reset_identity[] = {
	"SELECT setval(pg_get_serial_sequence('machines', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM machines",
	"SELECT setval(pg_get_serial_sequence('audit_log', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM audit_log",
	"SELECT setval(pg_get_serial_sequence('outbox_events', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM outbox_events",
	"SELECT setval(pg_get_serial_sequence('approval_votes', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM approval_votes",
	"SELECT setval(pg_get_serial_sequence('audit_checkpoints', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), COALESCE(MAX(id), 0) > 0) FROM audit_checkpoints",
};

int att_dbcopy_run(const char *from, const char *to)
{
	struct att_db *src = NULL, *dst = NULL;
	struct att_dbc *sc = NULL, *dc = NULL;
	char err[1024];
	int64_t n = 0;
	int r, applied = 0, rc = 1;

	if (att_db_open(from, 1, &src, err, sizeof(err)) < 0 || att_db_migrate(src, &applied, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd db copy: source: %s\n", err);
		goto out;
	}
	if (att_db_open(to, 1, &dst, err, sizeof(err)) < 0 || att_db_migrate(dst, &applied, err, sizeof(err)) < 0) {
		fprintf(stderr, "attestd db copy: target: %s\n", err);
		goto out;
	}
	sc = att_db_acquire(src);
	dc = att_db_acquire(dst);
	if (!sc || !dc) {
		fprintf(stderr, "attestd db copy: cannot connect\n");
		goto out;
	}
	if (att_dbc_begin(dc) < 0 || att_dbc_begin_read(sc) < 0) {
		fprintf(stderr, "attestd db copy: cannot start transactions\n");
		goto out;
	}
	if (att_dbc_query_int(dc, "SELECT COUNT(*) FROM machines", &n) < 0 || n != 0 ||
	    att_dbc_query_int(dc, "SELECT COUNT(*) FROM audit_log", &n) < 0 || n != 0) {
		fprintf(stderr, "attestd db copy: the target database is not empty; copy into a new database\n");
		goto out;
	}
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		const struct copy_table *ct = &tables[t];
		const char *ins = att_dbc_is_postgresql(dc) ? ct->insert_pg : ct->insert_sqlite;
		struct att_stmt *s;
		int64_t rows = 0;

		r = att_dbc_query(sc, &s, ct->select_sql, "");
		if (r < 0) {
			fprintf(stderr, "attestd db copy: cannot read %s: %s\n", ct->name, att_dbc_errmsg(sc));
			goto out;
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
				fprintf(stderr, "attestd db copy: cannot write %s row: %s\n", ct->name, att_dbc_errmsg(dc));
				att_stmt_done(s);
				goto out;
			}
			rows++;
		}
		att_stmt_done(s);
		if (r < 0) {
			fprintf(stderr, "attestd db copy: cannot read %s\n", ct->name);
			goto out;
		}
		printf("%-20s %lld rows\n", ct->name, (long long)rows);
	}
	if (att_dbc_is_postgresql(dc)) {
		for (size_t i = 0; i < sizeof(reset_identity) / sizeof(reset_identity[0]); i++) {
			r = att_dbc_exec(dc, reset_identity[i], "");
			if (r < 0) {
				fprintf(stderr, "attestd db copy: cannot reset identity: %s\n", att_dbc_errmsg(dc));
				goto out;
			}
		}
	}
	{
		struct att_audit_verify v = { 0 };
		struct att_checkpoint cp = { 0 };
		char hash_at[65] = "";
		int g = att_checkpoint_get(dc, 0, &cp);

		if ((g < 0 && g != ATT_E_NOTFOUND) || att_audit_verify_probe(dc, cp.entries, hash_at, &v) < 0 || !v.valid) {
			fprintf(stderr, "attestd db copy: the copied audit chain does not verify (%s); nothing committed\n",
				v.error[0] ? v.error : "cannot read it");
			att_checkpoint_release(&cp);
			goto out;
		}
		if (g == 0 && cp.entries > 0 && strcmp(hash_at, cp.head_hash) != 0) {
			fprintf(stderr, "attestd db copy: the copied log does not extend its newest checkpoint (%lld entries);"
				" nothing committed\n", (long long)cp.entries);
			att_checkpoint_release(&cp);
			goto out;
		}
		att_checkpoint_release(&cp);
		if (att_dbc_commit(dc) < 0) {
			fprintf(stderr, "attestd db copy: commit failed: %s\n", att_dbc_errmsg(dc));
			goto out;
		}
		printf("audit chain verified: %lld entries, root %s\n", (long long)v.entries,
		       v.root_hash[0] ? v.root_hash : "(empty)");
	}
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
