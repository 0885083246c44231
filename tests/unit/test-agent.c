/* Unit tests of the node agent's library pieces that need no TPM and no
 * network: URLs, HTTP response parsing, the service's answers, the state
 * directory, backoff, kernel arguments and command splitting, PCR
 * selections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "agent/answer.h"
#include "agent/backoff.h"
#include "agent/cmdline.h"
#include "agent/http.h"
#include "agent/node.h"
#include "agent/pcrsel.h"
#include "agent/secrets.h"
#include "agent/state.h"
#include "agent/url.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "tpm/tpm.h"

static char err[512];

/* ---- url ----------------------------------------------------------------- */

static void test_url_parse_forms(void **state)
{
	struct att_url u;
	(void)state;
	assert_int_equal(att_url_parse("https://Attest.Example:8443/api/v1/config/abc?x=1", &u, err, sizeof(err)), 0);
	assert_true(u.tls);
	assert_string_equal(u.host, "Attest.Example");
	assert_string_equal(u.port, "8443");
	assert_string_equal(u.path, "/api/v1/config/abc?x=1");
	assert_int_equal(att_url_parse("http://127.0.0.1", &u, err, sizeof(err)), 0);
	assert_string_equal(u.port, "80");
	assert_string_equal(u.path, "/");
	assert_int_equal(att_url_parse("http://[::1]:9000?q", &u, err, sizeof(err)), 0);
	assert_true(u.ipv6);
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.path, "/?q");
}

static void test_url_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"", "ftp://x/", "https://", "https://user:pw@x/", "https://x:0/", "https://x:65536/",
		"https://x:80a/", "https://x/a b", "https://x/#frag", "https://[::1/", "https://[zz]/",
		"https://exa mple/", "https://x\x01/", "//x/", "https://[::1]x/",
	};
	struct att_url u;
	(void)state;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(bad); i++)
		assert_int_equal(att_url_parse(bad[i], &u, err, sizeof(err)), ATT_E_INVAL);
}

static void test_url_origin_and_base(void **state)
{
	struct att_url a, b;
	char out[ATT_URL_MAX];
	(void)state;
	assert_int_equal(att_url_parse("https://ATTEST.example/x", &a, err, sizeof(err)), 0);
	assert_int_equal(att_url_parse("https://attest.example:443/y", &b, err, sizeof(err)), 0);
	assert_true(att_url_same_origin(&a, &b));
	assert_int_equal(att_url_parse("http://attest.example/y", &b, err, sizeof(err)), 0);
	assert_false(att_url_same_origin(&a, &b));
	assert_int_equal(att_url_parse("https://attest.example:8443/y", &b, err, sizeof(err)), 0);
	assert_false(att_url_same_origin(&a, &b));
	assert_int_equal(att_url_base("https://a.example:443/prefix//", out, err, sizeof(err)), 0);
	assert_string_equal(out, "https://a.example/prefix");
	assert_int_equal(att_url_base("http://127.0.0.1:8080", out, err, sizeof(err)), 0);
	assert_string_equal(out, "http://127.0.0.1:8080");
	assert_int_equal(att_url_base("http://a/?q=1", out, err, sizeof(err)), ATT_E_INVAL);
}

static void test_url_base_from_talos_config(void **state)
{
	char out[ATT_URL_MAX];
	(void)state;
	assert_int_equal(att_url_base_from_talos_config("https://attest.example/api/v1/config", out), 0);
	assert_string_equal(out, "https://attest.example");
	assert_int_equal(att_url_base_from_talos_config("https://a.example:8443/itl/api/v1/config?mac=${mac}&uuid=${uuid}", out), 0);
	assert_string_equal(out, "https://a.example:8443/itl");
	assert_int_equal(att_url_base_from_talos_config("http://[fd00::1]/api/v1/config/worker", out), 0);
	assert_string_equal(out, "http://[fd00::1]");
	assert_int_equal(att_url_base_from_talos_config("metal-iso", out), ATT_E_NOTFOUND);
	assert_int_equal(att_url_base_from_talos_config("https://a/other/config", out), ATT_E_NOTFOUND);
	assert_int_equal(att_url_base_from_talos_config("https://a/api/v1/configs", out), ATT_E_NOTFOUND);
}

/* ---- http ---------------------------------------------------------------- */

