/* db-pool.h - the fixed-size connection pool both backends use: slots
 * are taken and given back under a mutex, a caller waits while all are
 * busy, connections themselves are opened lazily by the backend. */
#ifndef ATT_DB_POOL_H
#define ATT_DB_POOL_H

#include <pthread.h>
#include <stdbool.h>

struct att_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void **conns;	/* backend connection per slot, NULL until opened */
	bool *busy;
	unsigned size;
};

int att_pool_init(struct att_pool *p, unsigned size);
/* Free every opened connection with free_conn, then the pool. */
void att_pool_destroy(struct att_pool *p, void (*free_conn)(void *conn));
/* Block until a slot is free; returns its index. */
unsigned att_pool_take(struct att_pool *p);
void att_pool_give(struct att_pool *p, unsigned slot);
/* Give back the slot holding conn. */
void att_pool_give_conn(struct att_pool *p, const void *conn);
/* Give back the slot holding conn, empty: the caller frees conn and the
 * next taker opens a new connection. */
void att_pool_drop_conn(struct att_pool *p, const void *conn);

#endif
