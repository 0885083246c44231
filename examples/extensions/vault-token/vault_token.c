/* vault_token.c - the seeds' "Vault dynamic secrets" integration as an
 * attestd extension (ABI v1): when a machine comes online, create a
 * short-lived, node-scoped HashiCorp Vault token and hand it to the node
 * through the attestation secret vault (docs/secrets.md), from where only
 * that machine's TPM can open it.
 *
 * Vault API (token auth method, https://developer.hashicorp.com/vault/api-docs/auth/token):
 *   POST $VAULT_ADDR/v1/auth/token/create
 *   X-Vault-Token: $VAULT_TOKEN        (X-Vault-Namespace: $VAULT_NAMESPACE, when set)
 *   {"policies": [...], "ttl": "1h", "renewable": true, "display_name": "attest-<hostname>",
 *    "meta": {"ek_fingerprint": "...", "hostname": "...", "machine_id": "..."}}
 *   -> 200 {"auth": {"client_token": "hvs....", "accessor": "...", "lease_duration": 3600, ...}}
 *
 * Configuration (environment of attestd):
 *   VAULT_ADDR (required), VAULT_TOKEN (required: a token allowed to create
 *   child tokens with these policies), VAULT_NAMESPACE, VAULT_CACERT,
 *   VAULT_TOKEN_POLICIES (comma list, default node-disk-unseal),
 *   VAULT_TOKEN_TTL (default 1h), VAULT_TOKEN_SECRET_NAME (default
 *   vault-token), VAULT_TOKEN_EVENT (default node.online).
 *
 * Events arrive at least once: an event already handled (table
 * extension_vault_token_issued, keyed by event id) is skipped; the row
 * keeps the token's accessor — never the token — so an operator can revoke
 * it (vault token revoke -accessor).  Vault 4xx is permanent for that
 * event; network errors and 5xx are retried by attestd.
 *
 * Build:  cc -shared -fPIC -I<attestation>/include -o vault_token.so vault_token.c -lcurl -ljansson
 * Load:   ITL_EXTENSIONS=/path/to/vault_token.so attestd */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "attest/extension.h"

static const struct att_ext_host *host;

static struct {
	char *addr, *token, *ns, *cacert, *policies, *ttl, *secret_name, *event;
} conf;

static const struct att_ext_migration v1 = {
	.version = 1,
	.name = "Vault tokens issued per event",
	.sqlite = "CREATE TABLE extension_vault_token_issued (event_id BIGINT PRIMARY KEY, machine_id TEXT NOT NULL,"
		  " accessor TEXT, issued_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
};

static char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return strdup(v && *v ? v : def);
}

/* A field of the event: top level, else under "node" (either layout). */
static const char *field(const struct att_ext_event *ev, const char *name)
{
	char ptr[64];
	const char *v = host->event_field(ev, name);

	if (v)
		return v;
	snprintf(ptr, sizeof(ptr), "/node/%s", name);
	return host->event_field(ev, ptr);
}

static char *request_body(const struct att_ext_event *ev, const char *machine_id)
{
	const char *host_name = field(ev, "hostname"), *fp = field(ev, "ek_fingerprint");
	json_t *pol = json_array(), *o;
	char *list = strdup(conf.policies), *save = NULL, *s;

	for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save))
		if (*p)
			json_array_append_new(pol, json_string(p));
	free(list);
	o = json_pack("{s:o,s:s,s:b,s:s+,s:{s:s,s:s,s:s}}", "policies", pol, "ttl", conf.ttl, "renewable", 1,
		      "display_name", "attest-", host_name ? host_name : machine_id, "meta", "ek_fingerprint",
		      fp ? fp : "", "hostname", host_name ? host_name : "", "machine_id", machine_id);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

struct body {
	char *p;
	size_t len;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct body *b = ud;
	char *np;

	if (b->len + sz * n > 65536 || !(np = realloc(b->p, b->len + sz * n + 1)))
		return 0;
	memcpy(np + b->len, p, sz * n);
	b->p = np;
	b->len += sz * n;
	b->p[b->len] = 0;
	return sz * n;
}

/* POST to Vault; the HTTP status (0: no answer) and the body. */
static long vault_create(const char *req, struct body *resp)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char url[1024], line[1024];
	long code = 0;

	if (!h)
		return 0;
	snprintf(url, sizeof(url), "%s/v1/auth/token/create", conf.addr);
	snprintf(line, sizeof(line), "X-Vault-Token: %s", conf.token);
	hdr = curl_slist_append(hdr, line);
	if (conf.ns[0]) {
		snprintf(line, sizeof(line), "X-Vault-Namespace: %s", conf.ns);
		hdr = curl_slist_append(hdr, line);
	}
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	if (conf.cacert[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, conf.cacert);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	memset(line, 0, sizeof(line));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return code;
}

static int already_issued(struct att_ext *ext, int64_t event_id)
{
	struct att_ext_db *db = host->db_acquire(ext);
	struct att_ext_rows *rows;
	int seen = -1;

	if (!db)
		return -1;
	if (host->db_query(db, &rows, "SELECT 1 FROM extension_vault_token_issued WHERE event_id = ?", "i", event_id) ==
	    ATT_EXT_OK) {
		seen = host->rows_next(rows) == 1;
		host->rows_done(rows);
	}
	host->db_release(ext, db);
	return seen;
}

static int remember(struct att_ext *ext, int64_t event_id, const char *machine_id, const char *accessor)
{
	struct att_ext_db *db = host->db_acquire(ext);
	int r;

	if (!db)
		return ATT_EXT_ERROR;
	r = host->db_exec(db,
			  "INSERT INTO extension_vault_token_issued (event_id, machine_id, accessor) VALUES (?, ?, ?)"
			  " ON CONFLICT (event_id) DO NOTHING",
			  "iss", event_id, machine_id, accessor);
	host->db_release(ext, db);
	return r < 0 ? ATT_EXT_ERROR : ATT_EXT_OK;
}