static int parse(const char *s, bool eof, size_t max, struct att_http_resp *r)
{
	return att_http_parse((const uint8_t *)s, strlen(s), eof, max, r, err, sizeof(err));
}

static void test_http_parse_content_length(void **state)
{
	struct att_http_resp r;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: Application/JSON; charset=utf-8\r\n"
			 "Content-Length: 4\r\nRetry-After: 7\r\n\r\n{\"a\"";
	(void)state;
	assert_int_equal(parse(ok, false, 100, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "application/json");
	assert_int_equal(r.retry_after, 7);
	assert_int_equal(r.body_len, 4);
	assert_memory_equal(r.body, "{\"a\"", 4);
	att_http_resp_release(&r);
	/* every shorter prefix needs more bytes, and is an error at EOF */
	for (size_t n = 0; n < strlen(ok); n++) {
		char *p = att_strndup(ok, n);

		assert_int_equal(parse(p, false, 100, &r), 1);
		assert_int_equal(parse(p, true, 100, &r), n == 0 ? ATT_E_PARSE : ATT_E_PARSE);
		free(p);
	}
	assert_int_equal(parse(ok, false, 3, &r), ATT_E_LIMIT);
}

static void test_http_parse_chunked_and_interim(void **state)
{
	struct att_http_resp r;
	(void)state;
	assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\nTransfer-Encoding: chunked\n\n"
			       "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n", false, 100, &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "abcde");
	assert_int_equal(r.retry_after, -1);
	att_http_resp_release(&r);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc", false, 100, &r), 1);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcdeXX\r\n0\r\n\r\n", false, 100, &r), ATT_E_PARSE);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", false, 100, &r), ATT_E_PARSE);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", false, 100, &r), ATT_E_LIMIT);
	/* no framing: the body ends with the connection */
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\nhello", false, 100, &r), 1);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\n\r\nhello", true, 100, &r), 0);
	assert_string_equal(r.body, "hello");
	att_http_resp_release(&r);
	assert_int_equal(parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, 100, &r), 0);
	assert_int_equal(r.body_len, 0);
	att_http_resp_release(&r);
}

static void test_http_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", "HTTP/1.1 101 Switching\r\n\r\n",
	};
	struct att_http_resp r;
	char big[20000];
	(void)state;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(bad); i++)
		assert_int_equal(parse(bad[i], true, 100, &r), ATT_E_PARSE);
	/* a header section that never ends is refused once over the cap */
	snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: %0*d", 17000, 0);
	assert_int_equal(parse(big, false, 100, &r), ATT_E_LIMIT);
	{
		struct att_buf b;

		att_buf_init(&b, 1 << 20);
		assert_int_equal(att_buf_puts(&b, "HTTP/1.1 200 OK\r\n"), 0);
		for (int i = 0; i < 101; i++)
			assert_int_equal(att_buf_printf(&b, "X-%d: y\r\n", i), 0);
		assert_int_equal(att_buf_puts(&b, "\r\n"), 0);
		assert_int_equal(parse(b.p, true, 100, &r), ATT_E_LIMIT);
		att_buf_release(&b);
	}
}

/* ---- answers --------------------------------------------------------------- */

static void test_answer_attest(void **state)
{
	struct att_answer_attest a;
	const char *ok = "{\"machine_id\":\"m-1\",\"status\":\"attested\",\"hostname\":\"k8s-w-3\",\"role\":\"worker-app\","
			 "\"message\":\"ok\\u001b[2J\",\"action\":\"apply-config\",\"config_url\":\"https://a/api/v1/config/t\","
			 "\"config_token\":\"t\",\"quote_verified\":true,\"extra\":[1]}";
	(void)state;
	assert_int_equal(att_answer_attest_parse(ok, strlen(ok), &a, err, sizeof(err)), 0);
	assert_string_equal(a.machine_id, "m-1");
	assert_string_equal(a.action, "apply-config");
	assert_string_equal(a.config_url, "https://a/api/v1/config/t");
	assert_string_equal(a.message, "ok?[2J");
	assert_true(a.quote_verified);
}

