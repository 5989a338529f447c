/*
 * unix.c - the unix backend: each query is asked of an external resolver
 * over a unix stream socket, one connection per query, in a line-based
 * text protocol (docs/backends.md has the full description):
 *
 *   request:  "key value" lines, then an empty line
 *             endpoint /chat
 *             header Cookie: a=1
 *             protocol chat
 *             ...
 *   answer:   one line
 *             peer tcp://127.0.0.1:5900 [protocol P] [framing F]
 *                 [framing-config C]
 *             status 404
 *
 * Values are escaped both ways: '\\' as "\\\\", newline as "\\n", any
 * other control character (and, in answers, a space inside a value) as
 * "\\xHH".
 *
 * Options:
 *   socket   path of the resolver's unix stream socket (required)
 *   timeout  seconds (decimals allowed) for connect + request + answer;
 *            default 2.  Past it the client gets 503.
 *
 * A resolver that is down (no socket, connection refused) gives 503 and a
 * rate-limited log line; the next query simply tries again.  Nothing here
 * blocks: the socket is non-blocking and driven by host->watch_fd.
 *
 * Only the public plugin header and libc/POSIX.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../plugins/websocksy_plugin.h"

#define UX_MAX_ANSWER	4096		/* longest answer line */
#define UX_MAX_REQUEST	(1 << 20)	/* the core bounds headers anyway */
#define UX_LOG_EVERY	5000		/* ms between like log lines */

/* A log line that may repeat per query is printed at most every
 * UX_LOG_EVERY ms; the next one says how many were left out. */
struct ux_rl {
	uint64_t last;
	unsigned suppressed;
	int used;
};

struct ux_query;

struct ux {
	const wsy_host *host;
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t timeout_ms;
	struct ux_query *queries;
	struct ux_rl rl_down, rl_timeout, rl_bad;
};

struct ux_query {
	struct ux *ux;
	uint64_t qid;
	uint64_t conn_id;
	int fd;
	int connecting;			/* connect() said EINPROGRESS */
	uint64_t timer;
	char *out;			/* the encoded request */
	size_t outlen, outoff;
	char *offered;			/* offered protocols, NUL-separated */
	size_t offeredlen;
	char in[UX_MAX_ANSWER + 1];
	size_t inlen;
	struct ux_query *next;
};

/* A parsed answer; the strings point into the answer line. */
struct ux_answer {
	int status;
	char *peer;
	char *protocol;
	char *framing;
	char *framing_config;
};

/* ---- the request encoder ---- */

struct ux_buf {
	char *p;
	size_t len, cap;
	int err;
};

