/* notify.h - the systemd notification protocol (sd_notify) without
 * libsystemd: readiness, status, stopping and the watchdog. */
#ifndef ATTESTD_NOTIFY_H
#define ATTESTD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct att_notify_watchdog;

/* Send one datagram of KEY=VALUE lines to $NOTIFY_SOCKET (a path or,
 * with a leading '@', an abstract socket).  0 when sent or when there is
 * no $NOTIFY_SOCKET (not started by systemd); a negative att_err when the
 * variable is set but the message cannot be delivered. */
int att_notify(const char *msg);

/* The watchdog interval in microseconds from $WATCHDOG_USEC (and
 * $WATCHDOG_PID, which must name this process when set); 0 when systemd
 * asks for no watchdog or the values are malformed. */
uint64_t att_notify_watchdog_usec(void);

/* Start a thread that sends WATCHDOG=1 every usec/2 while the HTTP
 * server at http_addr (HOST:PORT as att_server_address gives it) answers
 * GET /healthz with 200; a hung server stops the pings and systemd
 * restarts the service.  *ret is NULL when no watchdog is asked for. */
int att_notify_watchdog_start(const char *http_addr, uint64_t usec, struct att_notify_watchdog **ret);
void att_notify_watchdog_stop(struct att_notify_watchdog *w);

#endif
