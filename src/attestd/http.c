#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
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
#include "http.h"
#include "oidc/oidc.h"
#include "obs/log.h"
#include "obs/metrics.h"

#define LOGH "attestd.http"

struct att_server {
	struct MHD_Daemon *d;
	const struct att_svc *svc;
	int fd;
	char addr[128];
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- responses --------------------------------------------------------- */

void att_resp_text(struct att_resp *rs, int status, const char *ctype, char *body, size_t len)
{
	free(rs->body);
	rs->status = status;
	rs->ctype = ctype;
	rs->body = body;
	rs->len = len;
}

void att_resp_json(struct att_resp *rs, int status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(body);
	if (!s) {
		att_resp_text(rs, 500, "application/json", att_strdup("{\"detail\":\"Internal Server Error\"}"), 34);
		return;
	}
	att_resp_text(rs, status, "application/json", s, strlen(s));
}

void att_resp_error(struct att_resp *rs, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	att_resp_json(rs, status, json_pack("{s:s}", "detail", msg));
}

void att_resp_header(struct att_resp *rs, const char *name, const char *value)
{
	if (rs->nextra < 4) {
		rs->extra_hdr[rs->nextra][0] = name;
		rs->extra_hdr[rs->nextra][1] = value;
		rs->nextra++;
	}
}

void att_resp_header_copy(struct att_resp *rs, const char *name, const char *value)
{
	if (rs->nowned < 2) {
		snprintf(rs->owned[rs->nowned], sizeof(rs->owned[0]), "%s", value);
		att_resp_header(rs, name, rs->owned[rs->nowned++]);
	}
}

void att_resp_from_err(struct att_resp *rs, int err, const char *detail)
{
	int status;

	switch (err) {
	case ATT_E_INVAL:
	case ATT_E_PARSE: status = 422; break;
	case ATT_E_AUTH: status = 401; break;
	case ATT_E_FORBIDDEN: status = 403; break;
	case ATT_E_NOTFOUND: status = 404; break;
	case ATT_E_CONFLICT: status = 409; break;
	case ATT_E_GONE: status = 410; break;
	case ATT_E_LIMIT: status = 429; break;
	case ATT_E_DB:
	case ATT_E_UNAVAILABLE: status = 503; break;
	default: status = 500; break;
	}
	if (status == 500)
		att_resp_error(rs, 500, "Internal Server Error");
	else
		att_resp_error(rs, status, "%s", detail && *detail ? detail : att_strerror(err));
}

/* ---- requests ------------------------------------------------------------ */

const char *att_req_header(struct att_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *att_req_query(struct att_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *att_req_json(struct att_req *rq, struct att_resp *rs, const struct att_jfield *fields,
		     size_t n)
{
	char err[512];
	json_t *o = NULL;

	if (att_json_parse_body(rq->body.p ? rq->body.p : "", rq->body.len, fields, n, &o, err,
				sizeof(err)) < 0) {
		att_resp_error(rs, 422, "%s", err);
		return NULL;
	}
	return o;
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

/* ---- routing --------------------------------------------------------------- */

/* Does path match template?  Captures {x} segments into rq (if given). */
static bool path_match(const char *tpl, const char *path, struct att_req *rq)
{
	const char *t = tpl, *p = path;
	int n = 0;
	char *caps[4] = { 0 };

	while (*t && *p) {
		if (*t == '{') {
			const char *te = strchr(t, '}');
			const char *pe = strchr(p, '/');
			size_t len = pe ? (size_t)(pe - p) : strlen(p);

			if (!te || len == 0 || len > 256 || n >= 4)
				goto no;
			if (rq) {
				caps[n] = att_strndup(p, len);
				if (!caps[n])
					goto no;
			}
			n++;
			t = te + 1;
			p += len;
			continue;
		}
		if (*t != *p)
			goto no;
		t++;
		p++;
	}
	if (*t || *p)
		goto no;
	if (rq) {
		for (int i = 0; i < n; i++)
			rq->params[i] = caps[i];
		rq->nparams = n;
	}
	return true;
no:
	for (int i = 0; i < 4; i++)
		free(caps[i]);
	return false;
}

static enum MHD_Result send_resp(const struct att_server *srv, struct att_req *rq,
				 struct MHD_Connection *conn, struct att_resp *rs, int route)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (!rs->body) {
		rs->body = att_strdup("");
		rs->len = 0;
	}
	r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(rs->body);
		rs->body = NULL;
		return MHD_NO;
	}
	rs->body = NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->ctype ? rs->ctype : "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (srv->svc->cfg->high_assurance)
		MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
	for (int i = 0; i < rs->nextra; i++)
		MHD_add_response_header(r, rs->extra_hdr[i][0], rs->extra_hdr[i][1]);
	ok = MHD_queue_response(conn, (unsigned)rs->status, r);
	MHD_destroy_response(r);
	if (route >= 0)
		att_metrics_observe(att_routes[route].metric, rs->status,
				    rq ? mono_now() - rq->start : 0);
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

/* ---- authentication ----------------------------------------------------------- */

static bool secret_eq(const char *configured, const char *given)
{
	return configured && *configured && given &&
	       att_ct_equal(configured, strlen(configured), given, strlen(given));
}

static const char *bearer(struct att_req *rq)
{
	const char *h = att_req_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

static bool reserved_identity(const char *name)
{
	return strcasecmp(name, "SYSTEM") == 0 || strcasecmp(name, "BREAK_GLASS") == 0 ||
	       strcasecmp(name, "REGISTRATION_TOKEN") == 0 || strcasecmp(name, "anonymous") == 0;
}

static int auth_oidc(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, const char *tok,
		     bool identity_only)
{
	struct att_oidc_identity id;
	char reason[256] = "";
	int r = att_oidc_authenticate(svc->oidc, tok, &id, reason, sizeof(reason));

	if (r == ATT_E_UNAVAILABLE) {
		att_log_warning(LOGH, "OIDC token for %s %s not checked: %s", rq->method, rq->path, reason);
		att_resp_error(rs, 503, "OIDC provider unavailable — bearer tokens cannot be verified now (break-glass still works)");
		att_resp_header(rs, "Retry-After", "5");
		return 503;
	}
	if (r == 0)
		rq->oidc_roles = id.roles;	/* freed with the request, whatever the verdict */
	if (r == 0 && reserved_identity(id.name)) {
		snprintf(reason, sizeof(reason), "identity %s is reserved", id.name);
		r = ATT_E_AUTH;
	}
	if (r) {
		att_log_info(LOGH, "OIDC token rejected for %s %s from %s: %s", rq->method, rq->path, rq->source_ip,
			     reason);
		att_resp_error(rs, 401, "Invalid bearer token: %s", reason);
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	snprintf(rq->actor_name, sizeof(rq->actor_name), "%s", id.name);
	rq->oidc_exp = id.exp;
	rq->is_operator = id.operator;
	snprintf(rq->auth_method, sizeof(rq->auth_method), "oidc");
	if (!id.operator && !identity_only) {
		att_log_info(LOGH, "OIDC identity %s lacks role %s for %s %s", id.name, svc->cfg->oidc_operator_role,
			     rq->method, rq->path);
		att_resp_error(rs, 403, "Identity %s does not hold the operator role %s", id.name,
			       svc->cfg->oidc_operator_role);
		att_resp_header(rs, "WWW-Authenticate",
				"Bearer realm=\"attestation\", error=\"insufficient_scope\"");
		return 403;
	}
	rq->actor.authenticated = true;
	return 0;
}

/* 0 when rq->actor is an operator; otherwise an HTTP status with rs set. */
static int auth_operator(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs,
			 bool optional_registration, bool identity_only)
{
	const struct att_config *cfg = svc->cfg;
	const char *bg = att_req_header(rq, "X-Break-Glass");
	const char *tok = bearer(rq);
	const char *regtok = att_req_header(rq, "X-Registration-Token");
	const char *authz = att_req_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	bool oidc = cfg->oidc_enabled && cfg->oidc_issuer[0];
	bool any = cfg->admin_token[0] || cfg->break_glass_token[0] || oidc;

	if (bg) {
		if (secret_eq(cfg->break_glass_token, bg)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "BREAK_GLASS");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "break-glass");
			rq->is_operator = true;
			rq->actor.authenticated = true;
			att_log_warning(LOGH, "Break-glass credential used for %s %s from %s", rq->method,
					rq->path, rq->source_ip);
			return 0;
		}
		att_resp_error(rs, 401, "Invalid break-glass token");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	if (tok) {
		if (secret_eq(cfg->admin_token, tok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "SYSTEM");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "admin-token");
			rq->is_operator = true;
			rq->actor.authenticated = true;
			return 0;
		}
		if (optional_registration && secret_eq(cfg->registration_token, tok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "REGISTRATION_TOKEN");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "registration-token");
			rq->actor.authenticated = true;
			return 0;
		}
		if (oidc && svc->oidc)
			return auth_oidc(svc, rq, rs, tok, identity_only);
		if (!any && !optional_registration) {
			att_resp_error(rs, 503, "Operator authentication is not configured — set ITL_OIDC_ISSUER or ITL_ADMIN_TOKEN");
			return 503;
		}
		att_resp_error(rs, 401, "Invalid or expired bearer token");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\", error=\"invalid_token\"");
		return 401;
	}
	if (optional_registration && regtok) {
		if (secret_eq(cfg->registration_token, regtok)) {
			snprintf(rq->actor_name, sizeof(rq->actor_name), "REGISTRATION_TOKEN");
			snprintf(rq->auth_method, sizeof(rq->auth_method), "registration-token");
			rq->actor.authenticated = true;
			return 0;
		}
		att_resp_error(rs, 401, "Invalid registration token");
		return 401;
	}
	if (authz && optional_registration) {
		att_resp_error(rs, 401, "Unsupported Authorization scheme — use Bearer");
		att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\"");
		return 401;
	}
	if (optional_registration)
		return 0; /* anonymous registration */
	if (!any) {
		att_resp_error(rs, 503, "Operator authentication is not configured — set ITL_OIDC_ISSUER or ITL_ADMIN_TOKEN");
		return 503;
	}
	att_resp_error(rs, 401,
		       "Operator authentication required. Provide a Keycloak JWT Bearer token, or the ITL_ADMIN_TOKEN Bearer token / X-Break-Glass header (break-glass).");
	att_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"attestation\"");
	return 401;
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