static void test_answer_attest_refuses(void **state)
{
	static const char *const bad[] = {
		"", "[]", "{", "{\"machine_id\":\"m\",\"machine_id\":\"n\",\"status\":\"attested\",\"action\":\"none\"}",
		"{\"status\":\"attested\",\"action\":\"none\"}",
		"{\"machine_id\":\"m/../x\",\"status\":\"attested\",\"action\":\"none\"}",
		"{\"machine_id\":\"m\",\"status\":\"hacked\",\"action\":\"none\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"reboot\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"apply-config\",\"config_url\":null}",
		"{\"machine_id\":\"m\",\"status\":\"locked\",\"action\":\"apply-config\",\"config_url\":\"https://a/x\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"wipe\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"lock\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"none\",\"config_url\":\"https://a/x\"}",
		"{\"machine_id\":7,\"status\":\"attested\",\"action\":\"none\"}",
		"{\"machine_id\":\"m\",\"status\":\"attested\",\"action\":\"none\",\"quote_verified\":\"yes\"}",
		"{\"machine_id\":\"m\\u0000x\",\"status\":\"attested\",\"action\":\"none\"}",
	};
	struct att_answer_attest a;
	(void)state;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(bad); i++) {
		int r = att_answer_attest_parse(bad[i], strlen(bad[i]), &a, err, sizeof(err));

		if (r != ATT_E_PARSE)
			fail_msg("accepted: %s", bad[i]);
	}
}

static void test_answer_challenge_and_register(void **state)
{
	struct att_answer_challenge c;
	struct att_answer_register g;
	const char *ch = "{\"nonce_id\":\"0123456789abcdef0123456789abcdef\",\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"expires_at\":\"x\"}";
	const char *rg = "{\"machine_id\":\"abc\",\"role\":\"worker-app\",\"status\":\"pending_approval\",\"iso_url\":\"https://f/image/x/v1.9.5/metal-amd64.iso\","
			 "\"schematic_id\":\"00ff\",\"installer_image\":\"f/installer/x:v1.9.5\",\"config_token\":null,\"config_url\":null,\"message\":\"m\"}";
	(void)state;
	assert_int_equal(att_answer_challenge_parse(ch, strlen(ch), &c, err, sizeof(err)), 0);
	assert_int_equal(c.nonce_len, 32);
	assert_int_equal(c.nonce[31], 31);
	assert_int_equal(att_answer_challenge_parse("{\"nonce_id\":\"AB\",\"nonce\":\"AAAA\"}", 32, &c, err, sizeof(err)), ATT_E_PARSE);
	assert_int_equal(att_answer_challenge_parse("{\"nonce_id\":\"ab\",\"nonce\":\"AAAA\"}", 32, &c, err, sizeof(err)), ATT_E_PARSE);
	assert_int_equal(att_answer_register_parse(rg, strlen(rg), &g, err, sizeof(err)), 0);
	assert_string_equal(g.iso_url, "https://f/image/x/v1.9.5/metal-amd64.iso");
	assert_string_equal(g.status, "pending_approval");
}

static void test_answer_cred_blob(void **state)
{
	uint8_t b[8 + 4 + 4] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1, 0, 2, 0xaa, 0xbb, 0, 2, 0xcc, 0xdd };
	struct att_cred_blob cb;
	(void)state;
	assert_int_equal(att_answer_cred_blob_split(b, sizeof(b), &cb, err, sizeof(err)), 0);
	assert_int_equal(cb.id_object_len, 4);
	assert_int_equal(cb.secret_len, 4);
	assert_ptr_equal(cb.secret, b + 12);
	for (size_t n = 0; n < sizeof(b); n++)
		assert_int_equal(att_answer_cred_blob_split(b, n, &cb, err, sizeof(err)), ATT_E_PARSE);
	b[3] = 0xdf;
	assert_int_equal(att_answer_cred_blob_split(b, sizeof(b), &cb, err, sizeof(err)), ATT_E_PARSE);
}

