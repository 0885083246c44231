/* http.c - the node agent's HTTP/1.1 exchanges over TCP, with OpenSSL
 * for https:// (see http.h).  OpenSSL types stay in this file. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/http.h"
#include "agent/url.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int timeout_ms;
};

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static int tcp_connect(const struct att_url *u, int timeout_ms, char *reterr, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	int fd = -1, e, last = 0;

	e = getaddrinfo(u->host, u->port, &hints, &res);
	if (e != 0) {
		snprintf(reterr, errlen, "cannot resolve %s: %s", u->host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		socklen_t sl = sizeof(e);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) > 0 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0))
			break;
		last = errno == EINPROGRESS ? (e ? e : ETIMEDOUT) : errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(reterr, errlen, "cannot connect to %s port %s: %s", u->host, u->port, strerror(last));
	return fd;
}

static void tls_error(const char *what, char *reterr, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char buf[200];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(reterr, errlen, "%s: %s", what, e ? buf : "connection closed");
	ERR_clear_error();
}

/* Drive a non-blocking SSL call until done or timeout; returns its
 * result (> 0 ok) or -1 with reterr set. */
static int tls_io(struct conn *c, int (*op)(SSL *, void *, int), void *p, int n, const char *what, char *reterr,
		  size_t errlen)
{
	for (;;) {
		int r = op(c->ssl, p, n), e = SSL_get_error(c->ssl, r);

		if (r > 0)
			return r;
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
				return 0;	/* peer closed without close_notify: EOF */
			tls_error(what, reterr, errlen);
			return -1;
		}
		if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, c->timeout_ms) <= 0) {
			snprintf(reterr, errlen, "%s: timed out", what);
			return -1;
		}
	}
}

static int ssl_read_op(SSL *s, void *p, int n) { return SSL_read(s, p, n); }
static int ssl_write_op(SSL *s, void *p, int n) { return SSL_write(s, p, n); }
static int ssl_connect_op(SSL *s, void *p, int n) { (void)p; (void)n; return SSL_connect(s); }

static int tls_start(struct conn *c, const struct att_url *u, const char *ca_file, char *reterr, size_t errlen)
{
	X509_VERIFY_PARAM *vp;

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		return FAIL(ATT_E_CRYPTO, "TLS: cannot create a context");
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file ? SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		tls_error(ca_file ? "TLS: cannot load --ca-file" : "TLS: cannot load the system trust store", reterr,
			  errlen);
		return ATT_E_CRYPTO;
	}
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return FAIL(ATT_E_CRYPTO, "TLS: cannot set up the connection");
	vp = SSL_get0_param(c->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) != 1) {
		/* not an IP literal: a DNS name, also sent as SNI */
		if (X509_VERIFY_PARAM_set1_host(vp, u->host, 0) != 1 || SSL_set_tlsext_host_name(c->ssl, u->host) != 1)
			return FAIL(ATT_E_CRYPTO, "TLS: cannot set the expected host name");
	}
	if (tls_io(c, ssl_connect_op, NULL, 0, "TLS handshake", reterr, errlen) <= 0) {
		long v = SSL_get_verify_result(c->ssl);

		if (v != X509_V_OK)
			snprintf(reterr, errlen, "TLS: server certificate not accepted: %s",
				 X509_verify_cert_error_string(v));
		return ATT_E_CRYPTO;
	}
	return 0;
}

