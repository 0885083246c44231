/* The machine-certificate parsers of untrusted bytes.  Input: mode byte, then
 *   0: a CSR in PEM (accepting TPM key sizes when the next byte is odd)
 *   1: a TPMS_ATTEST of a TPM2_Certify
 *   2: a DER OCSP request, answered by a throwaway CA (every known
 *      serial "good")
 *   3: BE16 length | a PEM certificate | a signature over "nonce"
 *      (proof of possession, self-revoke)
 *   4: a PEM certificate presented back to the throwaway CA
 *      (POST /machines/enroll) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/ca.h"
#include "crypto/csr.h"
#include "tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct att_ca *ca;

static int lookup(void *ud, const char *ca_serial, const char *serial, struct att_ocsp_answer *ret)
{
	(void)ud;
	(void)ca_serial;
	ret->status = strlen(serial) % 2 ? ATT_OCSP_GOOD : ATT_OCSP_REVOKED;
	ret->revoked_at = 1700000000;
	snprintf(ret->reason, sizeof(ret->reason), "keyCompromise");
	return 0;
}

static void init_ca(void)
{
	char dir[] = "/tmp/fuzz-certs-XXXXXX", err[256], path[64];
	bool created;

	if (ca)
		return;
	if (!mkdtemp(dir) || att_ca_init(dir, "ecdsa-p384", &ca, &created, err, sizeof(err)) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/enrollment-ca.key", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/enrollment-ca.crt", dir);
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	if (size < 2)
		return 0;
	switch (data[0] % 5) {
	case 0: {
		struct att_csr c = { 0 };

		if (att_csr_parse((const char *)data + 2, size - 2, data[1] & 1, &c, err, sizeof(err)) == 0 && !c.key)
			abort();
		att_csr_release(&c);
		break;
	}
	case 1: {
		struct att_tpm_certify c;

		if (att_tpm_certify_parse(data + 1, size - 1, &c, err, sizeof(err)) == 0 &&
		    (c.extra_len > sizeof(c.extra) || c.name_len > sizeof(c.name)))
			abort();
		break;
	}
	case 2: {
		uint8_t *der = NULL;
		size_t len = 0;

		init_ca();
		if (att_ca_ocsp_respond(ca, data + 1, size - 1, lookup, NULL, 3600, &der, &len) < 0 || !der || !len)
			abort();
		free(der);
		break;
	}
	case 3: {
		char serial[80], sha[65];
		size_t cl = (size_t)data[1] << 8 | (size_t)(size > 2 ? data[2] : 0);

		if (size < 3 || cl > size - 3)
			break;
		(void)att_cert_pop_check((const char *)data + 3, cl, "nonce", 5, data + 3 + cl, size - 3 - cl, serial, sha,
					 err, sizeof(err));
		break;
	}
	case 4: {
		struct att_ca_leaf_info li;

		init_ca();
		if (att_ca_verify_leaf(ca, (const char *)data + 1, size - 1, &li, err, sizeof(err)) == 0)
			abort();	/* nothing but this process's CA could have signed it */
		break;
	}
	}
	return 0;
}
