/* migrations.h - versioned schema migrations, compiled in.
 *
 * Each migration has one SQL text per dialect; DML elsewhere is
 * portable, only DDL differs (integer identity columns).  Never edit a
 * released migration: add a new one. */
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