static int conn_write(struct conn *c, const char *p, size_t n, char *reterr, size_t errlen)
{
	while (n > 0) {
		ssize_t w;

		if (c->ssl) {
			int k = tls_io(c, ssl_write_op, (void *)p, n > 65536 ? 65536 : (int)n, "TLS write", reterr, errlen);

			if (k <= 0)
				return k == 0 ? FAIL(ATT_E_IO, "connection closed while sending") : ATT_E_IO;
			w = k;
		} else {
			if (wait_fd(c->fd, POLLOUT, c->timeout_ms) <= 0)
				return FAIL(ATT_E_IO, "timed out sending the request");
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (w < 0)
				return FAIL(ATT_E_IO, "send: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read some bytes: > 0 count, 0 EOF, < 0 error */
static ssize_t conn_read(struct conn *c, char *p, size_t n, char *reterr, size_t errlen)
{
	if (c->ssl)
		return tls_io(c, ssl_read_op, p, (int)n, "TLS read", reterr, errlen);
	for (;;) {
		ssize_t r;

		if (wait_fd(c->fd, POLLIN, c->timeout_ms) <= 0) {
			snprintf(reterr, errlen, "timed out waiting for the response");
			return -1;
		}
		r = recv(c->fd, p, n, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			snprintf(reterr, errlen, "recv: %s", strerror(errno));
		return r;
	}
}

static char *build_request(const struct att_url *u, const struct att_http_client *c, const struct att_http_req *rq,
			   size_t *ret_len)
{
	struct att_buf b;
	bool dflt = strcmp(u->port, u->tls ? "443" : "80") == 0;

	att_buf_init(&b, 64 * 1024 + rq->body_len);
	(void)att_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: %s\r\nConnection: close\r\n",
			     rq->method, u->path, u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "", dflt ? "" : ":",
			     dflt ? "" : u->port, c->user_agent ? c->user_agent : "attest-agent");
	for (const char *const *h = rq->headers; h && *h; h++)
		(void)att_buf_printf(&b, "%s\r\n", *h);
	if (rq->body)
		(void)att_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n", rq->body_len);
	else if (strcmp(rq->method, "POST") == 0)
		(void)att_buf_puts(&b, "Content-Length: 0\r\n");
	if (att_buf_puts(&b, "\r\n") < 0 || (rq->body && att_buf_append(&b, rq->body, rq->body_len) < 0)) {
		att_buf_release(&b);
		return NULL;
	}
	return att_buf_steal(&b, ret_len);
}

int att_http_exchange(const struct att_http_client *c, const struct att_http_req *rq, struct att_http_resp *ret,
		      char *reterr, size_t errlen)
{
	struct conn cn = { .fd = -1, .timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 30000 };
	struct att_url u;
	struct att_buf in;
	char *req = NULL;
	size_t reqlen = 0;
	int rc;

	att_buf_init(&in, rq->max_body + ATT_HTTP_MAX_HEADER_BYTES + 64 * 1024);
	if (att_url_parse(rq->url, &u, reterr, errlen) < 0)
		return ATT_E_INVAL;
	req = build_request(&u, c, rq, &reqlen);
	if (!req)
		return FAIL(ATT_E_NOMEM, "cannot build the request");
	cn.fd = tcp_connect(&u, cn.timeout_ms, reterr, errlen);
	if (cn.fd < 0) {
		rc = ATT_E_IO;
		goto out;
	}
	if (u.tls && (rc = tls_start(&cn, &u, c->ca_file, reterr, errlen)) < 0)
		goto out;
	rc = conn_write(&cn, req, reqlen, reterr, errlen);
	if (rc < 0)
		goto out;
	for (;;) {
		char chunk[16384];
		ssize_t n = conn_read(&cn, chunk, sizeof(chunk), reterr, errlen);

		if (n < 0) {
			rc = ATT_E_IO;
			goto out;
		}
		if (n > 0 && att_buf_append(&in, chunk, (size_t)n) < 0) {
			rc = FAIL(ATT_E_LIMIT, "response larger than %zu bytes", in.max);
			goto out;
		}
		rc = att_http_parse((const uint8_t *)(in.p ? in.p : ""), in.len, n == 0, rq->max_body, ret, reterr,
				    errlen);
		if (rc <= 0)
			break;
	}
	if (rc == ATT_E_PARSE && in.len == 0)
		rc = FAIL(ATT_E_IO, "the service closed the connection without answering");
out:
	conn_close(&cn);
	att_buf_release(&in);
	att_wipe(req, reqlen);
	free(req);
	return rc;
}
