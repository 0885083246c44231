/* main.c - `attestation`: global options, dispatch, HTTP, output helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/text.h"
#include "base/util.h"
#include "cli.h"

static const char usage_text[] =
	"Usage: attestation [--output table|json] [--api-url URL] [--verbose] COMMAND ...\n"
	"\n"
	"Operator CLI for the attestation service.\n"
	"\n"
	"Commands:\n"
	"  auth login        Log in (browser PKCE, --method device or password)\n"
	"  auth whoami       Show the cached identity and what the service thinks of it\n"
	"  auth token        Print a valid access token (refreshing it) for scripts\n"
	"  auth logout       Revoke the refresh token and drop the cached tokens\n"
	"  auth cache-list   List cached logins\n"
	"  auth clear-cache  Remove every cached login\n"
	"  machine ...       list, get, approve, lock, unlock, revoke, approvals, bundle, import\n"
	"  config ...        set, get, history, delete a cluster's AgentAttestation policies\n"
	"  agents list       recent agent sessions (matched policy, attributes)\n"
	"  audit ...         list, verify (recomputes the hash chain locally), report (signed PDF), checkpoint\n"
	"  events ...        list, get, replay (lifecycle events and their deliveries)\n"
	"  secret ...        list, get, put, create, delete (the secret vault; values never shown)\n"
	"  cert ...          list (a machine's certificates), get, revoke\n"
	"  completion bash   Print the bash completion script\n"
	"\n"
	"Environment:\n"
	"  ATTESTATION_API_URL        service URL (default http://localhost:9000)\n"
	"  KEYCLOAK_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID\n"
	"                             provider (issuer = KEYCLOAK_URL/realms/KEYCLOAK_REALM)\n"
	"  ATTESTATION_OIDC_ISSUER    issuer URL for providers other than Keycloak\n"
	"  KEYCLOAK_CLIENT_SECRET     client secret for confidential clients (CI)\n"
	"  ATTESTATION_OIDC_SCOPE     scopes requested (default \"openid\")\n"
	"  ATTESTATION_OIDC_RESOURCE  RFC 8707 resource indicator, if the provider needs one\n"
	"  ATTESTATION_TOKEN          bearer token to use instead of a login (e.g. ITL_ADMIN_TOKEN)\n"
	"  ATTESTATION_BREAK_GLASS_TOKEN  sent as X-Break-Glass (emergency access)\n"
	"  ATTESTATION_CACHE_DIR      token cache (default ~/.itl/attestation-cache)\n"
	"  ATTESTATION_CA_FILE        CA bundle for the service and the provider\n"
	"\n"
	"Exit codes: 0 ok, 1 error, 2 usage, 3 not authenticated, 4 forbidden, 5 not found,\n"
	"6 conflict/wrong state, 7 input rejected, 8 unreachable/unavailable.\n"
	"Run 'attestation COMMAND --help' for a command's options.\n";

static const char completion_bash[] =
	"# bash completion for attestation\n"
	"_attestation() {\n"
	"\tlocal cur prev words cword\n"
	"\t_init_completion 2>/dev/null || { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=(\"${COMP_WORDS[@]}\"); cword=$COMP_CWORD; }\n"
	"\tcase $prev in\n"
	"\t--output|-o) COMPREPLY=($(compgen -W 'table json' -- \"$cur\")); return ;;\n"
	"\t--method) COMPREPLY=($(compgen -W 'browser device password' -- \"$cur\")); return ;;\n"
	"\t--status) COMPREPLY=($(compgen -W 'pending_approval registered attested locked revoked' -- \"$cur\")); return ;;\n"
	"\t--role) COMPREPLY=($(compgen -W 'controlplane worker-infra worker-app' -- \"$cur\")); return ;;\n"
	"\tesac\n"
	"\tlocal i cmd='' sub=''\n"
	"\tfor ((i=1; i<cword; i++)); do\n"
	"\t\tcase ${words[i]} in -*) continue ;; esac\n"
	"\t\tif [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi\n"
	"\tdone\n"
	"\tif [[ -z $cmd ]]; then COMPREPLY=($(compgen -W 'auth machine audit config agents events secret cert completion --output --api-url --help --version' -- \"$cur\")); return; fi\n"
	"\tif [[ -z $sub ]]; then\n"
	"\t\tcase $cmd in\n"
	"\t\tauth) COMPREPLY=($(compgen -W 'login whoami token logout cache-list clear-cache' -- \"$cur\")) ;;\n"
	"\t\tmachine) COMPREPLY=($(compgen -W 'list get approve lock unlock revoke approvals bundle import' -- \"$cur\")) ;;\n"
	"\t\tconfig) COMPREPLY=($(compgen -W 'set get history delete' -- \"$cur\")) ;;\n"
	"\t\tagents) COMPREPLY=($(compgen -W 'list' -- \"$cur\")) ;;\n"
	"\t\taudit) COMPREPLY=($(compgen -W 'list verify report checkpoint' -- \"$cur\")) ;;\n"
	"\t\tevents) COMPREPLY=($(compgen -W 'list get replay' -- \"$cur\")) ;;\n"
	"\t\tsecret) COMPREPLY=($(compgen -W 'list get put create delete' -- \"$cur\")) ;;\n"
	"\t\tcompletion) COMPREPLY=($(compgen -W 'bash' -- \"$cur\")) ;;\n"
	"\t\tesac\n"
	"\t\treturn\n"
	"\tfi\n"
	"\tlocal o='--output --help'\n"
	"\tcase $cmd/$sub in\n"
	"\tauth/login) o=\"$o --method --username --password-stdin --no-browser --listen-port --timeout --scope --resource\" ;;\n"
	"\tauth/logout) o=\"$o --all\" ;;\n"
	"\tmachine/list) o=\"$o --status --role\" ;;\n"
	"\tmachine/approve) o=\"$o --role --hostname --assigned-ip --reason\" ;;\n"
	"\tmachine/lock) o=\"$o --reason\" ;;\n"
	"\tmachine/revoke) o=\"$o --wipe --reason\" ;;\n"
	"\tmachine/bundle) o=\"$o --file\" ;;\n"
	"\tmachine/import) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
	"\taudit/list) o=\"$o --machine-id --action --page --per-page --all\" ;;\n"
	"\taudit/report) o=\"$o --file\" ;;\n"
	"\taudit/verify) o=\"$o --checkpoint --enrollment-ca --tsa-ca\" ;;\n"
	"\tevents/list) o=\"$o --event --machine-id --status --after-id --page --per-page\" ;;\n"
	"\tevents/replay) o=\"$o --consumer\" ;;\n"
	"\tesac\n"
	"\tCOMPREPLY=($(compgen -W \"$o\" -- \"$cur\"))\n"
	"}\n"
	"complete -F _attestation attestation\n";

/* ---- HTTP ----------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct att_buf *b = ud;
	size_t n = size * nmemb;

	return att_buf_append(b, data, n) == 0 ? n : 0;
}

int cli_http(const struct cli *c, const char *method, const char *url, const char *const *headers,
	     const char *ctype, const char *body, size_t blen, const char *basic_user,
	     const char *basic_pass, struct cli_resp *r)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct att_buf b;
	char ct[128];
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	if (!h)
		return EX_ERR;
	att_buf_init(&b, 64 * 1024 * 1024);
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hl = curl_slist_append(hl, ct);
	}
	hl = curl_slist_append(hl, "Accept: application/json");
	hl = curl_slist_append(hl, "User-Agent: attestation-cli/" ATT_VERSION);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	if (basic_user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, basic_user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, basic_pass ? basic_pass : "");
	}
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		att_buf_release(&b);
		fprintf(stderr, "Error: %s %s: %s\n", method, url, curl_easy_strerror(cc));
		return EX_UNAVAILABLE;
	}
	if (c->verbose)
		fprintf(stderr, "> %s %s -> %ld\n", method, url, r->status);
	r->body = att_buf_steal(&b, &r->len);
	if (!r->body) {
		r->body = strdup("");
		r->len = 0;
	}
	return 0;
}

void cli_resp_free(struct cli_resp *r)
{
	free(r->body);
	r->body = NULL;
}

char *cli_form(const char *first_key, ...)
{
	struct att_buf b;
	va_list ap;
	const char *k = first_key;

	att_buf_init(&b, 1024 * 1024);
	va_start(ap, first_key);
	while (k) {
		const char *v = va_arg(ap, const char *);

		if (v) {
			char *ev = curl_easy_escape(NULL, v, 0);

			att_buf_printf(&b, "%s%s=%s", b.len ? "&" : "", k, ev ? ev : "");
			curl_free(ev);
		}
		k = va_arg(ap, const char *);
	}
	va_end(ap);
	if (!b.p)
		return strdup("");
	return att_buf_steal(&b, NULL);
}

int cli_exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return EX_OK;
	switch (status) {
	case 401: return EX_AUTH;
	case 403: return EX_FORBIDDEN;
	case 404: return EX_NOTFOUND;
	case 409: case 410: return EX_CONFLICT;
	case 400: case 406: case 413: case 415: case 422: return EX_INVALID;
	case 502: case 503: case 504: return EX_UNAVAILABLE;
	default: return EX_ERR;
	}
}

int cli_raw(struct cli *c, const char *method, const char *path, const char *ctype, const char *body,
	    size_t blen, struct cli_resp *r)
{
	char *url = att_asprintf("%s%s", c->api_url, path), *auth;
	const char *hdrs[2] = { NULL, NULL };
	int ex = 0;

	auth = url ? cli_auth_header(c, false, &ex) : NULL;
	if (!auth) {
		free(url);
		return ex ? ex : EX_ERR;
	}
	hdrs[0] = auth;
	ex = cli_http(c, method, url, hdrs, ctype, body, blen, NULL, NULL, r);
	att_wipe(auth, strlen(auth));
	free(auth);
	free(url);
	return ex;
}

int cli_api(struct cli *c, const char *method, const char *path, json_t *body, json_t **ret, long *ret_status)
{
	char *url = att_asprintf("%s%s", c->api_url, path);
	char *auth = NULL, *payload = NULL;
	struct cli_resp r = { 0 };
	int ex = EX_OK;

	if (ret)
		*ret = NULL;
	if (!url)
		return EX_ERR;
	if (body)
		payload = json_dumps(body, JSON_COMPACT);
	for (int attempt = 0; attempt < 2; attempt++) {
		const char *hdrs[2] = { NULL, NULL };

		free(auth);
		auth = cli_auth_header(c, attempt == 1, &ex);
		if (!auth)
			goto out;
		hdrs[0] = auth;
		cli_resp_free(&r);
		ex = cli_http(c, method, url, hdrs, payload ? "application/json" : NULL, payload,
			      payload ? strlen(payload) : 0, NULL, NULL, &r);
		if (ex)
			goto out;
		/* a cached token the service refuses: refresh once (roles may have changed) */
		if (r.status != 401 || strncmp(auth, "Authorization: Bearer ", 22) != 0 || getenv("ATTESTATION_TOKEN"))
			break;
	}
	if (ret_status)
		*ret_status = r.status;
	{
		json_t *j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;

		ex = cli_exit_for_status(r.status);
		if (ex) {
			const char *d = jstr(j, "detail");

			if (d) {
				char *e = att_text_escape(d);	/* the service's words, but never terminal controls */

				fprintf(stderr, "Error: %s (HTTP %ld)\n", e ? e : "?", r.status);
				free(e);
			}
			else
				fprintf(stderr, "Error: HTTP %ld from %s %s\n", r.status, method, path);
			if (r.status == 401)
				fprintf(stderr, "Hint: run 'attestation auth login' (or set ATTESTATION_TOKEN).\n");
			json_decref(j);
		} else if (ret) {
			*ret = j;
		} else {
			json_decref(j);
		}
	}
