/* banned.h - libc calls we never use (git's banned.h idea).
 * Included last by base/util.h, after the system headers. */
#ifndef ATT_BASE_BANNED_H
#define ATT_BASE_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_attestation

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef localtime
#define localtime(x) BANNED(localtime)

#endif