static void ux_put(struct ux_buf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > UX_MAX_REQUEST || (p = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void ux_puts(struct ux_buf *b, const char *s)
{
	ux_put(b, s, strlen(s));
}

/* Append s escaped: no byte of it can end a line or be misread. */
static void ux_put_escaped(struct ux_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t run;
	char e[4];

	while (*p) {
		run = 0;
		while (p[run] >= 0x20 && p[run] != 0x7f && p[run] != '\\')
			run++;
		ux_put(b, (const char *)p, run);
		p += run;
		if (*p == '\0')
			break;
		if (*p == '\\') {
			ux_put(b, "\\\\", 2);
		} else if (*p == '\n') {
			ux_put(b, "\\n", 2);
		} else {
			e[0] = '\\';
			e[1] = 'x';
			e[2] = hex[*p >> 4];
			e[3] = hex[*p & 15];
			ux_put(b, e, 4);
		}
		p++;
	}
}

static void ux_line(struct ux_buf *b, const char *key, const char *value)
{
	ux_puts(b, key);
	ux_put(b, " ", 1);
	ux_put_escaped(b, value);
	ux_put(b, "\n", 1);
}

/* Does the core's request struct reach field?  (Structs only grow.) */
#define UX_HAS(req, field) ((req)->struct_size >= \
	offsetof(wsy_request, field) + sizeof((req)->field))

/* Encode req; returns the malloc'ed text and its length, or NULL. */
static char *ux_encode(const wsy_request *req, size_t *lenp)
{
	struct ux_buf b = { NULL, 0, 0, 0 };
	char num[64];
	size_t i;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)req->conn_id);
	ux_line(&b, "id", num);
	ux_line(&b, "endpoint", req->endpoint ? req->endpoint : "/");
	if (req->query && *req->query)
		ux_line(&b, "query", req->query);
	for (i = 0; i < req->n_headers; i++) {
		ux_puts(&b, "header ");
		ux_put_escaped(&b, req->headers[i].name);
		ux_put(&b, ": ", 2);
		ux_put_escaped(&b, req->headers[i].value);
		ux_put(&b, "\n", 1);
	}
	for (i = 0; i < req->n_protocols; i++)
		ux_line(&b, "protocol", req->protocols[i]);
	snprintf(num, sizeof(num), "%s %u", req->client_addr ?
	    req->client_addr : "-", (unsigned)req->client_port);
	ux_line(&b, "client", num);
	if (UX_HAS(req, tls))
		ux_line(&b, "tls", req->tls ? "1" : "0");
	if (UX_HAS(req, tls_sni) && req->tls_sni)
		ux_line(&b, "sni", req->tls_sni);
	if (UX_HAS(req, tls_alpn) && req->tls_alpn)
		ux_line(&b, "alpn", req->tls_alpn);
	if (UX_HAS(req, tls_version) && req->tls_version)
		ux_line(&b, "tls-version", req->tls_version);
	if (UX_HAS(req, tls_client_subject) && req->tls_client_subject)
		ux_line(&b, "client-subject", req->tls_client_subject);
	ux_put(&b, "\n", 1);
	if (b.err) {
		free(b.p);
		return NULL;
	}
	*lenp = b.len;
	return b.p;
}

/* ---- the answer parser ---- */

static int ux_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo the escapes in place.  A NUL (\x00), a stray control character
 * or a bad escape makes the value unusable: -1. */
static int ux_unescape(char *s)
{
	char *o = s;
	int h, l;

	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -1;
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		s++;
		if (*s == '\\') {
			*o++ = '\\';
		} else if (*s == 'n') {
			*o++ = '\n';
		} else if (*s == 'x' && (h = ux_hexval(s[1])) >= 0 &&
		    (l = ux_hexval(s[2])) >= 0 && (h | l) != 0) {
			*o++ = (char)(h << 4 | l);
			s += 2;
		} else {
			return -1;
		}
	}
	*o = '\0';
	return 0;
}

/* Cut the next space-separated word from *p; NULL at the end. */
static char *ux_word(char **p)
{
	char *s = *p, *e;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	e = s + strcspn(s, " ");
	if (*e)
		*e++ = '\0';
	*p = e;
	return s;
}

static int ux_parse_status(char *p, struct ux_answer *a, const char **why)
{
	char *v = ux_word(&p), *end;
	long code;

	if (v == NULL || ux_word(&p) != NULL) {
		*why = "status: one code expected";
		return -1;
	}
	code = strtol(v, &end, 10);
	if (*end || code < 400 || code > 599) {
		*why = "status: not a code from 400 to 599";
		return -1;
	}
	a->status = (int)code;
	return 0;
}

/* "peer URI" then "key value" pairs, each key at most once. */
static int ux_parse_peer(char *p, struct ux_answer *a, const char **why)
{
	char *k, *v, **slot;

	if ((a->peer = ux_word(&p)) == NULL || ux_unescape(a->peer) < 0 ||
	    strstr(a->peer, "://") == NULL) {
		*why = "peer: a URI expected";
		return -1;
	}
	while ((k = ux_word(&p)) != NULL) {
		if (strcmp(k, "protocol") == 0)
			slot = &a->protocol;
		else if (strcmp(k, "framing") == 0)
			slot = &a->framing;
		else if (strcmp(k, "framing-config") == 0)
			slot = &a->framing_config;
		else {
			*why = "unknown key (protocol, framing, "
			    "framing-config)";
			return -1;
		}
		if (*slot != NULL || (v = ux_word(&p)) == NULL ||
		    ux_unescape(v) < 0) {
			*why = "a key repeated, without a value, or with a "
			    "bad escape";
			return -1;
		}
		*slot = v;
	}
	return 0;
}

