/*
 * bridge.c - one connection, from accept to close.
 *
 * States: HANDSHAKE (reading the request) -> QUERY (the backend decides)
 * -> CONNECT (the peer is being connected; no 101 yet) -> OPEN (relay) ;
 * any of the first three may go to RESPOND (an HTTP error or a static file
 * is written, then the connection is closed).  DONE = closed, waiting to be
 * freed after the current loop pass.
 *
 * Four bounded buffers: in (client bytes: the request, then frames; payload
 * is unmasked in place), out (bytes to the client: the response, then whole
 * frames), pin (peer bytes waiting for the framing) and pout (payload for
 * the peer; for datagram peers, one message).  When a buffer is empty the
 * data goes straight to the socket (write-through) and is copied only if
 * the socket takes less.  progress() is the one place that decides what
 * happens next; I/O callbacks only move bytes and call it.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <linux/tcp.h>   /* struct tcp_info with tcpi_snd_wnd */
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "acceptor.h"
#include "bridge.h"
#include "buf.h"
#include "http.h"
#include "idtimer.h"
#include "kcpserve.h"
#include "log.h"
#include "loop.h"
#include "peer.h"
#include "session.h"
#include "tls.h"
#include "sock.h"
#include "utf8.h"
#include "web.h"
#include "ws.h"

enum { ST_SNIFF, ST_TLS, ST_HANDSHAKE, ST_QUERY, ST_CONNECT, ST_RESPOND,
       ST_OPEN, ST_DONE };

/* Connection flags. */
#define F_CRD_DONE    0x0001  /* no more frames read from the client */
#define F_CLOSE_RCVD  0x0002  /* client sent a close frame */
#define F_CLOSE_SENT  0x0004  /* our close frame is queued */
#define F_CEOF        0x0008  /* client TCP EOF */
#define F_PEOF        0x0010  /* peer EOF (or error): no more peer data */
#define F_PSHUT       0x0020  /* peer write side shut down */
#define F_LINGER_DONE 0x0040  /* linger after the client's close is over */
#define F_FAIL        0x0080  /* protocol error: close after flushing */
#define F_DGRAM_READY 0x0100  /* pout holds one whole datagram */
#define F_RESP_SHUT   0x0200  /* RESPOND: response written, SHUT_WR done */
#define F_HEAD        0x0400  /* RESPOND: HEAD request, no body */
#define F_DGRAM_TEXT  0x0800  /* datagrams that are UTF-8 go as text */
#define F_DEADLINE    0x1000  /* the close deadline is running */
#define F_PEER_LINGER 0x2000  /* peer EOF: waiting for the client's close */
#define F_RDHUP       0x4000  /* client FIN seen while we could not read */
#define F_CLOSING_LATER 0x8000 /* client write failed: closes after the pass */
#define F_UTF8_HOLD   0x10000 /* auto framing: what it holds waits utf8-hold */
#define F_HOLD_OVER   0x20000 /* utf8-hold is over: send what is held */

#define CTL_RESERVE 256       /* out room kept for control frames */
/* peer-close-linger: the payload of the ping that follows our last data. */
#define DRAIN_TAG "websocksy-drain"
#define DRAIN_TAG_LEN (sizeof(DRAIN_TAG) - 1)

typedef struct conn {
	uint64_t id;
	struct conn *prev, *next;     /* all connections */
	struct conn *hnext;           /* id hash chain */
	int state;
	unsigned flags;
	int active;                   /* counted against max-connections */
	int cfd, pfd;
	int pkind;
	tls_conn *tls;                /* NULL on plain connections */
	char client_host[46];
	uint16_t client_port;
	buf in, out, pin, pout;
	http_req *req;
	size_t reqlen;
	char *reqcopy;                /* NUL-split request for the backend */
	ws_decoder dec;
	loop_timer timer;             /* handshake, then close deadline */
	loop_timer linger;
	loop_timer ping;
	loop_timer stall;             /* send-timeout */
	loop_timer hold;              /* utf8-hold, armed while auto holds */
	uint64_t last_write;          /* a buffered byte last left, ms */
	uint64_t taken_at;            /* peer-close-linger: the client's TCP
	                               * last took or acked our bytes, ms */
	uint32_t taken_wnd;           /* its receive window then */
	uint32_t taken_unacked;       /* our bytes it had not acked then */
	uint64_t drain_ping_at;       /* the ping behind our last data, ms */
	uint64_t drained_at;          /* its pong came back, ms (0: not yet) */
	int awaiting_pong;
	peer_conn *pc;
	char *bound_path;
	char peer_name[300];
	const wsy_framing_ops *fops;
	int trusted;
	void *fstate;
	char *fconfig;
	int last_op;
	size_t pin_new;               /* peer bytes not yet shown to framing */
	char *protocol;
	session *sess;                /* framing session, if any */
	int ws_paused;                /* the session paused client reads */
	int ws_blocked;               /* the session waits for out room */
	int peer_parked;              /* pfd unwatched: hung up, pin full */
	int close_code;               /* the code our close frame carries */
	int rcvd_code;
	int webfd;
	off_t web_left;
	uint64_t c2p, p2c;            /* payload bytes relayed */
} conn;

#define HASH_SIZE 4096

static struct {
	const wsy_config *cfg;
	backend *be;
	conn *conns;
	conn *hash[HASH_SIZE];
	size_t nconns;                /* all */
	size_t nactive;               /* past the handshake */
	uint64_t next_id;
	acceptor acc;                 /* plain and TLS listeners */
	int ltls[ACCEPTOR_MAX];       /* listener i is a TLS port */
	tls_server **tls;             /* current credentials (reloadable) */
	int stopping;
	uint64_t querying;            /* id inside backend query(), or 0 */
	loop_timer stop_timer;
	loop_timer trim_timer;        /* memory-trim after connections end */
	uint8_t *scratch;             /* one datagram */
	size_t scratch_size;
} B;

static void progress(conn *c);

/*
 * A burst of handshakes leaves freed memory behind: request buffers,
 * parser state, closed connections.  malloc keeps those pages, so the RSS
 * of a server that then holds idle connections would still show the
 * burst.  memory-trim after the last of a burst (never more often), they
 * go back to the system (glibc's malloc_trim; the buffer pool keeps its
 * own, by design).
 */
