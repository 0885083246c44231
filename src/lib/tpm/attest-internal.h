/* attest-internal.h - the TPMS_ATTEST envelope shared by quotes and
 * TPM2_Certify (quote.c, certify.c). */
#ifndef ATT_TPM_ATTEST_INTERNAL_H
#define ATT_TPM_ATTEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#define ATT_TPM_ST_ATTEST_CERTIFY 0x8017
#define ATT_TPM_ST_ATTEST_QUOTE 0x8018

/* Unmarshal attest (len bytes) into *a: TPM_GENERATED_VALUE magic, the
 * attestation type (type, named type_name in errors), nothing trailing;
 * extraData copied to extra (at most extra_cap bytes, *extra_len).
 * Errors start with what ("quote", "certify_info").  ATT_E_INVAL. */
int att_tpm_attest_open(const uint8_t *attest, size_t len, uint16_t type, const char *type_name, const char *what,
			TPMS_ATTEST *a, uint8_t *extra, size_t extra_cap, size_t *extra_len, char *reterr,
			size_t errlen);

#endif
