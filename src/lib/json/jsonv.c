#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/text.h"
#include "base/util.h"
#include "json/jsonv.h"

static const char *type_name(enum att_jtype t)
{
	switch (t) {
	case ATT_J_STRING:
	case ATT_J_TEXT: return "a string";
	case ATT_J_BOOL: return "a boolean";
	case ATT_J_INT: return "an integer";
	case ATT_J_OBJECT: return "an object";
	default: return "a value";
	}
}

/* ---- fast path for flat objects ----------------------------------------
 * Request bodies are flat objects of strings, booleans, integers and
 * nulls, and jansson's byte-at-a-time lexer dominated the attest poll.
 * This scanner only ever *accepts*: anything it is not certain about
 * (nesting, floats, escapes it does not handle, any error) makes it
 * give up, and jansson parses the body and words the error.  Accepted
 * input is exactly what jansson would accept for the flat subset. */

static size_t utf8_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0 && n >= 2 && p[0] >= 0xc2 && (p[1] & 0xc0) == 0x80)
		return 2;
	if ((p[0] & 0xf0) == 0xe0 && n >= 3 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
		unsigned cp = (unsigned)(p[0] & 0x0f) << 12 | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);

		return cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 0;
	}
	if ((p[0] & 0xf8) == 0xf0 && n >= 4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
	    (p[3] & 0xc0) == 0x80) {
		unsigned cp = (unsigned)(p[0] & 0x07) << 18 | (unsigned)(p[1] & 0x3f) << 12 |
			      (unsigned)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);

		return cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
	}
	return 0;
}

static void skip_ws(const char *b, size_t len, size_t *i)
{
	while (*i < len && (b[*i] == ' ' || b[*i] == '\n' || b[*i] == '\r' || b[*i] == '\t'))
		(*i)++;
}

/* A string without escapes other than \" \\ \/ \n \r \t \b \f.
 * Returns a json_t string, or NULL to give up. */
/* True when none of the 8 bytes needs attention: no quote, backslash,
 * control character or non-ASCII byte.  The zero-byte tests may report
 * false positives (then the byte loop decides), never false negatives. */
static bool chunk_plain(uint64_t v)
{
	const uint64_t hi = 0x8080808080808080ULL, ones = 0x0101010101010101ULL;
	uint64_t q = v ^ 0x2222222222222222ULL, bs = v ^ 0x5c5c5c5c5c5c5c5cULL;

	if (v & hi)
		return false;
	return !(((v - 0x2020202020202020ULL) & ~v & hi) | ((q - ones) & ~q & hi) |
		 ((bs - ones) & ~bs & hi));
}

static json_t *flat_string(const char *b, size_t len, size_t *i)
{
	size_t start, j;
	bool escaped = false;
	char *out;
	size_t o = 0;
	json_t *v;

	if (*i >= len || b[*i] != '"')
		return NULL;
	start = ++(*i);
	for (j = start; j < len;) {
		unsigned char c;
		size_t k;

		if (len - j >= 8) {
			uint64_t w;

			memcpy(&w, b + j, 8);
			if (chunk_plain(w)) {
				j += 8;
				continue;
			}
		}
		c = (unsigned char)b[j];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			j++;
			continue;
		}
		if (c == '"')
			break;
		if (c == '\\') {
			if (j + 1 >= len || b[j + 1] == '\0' || !strchr("\"\\/nrtbf", b[j + 1]))
				return NULL;
			escaped = true;
			j += 2;
			continue;
		}
		if (c < 0x20)
			return NULL;
		k = utf8_len((const unsigned char *)b + j, len - j);
		if (!k)
			return NULL;
		j += k;
	}
	if (j >= len)
		return NULL;
	*i = j + 1;
	if (!escaped)
		return json_stringn_nocheck(b + start, j - start);
	out = malloc(j - start + 1);
	if (!out)
		return NULL;
	for (size_t p = start; p < j; p++) {
		if (b[p] == '\\') {
			char e = b[++p];

			out[o++] = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b'
				 : e == 'f' ? '\f' : e;
		} else {
			out[o++] = b[p];
		}
	}
	out[o] = '\0';
	v = json_stringn_nocheck(out, o);
	free(out);
	return v;
}

static json_t *flat_parse(const char *b, size_t len)
{
	json_t *o = json_object(), *k = NULL, *v = NULL;
	size_t i = 0;

	if (!o)
		return NULL;
	skip_ws(b, len, &i);
	if (i >= len || b[i++] != '{')
		goto giveup;
	skip_ws(b, len, &i);
	if (i < len && b[i] == '}') {
		i++;
		goto end;
	}
	for (;;) {
		skip_ws(b, len, &i);
		k = flat_string(b, len, &i);
		if (!k || strlen(json_string_value(k)) != json_string_length(k))
			goto giveup;
		skip_ws(b, len, &i);
		if (i >= len || b[i++] != ':')
			goto giveup;
		skip_ws(b, len, &i);
		if (i >= len)
			goto giveup;
		if (b[i] == '"') {
			v = flat_string(b, len, &i);
		} else if (len - i >= 4 && memcmp(b + i, "true", 4) == 0) {
			v = json_true();
			i += 4;
		} else if (len - i >= 5 && memcmp(b + i, "false", 5) == 0) {
			v = json_false();
			i += 5;
		} else if (len - i >= 4 && memcmp(b + i, "null", 4) == 0) {
			v = json_null();
			i += 4;
		} else if ((b[i] >= '1' && b[i] <= '9') || (b[i] == '0' && !(i + 1 < len && b[i + 1] >= '0' && b[i + 1] <= '9'))) {
			json_int_t n = 0;
			int digits = 0;

			while (i < len && b[i] >= '0' && b[i] <= '9' && digits < 15) {
				n = n * 10 + (b[i++] - '0');
				digits++;
			}
			if (i < len && ((b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == 'e' || b[i] == 'E'))
				goto giveup;
			v = json_integer(n);
		} else {
			goto giveup;
		}
		if (!v || json_object_get(o, json_string_value(k)))
			goto giveup; /* duplicate keys: let jansson report them */
		if (json_object_set_new_nocheck(o, json_string_value(k), v) < 0) {
			v = NULL;
			goto giveup;
		}
		v = NULL;
		json_decref(k);
		k = NULL;
		skip_ws(b, len, &i);
		if (i < len && b[i] == ',') {
			i++;
			continue;
		}
		if (i < len && b[i] == '}') {
			i++;
			break;
		}
		goto giveup;
	}
end:
	skip_ws(b, len, &i);
	if (i != len)
		goto giveup;
	return o;
giveup:
	json_decref(k);
	json_decref(v);
	json_decref(o);
	return NULL;
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
	} else if (!(o = flat_parse(body, len))) {
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
			snprintf(reterr, errlen, "%.*s: unknown field", (int)att_utf8_cut(key, 64), key);
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
		case ATT_J_STRING:
		case ATT_J_TEXT: {
			size_t max = f->maxlen ? f->maxlen : 4096;

			if (!json_is_string(val))
				goto wrong;
			if (json_string_length(val) > max) {
				snprintf(reterr, errlen, "%s: longer than %zu characters", f->name, max);
				goto bad;
			}
			if (f->type == ATT_J_TEXT && att_text_has_control(json_string_value(val))) {
				snprintf(reterr, errlen, "%s: must not contain control characters", f->name);
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
