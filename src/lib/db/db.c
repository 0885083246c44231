/* db.c - backend dispatch and the backend-independent parts: migrations,
 * ping, schema version. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db-internal.h"
#include "db/migrations.h"

int att_db_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr, size_t errlen)
{
	if (strncmp(url, "sqlite:///", 10) == 0)
		return att_db_sqlite_open(url, pool_size, ret, reterr, errlen);
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return att_db_pg_open(url, pool_size, ret, reterr, errlen);
	snprintf(reterr, errlen, "ITL_DB_URL: unsupported database URL (sqlite:///... or postgresql://...)");
	return ATT_E_INVAL;
}

void att_db_close(struct att_db *db)
{
	if (db)
		db->ops->close(db);
}

const char *att_db_backend(const struct att_db *db)
{
	return db->ops->name;
}

static _Thread_local enum att_db_fault last_fault;

void att_db_note_fault(enum att_db_fault f)
{
	last_fault = f;
}

const char *att_db_unavailable_detail(void)
{
	switch (last_fault) {
	case ATT_DB_FAULT_FULL: return "Database storage is full — try again later";
	case ATT_DB_FAULT_READONLY: return "Database is read-only — try again later";
	case ATT_DB_FAULT_UNREACHABLE: return "Database unreachable — try again";
	default: return "Database unavailable — try again";
	}
}

struct att_dbc *att_db_acquire(struct att_db *db)
{
	struct att_dbc *c;

	last_fault = ATT_DB_FAULT_NONE;
	c = db->ops->acquire(db);
	if (!c)
		last_fault = ATT_DB_FAULT_UNREACHABLE;
	return c;
}

void att_db_release(struct att_db *db, struct att_dbc *c)
{
	if (c)
		db->ops->release(db, c);
}

int att_dbc_begin(struct att_dbc *c)
{
	return c->ops->begin(c);
}

int att_dbc_begin_read(struct att_dbc *c)
{
	return c->ops->begin_read(c);
}

int att_dbc_query_texts(struct att_dbc *c, struct att_stmt **ret, const char *sql, int n,
			const char *const *vals)
{
	return c->ops->query_texts(c, ret, sql, n, vals);
}

bool att_dbc_is_postgresql(struct att_dbc *c)
{
	return c->ops->postgresql;
}

int att_dbc_commit(struct att_dbc *c)
{
	return c->ops->commit(c);
}

void att_dbc_rollback(struct att_dbc *c)
{
	c->ops->rollback(c);
}

const char *att_dbc_errmsg(struct att_dbc *c)
{
	return c->ops->errmsg(c);
}

int att_dbc_vquery(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, va_list ap)
{
	return c->ops->query(c, ret, sql, types, ap);
}

int att_dbc_query(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = c->ops->query(c, ret, sql, types, ap);
	va_end(ap);
	return r;
}

int att_dbc_vexec(struct att_dbc *c, const char *sql, const char *types, va_list ap)
{
	struct att_stmt *s;
	int r = c->ops->query(c, &s, sql, types, ap);

	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1)
		;
	if (r == 0)
		r = c->ops->changes(c);
	att_stmt_done(s);
	return r;
}

int att_dbc_exec(struct att_dbc *c, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = att_dbc_vexec(c, sql, types, ap);
	va_end(ap);
	return r;
}

int att_stmt_next(struct att_stmt *s)
{
	return s->ops->next(s);
}

const char *att_stmt_text(struct att_stmt *s, int col)
{
	return s->ops->text(s, col);
}

int64_t att_stmt_int(struct att_stmt *s, int col)
{
	const char *t = s->ops->text(s, col);
	int64_t v = 0;
	bool neg = false;

	if (!t)
		return 0;
	if (*t == '-') {
		neg = true;
		t++;
	}
	for (; *t >= '0' && *t <= '9'; t++)
		v = v * 10 + (*t - '0');
	return neg ? -v : v;
}

bool att_stmt_is_null(struct att_stmt *s, int col)
{
	return s->ops->is_null(s, col);
}

void att_stmt_done(struct att_stmt *s)
{
	if (s)
		s->ops->done(s);
}

int att_db_ping(struct att_db *db)
{
	struct att_dbc *c = att_db_acquire(db);
	struct att_stmt *s;
	int r;

	if (!c)
		return ATT_E_DB;
	r = att_dbc_query(c, &s, "SELECT 1", "");
	if (r == 0) {
		r = att_stmt_next(s) == 1 ? 0 : ATT_E_DB;
		att_stmt_done(s);
	}
	att_db_release(db, c);
	return r;
}

int att_db_latest_version(void)
{
	return att_migrations[att_migrations_count - 1].version;
}

int att_dbc_exec_script(struct att_dbc *c, const char *sql, char *reterr, size_t errlen)
{
	return c->ops->exec_script(c, sql, reterr, errlen);
}

int att_dbc_query_int(struct att_dbc *c, const char *sql, int64_t *ret)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, sql, "");

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1)
		*ret = att_stmt_int(s, 0);
	att_stmt_done(s);
	return r == 1 ? 0 : ATT_E_DB;
}

static int current_version(struct att_dbc *c, int *ret)
{
	int64_t v = 0;
	int r = att_dbc_query_int(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &v);

	if (r == 0)
		*ret = (int)v;
	return r;
}

static int migration_applied(struct att_dbc *c, int version, bool *ret)
{
	struct att_stmt *s;
	int r = att_dbc_query(c, &s, "SELECT 1 FROM schema_migrations WHERE version = ?", "i", (int64_t)version);

	if (r < 0)
		return r;
	r = att_stmt_next(s);
	att_stmt_done(s);
	if (r < 0)
		return r;
	*ret = r == 1;
	return 0;
}

int att_db_schema_version(struct att_db *db, int *ret_version)
{
	struct att_dbc *c = att_db_acquire(db);
	int r;

	if (!c)
		return ATT_E_DB;
	r = current_version(c, ret_version);
	att_db_release(db, c);
	return r;
}

int att_db_migrate(struct att_db *db, int *ret_applied, char *reterr, size_t errlen)
{
	struct att_dbc *c = att_db_acquire(db);
	char why[512] = "";
	int r, cur = 0, applied = 0;

	if (!c) {
		snprintf(reterr, errlen, "cannot connect to the database");
		return ATT_E_DB;
	}
	/* the write lock serializes concurrent migrators (replicas starting together) */
	r = att_dbc_begin(c);
	if (r < 0) {
		snprintf(reterr, errlen, "cannot lock the database for migration: %s", att_dbc_errmsg(c));
		goto out;
	}
	r = c->ops->exec_script(c,
				"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
				" name TEXT NOT NULL, applied_at TEXT NOT NULL)",
				why, sizeof(why));
	if (r < 0) {
		snprintf(reterr, errlen, "cannot create schema_migrations: %s", why);
		goto out;
	}
	r = current_version(c, &cur);
	if (r < 0) {
		snprintf(reterr, errlen, "cannot read the schema version");
		goto out;
	}
	if (cur > att_db_latest_version()) {
		snprintf(reterr, errlen, "database schema version %d is newer than this attestd (%d); upgrade attestd",
			 cur, att_db_latest_version());
		r = ATT_E_CONFLICT;
		goto out;
	}
	for (int i = 0; i < att_migrations_count; i++) {
		const struct att_migration *m = &att_migrations[i];
		char ts[32];
		bool done = false;

		/* by set, not by maximum: a version is applied once, whatever
		 * was applied after it (versions are reserved per feature) */
		r = migration_applied(c, m->version, &done);
		if (r < 0) {
			snprintf(reterr, errlen, "cannot read schema_migrations");
			goto out;
		}
		if (done)
			continue;
		r = c->ops->exec_script(c, c->ops->postgresql ? m->postgresql : m->sqlite, why, sizeof(why));
		if (r < 0) {
			snprintf(reterr, errlen, "migration %d (%s) failed: %s", m->version, m->name, why);
			goto out;
		}
		att_time_iso(att_now(), ts);
		r = att_dbc_exec(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", "iss",
				 (int64_t)m->version, m->name, ts);
		if (r < 0) {
			snprintf(reterr, errlen, "cannot record migration %d", m->version);
			goto out;
		}
		applied++;
	}
	r = att_dbc_commit(c);
	if (r < 0)
		snprintf(reterr, errlen, "cannot commit migrations: %s", att_dbc_errmsg(c));
out:
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(db, c);
	if (r >= 0 && ret_applied)
		*ret_applied = applied;
	return r < 0 ? r : 0;
}
