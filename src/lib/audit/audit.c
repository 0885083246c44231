#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "audit/audit.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "db/db.h"

/* Decode one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0 && n >= 2 && (s[1] & 0xc0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return *cp >= 0x80 ? 2 : 0;
	}
	if ((s[0] & 0xf0) == 0xe0 && n >= 3 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return *cp >= 0x800 ? 3 : 0;
	}
	if ((s[0] & 0xf8) == 0xf0 && n >= 4 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
	    (s[3] & 0xc0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
		      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		return *cp >= 0x10000 && *cp <= 0x10ffff ? 4 : 0;
	}
	return 0;
}

/* Python json.dumps string encoding with ensure_ascii=True. */
static int py_json_string(struct att_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int r = att_buf_append(b, "\"", 1);

	for (size_t i = 0; i < n && r == 0;) {
		uint32_t cp;
		size_t k = utf8_decode(p + i, n - i, &cp);

		if (k == 0) { /* invalid byte: encode as U+FFFD like errors='replace' */
			cp = 0xfffd;
			k = 1;
		}
		i += k;
		switch (cp) {
		case '"': r = att_buf_append(b, "\\\"", 2); break;
		case '\\': r = att_buf_append(b, "\\\\", 2); break;
		case '\n': r = att_buf_append(b, "\\n", 2); break;
		case '\r': r = att_buf_append(b, "\\r", 2); break;
		case '\t': r = att_buf_append(b, "\\t", 2); break;
		case '\b': r = att_buf_append(b, "\\b", 2); break;
		case '\f': r = att_buf_append(b, "\\f", 2); break;
		default:
			if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000 && cp != 0x7f)) {
				r = att_buf_printf(b, "\\u%04x", cp);
			} else if (cp == 0x7f || cp < 0x7f) {
				char ch = (char)cp;
				r = att_buf_append(b, &ch, 1);
			} else {
				uint32_t v = cp - 0x10000;

				r = att_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (v >> 10),
						   0xdc00 + (v & 0x3ff));
			}
		}
	}
	if (r == 0)
		r = att_buf_append(b, "\"", 1);
	return r;
}

static int py_json_field(struct att_buf *b, const char *key, const char *val, bool first)
{
	int r = att_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);

	if (r < 0)
		return r;
	return val ? py_json_string(b, val) : att_buf_puts(b, "null");
}

char *att_audit_canonical_json(const struct att_audit_entry *e)
{
	struct att_buf b;
	int r;

	att_buf_init(&b, 1 << 20);
	r = att_buf_puts(&b, "{");
	r = r ? r : py_json_field(&b, "action", e->action, true);
	r = r ? r : py_json_field(&b, "detail", e->detail, false);
	r = r ? r : py_json_field(&b, "machine_id", e->machine_id, false);
	r = r ? r : py_json_field(&b, "new_state", e->new_state, false);
	r = r ? r : py_json_field(&b, "operator_cn", e->operator_cn, false);
	r = r ? r : py_json_field(&b, "prev_hash", e->prev_hash, false);
	r = r ? r : py_json_field(&b, "prev_state", e->prev_state, false);
	r = r ? r : py_json_field(&b, "timestamp", e->timestamp, false);
	r = r ? r : att_buf_puts(&b, "}");
	if (r < 0) {
		att_buf_release(&b);
		return NULL;
	}
	return att_buf_steal(&b, NULL);
}

int att_audit_compute_hash(const struct att_audit_entry *e, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *js = att_audit_canonical_json(e);

	if (!js)
		return ATT_E_NOMEM;
	SHA256((const unsigned char *)js, strlen(js), md);
	att_hex_encode(md, sizeof(md), out);
	free(js);
	return 0;
}

