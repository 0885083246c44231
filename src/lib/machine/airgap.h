/* airgap.h - signed air-gap bundles (docs/airgap.md): a gzip'd ustar
 * archive with the machine's record, MachineConfig, enrollment
 * certificate and key, CA bundle, install URLs, a manifest of SHA-384
 * digests and a detached CMS signature of the manifest by the exporting
 * instance's bundle exporter (crypto/exporter.h). */
#ifndef ATT_MACHINE_AIRGAP_H
#define ATT_MACHINE_AIRGAP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/ustar.h"

#define ATT_AIRGAP_FORMAT "itl-airgap-bundle/1"
#define ATT_AIRGAP_MAX_COMPRESSED (4u << 20)	/* request body / archive file */
#define ATT_AIRGAP_MAX_INFLATED (16u << 20)	/* the whole tar */
#define ATT_AIRGAP_MAX_MEMBER (4u << 20)
#define ATT_AIRGAP_MAX_MEMBERS 16

struct att_svc;

/* The archive for bundle (att_machine_offline_bundle ATT_BUNDLE_ARCHIVE,
 * plus iso_url/installer_image/schematic_id), signed; *ret malloc'd. */
int att_airgap_pack(const struct att_svc *svc, const json_t *bundle, uint8_t **ret, size_t *ret_len,
		    char ret_exporter_serial[80], char *reterr, size_t errlen);

struct att_airgap {
	uint8_t *tar;		/* inflated archive; members point into it */
	size_t tar_len;
	struct att_tar_member m[ATT_AIRGAP_MAX_MEMBERS];
	size_t n;
	json_t *manifest, *machine;
	char signer[400];
};

/* Members against the manifest (no signature check): manifest.json,
 * manifest.sig and machine.json present, every other member listed once
 * with its size and SHA-384, nothing listed that is absent.  Sets
 * a->manifest and a->machine.  0 or ATT_E_INVAL (reterr). */
int att_airgap_check_members(struct att_airgap *a, char *reterr, size_t errlen);
/* Inflate (capped), parse, verify the signature against the PEM CA file
 * trusted (ITL_TRUSTED_EXPORTERS) and the members.  0, ATT_E_LIMIT (413),
 * ATT_E_INVAL (422), ATT_E_FORBIDDEN (403), ATT_E_UNAVAILABLE. */
int att_airgap_open(const char *trusted, const uint8_t *in, size_t n, struct att_airgap *ret, char *reterr,
		    size_t errlen);
void att_airgap_release(struct att_airgap *a);

#endif
