/* report.h - the signed PDF audit report of one machine
 * (GET /api/v1/machines/{id}/audit-report): machine summary, the verdict
 * of a whole-chain verification made for the report, and every audit
 * entry of the machine with its hashes; signed by the audit report
 * signing certificate of the Enrollment CA (pdf.h). */
#ifndef ATT_AUDIT_REPORT_H
#define ATT_AUDIT_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/audit.h"

struct att_report_input {
	const json_t *machine;			/* machine detail */
	const json_t *entries;			/* array, ascending id */
	bool truncated;				/* more entries exist than listed */
	const struct att_audit_verify *chain;	/* whole-chain verification */
	const char *generated_by;
	const char *service_url;
};

int att_audit_report_pdf(const struct att_report_input *in, EVP_PKEY *key, X509 *cert, X509 *ca, char **ret,
			 size_t *retlen);

#endif
