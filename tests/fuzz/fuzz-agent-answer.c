/* The node agent's parsers of untrusted bytes: what the service (or
 * anyone in its place) answers, and the local inputs beside it.
 * Input: mode byte, then
 *   0: an HTTP/1.1 response (parsed as if the connection closed after
 *      it, and as if more might come); a complete one's body then goes
 *      through every answer parser below
 *   1: a JSON body for every answer parser (register, challenge,
 *      ak-activate and its completion, attest, config envelope, error
 *      detail, the opened secrets delivery), and the credential-blob splitter on the same bytes
 *   2: state.json
 *   3: a kernel command line (lookups) and a command to split
 *   4: a URL (parse, base, talos.config= derivation) and a PCR selection */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/answer.h"
#include "agent/cmdline.h"
#include "agent/http.h"
#include "agent/pcrsel.h"
#include "agent/secrets.h"
#include "agent/state.h"
#include "agent/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void answers(const char *b, size_t n)
{
	struct att_answer_register g;
	struct att_answer_challenge c;
	struct att_answer_activation a;
	struct att_answer_attest t;
	struct att_answer_envelope e;
	struct att_cred_blob cb;
	struct att_agent_secrets sec;
	char err[512], d[300];

	(void)att_answer_register_parse(b, n, &g, err, sizeof(err));
	(void)att_answer_challenge_parse(b, n, &c, err, sizeof(err));
	if (att_answer_activation_parse(b, n, &a, err, sizeof(err)) == 0)
		att_answer_activation_release(&a);
	(void)att_answer_activation_done_parse(b, n, "m", "000b", err, sizeof(err));
	(void)att_answer_attest_parse(b, n, &t, err, sizeof(err));
	if (att_answer_envelope_parse(b, n, &e, err, sizeof(err)) == 0)
		att_answer_envelope_release(&e);
	att_answer_detail(b, n, d, sizeof(d));
	(void)att_answer_cred_blob_split((const uint8_t *)b, n, &cb, err, sizeof(err));
	if (att_agent_secrets_parse(b, n, "m", &sec, err, sizeof(err)) == 0)
		att_agent_secrets_release(&sec);
}

static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	if (size < 1)
		return 0;
	switch (data[0]) {
	case 0: {
		struct att_http_resp r;

		if (att_http_parse(data + 1, size - 1, false, 1 << 16, &r, err, sizeof(err)) == 0)
			att_http_resp_release(&r);
		if (att_http_parse(data + 1, size - 1, true, 1 << 16, &r, err, sizeof(err)) == 0) {
			answers(r.body, r.body_len);
			att_http_resp_release(&r);
		}
		break;
	}
	case 1: {
		char *s = cstr(data + 1, size - 1);

		answers(s, size - 1);
		free(s);
		break;
	}
	case 2: {
		struct att_agent_state st;
		char *s = cstr(data + 1, size - 1), *out;

		if (att_agent_state_parse(s, size - 1, &st, err, sizeof(err)) == 0) {
			out = att_agent_state_render(&st);
			free(out);
		}
		free(s);
		break;
	}
	case 3: {
		char *s = cstr(data + 1, size - 1), v[256], **argv = NULL;

		(void)att_cmdline_get(s, size - 1, "itl.reg_url", v, sizeof(v));
		(void)att_cmdline_get(s, size - 1, "talos.config", v, sizeof(v));
		if (att_cmdline_split(s, &argv, err, sizeof(err)) > 0)
			free(argv);
		free(s);
		break;
	}
	case 4: {
		char *s = cstr(data + 1, size - 1), out[ATT_URL_MAX];
		struct att_url u;
		struct att_pcrsel p;

		(void)att_url_parse(s, &u, err, sizeof(err));
		(void)att_url_base(s, out, err, sizeof(err));
		(void)att_url_base_from_talos_config(s, out);
		if (att_pcrsel_parse(s, &p, err, sizeof(err)) == 0)
			att_pcrsel_format(&p, out, sizeof(out));
		free(s);
		break;
	}
	default:
		break;
	}
	return 0;
}
