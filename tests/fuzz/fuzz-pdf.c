/* The audit report renderer on arbitrary text: the input (split at NUL
 * bytes) becomes operator names, actions and details of audit entries and
 * machine fields; the PDF must assemble, sign and stay well-formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/report.h"

static X509 *selfsigned(EVP_PKEY *k)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, k, EVP_sha256());
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *key;
	static X509 *cert;
	const char *parts[6] = { "", "", "", "", "", "" };
	char *buf = malloc(size + 1), *pdf = NULL;
	size_t n = 0, len = 0;
	json_t *machine, *entries;
	struct att_audit_verify v = { .valid = size % 2, .entries = 3, .first_invalid_id = 2 };

	if (!buf)
		return 0;
	if (!key) {
		key = EVP_EC_gen("P-256");
		cert = selfsigned(key);
	}
	memcpy(buf, data, size);
	buf[size] = 0;
	for (char *p = buf; n < 6 && p <= buf + size; p += strlen(p) + 1)
		parts[n++] = p;
	snprintf(v.error, sizeof(v.error), "%.100s", parts[5]);
	machine = json_pack("{s:s,s:s,s:s,s:s}", "machine_id", parts[0], "hostname", parts[1], "status", "registered",
			    "role", "worker-app");
	entries = json_pack("[{s:i,s:s,s:s,s:s,s:s,s:s,s:n},{s:i,s:s,s:s,s:s}]", "id", 1, "timestamp", "2026-01-01T00:00:00",
			    "operator_cn", parts[2], "action", parts[3], "detail", parts[4], "entry_hash", parts[5],
			    "prev_state", "id", 2, "detail", parts[4], "operator_cn", parts[1], "action", parts[0]);
	if (machine && entries) {
		struct att_report_input in = { .machine = machine, .entries = entries, .chain = &v,
					       .generated_by = parts[2], .service_url = parts[3] };

		if (att_audit_report_pdf(&in, key, cert, cert, &pdf, &len) == 0) {
			if (len < 20 || memcmp(pdf, "%PDF-1.7", 8) != 0 || memcmp(pdf + len - 6, "%%EOF\n", 6) != 0)
				abort();
			free(pdf);
		}
	}
	json_decref(machine);
	json_decref(entries);
	free(buf);
	return 0;
}