/* Parse one answer line (without its newline; a trailing CR is allowed).
 * Returns 0, or -1 with *why. */
static int ux_parse_answer(char *line, struct ux_answer *a, const char **why)
{
	size_t n = strlen(line);
	char *p = line, *kind;

	memset(a, 0, sizeof(*a));
	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';
	if ((kind = ux_word(&p)) == NULL) {
		*why = "empty answer";
		return -1;
	}
	if (strcmp(kind, "status") == 0)
		return ux_parse_status(p, a, why);
	if (strcmp(kind, "peer") == 0)
		return ux_parse_peer(p, a, why);
	*why = "neither \"peer\" nor \"status\"";
	return -1;
}

/* An answer may only choose a protocol the client offered (RFC 6455
 * §4.2.2): anything else would make the client fail the connection. */
static int ux_offered(const struct ux_query *q, const char *proto)
{
	const char *p = q->offered;

	while (p < q->offered + q->offeredlen) {
		if (strcmp(p, proto) == 0)
			return 1;
		p += strlen(p) + 1;
	}
	return 0;
}

/* ---- queries ---- */

static void ux_io_cb(int fd, int events, void *arg);

static void ux_log(struct ux *ux, struct ux_rl *rl, int level,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void ux_log(struct ux *ux, struct ux_rl *rl, int level,
    const char *fmt, ...)
{
	uint64_t now = ux->host->now_ms();
	char msg[512];
	va_list ap;

	if (rl->used && now - rl->last < UX_LOG_EVERY) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		ux->host->log(level, "%s (%u more like it not logged)", msg,
		    rl->suppressed);
	else
		ux->host->log(level, "%s", msg);
	rl->used = 1;
	rl->last = now;
	rl->suppressed = 0;
}

/* Take q off the list (if it is still on it). */
static void ux_unlink(struct ux_query *q)
{
	struct ux_query **pp = &q->ux->queries;

	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	q->next = NULL;
}

/* Take q off the list and release everything it holds (no answer). */
static void ux_drop(struct ux_query *q)
{
	ux_unlink(q);
	if (q->fd >= 0) {
		q->ux->host->unwatch_fd(q->fd);
		close(q->fd);
	}
	if (q->timer)
		q->ux->host->timer_cancel(q->timer);
	free(q->out);
	free(q->offered);
	free(q);
}

/* Answer with a status, then drop q.  q is off the list before answer()
 * runs, so a cancel() from inside it finds nothing. */
static void ux_fail(struct ux_query *q, int status)
{
	const wsy_host *host = q->ux->host;
	uint64_t qid = q->qid;
	wsy_answer a;

	ux_drop(q);
	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	a.status = status;
	host->answer(qid, &a);
}

/* A full answer line arrived. */
static void ux_done(struct ux_query *q, char *line)
{
	const wsy_host *host = q->ux->host;
	struct ux_answer r;
	const char *why;
	wsy_answer a;
	uint64_t qid = q->qid;

	if (ux_parse_answer(line, &r, &why) < 0 ||
	    (r.protocol && !ux_offered(q, r.protocol) &&
	    (why = "protocol not offered by the client"))) {
		ux_log(q->ux, &q->ux->rl_bad, WSY_LOG_WARN, "[%llu] unix "
		    "backend: bad answer from %s: %s",
		    (unsigned long long)q->conn_id, q->ux->socket, why);
		ux_fail(q, 500);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	a.status = r.status;
	a.peer = r.peer;
	a.protocol = r.protocol;
	a.framing = r.framing;
	a.framing_config = r.framing_config;
	/* the strings live in q->in: answer, then free q; q is off the
	 * list first so a cancel() from inside answer() cannot free it */
	ux_unlink(q);
	host->answer(qid, &a);
	ux_drop(q);
}

/* The resolver cannot be reached or went away: 503, tried again on the
 * next query since every query has its own connection. */
static void ux_down(struct ux_query *q, const char *why)
{
	ux_log(q->ux, &q->ux->rl_down, WSY_LOG_WARN, "[%llu] unix backend: "
	    "resolver %s: %s: answering 503",
	    (unsigned long long)q->conn_id, q->ux->socket, why);
	ux_fail(q, 503);
}

static void ux_write(struct ux_query *q)
{
	socklen_t el = sizeof(int);
	ssize_t n;
	int e = 0;

	if (q->connecting) {
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e != 0) {
			ux_down(q, strerror(e));
			return;
		}
		q->connecting = 0;
	}
	while (q->outoff < q->outlen) {
		n = send(q->fd, q->out + q->outoff, q->outlen - q->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			ux_down(q, strerror(errno));
			return;
		}
		q->outoff += (size_t)n;
	}
	free(q->out);
	q->out = NULL;
	if (q->ux->host->watch_fd(q->fd, WSY_EV_READ, ux_io_cb, q) < 0)
		ux_fail(q, 500);
}

static void ux_read(struct ux_query *q)
{
	ssize_t n;
	char *nl;

	for (;;) {
		n = recv(q->fd, q->in + q->inlen, UX_MAX_ANSWER - q->inlen,
		    MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			ux_down(q, n == 0 ? "closed without an answer" :
			    strerror(errno));
			return;
		}
		q->inlen += (size_t)n;
		q->in[q->inlen] = '\0';
		if ((nl = memchr(q->in, '\n', q->inlen)) != NULL) {
			*nl = '\0';
			if (strlen(q->in) != (size_t)(nl - q->in)) {
				ux_log(q->ux, &q->ux->rl_bad, WSY_LOG_WARN,
				    "[%llu] unix backend: bad answer from "
				    "%s: a NUL byte",
				    (unsigned long long)q->conn_id,
				    q->ux->socket);
				ux_fail(q, 500);
			} else {
				ux_done(q, q->in);
			}
			return;
		}
		if (q->inlen == UX_MAX_ANSWER) {
			ux_log(q->ux, &q->ux->rl_bad, WSY_LOG_WARN, "[%llu] "
			    "unix backend: bad answer from %s: longer than "
			    "%d bytes", (unsigned long long)q->conn_id,
			    q->ux->socket, UX_MAX_ANSWER);
			ux_fail(q, 500);
			return;
		}
	}
}

/* Write the request while there is some left, then read the answer.
 * events is not needed: the I/O itself tells errors apart. */
static void ux_io_cb(int fd, int events, void *arg)
{
	struct ux_query *q = arg;

	(void)fd;
	(void)events;
	if (q->out != NULL)
		ux_write(q);
	else
		ux_read(q);
}

static void ux_timeout(void *arg)
{
	struct ux_query *q = arg;

	q->timer = 0;		/* it fired: nothing to cancel */
	ux_log(q->ux, &q->ux->rl_timeout, WSY_LOG_WARN, "[%llu] unix "
	    "backend: resolver %s did not answer within %llu ms: answering "
	    "503", (unsigned long long)q->conn_id, q->ux->socket,
	    (unsigned long long)q->ux->timeout_ms);
	ux_fail(q, 503);
}

/* Copy the offered protocols: req is borrowed for the call only, and the
 * answer's protocol is checked against them later. */
static int ux_copy_offered(struct ux_query *q, const wsy_request *req)
{
	size_t i, n = 0, l;

	for (i = 0; i < req->n_protocols; i++)
		n += strlen(req->protocols[i]) + 1;
	if ((q->offered = malloc(n + 1)) == NULL)
		return -1;
	for (i = 0; i < req->n_protocols; i++) {
		l = strlen(req->protocols[i]) + 1;
		memcpy(q->offered + q->offeredlen, req->protocols[i], l);
		q->offeredlen += l;
	}
	return 0;
}

/* Connect (non-blocking) and wait for the socket to take the request. */
static int ux_query(void *st, const wsy_request *req, uint64_t qid)
{
	struct ux *ux = st;
	struct sockaddr_un sa;
	struct ux_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return WSY_ERROR;
	q->ux = ux;
	q->qid = qid;
	q->conn_id = req->conn_id;
	q->fd = -1;
	if ((q->out = ux_encode(req, &q->outlen)) == NULL ||
	    ux_copy_offered(q, req) < 0) {
		ux->host->log(WSY_LOG_ERROR, "[%llu] unix backend: out of "
		    "memory", (unsigned long long)req->conn_id);
		ux_drop(q);
		return WSY_ERROR;
	}
	if ((q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0) {
		ux->host->log(WSY_LOG_ERROR, "[%llu] unix backend: socket: %s",
		    (unsigned long long)req->conn_id, strerror(errno));
		ux_drop(q);
		return WSY_ERROR;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ux->socket, strlen(ux->socket));
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			/* ENOENT, ECONNREFUSED, EAGAIN (backlog full)... */
			ux_down(q, strerror(errno));
			return WSY_OK;
		}
		q->connecting = 1;
	}
	q->next = ux->queries;
	ux->queries = q;
	if (ux->host->watch_fd(q->fd, WSY_EV_WRITE, ux_io_cb, q) < 0 ||
	    (q->timer = ux->host->timer_add(ux->timeout_ms, ux_timeout,
	    q)) == 0) {
		ux_drop(q);
		return WSY_ERROR;
	}
	return WSY_PENDING;
}

