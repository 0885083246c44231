/* migrations.h - versioned schema migrations, compiled in.
 *
 * Each migration has one SQL text per dialect; DML elsewhere is
 * portable, only DDL differs (integer identity columns).  Never edit a
 * released migration: add a new one.
 *
 * A migration is applied when its version is not yet recorded in
 * schema_migrations (by set, not by maximum), so features developed side
 * by side reserve their numbers up front and land in any order; the
 * array stays sorted by version.  Reserved: 6 hardening (rate limits,
 * audit checkpoints: 13), 7 certificates, 8 event delivery and extensions,
 * 9 agent attestation policies, 10 dashboard, 11 secret vault and
 * auto-approval,
 * 12 deployment, 13 audit checkpoints.  Extensions keep their own versions per extension
 * (include/attest/extension.h). */
#ifndef ATT_DB_MIGRATIONS_H
#define ATT_DB_MIGRATIONS_H

struct att_migration {
	int version;
	const char *name;
	const char *sqlite;
	const char *postgresql;
};

extern const struct att_migration att_migrations[];
extern const int att_migrations_count;

#endif
