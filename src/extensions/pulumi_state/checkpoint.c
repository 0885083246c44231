/* checkpoint.c - the three ways the CLI saves a snapshot during an
 * update (pulumi.md §5): a plain checkpoint (re-serialized deployment),
 * a verbatim one (stored byte for byte: it is the base of the next
 * delta) and a delta (byte-offset edits on the stored text, checked
 * with SHA-256).  Sequence numbers make retries idempotent; a rejected
 * delta changes nothing and leaves its number free for the CLI's
 * verbatim fallback.
 *
 * A delta is not written as a new full text: it is kept as a row of
 * extension_pulumi_state_deltas on top of the stored text (the stack's
 * checkpoint at the update's base_seq), and the current text of an
 * update stays in a small in-process cache keyed by (update, sequence),
 * so a 1 KiB delta on a 10 MiB checkpoint costs the hash, not a 10 MiB
 * write.  Readers materialize (stored text + deltas); complete, cancel,
 * rename, a new start and every COMPACT_EVERY deltas write the full
 * text again.  The cache is only an optimization: a miss (another
 * replica, a restart) materializes from the database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pulumi.h"

#define COMPACT_EVERY 64
#define SLOTS 4	/* running updates whose text is kept (each up to ITL_PULUMI_MAX_CHECKPOINT_BYTES) */

/* ---- the current text of running updates, in process ---------------------------- */

static struct slot {
	char update[40];
	int64_t seq;
	char *text;
	size_t len;
} slots[SLOTS];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* Take the text of (update, seq) out of the cache (NULL: not there). */
static char *cache_take(const char *update, int64_t seq, size_t *ret_len)
{
	char *t = NULL;

	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < SLOTS && !t; i++)
		if (slots[i].text && strcmp(slots[i].update, update) == 0) {
			if (slots[i].seq == seq) {
				t = slots[i].text;
				*ret_len = slots[i].len;
			} else {
				free(slots[i].text);	/* stale: another replica moved on */
			}
			slots[i].text = NULL;
		}
	pthread_mutex_unlock(&cache_mu);
	return t;
}

/* Keep text (taken over) as the text of (update, seq). */
static void cache_put(const char *update, int64_t seq, char *text, size_t len)
{
	int victim = 0;

	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < SLOTS; i++) {
		if (slots[i].text && strcmp(slots[i].update, update) == 0) {
			victim = i;
			break;
		}
		if (!slots[i].text || slots[i].seq < slots[victim].seq)
			victim = i;
	}
	free(slots[victim].text);
	snprintf(slots[victim].update, sizeof(slots[victim].update), "%s", update);
	slots[victim].seq = seq;
	slots[victim].text = text;
	slots[victim].len = len;
	pthread_mutex_unlock(&cache_mu);
}

void pl_checkpoint_stash(struct pl_req *r, const char *update, int64_t seq, char *text, size_t len)
{
	free(r->cache_text);
	snprintf(r->cache_update, sizeof(r->cache_update), "%s", update);
	r->cache_seq = seq;
	r->cache_text = text;
	r->cache_len = len;
}

void pl_checkpoint_committed(struct pl_req *r, bool ok)
{
	if (r->cache_text && ok)
		cache_put(r->cache_update, r->cache_seq, r->cache_text, r->cache_len);
	else
		free(r->cache_text);
	r->cache_text = NULL;
}

void pl_checkpoint_forget(const char *update)
{
	size_t len;

	free(cache_take(update, -1, &len));
}

/* ---- stored text + delta rows ----------------------------------------------------- */

static int apply_stored(char **text, size_t *len, const char *edits)
{
	json_t *arr = json_loads(edits, JSON_ALLOW_NUL, NULL);
	struct pl_edit *e = NULL;
	size_t n = 0, outlen;
	char *out;
	int rc = pl_edits_parse(arr, &e, &n);

	if (rc == PL_OK)
		rc = pl_delta_apply(*text, *len, e, n, (size_t)1 << 31, &out, &outlen);
	free(e);
	json_decref(arr);
	if (rc != PL_OK)
		return ATT_EXT_ERROR;
	free(*text);
	*text = out;
	*len = outlen;
	return 0;
}

int pl_checkpoint_text(struct att_ext_db *db, const char *stack_id, char **ret, size_t *ret_len, int *ret_ndeltas)
{
	struct att_ext_rows *rows;
	char *text = NULL;
	size_t len = 0;
	int rc, n = 0;

	rc = pl_host->db_query(db, &rows, "SELECT checkpoint FROM extension_pulumi_state_stacks WHERE id = ?", "s",
			       stack_id);
	if (rc < 0)
		return rc;
	if (pl_host->rows_next(rows) == 1 && pl_host->rows_text(rows, 0)) {
		text = strdup(pl_host->rows_text(rows, 0));
		len = text ? strlen(text) : 0;
		rc = text ? 0 : ATT_EXT_ERROR;
	}
	pl_host->rows_done(rows);
	if (rc < 0 || !text) {
		*ret = NULL;
		return rc;
	}
	rc = pl_host->db_query(db, &rows,
			       "SELECT d.edits FROM extension_pulumi_state_deltas d JOIN extension_pulumi_state_updates u"
			       " ON u.id = d.update_id WHERE u.stack_id = ? AND d.seq > u.base_seq ORDER BY d.seq",
			       "s", stack_id);
	if (rc == 0) {
		while (rc == 0 && pl_host->rows_next(rows) == 1) {
			rc = apply_stored(&text, &len, pl_host->rows_text(rows, 0));
			n++;
		}
		pl_host->rows_done(rows);
	}
	if (rc < 0) {
		free(text);
		return rc;
	}
	*ret = text;
	*ret_len = len;
	if (ret_ndeltas)
		*ret_ndeltas = n;
	return 0;
}

