/* http.h - attestd's HTTP layer on libmicrohttpd.
 *
 *   http.c    the server: MHD callbacks, body caps, content types,
 *             high-assurance mode, per-route metrics
 *   router.c  the route table, composed from routes/ and extensions
 *   auth.c    operator authentication (admin token, break-glass, OIDC,
 *             registration token)
 *   resp.c    request accessors and responses ({"detail": ...} errors)
 */
#ifndef ATTESTD_HTTP_H
#define ATTESTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "json/jsonv.h"
#include "machine/machine.h"

struct MHD_Connection;
struct MHD_Daemon;

enum route_auth {
	AUTH_NONE,	/* machine-facing / public, or the handler authenticates */
	AUTH_OPTIONAL,	/* register: credential upgrades the result */
	AUTH_OPERATOR,	/* operator credential required */
	AUTH_IDENTITY,	/* any valid credential; rq->is_operator tells the role */
};

#define ATT_ROUTE_MAX_PARAMS 8

struct att_route;

struct att_req {
	struct MHD_Connection *conn;
	const struct att_svc *svc;
	const char *method;
	const char *path;
	const struct att_route *route;
	int route_index;
	char *params[ATT_ROUTE_MAX_PARAMS];	/* captured {segments} */
	int nparams;
	struct att_buf body;
	bool too_large;
	struct att_actor actor;
	char actor_name[256];
	char actor_key[512];	/* OIDC: "oidc:<iss>#<sub>" (rq->actor.key) */
	char auth_method[24];	/* oidc, admin-token, break-glass, registration-token */
	bool is_operator;
	json_t *oidc_roles;	/* OIDC: roles found in the token */
	int64_t oidc_exp;
	char source_ip[64];
	double start;
};

#define ATT_RESP_MAX_HEADERS 12

struct att_resp {
	int status;
	char *body;		/* malloc'd */
	size_t len;
	const char *ctype;
	char ctype_copy[128];	/* for content types set by extensions */
	char *hdr[ATT_RESP_MAX_HEADERS][2];	/* name, value: copies */
	int nhdr;
	bool coded;		/* att_resp_error adds "code" (ATT_ROUTE_ERROR_CODE) */
};

typedef void (*att_handler_fn)(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs);

#define ATT_ROUTE_ANY_BODY 0x1u	/* any Content-Type (the handler checks it) */
#define ATT_ROUTE_ERROR_CODE 0x2u	/* error bodies also carry "code": status */

struct att_route {
	const char *method;
	const char *path;	/* template, {x} captures a segment */
	enum route_auth auth;
	att_handler_fn fn;
	size_t max_body;	/* 0: ITL_MAX_BODY_BYTES / ITL_MAX_UNAUTH_BODY_BYTES by auth */
	unsigned flags;		/* ATT_ROUTE_* */
	const void *ud;		/* the handler's own data (extension routes) */
};

struct att_route_set {
	const struct att_route *routes;
	size_t n;
};

/* ---- router.c ------------------------------------------------------------ */

/* Compose the core slices and extra (extension) routes into the table;
 * ATT_E_CONFLICT naming the path when an extra route shadows another. */
int att_router_build(const struct att_route *extra, size_t nextra, char *reterr, size_t errlen);
void att_router_free(void);
/* The route for method+url; NULL with *ret_known when only the method
 * differs (allow lists the methods the path has). */
const struct att_route *att_router_find(const char *method, const char *url, bool *ret_known,
					char allow[128], int *ret_index);
/* Capture the {segments} of url into rq (false on allocation failure). */
bool att_router_capture(const struct att_route *r, const char *url, struct att_req *rq);
/* The captured segment named {name}, or NULL. */
const char *att_req_param(const struct att_req *rq, const char *name);
int att_router_metric(int index);
/* Every route, for listings. */
const struct att_route *att_router_routes(size_t *ret_n);

/* ---- auth.c ---------------------------------------------------------------- */

/* 0 when rq may proceed under mode; otherwise an HTTP status with rs set. */
int att_auth_check(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, enum route_auth mode);
/* Check a bearer credential (admin token or OIDC access token) that a
 * handler found itself; on success the request's identity is set.
 * Returns 0, or an HTTP status with rs set. */
int att_auth_bearer(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs, const char *credential,
		    bool identity_only);

/* ---- resp.c ---------------------------------------------------------------- */

void att_resp_json(struct att_resp *rs, int status, json_t *body);	/* steals body */
void att_resp_error(struct att_resp *rs, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void att_resp_text(struct att_resp *rs, int status, const char *ctype, char *body, size_t len);
/* Add a response header (name and value are copied). */
void att_resp_header(struct att_resp *rs, const char *name, const char *value);
/* Map an att_err from the library to a status + detail response. */
void att_resp_from_err(struct att_resp *rs, int err, const char *detail);
void att_resp_release(struct att_resp *rs);

const char *att_req_header(struct att_req *rq, const char *name);
const char *att_req_query(struct att_req *rq, const char *name);
/* Parse the JSON body against fields; on failure answers 422. */
json_t *att_req_json(struct att_req *rq, struct att_resp *rs, const struct att_jfield *fields,
		     size_t n);

/* ---- http.c ---------------------------------------------------------------- */

struct att_server;

int att_server_start(const struct att_svc *svc, const char *listen_addr, unsigned threads,
		     struct att_server **ret, char *reterr, size_t errlen);
/* The bound address as "host:port". */
const char *att_server_address(const struct att_server *s);
void att_server_stop(struct att_server *s);

#endif
