/* http-fuzz - raw HTTP for tests of attestd's framing and limits.
 *
 *   http-fuzz raw HOST:PORT WAIT          send stdin as is; print the status code
 *                                         answered within WAIT seconds, or "none"
 *   http-fuzz drip HOST:PORT SECONDS      send a request's headers one byte every
 *                                         0.5 s; print after how many seconds the
 *                                         server closed the connection (or "open")
 *   http-fuzz hold HOST:PORT N            open N connections with partial headers;
 *                                         print how many the server accepted and
 *                                         kept; hold them until stdin closes
 *   http-fuzz fuzz HOST:PORT SECONDS SEED throw malformed and hostile requests at
 *                                         every unauthenticated route; exit 1 on
 *                                         any 5xx or a connection that stalls
 *
 * The fuzz mode mutates a table of valid requests (route, method, body)
 * and a table of hostile pieces: broken JSON, deep nesting, huge numbers,
 * bytes that are not UTF-8, control characters, duplicate keys, bad path
 * escapes, conflicting framing headers, oversized headers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_target(const char *hp)
{
	char host[64];
	const char *c = strrchr(hp, ':');

	if (!c || (size_t)(c - hp) >= sizeof(host))
		return -1;
	memcpy(host, hp, (size_t)(c - hp));
	host[c - hp] = '\0';
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, host, &target.sin_addr) == 1 ? 0 : -1;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The status code of the answer within wait seconds; 0: closed without
 * one; -1: nothing within wait. */
static int read_status(int fd, double wait)
{
	char buf[4096];
	size_t got = 0;
	double end = now() + wait;

	while (got < sizeof(buf) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)((end - now()) * 1000);
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n"))
			break;
	}
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) != 0 || got < 12)
		return 0;
	return atoi(buf + 9);
}

static int mode_raw(double wait)
{
	char *req = NULL;
	size_t n = 0, cap = 0;
	int fd, st;

	for (;;) {
		if (n + 4096 > cap) {
			cap = cap * 2 + 8192;
			req = realloc(req, cap);
			if (!req)
				return 2;
		}
		size_t r = fread(req + n, 1, 4096, stdin);

		if (r == 0)
			break;
		n += r;
	}
	fd = dial();
	if (fd < 0 || send_all(fd, req, n) < 0) {
		puts("refused");
		return 0;
	}
	st = read_status(fd, wait);
	if (st > 0)
		printf("%d\n", st);
	else
		puts(st == 0 ? "closed" : "none");
	close(fd);
	free(req);
	return 0;
}

static int mode_drip(double seconds)
{
	static const char hdr[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	double start = now();
	int fd = dial();

	if (fd < 0) {
		puts("refused");
		return 0;
	}
	for (size_t i = 0; now() - start < seconds; i = (i + 1) % (sizeof(hdr) - 1)) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (send_all(fd, hdr + (i < 40 ? i : 40 + i % 30), 1) < 0 ||
		    (poll(&p, 1, 500) == 1 && recv(fd, (char[256]){ 0 }, 256, 0) <= 0)) {
			printf("%.1f\n", now() - start);
			close(fd);
			return 0;
		}
	}
	puts("open");
	close(fd);
	return 0;
}

