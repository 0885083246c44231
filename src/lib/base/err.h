/* err.h - error codes shared by every module of libattest.
 *
 * Functions that can fail return int: 0 on success or a negative
 * enum att_err.  Foreign error codes are converted at module boundaries. */
#ifndef ATT_BASE_ERR_H
#define ATT_BASE_ERR_H

enum att_err {
	ATT_OK = 0,
	ATT_E_NOMEM = -1,
	ATT_E_INVAL = -2,	/* malformed input: 422 */
	ATT_E_PARSE = -3,	/* unparsable input: 422 */
	ATT_E_AUTH = -4,	/* missing/invalid credential: 401 */
	ATT_E_FORBIDDEN = -5,	/* authenticated but not allowed: 403 */
	ATT_E_NOTFOUND = -6,	/* 404 */
	ATT_E_CONFLICT = -7,	/* wrong state, duplicate: 409 */
	ATT_E_GONE = -8,	/* expired: 410 */
	ATT_E_LIMIT = -9,	/* too large / too many: 413 / 429 */
	ATT_E_IO = -10,
	ATT_E_CRYPTO = -11,
	ATT_E_DB = -12,		/* database failure: 503 */
	ATT_E_UNAVAILABLE = -13, /* dependency missing: 503 */
	ATT_E_INTERNAL = -14,
	_ATT_E_MIN = -15,
};

const char *att_strerror(int err);

#endif
