/*
 * session.c - peer streams on behalf of a framing session.
 *
 * Each stream is a connected peer socket with one bounded buffer toward
 * the peer; bytes from the peer go straight to the plugin (on_peer_data)
 * from a stack buffer, so the plugin decides how much it can carry and
 * pauses the stream when it cannot take more.  Streams are freed after the
 * current loop pass, so a plugin may close a stream from inside one of its
 * callbacks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "idtimer.h"
#include "log.h"
#include "loop.h"
#include "peer.h"
#include "session.h"
#include "sock.h"

typedef struct stream {
	uint64_t id;
	struct session *s;
	struct stream *next;
	int fd;
	int kind;
	peer_conn *pc;
	char *bound_path;
	buf out;
	int paused, want_shut, shut, eof, blocked, closed;
	int detached;     /* closed by the plugin, still flushing to the peer */
	int parked;       /* unwatched: hung up while we do not read it */
} stream;

struct session {
	const wsy_session_ops *ops;
	idtimer_group timers;     /* the plugin's, through h_timer_add */
	void *st;
	wsy_session_host host;
	session_link link;
	session_limits lim;
	char *peer;
	uint64_t next_id;
	stream *streams;
	size_t nstreams;
	int closing;
};

static void stream_io(int fd, int ev, void *arg);

static stream *find(session *s, uint64_t id)
{
	stream *t;

	for (t = s->streams; t; t = t->next)
		if (t->id == id && !t->closed && !t->detached)
			return t;
	return NULL;
}

static void stream_release(void *arg)
{
	free(arg);
}