/* Hand the token to the node through the secret vault. */
static int store(struct att_ext *ext, const struct att_ext_event *ev, const char *machine_id, json_t *auth)
{
	const char *tok = json_string_value(json_object_get(auth, "client_token"));
	json_int_t lease = json_integer_value(json_object_get(auth, "lease_duration"));
	int r;

	if (!tok || !*tok) {
		host->log(ext, ATT_EXT_LOG_ERROR, "Vault answered without auth.client_token for machine %s", machine_id);
		return ATT_EXT_PERMANENT;
	}
	r = host->secret_put(ext, machine_id, conf.secret_name, (const uint8_t *)tok, strlen(tok),
			     lease > 0 ? (int64_t)lease : 0);
	if (r == ATT_EXT_NOTFOUND || r == ATT_EXT_CONFLICT || r == ATT_EXT_INVALID) {
		host->log(ext, ATT_EXT_LOG_ERROR, "cannot store the Vault token for machine %s (%d)", machine_id, r);
		return ATT_EXT_PERMANENT;
	}
	if (r != ATT_EXT_OK)
		return ATT_EXT_ERROR;
	host->log(ext, ATT_EXT_LOG_INFO, "Vault token (accessor %s, %lld s) stored for machine %s",
		  json_string_value(json_object_get(auth, "accessor")) ? json_string_value(json_object_get(auth, "accessor"))
									: "-",
		  (long long)lease, machine_id);
	return remember(ext, host->event_id(ev), machine_id, json_string_value(json_object_get(auth, "accessor")));
}

static int on_online(struct att_ext *ext, const struct att_ext_event *ev, void *ud)
{
	const char *machine_id = host->event_field(ev, "machine_id");
	struct body resp = { 0 };
	json_t *doc = NULL;
	char *req;
	long code;
	int r, seen;

	(void)ud;
	if (!machine_id)
		return ATT_EXT_PERMANENT;
	seen = already_issued(ext, host->event_id(ev));
	if (seen != 0)
		return seen > 0 ? ATT_EXT_OK : ATT_EXT_ERROR;
	req = request_body(ev, machine_id);
	if (!req)
		return ATT_EXT_ERROR;
	code = vault_create(req, &resp);
	free(req);
	if (code == 200)
		doc = json_loadb(resp.p ? resp.p : "", resp.len, 0, NULL);
	if (code == 200 && json_is_object(json_object_get(doc, "auth")))
		r = store(ext, ev, machine_id, json_object_get(doc, "auth"));
	else if (code >= 400 && code < 500)
		r = ATT_EXT_PERMANENT;
	else
		r = ATT_EXT_ERROR;
	if (r != ATT_EXT_OK)
		host->log(ext, r == ATT_EXT_PERMANENT ? ATT_EXT_LOG_ERROR : ATT_EXT_LOG_WARNING,
			  "Vault token for machine %s: HTTP %ld%s", machine_id, code,
			  r == ATT_EXT_PERMANENT ? " (not retried)" : " (will be retried)");
	if (resp.p)
		memset(resp.p, 0, resp.len);
	free(resp.p);
	json_decref(doc);
	return r;
}

static int vault_init(struct att_ext *ext, const struct att_ext_host *h, char *err, size_t errlen)
{
	host = h;
	if (!ATT_EXT_HOST_HAS(h, secret_put)) {
		snprintf(err, errlen, "this attestd has no secret vault (host->secret_put)");
		return ATT_EXT_ERROR;
	}
	conf.addr = env_or("VAULT_ADDR", "");
	conf.token = env_or("VAULT_TOKEN", "");
	conf.ns = env_or("VAULT_NAMESPACE", "");
	conf.cacert = env_or("VAULT_CACERT", "");
	conf.policies = env_or("VAULT_TOKEN_POLICIES", "node-disk-unseal");
	conf.ttl = env_or("VAULT_TOKEN_TTL", "1h");
	conf.secret_name = env_or("VAULT_TOKEN_SECRET_NAME", "vault-token");
	conf.event = env_or("VAULT_TOKEN_EVENT", "node.online");
	if (!conf.addr || !conf.token || !conf.event || !conf.addr[0] || !conf.token[0]) {
		snprintf(err, errlen, "VAULT_ADDR and VAULT_TOKEN must be set");
		return ATT_EXT_ERROR;
	}
	while (strlen(conf.addr) && conf.addr[strlen(conf.addr) - 1] == '/')
		conf.addr[strlen(conf.addr) - 1] = 0;
	if (h->add_migration(ext, &v1) != ATT_EXT_OK || h->add_hook(ext, conf.event, on_online, NULL) != ATT_EXT_OK) {
		snprintf(err, errlen, "registration refused (VAULT_TOKEN_EVENT=%s)", conf.event);
		return ATT_EXT_ERROR;
	}
	return ATT_EXT_OK;
}

static void vault_stop(struct att_ext *ext)
{
	(void)ext;
	if (conf.token)
		memset(conf.token, 0, strlen(conf.token));
	free(conf.addr);
	free(conf.token);
	free(conf.ns);
	free(conf.cacert);
	free(conf.policies);
	free(conf.ttl);
	free(conf.secret_name);
	free(conf.event);
	memset(&conf, 0, sizeof(conf));
}

const struct att_ext_info att_extension_v1 = {
	.abi_version = ATT_EXT_ABI_VERSION,
	.name = "vault_token",
	.version = "1.0.0",
	.description = "node-scoped Vault tokens delivered through the secret vault (seed: Vault dynamic secrets)",
	.init = vault_init,
	.stop = vault_stop,
};
