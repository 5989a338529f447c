/*
 * test_http.c - the HTTP request parser and the WebSocket upgrade checks.
 * Every parser case runs twice, whole and one byte per call, and both must
 * give the same answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/http.h"
#include "test.h"

#define WHOLE 0                 /* want: the length of head */

struct pcase {
	const char *head;       /* the request */
	const char *tail;       /* bytes after it (next protocol), or NULL */
	ssize_t want;           /* WHOLE, or an HTTP_* result */
	http_limits lim;
};

static const struct pcase pcases[] = {
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, WHOLE, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\x81\x05hello", WHOLE,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
	    WHOLE, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\n\r\n", NULL, WHOLE, { 0, 0, 0 } },
	/* bare LF ends a line (RFC 7230 §3.5 allows it), mixed too */
	{ "GET / HTTP/1.1\nHost: a\n\n", NULL, WHOLE, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\n\r\n", "x", WHOLE, { 0, 0, 0 } },
	/* a bare CR does not */
	{ "GET / HTTP/1.1\rHost: a\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\n\rx", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	/* incomplete */
	{ "GET / HTTP/1.1\r\nHost: a\r\n", NULL, HTTP_AGAIN, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r", NULL, HTTP_AGAIN, { 0, 0, 0 } },
	{ "GET /chat?x", NULL, HTTP_AGAIN, { 0, 0, 0 } },
	{ "", NULL, HTTP_AGAIN, { 0, 0, 0 } },
	/* malformed header lines */
	{ "GET / HTTP/1.1\r\nHost a\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\n: a\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nX\xff: a\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	/* obs-text in a value is fine */
	{ "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", NULL, WHOLE,
	    { 0, 0, 0 } },
	/* malformed request lines */
	{ "G(T / HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ " GET / HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET  / HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1.1 \r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET /\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / \r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "\r\nGET / HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET a HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET * HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET /a#b HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET /a\tb HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET ftp://h/ HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET http:/h/ HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET http:/// HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET httpss://h/ HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_BAD,
	    { 0, 0, 0 } },
	{ "GET HTTPS://h/ HTTP/1.1\r\n\r\n", NULL, WHOLE, { 0, 0, 0 } },
	/* versions: well-formed but not 1.x is 505, junk is 400 */
	{ "GET / HTTP/1.0\r\n\r\n", NULL, WHOLE, { 0, 0, 0 } },
	{ "GET / HTTP/1.9\r\n\r\n", NULL, WHOLE, { 0, 0, 0 } },
	{ "GET / HTTP/2.0\r\n\r\n", NULL, HTTP_ERR_VERSION, { 0, 0, 0 } },
	{ "GET / HTTP/0.9\r\n\r\n", NULL, HTTP_ERR_VERSION, { 0, 0, 0 } },
	{ "GET / HTTP/2.0\n\n", NULL, HTTP_ERR_VERSION, { 0, 0, 0 } },
	{ "GET / HTTP/1.10\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/11.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/x.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1.x\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTP/1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / http/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	{ "GET / HTTQ/1.1\r\n\r\n", NULL, HTTP_ERR_BAD, { 0, 0, 0 } },
	/* max_line counts the request line without its CRLF */
	{ "GET /abcdef HTTP/1.1\r\n\r\n", NULL, WHOLE, { 20, 0, 0 } },
	{ "GET /abcdef HTTP/1.1\r\n\r\n", NULL, HTTP_ERR_URI, { 19, 0, 0 } },
	{ "GET /abcdef HTTP/1.1\n\n", NULL, HTTP_ERR_URI, { 19, 0, 0 } },
	{ "GET /abcdefghijklmnopq", NULL, HTTP_ERR_URI, { 19, 0, 0 } },
	/* ... and not the header lines */
	{ "GET / HTTP/1.1\r\nX-Long-Header: 0123456789\r\n\r\n", NULL, WHOLE,
	    { 16, 0, 0 } },
	/* max_header_bytes counts header lines with their CRLF */
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", NULL, WHOLE,
	    { 0, 15, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", NULL, HTTP_ERR_HEADERS,
	    { 0, 14, 0 } },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: bbbbbbbbbbbb", NULL,
	    HTTP_ERR_HEADERS, { 0, 14, 0 } },
	/* max_headers */
	{ "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", NULL, WHOLE, { 0, 0, 2 } },
	{ "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", NULL,
	    HTTP_ERR_HEADERS, { 0, 0, 2 } },
};

/* Feed buf one byte per call, the way a slow client would. */
static ssize_t parse_bytes(http_req *r, const char *buf, size_t len,
    const http_limits *lim)
{
	ssize_t rc = HTTP_AGAIN;
	size_t i;

	for (i = 1; i <= len && rc == HTTP_AGAIN; i++)
		rc = http_parse(r, buf, i, lim);
	return rc;
}

static void test_table(void)
{
	char buf[512];
	size_t i, len;
	ssize_t want, whole, bytes;
	http_req r1, r2;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];

		len = (size_t)snprintf(buf, sizeof(buf), "%s%s", c->head,
		    c->tail != NULL ? c->tail : "");
		want = c->want == WHOLE ? (ssize_t)strlen(c->head) : c->want;
		http_req_init(&r1);
		http_req_init(&r2);
		whole = http_parse(&r1, buf, len, &c->lim);
		bytes = parse_bytes(&r2, buf, len, &c->lim);
		if (whole != want || bytes != want)
			fprintf(stderr, "case %zu: %s\n", i, c->head);
		CHECK_EQ(whole, want);
		CHECK_EQ(bytes, want);
		/* the answer sticks: a done or failed parser says it again */
		if (want != HTTP_AGAIN)
			CHECK_EQ(http_parse(&r1, buf, len, &c->lim), want);
		if (want > 0) {
			CHECK_EQ(r1.n_headers, r2.n_headers);
			CHECK_EQ(r1.path.off, r2.path.off);
			CHECK_EQ(r1.path.len, r2.path.len);
		}
	}
}

#define SPAN_IS(buf, sp, s) \
	CHECK((sp).len == strlen(s) && memcmp((buf) + (sp).off, (s), \
	    (sp).len) == 0)

static void test_fields(void)
{
	static const char req[] =
	    "GET /chat?a=1&b=2 HTTP/1.1\r\n"
	    "Host: example.com\r\n"
	    "X-Blank:\r\n"
	    "X-Trim: \t spaced  out \t\r\n"
	    "\r\n";
	static const char abs[] =
	    "GET http://example.com:8080/p/q HTTP/1.0\r\n\r\n";
	http_req r;

	http_req_init(&r);
	CHECK_EQ(http_parse(&r, req, sizeof(req) - 1, NULL), sizeof(req) - 1);
	SPAN_IS(req, r.method, "GET");
	SPAN_IS(req, r.target, "/chat?a=1&b=2");
	SPAN_IS(req, r.path, "/chat");
	SPAN_IS(req, r.query, "a=1&b=2");
	CHECK_EQ(r.minor, 1);
	CHECK_EQ(r.n_headers, 3);
	SPAN_IS(req, r.hname[0], "Host");
	SPAN_IS(req, r.hvalue[0], "example.com");
	SPAN_IS(req, r.hname[1], "X-Blank");
	SPAN_IS(req, r.hvalue[1], "");
	SPAN_IS(req, r.hname[2], "X-Trim");
	SPAN_IS(req, r.hvalue[2], "spaced  out");

	http_req_init(&r);
	CHECK_EQ(parse_bytes(&r, abs, sizeof(abs) - 1, NULL), sizeof(abs) - 1);
	SPAN_IS(abs, r.target, "http://example.com:8080/p/q");
	SPAN_IS(abs, r.path, "/p/q");
	SPAN_IS(abs, r.query, "");
	CHECK_EQ(r.minor, 0);
	CHECK_EQ(r.n_headers, 0);
}

/* A request with n headers "H: v" built on the heap. */
static char *many_headers(size_t n, size_t *len)
{
	char *buf = malloc(32 + n * 6), *p = buf;
	size_t i;

	p += sprintf(p, "GET / HTTP/1.1\r\n");
	for (i = 0; i < n; i++)
		p += sprintf(p, "H: v\r\n");
	p += sprintf(p, "\r\n");
	*len = (size_t)(p - buf);
	return buf;
}

static void test_limits(void)
{
	http_limits big = { 0, 1 << 20, 1000 };
	http_req r;
	char *buf, line[8300];
	size_t len;

	/* max_headers is capped at HTTP_MAX_HEADERS whatever is asked */
	buf = many_headers(HTTP_MAX_HEADERS, &len);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, len, &big), len);
	CHECK_EQ(r.n_headers, HTTP_MAX_HEADERS);
	free(buf);
	buf = many_headers(HTTP_MAX_HEADERS + 1, &len);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, len, &big), HTTP_ERR_HEADERS);
	free(buf);

	/* the defaults: 100 headers, 8192-byte request line */
	buf = many_headers(100, &len);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, len, NULL), len);
	free(buf);
	buf = many_headers(101, &len);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, len, NULL), HTTP_ERR_HEADERS);
	free(buf);

	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', 8178);
	memcpy(line + 8183, " HTTP/1.1\r\n\r\n", 13);   /* 8192 + CRLF */
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, line, 8196, NULL), 8196);
	line[5 + 8178] = 'a';                           /* one more */
	memcpy(line + 8184, " HTTP/1.1\r\n\r\n", 13);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, line, 8197, NULL), HTTP_ERR_URI);

	/* 16384 header bytes by default, one long line will do */
	buf = malloc(16500);
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	memset(buf + 19, 'a', 16379);
	memcpy(buf + 19 + 16379, "\r\n\r\n", 4);   /* 16384 with CRLF */
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, 19 + 16379 + 4, NULL), 19 + 16379 + 4);
	memcpy(buf + 19 + 16379, "a\r\n\r\n", 5);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, buf, 19 + 16379 + 5, NULL), HTTP_ERR_HEADERS);
	free(buf);

	buf = many_headers(200, &len);
	http_req_init(&r);
	big.max_headers = 256;
	big.max_header_bytes = 200 * 6;
	CHECK_EQ(http_parse(&r, buf, len, &big), len);
	http_req_init(&r);
	big.max_header_bytes = 200 * 6 - 1;
	CHECK_EQ(http_parse(&r, buf, len, &big), HTTP_ERR_HEADERS);
	free(buf);

	/* an encoded NUL in a header value */
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 26, NULL),
	    HTTP_ERR_BAD);
	http_req_init(&r);
	CHECK_EQ(http_parse(&r, "GET /\0 HTTP/1.1\r\n\r\n", 19, NULL),
	    HTTP_ERR_BAD);
}

