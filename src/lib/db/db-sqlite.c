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
#include "db/db-internal.h"
#include "db/db-pool.h"

#define STMT_CACHE 96

struct sq_conn;

struct sq_stmt {
	struct att_stmt base;
	sqlite3_stmt *st;
	const char *sql;	/* cache key: the SQL literal's address */
	bool cached;
	struct sq_conn *c;
};

struct sq_conn {
	struct att_dbc base;
	sqlite3 *h;
	struct sq_stmt cache[STMT_CACHE];
	int ncache;
	bool in_txn;
};

struct sq_db {
	struct att_db base;
	char *path;
	struct att_pool pool;
};

static const struct att_db_ops sqlite_ops;
#define DB(x) ((struct sq_db *)(void *)(x))
#define CONN(x) ((struct sq_conn *)(void *)(x))
#define STMT(x) ((struct sq_stmt *)(void *)(x))

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

static void conn_free(void *conn)
{
	struct sq_conn *c = conn;

	if (!c)
		return;
	for (int i = 0; i < c->ncache; i++)
		sqlite3_finalize(c->cache[i].st);
	sqlite3_close_v2(c->h);
	free(c);
}

static void sq_close(struct att_db *base)
{
	struct sq_db *db = DB(base);

	if (!db)
		return;
	att_pool_destroy(&db->pool, conn_free);
	free(db->path);
	free(db);
}

static struct sq_conn *conn_open(const char *path)
{
	struct sq_conn *c = calloc(1, sizeof(*c));
	int on = 1;