out:
	cli_resp_free(&r);
	free(url);
	free(payload);
	if (auth)
		att_wipe(auth, strlen(auth));
	free(auth);
	return ex;
}

/* ---- output ------------------------------------------------------------------- */

const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

char *jdup(const json_t *o, const char *k)
{
	const char *s = jstr(o, k);

	return s ? strdup(s) : NULL;
}

void out_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

/* Display form of a scalar: strings as-is, null as "-", others as JSON. */
static char *cell(const json_t *v)
{
	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))	/* what machines reported is shown, never executed by the terminal */
		return att_text_escape(json_string_value(v));
	if (json_is_true(v))
		return strdup("yes");
	if (json_is_false(v))
		return strdup("no");
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Characters, not bytes, for column widths (UTF-8 continuation bytes skipped). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void clip(char *s, int max)
{
	size_t w = 0;

	if (max <= 0)
		return;
	for (char *p = s; *p; p++) {
		if (((unsigned char)*p & 0xC0) != 0x80 && w++ == (size_t)max) {
			*p = 0;
			return;
		}
	}
}

void out_table(const json_t *rows, const struct col *cols, size_t ncols)
{
	size_t n = json_array_size(rows), w[16] = { 0 };
	char **cells = calloc((n + 1) * ncols, sizeof(char *));

	if (!cells || ncols > 16)
		return;
	for (size_t j = 0; j < ncols; j++) {
		cells[j] = strdup(cols[j].title);
		w[j] = width(cols[j].title);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ncols; j++) {
			char *s = cell(json_object_get(json_array_get(rows, i), cols[j].key));

			for (char *p = s; p && *p; p++)
				if (*p == '\n' || *p == '\t' || *p == '\r')
					*p = ' ';
			if (s)
				clip(s, cols[j].max);
			cells[(i + 1) * ncols + j] = s;
			if (s && width(s) > w[j])
				w[j] = width(s);
		}
	for (size_t i = 0; i <= n; i++) {
		for (size_t j = 0; j < ncols; j++) {
			const char *s = cells[i * ncols + j] ? cells[i * ncols + j] : "";

			if (j + 1 == ncols)
				printf("%s", s);
			else
				printf("%s%*s  ", s, (int)(w[j] - width(s)), "");
		}
		printf("\n");
	}
	for (size_t i = 0; i < (n + 1) * ncols; i++)
		free(cells[i]);
	free(cells);
}

