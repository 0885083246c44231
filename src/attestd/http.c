/* http.c - the HTTP server on libmicrohttpd: listening socket, thread
 * pool, request assembly with body caps, content-type checks, the
 * high-assurance gate, authentication by route, per-route metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "base/err.h"
#include "base/util.h"
#include "config/config.h"
#include "conntrack.h"
#include "http.h"
#include "obs/log.h"
#include "obs/metrics.h"


struct net {
	int family;
	uint8_t a[16];
	unsigned prefix;
};

struct att_server {
	struct MHD_Daemon *d;
	const struct att_svc *svc;
	int fd;
	char addr[128];
	struct att_conntrack *ct;
	struct net *proxies;	/* ITL_TRUSTED_PROXIES */
	size_t nproxies;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void req_free(struct att_req *rq)
{
	if (!rq)
		return;
	for (int i = 0; i < rq->nparams; i++)
		free(rq->params[i]);
	att_buf_release(&rq->body);
	json_decref(rq->oidc_roles);
	free(rq);
}

static const char *resp_header(const struct att_resp *rs, const char *name)
{
	for (int i = 0; i < rs->nhdr; i++)
		if (strcasecmp(rs->hdr[i][0], name) == 0)
			return rs->hdr[i][1];
	return NULL;
}

/* Does an If-None-Match list ("a", W/"b", or *) name tag? */
static bool etag_listed(const char *inm, const char *tag)
{
	size_t tl = strlen(tag);

	while (*inm) {
		size_t n;

		while (*inm == ' ' || *inm == ',')
			inm++;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;
		n = strcspn(inm, ", ");
		if ((n == 1 && *inm == '*') || (n == tl && strncmp(inm, tag, n) == 0))
			return true;
		inm += n;
	}
	return false;
}

/* Conditional GET for polling clients (the dashboard): operator reads
 * carry a strong ETag over the body (handlers may set their own) and
 * "Cache-Control: no-store"; a matching If-None-Match turns the answer
 * into a bodiless 304. */
static void conditional_get(struct att_req *rq, struct att_resp *rs)
{
	bool operator_route;
	const char *tag, *inm;
	char mine[40];

	if (!rq || !rq->route)
		return;
	operator_route = rq->route->auth == AUTH_OPERATOR || rq->route->auth == AUTH_IDENTITY;
	if (operator_route && !resp_header(rs, "Cache-Control"))
		att_resp_header(rs, "Cache-Control", "no-store");
	if (rs->status != 200 || (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0))
		return;
	tag = resp_header(rs, "ETag");
	if (!tag) {
		uint8_t md[32];

		if (!operator_route)
			return;
		att_sha256(rs->body ? rs->body : "", rs->len, md);
		mine[0] = '"';
		att_hex_encode(md, 16, mine + 1);
		snprintf(mine + 33, sizeof(mine) - 33, "\"");
		att_resp_header(rs, "ETag", mine);
		tag = mine;
	}
	inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && etag_listed(inm, tag)) {
		rs->status = 304;
		free(rs->body);
		rs->body = NULL;
		rs->len = 0;
	}
}

static enum MHD_Result send_resp(const struct att_server *srv, struct att_req *rq,
				 struct MHD_Connection *conn, struct att_resp *rs, int route)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	conditional_get(rq, rs);
	if (!rs->body) {
		rs->body = att_strdup("");
		rs->len = 0;
	}
	r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		att_resp_release(rs);
		return MHD_NO;
	}
	rs->body = NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->ctype ? rs->ctype : "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (srv->svc->cfg->high_assurance)
		MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
	for (int i = 0; i < rs->nhdr; i++)
		MHD_add_response_header(r, rs->hdr[i][0], rs->hdr[i][1]);
	ok = MHD_queue_response(conn, (unsigned)rs->status, r);
	MHD_destroy_response(r);
	att_resp_release(rs);
	if (route >= 0)
		att_metrics_observe(att_router_metric(route), rs->status, rq ? mono_now() - rq->start : 0);
	return ok;
}

static void client_ip(struct MHD_Connection *conn, char out[64])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	snprintf(out, 64, "unknown");
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, out, 64);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, out, 64);
}

/* ---- MHD callbacks ------------------------------------------------------------- */