/* Write the full text (stored + deltas) back and drop the delta rows. */
int pl_checkpoint_compact(struct att_ext_db *db, const char *stack_id)
{
	char *text = NULL;
	size_t len;
	int n = 0, rc = pl_checkpoint_text(db, stack_id, &text, &len, &n);

	if (rc >= 0 && text && n > 0)
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET checkpoint = ? WHERE id = ?", "ss",
				      text, stack_id);
	if (rc >= 0 && n > 0)
		rc = pl_host->db_exec(db,
				      "UPDATE extension_pulumi_state_updates SET base_seq = seq WHERE stack_id = ? AND seq > base_seq",
				      "s", stack_id);
	if (rc >= 0)
		rc = pl_host->db_exec(db,
				      "DELETE FROM extension_pulumi_state_deltas WHERE update_id IN"
				      " (SELECT id FROM extension_pulumi_state_updates WHERE stack_id = ?)",
				      "s", stack_id);
	free(text);
	return rc < 0 ? rc : 0;
}

/* A full text replaces whatever was stored and every delta on it. */
static int store(struct att_ext_db *db, const struct pl_update *u, const char *text, int64_t seq)
{
	int rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET checkpoint = ? WHERE id = ?", "ss",
				  text, u->stack_id);

	if (rc >= 0)
		rc = pl_host->db_exec(db,
				      "DELETE FROM extension_pulumi_state_deltas WHERE update_id IN"
				      " (SELECT id FROM extension_pulumi_state_updates WHERE stack_id = ?)",
				      "s", u->stack_id);
	if (rc >= 0)
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_updates SET seq = ?, base_seq = ? WHERE id = ?",
				      "iis", seq > 0 ? seq : u->seq, seq > 0 ? seq : u->seq, u->id);
	return rc;
}

static int refuse(struct pl_req *r, int status, const char *msg)
{
	pl_error(r, status, "%s", msg);
	return ATT_EXT_PERMANENT;
}

static bool dry(struct pl_req *r, const struct pl_update *u)
{
	if (u->dry_run)
		pl_error(r, 400, "Bad Request: a preview saves no checkpoints");
	return u->dry_run;
}

/* {"isInvalid":false,"version":3,"deployment":{...}} */
static int do_plain(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		    json_t **reply)
{
	const json_t *v = json_object_get(j, "version");
	size_t off, len;
	char *text;
	int rc;

	(void)state;
	(void)reply;
	if (dry(r, u))
		return ATT_EXT_PERMANENT;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 4 ||
	    !json_is_object(json_object_get(j, "deployment")) ||
	    pl_json_member((const char *)r->body, r->len, "deployment", &off, &len) < 0 || memchr(r->body, 0, r->len))
		return refuse(r, 400, "Bad Request: expected {\"version\": 1-4, \"deployment\": {...}}");
	text = malloc(len + 40);
	if (!text)
		return ATT_EXT_ERROR;
	snprintf(text, 40, "{\"version\":%d,\"deployment\":", (int)json_integer_value(v));
	memcpy(text + strlen(text), r->body + off, len);
	memcpy(text + strlen("{\"version\":0,\"deployment\":") + len, "}", 2);
	rc = store(db, u, text, 0);
	free(text);
	pl_checkpoint_forget(u->id);
	return rc;
}

void pl_h_checkpoint(struct pl_req *r)
{
	pl_update_write(r, do_plain, false);
}

static int64_t seq_of(const json_t *j)
{
	const json_t *s = json_object_get(j, "sequenceNumber");

	return json_is_integer(s) && json_integer_value(s) > 0 ? json_integer_value(s) : -1;
}

/* {"version":3,"untypedDeployment":<T>,"sequenceNumber":n} */
static int do_verbatim(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		       json_t **reply)
{
	const json_t *t = json_object_get(j, "untypedDeployment"), *v = json_object_get(t, "version");
	int64_t seq = seq_of(j);
	size_t off, len;
	char *text;
	int rc;

	(void)state;
	(void)reply;
	if (dry(r, u))
		return ATT_EXT_PERMANENT;
	if (seq < 0 || !json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 4 ||
	    !json_is_object(json_object_get(t, "deployment")) ||
	    pl_json_member((const char *)r->body, r->len, "untypedDeployment", &off, &len) < 0 ||
	    memchr(r->body, 0, r->len))
		return refuse(r, 400, "Bad Request: expected {\"untypedDeployment\": {\"version\": 1-4, \"deployment\": {...}}, \"sequenceNumber\": n > 0}");
	if (seq <= u->seq)	/* a retry of a save already applied */
		return 0;
	text = strndup((const char *)r->body + off, len);
	if (!text)
		return ATT_EXT_ERROR;
	rc = store(db, u, text, seq);
	if (rc >= 0)
		pl_checkpoint_stash(r, u->id, seq, text, len);	/* the next delta's base */
	else
		free(text);
	return rc;
}