void out_kv(const json_t *obj, const char *const *keys, size_t nkeys)
{
	size_t w = 0;

	for (size_t i = 0; i < nkeys; i++)
		if (strlen(keys[i]) > w)
			w = strlen(keys[i]);
	for (size_t i = 0; i < nkeys; i++) {
		char *s = cell(json_object_get(obj, keys[i]));

		printf("%-*s  %s\n", (int)w + 1, keys[i], s ? s : "-");
		free(s);
	}
}

/* ---- options --------------------------------------------------------------------- */

int group_help(int argc, char **argv, const char *usage)
{
	if (argc == 0) {
		fputs(usage, stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[0], "help") == 0 || want_help(argc, argv)) {
		fputs(usage, stdout);
		return EX_OK;
	}
	return -1;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

bool cli_parse_int(const char *s, long min, long max, long *ret)
{
	uint64_t v;

	if (!s || att_parse_u64(s, strlen(s), (uint64_t)min, (uint64_t)max, &v) < 0)
		return false;
	*ret = (long)v;
	return true;
}

bool want_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int parse_opts(const char *cmd, int argc, char **argv, const struct opt *opts, size_t nopts,
	       char **pos, int npos)
{
	int np = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o = NULL;
		const char *val = NULL;

		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++) {
				if (np == npos)
					goto too_many;
				pos[np++] = argv[i];
			}
			break;
		}
		if (a[0] != '-' || a[1] == 0) {
			if (np == npos)
				goto too_many;
			pos[np++] = argv[i];
			continue;
		}
		for (size_t k = 0; k < nopts && !o; k++) {
			size_t nl = strlen(opts[k].name);

			if (a[1] == '-' && strncmp(a + 2, opts[k].name, nl) == 0 &&
			    (a[2 + nl] == 0 || (a[2 + nl] == '=' && opts[k].has_arg))) {
				o = &opts[k];
				if (a[2 + nl] == '=')
					val = a + 3 + nl;
			} else if (a[1] != '-' && opts[k].alias && a[1] == opts[k].alias && a[2] == 0) {
				o = &opts[k];
			}
		}
		if (!o) {
			fprintf(stderr, "attestation %s: unknown option '%s' (see --help)\n", cmd, a);
			return -1;
		}
		if (o->has_arg) {
			if (!val) {
				if (i + 1 >= argc) {
					fprintf(stderr, "attestation %s: option '%s' needs a value\n", cmd, a);
					return -1;
				}
				val = argv[++i];
			}
			*o->val = val;
		} else {
			*o->flag = true;
		}
	}
	return np;