static void test_find(void)
{
	static const char req[] =
	    "GET / HTTP/1.1\r\n"
	    "Host: h\r\n"
	    "Connection: keep-alive, Upgrade\r\n"
	    "X-List: ,, a ,\tb\t,\r\n"
	    "x-list: c\r\n"
	    "Y: upgrades\r\n"
	    "Z:\r\n"
	    "\r\n";
	http_req r;

	http_req_init(&r);
	CHECK_EQ(http_parse(&r, req, sizeof(req) - 1, NULL), sizeof(req) - 1);
	CHECK_EQ(http_find(&r, req, "host"), 0);
	CHECK_EQ(http_find(&r, req, "HOST"), 0);
	CHECK_EQ(http_find(&r, req, "connection"), 1);
	CHECK_EQ(http_find(&r, req, "x-LIST"), 2);
	CHECK_EQ(http_find(&r, req, "Hos"), -1);
	CHECK_EQ(http_find(&r, req, "Hosts"), -1);
	CHECK_EQ(http_find(&r, req, "Upgrade"), -1);

	CHECK_EQ(http_has_token(&r, req, "Connection", "upgrade"), 1);
	CHECK_EQ(http_has_token(&r, req, "connection", "KEEP-ALIVE"), 1);
	CHECK_EQ(http_has_token(&r, req, "Connection", "keep"), 0);
	CHECK_EQ(http_has_token(&r, req, "Connection", "alive, Upgrade"), 0);
	CHECK_EQ(http_has_token(&r, req, "X-List", "a"), 1);
	CHECK_EQ(http_has_token(&r, req, "X-List", "b"), 1);
	CHECK_EQ(http_has_token(&r, req, "X-List", "c"), 1);   /* repeated */
	CHECK_EQ(http_has_token(&r, req, "X-List", "d"), 0);
	CHECK_EQ(http_has_token(&r, req, "Y", "upgrade"), 0);
	CHECK_EQ(http_has_token(&r, req, "Z", "upgrade"), 0);
	CHECK_EQ(http_has_token(&r, req, "Missing", "upgrade"), 0);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

struct vcase {
	const char *req;
	int want;
};

static const struct vcase vcases[] = {
	{ "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 0 },
	/* names and tokens are case-insensitive, lists fine */
	{ "GET / HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\n"
	  "connection: keep-alive, upgrade\r\nsec-websocket-key: " KEY "\r\n"
	  "sec-websocket-version: 13\r\n\r\n", 0 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: keep-alive\r\nConnection: Upgrade\r\n"
	  "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
	  0 },
	/* no Upgrade header: a plain request, whatever else */
	{ "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1 },
	{ "POST / HTTP/1.0\r\nConnection: Upgrade\r\n\r\n", 1 },
	/* the method */
	{ "POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 405 },
	{ "get / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 405 },
	{ "GETS / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 405 },
	/* HTTP/1.0 cannot upgrade */
	{ "GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	/* Upgrade to something else, Connection without upgrade */
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Sec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: keep-alive\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	/* Host missing or twice */
	{ "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	/* the key: missing, 15 bytes, 17 bytes, bad alphabet, stray bits,
	 * given twice */
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n"
	  "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n"
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\n"
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13\r\n\r\n", 400 },
	/* the version: missing is malformed, another one is 426 */
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 8\r\n\r\n", 426 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 13, 8\r\n\r\n", 426 },
	{ "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	  "Sec-WebSocket-Version: 130\r\n\r\n", 426 },
};

static void test_validate(void)
{
	size_t i, len;
	http_req r;

	for (i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		len = strlen(vcases[i].req);
		http_req_init(&r);
		CHECK_EQ(http_parse(&r, vcases[i].req, len, NULL), len);
		if (http_ws_validate(&r, vcases[i].req) != vcases[i].want)
			fprintf(stderr, "validate case %zu\n", i);
		CHECK_EQ(http_ws_validate(&r, vcases[i].req), vcases[i].want);
	}
}

static void test_accept(void)
{
	char out[29];

	/* RFC 6455 §1.3 (checked with sha1sum and base64 too) */
	memset(out, 'x', sizeof(out));
	http_ws_accept(KEY, strlen(KEY), out);
	CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	/* only key_len bytes of the key count */
	http_ws_accept(KEY "junk", strlen(KEY), out);
	CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void test_unescape(void)
{
	char dst[16];

	CHECK_EQ(http_unescape("/a%2e%2E/b", 10, dst, sizeof(dst)), 6);
	CHECK(strcmp(dst, "/a../b") == 0);
	CHECK_EQ(http_unescape("a%20b+c", 7, dst, sizeof(dst)), 5);
	CHECK(strcmp(dst, "a b+c") == 0);
	CHECK_EQ(http_unescape("caf%C3%a9", 9, dst, sizeof(dst)), 5);
	CHECK(strcmp(dst, "caf\xc3\xa9") == 0);
	CHECK_EQ(http_unescape("", 0, dst, sizeof(dst)), 0);
	CHECK(dst[0] == '\0');
	/* only len bytes are read */
	CHECK_EQ(http_unescape("abc%zz", 3, dst, sizeof(dst)), 3);
	CHECK(strcmp(dst, "abc") == 0);

	CHECK_EQ(http_unescape("%00", 3, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("a\0b", 3, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("%zz", 3, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("%2g", 3, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("%2", 2, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("ab%", 3, dst, sizeof(dst)), -1);
	CHECK_EQ(http_unescape("%2e%2", 5, dst, sizeof(dst)), -1);

	/* dstlen counts the NUL */
	CHECK_EQ(http_unescape("abc", 3, dst, 4), 3);
	CHECK_EQ(http_unescape("abcd", 4, dst, 4), -1);
	CHECK_EQ(http_unescape("ab%41", 5, dst, 4), 3);
	CHECK_EQ(http_unescape("ab%41%42", 8, dst, 4), -1);
	CHECK_EQ(http_unescape("", 0, dst, 1), 0);
	CHECK_EQ(http_unescape("", 0, dst, 0), -1);
	CHECK_EQ(http_unescape("a", 1, dst, 0), -1);
}

static void test_reason(void)
{
	CHECK(strcmp(http_reason(101), "Switching Protocols") == 0);
	CHECK(strcmp(http_reason(400), "Bad Request") == 0);
	CHECK(strcmp(http_reason(404), "Not Found") == 0);
	CHECK(strcmp(http_reason(405), "Method Not Allowed") == 0);
	CHECK(strcmp(http_reason(414), "URI Too Long") == 0);
	CHECK(strcmp(http_reason(426), "Upgrade Required") == 0);
	CHECK(strcmp(http_reason(431), "Request Header Fields Too Large") == 0);
	CHECK(strcmp(http_reason(505), "HTTP Version Not Supported") == 0);
	CHECK(strcmp(http_reason(999), "Unknown") == 0);
	CHECK(strcmp(http_reason(0), "Unknown") == 0);
	CHECK(strcmp(http_reason(-1), "Unknown") == 0);
}

int main(void)
{
	test_table();
	test_fields();
	test_limits();
	test_find();
	test_validate();
	test_accept();
	test_unescape();
	test_reason();
	return test_summary("http");
}
