/* db-sqlite.c - SQLite backend of the portable database layer. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db.h"
#include "db/migrations.h"

#define STMT_CACHE 96

struct att_stmt {
	sqlite3_stmt *st;
	const char *sql;	/* cache key: the SQL literal's address */
	bool cached;
	struct att_dbc *c;
};

struct att_dbc {
	sqlite3 *h;
	struct att_stmt cache[STMT_CACHE];
	int ncache;
	bool in_txn;
};

struct att_db {
	char *path;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct att_dbc **conns;	/* opened connections, pool_size slots */
	bool *busy;
	unsigned pool_size;
};

static int mkdir_parents(const char *path)
{
	char *tmp = att_strdup(path);
	int r = 0;

	if (!tmp)
		return ATT_E_NOMEM;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			r = ATT_E_IO;
		*p = '/';
	}
	free(tmp);
	return r;
}

int att_db_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr,
		size_t errlen)
{
	struct att_db *db;
	const char *path;

	if (strncmp(url, "sqlite:///", 10) != 0) {
		if (strncmp(url, "postgres", 8) == 0)
			snprintf(reterr, errlen,
				 "ITL_DB_URL: PostgreSQL is not available in this build yet (use sqlite:///...)");
		else
			snprintf(reterr, errlen, "ITL_DB_URL: unsupported database URL");
		return ATT_E_INVAL;
	}
	path = url + 10;
	if (!*path) {
		snprintf(reterr, errlen, "ITL_DB_URL: missing database path");
		return ATT_E_INVAL;
	}
	if (strcmp(path, ":memory:") == 0)
		pool_size = 1;
	if (pool_size == 0)
		pool_size = 1;
	db = calloc(1, sizeof(*db));
	if (!db)
		return ATT_E_NOMEM;
	db->path = att_strdup(path);
	db->pool_size = pool_size;
	db->conns = calloc(pool_size, sizeof(*db->conns));
	db->busy = calloc(pool_size, sizeof(*db->busy));
	if (!db->path || !db->conns || !db->busy) {
		att_db_close(db);
		return ATT_E_NOMEM;
	}
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->cv, NULL);
	if (strcmp(path, ":memory:") != 0 && strchr(path, '/') && mkdir_parents(path) < 0) {
		snprintf(reterr, errlen, "ITL_DB_URL: cannot create the directory of %s: %s", path,
			 strerror(errno));
		att_db_close(db);
		return ATT_E_IO;
	}
	/* open one connection now so configuration errors surface at start */
	{
		struct att_dbc *c = att_db_acquire(db);

		if (!c) {
			snprintf(reterr, errlen, "ITL_DB_URL: cannot open SQLite database %s", path);
			att_db_close(db);
			return ATT_E_DB;
		}
		att_db_release(db, c);
	}
	*ret = db;
	return 0;
}

static void dbc_free(struct att_dbc *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->ncache; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close_v2(c->h);
	free(c);
}

void att_db_close(struct att_db *db)
{
	if (!db)
		return;
	if (db->conns) {
		for (unsigned i = 0; i < db->pool_size; i++)
			dbc_free(db->conns[i]);
	}
	free(db->conns);
	free(db->busy);
	free(db->path);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->cv);
	free(db);
}

static struct att_dbc *dbc_open(const char *path)
{
	struct att_dbc *c = calloc(1, sizeof(*c));
	int on = 1;