static void test_answer_envelope(void **state)
{
	struct att_answer_envelope e;
	const char *ref = "{\"format\":\"ek-aes256gcm-v1\",\"machine_id\":\"m\",\"wrapped_key\":\"AA==\",\"iv\":\"AAAAAAAAAAAAAAAA\",\"ciphertext\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
	const char *ok = "{\"format\":\"tpm-credential-aes256gcm-v1\",\"machine_id\":\"m\",\"credential_blob\":\"utzA3gAAAAEAAqq7AALM3Q==\","
			 "\"iv\":\"AAAAAAAAAAAAAAAA\",\"ciphertext\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
	const char *short_iv = "{\"format\":\"tpm-credential-aes256gcm-v1\",\"machine_id\":\"m\",\"credential_blob\":\"utzA3gAAAAEAAqq7AALM3Q==\","
			       "\"iv\":\"AAAAAAAAAAA=\",\"ciphertext\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
	(void)state;
	assert_int_equal(att_answer_envelope_parse(ref, strlen(ref), &e, err, sizeof(err)), ATT_E_PARSE);
	assert_non_null(strstr(err, "restricted"));
	assert_int_equal(att_answer_envelope_parse(ok, strlen(ok), &e, err, sizeof(err)), 0);
	assert_int_equal(e.ct_len, 16);
	assert_int_equal(e.blob_len, 16);
	att_answer_envelope_release(&e);
	assert_int_equal(att_answer_envelope_parse(short_iv, strlen(short_iv), &e, err, sizeof(err)), ATT_E_PARSE);
}

static void test_answer_detail(void **state)
{
	char d[32];
	(void)state;
	att_answer_detail("{\"detail\":\"no\\nway\"}", 20, d, sizeof(d));
	assert_string_equal(d, "no?way");
	att_answer_detail("<html>", 6, d, sizeof(d));
	assert_string_equal(d, "");
}

/* ---- state ------------------------------------------------------------- */

/* ---- agent identity in a register body ------------------------------------ */

