#include "base/err.h"

const char *att_strerror(int err)
{
	switch (err) {
	case ATT_OK: return "success";
	case ATT_E_NOMEM: return "out of memory";
	case ATT_E_INVAL: return "invalid input";
	case ATT_E_PARSE: return "parse error";
	case ATT_E_AUTH: return "authentication required";
	case ATT_E_FORBIDDEN: return "forbidden";
	case ATT_E_NOTFOUND: return "not found";
	case ATT_E_CONFLICT: return "conflict";
	case ATT_E_GONE: return "expired";
	case ATT_E_LIMIT: return "limit exceeded";
	case ATT_E_IO: return "I/O error";
	case ATT_E_CRYPTO: return "cryptographic failure";
	case ATT_E_DB: return "database unavailable";
	case ATT_E_UNAVAILABLE: return "service unavailable";
	case ATT_E_INTERNAL: return "internal error";
	default: return "unknown error";
	}
}
