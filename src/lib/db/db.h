/* db.h - the portable database layer.
 *
 * Every query in attestd goes through this interface.  SQL is written
 * once, in the subset both SQLite and PostgreSQL accept, with '?'
 * positional parameters (the PostgreSQL backend rewrites them to $n).
 * No state that must be consistent lives in process memory: the pool
 * holds connections, nothing else.
 *
 * Usage:
 *   struct att_dbc *c = att_db_acquire(db);
 *   att_dbc_begin(c);                       // write transaction
 *   att_dbc_query(c, &st, "SELECT ... WHERE x = ?", "s", x);
 *   while ((r = att_stmt_next(st)) == 1) { att_stmt_text(st, 0); ... }
 *   att_stmt_done(st);
 *   att_dbc_commit(c);
 *   att_db_release(db, c);
 *
 * Parameter type letters: 's' const char * (NULL binds SQL NULL),
 * 'i' int64_t, 'b' bool (stored as integer 0/1). */
#ifndef ATT_DB_DB_H
#define ATT_DB_DB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct att_db;
struct att_dbc;
struct att_stmt;

/* url: sqlite:///relative/path, sqlite:////absolute/path or
 * sqlite:///:memory: (tests).  pool_size connections are opened lazily. */
int att_db_open(const char *url, unsigned pool_size, struct att_db **ret,
		char *reterr, size_t errlen);
void att_db_close(struct att_db *db);

/* Apply pending migrations (idempotent, safe under concurrency). */
int att_db_migrate(struct att_db *db, int *ret_applied, char *reterr, size_t errlen);
/* Highest applied migration version, or 0. */
int att_db_schema_version(struct att_db *db, int *ret_version);
/* Number of migrations compiled into this binary. */
int att_db_latest_version(void);

/* "sqlite" or "postgresql". */
const char *att_db_backend(const struct att_db *db);

/* Returns 0 when the database answers a trivial query. */
int att_db_ping(struct att_db *db);

/* Borrow a connection (blocks until one is free); NULL on failure. */
struct att_dbc *att_db_acquire(struct att_db *db);
void att_db_release(struct att_db *db, struct att_dbc *c);

/* Write transaction: takes the database write lock up front
 * (SQLite BEGIN IMMEDIATE), so read-check-write sequences serialize. */
int att_dbc_begin(struct att_dbc *c);
/* Read-only snapshot transaction (consistent reads without blocking writers). */
int att_dbc_begin_read(struct att_dbc *c);
int att_dbc_commit(struct att_dbc *c);
void att_dbc_rollback(struct att_dbc *c);

int att_dbc_query(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, ...);
/* Run a statement to completion; returns the number of changed rows
 * (>= 0) or a negative att_err.  A unique-constraint violation returns
 * ATT_E_CONFLICT. */
int att_dbc_exec(struct att_dbc *c, const char *sql, const char *types, ...);

/* The same with a va_list (wrappers such as the extension host). */
int att_dbc_vquery(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, va_list ap);
int att_dbc_vexec(struct att_dbc *c, const char *sql, const char *types, va_list ap);

/* Run a script of several statements without parameters (DDL). */
int att_dbc_exec_script(struct att_dbc *c, const char *sql, char *reterr, size_t errlen);

/* Run a parameterless query that yields one integer (COUNT, MAX ...). */
int att_dbc_query_int(struct att_dbc *c, const char *sql, int64_t *ret);

/* Like att_dbc_query with n text parameters (NULL binds SQL NULL). */
int att_dbc_query_texts(struct att_dbc *c, struct att_stmt **ret, const char *sql, int n,
			const char *const *vals);
/* Statement caches key on the SQL text's address, so SQL assembled at
 * run time (from fixed fragments, never from values) must be interned:
 * the same text always returns the same, permanent address.  NULL when
 * out of memory or past the table's cap (intern.c). */
const char *att_db_intern(const char *sql);

/* Backend flavour, for the few statements that differ (db copy). */
bool att_dbc_is_postgresql(struct att_dbc *c);

/* 1: a row is available, 0: done, < 0: error (ATT_E_CONFLICT on a
 * constraint violation, ATT_E_DB otherwise). */
int att_stmt_next(struct att_stmt *s);
const char *att_stmt_text(struct att_stmt *s, int col);	/* NULL for SQL NULL */
int64_t att_stmt_int(struct att_stmt *s, int col);
bool att_stmt_is_null(struct att_stmt *s, int col);
void att_stmt_done(struct att_stmt *s);

/* Why the calling thread's last database call failed, as the client may
 * hear it: a sentence ending "— try again[ later]" ("Database storage is
 * full", "Database is read-only", "Database unreachable", else "Database
 * unavailable").  att_db_acquire starts afresh. */
const char *att_db_unavailable_detail(void);
/* Backends: note the cause of a failure (ATT_DB_FAULT_*). */
enum att_db_fault { ATT_DB_FAULT_NONE, ATT_DB_FAULT_FULL, ATT_DB_FAULT_READONLY, ATT_DB_FAULT_UNREACHABLE };
void att_db_note_fault(enum att_db_fault f);

/* Last database error message on this connection (for logs). */
const char *att_dbc_errmsg(struct att_dbc *c);

#endif
