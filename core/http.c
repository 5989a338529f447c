/*
 * http.c - incremental HTTP/1.1 request parser (RFC 7230) and WebSocket
 * upgrade checks (RFC 6455 §4.2).  Layer: protocol.  A resumable state
 * machine in the nginx style: it reads only buf[r->pos..len), never assumes
 * a NUL terminator, never allocates and never logs.
 *
 * Line ends: CRLF or a bare LF (RFC 7230 §3.5 allows the latter; nothing
 * downstream re-parses the request, so there is no smuggling to fear); a
 * bare CR is an error.  An empty line before the request line is refused
 * rather than skipped: a WebSocket client has no earlier request to end.
 * A well-formed HTTP-version other than 1.x is HTTP_ERR_VERSION, a
 * malformed one HTTP_ERR_BAD.
 */
#include <stdint.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "http.h"

#define DEF_MAX_LINE        8192
#define DEF_MAX_HEADER_BYTES 16384
#define DEF_MAX_HEADERS     100

enum {
	/* request line: every state up to sw_rl_last counts against max_line */
	sw_start = 0,
	sw_method,
	sw_target_start,
	sw_scheme,
	sw_slash1,
	sw_slash2,
	sw_host,
	sw_path,
	sw_query,
	sw_http,
	sw_major,
	sw_dot,
	sw_minor,
	sw_version_end,
	sw_rl_last = sw_version_end,
	sw_rl_lf,
	/* header lines */
	sw_header_start,
	sw_name,
	sw_value_ows,
	sw_value,
	sw_header_lf,
	sw_final_lf,
	sw_done,
	sw_error
};

void http_req_init(http_req *r)
{
	memset(r, 0, sizeof(*r));
	r->state = sw_start;
}

