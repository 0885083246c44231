/* db-internal.h - the backend interface behind db.h.  Every backend's
 * db, connection and statement structs start with the matching base
 * struct, so db.c can dispatch through ops. */
#ifndef ATT_DB_INTERNAL_H
#define ATT_DB_INTERNAL_H

#include <stdarg.h>

#include "db/db.h"

struct att_db_ops {
	const char *name;
	void (*close)(struct att_db *db);
	struct att_dbc *(*acquire)(struct att_db *db);
	void (*release)(struct att_db *db, struct att_dbc *c);
	int (*begin)(struct att_dbc *c);
	int (*begin_read)(struct att_dbc *c);
	int (*query_texts)(struct att_dbc *c, struct att_stmt **ret, const char *sql, int n,
			   const char *const *vals);
	int (*commit)(struct att_dbc *c);
	void (*rollback)(struct att_dbc *c);
	int (*query)(struct att_dbc *c, struct att_stmt **ret, const char *sql, const char *types, va_list ap);
	int (*changes)(struct att_dbc *c);
	int (*next)(struct att_stmt *s);
	const char *(*text)(struct att_stmt *s, int col);
	bool (*is_null)(struct att_stmt *s, int col);
	void (*done)(struct att_stmt *s);
	const char *(*errmsg)(struct att_dbc *c);
	/* run a multi-statement DDL script inside the open transaction */
	int (*exec_script)(struct att_dbc *c, const char *sql, char *reterr, size_t errlen);
	/* which migration text applies */
	bool postgresql;
};

struct att_db {
	const struct att_db_ops *ops;
};

struct att_dbc {
	const struct att_db_ops *ops;
};

struct att_stmt {
	const struct att_db_ops *ops;
};

int att_db_sqlite_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr, size_t errlen);
int att_db_pg_open(const char *url, unsigned pool_size, struct att_db **ret, char *reterr, size_t errlen);

#endif