	if (!c)
		return NULL;
	c->base.ops = &sqlite_ops;
	if (sqlite3_open_v2(path, &c->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(c->h, 1);
	sqlite3_db_config(c->h, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
	sqlite3_busy_timeout(c->h, 10000);
	if (sqlite3_exec(c->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return c;
fail:
	conn_free(c);
	return NULL;
}

static struct att_dbc *sq_acquire(struct att_db *base)
{
	struct sq_db *db = DB(base);
	unsigned slot = att_pool_take(&db->pool);
	struct sq_conn *c = db->pool.conns[slot];

	if (!c) {
		c = conn_open(db->path);
		if (!c) {
			att_pool_give(&db->pool, slot);
			return NULL;
		}
		db->pool.conns[slot] = c;
	}
	return &c->base;
}

static void sq_rollback(struct att_dbc *base)
{
	struct sq_conn *c = CONN(base);

	if (!sqlite3_get_autocommit(c->h))
		(void)sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
	c->in_txn = false;
}

static void sq_release(struct att_db *base, struct att_dbc *cb)
{
	struct sq_db *db = DB(base);
	struct sq_conn *c = CONN(cb);

	if (c->in_txn)
		sq_rollback(cb);
	/* A connection SQLite opened read-only (the file was not writable
	 * then) stays read-only: reopen it next time, so a fixed permission
	 * takes effect without a restart. */
	if (sqlite3_db_readonly(c->h, "main") == 1) {
		att_pool_drop_conn(&db->pool, c);
		conn_free(c);
		return;
	}
	att_pool_give_conn(&db->pool, c);
}

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		att_db_note_fault(ATT_DB_FAULT_FULL);
		return ATT_E_DB;
	case SQLITE_READONLY:
		att_db_note_fault(ATT_DB_FAULT_READONLY);
		return ATT_E_DB;
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

static int sq_begin(struct att_dbc *base)
{
	struct sq_conn *c = CONN(base);
	int rc = sqlite3_exec(c->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return map_rc(rc) ? map_rc(rc) : ATT_E_DB;
	c->in_txn = true;
	return 0;
}

static int sq_begin_read(struct att_dbc *base)
{
	struct sq_conn *c = CONN(base);

	if (sqlite3_exec(c->h, "BEGIN DEFERRED", NULL, NULL, NULL) != SQLITE_OK)
		return ATT_E_DB;
	c->in_txn = true;
	return 0;
}

static int sq_commit(struct att_dbc *base)
{
	struct sq_conn *c = CONN(base);
	int rc = sqlite3_exec(c->h, "COMMIT", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		sq_rollback(base);
		rc = map_rc(rc);	/* notes a full or read-only database */
		return rc == ATT_E_NOMEM ? rc : ATT_E_DB;
	}
	c->in_txn = false;
	return 0;
}

static const char *sq_errmsg(struct att_dbc *base)
{
	return sqlite3_errmsg(CONN(base)->h);
}

static struct sq_stmt *stmt_get(struct sq_conn *c, const char *sql)
{
	struct sq_stmt *s;

	for (int i = 0; i < c->ncache; i++)
		if (c->cache[i].sql == sql)
			return &c->cache[i];
	if (c->ncache < STMT_CACHE) {
		s = &c->cache[c->ncache];
		if (sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) != SQLITE_OK)
			return NULL;
		s->base.ops = &sqlite_ops;
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
	s->base.ops = &sqlite_ops;
	s->sql = sql;
	s->c = c;
	return s;
}

static void sq_done(struct att_stmt *base)
{
	struct sq_stmt *s = STMT(base);

	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
	if (!s->cached) {
		sqlite3_finalize(s->st);
		free(s);
	}
}

static int sq_query(struct att_dbc *base, struct att_stmt **ret, const char *sql, const char *types,
		    va_list ap)
{
	struct sq_stmt *s = stmt_get(CONN(base), sql);
	int idx = 1, rc = SQLITE_OK;

	if (!s)
		return ATT_E_DB;
	for (const char *t = types; *t; t++, idx++) {
		switch (*t) {
		case 's': {
			const char *v = va_arg(ap, const char *);

			rc = v ? sqlite3_bind_text(s->st, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s->st, idx);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(s->st, idx, va_arg(ap, int64_t));
			break;
		case 'b':
			rc = sqlite3_bind_int(s->st, idx, va_arg(ap, int) ? 1 : 0);
			break;
		default:
			rc = SQLITE_MISUSE;
		}
		if (rc != SQLITE_OK) {
			sq_done(&s->base);
			return map_rc(rc) ? map_rc(rc) : ATT_E_DB;
		}
	}
	*ret = &s->base;
	return 0;
}

static int sq_query_texts(struct att_dbc *base, struct att_stmt **ret, const char *sql, int n,
			  const char *const *vals)
{
	struct sq_stmt *s = stmt_get(CONN(base), sql);

	if (!s)
		return ATT_E_DB;
	for (int i = 0; i < n; i++) {
		int rc = vals[i] ? sqlite3_bind_text(s->st, i + 1, vals[i], -1, SQLITE_TRANSIENT)
				 : sqlite3_bind_null(s->st, i + 1);

		if (rc != SQLITE_OK) {
			sq_done(&s->base);
			return ATT_E_DB;
		}
	}
	*ret = &s->base;
	return 0;
}

static int sq_changes(struct att_dbc *base)
{
	return sqlite3_changes(CONN(base)->h);
}

static int sq_next(struct att_stmt *base)
{
	int rc = sqlite3_step(STMT(base)->st);

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return map_rc(rc) ? map_rc(rc) : ATT_E_DB;
}

static const char *sq_text(struct att_stmt *base, int col)
{
	return (const char *)sqlite3_column_text(STMT(base)->st, col);
}

static bool sq_is_null(struct att_stmt *base, int col)
{
	return sqlite3_column_type(STMT(base)->st, col) == SQLITE_NULL;
}

static int sq_exec_script(struct att_dbc *base, const char *sql, char *reterr, size_t errlen)
{
	char *err = NULL;
	int r = 0;

	if (sqlite3_exec(CONN(base)->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(reterr, errlen, "%s", err ? err : "?");
		r = ATT_E_DB;
	}
	sqlite3_free(err);
	return r;
}

static const struct att_db_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.acquire = sq_acquire,
	.release = sq_release,
	.begin = sq_begin,
	.begin_read = sq_begin_read,
	.query_texts = sq_query_texts,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.query = sq_query,
	.changes = sq_changes,
	.next = sq_next,
	.text = sq_text,
	.is_null = sq_is_null,
	.done = sq_done,
	.errmsg = sq_errmsg,
	.exec_script = sq_exec_script,
	.postgresql = false,
};

int att_db_sqlite_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr,
		       size_t errlen)
{
	struct sq_db *db;
	const char *path = url + strlen("sqlite:///");

	if (!*path) {
		snprintf(reterr, errlen, "ITL_DB_URL: missing database path");
		return ATT_E_INVAL;
	}
	if (strcmp(path, ":memory:") == 0 || pool_size == 0)
		pool_size = 1;
	db = calloc(1, sizeof(*db));
	if (!db)
		return ATT_E_NOMEM;
	db->base.ops = &sqlite_ops;
	db->path = att_strdup(path);
	if (att_pool_init(&db->pool, pool_size) < 0 || !db->path) {
		sq_close(&db->base);
		return ATT_E_NOMEM;
	}
	if (strcmp(path, ":memory:") != 0 && strchr(path, '/') && mkdir_parents(path) < 0) {
		snprintf(reterr, errlen, "ITL_DB_URL: cannot create the directory of %s: %s", path, strerror(errno));
		sq_close(&db->base);
		return ATT_E_IO;
	}
	{
		struct att_dbc *c = sq_acquire(&db->base);

		if (!c) {
			snprintf(reterr, errlen, "ITL_DB_URL: cannot open SQLite database %s", path);
			sq_close(&db->base);
			return ATT_E_DB;
		}
		sq_release(&db->base, c);
	}
	*ret = &db->base;
	return 0;
}
