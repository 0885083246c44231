/* secrets.c - the node's secrets from the attestation secret vault (see
 * secrets.h).  The answer is as untrusted as any other: the envelope
 * must open with this TPM, the document must be for this machine, every
 * name must be a plain file name; nothing is written unless all of it
 * checks out. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/act.h"
#include "agent/answer.h"
#include "agent/secrets.h"
#include "base/err.h"
#include "base/util.h"
#include "obs/log.h"
#include "tpm/tpm.h"

#define LOGR "attest-agent"
#define SECRETS_MEDIA "application/vnd.itl.secrets.encrypted+json"
#define FAIL(...) (snprintf(reterr, errlen, __VA_ARGS__), ATT_E_PARSE)

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
			return false;
	}
	return true;
}

void att_agent_secrets_release(struct att_agent_secrets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].value) {
			att_wipe(s->v[i].value, s->v[i].len);
			free(s->v[i].value);
		}
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int one_secret(json_t *o, size_t i, struct att_agent_secrets *ret, char *reterr, size_t errlen)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *b64 = json_string_value(json_object_get(o, "value_b64"));
	struct att_agent_secret *s = &ret->v[i];

	if (!json_is_object(o) || !name_ok(name))
		return FAIL("secrets[%zu].name: not a plain name of [A-Za-z0-9._-]", i);
	for (size_t j = 0; j < i; j++)
		if (strcmp(ret->v[j].name, name) == 0)
			return FAIL("secrets[%zu].name: '%s' twice", i, name);
	if (!b64 || att_b64_decode(b64, strlen(b64), &s->value, &s->len) < 0)
		return FAIL("secrets[%zu].value_b64: not base64", i);
	snprintf(s->name, sizeof(s->name), "%s", name);
	ret->n = i + 1;
	return 0;
}

int att_agent_secrets_parse(const char *json, size_t len, const char *machine_id, struct att_agent_secrets *ret,
			    char *reterr, size_t errlen)
{
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL), *arr, *o;
	struct att_agent_secrets s = { 0 };
	const char *mid;
	size_t i;
	int r = 0;

	arr = json_object_get(doc, "secrets");
	mid = json_string_value(json_object_get(doc, "machine_id"));
	if (!json_is_object(doc) || !json_is_array(arr) || !mid)
		r = FAIL("the delivery is not {\"machine_id\", \"secrets\": [...]}");
	else if (strcmp(mid, machine_id) != 0)
		r = FAIL("machine_id: the delivery is for another machine");
	else if (json_array_size(arr) > ATT_AGENT_MAX_SECRETS)
		r = FAIL("secrets: more than %d", ATT_AGENT_MAX_SECRETS);
	else if (json_array_size(arr) && !(s.v = calloc(json_array_size(arr), sizeof(*s.v))))
		r = ATT_E_NOMEM;
	if (r == 0) {
		json_array_foreach(arr, i, o) {
			if ((r = one_secret(o, i, &s, reterr, errlen)) < 0)
				break;
		}
	}
	json_decref(doc);
	if (r < 0) {
		if (s.v && s.n < json_array_size(arr) && s.v[s.n].value) {	/* the failed entry's value */
			att_wipe(s.v[s.n].value, s.v[s.n].len);
			free(s.v[s.n].value);
			s.v[s.n].value = NULL;
		}
		att_agent_secrets_release(&s);
		return r;
	}
	*ret = s;
	return 0;
}

/* ---- files ---------------------------------------------------------------------- */

static int write_one(const char *dir, const struct att_agent_secret *s, char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, s->name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, s->name);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return snprintf(err, errlen, "%s: %s", tmp, strerror(errno)), ATT_E_IO;
	while (off < s->len) {
		ssize_t w = write(fd, s->value + off, s->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != s->len || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return ATT_E_IO;
	}
	return 0;
}

/* Files of secrets that are no longer delivered (plain names only). */
static void remove_stale(const char *dir, const struct att_agent_secrets *s)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		bool keep = !name_ok(e->d_name);

		for (size_t i = 0; i < s->n && !keep; i++)
			keep = strcmp(s->v[i].name, e->d_name) == 0;
		if (!keep && unlinkat(dirfd(d), e->d_name, 0) == 0)
			att_log_info(LOGR, "secret %s is no longer delivered: removed", e->d_name);
	}
	closedir(d);
}

static int write_all(const char *dir, const struct att_agent_secrets *s, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return snprintf(err, errlen, "%s: %s", dir, strerror(errno)), ATT_E_IO;
	for (size_t i = 0; i < s->n; i++)
		if (write_one(dir, &s->v[i], err, errlen) < 0)
			return ATT_E_IO;
	remove_stale(dir, s);
	return 0;
}