too_many:
	fprintf(stderr, "attestation %s: unexpected argument '%s' (see --help)\n", cmd, argv[argc - 1]);
	return -1;
}

/* ---- main -------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

/* Remove the global options from argv wherever they appear. */
static int take_globals(struct cli *c, int *argc, char **argv)
{
	int o = 0;

	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i], *v = NULL;
		bool out = false, api = false;

		if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
			out = true;
			v = i + 1 < *argc ? argv[i + 1] : NULL;
		} else if (strncmp(a, "--output=", 9) == 0) {
			out = true;
			v = a + 9;
		} else if (strcmp(a, "--api-url") == 0) {
			api = true;
			v = i + 1 < *argc ? argv[i + 1] : NULL;
		} else if (strncmp(a, "--api-url=", 10) == 0) {
			api = true;
			v = a + 10;
		} else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
			c->verbose = true;
			continue;
		}
		if (out && v && (strcmp(v, "json") == 0 || strcmp(v, "table") == 0)) {
			c->json = strcmp(v, "json") == 0;
			if (strchr(a, '=') == NULL)
				i++;
			continue;
		}
		if (api) {
			if (!v) {
				fprintf(stderr, "attestation: --api-url needs a value\n");
				return -1;
			}
			c->api_url = v;
			if (strchr(a, '=') == NULL)
				i++;
			continue;
		}
		argv[o++] = argv[i];	/* --output PATH stays for `machine bundle` */
	}
	*argc = o;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	const char *kc_url, *realm;
	char *api;
	int ex;

	argc--;
	argv++;
	if (cli_load_dotenv() < 0)
		return EX_USAGE;
	c.api_url = env_or("ATTESTATION_API_URL", "http://localhost:9000");
	c.timeout = 30;
	if (take_globals(&c, &argc, argv) < 0)
		return EX_USAGE;
	if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
	    strcmp(argv[0], "help") == 0) {
		fputs(usage_text, argc == 0 ? stderr : stdout);
		return argc == 0 ? EX_USAGE : EX_OK;
	}
	if (strcmp(argv[0], "--version") == 0 || strcmp(argv[0], "version") == 0) {
		printf("attestation %s\n", ATT_VERSION);
		return EX_OK;
	}
	if (strcmp(argv[0], "completion") == 0) {
		if (argc == 2 && strcmp(argv[1], "bash") == 0) {
			fputs(completion_bash, stdout);
			return EX_OK;
		}
		fprintf(stderr, "Usage: attestation completion bash\n"
				"  Add 'source <(attestation completion bash)' to ~/.bashrc.\n");
		return argc == 2 && want_help(argc, argv) ? EX_OK : EX_USAGE;
	}
	/* strip one trailing slash so paths join cleanly */
	api = strdup(c.api_url);
	if (api && *api && api[strlen(api) - 1] == '/')
		api[strlen(api) - 1] = 0;
	c.api_url = api;
	kc_url = env_or("KEYCLOAK_URL", "https://sts.itlusions.com");
	realm = env_or("KEYCLOAK_REALM", "itlusions");
	if (getenv("ATTESTATION_OIDC_ISSUER") && *getenv("ATTESTATION_OIDC_ISSUER"))
		c.issuer = strdup(getenv("ATTESTATION_OIDC_ISSUER"));
	else
		c.issuer = att_asprintf("%.*s/realms/%s",
					(int)(strlen(kc_url) - (kc_url[strlen(kc_url) - 1] == '/')), kc_url, realm);
	if (c.issuer && c.issuer[0] && c.issuer[strlen(c.issuer) - 1] == '/' && !getenv("ATTESTATION_OIDC_ISSUER"))
		c.issuer[strlen(c.issuer) - 1] = 0;
	c.client_id = env_or("KEYCLOAK_CLIENT_ID", "attestation-cli");
	c.client_secret = env_or("KEYCLOAK_CLIENT_SECRET", NULL);
	c.scope = env_or("ATTESTATION_OIDC_SCOPE", "openid");
	c.resource = env_or("ATTESTATION_OIDC_RESOURCE", NULL);
	c.ca_file = env_or("ATTESTATION_CA_FILE", NULL);
	if (getenv("ATTESTATION_CACHE_DIR") && *getenv("ATTESTATION_CACHE_DIR"))
		c.cache_dir = strdup(getenv("ATTESTATION_CACHE_DIR"));
	else
		c.cache_dir = att_asprintf("%s/.itl/attestation-cache", env_or("HOME", "."));
	if (!api || !c.issuer || !c.cache_dir) {
		fprintf(stderr, "attestation: out of memory\n");
		return EX_ERR;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(argv[0], "auth") == 0)
		ex = cmd_auth(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "machine") == 0 || strcmp(argv[0], "machines") == 0)
		ex = cmd_machine(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "audit") == 0)
		ex = cmd_audit(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "secret") == 0 || strcmp(argv[0], "secrets") == 0)
		ex = cmd_secret(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "config") == 0)
		ex = cmd_config(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "agents") == 0)
		ex = cmd_agents(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "events") == 0)
		ex = cmd_events(&c, argc - 1, argv + 1);
	else if (strcmp(argv[0], "cert") == 0 || strcmp(argv[0], "certs") == 0)
		ex = cmd_cert(&c, argc - 1, argv + 1);
	else {
		fprintf(stderr, "attestation: unknown command '%s'\n\n%s", argv[0], usage_text);
		ex = EX_USAGE;
	}
	curl_global_cleanup();
	free(api);
	free(c.issuer);
	free(c.cache_dir);
	return ex;
}