static size_t body_cap(const struct att_svc *svc, int route)
{
	return att_routes[route].auth == AUTH_OPERATOR ? (size_t)svc->cfg->max_body_bytes
						       : (size_t)svc->cfg->max_unauth_body_bytes;
}

static enum MHD_Result early_error(const struct att_server *srv, struct MHD_Connection *conn,
				   int route, int status, const char *detail, const char *allow)
{
	struct att_resp rs = { 0 };

	att_resp_error(&rs, status, "%s", detail);
	if (allow)
		att_resp_header(&rs, "Allow", allow);
	if (status == 413)
		att_resp_header(&rs, "Connection", "close");
	return send_resp(srv, NULL, conn, &rs, route);
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
	if (!rq) {
		int route = -1;
		char allow[128] = "";
		bool path_known = false;

		for (size_t i = 0; i < att_nroutes; i++) {
			if (!path_match(att_routes[i].path, url, NULL))
				continue;
			path_known = true;
			if (strcmp(att_routes[i].method, method) == 0 ||
			    (strcmp(method, "HEAD") == 0 && strcmp(att_routes[i].method, "GET") == 0)) {
				route = (int)i;
				break;
			}
			if (!strstr(allow, att_routes[i].method))
				snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
					 allow[0] ? ", " : "", att_routes[i].method);
		}
		if (route < 0 && path_known)
			return early_error(srv, conn, -1, 405, "Method Not Allowed", allow);
		if (route < 0)
			return early_error(srv, conn, -1, 404, "Not Found", NULL);
		if (svc->cfg->high_assurance && strcmp(att_routes[route].path, "/healthz") != 0) {
			const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");

			if (!proto || strcasecmp(proto, "https") != 0)
				return early_error(srv, conn, route, 403,
						   "High-assurance mode is enabled. Requests must arrive over HTTPS (X-Forwarded-Proto: https from the TLS-terminating proxy).",
						   NULL);
		}
		{
			const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);
			uint64_t n;

			if (cl && att_parse_u64(cl, strlen(cl), 0, UINT64_MAX, &n) == 0 && n > body_cap(svc, route))
				return early_error(srv, conn, route, 413, "Request body too large", NULL);
		}
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->conn = conn;
		rq->method = method;
		rq->path = url;
		rq->route = route;
		rq->start = mono_now();
		att_buf_init(&rq->body, body_cap(svc, route));
		if (!path_match(att_routes[route].path, url, rq)) {
			req_free(rq);
			return MHD_NO;
		}
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->too_large && att_buf_append(&rq->body, upload_data, *upload_data_size) < 0)
			rq->too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole request is here */
	client_ip(conn, rq->source_ip);
	snprintf(rq->actor_name, sizeof(rq->actor_name), "machine");
	rq->actor.name = rq->actor_name;
	rq->actor.source_ip = rq->source_ip;
	if (rq->too_large) {
		att_resp_error(&rs, 413, "Request body too large");
		att_resp_header(&rs, "Connection", "close");
		return send_resp(srv, rq, conn, &rs, rq->route);
	}
	if (rq->body.len > 0 && !is_json_ctype(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
									    MHD_HTTP_HEADER_CONTENT_TYPE))) {
		att_resp_error(&rs, 415, "Unsupported Media Type — send Content-Type: application/json");
		return send_resp(srv, rq, conn, &rs, rq->route);
	}
	if (att_routes[rq->route].auth != AUTH_NONE &&
	    auth_operator(svc, rq, &rs, att_routes[rq->route].auth == AUTH_OPTIONAL,
			  att_routes[rq->route].auth == AUTH_IDENTITY) != 0)
		return send_resp(srv, rq, conn, &rs, rq->route);
	att_routes[rq->route].fn(svc, rq, &rs);
	if (!rs.status)
		att_resp_error(&rs, 500, "Internal Server Error");
	return send_resp(srv, rq, conn, &rs, rq->route);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	req_free(*con_cls);
	*con_cls = NULL;
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
	r = listen_socket(listen_addr, &srv->fd, reterr, errlen);
	if (r < 0) {
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
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024), /* MHD zeroes it per request */
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				  MHD_OPTION_END);
	if (!srv->d) {
		snprintf(reterr, errlen, "cannot start the HTTP server on %s", listen_addr);
		close(srv->fd);
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
	free(s);
}