void pl_h_checkpoint_verbatim(struct pl_req *r)
{
	pl_update_write(r, do_verbatim, false);
}

static bool hash_ok(const char *h)
{
	if (!h || strlen(h) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') || (h[i] >= 'A' && h[i] <= 'F')))
			return false;
	return true;
}

/* Apply the edits to the text of this update's last save. */
static int apply(struct pl_req *r, struct att_ext_db *db, const struct pl_update *u, const json_t *edits,
		 const char *want, int64_t seq)
{
	struct pl_edit *e = NULL;
	size_t n = 0, outlen = 0, plen = 0, off, elen;
	char *out = NULL, *prev, got[65], *raw;
	int rc = pl_edits_parse(edits, &e, &n);

	if (rc == PL_EMALFORMED)
		return refuse(r, 400, "Bad Request: deploymentDelta must be an array of {Span: {start: {offset}, end: {offset}}, NewText}");
	if (rc < 0)
		return ATT_EXT_ERROR;
	prev = cache_take(u->id, u->seq, &plen);
	if (!prev && (rc = pl_checkpoint_text(db, u->stack_id, &prev, &plen, NULL)) < 0) {
		free(e);
		return rc;
	}
	if (!prev) {
		free(e);
		return refuse(r, 409, "Conflict: no checkpoint to apply a delta to");
	}
	rc = pl_delta_apply(prev, plen, e, n, pl_cfg.max_inflated, &out, &outlen);
	free(e);
	if (rc == PL_EMALFORMED)
		rc = refuse(r, 400, "Bad Request: a delta edit lies outside the previous checkpoint or overlaps another");
	else if (rc == PL_ETOOBIG)
		rc = refuse(r, 413, "Payload Too Large: the checkpoint would exceed ITL_PULUMI_MAX_CHECKPOINT_BYTES");
	else if (rc < 0)
		rc = ATT_EXT_ERROR;
	if (rc < 0) {
		cache_put(u->id, u->seq, prev, plen);	/* still the current text */
		return rc;
	}
	pl_sha256_hex(out, outlen, got);
	if (strcasecmp(got, want) != 0)
		rc = refuse(r, 409, "Conflict: checkpointHash does not match the checkpoint the delta produces");
	else if (memchr(out, 0, outlen))
		rc = refuse(r, 400, "Bad Request: the checkpoint would contain a NUL byte");
	if (rc < 0) {
		cache_put(u->id, u->seq, prev, plen);
		free(out);
		return rc;
	}
	free(prev);
	if (seq - u->base_seq >= COMPACT_EVERY) {
		rc = store(db, u, out, seq);	/* now and then the full text again */
	} else if (pl_json_member((const char *)r->body, r->len, "deploymentDelta", &off, &elen) < 0 ||
		   !(raw = strndup((const char *)r->body + off, elen))) {
		rc = ATT_EXT_ERROR;
	} else {
		/* the edits exactly as received: the stored text plus these rows is the state */
		rc = pl_host->db_exec(db, "INSERT INTO extension_pulumi_state_deltas (update_id, seq, edits) VALUES (?, ?, ?)",
				      "sis", u->id, seq, raw);
		free(raw);
		if (rc >= 0)
			rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_updates SET seq = ? WHERE id = ?", "is",
					      seq, u->id);
	}
	if (rc >= 0)
		pl_checkpoint_stash(r, u->id, seq, out, outlen);
	else
		free(out);
	return rc;
}

/* {"version":3,"checkpointHash":H,"sequenceNumber":n,"deploymentDelta":[edits]} */
static int do_delta(struct pl_req *r, struct att_ext_db *db, struct pl_update *u, int state, json_t *j,
		    json_t **reply)
{
	const char *h = json_string_value(json_object_get(j, "checkpointHash"));
	int64_t seq = seq_of(j);

	(void)state;
	(void)reply;
	if (dry(r, u))
		return ATT_EXT_PERMANENT;
	if (seq < 0 || !hash_ok(h) || !json_is_array(json_object_get(j, "deploymentDelta")))
		return refuse(r, 400, "Bad Request: expected {\"checkpointHash\": <sha256 hex>, \"sequenceNumber\": n > 0, \"deploymentDelta\": [...]}");
	if (seq <= u->seq)	/* a retry: applying it twice would corrupt the text */
		return 0;
	if (u->seq == 0)
		return refuse(r, 409, "Conflict: the first save of an update must be verbatim");
	return apply(r, db, u, json_object_get(j, "deploymentDelta"), h, seq);
}

void pl_h_checkpoint_delta(struct pl_req *r)
{
	pl_update_write(r, do_delta, false);
}
