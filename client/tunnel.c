/*
 * tunnel.c - one local connection to one remote connection.
 *
 * States: CONNECT (peer_connect running) -> TLS (handshake) -> UPGRADE
 * (ws request sent, reading the 101) -> OPEN (relay) -> DONE (closed,
 * freed after the loop pass).  Raw modes skip UPGRADE, plain modes TLS.
 *
 * Four bounded buffers: rout (bytes for the remote: the request, then
 * whole frames, masked; raw: payload), rin (ws bytes from the remote,
 * decoded in place), lout (payload for the local socket).  Local bytes are
 * read straight into rout behind room for a frame header, so the relay
 * copies nothing in that direction.  progress() decides everything; the
 * I/O callbacks only record readiness and call it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>


#include "../core/acceptor.h"
#include "../core/buf.h"
#include "../core/http.h"
#include "../core/log.h"
#include "../core/loop.h"
#include "../core/sock.h"
#include "../core/ws.h"
#include "tunnel.h"
#include "upgrade.h"

enum { ST_CONNECT, ST_TLS, ST_UPGRADE, ST_OPEN, ST_DONE };

#define F_LREADY      0x0001  /* local readable (hint) */
#define F_LWBLOCK     0x0002  /* local write would block */
#define F_RREADY      0x0004  /* remote readable (hint) */
#define F_RWBLOCK     0x0008  /* remote write would block */
#define F_LEOF        0x0010  /* no more local data */
#define F_LSHUT       0x0020  /* local write side shut down */
#define F_REOF        0x0040  /* no more remote data */
#define F_RSHUT       0x0080  /* remote write side done */
#define F_CLOSE_SENT  0x0100  /* our close frame is queued */
#define F_CLOSE_RCVD  0x0200  /* the server's close arrived */
#define F_CLOSING     0x0400  /* the close timer runs */
#define F_LINGER      0x0800  /* the close-linger timer runs */
#define F_LINGERED    0x1000  /* close-linger is over */

#define HDR_ROOM     8        /* masked header of a frame < 64 KiB */
#define CTL_RESERVE  256      /* rout room kept for control frames */
#define MAX_RESPONSE 8192     /* the server's 101 response */

typedef struct tun {
	uint64_t id;
	struct tun *prev, *next;
	int state;
	unsigned flags;
	int lfd, rfd;
	int host;                 /* index in cfg->remote being tried */
	char lname[64];
	peer_conn *pc;
	tls_conn *tls;
	buf rout, rin, lout;
	ws_decoder dec;
	uint8_t conn_key[4];      /* mask=fixed */
	char wskey[UPGRADE_KEY_LEN];
	loop_timer timer;         /* connect deadline, then close wait */
	loop_timer ping;
	loop_timer linger;        /* close-linger after the local EOF */
	int awaiting_pong;
	uint64_t up, down;        /* payload bytes relayed */
} tun;

static struct {
	const tunnel_cfg *cfg;
	tun *conns;
	size_t nconns;
	uint64_t next_id;
	acceptor acc;
	int stopping;
	loop_timer stop_timer;
} T;

static void progress(tun *t);
static void local_io(int fd, int ev, void *arg);
static void remote_io(int fd, int ev, void *arg);
static void try_connect(tun *t);

static int ws_mode(void) { return T.cfg->opt->ws; }

/* ---- bookkeeping ---- */

static void tun_free(void *arg)
{
	tun *t = arg;

	buf_free(&t->rout);
	buf_free(&t->rin);
	buf_free(&t->lout);
	free(t);
	if (T.stopping && T.nconns == 0)
		loop_stop();
}

static void tun_close(tun *t)
{
	if (t->state == ST_DONE)
		return;
	log_info(t->id, "closed: %llu bytes up, %llu down",
	    (unsigned long long)t->up, (unsigned long long)t->down);
	t->state = ST_DONE;
	loop_timer_stop(&t->timer);
	loop_timer_stop(&t->ping);
	loop_timer_stop(&t->linger);
	if (t->pc)
		peer_cancel(t->pc);
	if (t->tls)
		tls_free(t->tls);
	if (t->rfd >= 0) {
		loop_unwatch(t->rfd);
		close(t->rfd);
	}
	loop_unwatch(t->lfd);
	close(t->lfd);
	if (t->prev)
		t->prev->next = t->next;
	else
		T.conns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	T.nconns--;
	/* callbacks of this connection may still be on the stack */
	if (loop_defer(tun_free, t) < 0)
		log_error(t->id, "out of memory: leaking a connection");
}