int att_audit_append(struct att_dbc *c, const char *operator_cn, const char *action,
		     const char *machine_id, const char *prev_state, const char *new_state,
		     const char *detail, const char *source_ip)
{
	struct att_audit_entry e = { 0 };
	struct att_stmt *s;
	char prev[65] = ATT_AUDIT_GENESIS, hash[65], ts[32];
	int r;

	r = att_dbc_query(c, &s, "SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1", "");
	if (r < 0)
		return r;
	r = att_stmt_next(s);
	if (r == 1) {
		const char *h = att_stmt_text(s, 0);

		if (!h || strlen(h) != 64) {
			att_stmt_done(s);
			return ATT_E_DB;
		}
		memcpy(prev, h, 65);
	}
	att_stmt_done(s);
	if (r < 0)
		return r;
	att_time_iso(att_now(), ts);
	e.timestamp = ts;
	e.operator_cn = operator_cn;
	e.action = action;
	e.machine_id = machine_id;
	e.prev_state = prev_state;
	e.new_state = new_state;
	e.detail = detail;
	e.prev_hash = prev;
	r = att_audit_compute_hash(&e, hash);
	if (r < 0)
		return r;
	r = att_dbc_exec(c,
			 "INSERT INTO audit_log (timestamp, operator_cn, action, machine_id, prev_state,"
			 " new_state, detail, prev_hash, entry_hash, source_ip)"
			 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			 "ssssssssss", ts, operator_cn, action, machine_id, prev_state, new_state,
			 detail, prev, hash, source_ip);
	return r < 0 ? r : 0;
}

int att_audit_verify(struct att_dbc *c, struct att_audit_verify *ret)
{
	return att_audit_verify_probe(c, 0, NULL, ret);
}

int att_audit_verify_probe(struct att_dbc *c, int64_t pos, char hash_at[65], struct att_audit_verify *ret)
{
	struct att_audit_verify v;
	struct att_stmt *s;
	char expected_prev[65] = ATT_AUDIT_GENESIS;
	int r;

	memset(&v, 0, sizeof(v));
	v.valid = true;
	if (hash_at)
		hash_at[0] = 0;
	r = att_dbc_query(c, &s,
			  "SELECT id, timestamp, operator_cn, action, machine_id, prev_state, new_state,"
			  " detail, prev_hash, entry_hash FROM audit_log ORDER BY id ASC",
			  "");
	if (r < 0)
		return r;
	while ((r = att_stmt_next(s)) == 1) {
		struct att_audit_entry e;
		char hash[65];

		e.id = att_stmt_int(s, 0);
		e.timestamp = att_stmt_text(s, 1);
		e.operator_cn = att_stmt_text(s, 2);
		e.action = att_stmt_text(s, 3);
		e.machine_id = att_stmt_text(s, 4);
		e.prev_state = att_stmt_text(s, 5);
		e.new_state = att_stmt_text(s, 6);
		e.detail = att_stmt_text(s, 7);
		e.prev_hash = att_stmt_text(s, 8);
		e.entry_hash = att_stmt_text(s, 9);
		v.entries++;
		if (!e.prev_hash || strcmp(e.prev_hash, expected_prev) != 0) {
			v.valid = false;
			v.first_invalid_id = e.id;
			snprintf(v.error, sizeof(v.error), "prev_hash mismatch at entry id=%lld",
				 (long long)e.id);
			break;
		}
		if (!e.timestamp || !e.operator_cn || !e.action ||
		    att_audit_compute_hash(&e, hash) < 0 || !e.entry_hash ||
		    strcmp(hash, e.entry_hash) != 0) {
			v.valid = false;
			v.first_invalid_id = e.id;
			snprintf(v.error, sizeof(v.error), "entry_hash mismatch at entry id=%lld",
				 (long long)e.id);
			break;
		}
		memcpy(expected_prev, e.entry_hash, 65);
		if (hash_at && v.entries == pos)
			memcpy(hash_at, e.entry_hash, 65);
	}
	att_stmt_done(s);
	if (r < 0)
		return r;
	if (v.valid && v.entries > 0)
		memcpy(v.root_hash, expected_prev, 65);
	*ret = v;
	return 0;
}
