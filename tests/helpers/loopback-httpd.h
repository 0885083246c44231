/* loopback-httpd.h - what the tests' small HTTP servers share
 * (fake-factory, hostile-proxy): libmicrohttpd on 127.0.0.1:0, the port
 * written to a ready file, request bodies collected, SIGTERM/SIGINT to
 * stop. */
#ifndef TEST_LOOPBACK_HTTPD_H
#define TEST_LOOPBACK_HTTPD_H

#include <stddef.h>

#include <microhttpd.h>

/* Called once per request with the whole body (NUL-terminated). */
typedef enum MHD_Result (*test_httpd_handler)(struct MHD_Connection *c, const char *url, const char *method,
					       const char *body, size_t len);

/* Serve until SIGTERM or SIGINT; 0 on a clean stop, 1 when it cannot start. */
int test_httpd_run(const char *ready_file, test_httpd_handler h);

#endif