/* tchar (RFC 7230 §3.2.6): "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A visible US-ASCII character (VCHAR), allowed in a request-target. */
static int is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* buf[off..off+len) equals the C string s, ignoring ASCII case. */
static int span_ieq(const char *buf, size_t off, size_t len, const char *s)
{
	size_t i;

	if (strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (lower((unsigned char)buf[off + i]) !=
		    lower((unsigned char)s[i]))
			return 0;
	return 1;
}

static void effective_limits(const http_limits *lim, http_limits *out)
{
	/* NULL or a zero field means the documented default. */
	out->max_line = lim && lim->max_line ? lim->max_line : DEF_MAX_LINE;
	out->max_header_bytes = lim && lim->max_header_bytes ?
	    lim->max_header_bytes : DEF_MAX_HEADER_BYTES;
	out->max_headers = lim && lim->max_headers ? lim->max_headers :
	    DEF_MAX_HEADERS;
	if (out->max_headers > HTTP_MAX_HEADERS)
		out->max_headers = HTTP_MAX_HEADERS;
}

/* The end of the request line: only major version 1 is spoken here. */
static int rl_end(http_req *r)
{
	return r->mark == 1 ? 0 : HTTP_ERR_VERSION;
}

/*
 * One byte of the request line.  Returns 0 to go on or an HTTP_ERR_*.
 * r->mark is scratch: index into "HTTP/", then the major version.
 */
static int parse_rl(http_req *r, const char *buf, size_t p)
{
	unsigned char c = (unsigned char)buf[p];

	switch (r->state) {
	case sw_start:
		if (!is_tchar(c))
			return HTTP_ERR_BAD;
		r->method.off = p;
		r->state = sw_method;
		return 0;
	case sw_method:
		if (c == ' ') {
			r->method.len = p - r->method.off;
			r->state = sw_target_start;
		} else if (!is_tchar(c))
			return HTTP_ERR_BAD;
		return 0;
	case sw_target_start:
		r->target.off = p;
		if (c == '/') {
			r->path.off = p;
			r->state = sw_path;
		} else if (c == 'h' || c == 'H')
			r->state = sw_scheme;   /* absolute-form, §5.3.2 */
		else
			return HTTP_ERR_BAD;    /* '*' and authority-form too */
		return 0;
	case sw_scheme:
		if (c == ':') {
			if (!span_ieq(buf, r->target.off, p - r->target.off,
			    "http") && !span_ieq(buf, r->target.off,
			    p - r->target.off, "https"))
				return HTTP_ERR_BAD;
			r->state = sw_slash1;
		} else if (p - r->target.off >= 5 ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return HTTP_ERR_BAD;
		return 0;
	case sw_slash1:
	case sw_slash2:
		if (c != '/')
			return HTTP_ERR_BAD;
		r->mark = p + 1;                /* host start */
		r->state++;
		return 0;
	case sw_host:
		if (c == '/' && p > r->mark) {
			r->path.off = p;
			r->state = sw_path;
		} else if (!is_vchar(c) || c == '/' || c == '?' || c == '#')
			return HTTP_ERR_BAD;    /* empty host or no path */
		return 0;
	case sw_path:
	case sw_query:
		if (c == ' ') {
			if (r->state == sw_path) {
				r->path.len = p - r->path.off;
				r->query.off = p;
				r->query.len = 0;
			} else
				r->query.len = p - r->query.off;
			r->target.len = p - r->target.off;
			r->mark = 0;
			r->state = sw_http;
		} else if (c == '?' && r->state == sw_path) {
			r->path.len = p - r->path.off;
			r->query.off = p + 1;
			r->state = sw_query;
		} else if (!is_vchar(c) || c == '#')
			return HTTP_ERR_BAD;    /* no fragment on the wire */
		return 0;
	case sw_http:
		if (c != (unsigned char)"HTTP/"[r->mark])
			return HTTP_ERR_BAD;
		if (++r->mark == 5)
			r->state = sw_major;
		return 0;
	case sw_major:
		if (c < '0' || c > '9')
			return HTTP_ERR_BAD;
		r->mark = c - '0';
		r->state = sw_dot;
		return 0;
	case sw_dot:
		if (c != '.')
			return HTTP_ERR_BAD;
		r->state = sw_minor;
		return 0;
	case sw_minor:
		if (c < '0' || c > '9')
			return HTTP_ERR_BAD;
		r->minor = c - '0';
		r->state = sw_version_end;
		return 0;
	case sw_version_end:
		if (c == '\r')
			r->state = sw_rl_lf;
		else if (c == '\n')
			r->state = sw_header_start;
		else
			return HTTP_ERR_BAD;
		return rl_end(r);
	case sw_rl_lf:
		if (c != '\n')
			return HTTP_ERR_BAD;
		r->state = sw_header_start;
		return 0;
	}
	return HTTP_ERR_BAD;
}

static int header_end(http_req *r, size_t p)
{
	r->n_headers++;
	r->line_start = p + 1;
	r->state = sw_header_start;
	return 0;
}

/*
 * One byte of the header section.  Values are trimmed of OWS as they are
 * scanned: hvalue[n].len only grows over non-blank bytes.  Returns 0 or an
 * HTTP_ERR_*.
 */
static int parse_hdr(http_req *r, size_t p, unsigned char c,
    const http_limits *lim)
{
	size_t n = r->n_headers;

	switch (r->state) {
	case sw_header_start:
		if (c == '\r') {
			r->state = sw_final_lf;
			return 0;
		}
		if (c == '\n') {
			r->state = sw_done;
			return 0;
		}
		if (!is_tchar(c))
			return HTTP_ERR_BAD;    /* obs-fold (§3.2.4) or junk */
		if (n >= lim->max_headers)
			return HTTP_ERR_HEADERS;
		r->hname[n].off = p;
		r->state = sw_name;
		return 0;
	case sw_name:
		if (c == ':') {
			r->hname[n].len = p - r->hname[n].off;
			r->hvalue[n].off = p + 1;
			r->hvalue[n].len = 0;
			r->state = sw_value_ows;
		} else if (!is_tchar(c))
			return HTTP_ERR_BAD;    /* incl. blank before ':' */
		return 0;
	case sw_value_ows:
	case sw_value:
		if (c == ' ' || c == '\t') {
			if (r->state == sw_value_ows)
				r->hvalue[n].off = p + 1;
		} else if (c == '\r')
			r->state = sw_header_lf;
		else if (c == '\n')
			return header_end(r, p);
		else if (c < 0x20 || c == 0x7f)
			return HTTP_ERR_BAD;
		else {
			r->hvalue[n].len = p + 1 - r->hvalue[n].off;
			r->state = sw_value;
		}
		return 0;
	case sw_header_lf:
		if (c != '\n')
			return HTTP_ERR_BAD;
		return header_end(r, p);
	case sw_final_lf:
		if (c != '\n')
			return HTTP_ERR_BAD;
		r->state = sw_done;
		return 0;
	}
	return HTTP_ERR_BAD;
}

/*
 * Whether byte c, seen in state, belongs to a header line (its line end
 * included) and so counts against max_header_bytes.  The blank line that
 * ends the section does not; neither does a byte that starts no valid
 * header, since parse_hdr rejects it anyway.
 */
static int is_header_byte(int state, unsigned char c)
{
	if (state == sw_final_lf)
		return 0;
	if (state == sw_header_start)
		return is_tchar(c);
	return 1;
}

ssize_t http_parse(http_req *r, const char *buf, size_t len,
    const http_limits *lim)
{
	http_limits l;
	size_t p;
	int err;

	if (r->state == sw_done)
		return (ssize_t)r->pos;
	if (r->state == sw_error)
		return -(ssize_t)r->mark;
	effective_limits(lim, &l);

	for (p = r->pos; p < len; p++) {
		unsigned char c = (unsigned char)buf[p];

		if (r->state <= sw_rl_last && c != '\r' && c != '\n' &&
		    p - r->line_start >= l.max_line)
			err = HTTP_ERR_URI;
		else if (r->state <= sw_rl_lf)
			err = parse_rl(r, buf, p);
		else if (is_header_byte(r->state, c) &&
		    ++r->hdr_bytes > l.max_header_bytes)
			err = HTTP_ERR_HEADERS;
		else
			err = parse_hdr(r, p, c, &l);
		if (err) {
			r->state = sw_error;
			r->mark = (size_t)-err;
			r->pos = p;
			return err;
		}
		if (r->state == sw_done) {
			r->pos = p + 1;
			return (ssize_t)r->pos;
		}
	}
	r->pos = len;
	return HTTP_AGAIN;
}

int http_find(const http_req *r, const char *buf, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++)
		if (span_ieq(buf, r->hname[i].off, r->hname[i].len, name))
			return (int)i;
	return -1;
}

/* How many headers are named name: some must appear exactly once. */
static size_t http_count(const http_req *r, const char *buf, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < r->n_headers; i++)
		if (span_ieq(buf, r->hname[i].off, r->hname[i].len, name))
			n++;
	return n;
}

