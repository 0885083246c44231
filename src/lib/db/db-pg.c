/* db-pg.c - PostgreSQL backend of the portable database layer (libpq).
 *
 * Statements are prepared once per connection ('?' rewritten to $n) and
 * executed with text parameters.  A write transaction takes a global
 * transaction-scoped advisory lock right after BEGIN, the equivalent of
 * SQLite's BEGIN IMMEDIATE across every replica: read-check-write
 * sequences, audit appends and one-time consumptions serialize.  Broken
 * connections are dropped and reopened on the next acquire, so a
 * database outage fails requests fast and heals by itself. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/util.h"
#include "db/db-internal.h"
#include "db/db-pool.h"

#define PG_STMT_CACHE 96
#define PG_MAX_PARAMS 32
#define PG_WRITE_LOCK "SELECT pg_advisory_xact_lock(74157415)"

struct pg_prepared {
	const char *sql;	/* cache key: the SQL literal's address */
	char name[16];
};

struct pg_conn {
	struct att_dbc base;
	PGconn *h;
	struct pg_prepared cache[PG_STMT_CACHE];
	int ncache;
	int nprepared_total;
	bool in_txn;
	int changes;
	char err[256];
};

struct pg_stmt {
	struct att_stmt base;
	PGresult *res;
	int row, nrows;
};

struct pg_db {
	struct att_db base;
	char *url;
	struct att_pool pool;
};

static const struct att_db_ops pg_ops;
#define DB(x) ((struct pg_db *)(void *)(x))
#define CONN(x) ((struct pg_conn *)(void *)(x))
#define STMT(x) ((struct pg_stmt *)(void *)(x))

static void conn_free(void *conn)
{
	struct pg_conn *c = conn;

	if (!c)
		return;
	PQfinish(c->h);
	free(c);
}

static struct pg_conn *conn_open(const char *url)
{
	static const char *const keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { url, "3", "attestd", NULL };
	struct pg_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base.ops = &pg_ops;
	c->h = PQconnectdbParams(keys, vals, 1);
	if (!c->h || PQstatus(c->h) != CONNECTION_OK) {
		conn_free(c);
		return NULL;
	}
	return c;
}

static void pg_close(struct att_db *base)
{
	struct pg_db *db = DB(base);

	if (!db)
		return;
	att_pool_destroy(&db->pool, conn_free);
	if (db->url)
		att_wipe(db->url, strlen(db->url));
	free(db->url);
	free(db);
}

static struct att_dbc *pg_acquire(struct att_db *base)
{
	struct pg_db *db = DB(base);
	unsigned slot = att_pool_take(&db->pool);
	struct pg_conn *c = db->pool.conns[slot];

	if (c && PQstatus(c->h) != CONNECTION_OK) {
		conn_free(c);
		c = db->pool.conns[slot] = NULL;
	}
	if (!c) {
		c = conn_open(db->url);
		if (!c) {
			att_pool_give(&db->pool, slot);
			return NULL;
		}
		db->pool.conns[slot] = c;
	}
	return &c->base;
}

/* A connection that broke while idle in the pool (server restart,
 * failover) is reset and the statement retried once — only outside a
 * transaction, where nothing can have been half-done. */
static bool reconnect(struct pg_conn *c)
{
	if (c->in_txn || PQstatus(c->h) != CONNECTION_BAD)
		return false;
	PQreset(c->h);
	c->ncache = 0; /* prepared statements died with the session */
	return PQstatus(c->h) == CONNECTION_OK;
}

static int simple(struct pg_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->h, sql);
	ExecStatusType st = PQresultStatus(res);
	int r = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : ATT_E_DB;

	if (r < 0 && reconnect(c)) {
		PQclear(res);
		res = PQexec(c->h, sql);
		st = PQresultStatus(res);
		r = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : ATT_E_DB;
	}

	if (r < 0)
		snprintf(c->err, sizeof(c->err), "%s", PQerrorMessage(c->h));
	PQclear(res);
	return r;
}

static void pg_rollback(struct att_dbc *base)
{
	struct pg_conn *c = CONN(base);

	if (c->in_txn || PQtransactionStatus(c->h) != PQTRANS_IDLE)
		(void)simple(c, "ROLLBACK");
	c->in_txn = false;
}

static void pg_release(struct att_db *base, struct att_dbc *cb)
{
	struct pg_db *db = DB(base);
	struct pg_conn *c = CONN(cb);

	if (c->in_txn || PQtransactionStatus(c->h) != PQTRANS_IDLE)
		pg_rollback(cb);
	att_pool_give_conn(&db->pool, c);
}