/* Close with a reason at info level (a failure the user should see). */
static void tun_fail(tun *t, const char *why)
{
	log_info(t->id, "%s", why);
	tun_close(t);
}

static const char *mode_name(void)
{
	const client_opts *o = T.cfg->opt;

	return o->ws ? (o->tls ? "wss" : "ws") : o->tls ? "tls" : "tcp";
}

/* ---- remote I/O: plain or TLS, same conventions as read/write ---- */

static ssize_t r_read(tun *t, void *p, size_t n)
{
	ssize_t r;
	int want;

	if (t->tls == NULL)
		return read(t->rfd, p, n);
	r = tls_read(t->tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? EPROTO : EAGAIN;
	return r;
}

/* TLS sessions batch (tls_set_cork): a write takes what it returns even
 * if the socket is full; the rest of its records wait in the session
 * (rout_pending) and leave with r_flush(). */
static ssize_t r_write(tun *t, const void *p, size_t n)
{
	ssize_t r;
	int want;

	if (t->tls == NULL)
		return send(t->rfd, p, n, MSG_NOSIGNAL);
	r = tls_write(t->tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? EPIPE : EAGAIN;
	return r;
}

static ssize_t r_flush(tun *t)
{
	int want;

	if (t->tls == NULL || !tls_write_pending(t->tls))
		return 0;
	if (tls_flush(t->tls, &want) == 0)
		return 0;
	errno = want == TLS_ERR ? EPIPE : EAGAIN;
	return -1;
}

/* Bytes for the remote still with us. */
static int rout_pending(tun *t)
{
	return t->rout.len > 0 || (t->tls && tls_write_pending(t->tls));
}

static int remote_readable(tun *t)
{
	return (t->flags & F_RREADY) || (t->tls && tls_pending(t->tls) > 0);
}

static const char *r_error(tun *t)
{
	if (t->tls && errno == EPROTO)
		return tls_error(t->tls);
	return strerror(errno);
}

/* ---- frames to the remote ---- */

static void next_key(tun *t, uint8_t key[4])
{
	opts_mask_key(T.cfg->opt->mask, t->conn_key, key);
}

/* Mask in place unless the key is all zero (mask=skip: no work). */
static void apply_mask(uint8_t *p, size_t n, const uint8_t key[4])
{
	if (key[0] | key[1] | key[2] | key[3])
		ws_mask(p, n, key, 0);
}

/* Queue a control frame; room is kept for it (CTL_RESERVE). */
static int send_control(tun *t, int op, const void *p, size_t n)
{
	uint8_t hdr[WS_MAX_HEADER], key[4];
	size_t hl;

	if (n > WS_MAX_CONTROL || buf_alloc(&t->rout) < 0 ||
	    buf_room(&t->rout) < WS_MAX_HEADER + n)
		return -1;
	next_key(t, key);
	hl = ws_encode_header(hdr, op, 1, n, key);
	buf_put(&t->rout, hdr, hl);
	buf_put(&t->rout, p, n);
	apply_mask(buf_tail(&t->rout) - n, n, key);
	return 0;
}

static void send_close(tun *t, int code)
{
	uint8_t p[2];
	size_t n = upgrade_close_payload(code, p);

	if (t->flags & F_CLOSE_SENT)
		return;
	t->flags |= F_CLOSE_SENT;
	send_control(t, WS_OP_CLOSE, p, n);
}

/* ---- the upgrade ---- */

static int send_request(tun *t)
{
	const client_opts *o = T.cfg->opt;

	if (upgrade_request(&t->rout, o->path, o->host, t->wskey) < 0)
		return -1;
	t->state = ST_UPGRADE;
	return 0;
}

static void open_relay(tun *t)
{
	t->state = ST_OPEN;
	loop_timer_stop(&t->timer);
	if (ws_mode() && T.cfg->opt->ping)
		loop_timer_set(&t->ping, T.cfg->opt->ping * 1000ULL);
	log_info(t->id, "open (%s)", mode_name());
}

/* Wait for the whole response head; frames may follow it in rin. */
static void read_response(tun *t)
{
	char *h, *end, line[128];
	const char *why;
	size_t len;

	if (t->rin.area == NULL || t->rin.len == 0)
		return;
	h = (char *)buf_data(&t->rin);
	if ((end = upgrade_head_end(h, t->rin.len)) == NULL) {
		if (t->rin.len >= MAX_RESPONSE)
			tun_fail(t, "upgrade: response head too long");
		else if (t->flags & F_REOF)
			tun_fail(t, "upgrade: connection closed by the server");
		return;
	}
	len = (size_t)(end - h) + 4;
	end[2] = '\0';
	if ((why = upgrade_check(h, t->wskey)) != NULL) {
		log_info(t->id, "upgrade refused (%s): %s", why, log_sanitize(h,
		    strcspn(h, "\r\n"), line, sizeof(line)));
		tun_close(t);
		return;
	}
	buf_consume(&t->rin, len);
	open_relay(t);
}

/* ---- local -> remote ---- */

/* Turn n payload bytes read at tail + HDR_ROOM into a masked frame.  A
 * short frame has a 6-byte header: move its (< 126) bytes back by 2. */
static void frame_in_place(tun *t, size_t n)
{
	uint8_t *p = buf_tail(&t->rout), key[4];
	size_t hl = n < 126 ? 6 : HDR_ROOM;

	if (hl < HDR_ROOM)
		memmove(p + hl, p + HDR_ROOM, n);
	next_key(t, key);
	ws_encode_header(p, WS_OP_BINARY, 1, n, key);
	apply_mask(p + hl, n, key);
	buf_commit(&t->rout, hl + n);
}

/* The server is done with us: local bytes can only be discarded. */
static int local_draining(const tun *t)
{
	return ws_mode() && (t->flags & (F_CLOSE_RCVD | F_REOF));
}

static size_t local_room(tun *t)
{
	size_t room, reserve = ws_mode() ? HDR_ROOM + CTL_RESERVE : 0;

	if (buf_alloc(&t->rout) < 0)
		return 0;
	room = buf_room(&t->rout);
	if (room <= reserve)
		return 0;
	room -= reserve;
	return ws_mode() && room > 65535 ? 65535 : room;
}

static int want_local(tun *t)
{
	if (t->state != ST_OPEN || (t->flags & F_LEOF))
		return 0;
	if (local_draining(t))
		return 1;
	if (t->flags & (F_CLOSE_SENT | F_RSHUT))
		return 0;
	return local_room(t) > 0;
}

static int read_local(tun *t)
{
	uint8_t junk[4096], *p = junk;
	size_t max = sizeof(junk);
	ssize_t n;
	int drain;

	if (!(t->flags & F_LREADY) || !want_local(t))
		return 0;
	drain = local_draining(t);
	if (!drain) {
		max = local_room(t);
		p = buf_tail(&t->rout) + (ws_mode() ? HDR_ROOM : 0);
	}
	n = read(t->lfd, p, max);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			t->flags &= ~F_LREADY;
		return 0;
	}
	if (n <= 0) {
		if (n < 0)
			log_info(t->id, "local read: %s", strerror(errno));
		else
			log_debug(t->id, "local EOF");
		t->flags |= F_LEOF;
		return 1;
	}
	if (drain) {
		log_debug(t->id, "discarded %zd local bytes: the server "
		    "closed", n);
		return 1;
	}
	if (ws_mode())
		frame_in_place(t, (size_t)n);
	else
		buf_commit(&t->rout, (size_t)n);
	t->up += (uint64_t)n;
	return 1;
}

static int write_remote(tun *t)
{
	ssize_t n;

	if (!rout_pending(t) || (t->flags & (F_RWBLOCK | F_RSHUT)))
		return 0;
	if ((n = r_flush(t)) == 0 && t->rout.len == 0)
		return 1;       /* the last records left */
	if (n == 0)
		n = r_write(t, buf_data(&t->rout), t->rout.len);
	if (n > 0) {
		buf_consume(&t->rout, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			t->flags |= F_RWBLOCK;
		return 0;
	}
	log_info(t->id, "remote write: %s", r_error(t));
	/* the remote is gone: what is queued for it can never arrive */
	t->rout.len = t->rout.off = 0;
	t->flags |= F_RSHUT | F_REOF;
	return 1;
}

/* ---- remote -> local ---- */

static int read_remote(tun *t)
{
	buf *b = ws_mode() ? &t->rin : &t->lout;
	ssize_t n;

	if ((t->flags & F_REOF) || !remote_readable(t) || buf_alloc(b) < 0 ||
	    buf_room(b) == 0)
		return 0;
	n = r_read(t, buf_tail(b), buf_room(b));
	if (n > 0) {
		buf_commit(b, (size_t)n);
		/* the close wait bounds silence, not a long final burst */
		if (t->flags & F_CLOSING)
			loop_timer_set(&t->timer, T.cfg->close_wait_ms);
		if (!ws_mode())
			t->down += (uint64_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			t->flags &= ~F_RREADY;
		/* GnuTLS stops after a post-handshake message (a session
		 * ticket) even with records read ahead, which poll() will
		 * never report: go again while whole records are there. */
		return t->tls && tls_pending(t->tls) > 0;
	}
	if (n < 0)
		log_info(t->id, "remote read: %s", r_error(t));
	else
		log_debug(t->id, "remote EOF");
	t->flags |= F_REOF;
	return 1;
}

static void on_close_frame(tun *t, const ws_event *ev)
{
	t->flags |= F_CLOSE_RCVD;
	log_debug(t->id, "server close %d", ev->code);
	/* a connection we started closing already sent its own */
	send_close(t, upgrade_close_reply(0, ev));
}

static int decode_remote(tun *t)
{
	ws_event ev;
	ssize_t r;
	size_t room;
	int moved = 0;

	while (t->rin.len > 0 && !(t->flags & F_CLOSE_RCVD)) {
		/* max_payload 0 would mean no limit: wait for room (control
		 * frames behind the data wait too, in order) */
		if (buf_alloc(&t->lout) < 0 || (room = buf_room(&t->lout)) == 0)
			return moved;
		r = ws_decode(&t->dec, buf_data(&t->rin), t->rin.len, room,
		    &ev);
		if (r < 0) {
			log_info(t->id, "bad frame from the server: closing "
			    "with %d", (int)-r);
			send_close(t, upgrade_close_reply(r, &ev));
			t->flags |= F_CLOSE_RCVD;
			return 1;
		}
		buf_consume(&t->rin, (size_t)r);
		if (r == 0 && ev.type == WS_EV_NONE)
			break;
		moved = 1;
		switch (ev.type) {
		case WS_EV_DATA:
			buf_put(&t->lout, ev.data, ev.len);
			t->down += ev.len;
			break;
		case WS_EV_PING:
			if (!(t->flags & F_CLOSE_SENT))
				send_control(t, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_PONG:
			t->awaiting_pong = 0;
			break;
		case WS_EV_CLOSE:
			on_close_frame(t, &ev);
			break;
		}
	}
	return moved;
}

static int write_local(tun *t)
{
	ssize_t n;

	if (t->lout.len == 0 || (t->flags & F_LWBLOCK))
		return 0;
	n = send(t->lfd, buf_data(&t->lout), t->lout.len, MSG_NOSIGNAL);
	if (n > 0) {
		buf_consume(&t->lout, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			t->flags |= F_LWBLOCK;
		return 0;
	}
	log_info(t->id, "local write: %s", strerror(errno));
	tun_close(t);
	return 0;
}

/* ---- closing ---- */

static void arm_close_timer(tun *t)
{
	if (t->flags & F_CLOSING)
		return;
	t->flags |= F_CLOSING;
	loop_timer_set(&t->timer, T.cfg->close_wait_ms);
}

/*
 * close-linger: after the local EOF, once everything read from it has
 * left for the server, give the server that long to close first.  Some
 * peers lose data frames that arrive just before a close (v2ray-plugin's
 * server); their own client closes 1 s after its EOF.  Data from the
 * server keeps flowing meanwhile, and its close or EOF ends the wait.
 */
static int linger_over(tun *t)
{
	if ((t->flags & F_LINGERED) || T.cfg->opt->close_linger_ms == 0)
		return 1;
	if (!(t->flags & F_LINGER) && !rout_pending(t)) {
		/* the linger bounds itself; the close wait starts again
		 * with our close */
		t->flags = (t->flags | F_LINGER) & ~F_CLOSING;
		loop_timer_stop(&t->timer);
		loop_timer_set(&t->linger, T.cfg->opt->close_linger_ms);
	}
	return 0;
}

static void linger_done(void *arg)
{
	tun *t = arg;

	t->flags |= F_LINGERED;
	progress(t);
}

/* The close handshake is over (or the remote is gone): the TCP
 * connection closes now, as the mux channel's does, not when the local
 * side is done. */
static void close_remote(tun *t)
{
	if (t->rfd < 0)
		return;
	log_debug(t->id, "remote closed after the close handshake");
	t->flags |= F_REOF | F_RSHUT;
	t->rout.len = t->rout.off = 0;
	loop_timer_stop(&t->ping);
	if (t->tls) {
		tls_free(t->tls);
		t->tls = NULL;
	}
	loop_unwatch(t->rfd);
	close(t->rfd);
	t->rfd = -1;
}

static void close_rules_ws(tun *t)
{
	unsigned f = t->flags;
	/* The remote is done when its close frame was decoded, or at its
	 * EOF once every frame before it was decoded: frames still in rin
	 * (held back while lout was full) must reach the local side before
	 * its SHUT_WR. */
	int rdone = (f & F_CLOSE_RCVD) || ((f & F_REOF) && t->rin.len == 0);

	if ((f & F_LEOF) && !rdone && !(f & F_CLOSE_SENT) && linger_over(t))
		send_close(t, WS_CLOSE_NORMAL);
	/* the local EOF too: the close wait bounds rout's draining */
	if ((t->flags & (F_CLOSE_SENT | F_CLOSE_RCVD | F_REOF)) ||
	    (t->flags & (F_LEOF | F_LINGER)) == F_LEOF)
		arm_close_timer(t);
	if (!rdone)
		return;
	if (t->lout.len == 0 && !(f & F_LSHUT)) {
		shutdown(t->lfd, SHUT_WR);
		t->flags |= F_LSHUT;
	}
	/* our close answer is on its way, or the remote is gone */
	if (!(t->flags & F_LSHUT) || (!(f & F_REOF) && rout_pending(t)))
		return;
	if (t->flags & F_LEOF)
		tun_close(t);
	else
		close_remote(t);
	/* and read the local side to its EOF so that closing does not
	 * reset what it has not read yet (bounded by the close timer) */
}

static void close_rules_raw(tun *t)
{
	if ((t->flags & F_LEOF) && !rout_pending(t) &&
	    !(t->flags & F_RSHUT)) {
		if (t->tls)
			tls_bye(t->tls);
		else
			shutdown(t->rfd, SHUT_WR);
		t->flags |= F_RSHUT;
	}
	if ((t->flags & F_REOF) && t->lout.len == 0 &&
	    !(t->flags & F_LSHUT)) {
		shutdown(t->lfd, SHUT_WR);
		t->flags |= F_LSHUT;
	}
	if ((t->flags & (F_LSHUT | F_RSHUT)) == (F_LSHUT | F_RSHUT))
		tun_close(t);
}

static void tun_timeout(void *arg)
{
	tun *t = arg;
	char m[128];

	if (t->state != ST_OPEN)
		snprintf(m, sizeof(m), "%s: no connection within %u s",
		    mode_name(), T.cfg->opt->timeout);
	else if (t->flags & F_LSHUT)
		snprintf(m, sizeof(m), "the local side did not close within "
		    "%llu ms", (unsigned long long)T.cfg->close_wait_ms);
	else
		snprintf(m, sizeof(m), "no close from the server within "
		    "%llu ms", (unsigned long long)T.cfg->close_wait_ms);
	tun_fail(t, m);
}

static void ping_tick(void *arg)
{
	tun *t = arg;
	uint64_t now = loop_now();

	if (t->awaiting_pong) {
		log_info(t->id, "no pong within %u s: dropping",
		    T.cfg->opt->ping);
		tun_close(t);
		return;
	}
	if (!(t->flags & F_CLOSE_SENT) &&
	    send_control(t, WS_OP_PING, &now, sizeof(now)) == 0)
		t->awaiting_pong = 1;
	loop_timer_set(&t->ping, T.cfg->opt->ping * 1000ULL);
	progress(t);
}

/* ---- the state machine ---- */

static void tls_step(tun *t)
{
	int r = tls_handshake(t->tls);
	char m[300];

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		loop_events(t->rfd, r == TLS_WANT_READ ? LOOP_READ :
		    LOOP_WRITE);
		return;
	}
	if (r != TLS_OK) {
		snprintf(m, sizeof(m), "TLS handshake: %s", tls_error(t->tls));
		tun_fail(t, m);
		return;
	}
	log_debug(t->id, "TLS %s, ALPN %s", tls_version(t->tls) ?
	    tls_version(t->tls) : "?", tls_alpn(t->tls) ? tls_alpn(t->tls) :
	    "none");
	t->flags |= F_RREADY;
	tls_set_cork(t->tls, 1);
	if (!ws_mode())
		open_relay(t);
	else if (send_request(t) < 0)
		tun_fail(t, "upgrade: request too long");
}

static void set_events(tun *t)
{
	int lev = 0, rev = 0;
	buf *rb = ws_mode() ? &t->rin : &t->lout;

	if (want_local(t))
		lev |= LOOP_READ;
	if (t->lout.len)
		lev |= LOOP_WRITE;
	if (t->state >= ST_UPGRADE && !(t->flags & F_REOF) && buf_room(rb))
		rev |= LOOP_READ;
	if (rout_pending(t) && !(t->flags & F_RSHUT))
		rev |= LOOP_WRITE;
	loop_events(t->lfd, lev);
	if (t->rfd >= 0)
		loop_events(t->rfd, rev);
}

static int step(tun *t)
{
	int moved = 0;

	moved |= read_remote(t);
	if (t->state == ST_UPGRADE)
		read_response(t);
	if (t->state == ST_OPEN && ws_mode())
		moved |= decode_remote(t);
	if (t->state == ST_OPEN)
		moved |= write_local(t);
	if (t->state == ST_OPEN)
		moved |= read_local(t);
	if (t->state != ST_DONE)
		moved |= write_remote(t);
	if (t->state == ST_OPEN) {
		if (ws_mode())
			close_rules_ws(t);
		else
			close_rules_raw(t);
	}
	return moved && t->state != ST_DONE;
}

static void progress(tun *t)
{
	if (t->state == ST_TLS)
		tls_step(t);
	if (t->state < ST_UPGRADE || t->state == ST_DONE)
		return;
	while (step(t))
		;
	if (t->state != ST_DONE)
		set_events(t);
}

static void local_io(int fd, int ev, void *arg)
{
	tun *t = arg;

	(void)fd;
	if (ev & (LOOP_READ | LOOP_ERROR))
		t->flags |= F_LREADY;
	if (ev & (LOOP_WRITE | LOOP_ERROR))
		t->flags &= ~F_LWBLOCK;
	progress(t);
}

static void remote_io(int fd, int ev, void *arg)
{
	tun *t = arg;

	(void)fd;
	/* TLS may need the other direction for either: try both */
	if (ev & (LOOP_READ | LOOP_ERROR) || t->tls)
		t->flags |= F_RREADY;
	if (ev & (LOOP_WRITE | LOOP_ERROR) || t->tls)
		t->flags &= ~F_RWBLOCK;
	progress(t);
}

/* ---- connecting ---- */

static void on_connect(void *arg, int fd, char *bound_path, const char *err)
{
	tun *t = arg;
	char name[300];
	int one = 1;

	(void)bound_path;
	t->pc = NULL;
	peer_uri_format(&T.cfg->remote[t->host], name, sizeof(name));
	if (fd < 0) {
		log_info(t->id, "connect %s: %s", name, err);
		if (++t->host < T.cfg->nremote)
			try_connect(t);
		else
			tun_close(t);
		return;
	}
	t->rfd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (loop_watch(fd, 0, remote_io, t) < 0) {
		tun_fail(t, "out of memory");
		return;
	}
	log_debug(t->id, "connected to %s", name);
	if (T.cfg->tls) {
		if ((t->tls = tls_connect(T.cfg->tls, fd)) == NULL) {
			tun_fail(t, "TLS: out of memory");
			return;
		}
		t->state = ST_TLS;
	} else if (ws_mode()) {
		if (send_request(t) < 0) {
			tun_fail(t, "upgrade: request too long");
			return;
		}
	} else {
		open_relay(t);
	}
	t->flags |= F_RREADY;
	progress(t);
}

static void try_connect(tun *t)
{
	t->pc = peer_connect(&T.cfg->remote[t->host],
	    T.cfg->opt->timeout * 1000ULL, on_connect, t);
	if (t->pc == NULL)
		tun_fail(t, "out of memory");
}

static void tun_new(int fd, const struct sockaddr *sa)
{
	char host[46];
	uint16_t port;
	tun *t;
	int one = 1;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_error(0, "out of memory: refusing a connection");
		close(fd);
		return;
	}
	t->id = ++T.next_id;
	t->lfd = fd;
	t->rfd = -1;
	t->state = ST_CONNECT;
	buf_init(&t->rout, T.cfg->bufsize);
	buf_init(&t->rin, T.cfg->bufsize);
	buf_init(&t->lout, T.cfg->bufsize);
	ws_decoder_init(&t->dec, 0, 0);
	if (T.cfg->opt->mask == MASK_FIXED)
		opts_random(t->conn_key, sizeof(t->conn_key));
	loop_timer_init(&t->timer, tun_timeout, t);
	loop_timer_init(&t->ping, ping_tick, t);
	loop_timer_init(&t->linger, linger_done, t);
	if (loop_watch(fd, 0, local_io, t) < 0) {
		log_error(0, "out of memory: refusing a connection");
		close(fd);
		free(t);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->next = T.conns;
	if (T.conns)
		T.conns->prev = t;
	T.conns = t;
	T.nconns++;
	sock_ntop(sa, host, sizeof(host), &port);
	log_info(t->id, "accepted from %s%s%s:%u", strchr(host, ':') ? "[" :
	    "", host, strchr(host, ':') ? "]" : "", port);
	loop_timer_set(&t->timer, T.cfg->opt->timeout * 1000ULL);
	try_connect(t);
}

/* ---- accepting ---- */

static void on_accept(int fd, const struct sockaddr *sa, int i, void *arg)
{
	(void)i;
	(void)arg;
	tun_new(fd, sa);
}

/* The shutdown grace time is over: what is left is closed by cleanup. */
static void stop_now(void *arg)
{
	(void)arg;
	log_info(0, "%zu connection%s still open: closing", T.nconns,
	    T.nconns == 1 ? "" : "s");
	loop_stop();
}

int tunnel_init(const tunnel_cfg *cfg)
{
	memset(&T, 0, sizeof(T));
	T.cfg = cfg;
	acceptor_init(&T.acc, on_accept, NULL);
	loop_timer_init(&T.stop_timer, stop_now, NULL);
	return 0;
}

int tunnel_listen(int fd)
{
	return acceptor_add(&T.acc, fd) < 0 ? -1 : 0;
}

/* Local connections are ended as if their local side closed (raw: a
 * shutdown; ws: close 1001), so data in flight still reaches them. */
static void end_conn(tun *t)
{
	if (t->state != ST_OPEN) {
		tun_close(t);
		return;
	}
	t->flags |= F_LEOF;
	if (ws_mode())
		send_close(t, WS_CLOSE_GOING_AWAY);
	progress(t);
}

void tunnel_shutdown(void)
{
	tun *t, *next;

	if (T.stopping)
		return;
	T.stopping = 1;
	log_info(0, "stopping: %zu connection%s", T.nconns, T.nconns == 1 ?
	    "" : "s");
	acceptor_close(&T.acc);
	for (t = T.conns; t; t = next) {
		next = t->next;
		end_conn(t);
	}
	if (T.nconns == 0)
		loop_stop();
	else
		loop_timer_set(&T.stop_timer, T.cfg->close_wait_ms);
}

void tunnel_cleanup(void)
{
	while (T.conns)
		tun_close(T.conns);
	acceptor_close(&T.acc);
	loop_timer_stop(&T.stop_timer);
}