static bool is_json_ctype(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static size_t body_cap(const struct att_svc *svc, const struct att_route *route)
{
	if (route->max_body)
		return route->max_body;
	return route->auth == AUTH_OPERATOR ? (size_t)svc->cfg->max_body_bytes
					    : (size_t)svc->cfg->max_unauth_body_bytes;
}

static enum MHD_Result early_error(const struct att_server *srv, struct MHD_Connection *conn,
				   int route, int status, const char *detail, const char *allow)
{
	struct att_resp rs = { 0 };
	size_t n;
	const struct att_route *routes = att_router_routes(&n);

	rs.coded = route >= 0 && (size_t)route < n && (routes[route].flags & ATT_ROUTE_ERROR_CODE);
	att_resp_error(&rs, status, "%s", detail);
	if (allow)
		att_resp_header(&rs, "Allow", allow);
	if (status == 413)
		att_resp_header(&rs, "Connection", "close");
	return send_resp(srv, NULL, conn, &rs, route);
}

/* ---- framing and forwarded headers ---------------------------------------------- */

static int parse_net(const char *in, struct net *n)
{
	char addr[64];
	const char *slash = strchr(in, '/');
	size_t alen = slash ? (size_t)(slash - in) : strlen(in);
	uint64_t prefix;

	if (alen == 0 || alen >= sizeof(addr))
		return ATT_E_INVAL;
	memcpy(addr, in, alen);
	addr[alen] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, addr, n->a) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, n->a) == 1)
		n->family = AF_INET6;
	else
		return ATT_E_INVAL;
	n->prefix = n->family == AF_INET ? 32 : 128;
	if (slash) {
		if (att_parse_u64(slash + 1, strlen(slash + 1), 0, n->prefix, &prefix) < 0)
			return ATT_E_INVAL;
		n->prefix = (unsigned)prefix;
	}
	return 0;
}

static bool net_has(const struct net *n, int family, const uint8_t *a)
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;

	if (n->family != family || memcmp(n->a, a, full) != 0)
		return false;
	return rest == 0 || ((n->a[full] ^ a[full]) & (uint8_t)(0xFF00u >> rest)) == 0;
}

/* Is the peer of conn one of ITL_TRUSTED_PROXIES?  (IPv4-mapped IPv6
 * peers are compared as IPv4.) */
static bool from_trusted_proxy(const struct att_server *srv, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const uint8_t *a;
	int family;

	if (!ci || !ci->client_addr || srv->nproxies == 0)
		return false;
	if (ci->client_addr->sa_family == AF_INET) {
		family = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr;
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr;

		family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
		a = family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr;
	} else {
		return false;
	}
	for (size_t i = 0; i < srv->nproxies; i++)
		if (net_has(&srv->proxies[i], family, a))
			return true;
	return false;
}

struct hdr_count {
	const char *name;
	int n;
	bool differ;
	const char *first;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct hdr_count *h = cls;

	(void)kind;
	if (strcasecmp(key, h->name) != 0)
		return MHD_YES;
	if (h->n++ == 0)
		h->first = value;
	else if (strcmp(h->first ? h->first : "", value ? value : "") != 0)
		h->differ = true;
	return MHD_YES;
}

static struct hdr_count header_count(struct MHD_Connection *conn, const char *name)
{
	struct hdr_count h = { name, 0, false, NULL };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &h);
	return h;
}

/* Refusals that depend only on the framing headers: 0 or an HTTP status
 * with *detail set.  Every body must declare its length, so the cap is
 * checked before a byte of it is read (a chunk size of FFFF... cannot
 * make the server wait); conflicting lengths are a smuggling shape. */