static void test_agent_body_add_identity_file_forms(void **state)
{
	char dir[] = "/tmp/attest-agent-id.XXXXXX", path[300];
	char *body;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/id.jwt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("  eyJhbGciOiJFUzM4NCJ9.eyJqdGkiOiJ4In0.c2ln\n", f);
	fclose(f);
	body = att_agent_body_add_identity(att_strdup("{\"ek_cert_pem\":\"x\"}"), path, err, sizeof(err));
	assert_non_null(body);
	assert_string_equal(body, "{\"ek_cert_pem\":\"x\",\"agent_identity\":\"eyJhbGciOiJFUzM4NCJ9.eyJqdGkiOiJ4In0.c2ln\"}");
	free(body);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("two words", f);
	fclose(f);
	assert_null(att_agent_body_add_identity(att_strdup("{}"), path, err, sizeof(err)));
	assert_non_null(strstr(err, "not one JWT"));
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_null(att_agent_body_add_identity(att_strdup("{}"), path, err, sizeof(err)));
	assert_non_null(strstr(err, "not one JWT"));
	unlink(path);
	assert_null(att_agent_body_add_identity(att_strdup("{}"), path, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot read it"));
	rmdir(dir);
}

static void test_state_roundtrip(void **state)
{
	char dir[] = "/tmp/attest-agent-state.XXXXXX";
	struct att_agent_state s, t;
	struct stat st;
	char path[256];
	int fd, fd2;
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(att_agent_state_load(dir, &s, err, sizeof(err)), 0);
	assert_string_equal(s.machine_id, "");
	assert_int_equal(s.reset_count, -1);
	snprintf(s.machine_id, sizeof(s.machine_id), "m-42");
	snprintf(s.server, sizeof(s.server), "https://attest.example");
	s.ak_bound = true;
	s.reset_count = 7;
	s.polls = 3;
	assert_int_equal(att_agent_state_save(dir, &s, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/state.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(att_agent_state_load(dir, &t, err, sizeof(err)), 0);
	assert_string_equal(t.machine_id, "m-42");
	assert_true(t.ak_bound);
	assert_int_equal(t.reset_count, 7);
	assert_int_equal(t.polls, 3);
	assert_int_equal(t.wipe_exit, -1);
	/* a damaged file is an error naming it, and is left alone */
	assert_int_equal(att_agent_file_write(dir, "state.json", "{\"version\":1,\"machine_id\":5}", 28, 0600, err, sizeof(err)), 0);
	assert_int_equal(att_agent_state_load(dir, &t, err, sizeof(err)), ATT_E_PARSE);
	assert_non_null(strstr(err, "state.json is damaged"));
	assert_int_equal(att_agent_file_write(dir, "state.json", "{\"version\":2}", 13, 0600, err, sizeof(err)), 0);
	assert_int_equal(att_agent_state_load(dir, &t, err, sizeof(err)), ATT_E_PARSE);
	/* one agent per directory */
	assert_int_equal(att_agent_state_lock(dir, &fd, err, sizeof(err)), 0);
	assert_int_equal(att_agent_state_lock(dir, &fd2, err, sizeof(err)), ATT_E_CONFLICT);
	close(fd);
	assert_int_equal(att_agent_state_lock(dir, &fd2, err, sizeof(err)), 0);
	close(fd2);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state.lock", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- backoff ------------------------------------------------------------- */

static void test_backoff_grows_caps_and_resets(void **state)
{
	struct att_backoff b;
	double prev = 0;
	(void)state;
	att_backoff_init(&b, 2, 60);
	for (int i = 0; i < 10; i++) {
		double lo = att_backoff_fail(&b, 0.0, -1);

		assert_true(lo >= 1.0 && lo <= 30.0);
		assert_true(lo >= prev);
		prev = lo;
	}
	assert_true(prev == 30.0);	/* max/2 with r = 0 */
	assert_true(att_backoff_fail(&b, 0.999, -1) < 60.0);
	assert_true(att_backoff_fail(&b, 0.5, 600) == 60.0);	/* Retry-After, capped */
	att_backoff_reset(&b);
	assert_true(att_backoff_fail(&b, 0.0, -1) == 1.0);
	assert_true(att_backoff_fail(&b, 0.0, 10) == 10.0);
	assert_true(att_backoff_interval(60, 0) == 54.0);
	assert_true(att_backoff_interval(60, 0.5) == 60.0);
	for (int i = 0; i < 100; i++) {
		double r = att_backoff_random();

		assert_true(r >= 0 && r < 1);
	}
}

/* ---- cmdline ------------------------------------------------------------- */

static void test_cmdline_get(void **state)
{
	const char *c = "BOOT_IMAGE=/vmlinuz talos.platform=metal itl.role=worker-infra itl.offline "
			"\"itl.note=a b\" talos.config=https://attest.example/api/v1/config?mac=${mac} itl.role=controlplane\n";
	char v[64];
	(void)state;
	assert_int_equal(att_cmdline_get(c, strlen(c), "itl.role", v, sizeof(v)), 1);
	assert_string_equal(v, "controlplane");
	assert_int_equal(att_cmdline_get(c, strlen(c), "itl.offline", v, sizeof(v)), 1);
	assert_string_equal(v, "");
	assert_int_equal(att_cmdline_get(c, strlen(c), "itl.note", v, sizeof(v)), 1);
	assert_string_equal(v, "a b");
	assert_int_equal(att_cmdline_get(c, strlen(c), "itl.reg_url", v, sizeof(v)), 0);
	assert_int_equal(att_cmdline_get(c, strlen(c), "itl", v, sizeof(v)), 0);
	assert_int_equal(att_cmdline_get(c, strlen(c), "talos.config", v, 10), ATT_E_LIMIT);
	assert_int_equal(att_cmdline_get(c, strlen(c), "talos.config", v, sizeof(v)), 1);
	assert_string_equal(v, "https://attest.example/api/v1/config?mac=${mac}");
}

static void test_cmdline_split(void **state)
{
	char **argv = NULL;
	(void)state;
	assert_int_equal(att_cmdline_split("  talosctl apply-config --file /dev/stdin ", &argv, err, sizeof(err)), 4);
	assert_string_equal(argv[0], "talosctl");
	assert_string_equal(argv[3], "/dev/stdin");
	assert_null(argv[4]);
	free(argv);
	assert_int_equal(att_cmdline_split("a 'b c' \"d \\\"e\\\\\" f\\ g ''", &argv, err, sizeof(err)), 5);
	assert_string_equal(argv[1], "b c");
	assert_string_equal(argv[2], "d \"e\\");
	assert_string_equal(argv[3], "f g");
	assert_string_equal(argv[4], "");
	free(argv);
	assert_int_equal(att_cmdline_split("   ", &argv, err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_cmdline_split("a 'b", &argv, err, sizeof(err)), ATT_E_INVAL);
	assert_int_equal(att_cmdline_split("a \"b", &argv, err, sizeof(err)), ATT_E_INVAL);
	{
		char many[400] = "";

		for (int i = 0; i < 65; i++)
			strncat(many, "x ", sizeof(many) - strlen(many) - 1);
		assert_int_equal(att_cmdline_split(many, &argv, err, sizeof(err)), ATT_E_INVAL);
	}
}

/* ---- pcrsel ------------------------------------------------------------- */

static void test_pcrsel(void **state)
{
	struct att_pcrsel p;
	char out[128];
	(void)state;
	assert_int_equal(att_pcrsel_parse("sha256:0-3,7", &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.sel[0].bank, ATT_TPM_ALG_SHA256);
	assert_int_equal(p.sel[0].mask, 0x8f);
	assert_int_equal(att_pcrsel_parse("sha1:0,7+sha256:23", &p, err, sizeof(err)), 0);
	att_pcrsel_format(&p, out, sizeof(out));
	assert_string_equal(out, "sha1:0,7+sha256:23");
	static const char *const bad[] = { "", "sha256", "sha256:", "sha256:24", "sha256:3-1", "md5:0",
					   "sha256:0+sha256:1", "sha256:0;", "sha256:0,", "sha1:0+sha256:0+sha384:0+sha512:0+sha1:1" };
	for (size_t i = 0; i < ATT_ARRAY_SIZE(bad); i++)
		assert_int_equal(att_pcrsel_parse(bad[i], &p, err, sizeof(err)), ATT_E_INVAL);
}

static void test_secrets_parse(void **state)
{
	struct att_agent_secrets s;
	char why[256];
	const char *ok = "{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\"vault-token\",\"version\":2,"
			 "\"value_b64\":\"aHZzLng=\",\"expires_at\":null},{\"name\":\"disk.key\",\"value_b64\":\"AP8=\"}]}";

	(void)state;
	assert_int_equal(att_agent_secrets_parse(ok, strlen(ok), "m1", &s, why, sizeof(why)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0].name, "vault-token");
	assert_int_equal(s.v[0].len, 5);
	assert_memory_equal(s.v[0].value, "hvs.x", 5);
	assert_int_equal(s.v[1].len, 2);
	att_agent_secrets_release(&s);
	/* for another machine */
	assert_int_equal(att_agent_secrets_parse(ok, strlen(ok), "m2", &s, why, sizeof(why)), ATT_E_PARSE);
	assert_non_null(strstr(why, "another machine"));
	/* names that are not plain file names */
	{
		static const char *const bad[] = {
			"{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\"../x\",\"value_b64\":\"AA==\"}]}",
			"{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\".hidden\",\"value_b64\":\"AA==\"}]}",
			"{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\"a/b\",\"value_b64\":\"AA==\"}]}",
			"{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\"a\",\"value_b64\":\"AA==\"},{\"name\":\"a\",\"value_b64\":\"AA==\"}]}",
			"{\"machine_id\":\"m1\",\"secrets\":[{\"name\":\"a\",\"value_b64\":\"!!\"}]}",
			"{\"machine_id\":\"m1\",\"secrets\":{}}",
			"[]",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			assert_int_equal(att_agent_secrets_parse(bad[i], strlen(bad[i]), "m1", &s, why, sizeof(why)), ATT_E_PARSE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse_forms),
		cmocka_unit_test(test_agent_body_add_identity_file_forms),
		cmocka_unit_test(test_url_parse_refuses),
		cmocka_unit_test(test_url_origin_and_base),
		cmocka_unit_test(test_url_base_from_talos_config),
		cmocka_unit_test(test_http_parse_content_length),
		cmocka_unit_test(test_http_parse_chunked_and_interim),
		cmocka_unit_test(test_http_parse_refuses),
		cmocka_unit_test(test_answer_attest),
		cmocka_unit_test(test_answer_attest_refuses),
		cmocka_unit_test(test_answer_challenge_and_register),
		cmocka_unit_test(test_answer_cred_blob),
		cmocka_unit_test(test_answer_envelope),
		cmocka_unit_test(test_answer_detail),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_backoff_grows_caps_and_resets),
		cmocka_unit_test(test_cmdline_get),
		cmocka_unit_test(test_cmdline_split),
		cmocka_unit_test(test_pcrsel),
		cmocka_unit_test(test_secrets_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