	if (!c)
		return NULL;
	if (sqlite3_open_v2(path, &c->h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(c->h, 1);
	sqlite3_db_config(c->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
	sqlite3_busy_timeout(c->h, 10000);
	if (sqlite3_exec(c->h,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return c;
fail:
	dbc_free(c);
	return NULL;
}

struct att_dbc *att_db_acquire(struct att_db *db)
{
	struct att_dbc *c = NULL;
	unsigned slot;

	pthread_mutex_lock(&db->mu);
	for (;;) {
		for (slot = 0; slot < db->pool_size; slot++)
			if (!db->busy[slot])
				break;
		if (slot < db->pool_size)
			break;
		pthread_cond_wait(&db->cv, &db->mu);
	}
	db->busy[slot] = true;
	pthread_mutex_unlock(&db->mu);

	c = db->conns[slot];
	if (!c) {
		c = dbc_open(db->path);
		if (!c) {
			pthread_mutex_lock(&db->mu);
			db->busy[slot] = false;
			pthread_cond_signal(&db->cv);
			pthread_mutex_unlock(&db->mu);
			return NULL;
		}
		db->conns[slot] = c;
	}
	return c;
}

void att_db_release(struct att_db *db, struct att_dbc *c)
{
	if (!c)
		return;
	if (c->in_txn)
		att_dbc_rollback(c);
	pthread_mutex_lock(&db->mu);
	for (unsigned i = 0; i < db->pool_size; i++) {
		if (db->conns[i] == c) {
			db->busy[i] = false;
			break;
		}
	}
	pthread_cond_signal(&db->cv);
	pthread_mutex_unlock(&db->mu);
}

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return ATT_E_CONFLICT;
	case SQLITE_NOMEM:
		return ATT_E_NOMEM;
	default:
		return ATT_E_DB;
	}
}

int att_dbc_begin(struct att_dbc *c)
{
	int rc = sqlite3_exec(c->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return ATT_E_DB;
	c->in_txn = true;
	return 0;
}

int att_dbc_commit(struct att_dbc *c)
{
	int rc = sqlite3_exec(c->h, "COMMIT", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		att_dbc_rollback(c);
		return ATT_E_DB;
	}
	c->in_txn = false;
	return 0;
}

void att_dbc_rollback(struct att_dbc *c)
{
	if (!sqlite3_get_autocommit(c->h))
		(void)sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
	c->in_txn = false;
}

const char *att_dbc_errmsg(struct att_dbc *c)
{
	return sqlite3_errmsg(c->h);
}

static struct att_stmt *stmt_get(struct att_dbc *c, const char *sql)
{
	struct att_stmt *s;

	for (int i = 0; i < c->ncache; i++)
		if (c->cache[i].sql == sql)
			return &c->cache[i];
	if (c->ncache < STMT_CACHE) {
		s = &c->cache[c->ncache];
		if (sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) !=
		    SQLITE_OK)
			return NULL;
		s->sql = sql;
		s->cached = true;
		s->c = c;
		c->ncache++;
		return s;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (sqlite3_prepare_v2(c->h, sql, -1, &s->st, NULL) != SQLITE_OK) {
		free(s);
		return NULL;
	}
	s->sql = sql;
	s->c = c;
	return s;
}

static int bind_args(struct att_stmt *s, const char *types, va_list ap)
{
	int idx = 1, rc = SQLITE_OK;

	for (const char *t = types; *t; t++, idx++) {
		switch (*t) {
		case 's': {
			const char *v = va_arg(ap, const char *);

			rc = v ? sqlite3_bind_text(s->st, idx, v, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(s->st, idx);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(s->st, idx, va_arg(ap, int64_t));
			break;
		case 'b':
			rc = sqlite3_bind_int(s->st, idx, va_arg(ap, int) ? 1 : 0);
			break;
		default:
			return ATT_E_INTERNAL;
		}
		if (rc != SQLITE_OK)
			return map_rc(rc) ? map_rc(rc) : ATT_E_DB;
	}
	return 0;
}

static int query_v(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types,
		   va_list ap)
{
	struct att_stmt *s = stmt_get(c, sql);
	int r;

	if (!s)
		return ATT_E_DB;
	r = bind_args(s, types, ap);
	if (r < 0) {
		att_stmt_done(s);
		return r;
	}
	*ret = s;
	return 0;
}

int att_dbc_query(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = query_v(c, ret, sql, types, ap);
	va_end(ap);
	return r;
}

int att_dbc_exec(struct att_dbc *c, const char *sql, const char *types, ...)
{
	struct att_stmt *s;
	va_list ap;
	int r;

	va_start(ap, types);
	r = query_v(c, &s, sql, types, ap);
	va_end(ap);
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1)
		;
	att_stmt_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(c->h);
}

int att_stmt_next(struct att_stmt *s)
{
	int rc = sqlite3_step(s->st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return map_rc(rc) ? map_rc(rc) : ATT_E_DB;
}

const char *att_stmt_text(struct att_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s->st, col);
}

int64_t att_stmt_int(struct att_stmt *s, int col)
{
	return sqlite3_column_int64(s->st, col);
}

bool att_stmt_is_null(struct att_stmt *s, int col)
{
	return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

void att_stmt_done(struct att_stmt *s)
{
	if (!s)
		return;
	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
	if (!s->cached) {
		sqlite3_finalize(s->st);
		free(s);
	}
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

static int current_version(struct att_dbc *c, int *ret)
{
	struct att_stmt *s;
	int r;

	r = att_dbc_query(c, &s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", "");
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1)
		*ret = (int)att_stmt_int(s, 0);
	att_stmt_done(s);
	return r == 1 ? 0 : ATT_E_DB;
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
	int r, cur = 0, applied = 0;
	char *err = NULL;

	if (!c) {
		snprintf(reterr, errlen, "cannot open database");
		return ATT_E_DB;
	}
	r = att_dbc_begin(c);
	if (r < 0) {
		snprintf(reterr, errlen, "cannot lock database for migration: %s", att_dbc_errmsg(c));
		goto out;
	}
	if (sqlite3_exec(c->h,
			 "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
			 " name TEXT NOT NULL, applied_at TEXT NOT NULL)",
			 NULL, NULL, &err) != SQLITE_OK) {
		snprintf(reterr, errlen, "cannot create schema_migrations: %s", err ? err : "?");
		r = ATT_E_DB;
		goto out;
	}
	r = current_version(c, &cur);
	if (r < 0) {
		snprintf(reterr, errlen, "cannot read schema version");
		goto out;
	}
	if (cur > att_db_latest_version()) {
		snprintf(reterr, errlen,
			 "database schema version %d is newer than this attestd (%d); upgrade attestd",
			 cur, att_db_latest_version());
		r = ATT_E_CONFLICT;
		goto out;
	}
	for (int i = 0; i < att_migrations_count; i++) {
		const struct att_migration *m = &att_migrations[i];
		char ts[32];

		if (m->version <= cur)
			continue;
		if (sqlite3_exec(c->h, m->sqlite, NULL, NULL, &err) != SQLITE_OK) {
			snprintf(reterr, errlen, "migration %d (%s) failed: %s", m->version, m->name,
				 err ? err : "?");
			r = ATT_E_DB;
			goto out;
		}
		att_time_iso(att_now(), ts);
		r = att_dbc_exec(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				 "iss", (int64_t)m->version, m->name, ts);
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
	sqlite3_free(err);
	if (r < 0)
		att_dbc_rollback(c);
	att_db_release(db, c);
	if (r >= 0 && ret_applied)
		*ret_applied = applied;
	return r < 0 ? r : 0;
}
