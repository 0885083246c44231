/* importref.h - attestd import-reference (see importref.c). */
#ifndef ATTESTD_IMPORTREF_H
#define ATTESTD_IMPORTREF_H

#include <stdbool.h>

#include "config/config.h"

/* Import the reference service's SQLite database at path into the empty
 * database of cfg (dry_run: check and report, write nothing).  Returns
 * the process exit status; the report goes to stdout/stderr. */
int att_importref_run(const struct att_config *cfg, const char *path, bool dry_run);

#endif
