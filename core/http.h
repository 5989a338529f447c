/*
 * http.h - incremental HTTP/1.1 request parser and WebSocket upgrade
 * validation (RFC 7230, RFC 6455 §4.2).  Layer: protocol.  Never logs,
 * never allocates: results are offsets into the caller's buffer.
 */
#ifndef WSY_HTTP_H
#define WSY_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#define HTTP_AGAIN         (-1)   /* need more bytes */
#define HTTP_ERR_BAD       (-400) /* malformed request */
#define HTTP_ERR_URI       (-414) /* request line longer than max_line */
#define HTTP_ERR_HEADERS   (-431) /* header bytes or count over limit */
#define HTTP_ERR_VERSION   (-505) /* not HTTP/1.x */

typedef struct http_limits {
	size_t max_line;      /* request line, default 8192 */
	size_t max_header_bytes; /* all header lines, default 16384 */
	size_t max_headers;   /* default 100; at most HTTP_MAX_HEADERS */
} http_limits;

#define HTTP_MAX_HEADERS 256

typedef struct http_span { size_t off, len; } http_span;

typedef struct http_req {
	/* results (valid once http_parse returned > 0) */
	http_span method, target, path, query;
	int minor;                 /* HTTP/1.<minor> */
	size_t n_headers;
	http_span hname[HTTP_MAX_HEADERS], hvalue[HTTP_MAX_HEADERS];
	/* private parser state */
	int state;
	size_t pos, mark, line_start, hdr_bytes;
} http_req;

void http_req_init(http_req *r);

/*
 * Parse the request accumulated in buf[0..len) (the caller appends bytes
 * and calls again; scanning resumes where it stopped, so one byte per call
 * is fine).  Returns the request length (> 0) once the blank line is seen
 * (bytes after it belong to the next protocol), HTTP_AGAIN, or an HTTP_ERR_*.
 */
ssize_t http_parse(http_req *r, const char *buf, size_t len,
    const http_limits *lim);

/* Index of the first header named name (case-insensitive), or -1. */
int http_find(const http_req *r, const char *buf, const char *name);

/* 1 if a header named name has token in its comma list (case-insensitive,
 * trimmed), across repeated headers. */
int http_has_token(const http_req *r, const char *buf, const char *name,
    const char *token);

/*
 * Validate a WebSocket upgrade: GET, HTTP/1.1, Upgrade: websocket,
 * Connection: upgrade, Host present, a Sec-WebSocket-Key that base64-decodes
 * to 16 bytes, Sec-WebSocket-Version 13.  Returns 0, 400, 405 (not GET), or
 * 426 (version; the response must carry Sec-WebSocket-Version: 13).
 * Returns 1 when it is a plain request, not an upgrade (no Upgrade header).
 */
int http_ws_validate(const http_req *r, const char *buf);

/* Sec-WebSocket-Accept for key (Nettle SHA-1 + base64), NUL-terminated in
 * out (at least 29 bytes). */
void http_ws_accept(const char *key, size_t key_len, char out[29]);

/* Reason phrase for a status code ("Not Found"), "Unknown" if unknown. */
const char *http_reason(int status);

/*
 * Percent-decode src into dst (NUL-terminated, at most dstlen bytes incl.
 * NUL).  Returns the decoded length, or -1 on a bad escape, an encoded NUL
 * or overflow.
 */
ssize_t http_unescape(const char *src, size_t len, char *dst, size_t dstlen);

#endif