static int pg_begin(struct att_dbc *base)
{
	struct pg_conn *c = CONN(base);

	if (simple(c, "BEGIN") < 0)
		return ATT_E_DB;
	c->in_txn = true;
	if (simple(c, PG_WRITE_LOCK) < 0) {
		pg_rollback(base);
		return ATT_E_DB;
	}
	return 0;
}

static int pg_begin_read(struct att_dbc *base)
{
	struct pg_conn *c = CONN(base);

	if (simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		return ATT_E_DB;
	c->in_txn = true;
	return 0;
}

static int pg_commit(struct att_dbc *base)
{
	struct pg_conn *c = CONN(base);
	int r = simple(c, "COMMIT");

	c->in_txn = false;
	return r;
}

static const char *pg_errmsg(struct att_dbc *base)
{
	struct pg_conn *c = CONN(base);

	return c->err[0] ? c->err : PQerrorMessage(c->h);
}

/* '?' -> $1, $2 ... outside string literals. */
static char *rewrite(const char *sql)
{
	size_t n = strlen(sql);
	char *out = malloc(n * 4 + 1), *o = out;
	bool quoted = false;
	int k = 0;

	if (!out)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (*p == '?' && !quoted) {
			o += snprintf(o, 8, "$%d", ++k);
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static int map_result(struct pg_conn *c, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	snprintf(c->err, sizeof(c->err), "%s", PQresultErrorMessage(res));
	if (state && strncmp(state, "23", 2) == 0)
		return ATT_E_CONFLICT;
	if (state && strcmp(state, "53100") == 0)
		att_db_note_fault(ATT_DB_FAULT_FULL);	/* disk_full */
	else if (state && strcmp(state, "25006") == 0)
		att_db_note_fault(ATT_DB_FAULT_READONLY);	/* read_only_sql_transaction (a standby) */
	else if (!state || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 || PQstatus(c->h) != CONNECTION_OK)
		att_db_note_fault(ATT_DB_FAULT_UNREACHABLE);	/* connection lost, shutting down */
	return ATT_E_DB;
}

static const char *prepared_name(struct pg_conn *c, const char *sql, int *ret_err)
{
	struct pg_prepared *p;
	PGresult *res;
	char *pgsql;

	for (int i = 0; i < c->ncache; i++)
		if (c->cache[i].sql == sql)
			return c->cache[i].name;
	if (c->ncache >= PG_STMT_CACHE)
		return NULL; /* unnamed statement */
	p = &c->cache[c->ncache];
	snprintf(p->name, sizeof(p->name), "a%d", ++c->nprepared_total);
	pgsql = rewrite(sql);
	if (!pgsql) {
		*ret_err = ATT_E_NOMEM;
		return NULL;
	}
	res = PQprepare(c->h, p->name, pgsql, 0, NULL);
	free(pgsql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*ret_err = map_result(c, res);
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	p->sql = sql;
	c->ncache++;
	return p->name;
}

static int exec_params(struct pg_conn *c, struct att_stmt **ret, const char *sql, int n, const char *const *vals);

static int pg_query(struct att_dbc *base, struct att_stmt **ret, const char *sql, const char *types,
		    va_list ap)
{
	struct pg_conn *c = CONN(base);
	const char *vals[PG_MAX_PARAMS];
	char nums[PG_MAX_PARAMS][24];
	int n = 0;

	for (const char *t = types; *t; t++, n++) {
		if (n >= PG_MAX_PARAMS)
			return ATT_E_INTERNAL;
		switch (*t) {
		case 's':
			vals[n] = va_arg(ap, const char *);
			break;
		case 'i':
			snprintf(nums[n], sizeof(nums[n]), "%lld", (long long)va_arg(ap, int64_t));
			vals[n] = nums[n];
			break;
		case 'b':
			vals[n] = va_arg(ap, int) ? "1" : "0";
			break;
		default:
			return ATT_E_INTERNAL;
		}
	}
	return exec_params(c, ret, sql, n, vals);
}

static int exec_params_once(struct pg_conn *c, struct att_stmt **ret, const char *sql, int n,
			    const char *const *vals);

static int exec_params(struct pg_conn *c, struct att_stmt **ret, const char *sql, int n, const char *const *vals)
{
	int r = exec_params_once(c, ret, sql, n, vals);

	if (r == ATT_E_DB && reconnect(c))
		r = exec_params_once(c, ret, sql, n, vals);
	return r;
}

static int exec_params_once(struct pg_conn *c, struct att_stmt **ret, const char *sql, int n,
			    const char *const *vals)
{
	int err = 0;
	const char *name;
	struct pg_stmt *s;
	PGresult *res;
	ExecStatusType st;

	c->err[0] = '\0';
	name = prepared_name(c, sql, &err);
	if (err)
		return err;
	if (name) {
		res = PQexecPrepared(c->h, name, n, vals, NULL, NULL, 0);
	} else {
		char *pgsql = rewrite(sql);

		if (!pgsql)
			return ATT_E_NOMEM;
		res = PQexecParams(c->h, pgsql, n, NULL, vals, NULL, NULL, 0);
		free(pgsql);
	}
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		int r = map_result(c, res);

		PQclear(res);
		return r;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		PQclear(res);
		return ATT_E_NOMEM;
	}
	s->base.ops = &pg_ops;
	s->res = res;
	s->row = -1;
	s->nrows = st == PGRES_TUPLES_OK ? PQntuples(res) : 0;
	c->changes = st == PGRES_COMMAND_OK ? (int)strtol(PQcmdTuples(res)[0] ? PQcmdTuples(res) : "0", NULL, 10)
					    : s->nrows;
	*ret = &s->base;
	return 0;
}

static int pg_query_texts(struct att_dbc *base, struct att_stmt **ret, const char *sql, int n,
			  const char *const *vals)
{
	return exec_params(CONN(base), ret, sql, n, vals);
}

static int pg_changes(struct att_dbc *base)
{
	return CONN(base)->changes;
}

static int pg_next(struct att_stmt *base)
{
	struct pg_stmt *s = STMT(base);

	if (s->row + 1 >= s->nrows)
		return 0;
	s->row++;
	return 1;
}

static const char *pg_text(struct att_stmt *base, int col)
{
	struct pg_stmt *s = STMT(base);

	if (s->row < 0 || s->row >= s->nrows || col >= PQnfields(s->res) || PQgetisnull(s->res, s->row, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static bool pg_is_null(struct att_stmt *base, int col)
{
	return pg_text(base, col) == NULL;
}

static void pg_done(struct att_stmt *base)
{
	struct pg_stmt *s = STMT(base);

	PQclear(s->res);
	free(s);
}

static int pg_exec_script(struct att_dbc *base, const char *sql, char *reterr, size_t errlen)
{
	struct pg_conn *c = CONN(base);
	int r = simple(c, sql);

	if (r < 0)
		snprintf(reterr, errlen, "%s", c->err);
	return r;
}

static const struct att_db_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.acquire = pg_acquire,
	.release = pg_release,
	.begin = pg_begin,
	.begin_read = pg_begin_read,
	.query_texts = pg_query_texts,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.query = pg_query,
	.changes = pg_changes,
	.next = pg_next,
	.text = pg_text,
	.is_null = pg_is_null,
	.done = pg_done,
	.errmsg = pg_errmsg,
	.exec_script = pg_exec_script,
	.postgresql = true,
};

int att_db_pg_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr, size_t errlen)
{
	struct pg_db *db = calloc(1, sizeof(*db));

	if (!db)
		return ATT_E_NOMEM;
	db->base.ops = &pg_ops;
	db->url = att_strdup(url);
	if (att_pool_init(&db->pool, pool_size) < 0 || !db->url) {
		pg_close(&db->base);
		return ATT_E_NOMEM;
	}
	{
		PQconninfoOption *opts;
		char *perr = NULL;

		opts = PQconninfoParse(url, &perr);
		if (!opts) {
			snprintf(reterr, errlen, "ITL_DB_URL: invalid PostgreSQL URL: %s", perr ? perr : "parse error");
			PQfreemem(perr);
			pg_close(&db->base);
			return ATT_E_INVAL;
		}
		PQconninfoFree(opts);
	}
	{
		struct att_dbc *c = pg_acquire(&db->base);

		if (!c) {
			/* say why, without echoing the password */
			PGconn *h = PQconnectdb(url);

			snprintf(reterr, errlen, "cannot connect to PostgreSQL: %s",
				 h ? PQerrorMessage(h) : "out of memory");
			for (char *p = reterr; *p; p++)
				if (*p == '\n')
					*p = ' ';
			PQfinish(h);
			pg_close(&db->base);
			return ATT_E_DB;
		}
		pg_release(&db->base, c);
	}
	*ret = &db->base;
	return 0;
}
