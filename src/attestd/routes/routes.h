/* routes.h - the REST API, one file per resource.
 *
 * Each file under routes/ owns its handlers, its request schemas and its
 * slice of the route table (a struct att_route_set); router.c composes
 * the slices (and the extensions' routes) into one table.  A new
 * resource is a new file here plus one line in router.c.
 *
 * The helpers below are what the route files share. */
#ifndef ATTESTD_ROUTES_H
#define ATTESTD_ROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/ek.h"
#include "http.h"
#include "machine/machine.h"
#include "tpm/tpm.h"

/* The slices, in matching order (router.c). */
extern const struct att_route_set att_routes_ops;
extern const struct att_route_set att_routes_node;
extern const struct att_route_set att_routes_attest;
extern const struct att_route_set att_routes_config;
extern const struct att_route_set att_routes_machines;
extern const struct att_route_set att_routes_certs;
extern const struct att_route_set att_routes_selfenroll;
extern const struct att_route_set att_routes_ca;
extern const struct att_route_set att_routes_tpm;
extern const struct att_route_set att_routes_pcr_policies;
extern const struct att_route_set att_routes_audit;
extern const struct att_route_set att_routes_checkpoints;
extern const struct att_route_set att_routes_extensions;
extern const struct att_route_set att_routes_fleet;
extern const struct att_route_set att_routes_events;
extern const struct att_route_set att_routes_secrets;
extern const struct att_route_set att_routes_autoapprove;
extern const struct att_route_set att_routes_ui;
extern const struct att_route_set att_routes_agents;
extern const struct att_route_set att_routes_airgap;

/* ---- common.c ------------------------------------------------------------ */

json_t *att_api_str_or_null(const char *s);
/* The one schematic every machine boots (YAML, malloc'd) and its ID. */
int att_api_schematic(const struct att_config *cfg, char **ret_yaml, char ret_id[65]);
/* A machine id as clients may send it: 1-64 of [A-Za-z0-9._-], a letter or digit first. */
bool att_api_id_ok(const char *id);
/* ?page=&per_page= (per_page 1..200); answers 422 itself. */
bool att_api_paging(struct att_req *rq, struct att_resp *rs, int64_t *page, int64_t *per_page,
		    int64_t def_per_page);
/* 200 with the machine detail (and releases m), or the error mapped. */
void att_api_reply_machine(struct att_resp *rs, int r, struct att_machine *m, const char *err);
void att_api_db_unavailable(struct att_resp *rs);
/* iso_url / schematic_id / installer_image for the one schematic every
 * machine boots (told to the Image Factory once). */
void att_api_boot_urls(const struct att_svc *svc, json_t *o);
/* POST /machines/import: a receipt's fields checked into rc (machines.c;
 * false with rs answered); the air-gap bundle branch (airgap.c). */
bool att_api_receipt(const struct att_svc *svc, json_t *b, struct att_receipt *rc, char mac[32],
		     struct att_resp *rs);
void att_api_airgap_import(const struct att_svc *svc, struct att_req *rq, struct att_resp *rs);

/* ---- checkpoints.c ------------------------------------------------------ */

struct att_checkpoint_signer;
/* The CA's document-signing key for checkpoints; ATT_E_UNAVAILABLE when none. */
int att_api_checkpoint_signer(const struct att_svc *svc, struct att_checkpoint_signer *sg);

/* ---- fleet.c ------------------------------------------------------------- */

struct att_fleet_filter;
struct att_fleet_sort;
/* The machine list's filters and sort from the query string; answers 422 itself. */
bool att_api_fleet_query(struct att_req *rq, struct att_resp *rs, struct att_fleet_filter *f,
			 struct att_fleet_sort *so);

/* ---- node.c: the claims register, self-register and attest share -------- */

#define ATT_API_NODE_FIELDS                                            \
	{ "ek_fingerprint", ATT_J_STRING, false, 128 },                \
	{ "ek_cert_pem", ATT_J_STRING, true, ATT_EK_MAX_B64 },         \
	{ "ek_source", ATT_J_STRING, false, 32 },                      \
	{ "hw_uuid", ATT_J_TEXT, false, 256 },                         \
	{ "hw_mac", ATT_J_STRING, false, 64 },                         \
	{ "hw_serial", ATT_J_TEXT, false, 256 },                       \
	{ "hw_product", ATT_J_TEXT, false, 256 },                      \
	{ "desired_role", ATT_J_STRING, false, 64 },                   \
	{ "cluster_id", ATT_J_STRING, false, 64 },                     \
	{ "ek_chain_pem", ATT_J_STRING, false, ATT_EK_MAX_B64 },       \
	{ "ek_chain_nv", ATT_J_STRING, false, ATT_EK_MAX_B64 }

struct att_api_node {
	struct att_node_claims cl;
	struct att_ek ek;
	char mac[32];
	uint8_t *chain_der;	/* decoded ek_chain_nv */
};

/* ---- attest.c: a quote as sent in a request body ------------------------ */

struct att_api_quote {
	uint8_t *attest, *sig;
	size_t attest_len, sig_len;
	struct att_tpm_pcrs pcrs;
};

/* pcr_quote, pcr_signature, pcr_values (and a nonce_id present) parsed
 * structurally, before any nonce is consumed; answers 422 itself. */
bool att_api_quote_parse(json_t *b, struct att_resp *rs, struct att_api_quote *q);
void att_api_quote_release(struct att_api_quote *q);

/* Validate the claims and parse the EK; answers 422 itself on failure. */
bool att_api_node_parse(const struct att_svc *svc, json_t *b, struct att_resp *rs, const char *what,
			struct att_api_node *nr);
void att_api_node_release(struct att_api_node *nr);

#endif