static void ux_cancel(void *st, uint64_t qid)
{
	struct ux *ux = st;
	struct ux_query *q;

	for (q = ux->queries; q; q = q->next) {
		if (q->qid == qid) {
			ux_drop(q);
			return;
		}
	}
}

/* ---- the backend ---- */

static void *ux_init(const wsy_host *host, char *err, size_t errlen)
{
	struct ux *ux;

	if (host == NULL || host->struct_size < sizeof(wsy_host)) {
		snprintf(err, errlen, "host interface too old");
		return NULL;
	}
	if ((ux = calloc(1, sizeof(*ux))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ux->host = host;
	ux->timeout_ms = 2000;
	return ux;
}

static int ux_set_timeout(struct ux *ux, const char *v, char *err,
    size_t errlen)
{
	char *end;
	double d = strtod(v, &end);

	/* written as !(a && b) so that NaN fails too */
	if (end == v || *end || !(d > 0 && d <= 3600)) {
		snprintf(err, errlen, "'%s': seconds above 0, at most 3600 "
		    "(decimals allowed)", v);
		return WSY_ERROR;
	}
	ux->timeout_ms = (uint64_t)(d * 1000 + 0.5);
	if (ux->timeout_ms == 0)
		ux->timeout_ms = 1;
	return WSY_OK;
}

static int ux_configure(void *st, const char *key, const char *value,
    char *err, size_t errlen)
{
	struct ux *ux = st;

	if (strcmp(key, "socket") == 0) {
		if (*value == '\0' || strlen(value) >= sizeof(ux->socket)) {
			snprintf(err, errlen, "a unix socket path of 1 to %zu "
			    "bytes", sizeof(ux->socket) - 1);
			return WSY_ERROR;
		}
		snprintf(ux->socket, sizeof(ux->socket), "%s", value);
		return WSY_OK;
	}
	if (strcmp(key, "timeout") == 0)
		return ux_set_timeout(ux, value, err, errlen);
	snprintf(err, errlen, "unknown key (socket, timeout)");
	return WSY_ERROR;
}

/* The resolver need not be up yet: it is looked for per query. */
static int ux_start(void *st, char *err, size_t errlen)
{
	struct ux *ux = st;

	if (ux->socket[0] == '\0') {
		snprintf(err, errlen, "socket: required (the resolver's unix "
		    "socket path)");
		return WSY_ERROR;
	}
	return WSY_OK;
}

static void ux_cleanup(void *st)
{
	struct ux *ux = st;

	while (ux->queries)
		ux_drop(ux->queries);
	free(ux);
}

static const wsy_backend_ops ux_ops = {
	.init = ux_init,
	.configure = ux_configure,
	.start = ux_start,
	.query = ux_query,
	.cancel = ux_cancel,
	.cleanup = ux_cleanup,
};

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_BACKEND,
	.name = "unix",
	.ops_size = sizeof(wsy_backend_ops),
	.ops = &ux_ops,
};
