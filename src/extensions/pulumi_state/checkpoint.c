/* checkpoint.c - the three ways the CLI saves a snapshot during an
 * update (pulumi.md §5): a plain checkpoint (re-serialized deployment),
 * a verbatim one (stored byte for byte: it is the base of the next
 * delta) and a delta (byte-offset edits on the stored text, checked
 * with SHA-256).  Sequence numbers make retries idempotent; a rejected
 * delta changes nothing and leaves its number free for the CLI's
 * verbatim fallback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pulumi.h"

static int store(struct att_ext_db *db, const struct pl_update *u, const char *text, int64_t seq)
{
	int rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_stacks SET checkpoint = ? WHERE id = ?", "ss",
				  text, u->stack_id);

	if (rc >= 0 && seq > 0)
		rc = pl_host->db_exec(db, "UPDATE extension_pulumi_state_updates SET seq = ? WHERE id = ?", "is", seq,
				      u->id);
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

/* Apply the edits to the stored text of this update's last save. */
static int apply(struct pl_req *r, struct att_ext_db *db, const struct pl_update *u, const json_t *edits,
		 const char *want, int64_t seq)
{
	struct att_ext_rows *rows;
	struct pl_edit *e = NULL;
	size_t n = 0, outlen = 0;
	char *out = NULL, got[65];
	int rc = pl_edits_parse(edits, &e, &n);

	if (rc == PL_EMALFORMED)
		return refuse(r, 400, "Bad Request: deploymentDelta must be an array of {Span: {start: {offset}, end: {offset}}, NewText}");
	if (rc < 0)
		return ATT_EXT_ERROR;
	rc = pl_host->db_query(db, &rows, "SELECT checkpoint FROM extension_pulumi_state_stacks WHERE id = ?", "s",
			       u->stack_id);
	if (rc < 0) {
		free(e);
		return rc;
	}
	rc = pl_host->rows_next(rows);
	if (rc == 1 && pl_host->rows_text(rows, 0)) {
		const char *prev = pl_host->rows_text(rows, 0);

		rc = pl_delta_apply(prev, strlen(prev), e, n, pl_cfg.max_inflated, &out, &outlen);
		if (rc == PL_EMALFORMED)
			rc = refuse(r, 400, "Bad Request: a delta edit lies outside the previous checkpoint or overlaps another");
		else if (rc == PL_ETOOBIG)
			rc = refuse(r, 413, "Payload Too Large: the checkpoint would exceed ITL_PULUMI_MAX_CHECKPOINT_BYTES");
		else if (rc < 0)
			rc = ATT_EXT_ERROR;
	} else if (rc >= 0) {
		rc = refuse(r, 409, "Conflict: no checkpoint to apply a delta to");
	}
	pl_host->rows_done(rows);
	free(e);
	if (rc < 0)
		return rc;
	pl_sha256_hex(out, outlen, got);
	if (strcasecmp(got, want) != 0)
		rc = refuse(r, 409, "Conflict: checkpointHash does not match the checkpoint the delta produces");
	else if (memchr(out, 0, outlen))
		rc = refuse(r, 400, "Bad Request: the checkpoint would contain a NUL byte");
	else
		rc = store(db, u, out, seq);
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
