/* backup.h - attestd backup DIR / attestd restore DIR (see backup.c). */
#ifndef ATTESTD_BACKUP_H
#define ATTESTD_BACKUP_H

#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

/* Both return the process exit status and report on stdout/stderr. */
int att_backup_run(const struct att_config *cfg, const char *dir);
int att_restore_run(const struct att_config *cfg, const char *dir);

/* Copy src to the new file dst (never replacing one; removed again on
 * failure), hashing what is copied: hex SHA-256 and size.  0, or -1 with
 * a message in err. */
int att_backup_copy_file(const char *src, const char *dst, mode_t mode, char hex[65], int64_t *ret_size, char *err,
			 size_t errlen);

#endif
