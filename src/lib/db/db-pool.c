#include <stdlib.h>

#include "base/err.h"
#include "db/db-pool.h"

int att_pool_init(struct att_pool *p, unsigned size)
{
	p->size = size ? size : 1;
	p->conns = calloc(p->size, sizeof(*p->conns));
	p->busy = calloc(p->size, sizeof(*p->busy));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p->conns && p->busy ? 0 : ATT_E_NOMEM;
}

void att_pool_destroy(struct att_pool *p, void (*free_conn)(void *conn))
{
	if (p->conns)
		for (unsigned i = 0; i < p->size; i++)
			if (p->conns[i])
				free_conn(p->conns[i]);
	free(p->conns);
	free(p->busy);
	p->conns = NULL;
	p->busy = NULL;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
}

unsigned att_pool_take(struct att_pool *p)
{
	unsigned slot;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (slot = 0; slot < p->size; slot++)
			if (!p->busy[slot])
				break;
		if (slot < p->size)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	p->busy[slot] = true;
	pthread_mutex_unlock(&p->mu);
	return slot;
}

void att_pool_give(struct att_pool *p, unsigned slot)
{
	pthread_mutex_lock(&p->mu);
	p->busy[slot] = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void att_pool_drop_conn(struct att_pool *p, const void *conn)
{
	for (unsigned i = 0; i < p->size; i++)
		if (p->conns[i] == conn) {
			p->conns[i] = NULL;
			att_pool_give(p, i);
			return;
		}
}

void att_pool_give_conn(struct att_pool *p, const void *conn)
{
	for (unsigned i = 0; i < p->size; i++)
		if (p->conns[i] == conn) {
			att_pool_give(p, i);
			return;
		}
}
