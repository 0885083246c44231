#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/util.h"
#include "json/jsonv.h"

static const char *type_name(enum att_jtype t)
{
	switch (t) {
	case ATT_J_STRING: return "a string";
	case ATT_J_BOOL: return "a boolean";
	case ATT_J_INT: return "an integer";
	case ATT_J_OBJECT: return "an object";
	default: return "a value";
	}
}

int att_json_parse_body(const char *body, size_t len, const struct att_jfield *fields,
			size_t nfields, json_t **ret, char *reterr, size_t errlen)
{
	json_error_t jerr;
	json_t *o;
	const char *key;
	json_t *val;
	size_t ws = 0;

	while (ws < len && (body[ws] == ' ' || body[ws] == '\n' || body[ws] == '\r' || body[ws] == '\t'))
		ws++;
	if (ws == len) {
		o = json_object();
		if (!o)
			return ATT_E_NOMEM;
	} else {
		o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
		if (!o) {
			snprintf(reterr, errlen, "body: malformed JSON: %s (line %d, column %d)", jerr.text,
				 jerr.line, jerr.column);
			return ATT_E_INVAL;
		}
	}
	if (!json_is_object(o)) {
		snprintf(reterr, errlen, "body: expected a JSON object");
		json_decref(o);
		return ATT_E_INVAL;
	}
	json_object_foreach(o, key, val) {
		const struct att_jfield *f = NULL;

		for (size_t i = 0; i < nfields; i++) {
			if (strcmp(fields[i].name, key) == 0) {
				f = &fields[i];
				break;
			}
		}
		if (!f) {
			snprintf(reterr, errlen, "%.64s: unknown field", key);
			goto bad;
		}
		if (json_is_null(val)) {
			if (f->required) {
				snprintf(reterr, errlen, "%s: field required (got null)", f->name);
				goto bad;
			}
			continue;
		}
		switch (f->type) {
		case ATT_J_STRING: {
			size_t max = f->maxlen ? f->maxlen : 4096;

			if (!json_is_string(val))
				goto wrong;
			if (json_string_length(val) > max) {
				snprintf(reterr, errlen, "%s: longer than %zu characters", f->name, max);
				goto bad;
			}
			break;
		}
		case ATT_J_BOOL:
			if (!json_is_boolean(val))
				goto wrong;
			break;
		case ATT_J_INT:
			if (!json_is_integer(val))
				goto wrong;
			break;
		case ATT_J_OBJECT:
			if (!json_is_object(val))
				goto wrong;
			break;
		case ATT_J_ANY:
			break;
		}
		continue;
wrong:
		snprintf(reterr, errlen, "%s: expected %s", f->name, type_name(f->type));
		goto bad;
	}
	for (size_t i = 0; i < nfields; i++) {
		json_t *v = json_object_get(o, fields[i].name);

		if (fields[i].required && (!v || json_is_null(v))) {
			snprintf(reterr, errlen, "%s: field required", fields[i].name);
			goto bad;
		}
	}
	*ret = o;
	return 0;
bad:
	json_decref(o);
	return ATT_E_INVAL;
}

const char *att_json_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool att_json_bool(const json_t *o, const char *key, bool def)
{
	json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

char *att_json_dump(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
