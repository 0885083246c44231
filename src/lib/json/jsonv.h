/* jsonv.h - strict JSON request bodies.
 *
 * Bodies are parsed with duplicate keys rejected and checked against a
 * per-endpoint field table: unknown fields, wrong types, missing
 * required fields and oversized strings are all errors whose message
 * names the field.  An empty body is treated as {}. */
#ifndef ATT_JSON_JSONV_H
#define ATT_JSON_JSONV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum att_jtype {
	ATT_J_STRING,
	ATT_J_TEXT,	/* a string without control characters (C0, DEL, C1): shown to people */
	ATT_J_BOOL,
	ATT_J_INT,
	ATT_J_OBJECT,
	ATT_J_ANY,
};

struct att_jfield {
	const char *name;
	enum att_jtype type;
	bool required;
	size_t maxlen;	/* strings: maximum length in bytes (0 = 4096) */
};

/* Returns 0 and the parsed object, or ATT_E_INVAL with a message. */
int att_json_parse_body(const char *body, size_t len, const struct att_jfield *fields,
			size_t nfields, json_t **ret, char *reterr, size_t errlen);

/* Accessors for validated objects: NULL / default when absent or null. */
const char *att_json_str(const json_t *o, const char *key);
bool att_json_bool(const json_t *o, const char *key, bool def);

/* Serialize compactly (caller frees). */
char *att_json_dump(const json_t *v);

#endif
