/* http.h - attestd's HTTP layer on libmicrohttpd: a route table, body
 * caps, content-type checks, operator authentication, high-assurance
 * mode, metrics, and the {"detail": ...} error convention. */
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
	AUTH_NONE,	/* machine-facing / public */
	AUTH_OPTIONAL,	/* register: credential upgrades the result */
	AUTH_OPERATOR,	/* operator credential required */
	AUTH_IDENTITY,	/* any valid credential; rq->is_operator tells the role */
};

struct att_req {
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	char *params[4];	/* captured {segments} */
	int nparams;
	struct att_buf body;
	bool too_large;
	struct att_actor actor;
	char actor_name[256];
	char auth_method[24];	/* oidc, admin-token, break-glass, registration-token */
	bool is_operator;
	json_t *oidc_roles;	/* OIDC: roles found in the token */
	int64_t oidc_exp;
	char source_ip[64];
	int route;
	double start;
};

struct att_resp {
	int status;
	char *body;		/* malloc'd */
	size_t len;
	const char *ctype;
	const char *extra_hdr[4][2];
	int nextra;
	char owned[2][256];	/* values copied by att_resp_header_copy */
	int nowned;
};

typedef void (*att_handler_fn)(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs);

struct att_route {
	const char *method;
	const char *path;	/* template, {x} captures a segment */
	enum route_auth auth;
	att_handler_fn fn;
	int metric;
};

extern struct att_route att_routes[];
extern const size_t att_nroutes;

/* Response helpers. */
void att_resp_json(struct att_resp *rs, int status, json_t *body);	/* steals body */
void att_resp_error(struct att_resp *rs, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void att_resp_text(struct att_resp *rs, int status, const char *ctype, char *body, size_t len);
void att_resp_header(struct att_resp *rs, const char *name, const char *value);	/* value must outlive rs */
void att_resp_header_copy(struct att_resp *rs, const char *name, const char *value);
/* Map an att_err from the library to a status + detail response. */
void att_resp_from_err(struct att_resp *rs, int err, const char *detail);

/* Request helpers. */
const char *att_req_header(struct att_req *rq, const char *name);
const char *att_req_query(struct att_req *rq, const char *name);
/* Parse the JSON body against fields; on failure answers 422. */
json_t *att_req_json(struct att_req *rq, struct att_resp *rs, const struct att_jfield *fields,
		     size_t n);

struct att_server;

int att_server_start(const struct att_svc *svc, const char *listen_addr, unsigned threads,
		     struct att_server **ret, char *reterr, size_t errlen);
/* The bound address as "host:port". */
const char *att_server_address(const struct att_server *s);
void att_server_stop(struct att_server *s);

#endif
