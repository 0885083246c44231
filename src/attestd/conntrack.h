/* conntrack.h - the total header deadline.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that
 * sends one header byte every few seconds keeps a connection (and a slot
 * of ITL_CONNECTION_LIMIT) for ever.  conntrack remembers, for every
 * open connection, since when it has been waiting for a request's
 * headers (its start, or the end of the previous request on a kept-alive
 * connection); a reaper thread shuts down the socket of any connection
 * that waited longer than ITL_HEADER_TIMEOUT_SECONDS, and libmicrohttpd
 * then closes it. */
#ifndef ATTESTD_CONNTRACK_H
#define ATTESTD_CONNTRACK_H

#include <stdint.h>

struct MHD_Connection;
struct att_conntrack;

int att_conntrack_new(int64_t header_timeout_seconds, struct att_conntrack **ret);
void att_conntrack_free(struct att_conntrack *ct);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the conntrack). */
void att_conntrack_notify(void *cls, struct MHD_Connection *conn, void **socket_context, int toe);
/* The request's headers are complete / the request is finished. */
void att_conntrack_headers_done(struct att_conntrack *ct, struct MHD_Connection *conn);
void att_conntrack_request_done(struct att_conntrack *ct, struct MHD_Connection *conn);
/* Connections closed by the deadline so far. */
uint64_t att_conntrack_reaped(struct att_conntrack *ct);

#endif
