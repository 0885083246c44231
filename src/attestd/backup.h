/* backup.h - attestd backup DIR / attestd restore DIR (see backup.c). */
#ifndef ATTESTD_BACKUP_H
#define ATTESTD_BACKUP_H

#include "config/config.h"

/* Both return the process exit status and report on stdout/stderr. */
int att_backup_run(const struct att_config *cfg, const char *dir);
int att_restore_run(const struct att_config *cfg, const char *dir);

#endif