/* Close now; the struct goes after this loop pass. */
static void stream_close(stream *t)
{
	session *s = t->s;
	stream **pp;

	if (t->closed)
		return;
	t->closed = 1;
	if (t->pc)
		peer_cancel(t->pc);
	if (t->fd >= 0) {
		if (!t->parked)
			loop_unwatch(t->fd);
		if (peer_is_dgram(t->kind))
			close(t->fd);
		else if (sock_close_drained(t->fd) != 0)
			log_debug(0, "stream %llu: closed with unread bytes "
			    "from its peer", (unsigned long long)t->id);
	}
	if (t->bound_path) {
		unlink(t->bound_path);
		free(t->bound_path);
	}
	buf_free(&t->out);
	for (pp = &s->streams; *pp && *pp != t; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = t->next;
	s->nstreams--;
	if (loop_defer(stream_release, t) < 0)
		free(t);   /* cannot defer: nothing of t is used after */
}

static void update(stream *t)
{
	int ev = 0;

	if (t->closed || t->fd < 0)
		return;
	if (!t->paused && !t->eof && !t->detached)
		ev |= LOOP_READ;
	if (t->out.len)
		ev |= LOOP_WRITE;
	if (t->parked) {
		if (ev == 0)
			return;
		t->parked = 0;
		if (loop_watch(t->fd, ev, stream_io, t) < 0) {
			t->s->ops->on_peer_error(t->s->st, t->id,
			    "out of memory");
			stream_close(t);
		}
		return;
	}
	loop_events(t->fd, ev);
}

static void flush(stream *t)
{
	while (t->out.len) {
		ssize_t n = write(t->fd, buf_data(&t->out), t->out.len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (!t->detached)
				t->s->ops->on_peer_error(t->s->st, t->id,
				    strerror(errno));
			stream_close(t);
			return;
		}
		buf_consume(&t->out, (size_t)n);
	}
	if (t->want_shut && !t->shut) {
		t->shut = 1;
		if (!peer_is_dgram(t->kind))
			shutdown(t->fd, SHUT_WR);
	}
	if (t->detached) {
		stream_close(t);
		return;
	}
	if (t->blocked) {
		t->blocked = 0;
		if (t->s->ops->on_peer_writable)
			t->s->ops->on_peer_writable(t->s->st, t->id);
	}
}

static void stream_io(int fd, int ev, void *arg)
{
	stream *t = arg;
	uint8_t b[65536];
	ssize_t n;

	if (ev & (LOOP_WRITE | LOOP_ERROR)) {
		flush(t);
		if (t->closed)
			return;
	}
	if ((ev & (LOOP_READ | LOOP_ERROR)) && !t->paused && !t->eof &&
	    !t->detached) {
		n = read(fd, b, sizeof(b));
		if (n > 0) {
			t->s->ops->on_peer_data(t->s->st, t->id, b, (size_t)n);
		} else if (n == 0) {
			t->eof = 1;
			t->s->ops->on_peer_data(t->s->st, t->id, b, 0);
		} else if (errno != EAGAIN && errno != EINTR) {
			t->s->ops->on_peer_error(t->s->st, t->id,
			    strerror(errno));
			stream_close(t);
			return;
		}
	}
	if (t->closed)
		return;
	/* POLLHUP/POLLERR come even unasked; while we neither read (paused,
	 * EOF) nor write, park the stream instead of waking on every pass. */
	if ((ev & LOOP_ERROR) && t->out.len == 0 && (t->paused || t->eof ||
	    t->detached)) {
		loop_unwatch(t->fd);
		t->parked = 1;
		return;
	}
	update(t);
}

/* ---- host functions (conn is the session) ---- */

static void on_connected(void *arg, int fd, char *bound_path,
    const char *err)
{
	stream *t = arg;
	session *s = t->s;

	t->pc = NULL;
	if (fd < 0) {
		uint64_t id = t->id;
		stream_close(t);
		s->ops->on_peer_open(s->st, id, 0, err);
		return;
	}
	t->fd = fd;
	t->bound_path = bound_path;
	if (loop_watch(fd, 0, stream_io, t) < 0) {
		uint64_t id = t->id;
		stream_close(t);
		s->ops->on_peer_open(s->st, id, 0, "out of memory");
		return;
	}
	update(t);
	s->ops->on_peer_open(s->st, t->id, 1, NULL);
}

static uint64_t h_peer_open(void *conn, const char *uri)
{
	session *s = conn;
	char err[256];
	peer_uri u;
	stream *t;

	if (s->closing || s->nstreams >= s->lim.max_streams)
		return 0;
	if (uri == NULL)
		uri = s->peer;
	if (peer_uri_parse(uri, NULL, &u, err, sizeof(err)) < 0) {
		log_info(s->link.id, "session: peer %s: %s", uri, err);
		return 0;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return 0;
	t->id = ++s->next_id;
	t->s = s;
	t->fd = -1;
	t->kind = u.kind;
	buf_init(&t->out, s->lim.buffer_size);
	if ((t->pc = peer_connect(&u, s->lim.connect_timeout_ms, on_connected,
	    t)) == NULL) {
		free(t);
		return 0;
	}
	t->next = s->streams;
	s->streams = t;
	s->nstreams++;
	return t->id;
}

static int64_t h_peer_write(void *conn, uint64_t id, const uint8_t *d,
    size_t n)
{
	stream *t = find(conn, id);
	size_t taken = 0, room;

	if (t == NULL || t->fd < 0 || t->want_shut)
		return -1;
	if (t->out.len == 0) {
		ssize_t w = write(t->fd, d, n);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		taken = w > 0 ? (size_t)w : 0;
	}
	if (taken < n) {
		if (buf_alloc(&t->out) < 0)
			return taken ? (int64_t)taken : -1;
		room = buf_room(&t->out);
		if (room > n - taken)
			room = n - taken;
		buf_put(&t->out, d + taken, room);
		taken += room;
		if (taken < n)
			t->blocked = 1;
	}
	update(t);
	return (int64_t)taken;
}

static void h_peer_shutdown(void *conn, uint64_t id)
{
	stream *t = find(conn, id);

	if (t == NULL)
		return;
	t->want_shut = 1;
	if (t->fd >= 0 && t->out.len == 0)
		flush(t);
}

/* After peer_shutdown, bytes still queued for the peer are delivered
 * (the stream is detached: no more callbacks), then it closes; the
 * session's end closes it in any case. */
static void h_peer_close(void *conn, uint64_t id)
{
	stream *t = find(conn, id);

	if (t == NULL)
		return;
	if (t->want_shut && t->out.len > 0 && t->fd >= 0) {
		t->detached = 1;
		update(t);
		return;
	}
	stream_close(t);
}

static void h_peer_pause(void *conn, uint64_t id, int paused)
{
	stream *t = find(conn, id);

	if (t) {
		t->paused = paused;
		update(t);
	}
}

static int h_ws_send(void *conn, int opcode, const uint8_t *d, size_t n)
{
	session *s = conn;

	if (s->closing)
		return -1;
	return s->link.ws_send(s->link.arg, opcode, d, n);
}

static void h_close(void *conn, int code, const char *reason)
{
	session *s = conn;

	if (!s->closing)
		s->link.ws_close(s->link.arg, code, reason);
}

static void h_ws_pause(void *conn, int paused)
{
	session *s = conn;

	if (!s->closing)
		s->link.ws_pause(s->link.arg, paused);
}

static void h_log(void *conn, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void h_log(void *conn, int level, const char *fmt, ...)
{
	session *s = conn;
	char msg[1024];
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(level < LOGL_ERROR ? LOGL_ERROR : level, s->link.id, "%s",
	    msg);
}

static uint64_t h_timer_add(void *conn, uint64_t ms, wsy_timer_cb cb,
    void *arg)
{
	session *s = conn;

	if (s->closing || cb == NULL)
		return 0;
	return idtimer_add(&s->timers, ms, cb, arg);
}

static void h_timer_cancel(void *conn, uint64_t id)
{
	session *s = conn;

	idtimer_cancel_in(&s->timers, id);
}

static uint64_t h_now(void)
{
	return loop_now();
}

/* ---- the bridge's side ---- */

session *session_open(const wsy_session_ops *ops, const char *config,
    const char *peer, const session_link *link, const session_limits *lim)
{
	session *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->peer = strdup(peer ? peer : "")) == NULL) {
		free(s);
		return NULL;
	}
	s->ops = ops;
	s->link = *link;
	s->lim = *lim;
	s->host.struct_size = sizeof(s->host);
	s->host.ws_send = h_ws_send;
	s->host.peer_open = h_peer_open;
	s->host.peer_write = h_peer_write;
	s->host.peer_shutdown = h_peer_shutdown;
	s->host.peer_close = h_peer_close;
	s->host.peer_pause = h_peer_pause;
	s->host.close = h_close;
	s->host.ws_pause = h_ws_pause;
	s->host.log = h_log;
	s->host.timer_add = h_timer_add;
	s->host.timer_cancel = h_timer_cancel;
	s->host.now_ms = h_now;
	if ((s->st = ops->open(&s->host, s, config, s->peer)) == NULL) {
		free(s->peer);
		free(s);
		return NULL;
	}
	return s;
}

void session_message(session *s, int opcode, const uint8_t *d, size_t n,
    int fin)
{
	if (!s->closing)
		s->ops->on_message(s->st, opcode, d, n, fin);
}

void session_ws_writable(session *s)
{
	if (!s->closing && s->ops->on_ws_writable)
		s->ops->on_ws_writable(s->st);
}

static void session_release(void *arg)
{
	session *s = arg;

	free(s->peer);
	free(s);
}

int session_shutdown(session *s)
{
	if (s->closing || s->ops->on_shutdown == NULL)
		return -1;
	s->ops->on_shutdown(s->st);
	return s->closing ? -1 : 0;
}

void session_close(session *s, int code)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->ops->on_close(s->st, code);
	while (s->streams)
		stream_close(s->streams);
	idtimer_cancel_group(&s->timers);
	if (loop_defer(session_release, s) < 0)
		session_release(s);
}