static void trim_cb(void *arg)
{
	(void)arg;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void trim_soon(void)
{
	if (B.cfg->memory_trim_ms && !loop_timer_armed(&B.trim_timer))
		loop_timer_set(&B.trim_timer, B.cfg->memory_trim_ms);
}
static void end_session(conn *c, int code);
static void client_io(int fd, int ev, void *arg);
static void peer_io(int fd, int ev, void *arg);

/* ---- bookkeeping ---- */

static conn *conn_find(uint64_t id)
{
	conn *c;

	for (c = B.hash[id % HASH_SIZE]; c; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

static void hash_remove(conn *c)
{
	conn **pp = &B.hash[c->id % HASH_SIZE];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
}

static void conn_release(void *arg)
{
	free(arg);
}

static void maybe_stopped(void)
{
	if (B.stopping && B.nconns == 0 && kcpserve_sessions() == 0)
		loop_stop();
}

void bridge_maybe_stopped(void)
{
	maybe_stopped();
}

uint64_t bridge_new_id(void)
{
	return ++B.next_id;
}

/* Close everything now.  The struct is freed after the current pass, so
 * callers up the stack may still look at c->state (== ST_DONE). */
/* Close a stream socket so that our last bytes go out with a FIN, not a
 * reset: what the other side sent that we never read is dropped first
 * (sock_close_drained).  Logged, because those bytes are lost. */
static void close_drained(conn *c, int fd, const char *side)
{
	long n = sock_close_drained(fd);

	if (n < 0)
		log_info(c->id, "closed with more than %d unread bytes from "
		    "the %s: it may see a reset", SOCK_DRAIN_MAX, side);
	else if (n > 0)
		log_info(c->id, "closed: dropped %ld unread bytes from the %s",
		    n, side);
}

static void conn_close(conn *c)
{
	if (c->state == ST_DONE)
		return;
	if (c->state == ST_QUERY && B.be->ops->cancel)
		B.be->ops->cancel(B.be->st, c->id);
	if (c->active)
		B.nactive--;
	c->state = ST_DONE;
	trim_soon();
	loop_timer_stop(&c->timer);
	loop_timer_stop(&c->linger);
	loop_timer_stop(&c->ping);
	loop_timer_stop(&c->stall);
	loop_timer_stop(&c->hold);
	if (c->pc)
		peer_cancel(c->pc);
	end_session(c, WS_CLOSE_ABNORMAL);
	if (c->tls) {
		tls_bye(c->tls);
		tls_free(c->tls);
		c->tls = NULL;
	}
	if (c->cfd >= 0) {
		loop_unwatch(c->cfd);
		close_drained(c, c->cfd, "client");
	}
	if (c->pfd >= 0) {
		loop_unwatch(c->pfd);
		if (peer_is_dgram(c->pkind))
			close(c->pfd);
		else
			close_drained(c, c->pfd, "peer");
	}
	if (c->bound_path) {
		unlink(c->bound_path);
		free(c->bound_path);
	}
	if (c->webfd >= 0)
		close(c->webfd);
	if (c->fops && c->fops->frame_skip)
		c->fops->frame_skip(NULL, 0, 0, NULL, NULL, &c->fstate,
		    c->fconfig);
	else if (c->fops && c->fops->frame)
		c->fops->frame(NULL, 0, 0, NULL, &c->fstate, c->fconfig);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->pin);
	buf_free(&c->pout);
	free(c->req);
	free(c->reqcopy);
	free(c->fconfig);
	free(c->protocol);
	hash_remove(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		B.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	B.nconns--;
	if (loop_defer(conn_release, c) < 0)
		log_error(c->id, "out of memory: leaking a connection");
	maybe_stopped();
}

/* ---- client I/O: plain or TLS ---- */

/* read()/write() conventions for both: -1 with errno EAGAIN to wait. */
static ssize_t c_read(conn *c, void *p, size_t n)
{
	ssize_t r;
	int want;

	if (c->tls == NULL)
		return read(c->cfd, p, n);
	r = tls_read(c->tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? ECONNRESET : EAGAIN;
	return r;
}

static ssize_t c_write(conn *c, const void *p, size_t n)
{
	ssize_t r;
	int want;

	if (c->tls == NULL)
		return write(c->cfd, p, n);
	r = tls_write(c->tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? ECONNRESET : EAGAIN;
	return r;
}

/* ---- writing to the client ---- */

/* Write what out holds.  Returns 0, or -1 if the client is gone (the
 * connection is closed then). */
/* Bytes for the client still with us: in out, or in a corked TLS batch. */
static int out_pending(conn *c)
{
	return c->out.len > 0 || (c->tls && tls_write_pending(c->tls));
}

static int flush_out(conn *c)
{
	if (c->tls && tls_write_pending(c->tls)) {
		int want;
		if (tls_flush(c->tls, &want) < 0) {
			if (want != TLS_ERR)
				return 0;
			log_info(c->id, "client write: %s",
			    tls_error(c->tls));
			conn_close(c);
			return -1;
		}
		c->last_write = loop_now();
	}
	while (c->out.len > 0) {
		ssize_t n = c_write(c, buf_data(&c->out), c->out.len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			log_info(c->id, "client write: %s", strerror(errno));
			conn_close(c);
			return -1;
		}
		buf_consume(&c->out, (size_t)n);
		c->last_write = loop_now();
	}
	return 0;
}

/*
 * The client cannot be written to.  Closing here could run a session
 * plugin's on_close inside its own ws_send, so: stop all I/O with the
 * client now, drop its output, and close after this loop pass.
 */
static void close_later_cb(void *arg)
{
	conn *c = conn_find((uint64_t)(uintptr_t)arg);

	if (c)
		conn_close(c);
}

static void client_write_failed(conn *c)
{
	if (c->flags & F_CLOSING_LATER)
		return;
	log_info(c->id, "client write: %s", c->tls ? "TLS error" :
	    strerror(errno));
	c->flags |= F_CLOSING_LATER | F_CEOF | F_CRD_DONE | F_CLOSE_SENT |
	    F_FAIL;
	c->out.len = c->out.off = 0;
	loop_unwatch(c->cfd);
	if (loop_defer(close_later_cb, (void *)(uintptr_t)c->id) < 0)
		conn_close(c);   /* cannot defer: better now than never */
}

/*
 * Send a header and a payload to the client: straight to the socket when
 * nothing is queued, the rest copied into out.  The caller checked that out
 * has room for all of it.  Returns 0 or -1 (closed).
 */
static int send_client(conn *c, const uint8_t *hdr, size_t hlen,
    const uint8_t *data, size_t len)
{
	size_t done = 0, total = hlen + len;

	if (c->out.len == 0 && c->tls == NULL) {
		struct iovec iov[2] = {
			{ (void *)hdr, hlen }, { (void *)data, len } };
		ssize_t n = writev(c->cfd, iov, 2);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_write_failed(c);
			return -1;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == total)
			return 0;
	}
	if (buf_alloc(&c->out) < 0 || buf_reserve(&c->out, total - done) < 0) {
		/* Callers check the room first; this is out of memory. */
		log_error(c->id, "out of memory or output overflow");
		client_write_failed(c);
		return -1;
	}
	if (done < hlen) {
		buf_put(&c->out, hdr + done, hlen - done);
		buf_put(&c->out, data, len);
	} else {
		buf_put(&c->out, data + (done - hlen), total - done);
	}
	/* TLS: out is flushed at the end of the pass (progress_open), so
	 * the frames of one pass leave in as few sends as wbuf allows. */
	return 0;
}

static int send_frame(conn *c, int opcode, const uint8_t *data, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t hlen = ws_encode_header(hdr, opcode, 1, len, NULL);

	return send_client(c, hdr, hlen, data, len);
}

/* Queue our close frame (once). */
static void send_close(conn *c, int code, const char *reason)
{
	uint8_t p[WS_MAX_CONTROL];
	size_t n = 0;

	if (c->flags & F_CLOSE_SENT)
		return;
	c->flags |= F_CLOSE_SENT;
	c->close_code = code;
	if (code != WS_CLOSE_NO_STATUS) {
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		n = 2;
		if (reason) {
			size_t r = strlen(reason);
			if (r > sizeof(p) - 2)
				r = sizeof(p) - 2;
			memcpy(p + 2, reason, r);
			n += r;
		}
	}
	send_frame(c, WS_OP_CLOSE, p, n);
}

/* Start the close deadline once: whatever happens, the connection is gone
 * close-timeout after closing began. */
static void close_deadline(conn *c)
{
	if (!(c->flags & F_DEADLINE)) {
		c->flags |= F_DEADLINE;
		loop_timer_set(&c->timer, B.cfg->close_timeout_ms);
	}
}

/* A protocol error: send the close code, stop reading, close after the
 * flush (bounded by close-timeout). */
static void fail(conn *c, int code, const char *why)
{
	log_info(c->id, "closing with %d: %s", code, why);
	c->flags |= F_FAIL | F_CRD_DONE;
	/* An unfinished datagram is not data the peer can ever get. */
	if (peer_is_dgram(c->pkind) && !(c->flags & F_DGRAM_READY))
		c->pout.len = c->pout.off = 0;
	close_deadline(c);
	end_session(c, code);
	send_close(c, code, why);
}

/* ---- HTTP responses ---- */

static void respond_status(conn *c, int status, const char *extra)
{
	char hdr[512], body[96];
	int bl, hl;

	bl = snprintf(body, sizeof(body), "%d %s\n", status,
	    http_reason(status));
	hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\n"
	    "Server: websocksy\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Length: %d\r\n%s"
	    "Connection: close\r\n\r\n", status, http_reason(status), bl,
	    extra ? extra : "");
	if (c->flags & F_HEAD)
		bl = 0;
	if (c->state == ST_QUERY && B.be->ops->cancel)
		B.be->ops->cancel(B.be->st, c->id);
	if (c->active) {
		c->active = 0;
		B.nactive--;
	}
	c->state = ST_RESPOND;
	c->flags |= F_CRD_DONE;
	if (c->pc) {
		peer_cancel(c->pc);
		c->pc = NULL;
	}
	loop_timer_set(&c->timer, B.cfg->close_timeout_ms);
	send_client(c, (uint8_t *)hdr, (size_t)hl, (uint8_t *)body,
	    (size_t)bl);
}

/* Log and answer an error status. */
static void respond(conn *c, int status, const char *why)
{
	const char *extra = NULL;

	if (status == 426)
		extra = "Sec-WebSocket-Version: 13\r\n";
	else if (status == 405)
		extra = "Allow: GET\r\n";
	log_info(c->id, "%d %s%s%s", status, http_reason(status),
	    why ? ": " : "", why ? why : "");
	respond_status(c, status, extra);
}

/* ---- the handshake ---- */

static void span_str(const conn *c, http_span s, char *out, size_t outlen)
{
	size_t n = s.len < outlen - 1 ? s.len : outlen - 1;

	memcpy(out, buf_data(&c->in) + s.off, n);
	out[n] = '\0';
}

/* 1 if the Origin is in the allow-list (or there is none); else 0 with
 * the refused origin, sanitised, in why (for the 403's log line). */
static int origin_allowed(conn *c, char *why, size_t whylen)
{
	const char *b = (const char *)buf_data(&c->in);
	char origin[512], safe[160];
	int i = http_find(c->req, b, "Origin");
	char **o;

	if (B.cfg->origins == NULL)
		return 1;
	if (i < 0) {
		snprintf(why, whylen, "no Origin header (origin allow-list "
		    "is set)");
		return 0;
	}
	span_str(c, c->req->hvalue[i], origin, sizeof(origin));
	for (o = B.cfg->origins; *o; o++)
		if (strcasecmp(*o, origin) == 0)
			return 1;
	log_sanitize(buf_data(&c->in) + c->req->hvalue[i].off,
	    c->req->hvalue[i].len, safe, sizeof(safe));
	snprintf(why, whylen, "origin \"%s\" not in the origin allow-list",
	    safe);
	return 0;
}

/* Tunnel mode (ws-host, ws-path): only the configured Host and path. */
static int endpoint_matches(conn *c)
{
	const char *b = (const char *)buf_data(&c->in);
	http_req *r = c->req;
	char host[300];
	size_t n;
	int i;

	if (B.cfg->ws_path[0] && (r->path.len != strlen(B.cfg->ws_path) ||
	    memcmp(b + r->path.off, B.cfg->ws_path, r->path.len) != 0))
		return 0;
	if (B.cfg->ws_host[0] == '\0')
		return 1;
	if ((i = http_find(r, b, "Host")) < 0)
		return 0;
	span_str(c, r->hvalue[i], host, sizeof(host));
	/* Compare without the port ("[v6]:443", "name:80"). */
	n = strlen(host);
	if (host[0] == '[') {
		char *e = strchr(host, ']');
		n = e ? (size_t)(e - host) + 1 : n;
	} else if (strchr(host, ':')) {
		n = (size_t)(strchr(host, ':') - host);
	}
	host[n] = '\0';
	return strcasecmp(host, B.cfg->ws_host) == 0;
}

/* A plain request: a file from the web root, or 426. */
static void serve_plain(conn *c)
{
	http_req *r = c->req;
	const char *b = (const char *)buf_data(&c->in);
	const char *ctype;
	char hdr[512];
	off_t size;
	int st, fd, hl, head = r->method.len == 4 &&
	    memcmp(b + r->method.off, "HEAD", 4) == 0;

	if (head)
		c->flags |= F_HEAD;
	if (!head && !(r->method.len == 3 && !memcmp(b + r->method.off,
	    "GET", 3))) {
		respond(c, 405, "not GET");
		return;
	}
	if (B.cfg->web[0] == '\0') {
		respond(c, 426, "not a WebSocket upgrade");
		return;
	}
	st = web_open(B.cfg->web, b + r->path.off, r->path.len, &fd, &size,
	    &ctype);
	if (st != 200) {
		respond(c, st, "web file");
		return;
	}
	hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\n"
	    "Server: websocksy\r\nContent-Type: %s\r\n"
	    "Content-Length: %lld\r\nConnection: close\r\n\r\n", ctype,
	    (long long)size);
	log_info(c->id, "200 %.*s", (int)r->path.len, b + r->path.off);
	c->state = ST_RESPOND;
	c->flags |= F_CRD_DONE;
	loop_timer_set(&c->timer, B.cfg->close_timeout_ms);
	if (head) {
		close(fd);
	} else {
		c->webfd = fd;
		c->web_left = size;
	}
	send_client(c, (uint8_t *)hdr, (size_t)hl, NULL, 0);
}

/* Copy the request with NULs so the backend gets C strings. */
static int ask_backend(conn *c)
{
	const char *b = (const char *)buf_data(&c->in);
	http_req *r = c->req;
	wsy_header *hs;
	const char **protos;
	size_t i, np = 0, maxp = 0;
	char *p, *endpoint, *query;
	wsy_request q;
	int ret;

	for (i = 0; i < r->n_headers; i++)
		maxp += r->hvalue[i].len / 2 + 1;
	c->reqcopy = malloc(c->reqlen + r->path.len + r->query.len + 2);
	hs = calloc(r->n_headers + 1, sizeof(*hs));
	protos = calloc(maxp + 1, sizeof(*protos));
	if (!c->reqcopy || !hs || !protos) {
		free(hs);
		free(protos);
		respond(c, 500, "out of memory");
		return -1;
	}
	memcpy(c->reqcopy, b, c->reqlen);
	p = c->reqcopy + c->reqlen;
	endpoint = p;
	memcpy(p, b + r->path.off, r->path.len);
	p[r->path.len] = '\0';
	p += r->path.len + 1;
	query = p;
	memcpy(p, b + r->query.off, r->query.len);
	p[r->query.len] = '\0';
	for (i = 0; i < r->n_headers; i++) {
		char *n = c->reqcopy + r->hname[i].off;
		char *v = c->reqcopy + r->hvalue[i].off;
		n[r->hname[i].len] = '\0';
		v[r->hvalue[i].len] = '\0';
		hs[i].name = n;
		hs[i].value = v;
		if (strcasecmp(n, "Sec-WebSocket-Protocol") == 0) {
			char *tok, *save = NULL;
			for (tok = strtok_r(v, ", \t", &save); tok &&
			    np < maxp; tok = strtok_r(NULL, ", \t", &save))
				protos[np++] = tok;
		}
	}
	memset(&q, 0, sizeof(q));
	q.struct_size = sizeof(q);
	q.conn_id = c->id;
	q.endpoint = endpoint;
	q.query = query;
	q.headers = hs;
	q.n_headers = r->n_headers;
	q.protocols = protos;
	q.n_protocols = np;
	q.client_addr = c->client_host;
	q.client_port = c->client_port;
	if (c->tls) {
		q.tls = 1;
		q.tls_sni = tls_sni(c->tls);
		q.tls_alpn = tls_alpn(c->tls);
		q.tls_version = tls_version(c->tls);
		q.tls_client_subject = tls_client_subject(c->tls);
	}
	c->state = ST_QUERY;
	B.querying = c->id;
	ret = B.be->ops->query(B.be->st, &q, c->id);
	B.querying = 0;
	free(hs);
	free(protos);
	free(c->reqcopy);
	c->reqcopy = NULL;
	if (ret == WSY_ERROR && c->state == ST_QUERY)
		respond(c, 500, "backend error");
	return 0;
}

static void handle_request(conn *c)
{
	const char *b = (const char *)buf_data(&c->in);
	int v = http_ws_validate(c->req, b);
	char why[256];

	if (v == 1) {
		serve_plain(c);
		return;
	}
	if (v != 0) {
		respond(c, v, "bad upgrade request");
		return;
	}
	if (!origin_allowed(c, why, sizeof(why))) {
		respond(c, 403, why);
		return;
	}
	if (!endpoint_matches(c)) {
		respond(c, 404, "Host or path does not match");
		return;
	}
	if (B.stopping) {
		respond(c, 503, "shutting down");
		return;
	}
	if (B.nactive >= B.cfg->max_connections) {
		respond(c, 503, "max-connections reached");
		return;
	}
	c->active = 1;
	B.nactive++;
	ask_backend(c);
}

static void parse_request(conn *c)
{
	http_limits lim = { B.cfg->max_request_line, B.cfg->max_header_bytes,
	    B.cfg->max_headers };
	ssize_t r = http_parse(c->req, (const char *)buf_data(&c->in),
	    c->in.len, &lim);

	if (r == HTTP_AGAIN) {
		if (c->in.len == c->in.size)
			respond(c, 431, "request larger than buffer-size");
		else if (c->flags & F_CEOF)
			conn_close(c);
		return;
	}
	if (r < 0) {
		respond(c, (int)-r, "bad request");
		return;
	}
	c->reqlen = (size_t)r;
	handle_request(c);
}

/* ---- backend answer, peer connect, 101 ---- */

static void on_peer(void *arg, int fd, char *bound_path, const char *err);

static int answer(conn *c, const wsy_answer *a);

/* Answers arrive inside query() (the caller goes on with the connection)
 * or later from the loop (then we drive it from here). */
static int host_answer(uint64_t qid, const wsy_answer *a)
{
	conn *c = conn_find(qid);
	int r;

	if (c == NULL || c->state != ST_QUERY || a == NULL)
		return -1;
	r = answer(c, a);
	if (B.querying != qid && c->state != ST_DONE)
		progress(c);
	return r;
}

static int answer(conn *c, const wsy_answer *a)
{
	const char *fname, *fconf;
	char e[256];
	peer_uri u;

	if (a->status != 0) {
		respond(c, a->status >= 400 && a->status < 600 ? a->status :
		    500, "refused by the backend");
		return 0;
	}
	fname = a->framing && *a->framing ? a->framing : "auto";
	fconf = a->framing_config ? a->framing_config : "";
	if (a->peer == NULL ||
	    peer_uri_parse(a->peer, NULL, &u, e, sizeof(e)) < 0) {
		log_error(c->id, "backend answered a bad peer: %s",
		    a->peer ? e : "none");
		respond(c, 500, NULL);
		return 0;
	}
	if (framing_resolve(fname, fconf, &c->fops, &c->trusted, e,
	    sizeof(e)) < 0) {
		log_error(c->id, "framing: %s", e);
		respond(c, 500, NULL);
		return 0;
	}
	if ((c->fconfig = strdup(fconf)) == NULL ||
	    (a->protocol && (c->protocol = strdup(a->protocol)) == NULL)) {
		respond(c, 500, "out of memory");
		return 0;
	}
	if (strcmp(fname, "binary") != 0)
		c->flags |= F_DGRAM_TEXT;
	if (strcmp(fname, "auto") == 0)
		c->flags |= F_UTF8_HOLD;
	c->pkind = u.kind;
	peer_uri_format(&u, c->peer_name, sizeof(c->peer_name));
	if (c->fops->session) {
		/* The session opens its own streams: upgrade now. */
		c->state = ST_CONNECT;
		on_peer(c, -2, NULL, NULL);
		return 0;
	}
	c->state = ST_CONNECT;
	if ((c->pc = peer_connect(&u, B.cfg->connect_timeout_ms, on_peer,
	    c)) == NULL)
		respond(c, 500, "out of memory");
	return 0;
}

/* The peer is connected: send 101 and start relaying. */
static void upgrade(conn *c)
{
	const char *b = (const char *)buf_data(&c->in);
	int ki = http_find(c->req, b, "Sec-WebSocket-Key");
	char accept[29], hdr[768], proto[300] = "";
	int hl;

	http_ws_accept(b + c->req->hvalue[ki].off, c->req->hvalue[ki].len,
	    accept);
	if (c->protocol)
		snprintf(proto, sizeof(proto),
		    "Sec-WebSocket-Protocol: %s\r\n", c->protocol);
	hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Server: websocksy\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
	    accept, proto);
	/* Bytes after the request are the client's first frames. */
	buf_consume(&c->in, c->reqlen);
	free(c->req);
	c->req = NULL;
	c->state = ST_OPEN;
	trim_soon();
	loop_timer_stop(&c->timer);
	ws_decoder_init(&c->dec, 1, peer_is_dgram(c->pkind) ?
	    B.cfg->max_datagram : 0);
	if (peer_is_dgram(c->pkind))
		c->pout.size = B.cfg->max_datagram;
	if (B.cfg->ping_ms)
		loop_timer_set(&c->ping, B.cfg->ping_ms);
	send_client(c, (uint8_t *)hdr, (size_t)hl, NULL, 0);
}

/* ---- framing sessions: the WebSocket side ---- */

static void progress_later_cb(void *arg)
{
	conn *c = conn_find((uint64_t)(uintptr_t)arg);

	if (c && c->state == ST_OPEN)
		progress(c);
}

/* From plugin callbacks: drive the connection after the current pass. */
static void progress_later(conn *c)
{
	loop_defer(progress_later_cb, (void *)(uintptr_t)c->id);
}

static int link_ws_send(void *arg, int opcode, const uint8_t *d, size_t n)
{
	conn *c = arg;

	if (c->state != ST_OPEN || (c->flags & F_CLOSE_SENT))
		return -1;
	if (opcode != WS_OP_TEXT || !utf8_valid(d, n))
		opcode = WS_OP_BINARY;
	if (c->out.size - c->out.len < n + WS_MAX_HEADER + CTL_RESERVE) {
		c->ws_blocked = 1;
		return -1;
	}
	c->p2c += n;
	if (send_frame(c, opcode, d, n) < 0)
		return -1;
	if (c->out.len)
		progress_later(c);
	return 0;
}

static void link_ws_close(void *arg, int code, const char *reason)
{
	conn *c = arg;

	if (c->state != ST_OPEN)
		return;
	if (!ws_close_code_valid(code))
		code = WS_CLOSE_INTERNAL;
	close_deadline(c);
	c->flags |= F_PEOF | F_PSHUT;
	send_close(c, code, reason);
	progress_later(c);
}

static void link_ws_pause(void *arg, int paused)
{
	conn *c = arg;

	c->ws_paused = paused;
	if (!paused)
		progress_later(c);
}

static void start_session(conn *c)
{
	session_link link = { c, c->id, link_ws_send, link_ws_close,
	    link_ws_pause };
	session_limits lim = { B.cfg->buffer_size, B.cfg->connect_timeout_ms,
	    B.cfg->max_streams };

	if ((c->sess = session_open(c->fops->session, c->fconfig,
	    c->peer_name, &link, &lim)) == NULL)
		fail(c, WS_CLOSE_INTERNAL, "framing session refused");
}

static void end_session(conn *c, int code)
{
	session *s = c->sess;

	if (s) {
		c->sess = NULL;
		c->flags |= F_PEOF | F_PSHUT;
		session_close(s, code);
	}
}

static void on_peer(void *arg, int fd, char *bound_path, const char *err)
{
	conn *c = arg;

	c->pc = NULL;
	if (fd == -2) {
		upgrade(c);
		if (c->state == ST_OPEN)
			start_session(c);
		return;
	}
	if (fd < 0) {
		log_info(c->id, "peer %s: %s", c->peer_name, err);
		respond(c, 502, "peer unreachable");
		progress(c);
		return;
	}
	c->pfd = fd;
	c->bound_path = bound_path;
	if (loop_watch(fd, 0, peer_io, c) < 0) {
		respond(c, 500, "out of memory");
		progress(c);
		return;
	}
	log_info(c->id, "peer %s connected", c->peer_name);
	upgrade(c);
	if (c->state != ST_DONE)
		progress(c);
}

static void ping_tick(void *arg)
{
	conn *c = arg;
	uint8_t p[8];
	uint64_t now = loop_now();

	if (c->awaiting_pong) {
		log_info(c->id, "no pong within %llu ms: dropping",
		    (unsigned long long)B.cfg->ping_ms);
		conn_close(c);
		return;
	}
	if (!(c->flags & F_CLOSE_SENT) && c->out.size - c->out.len >=
	    sizeof(p) + 2) {
		memcpy(p, &now, sizeof(p));
		c->awaiting_pong = 1;
		if (send_frame(c, WS_OP_PING, p, sizeof(p)) < 0)
			return;
	}
	/* Idle connections give their buffers back. */
	buf_shrink(&c->in);
	buf_shrink(&c->out);
	buf_shrink(&c->pin);
	buf_shrink(&c->pout);
	loop_timer_set(&c->ping, B.cfg->ping_ms);
	progress(c);
}

static void deadline(void *arg)
{
	conn *c = arg;

	if (c->state == ST_SNIFF || c->state == ST_TLS) {
		log_info(c->id, "handshake timeout during TLS");
		conn_close(c);
	} else if (c->state == ST_HANDSHAKE) {
		respond(c, 408, "handshake timeout");
		progress(c);
	} else if (c->state == ST_QUERY || c->state == ST_CONNECT) {
		respond(c, c->state == ST_QUERY ? 503 : 502,
		    "handshake timeout");
		progress(c);
	} else {
		log_info(c->id, "close timeout");
		conn_close(c);
	}
}

/*
 * send-timeout: bytes are queued for a side that takes none of them for
 * that long (nginx's send_timeout / proxy_send_timeout).  Such a side may
 * be gone without a trace (a client whose FIN is stuck behind a zero
 * window sends nothing we can see), so this is what bounds its time.
 */
static void stall_check(void *arg)
{
	conn *c = arg;
	uint64_t idle = loop_now() - c->last_write;

	if (!out_pending(c) && c->pout.len == 0)
		return;
	if (idle >= B.cfg->send_timeout_ms) {
		log_info(c->id, "%s took nothing for %llu ms: closing",
		    out_pending(c) ? "client" : "peer",
		    (unsigned long long)idle);
		conn_close(c);
		return;
	}
	loop_timer_set(&c->stall, B.cfg->send_timeout_ms - idle);
}

static void linger_over(void *arg)
{
	conn *c = arg;

	c->flags |= F_LINGER_DONE;
	progress(c);
}

/* ---- client -> peer ---- */


static void send_dgram(conn *c)
{
	ssize_t n;

	if (!(c->flags & F_DGRAM_READY))
		return;
	n = send(c->pfd, buf_data(&c->pout), c->pout.len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0)
		log_info(c->id, "peer send: %s", strerror(errno));
	c->c2p += c->pout.len;
	c->pout.len = c->pout.off = 0;
	c->flags &= ~F_DGRAM_READY;
}

/*
 * Payload for a stream peer is unmasked in place in `in`; the pieces of
 * one decoding pass are gathered here and leave in one writev() (many
 * small frames cost one system call, and no copy); what the peer does not
 * take is copied into pout.  Only ever holds the current connection's
 * pieces: decode_client() flushes it before it returns.
 */
#define BATCH_IOV 64

static struct {
	struct iovec v[BATCH_IOV];
	int n;
	size_t bytes;
} PB;

static void put_pout(conn *c, const uint8_t *p, size_t n)
{
	/* client_room() counted these bytes: the room is there. */
	if (buf_alloc(&c->pout) < 0 || buf_reserve(&c->pout, n) < 0) {
		fail(c, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	buf_put(&c->pout, p, n);
}

static void batch_flush(conn *c)
{
	size_t done;
	ssize_t w;
	int i;

	if (PB.n == 0)
		return;
	w = writev(c->pfd, PB.v, PB.n);
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		log_info(c->id, "peer write: %s", strerror(errno));
		c->flags |= F_PEOF | F_PSHUT;
		PB.n = 0;
		PB.bytes = 0;
		return;
	}
	if (w > 0)
		c->last_write = loop_now();
	done = w > 0 ? (size_t)w : 0;
	for (i = 0; i < PB.n; i++) {
		size_t l = PB.v[i].iov_len;
		if (done >= l) {
			done -= l;
			continue;
		}
		put_pout(c, (uint8_t *)PB.v[i].iov_base + done, l - done);
		done = 0;
	}
	PB.n = 0;
	PB.bytes = 0;
}

static void to_peer_batched(conn *c, const uint8_t *p, size_t n)
{
	if (c->flags & F_PSHUT)
		return;
	if (PB.n == BATCH_IOV)
		batch_flush(c);
	if (c->pout.len > 0 || (c->flags & F_PSHUT)) {
		if (!(c->flags & F_PSHUT))
			put_pout(c, p, n);
		return;
	}
	PB.v[PB.n].iov_base = (void *)p;
	PB.v[PB.n].iov_len = n;
	PB.n++;
	PB.bytes += n;
	/* Small frames are what batching is for; past 16 KiB the peer
	 * starts working while we decode the rest (one connection's
	 * pipeline needs that).  Behind TLS a pass has already decrypted
	 * up to 128 KiB: 64 KiB per write saves system calls instead. */
	if (PB.bytes >= (c->tls ? 65536u : 16384u))
		batch_flush(c);
}

static void on_data(conn *c, const ws_event *ev)
{
	if (c->sess) {
		c->c2p += ev->len;
		session_message(c->sess, ev->opcode, ev->data, ev->len,
		    ev->fin);
		return;
	}
	if (peer_is_dgram(c->pkind)) {
		if (buf_alloc(&c->pout) < 0) {
			fail(c, WS_CLOSE_INTERNAL, "out of memory");
			return;
		}
		buf_put(&c->pout, ev->data, ev->len);
		if (ev->fin) {
			c->flags |= F_DGRAM_READY;
			send_dgram(c);
		}
		return;
	}
	c->c2p += ev->len;
	if (ev->len)
		to_peer_batched(c, ev->data, ev->len);
}

/* How much payload the decoder may hand us now. */
static size_t client_room(conn *c)
{
	if (c->fops && c->fops->session)
		return c->ws_paused ? 0 : 65536;
	if (peer_is_dgram(c->pkind))
		return (c->flags & F_DGRAM_READY) ? 0 :
		    c->pout.size - c->pout.len;
	/* Batched bytes may end up in pout: count them as used. */
	if (c->pout.area == NULL)
		return c->pout.size - PB.bytes;
	return c->pout.size - c->pout.len - PB.bytes;
}

static void decode_frames(conn *c);

static void decode_client(conn *c)
{
	decode_frames(c);
	if (PB.n && c->state != ST_DONE)
		batch_flush(c);
	PB.n = 0;
	PB.bytes = 0;
}

static void decode_frames(conn *c)
{
	while (c->in.len > 0 && !(c->flags & F_CRD_DONE) &&
	    c->state == ST_OPEN) {
		size_t room = client_room(c);
		ws_event ev;
		ssize_t r;

		/* Room for a pong or our close, whatever comes. */
		if (room == 0 || c->out.size - c->out.len < CTL_RESERVE)
			break;
		r = ws_decode(&c->dec, buf_data(&c->in), c->in.len, room, &ev);
		if (r < 0) {
			fail(c, (int)-r, r == -WS_CLOSE_BAD_DATA ?
			    "invalid UTF-8" : r == -WS_CLOSE_TOO_BIG ?
			    "message too big" : "protocol error");
			return;
		}
		buf_consume(&c->in, (size_t)r);
		switch (ev.type) {
		case WS_EV_NONE:
			if (r == 0)
				return;
			break;
		case WS_EV_DATA:
			on_data(c, &ev);
			break;
		case WS_EV_PING:
			if (!(c->flags & F_CLOSE_SENT))
				send_frame(c, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_PONG:
			c->awaiting_pong = 0;
			if (c->drain_ping_at && !c->drained_at &&
			    ev.len == DRAIN_TAG_LEN &&
			    memcmp(ev.data, DRAIN_TAG, DRAIN_TAG_LEN) == 0)
				c->drained_at = loop_now();
			break;
		case WS_EV_CLOSE:
			c->flags |= F_CLOSE_RCVD | F_CRD_DONE;
			c->rcvd_code = ev.code;
			close_deadline(c);
			end_session(c, ev.code);
			log_debug(c->id, "client close %d", ev.code);
			break;
		}
	}
}

/* ---- peer -> client ---- */

static int64_t call_framing(conn *c, int *op, size_t *skip)
{
	*skip = 0;
	if (c->fops->frame_skip)
		return c->fops->frame_skip(buf_data(&c->pin), c->pin.len,
		    c->pin_new, op, skip, &c->fstate, c->fconfig);
	return c->fops->frame(buf_data(&c->pin), c->pin.len, c->pin_new, op,
	    &c->fstate, c->fconfig);
}

/*
 * What goes out when the framing cut nothing and the buffer must be
 * flushed: all of it, text if it is UTF-8.  A full buffer of auto text
 * that ends in an incomplete sequence sends the text and keeps the
 * sequence (there is room for its end now).
 */
static size_t flush_len(conn *c, int *op)
{
	size_t n;
	int tail;

	n = utf8_prefix(buf_data(&c->pin), c->pin.len, &tail);
	*op = WS_OP_TEXT;
	if (n == c->pin.len)
		return n;
	if (tail && n > 0 && (c->flags & F_UTF8_HOLD) &&
	    !(c->flags & (F_PEOF | F_LINGER_DONE | F_HOLD_OVER)))
		return n;
	*op = WS_OP_BINARY;
	return c->pin.len;
}

static void frame_peer(conn *c)
{
	uint8_t hdr[WS_MAX_HEADER];
	size_t skip;

	while (c->pin.len > 0 && !(c->flags & F_CLOSE_SENT) &&
	    c->state == ST_OPEN) {
		int op = c->last_op ? c->last_op : WS_OP_BINARY;
		int64_t n;
		size_t hl;

		if (c->out.size - c->out.len < c->pin.len + WS_MAX_HEADER +
		    CTL_RESERVE)
			return;
		n = call_framing(c, &op, &skip);
		c->pin_new = 0;
		if (n < 0 || skip > c->pin.len ||
		    (uint64_t)n > c->pin.len - skip) {
			fail(c, WS_CLOSE_INTERNAL, "framing error");
			return;
		}
		if (skip) {
			buf_consume(&c->pin, skip);
			if (n == 0)
				continue;
		}
		if (n == 0) {
			/* Full buffer, the peer is done or utf8-hold is
			 * over: flush. */
			if (c->pin.len < c->pin.size && !(c->flags &
			    (F_PEOF | F_LINGER_DONE | F_HOLD_OVER))) {
				if ((c->flags & F_UTF8_HOLD) &&
				    !loop_timer_armed(&c->hold))
					loop_timer_set(&c->hold,
					    B.cfg->utf8_hold_ms);
				return;
			}
			n = (int64_t)flush_len(c, &op);
		}
		if (op != WS_OP_TEXT ||
		    (!c->trusted && !utf8_valid(buf_data(&c->pin), (size_t)n)))
			op = WS_OP_BINARY;
		hl = ws_encode_header(hdr, op, 1, (uint64_t)n, NULL);
		if (send_client(c, hdr, hl, buf_data(&c->pin), (size_t)n) < 0)
			return;
		c->p2c += (uint64_t)n;
		buf_consume(&c->pin, (size_t)n);
		c->last_op = op;
		c->flags &= ~F_HOLD_OVER;
		loop_timer_stop(&c->hold);
	}
}

static void read_peer(conn *c)
{
	ssize_t n;

	if (peer_is_dgram(c->pkind)) {
		int op = WS_OP_BINARY;
		n = recv(c->pfd, B.scratch, B.scratch_size, MSG_TRUNC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug(c->id, "peer recv: %s",
				    strerror(errno));
			return;
		}
		if ((size_t)n > B.cfg->max_datagram) {
			log_info(c->id, "dropped a %zd-byte datagram "
			    "(max-datagram %llu)", n,
			    (unsigned long long)B.cfg->max_datagram);
			return;
		}
		if ((c->flags & F_DGRAM_TEXT) && utf8_valid(B.scratch,
		    (size_t)n))
			op = WS_OP_TEXT;
		c->p2c += (uint64_t)n;
		send_frame(c, op, B.scratch, (size_t)n);
		return;
	}
	/* A full buffer is backpressure, not EOF: read(fd, p, 0) would
	 * return 0 and look like the peer closing. */
	if (buf_alloc(&c->pin) < 0 || buf_room(&c->pin) == 0)
		return;
	n = read(c->pfd, buf_tail(&c->pin), buf_room(&c->pin));
	if (n > 0) {
		buf_commit(&c->pin, (size_t)n);
		c->pin_new += (size_t)n;
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		if (n < 0)
			log_info(c->id, "peer read: %s", strerror(errno));
		else
			log_debug(c->id, "peer EOF");
		c->flags |= F_PEOF;
		if (n < 0)
			c->close_code = WS_CLOSE_INTERNAL;
	}
}

/*
 * auto holds a read that ends in an incomplete UTF-8 sequence (its end may
 * still come); a peer that sent it and waits for an answer must not wait
 * forever, so after utf8-hold what is held goes out as it is.  The timer
 * runs only while something is held: armed when the framing holds, stopped
 * when a message goes out.  An end that is already in the socket (a busy
 * loop may see the timer first) is read before giving up on it.
 */
static void hold_over(void *arg)
{
	conn *c = arg;

	if (c->state == ST_OPEN && c->pfd >= 0 && !(c->flags & F_PEOF))
		read_peer(c);
	c->flags |= F_HOLD_OVER;
	progress(c);
}

static void flush_pout(conn *c)
{
	if (peer_is_dgram(c->pkind)) {
		send_dgram(c);
		return;
	}
	while (c->pout.len > 0) {
		ssize_t n = write(c->pfd, buf_data(&c->pout), c->pout.len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			log_info(c->id, "peer write: %s", strerror(errno));
			c->pout.len = c->pout.off = 0;
			c->flags |= F_PSHUT | F_PEOF;
			return;
		}
		buf_consume(&c->pout, (size_t)n);
		c->last_write = loop_now();
	}
}

/* ---- what happens next ---- */

static void progress_respond(conn *c)
{
	/* Stream a web file into out as it drains. */
	while (c->webfd >= 0 && c->web_left > 0 && buf_alloc(&c->out) == 0 &&
	    buf_room(&c->out) > 0) {
		ssize_t n = read(c->webfd, buf_tail(&c->out),
		    buf_room(&c->out));
		if (n <= 0) {
			conn_close(c);   /* file shrank under us */
			return;
		}
		buf_commit(&c->out, (size_t)n);
		c->web_left -= n;
	}
	if (flush_out(c) < 0)
		return;
	if (!out_pending(c) && c->web_left <= 0 &&
	    !(c->flags & F_RESP_SHUT)) {
		/* Half-close and drain what the client still sends, so our
		 * response is not lost to a reset (lingering close). */
		c->flags |= F_RESP_SHUT;
		shutdown(c->cfd, SHUT_WR);
		loop_timer_set(&c->timer, B.cfg->response_linger_ms <
		    B.cfg->close_timeout_ms ? B.cfg->response_linger_ms :
		    B.cfg->close_timeout_ms);
	}
	if ((c->flags & F_RESP_SHUT) && (c->flags & F_CEOF)) {
		conn_close(c);
		return;
	}
	loop_events(c->cfd, LOOP_READ | (out_pending(c) ? LOOP_WRITE : 0));
}

/*
 * peer-close-linger: after the peer's EOF and all its data, wait for the
 * client to close first, and close ourselves only once it has passed on
 * what it got.  v2ray-plugin's client drops what it holds for its local
 * side when our close frame (or a FIN) comes: its reader takes the close
 * as an error and interrupts the pipe (up to 512 KiB) it had not yet
 * written to ss-local.  So:
 *
 *  1. a ping goes out behind the last data frame; clients answer pings
 *     from their read loop, in order, so its pong means the client has
 *     read every data frame: nothing of ours is left in its socket (the
 *     TCP window alone cannot tell: a client that stopped reading shows a
 *     small window that no longer moves, measured under load);
 *  2. then the client's TCP must have taken everything (nothing unacked,
 *     nothing unsent, its window no longer opening) for
 *     max(peer-close-linger, the time the pong took), the time it needs
 *     to hand its own buffer on at the pace it read ours.
 *
 * A client that does not answer within half of close-timeout is treated as
 * drained; close-timeout still bounds it all.
 */
#define TAKEN_TICK_MS 50

static int client_taking(conn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int moved;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->cfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return out_pending(c);  /* not TCP (unix socket) */
	moved = ti.tcpi_unacked > 0 || ti.tcpi_notsent_bytes > 0 ||
	    ti.tcpi_unacked != c->taken_unacked ||
	    ti.tcpi_snd_wnd > c->taken_wnd;
	c->taken_unacked = ti.tcpi_unacked;
	c->taken_wnd = ti.tcpi_snd_wnd;
	return moved || out_pending(c);
}

static void peer_linger_tick(void *arg)
{
	conn *c = arg;
	uint64_t now = loop_now(), half = B.cfg->close_timeout_ms / 2;
	uint64_t quiet = B.cfg->peer_close_linger_ms;

	if (client_taking(c))
		c->taken_at = now;
	if (!c->drained_at) {
		if (now - c->drain_ping_at < half) {
			loop_timer_set(&c->linger, TAKEN_TICK_MS);
			return;
		}
		log_info(c->id, "no pong within %llu ms after the last data: "
		    "closing after peer-close-linger",
		    (unsigned long long)half);
		c->drained_at = now;
	}
	if (c->taken_at < c->drained_at)
		c->taken_at = c->drained_at;
	if (c->drained_at - c->drain_ping_at > quiet)
		quiet = c->drained_at - c->drain_ping_at;
	if (quiet > half)
		quiet = half;
	if (now - c->taken_at >= quiet) {
		log_debug(c->id, "peer-close-linger over: pong after %llu ms, "
		    "quiet %llu ms", (unsigned long long)(c->drained_at -
		    c->drain_ping_at), (unsigned long long)(now - c->taken_at));
		c->flags |= F_LINGER_DONE;
		progress(c);
		return;
	}
	loop_timer_set(&c->linger, TAKEN_TICK_MS);
}

static void peer_linger_start(conn *c)
{
	loop_timer_stop(&c->linger);
	loop_timer_init(&c->linger, peer_linger_tick, c);
	c->taken_unacked = 0;
	c->taken_wnd = 0;
	(void)client_taking(c);
	c->taken_at = c->drain_ping_at = loop_now();
	c->drained_at = 0;
	loop_timer_set(&c->linger, TAKEN_TICK_MS);
	/* Behind the last data frame (out keeps CTL_RESERVE for it). */
	(void)send_frame(c, WS_OP_PING, (const uint8_t *)DRAIN_TAG,
	    DRAIN_TAG_LEN);
}

/* The closing rules, in order (see the header comment of the file). */
static void progress_close(conn *c)
{
	int client_done = c->flags & (F_CLOSE_RCVD | F_CEOF);

	if (client_done && c->pout.len == 0 && !(c->flags & F_PSHUT) &&
	    !(c->flags & F_DGRAM_READY)) {
		/* Everything the client sent is with the peer: tell it. */
		c->flags |= F_PSHUT;
		if (c->pfd >= 0 && !peer_is_dgram(c->pkind))
			shutdown(c->pfd, SHUT_WR);
		close_deadline(c);
		if (!(c->flags & F_PEOF) && !(c->flags & F_CLOSE_SENT))
			loop_timer_set(&c->linger, B.cfg->linger_ms);
	}
	if (client_done && (c->flags & (F_PEOF | F_LINGER_DONE)) &&
	    c->pin.len == 0 && !(c->flags & F_CLOSE_SENT)) {
		int code = c->rcvd_code;
		if (code == 0 || code == WS_CLOSE_NO_STATUS ||
		    !ws_close_code_valid(code))
			code = WS_CLOSE_NORMAL;
		if (c->flags & F_CEOF)
			c->flags |= F_CLOSE_SENT;  /* nobody to tell */
		else
			send_close(c, code, NULL);
	}
	if ((c->flags & F_PEOF) && !client_done && c->pin.len == 0 &&
	    !(c->flags & F_CLOSE_SENT) && B.cfg->peer_close_linger_ms &&
	    !(c->flags & F_PEER_LINGER)) {
		/* Let the client close first (tunnel clients lose the tail
		 * of a stream when our close follows the data at once). */
		c->flags |= F_PEER_LINGER;
		close_deadline(c);
		peer_linger_start(c);
	}
	if ((c->flags & F_PEOF) && !client_done && c->pin.len == 0 &&
	    !(c->flags & F_CLOSE_SENT) && (!B.cfg->peer_close_linger_ms ||
	    (c->flags & F_LINGER_DONE))) {
		close_deadline(c);
		if (c->close_code == WS_CLOSE_INTERNAL)
			send_close(c, WS_CLOSE_INTERNAL, "peer error");
		else
			send_close(c, WS_CLOSE_NORMAL, NULL);
	}
	if (c->state == ST_DONE)
		return;
	/* Even after a protocol error, what the client sent before it is
	 * delivered to the peer first (bounded by the close deadline). */
	if ((c->flags & F_CLOSE_SENT) && !out_pending(c) &&
	    (client_done || (c->flags & F_FAIL)) && c->pout.len == 0 &&
	    !(c->flags & F_DGRAM_READY)) {
		if (c->flags & F_CEOF)
			log_info(c->id, "closed: client left without a close "
			    "frame, %llu bytes in, %llu bytes out",
			    (unsigned long long)c->c2p,
			    (unsigned long long)c->p2c);
		else
			log_info(c->id, "closed with %d, %llu bytes in, "
			    "%llu bytes out", c->close_code,
			    (unsigned long long)c->c2p,
			    (unsigned long long)c->p2c);
		conn_close(c);
	}
}

static void progress_open(conn *c)
{
	int cev = 0, pev = 0;

	if (c->ws_blocked && c->sess && c->out.size - c->out.len >=
	    c->out.size / 2) {
		c->ws_blocked = 0;
		session_ws_writable(c->sess);
		if (c->state != ST_OPEN)
			return;
	}
	decode_client(c);
	if (c->state != ST_OPEN)
		return;
	frame_peer(c);
	if (c->state != ST_OPEN)
		return;
	progress_close(c);
	if (c->state != ST_OPEN)
		return;
	/* Interests: read a side only when the other side can take it. */
	if (!(c->flags & F_CRD_DONE) && c->in.len < c->in.size &&
	    client_room(c) > 0)
		cev |= LOOP_READ;
	if ((c->flags & F_CLOSE_SENT) && !(c->flags & F_CEOF))
		cev |= LOOP_READ;   /* wait for the close reply / EOF */
	if (out_pending(c))
		cev |= LOOP_WRITE;
	if (!(c->flags & (F_PEOF | F_CLOSE_SENT))) {
		size_t need = peer_is_dgram(c->pkind) ?
		    B.scratch_size + WS_MAX_HEADER + CTL_RESERVE :
		    WS_MAX_HEADER + CTL_RESERVE + 1;
		if (peer_is_dgram(c->pkind) ?
		    c->out.size - c->out.len >= need :
		    c->pin.len < c->pin.size)
			pev |= LOOP_READ;
	}
	if (c->pout.len && !(c->flags & F_PSHUT))
		pev |= LOOP_WRITE;
	if ((c->flags & F_DGRAM_READY))
		pev |= LOOP_WRITE;
	if (c->tls && c->out.len && flush_out(c) < 0)
		return;
	if ((out_pending(c) || c->pout.len) && !loop_timer_armed(&c->stall)) {
		c->last_write = loop_now();
		loop_timer_set(&c->stall, B.cfg->send_timeout_ms);
	}
	/* Not reading the client (backpressure): still notice its FIN. */
	if (!(cev & LOOP_READ) && !(c->flags & (F_CEOF | F_RDHUP)))
		cev |= LOOP_RDHUP;
	loop_events(c->cfd, cev | (out_pending(c) ? LOOP_WRITE : 0));
	if (c->peer_parked && (pev & (LOOP_READ | LOOP_WRITE))) {
		c->peer_parked = 0;
		if (loop_watch(c->pfd, pev, peer_io, c) < 0)
			conn_close(c);
		return;
	}
	if (!c->peer_parked)
		loop_events(c->pfd, pev);
	/* Empty buffers go back to the pool: an idle connection holds
	 * none (the pool makes this cheap for busy ones). */
	buf_shrink(&c->in);
	buf_shrink(&c->out);
	buf_shrink(&c->pin);
	if (!(c->flags & F_DGRAM_READY))
		buf_shrink(&c->pout);
}

static void progress(conn *c)
{
	switch (c->state) {
	case ST_HANDSHAKE:
		parse_request(c);
		if (c->state == ST_HANDSHAKE)
			loop_events(c->cfd, c->in.len < c->in.size &&
			    !(c->flags & F_CEOF) ? LOOP_READ : 0);
		else if (c->state != ST_RESPOND && c->state != ST_DONE)
			progress(c);   /* once: the state moved on */
		if (c->state != ST_RESPOND)
			break;
		/* FALLTHROUGH */
	case ST_RESPOND:
		progress_respond(c);
		break;
	case ST_QUERY:
	case ST_CONNECT:
		/* Keep reading (pipelined frames) only to notice EOF. */
		flush_out(c);
		if (c->state != ST_DONE)
			loop_events(c->cfd, (c->flags & F_CEOF) ? 0 :
			    c->in.len < c->in.size ? LOOP_READ : 0);
		break;
	case ST_OPEN:
		if (flush_out(c) < 0)
			return;
		progress_open(c);
		break;
	}
}

/* ---- I/O callbacks ---- */

/* One read from the client into in (or the bin).  Returns 0, or -1 if the
 * connection was closed. */
static int client_read(conn *c)
{
	ssize_t n;

	if (c->state == ST_RESPOND || ((c->flags & F_CRD_DONE) &&
	    c->state == ST_OPEN)) {
		/* Discard: nothing more is read from this client. */
		uint8_t junk[4096];
		n = c_read(c, junk, sizeof(junk));
	} else if (buf_alloc(&c->in) < 0) {
		conn_close(c);
		return -1;
	} else if (buf_room(&c->in) == 0) {
		return 0;
	} else {
		n = c_read(c, buf_tail(&c->in), buf_room(&c->in));
		if (n > 0)
			buf_commit(&c->in, (size_t)n);
		/* TLS hands out one record per read: take what it already
		 * holds, so one pass decodes (and writes) many frames. */
		for (int i = 0; i < 32 && n > 0 && c->tls &&
		    tls_pending(c->tls) > 0 && buf_room(&c->in) > 0; i++) {
			ssize_t m = c_read(c, buf_tail(&c->in),
			    buf_room(&c->in));
			if (m < 0 && (errno == EAGAIN || errno == EINTR))
				break;   /* the rest comes with the next event */
			if ((n = m) > 0)
				buf_commit(&c->in, (size_t)n);
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		if (n < 0 && c->state != ST_RESPOND) {
			log_info(c->id, "client read: %s", c->tls ?
			    tls_error(c->tls) : strerror(errno));
			conn_close(c);
			return -1;
		}
		c->flags |= F_CEOF;
		if (c->state == ST_OPEN) {
			c->flags |= F_CRD_DONE;
			end_session(c, WS_CLOSE_ABNORMAL);
		}
		if (c->state == ST_QUERY || c->state == ST_CONNECT) {
			log_info(c->id, "client left during the handshake");
			conn_close(c);
			return -1;
		}
	}
	return 0;
}

/* Plaintext GnuTLS holds already is invisible to poll(): come back for it
 * after this pass. */
static void tls_kick_cb(void *arg)
{
	conn *c = conn_find((uint64_t)(uintptr_t)arg);

	if (c && c->tls && c->state != ST_DONE)
		client_io(c->cfd, LOOP_READ, c);
}

static void tls_kick(conn *c)
{
	if (c->tls && tls_pending(c->tls) > 0 && !(c->flags & F_CEOF))
		loop_defer(tls_kick_cb, (void *)(uintptr_t)c->id);
}

static void tls_step(conn *c);
static void linger_over(void *arg);

/*
 * POLLERR/POLLHUP on the client.  poll() reports them even while we do not
 * ask to read (backpressure), and would report them forever: when the
 * socket has an error, or we cannot read the EOF because in is full, the
 * client is gone.  Stop watching it, drop what was queued for it, and let
 * the closing rules deliver what it already sent to the peer (bounded by
 * close-timeout).  Returns 1 if the connection is finished here.
 */
static int client_dead(conn *c)
{
	int e = 0;
	socklen_t el = sizeof(e);

	getsockopt(c->cfd, SOL_SOCKET, SO_ERROR, &e, &el);
	if (e == 0 && buf_tailroom(&c->in) > 0 && c->state != ST_OPEN)
		return 0;
	if (e == 0 && c->in.len < c->in.size)
		return 0;   /* readable: the read sees the EOF */
	log_info(c->id, "client gone: %s", e ? strerror(e) : "hang-up");
	if (c->state != ST_OPEN) {
		conn_close(c);
		return 1;
	}
	loop_unwatch(c->cfd);
	c->flags |= F_CEOF | F_CRD_DONE | F_CLOSE_SENT;
	c->out.len = c->out.off = 0;
	end_session(c, WS_CLOSE_ABNORMAL);
	close_deadline(c);
	progress(c);
	return 1;
}

static void client_io(int fd, int ev, void *arg)
{
	conn *c = arg;

	(void)fd;
	if (c->state == ST_SNIFF || c->state == ST_TLS) {
		tls_step(c);
		return;
	}
	if ((ev & LOOP_ERROR) && client_dead(c))
		return;
	if ((ev & LOOP_RDHUP) && !(c->flags & F_RDHUP) && c->state == ST_OPEN) {
		/* The client finished sending while its data waits for a peer
		 * that does not read: it will not wait for us forever, nor
		 * do we wait for the peer forever. */
		c->flags |= F_RDHUP;
		/* After its close frame that is how a browser leaves a page
		 * (close 1001, then FIN): ordinary, not worth an info line. */
		if (c->flags & F_CLOSE_RCVD)
			log_debug(c->id, "client closed its side after its "
			    "close frame");
		else
			log_info(c->id, "client closed its side while the peer "
			    "is not reading");
		close_deadline(c);
	}
	if (ev & LOOP_WRITE) {
		if (flush_out(c) < 0)
			return;
	}
	/* TLS: a read may be waiting for a write (and the reverse), so any
	 * event is worth a read attempt; EAGAIN costs nothing. */
	if ((ev & (LOOP_READ | LOOP_ERROR)) || c->tls) {
		if (client_read(c) < 0)
			return;
	}
	progress(c);
	if (c->state != ST_DONE && c->in.len < c->in.size)
		tls_kick(c);
}

/* ---- TLS ports ---- */

/* The first byte of a TLS connection is a handshake record (22). */
static void tls_step(conn *c)
{
	int r;

	if (c->state == ST_SNIFF) {
		uint8_t b;
		ssize_t n = recv(c->cfd, &b, 1, MSG_PEEK);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c);
			return;
		}
		if (n < 0)
			return;
		if (b != 0x16) {
			loop_timer_stop(&c->linger);
			loop_timer_init(&c->linger, linger_over, c);
			c->state = ST_HANDSHAKE;
			if (B.cfg->tls_only) {
				respond(c, 400, "plain HTTP sent to the TLS "
				    "port");
				progress(c);
			} else {
				client_io(c->cfd, LOOP_READ, c);
			}
			return;
		}
		if ((c->tls = tls_accept(*B.tls, c->cfd)) == NULL) {
			log_error(c->id, "TLS: out of memory");
			conn_close(c);
			return;
		}
		tls_set_cork(c->tls, 1);
		c->state = ST_TLS;
	}
	r = tls_handshake(c->tls);
	if (r == TLS_ERR) {
		log_info(c->id, "TLS handshake: %s", tls_error(c->tls));
		conn_close(c);
		return;
	}
	if (r != TLS_OK) {
		loop_events(c->cfd, r == TLS_WANT_WRITE ? LOOP_WRITE :
		    LOOP_READ);
		return;
	}
	loop_timer_stop(&c->linger);
	loop_timer_init(&c->linger, linger_over, c);
	c->state = ST_HANDSHAKE;
	log_debug(c->id, "TLS %s, SNI %s, ALPN %s",
	    tls_version(c->tls) ? tls_version(c->tls) : "?",
	    tls_sni(c->tls) ? tls_sni(c->tls) : "-",
	    tls_alpn(c->tls) ? tls_alpn(c->tls) : "-");
	loop_events(c->cfd, LOOP_READ);
	client_io(c->cfd, LOOP_READ, c);
}

static void tls_deadline(void *arg)
{
	conn *c = arg;

	log_info(c->id, "TLS handshake timeout");
	conn_close(c);
}

static void peer_io(int fd, int ev, void *arg)
{
	conn *c = arg;

	(void)fd;
	if (c->state != ST_OPEN)
		return;
	if (ev & (LOOP_WRITE | LOOP_ERROR))
		flush_pout(c);
	if (ev & (LOOP_READ | LOOP_ERROR))
		read_peer(c);
	/*
	 * POLLHUP/POLLERR are reported even when we do not ask to read: a
	 * peer that closed (after our SHUT_WR) while pin is full, or after
	 * its EOF, would wake us on every pass.  Park it (unwatch) until we
	 * want to read or write it again.
	 */
	if ((ev & LOOP_ERROR) && c->state == ST_OPEN && !c->peer_parked &&
	    c->pout.len == 0 && ((c->flags & F_PEOF) ||
	    (c->pin.area != NULL && buf_tailroom(&c->pin) == 0))) {
		loop_unwatch(c->pfd);
		c->peer_parked = 1;
	}
	progress(c);
}

/* ---- accept ---- */

static void conn_new(int fd, const struct sockaddr *sa, int tls)
{
	conn *c = calloc(1, sizeof(*c));
	size_t outsz = B.cfg->buffer_size + WS_MAX_HEADER + 2 * CTL_RESERVE;

	if (c == NULL || (c->req = malloc(sizeof(*c->req))) == NULL) {
		free(c);
		close(fd);
		log_error(0, "out of memory: connection refused");
		return;
	}
	c->id = bridge_new_id();
	c->state = ST_HANDSHAKE;
	c->cfd = fd;
	c->pfd = -1;
	c->webfd = -1;
	sock_ntop(sa, c->client_host, sizeof(c->client_host),
	    &c->client_port);
	http_req_init(c->req);
	if (outsz < B.cfg->max_datagram + WS_MAX_HEADER + 2 * CTL_RESERVE)
		outsz = B.cfg->max_datagram + WS_MAX_HEADER + 2 * CTL_RESERVE;
	buf_init(&c->in, B.cfg->buffer_size);
	buf_init(&c->out, outsz);
	buf_init(&c->pin, B.cfg->buffer_size);
	buf_init(&c->pout, B.cfg->buffer_size);
	loop_timer_init(&c->timer, deadline, c);
	loop_timer_init(&c->linger, linger_over, c);
	loop_timer_init(&c->ping, ping_tick, c);
	loop_timer_init(&c->stall, stall_check, c);
	loop_timer_init(&c->hold, hold_over, c);
	if (loop_watch(fd, LOOP_READ, client_io, c) < 0) {
		free(c->req);
		free(c);
		close(fd);
		return;
	}
	c->next = B.conns;
	if (B.conns)
		B.conns->prev = c;
	B.conns = c;
	c->hnext = B.hash[c->id % HASH_SIZE];
	B.hash[c->id % HASH_SIZE] = c;
	B.nconns++;
	loop_timer_set(&c->timer, B.cfg->handshake_timeout_ms);
	if (tls) {
		/* The TLS deadline runs inside the handshake budget. */
		c->state = ST_SNIFF;
		loop_timer_init(&c->linger, tls_deadline, c);
		loop_timer_set(&c->linger, B.cfg->tls_handshake_timeout_ms);
	}
	log_debug(c->id, "connection from %s port %u%s", c->client_host,
	    c->client_port, tls ? " (TLS port)" : "");
}

static void on_accept(int fd, const struct sockaddr *sa, int i, void *arg)
{
	(void)arg;
	conn_new(fd, sa, B.ltls[i]);
}

/* ---- host functions for plugins ---- */

struct host_watch {
	wsy_fd_cb cb;
	void *arg;
};

static void host_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void host_log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level < LOGL_ERROR)
		level = LOGL_ERROR;
	if (level > LOGL_DEBUG)
		level = LOGL_DEBUG;
	if (level <= log_get_level())
		log_msg(level, 0, "%s", msg);
}

