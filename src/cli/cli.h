/* cli.h - the `attestation` operator CLI: shared state, HTTP, output.
 *
 * Exit codes (docs/cli.md): 0 ok, 1 error, 2 usage, 3 not authenticated,
 * 4 forbidden, 5 not found, 6 conflict / wrong state, 7 input rejected,
 * 8 service or provider unreachable / unavailable. */
#ifndef ATT_CLI_H
#define ATT_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum {
	EX_OK = 0,
	EX_ERR = 1,
	EX_USAGE = 2,
	EX_AUTH = 3,
	EX_FORBIDDEN = 4,
	EX_NOTFOUND = 5,
	EX_CONFLICT = 6,
	EX_INVALID = 7,
	EX_UNAVAILABLE = 8,
};

struct cli {
	const char *api_url;
	char *issuer;		/* ATTESTATION_OIDC_ISSUER or KEYCLOAK_URL/realms/KEYCLOAK_REALM */
	const char *client_id;
	const char *client_secret;
	const char *scope;
	const char *resource;
	const char *ca_file;
	char *cache_dir;
	bool json;		/* --output json */
	bool verbose;
	long timeout;
};

struct cli_resp {
	long status;
	char *body;
	size_t len;
};

/* One HTTP exchange; 0 when a response arrived (any status), else an
 * EX_* code with a message printed. */
int cli_http(const struct cli *c, const char *method, const char *url, const char *const *headers,
	     const char *ctype, const char *body, size_t blen, const char *basic_user,
	     const char *basic_pass, struct cli_resp *r);
void cli_resp_free(struct cli_resp *r);
/* application/x-www-form-urlencoded from NULL-terminated key, value pairs
 * (a NULL value skips the pair). */
char *cli_form(const char *first_key, ...);

/* Calls the attestation API with the operator credential; *ret gets the
 * parsed JSON body (may be NULL).  Prints the service's detail and returns
 * the EX_* code for an error status. */
int cli_api(struct cli *c, const char *method, const char *path, json_t *body, json_t **ret, long *ret_status);
int cli_exit_for_status(long status);
/* The API call with the operator credential and a raw body (body, blen) of
 * type ctype (no body when NULL): 0 with *r filled (any status) or an EX_* code. */
int cli_raw(struct cli *c, const char *method, const char *path, const char *ctype, const char *body,
	    size_t blen, struct cli_resp *r);

/* auth.c: `attestation auth ...` */
int cmd_auth(struct cli *c, int argc, char **argv);
/* auth_refresh.c: Authorization header line for API calls (malloc'd) or
 * NULL with *ex set; force_refresh refreshes a cached login first. */
char *cli_auth_header(struct cli *c, bool force_refresh, int *ex);

/* cmd.c */
int cmd_machine(struct cli *c, int argc, char **argv);
int cmd_audit(struct cli *c, int argc, char **argv);	/* cmd_audit.c */
int cmd_secret(struct cli *c, int argc, char **argv);	/* cmd_secret.c */
/* dotenv.c: ./.env (or $ATTESTATION_ENV_FILE) into the environment;
 * variables already set win.  0, or -1 when a named file is unreadable. */
int cli_load_dotenv(void);
/* cmd_agents.c */
int cmd_config(struct cli *c, int argc, char **argv);
int cmd_agents(struct cli *c, int argc, char **argv);
/* checkpoint.c: `audit checkpoint ...`; the --checkpoint FILE check of
 * `audit verify` against the fetched chain (ascending), adding
 * res.checkpoint (and its RFC 3161 timestamp, checked against tsa_ca_file
 * when given); EX_OK, EX_ERR (mismatch, bad signature) or EX_USAGE. */
int cmd_audit_checkpoint(struct cli *c, int argc, char **argv);
int cli_checkpoint_check(const char *file, const char *ca_file, const char *tsa_ca_file, const json_t *chain,
			 json_t *res);
void cli_checkpoint_print(const json_t *verdict);
/* cmd_events.c */
int cmd_events(struct cli *c, int argc, char **argv);
/* cmd_cert.c */
int cmd_cert(struct cli *c, int argc, char **argv);
int cmd_cert_list(struct cli *c, int argc, char **argv);
int cmd_machine_bundle(struct cli *c, int argc, char **argv);	/* cmd_bundle.c */
int cmd_machine_import(struct cli *c, int argc, char **argv);

/* output */
struct col {
	const char *title;
	const char *key;	/* JSON member; "a.b" not supported */
	int max;		/* truncate to max chars (0: no limit) */
};
void out_json(const json_t *v);
void out_table(const json_t *rows, const struct col *cols, size_t ncols);
void out_kv(const json_t *obj, const char *const *keys, size_t nkeys);
const char *jstr(const json_t *o, const char *k);
/* jstr's value as a malloc'd copy, or NULL. */
char *jdup(const json_t *o, const char *k);

/* Simple option parsing: --name VALUE / --name=VALUE / flags. */
struct opt {
	const char *name;	/* without leading dashes */
	char alias;		/* short form or 0 */
	bool has_arg;
	const char **val;	/* has_arg: receives the value */
	bool *flag;		/* !has_arg */
};
/* Parses argv[0..argc) leaving positionals in pos (max npos); returns
 * number of positionals or -1 after printing a usage error. */
int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts, size_t nopts,
	       char **pos, int npos);
bool want_help(int argc, char **argv);
/* A command group's usage for no subcommand (stderr, EX_USAGE), `help`
 * or --help/-h anywhere (stdout, EX_OK); -1 when none applies. */
int group_help(int argc, char **argv, const char *usage);
/* write(2) until done (EINTR retried); 0 or -1 with errno. */
int write_all(int fd, const void *data, size_t len);
/* Decimal integer in [min, max]; false otherwise. */
bool cli_parse_int(const char *s, long min, long max, long *ret);
/* cmd.c, shared with cmd_audit.c: a URL-escaped copy (malloc'd); the one
 * ID argument of cmd (usage error otherwise); a file written mode 0600. */
char *cli_esc(const char *s);
int cli_one_id(const char *cmd, int argc, char **argv, const struct opt *o, size_t no, const char **id);
int cli_write_private(const char *path, const char *data, size_t len);

#endif