static int framing_check(struct MHD_Connection *conn, const char **detail)
{
	struct hdr_count cl = header_count(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	struct hdr_count te = header_count(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);

	if (cl.differ) {
		*detail = "Conflicting Content-Length headers";
		return 400;
	}
	if (te.n && cl.n) {
		*detail = "Both Content-Length and Transfer-Encoding";
		return 400;
	}
	if (te.n) {
		*detail = "Length Required — send the body with Content-Length (chunked request bodies are not accepted)";
		return 411;
	}
	return 0;
}

/* High-assurance mode: 0 when the request arrived over HTTPS as a
 * trusted proxy says; otherwise an HTTP status with *detail set. */
static int forwarded_https(const struct att_server *srv, struct MHD_Connection *conn, const char **detail)
{
	struct hdr_count xfp = header_count(conn, "X-Forwarded-Proto");

	if (xfp.n > 1 || (xfp.first && strchr(xfp.first, ','))) {
		*detail = "More than one X-Forwarded-Proto: refused as ambiguous";
		return 400;
	}
	if (!xfp.first || strcasecmp(xfp.first, "https") != 0) {
		*detail = "High-assurance mode is enabled. Requests must arrive over HTTPS (X-Forwarded-Proto: https from the TLS-terminating proxy).";
		return 403;
	}
	if (!from_trusted_proxy(srv, conn)) {
		*detail = "High-assurance mode is enabled. X-Forwarded-Proto is trusted only from the proxies in ITL_TRUSTED_PROXIES.";
		return 403;
	}
	return 0;
}

/* First callback of a request: route it, refuse early what can be
 * refused from the headers, and set up the request state. */
static enum MHD_Result begin_request(const struct att_server *srv, struct MHD_Connection *conn,
				     const char *url, const char *method, void **con_cls)
{
	const struct att_svc *svc = srv->svc;
	const struct att_route *route;
	struct att_req *rq;
	char allow[128];
	bool known;
	int index = -1;
	const char *cl, *detail = NULL;
	uint64_t n;
	int status;

	att_conntrack_headers_done(srv->ct, conn);
	status = framing_check(conn, &detail);
	if (status) {
		struct att_resp rs = { 0 };

		att_resp_error(&rs, status, "%s", detail);
		att_resp_header(&rs, "Connection", "close");
		return send_resp(srv, NULL, conn, &rs, -1);
	}
	route = att_router_find(method, url, &known, allow, &index);
	if (!route && known)
		return early_error(srv, conn, -1, 405, "Method Not Allowed", allow);
	if (!route)
		return early_error(srv, conn, -1, 404, "Not Found", NULL);
	if (svc->cfg->high_assurance && strcmp(route->path, "/healthz") != 0 &&
	    (status = forwarded_https(srv, conn, &detail)) != 0)
		return early_error(srv, conn, index, status, detail, NULL);
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && att_parse_u64(cl, strlen(cl), 0, UINT64_MAX, &n) == 0 && n > body_cap(svc, route))
		return early_error(srv, conn, index, 413, "Request body too large", NULL);
	rq = calloc(1, sizeof(*rq));
	if (!rq)
		return MHD_NO;
	rq->conn = conn;
	rq->svc = svc;
	rq->method = method;
	rq->path = url;
	rq->route = route;
	rq->route_index = index;
	rq->start = mono_now();
	att_buf_init(&rq->body, body_cap(svc, route));
	if (!att_router_capture(route, url, rq)) {
		req_free(rq);
		return MHD_NO;
	}
	*con_cls = rq;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct att_server *srv = cls;
	const struct att_svc *svc = srv->svc;
	struct att_req *rq = *con_cls;
	struct att_resp rs = { 0 };

	(void)version;
	if (!rq)
		return begin_request(srv, conn, url, method, con_cls);
	if (*upload_data_size) {
		if (!rq->too_large && att_buf_append(&rq->body, upload_data, *upload_data_size) < 0)
			rq->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole request is here */
	rs.coded = rq->route->flags & ATT_ROUTE_ERROR_CODE;
	client_ip(conn, rq->source_ip);
	snprintf(rq->actor_name, sizeof(rq->actor_name), "machine");
	rq->actor.name = rq->actor_name;
	rq->actor.source_ip = rq->source_ip;
	if (rq->too_large) {
		att_resp_error(&rs, 413, "Request body too large");
		att_resp_header(&rs, "Connection", "close");
		return send_resp(srv, rq, conn, &rs, rq->route_index);
	}
	if (rq->body.len > 0 && !(rq->route->flags & ATT_ROUTE_ANY_BODY) &&
	    !is_json_ctype(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		att_resp_error(&rs, 415, "Unsupported Media Type — send Content-Type: application/json");
		return send_resp(srv, rq, conn, &rs, rq->route_index);
	}
	if (att_auth_check(svc, rq, &rs, rq->route->auth) != 0)
		return send_resp(srv, rq, conn, &rs, rq->route_index);
	rq->route->fn(svc, rq, &rs);
	if (!rs.status)
		att_resp_error(&rs, 500, "Internal Server Error");
	return send_resp(srv, rq, conn, &rs, rq->route_index);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct att_server *srv = cls;

	(void)toe;
	att_conntrack_request_done(srv->ct, conn);	/* a kept-alive connection waits for headers again */
	req_free(*con_cls);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	att_conntrack_notify(cls, conn, socket_context, (int)toe);
}

/* ---- listening ---------------------------------------------------------------- */

static int listen_socket(const char *addr, int *ret_fd, char *reterr, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { 0 }, *ai = NULL;
	int fd = -1, one = 1, rc;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host)) {
		snprintf(reterr, errlen, "ITL_LISTEN: expected HOST:PORT, got '%s'", addr);
		return ATT_E_INVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	{
		uint64_t port;

		if (att_parse_u64(colon + 1, strlen(colon + 1), 0, 65535, &port) < 0) {
			snprintf(reterr, errlen, "ITL_LISTEN: invalid port in '%s'", addr);
			return ATT_E_INVAL;
		}
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(reterr, errlen, "ITL_LISTEN: cannot resolve '%s': %s", host, gai_strerror(rc));
		return ATT_E_INVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		snprintf(reterr, errlen, "cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return ATT_E_IO;
	}
	freeaddrinfo(ai);
	*ret_fd = fd;
	return 0;
}

static int parse_proxies(const struct att_config *cfg, struct att_server *srv, char *reterr, size_t errlen)
{
	size_t n = cfg->trusted_proxies.n;

	if (n == 0)
		return 0;
	srv->proxies = calloc(n, sizeof(*srv->proxies));
	if (!srv->proxies)
		return ATT_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (parse_net(cfg->trusted_proxies.items[i], &srv->proxies[i]) < 0) {
			snprintf(reterr, errlen, "ITL_TRUSTED_PROXIES: '%s' is not an IP address or CIDR",
				 cfg->trusted_proxies.items[i]);
			return ATT_E_INVAL;
		}
	srv->nproxies = n;
	return 0;
}

int att_server_start(const struct att_svc *svc, const char *listen_addr, unsigned threads,
		     struct att_server **ret, char *reterr, size_t errlen)
{
	struct att_server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "";
	int r, port = 0;

	if (!srv)
		return ATT_E_NOMEM;
	srv->svc = svc;
	r = parse_proxies(svc->cfg, srv, reterr, errlen);
	if (r == 0)
		r = att_conntrack_new(svc->cfg->header_timeout_seconds, &srv->ct);
	if (r == 0)
		r = listen_socket(listen_addr, &srv->fd, reterr, errlen);
	if (r < 0) {
		att_conntrack_free(srv->ct);
		free(srv->proxies);
		free(srv);
		return r;
	}
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
			snprintf(srv->addr, sizeof(srv->addr), "%s:%d", host, port);
		} else {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
			snprintf(srv->addr, sizeof(srv->addr), "[%s]:%d", host, port);
		}
	}
	srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO,
				  0, NULL, NULL, on_request, srv,
				  MHD_OPTION_LISTEN_SOCKET, srv->fd,
				  /* MHD's single-thread epoll mode stalls under load: pool >= 2 */
				  MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 2,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)svc->cfg->connection_limit,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)svc->cfg->connection_limit_per_client,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv->ct,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024), /* MHD zeroes it per request */
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				  MHD_OPTION_END);
	if (!srv->d) {
		snprintf(reterr, errlen, "cannot start the HTTP server on %s", listen_addr);
		close(srv->fd);
		att_conntrack_free(srv->ct);
		free(srv->proxies);
		free(srv);
		return ATT_E_IO;
	}
	*ret = srv;
	return 0;
}

const char *att_server_address(const struct att_server *s)
{
	return s->addr;
}

void att_server_stop(struct att_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	close(s->fd);
	att_conntrack_free(s->ct);
	free(s->proxies);
	free(s);
}