static int host_watch_fd(int fd, int events, wsy_fd_cb cb, void *arg)
{
	/* wsy_fd_cb and loop_io_cb have the same shape and bit values. */
	if (events == 0) {
		loop_unwatch(fd);
		return 0;
	}
	return loop_watch(fd, events & (WSY_EV_READ | WSY_EV_WRITE),
	    (loop_io_cb)cb, arg);
}

static uint64_t host_timer_add(uint64_t ms, wsy_timer_cb cb, void *arg)
{
	return idtimer_add(NULL, ms, cb, arg);
}

static uint64_t host_now(void)
{
	return loop_now();
}

static const wsy_host host = {
	.struct_size = sizeof(wsy_host),
	.api_version = WEBSOCKSY_API_VERSION,
	.log = host_log,
	.answer = host_answer,
	.watch_fd = host_watch_fd,
	.unwatch_fd = loop_unwatch,
	.timer_add = host_timer_add,
	.timer_cancel = idtimer_cancel,
	.now_ms = host_now,
};

const wsy_host *bridge_host(void)
{
	return &host;
}

/* ---- life cycle ---- */

static void stop_now(void *arg)
{
	(void)arg;
	log_warn(0, "close timeout: %zu connection(s) dropped", B.nconns);
	loop_stop();
}

