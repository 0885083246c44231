/* report.h - the signed PDF audit report of one machine
 * (GET /api/v1/machines/{id}/audit-report): machine summary, the verdict
 * of a whole-chain verification made for the report, and every audit
 * entry of the machine with its hashes; signed by the audit report
 * signing certificate of the Enrollment CA (pdf.h). */
#ifndef ATT_AUDIT_REPORT_H
#define ATT_AUDIT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"

struct att_dbc;

/* The entries a report lists (report_select.c): all of them up to max;
 * beyond, every operator action and the newest `newest`, and per action
 * the count and id range of what is omitted. */
struct att_report_selection {
	json_t *entries;	/* ascending id */
	json_t *omitted;	/* [{action, count, first_id, last_id}] */
	int64_t total;		/* the machine's entries */
	bool selected;		/* more than max: a selection */
	int64_t n_operator, n_newest;
};

int att_audit_report_select(struct att_dbc *c, const char *machine_id, int64_t max, int64_t newest,
			    struct att_report_selection *ret);

struct att_report_input {
	const json_t *machine;			/* machine detail */
	const json_t *entries;			/* array, ascending id */
	const struct att_report_selection *sel;	/* what was listed and omitted */
	const struct att_audit_verify *chain;	/* whole-chain verification */
	const char *generated_by;
	const char *service_url;
};

int att_audit_report_pdf(const struct att_report_input *in, EVP_PKEY *key, X509 *cert, X509 *ca, char **ret,
			 size_t *retlen);

#endif
