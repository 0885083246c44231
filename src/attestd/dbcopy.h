/* dbcopy.h - attestd db copy (see dbcopy.c). */
#ifndef ATTESTD_DBCOPY_H
#define ATTESTD_DBCOPY_H

/* Returns the process exit status. */
int att_dbcopy_run(const char *from, const char *to);

#endif