int bridge_init(const wsy_config *cfg, backend *be)
{
	B.cfg = cfg;
	B.be = be;
	B.scratch_size = cfg->max_datagram + 1;
	if ((B.scratch = malloc(B.scratch_size)) == NULL)
		return -1;
	acceptor_init(&B.acc, on_accept, NULL);
	loop_timer_init(&B.stop_timer, stop_now, NULL);
	loop_timer_init(&B.trim_timer, trim_cb, NULL);
	return 0;
}

int bridge_listen(int fd, int tls)
{
	int i;

	if (tls && B.tls == NULL)
		return -1;
	if ((i = acceptor_add(&B.acc, fd)) < 0)
		return -1;
	B.ltls[i] = tls;
	return 0;
}

void bridge_set_tls(tls_server **srv)
{
	B.tls = srv;
}

void bridge_shutdown(void)
{
	conn *c, *next;

	if (B.stopping)
		return;
	B.stopping = 1;
	log_info(0, "shutting down: %zu connection(s) to close",
	    B.nconns);
	acceptor_close(&B.acc);
	loop_timer_set(&B.stop_timer, B.cfg->close_timeout_ms);
	for (c = B.conns; c; c = next) {
		next = c->next;
		if (c->state == ST_OPEN) {
			close_deadline(c);
			/* No more peer data: it could not follow our close. */
			c->flags |= F_PEOF;
			send_close(c, WS_CLOSE_GOING_AWAY, "server shutdown");
			if (c->state == ST_OPEN)
				progress(c);
		} else if (c->state <= ST_HANDSHAKE) {
			conn_close(c);
		} else if (c->state != ST_RESPOND && c->state != ST_DONE) {
			respond(c, 503, "shutting down");
			progress(c);
		}
	}
	maybe_stopped();
}

void bridge_cleanup(void)
{
	while (B.conns)
		conn_close(B.conns);
	idtimer_free_all();
	loop_timer_stop(&B.stop_timer);
	loop_timer_stop(&B.trim_timer);
	acceptor_close(&B.acc);
	free(B.scratch);
	B.scratch = NULL;
}