static int mode_hold(int n)
{
	int kept = 0, *fds = calloc((size_t)n, sizeof(int));
	char c;

	if (!fds)
		return 2;
	for (int i = 0; i < n; i++) {
		fds[i] = dial();
		if (fds[i] >= 0 && send_all(fds[i], "GET /healthz HTTP/1.1\r\nHo", 25) < 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	usleep(300000);
	for (int i = 0; i < n; i++) {	/* closed by the server (over a limit)? */
		struct pollfd p = { fds[i], POLLIN, 0 };

		if (fds[i] >= 0 && !(poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0))
			kept++;
	}
	printf("%d\n", kept);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

int http_fuzz_run(double seconds, unsigned seed);

int main(int argc, char **argv)
{
	if (argc < 4 || parse_target(argv[2]) < 0) {
		fprintf(stderr, "usage: http-fuzz raw|drip|hold|fuzz HOST:PORT ARG [SEED]\n");
		return 2;
	}
	if (strcmp(argv[1], "raw") == 0)
		return mode_raw(atof(argv[3]));
	if (strcmp(argv[1], "drip") == 0)
		return mode_drip(atof(argv[3]));
	if (strcmp(argv[1], "hold") == 0)
		return mode_hold(atoi(argv[3]));
	if (strcmp(argv[1], "fuzz") == 0 && argc == 5)
		return http_fuzz_run(atof(argv[3]), (unsigned)strtoul(argv[4], NULL, 10));
	fprintf(stderr, "http-fuzz: unknown mode %s\n", argv[1]);
	return 2;
}

/* ---- fuzz mode -------------------------------------------------------------------- */

struct route {
	const char *method, *path;
};

/* every route that needs no operator credential (routes/, AUTH_NONE and
 * AUTH_OPTIONAL) */
static const struct route routes[] = {
	{ "GET", "/healthz" }, { "GET", "/readyz" }, { "GET", "/metrics" },
	{ "POST", "/api/v1/register" }, { "POST", "/api/v1/self-register" },
	{ "GET", "/api/v1/attest/challenge" }, { "POST", "/api/v1/attest" },
	{ "GET", "/api/v1/config" }, { "GET", "/api/v1/config/TOKEN" },
	{ "POST", "/api/v1/machines/ID/ak-activate" }, { "POST", "/api/v1/machines/ID/ak-activate/complete" },
	{ "GET", "/ui/ASSET" }, { "GET", "/" }, { "GET", "/ui" }, { "GET", "/ui/" }, { "GET", "/api/v1/auth/whoami" },
	{ "POST", "/api/v1/machines/ID/approve" }, { "DELETE", "/api/v1/pcr-policies/ID" },
	{ "POST", "/api/v1/agents/attest" }, { "GET", "/api/v1/agents/jwks" },
};

static const char *const bodies[] = {
	"{}", "{", "}", "[]", "null", "1e999999", "\"x\"", "{\"a\":1,\"a\":2}",
	"{\"ek_fingerprint\":\"\",\"ek_cert_pem\":\"\"}",
	"{\"ek_fingerprint\":\"zz\",\"ek_cert_pem\":\"!!!\",\"hw_serial\":\"\\u001b]52;c;eA==\\u0007\"}",
	"{\"ek_fingerprint\":\"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "\",\"ek_cert_pem\":\"AAAA\"}",
	"{\"ek_source\":\"pub\",\"ek_cert_pem\":\"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\"}",
	"{\"nonce_id\":\"\\u0000\",\"pcr_quote\":\"/1RDR4AY\",\"pcr_signature\":\"AA\",\"pcr_values\":{\"sha256:99\":\"00\"}}",
	"{\"pcr_values\":{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\":1}}",
	"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\":1}",
	"{\"\xff\xfe\":\"\xc0\xaf\"}", "{\"x\":\"\xed\xa0\x80\"}", "{\"hw_uuid\":\"\\ud800\"}",
	"{\"desired_role\":\"controlplane\\u0000\"}", "{\"hostname\":\"NODE-1\",\"hw_mac\":\"zz:zz\"}",
	"{\"activation_id\":\"../../etc\",\"secret\":\"\"}", "{\"a\":-99999999999999999999999999999}",
	"{\"a\":1.7976931348623157e309}", "\xef\xbb\xbf{}", "{\"a\":\"\\uDFFF\\uD800\"}",
	"{\"evidence\":{\"extension\":{}},\"csr_pem\":\"-----BEGIN CERTIFICATE REQUEST-----\\nMIIBADCBpwIBADBF\\n-----END CERTIFICATE REQUEST-----\\n\"}",
};

static const char *const path_bits[] = {
	"%ff", "%00", "..", "%2e%2e", "%c3", "a%20b", "\xc3\xa9", "x/../y", "%", "%zz", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	"12345678-1234-4234-8234-123456789abc", "?mac=%ff", "?mac=${mac}", "?a=1&a=2", ";x", "//",
};

static const char *const extra_headers[] = {
	"", "Content-Length: 5\r\n", "Content-Length: 0\r\nContent-Length: 7\r\n", "Transfer-Encoding: chunked\r\n",
	"Content-Type: text/plain\r\n", "Content-Type: application/json; charset=\xff\r\n",
	"Authorization: Bearer \x01\x02\r\n", "Authorization: Basic Zm9vOmJhcg==\r\n", "X-Registration-Token: \r\n",
	"X-Break-Glass: x\r\n", "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n",
	"Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.\r\n", "If-None-Match: \"\xff\"\r\n",
	"Expect: 100-continue\r\n", "Content-Length: -1\r\n", "Content-Length: 99999999999999999999\r\n",
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xFFFFFFu;
}

#define PICK(a, s) (a[rnd(s) % (sizeof(a) / sizeof(a[0]))])

/* One request: a route with a mutated path, headers and body. */
static size_t build(unsigned *s, char *out, size_t cap, char *desc, size_t dl)
{
	const struct route *r = &PICK(routes, s);
	char path[512], body[4096];
	const char *hdr = PICK(extra_headers, s);
	size_t bl, n;
	const char *p;

	/* path: a placeholder replaced by a hostile bit, sometimes a suffix */
	p = strstr(r->path, "ID") ? "ID" : strstr(r->path, "TOKEN") ? "TOKEN" : strstr(r->path, "ASSET") ? "ASSET" : NULL;
	if (p) {
		size_t pre = (size_t)(strstr(r->path, p) - r->path);

		snprintf(path, sizeof(path), "%.*s%s%s", (int)pre, r->path, PICK(path_bits, s), strstr(r->path, p) + strlen(p));
	} else {
		snprintf(path, sizeof(path), "%s%s", r->path, rnd(s) % 4 == 0 ? PICK(path_bits, s) : "");
	}
	/* body: a hostile one, a truncation, a byte flip, or deep nesting */
	snprintf(body, sizeof(body), "%s", PICK(bodies, s));
	bl = strlen(body);
	switch (rnd(s) % 5) {
	case 0:
		bl = bl ? rnd(s) % bl : 0;
		break;
	case 1:
		if (bl)
			body[rnd(s) % bl] = (char)(rnd(s) & 0xFF ? rnd(s) & 0xFF : 1);
		break;
	case 2:
		n = 1 + rnd(s) % 2000;
		for (bl = 0; bl < n && bl < sizeof(body) / 2 - 1; bl++)
			body[bl] = '[';
		for (size_t i = 0; i < n && bl < sizeof(body) - 1; i++)
			body[bl++] = ']';
		break;
	default:
		break;
	}
	if (strcmp(hdr, "Content-Length: 5\r\n") == 0) {	/* exactly the declared 5 bytes */
		for (; bl < 5; bl++)
			body[bl] = ' ';
		bl = 5;
	}
	if (strncmp(hdr, "Content-Length", 14) == 0 || strncmp(hdr, "Transfer-Encoding", 17) == 0)
		n = (size_t)snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n%s\r\n",
				     r->method, path, hdr);
	else
		n = (size_t)snprintf(out, cap,
				     "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
				     r->method, path, hdr, bl);
	if (n + bl < cap) {
		memcpy(out + n, body, bl);
		n += bl;
	}
	snprintf(desc, dl, "%s %s [%.*s] body=%zu bytes", r->method, path, (int)strcspn(hdr, "\r"), hdr, bl);
	return n;
}

int http_fuzz_run(double seconds, unsigned seed)
{
	static char req[16384];
	char desc[1024];
	double end = now() + seconds;
	unsigned s = seed, total = 0, by_class[6] = { 0 }, stalls = 0;

	while (now() < end) {
		size_t n = build(&s, req, sizeof(req), desc, sizeof(desc));
		int fd = dial(), st;

		if (fd < 0) {
			fprintf(stderr, "connect failed after %u requests\n", total);
			return 1;
		}
		send_all(fd, req, n);
		st = read_status(fd, 10);
		close(fd);
		total++;
		if (st < 0) {
			stalls++;
			fprintf(stderr, "no answer within 10 s: %s\n", desc);
		} else if (st >= 500) {
			fprintf(stderr, "HTTP %d: %s\n", st, desc);
			by_class[5]++;
		} else {
			by_class[st / 100 < 6 ? st / 100 : 0]++;
		}
	}
	printf("%u requests: %u 2xx, %u 3xx, %u 4xx, %u 5xx, %u closed without answer, %u stalled\n", total,
	       by_class[2], by_class[3], by_class[4], by_class[5], by_class[0], stalls);
	return by_class[5] || stalls ? 1 : 0;
}