/* ---- the exchange ------------------------------------------------------------------ */

static char *delivery_body(const char *nonce_id, const struct att_tpm_quote_out *q)
{
	char *a = att_b64_encode(q->attest, q->attest_len), *sg = att_b64_encode(q->sig, q->sig_len), *s = NULL;
	json_t *pcrs = json_object(), *o;

	for (size_t i = 0; pcrs && i < q->pcrs.n; i++) {
		char key[32], hex[129];

		snprintf(key, sizeof(key), "%s:%u", att_tpm_bank_name(q->pcrs.v[i].bank), q->pcrs.v[i].index);
		att_hex_encode(q->pcrs.v[i].value, q->pcrs.v[i].len, hex);
		json_object_set_new(pcrs, key, json_string(hex));
	}
	o = a && sg && pcrs ? json_pack("{s:s,s:s,s:s,s:O}", "nonce_id", nonce_id, "pcr_quote", a, "pcr_signature", sg,
					"pcr_values", pcrs)
			    : NULL;
	if (o)
		s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(pcrs);
	free(a);
	free(sg);
	return s;
}

/* Challenge, quote, POST .../delivery: the sealed answer in r. */
static enum att_poll request(struct att_agent *a, struct att_http_resp *r)
{
	static const char *json_h[] = { "Accept: application/json", NULL }, *sealed_h[] = { "Accept: " SECRETS_MEDIA, NULL };
	struct att_answer_challenge ch;
	struct att_tpm_quote_out q = { 0 };
	char url[ATT_URL_MAX], path[160], err[512], *body = NULL;
	enum att_poll p;

	if (att_url_join(a->o->server, "/api/v1/attest/challenge", url, sizeof(url)) < 0)
		return ATT_POLL_FAILED;
	p = att_agent_call(a, "GET", url, json_h, NULL, ATT_ANSWER_MAX_BODY, r, "secrets: challenge");
	if (p != ATT_POLL_OK)
		return p;
	if (att_answer_challenge_parse(r->body, r->body_len, &ch, err, sizeof(err)) < 0)
		return att_agent_refuse(a, "secrets: challenge answer", err);
	att_http_resp_release(r);
	if (att_tpmdev_quote(a->dev, ch.nonce, ch.nonce_len, &a->o->pcrs, &q, err, sizeof(err)) < 0) {
		att_log_warning(LOGR, "secrets: quote: %s", err);
		att_agent_note(a, "secrets: quote: %s", err);
		return ATT_POLL_FAILED;
	}
	body = delivery_body(ch.nonce_id, &q);
	att_tpm_quote_out_release(&q);
	snprintf(path, sizeof(path), "/api/v1/secrets/machines/%s/delivery", a->st.machine_id);
	if (!body || att_url_join(a->o->server, path, url, sizeof(url)) < 0) {
		free(body);
		return ATT_POLL_FAILED;
	}
	p = att_agent_call(a, "POST", url, sealed_h, body, ATT_ANSWER_MAX_CONFIG, r, "secrets");
	free(body);
	return p;
}

enum att_poll att_agent_fetch_secrets(struct att_agent *a)
{
	struct att_http_resp r = { 0 };
	struct att_agent_secrets s = { 0 };
	uint8_t *pt = NULL;
	size_t pl = 0;
	char err[512];
	enum att_poll p;

	if (!a->o->secrets_dir || !a->have_node || !a->st.ak_bound)
		return ATT_POLL_OK;
	p = request(a, &r);
	if (p != ATT_POLL_OK)
		goto out;
	if (strcmp(r.content_type, SECRETS_MEDIA) != 0) {
		p = att_agent_refuse(a, "secrets", "the answer is not the TPM-sealed envelope");
		goto out;
	}
	p = att_agent_open_envelope(a, &r, "secrets envelope", &pt, &pl);
	if (p != ATT_POLL_OK)
		goto out;
	if (att_agent_secrets_parse((const char *)pt, pl, a->st.machine_id, &s, err, sizeof(err)) < 0) {
		p = att_agent_refuse(a, "secrets", err);
		goto out;
	}
	if (write_all(a->o->secrets_dir, &s, err, sizeof(err)) < 0) {
		att_log_error(LOGR, "secrets: %s", err);
		att_agent_note(a, "secrets: %s", err);
		p = ATT_POLL_FAILED;
		goto out;
	}
	att_log_info(LOGR, "secrets: %zu secret(s) opened with the TPM and written to %s", s.n, a->o->secrets_dir);
out:
	att_agent_secrets_release(&s);
	if (pt) {
		att_wipe(pt, pl);
		free(pt);
	}
	att_http_resp_release(&r);
	return p;
}
