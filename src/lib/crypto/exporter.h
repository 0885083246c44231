/* exporter.h - the instance's air-gap bundle exporter identity and the
 * detached CMS signatures it makes (docs/airgap.md).
 *
 * The exporter key (ECDSA P-384) and its certificate, issued by the
 * Enrollment CA with EKU id-itl-bundle-export (ATT_CA_EKU_BUNDLE_EXPORT),
 * are made on first use and kept next to the CA: dir/bundle-exporter.key
 * (mode 0600) and dir/bundle-exporter.crt.  They are made again when the
 * CA was rotated, the pair does not match, or the certificate expires
 * within 30 days. */
#ifndef ATT_CRYPTO_EXPORTER_H
#define ATT_CRYPTO_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ca.h"

/* A DER CMS SignedData (detached, binary, SHA-384, the exporter
 * certificate included) over data; *ret malloc'd; ret_serial gets the
 * exporter certificate's serial (hex). */
int att_exporter_sign(const struct att_ca *ca, const char *dir, const uint8_t *data, size_t n, uint8_t **ret,
		      size_t *ret_len, char ret_serial[80], char *reterr, size_t errlen);

/* Verify sig (DER CMS, detached) over data: one signer whose certificate
 * chains to a CA in the PEM file trusted (ITL_TRUSTED_EXPORTERS) and
 * carries the exporter EKU.  0, ATT_E_FORBIDDEN (untrusted, wrong EKU,
 * bad signature), ATT_E_INVAL (not a CMS signature), ATT_E_UNAVAILABLE
 * (trusted unreadable).  signer gets the signer's subject and serial. */
int att_exporter_verify(const char *trusted, const uint8_t *data, size_t n, const uint8_t *sig, size_t siglen,
			char *signer, size_t signer_len, char *reterr, size_t errlen);

#endif