/* 1 if the comma list buf[off..off+len) holds token, elements trimmed. */
static int list_has(const char *buf, size_t off, size_t len, const char *token)
{
	size_t end = off + len, s, e;

	while (off < end) {
		for (e = off; e < end && buf[e] != ','; e++)
			;
		for (s = off; s < e && (buf[s] == ' ' || buf[s] == '\t'); s++)
			;
		off = e + 1;
		while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
		if (span_ieq(buf, s, e - s, token))
			return 1;
	}
	return 0;
}

int http_has_token(const http_req *r, const char *buf, const char *name,
    const char *token)
{
	size_t i;

	/* repeated headers are one list joined by commas (RFC 7230 §3.2.2) */
	for (i = 0; i < r->n_headers; i++)
		if (span_ieq(buf, r->hname[i].off, r->hname[i].len, name) &&
		    list_has(buf, r->hvalue[i].off, r->hvalue[i].len, token))
			return 1;
	return 0;
}

static int is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * A base64 string that decodes to exactly 16 bytes is 22 alphabet
 * characters and "==", and, being canonical, the last character carries
 * no stray bits: it is one of the four whose low 4 bits are zero.
 */
static int key_ok(const char *k, size_t len)
{
	size_t i;

	if (len != 24 || k[22] != '=' || k[23] != '=')
		return 0;
	for (i = 0; i < 22; i++)
		if (!is_b64((unsigned char)k[i]))
			return 0;
	return strchr("AQgw", k[21]) != NULL;
}

int http_ws_validate(const http_req *r, const char *buf)
{
	int k, v;

	if (http_find(r, buf, "Upgrade") < 0)
		return 1;
	/* the method is case-sensitive (RFC 7230 §3.1.1): "get" is not GET */
	if (r->method.len != 3 || memcmp(buf + r->method.off, "GET", 3) != 0)
		return 405;
	if (r->minor < 1)
		return 400;             /* RFC 6455 §4.1: HTTP/1.1 or higher */
	if (!http_has_token(r, buf, "Upgrade", "websocket") ||
	    !http_has_token(r, buf, "Connection", "upgrade"))
		return 400;
	if (http_count(r, buf, "Host") != 1)
		return 400;             /* RFC 7230 §5.4 */
	k = http_find(r, buf, "Sec-WebSocket-Key");
	if (k < 0 || http_count(r, buf, "Sec-WebSocket-Key") != 1 ||
	    !key_ok(buf + r->hvalue[k].off, r->hvalue[k].len))
		return 400;
	v = http_find(r, buf, "Sec-WebSocket-Version");
	if (v < 0)
		return 400;
	/* a version we do not speak is answered with the one we do (§4.4) */
	if (http_count(r, buf, "Sec-WebSocket-Version") != 1 ||
	    r->hvalue[v].len != 2 || memcmp(buf + r->hvalue[v].off, "13", 2))
		return 426;
	return 0;
}

void http_ws_accept(const char *key, size_t key_len, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, key_len, (const uint8_t *)key);
	sha1_update(&ctx, sizeof(guid) - 1, (const uint8_t *)guid);
	sha1_digest(&ctx, sizeof(digest), digest);
	base64_encode_raw(out, sizeof(digest), digest);
	out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 101, "Switching Protocols" },
	{ 200, "OK" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 426, "Upgrade Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

const char *http_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t http_unescape(const char *src, size_t len, char *dst, size_t dstlen)
{
	size_t i, n = 0;
	int c, hi, lo;

	for (i = 0; i < len; i++) {
		c = (unsigned char)src[i];
		if (c == '%') {
			if (len - i < 3)
				return -1;
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		/* a NUL would silently cut the C string the caller gets */
		if (c == 0 || n + 1 >= dstlen)
			return -1;
		dst[n++] = (char)c;
	}
	if (dstlen == 0)
		return -1;
	dst[n] = '\0';
	return (ssize_t)n;
}
