/* factory.h - telling a Talos Image Factory about a schematic, and the
 * asset URLs derived from a schematic ID (talos.md section 1.4). */
#ifndef ATT_TALOS_FACTORY_H
#define ATT_TALOS_FACTORY_H

#include <stddef.h>

/* POST <factory_url>/schematics.  Returns 0 when the factory answered
 * 200/201 with an id (written to ret_id, 65 bytes), ATT_E_UNAVAILABLE on
 * connection errors, timeouts and 5xx, ATT_E_PARSE on an unexpected
 * answer; reterr says what happened. */
int att_factory_post_schematic(const char *factory_url, const char *yaml, long timeout_seconds,
			       char ret_id[65], char *reterr, size_t errlen);

/* <factory>/image/<id>/<version>/metal-amd64.iso (caller frees) */
char *att_factory_iso_url(const char *factory_url, const char *id, const char *version);
/* <factory host>/installer/<id>:<version> (caller frees) */
char *att_factory_installer_image(const char *factory_url, const char *id, const char *version);

#endif
