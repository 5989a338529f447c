/*
 * test_kcpmux_plugin.c - framing_kcp-mux.so loaded with dlopen() the way
 * the core loads it, driven through a fake session host in memory.  The
 * WebSocket's other end is a client tunnel of core/mux.c; the peers are
 * in-memory buffers whose appetite the test controls (a stalled peer takes
 * nothing).  The plugin's .so is found next to this binary
 * (../plugins), in WSY_PLUGIN_DIR, or in build/plugins.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/mux.h"
#include "../../plugins/websocksy_plugin.h"
#include "test.h"

#define MAXP 256                /* fake peer streams per connection */
#define MAXC 256                /* client streams tracked */
#define MAXT 16                 /* fake timers */

static const char *argv0 = "";
static const wsy_session_ops *ops;

/* ---- growable bytes ---- */

struct vec {
	uint8_t *p;
	size_t len, cap;
};

static void vec_put(struct vec *v, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (v->len + n > v->cap) {
		v->cap = (v->len + n) * 2;
		v->p = realloc(v->p, v->cap);
		if (v->p == NULL)
			abort();
	}
	memcpy(v->p + v->len, p, n);
	v->len += n;
}

static void vec_eat(struct vec *v, size_t n)
{
	memmove(v->p, v->p + n, v->len - n);
	v->len -= n;
}

static void vec_free(struct vec *v)
{
	free(v->p);
	memset(v, 0, sizeof(*v));
}

/* ---- the fake session host ---- */

struct fpeer {
	uint64_t id;
	char uri[1100];           /* "" = the backend's peer */
	int opened, closed, shut, paused, blocked, tell_open;
	size_t appetite;          /* bytes peer_write may take now */
	struct vec got;           /* what the plugin wrote */
};

struct cstream {
	uint32_t id;
	struct vec got;           /* what the client received */
	int fin, reset, consume;  /* consume: report bytes consumed */
	char reason[MUX_REASON_MAX];
};

struct fconn {
	void *sess;
	int gone;                 /* on_close ran */
	int close_code;
	char close_reason[128];
	int ws_paused;
	size_t ws_room;           /* bytes ws_send may queue now */
	int ws_blocked;
	size_t max_msg;           /* largest message seen */
	size_t nmsg;
	int close_in_send;        /* simulate on_close inside ws_send */
	struct vec s2c;           /* plugin -> client bytes */
	struct vec c2s;           /* client -> plugin bytes */
	struct fpeer peers[MAXP];
	size_t npeers;
	uint64_t next_id;
	size_t max_open;          /* peer_open refuses beyond this */
	int calls_after_close;

	mux_tunnel *cl;           /* the client end */
	struct cstream cs[MAXC];
	size_t ncs;
	int cl_closed;
	char cl_why[MUX_REASON_MAX];
	int deaf;                 /* the client reads nothing */
};

/* The fake clock and the host's timers (one connection at a time). */
static uint64_t fake_now = 1000000;
static struct ftimer {
	uint64_t id, at;
	wsy_timer_cb cb;
	void *arg;
} ftimers[MAXT];
static uint64_t ftimer_next;

static struct fpeer *fpeer(struct fconn *c, uint64_t id)
{
	size_t i;

	for (i = 0; i < c->npeers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}

static void after_close(struct fconn *c)
{
	if (c->gone)
		c->calls_after_close++;
}

static void end_session(struct fconn *c, int code);

static int h_ws_send(void *conn, int opcode, const uint8_t *d, size_t n)
{
	struct fconn *c = conn;

	after_close(c);
	CHECK_EQ(opcode, WSY_OP_BINARY);
	if (c->close_in_send) {
		/* What the core does when the client write fails. */
		c->close_in_send = 0;
		end_session(c, 1006);
		return -1;
	}
	if (c->gone || n > c->ws_room) {
		c->ws_blocked = 1;
		return -1;
	}
	c->ws_room -= n;
	vec_put(&c->s2c, d, n);
	if (n > c->max_msg)
		c->max_msg = n;
	c->nmsg++;
	return 0;
}

static uint64_t h_peer_open(void *conn, const char *uri)
{
	struct fconn *c = conn;
	struct fpeer *p;

	after_close(c);
	if (c->npeers == MAXP || c->npeers >= c->max_open)
		return 0;
	p = &c->peers[c->npeers++];
	memset(p, 0, sizeof(*p));
	p->id = ++c->next_id;
	snprintf(p->uri, sizeof(p->uri), "%s", uri ? uri : "");
	p->appetite = SIZE_MAX;
	return p->id;
}

static int64_t h_peer_write(void *conn, uint64_t id, const uint8_t *d,
    size_t n)
{
	struct fconn *c = conn;
	struct fpeer *p = fpeer(c, id);
	size_t k;

	after_close(c);
	if (p == NULL || p->closed || !p->opened || p->shut)
		return -1;
	k = n < p->appetite ? n : p->appetite;
	if (p->appetite != SIZE_MAX)
		p->appetite -= k;
	vec_put(&p->got, d, k);
	if (k < n)
		p->blocked = 1;
	return (int64_t)k;
}

static void h_peer_shutdown(void *conn, uint64_t id)
{
	struct fpeer *p = fpeer(conn, id);

	after_close(conn);
	if (p)
		p->shut = 1;
}

static void h_peer_close(void *conn, uint64_t id)
{
	struct fpeer *p = fpeer(conn, id);

	after_close(conn);
	if (p)
		p->closed = 1;
}

static void h_peer_pause(void *conn, uint64_t id, int paused)
{
	struct fpeer *p = fpeer(conn, id);

	after_close(conn);
	if (p)
		p->paused = paused;
}

static void h_close(void *conn, int code, const char *reason)
{
	struct fconn *c = conn;

	after_close(c);
	if (c->close_code == 0) {
		c->close_code = code;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s",
		    reason ? reason : "");
	}
}

static void h_ws_pause(void *conn, int paused)
{
	struct fconn *c = conn;

	after_close(c);
	c->ws_paused = paused;
}

static void h_log(void *conn, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void h_log(void *conn, int level, const char *fmt, ...)
{
	va_list ap;

	(void)conn;
	if (level > WSY_LOG_WARN || getenv("KCPMUX_TEST_LOG") == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t h_timer_add(void *conn, uint64_t ms, wsy_timer_cb cb,
    void *arg)
{
	size_t i;

	after_close(conn);
	for (i = 0; i < MAXT; i++)
		if (ftimers[i].id == 0) {
			ftimers[i].id = ++ftimer_next;
			ftimers[i].at = fake_now + ms;
			ftimers[i].cb = cb;
			ftimers[i].arg = arg;
			return ftimers[i].id;
		}
	CHECK(!"too many timers");
	return 0;
}

static void h_timer_cancel(void *conn, uint64_t id)
{
	size_t i;

	after_close(conn);
	for (i = 0; i < MAXT; i++)
		if (ftimers[i].id == id)
			ftimers[i].id = 0;
}

/* on_close, and what the core does with it: the session's timers go. */
static void end_session(struct fconn *c, int code)
{
	c->gone = 1;
	ops->on_close(c->sess, code);
	memset(ftimers, 0, sizeof(ftimers));
}

static uint64_t h_now_ms(void)
{
	return fake_now;
}

static size_t timers_armed(void)
{
	size_t i, n = 0;

	for (i = 0; i < MAXT; i++)
		n += ftimers[i].id != 0;
	return n;
}

static const wsy_session_host host = {
	.struct_size = sizeof(wsy_session_host),
	.ws_send = h_ws_send,
	.peer_open = h_peer_open,
	.peer_write = h_peer_write,
	.peer_shutdown = h_peer_shutdown,
	.peer_close = h_peer_close,
	.peer_pause = h_peer_pause,
	.close = h_close,
	.ws_pause = h_ws_pause,
	.log = h_log,
	.timer_add = h_timer_add,
	.timer_cancel = h_timer_cancel,
	.now_ms = h_now_ms,
};

/* ---- the client end of the tunnel ---- */

struct cout {
	struct vec data;          /* to send on the stream */
	size_t off;
	int want_fin, fin_sent;
};

static struct cout couts[MAXC];

static struct cstream *cstream(struct fconn *c, uint32_t id)
{
	size_t i;

	for (i = 0; i < c->ncs; i++)
		if (c->cs[i].id == id)
			return &c->cs[i];
	return NULL;
}

static void cl_output(void *arg, const uint8_t *p, size_t n)
{
	struct fconn *c = arg;

	vec_put(&c->c2s, p, n);
}

static void cl_open(void *arg, uint32_t id, const char *uri)
{
	(void)arg;
	(void)id;
	(void)uri;
	CHECK(!"client got a SYN");
}

static void cl_data(void *arg, uint32_t id, const uint8_t *p, size_t n)
{
	struct fconn *c = arg;
	struct cstream *s = cstream(c, id);

	CHECK(s != NULL);
	if (s == NULL)
		return;
	vec_put(&s->got, p, n);
	if (s->consume)
		mux_stream_consumed(c->cl, id, n);
}

static void cl_fin(void *arg, uint32_t id)
{
	struct cstream *s = cstream(arg, id);

	if (s)
		s->fin = 1;
}

static void cl_reset(void *arg, uint32_t id, const char *reason)
{
	struct cstream *s = cstream(arg, id);

	if (s) {
		s->reset = 1;
		snprintf(s->reason, sizeof(s->reason), "%s", reason);
	}
}

static void cl_writable(void *arg, uint32_t id)
{
	(void)arg;
	(void)id;       /* pump() retries every stream */
}

static void cl_closed(void *arg, const char *reason)
{
	struct fconn *c = arg;

	c->cl_closed = 1;
	snprintf(c->cl_why, sizeof(c->cl_why), "%s", reason);
}

/* Move bytes every way until nothing moves. */
static void pump(struct fconn *c)
{
	size_t i, n, moved;
	ssize_t r;
	int round;

	for (round = 0; round < 1000000; round++) {
		moved = 0;
		for (i = 0; i < c->ncs && !c->cl_closed; i++) {
			struct cout *o = &couts[i];

			if (o->off < o->data.len && (r = mux_stream_send(c->cl,
			    c->cs[i].id, o->data.p + o->off,
			    o->data.len - o->off)) > 0) {
				o->off += r;
				moved += r;
			}
			if (o->off == o->data.len && o->want_fin &&
			    !o->fin_sent) {
				mux_stream_fin(c->cl, c->cs[i].id);
				o->fin_sent = 1;
				moved++;
			}
		}
		if (!c->cl_closed)
			mux_set_room(c->cl, 1 << 20);
		while (c->c2s.len && !c->ws_paused && !c->gone) {
			n = c->c2s.len < 65536 ? c->c2s.len : 65536;
			ops->on_message(c->sess, WSY_OP_BINARY, c->c2s.p, n, 1);
			vec_eat(&c->c2s, n);
			moved += n;
		}
		if (c->s2c.len && !c->cl_closed && !c->deaf) {
			r = mux_input(c->cl, c->s2c.p, c->s2c.len);
			if (r > 0) {
				vec_eat(&c->s2c, r);
				moved += r;
			}
		}
		if (c->ws_blocked && c->ws_room > 0 && !c->gone) {
			c->ws_blocked = 0;
			ops->on_ws_writable(c->sess);
			moved++;
		}
		for (i = 0; i < c->npeers && !c->gone; i++) {
			struct fpeer *p = &c->peers[i];

			if (p->blocked && p->appetite && !p->closed) {
				p->blocked = 0;
				ops->on_peer_writable(c->sess, p->id);
				moved++;
			}
		}
		if (moved == 0)
			return;
	}
	CHECK(!"pump settled");
}

static struct fconn *conn_new(const char *config)
{
	struct fconn *c = calloc(1, sizeof(*c));
	mux_callbacks cb = { cl_output, cl_open, cl_data, cl_fin, cl_reset,
	    cl_writable, cl_closed, NULL };
	mux_config mc;

	if (c == NULL)
		abort();
	memset(couts, 0, sizeof(couts));
	c->ws_room = SIZE_MAX;
	c->max_open = SIZE_MAX;
	c->sess = ops->open(&host, c, config, "tcp://127.0.0.1:9");
	CHECK(c->sess != NULL);
	if (c->sess == NULL) {
		free(c);
		return NULL;
	}
	cb.arg = c;
	mux_config_default(&mc, 0);
	/* The tests count in the protocol's default window. */
	mc.window = MUX_DEFAULT_WINDOW;
	mc.keepalive_ms = 0;
	c->cl = mux_tunnel_new(&mc, &cb, 0);
	CHECK(c->cl != NULL);
	pump(c);
	CHECK_EQ(mux_tunnel_state(c->cl), MUX_T_READY);
	return c;
}

static void conn_free(struct fconn *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (!c->gone)
		end_session(c, 1000);
	CHECK_EQ(c->calls_after_close, 0);
	mux_tunnel_free(c->cl);
	for (i = 0; i < c->npeers; i++)
		vec_free(&c->peers[i].got);
	for (i = 0; i < c->ncs; i++) {
		vec_free(&c->cs[i].got);
		vec_free(&couts[i].data);
	}
	vec_free(&c->s2c);
	vec_free(&c->c2s);
	free(c);
}

/* Open a client stream; returns its index. */
static size_t cs_open(struct fconn *c, const char *uri)
{
	struct cstream *s = &c->cs[c->ncs];

	memset(s, 0, sizeof(*s));
	s->id = mux_stream_new(c->cl, uri);
	s->consume = 1;
	CHECK(s->id != 0);
	return c->ncs++;
}

/* Queue bytes (and maybe a FIN) on client stream i. */
static void cs_send(struct fconn *c, size_t i, const void *p, size_t n,
    int fin)
{
	(void)c;
	vec_put(&couts[i].data, p, n);
	couts[i].want_fin = fin;
}

/* The host's answer to peer_open. */
static void peer_answer(struct fconn *c, size_t i, int ok, const char *err)
{
	c->peers[i].opened = ok;
	ops->on_peer_open(c->sess, c->peers[i].id, ok, err);
}

/* Bytes from the peer, as the host delivers them. */
static void peer_says(struct fconn *c, size_t i, const void *p, size_t n)
{
	ops->on_peer_data(c->sess, c->peers[i].id, p, n);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;
	uint32_t x = seed * 2654435761u + 1;

	for (i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
}

/* ---- tests ---- */

static int got_is(const struct vec *v, const char *s)
{
	return v->len == strlen(s) && memcmp(v->p, s, v->len) == 0;
}

/* SYN -> peer_open, 0-RTT data, data both ways, FIN both ways. */
static void test_basic(void)
{
	struct fconn *c = conn_new("");
	uint32_t id;
	size_t i;

	if (c == NULL)
		return;
	i = cs_open(c, NULL);
	id = c->cs[i].id;
	cs_send(c, i, "hello", 5, 0);
	pump(c);
	CHECK_EQ(c->npeers, 1);
	CHECK_EQ(c->peers[0].uri[0], '\0');
	CHECK_EQ(c->peers[0].got.len, 0);
	CHECK_EQ(mux_stream_state(c->cl, id), MUX_S_SYN_SENT);
	peer_answer(c, 0, 1, NULL);
	pump(c);
	CHECK(got_is(&c->peers[0].got, "hello"));
	CHECK_EQ(mux_stream_state(c->cl, id), MUX_S_ESTABLISHED);
	peer_says(c, 0, "world", 5);
	pump(c);
	CHECK(got_is(&c->cs[i].got, "world"));
	cs_send(c, i, "!", 1, 1);
	pump(c);
	CHECK(got_is(&c->peers[0].got, "hello!"));
	CHECK(c->peers[0].shut);
	CHECK(!c->peers[0].closed);
	CHECK(!c->cs[i].fin);
	peer_says(c, 0, "bye", 3);
	peer_says(c, 0, "", 0);
	pump(c);
	CHECK(got_is(&c->cs[i].got, "worldbye"));
	CHECK(c->cs[i].fin);
	CHECK(!c->cs[i].reset);
	CHECK(c->peers[0].closed);
	CHECK_EQ(mux_stream_state(c->cl, id), MUX_S_DEAD);
	CHECK_EQ(c->close_code, 0);
	conn_free(c);
}

/* The peer's EOF first, then the client's FIN. */
static void test_peer_fin_first(void)
{
	struct fconn *c = conn_new("");
	size_t i;

	if (c == NULL)
		return;
	i = cs_open(c, NULL);
	pump(c);
	peer_answer(c, 0, 1, NULL);
	peer_says(c, 0, "x", 1);
	peer_says(c, 0, "", 0);
	pump(c);
	CHECK(c->cs[i].fin);
	CHECK(got_is(&c->cs[i].got, "x"));
	CHECK(!c->peers[0].closed);
	cs_send(c, i, "late", 4, 1);
	pump(c);
	CHECK(got_is(&c->peers[0].got, "late"));
	CHECK(c->peers[0].shut);
	CHECK(c->peers[0].closed);
	conn_free(c);
}

/* Connect failure -> RST with the host's reason; the client's RST closes
 * the peer; peer errors reset the stream. */
static void test_resets(void)
{
	struct fconn *c = conn_new("");
	size_t a, b, d, e;

	if (c == NULL)
		return;
	a = cs_open(c, NULL);
	b = cs_open(c, NULL);
	d = cs_open(c, NULL);
	cs_send(c, a, "0rtt", 4, 0);
	pump(c);
	CHECK_EQ(c->npeers, 3);
	peer_answer(c, 0, 0, "Connection refused");
	peer_answer(c, 1, 1, NULL);
	peer_answer(c, 2, 1, NULL);
	pump(c);
	CHECK(c->cs[a].reset);
	CHECK(strcmp(c->cs[a].reason, "Connection refused") == 0);
	CHECK(!c->cs[b].reset);
	/* client RST -> peer_close */
	mux_stream_reset(c->cl, c->cs[b].id, "bored");
	pump(c);
	CHECK(c->peers[1].closed);
	/* host error -> RST */
	ops->on_peer_error(c->sess, c->peers[2].id, "Connection reset by peer");
	pump(c);
	CHECK(c->cs[d].reset);
	CHECK(strcmp(c->cs[d].reason, "Connection reset by peer") == 0);
	/* the host refuses peer_open */
	c->max_open = 0;
	e = cs_open(c, NULL);
	pump(c);
	CHECK(c->cs[e].reset);
	CHECK(strcmp(c->cs[e].reason, "cannot open peer") == 0);
	CHECK_EQ(c->close_code, 0);
	CHECK_EQ(mux_tunnel_state(c->cl), MUX_T_READY);
	conn_free(c);
}

/* SYN URIs: only allowed targets reach peer_open. */
static void test_targets(void)
{
	static const struct { const char *uri; int ok; } t[] = {
		{ "tcp://127.0.0.1:5000", 1 },
		{ "tcp://[::1]:22", 1 },
		{ "TCP://127.0.0.1:1", 1 },
		{ "tcp://10.0.0.1:80", 0 },
		{ "tcp://[::1]:23", 0 },
		{ "tcp://127.0.0.1:5000?bind=1.2.3.4", 0 },
		{ "tcp://127.0.0.1:5000/x", 0 },
		{ "tcp://u@127.0.0.1:5000", 0 },
		{ "udp://127.0.0.1:53", 0 },
		{ "unix:///tmp/x", 0 },
		{ "tcp://127.0.0.1:0", 0 },
		{ "tcp://127.0.0.1:", 0 },
		{ "tcp://*:5000", 0 },
	};
	struct fconn *c = conn_new("targets=tcp://127.0.0.1:*,tcp://[::1]:22 "
	    "window=65536");
	size_t i, k, np = 0;

	if (c == NULL)
		return;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		k = cs_open(c, t[i].uri);
		pump(c);
		if (t[i].ok) {
			CHECK_EQ(c->npeers, np + 1);
			CHECK(c->npeers > np &&
			    strcmp(c->peers[np].uri, t[i].uri) == 0);
			CHECK(!c->cs[k].reset);
			np = c->npeers;
		} else {
			CHECK_EQ(c->npeers, np);
			CHECK(c->cs[k].reset);
			if (strcmp(c->cs[k].reason, "target not allowed"))
				fprintf(stderr, "%s: %s\n", t[i].uri,
				    c->cs[k].reason);
			CHECK(strcmp(c->cs[k].reason,
			    "target not allowed") == 0);
		}
	}
	conn_free(c);

	/* No allow-list: a named target is refused, the default is not. */
	if ((c = conn_new("")) == NULL)
		return;
	k = cs_open(c, "tcp://127.0.0.1:5000");
	i = cs_open(c, "");
	pump(c);
	CHECK(c->cs[k].reset);
	CHECK(!c->cs[i].reset);
	CHECK_EQ(c->npeers, 1);
	conn_free(c);

	/* Bad configurations refuse the session. */
	CHECK(ops->open(&host, NULL, "targets=tcp://x", "") == NULL);
	CHECK(ops->open(&host, NULL, "window=abc", "") == NULL);
	CHECK(ops->open(&host, NULL, "colour=blue", "") == NULL);
	CHECK(ops->open(&host, NULL, "max-frame=100", "") == NULL);
}

/* 50 streams at once, 200 kB each way, byte-identical. */
static void test_many(void)
{
	enum { N = 50, LEN = 200000 };
	struct fconn *c = conn_new("");
	static uint8_t up[LEN], down[LEN];
	size_t i, ok = 0;

	if (c == NULL)
		return;
	for (i = 0; i < N; i++) {
		cs_open(c, NULL);
		fill(down, LEN, (unsigned)i);
		cs_send(c, i, down, LEN, 1);
	}
	pump(c);
	CHECK_EQ(c->npeers, N);
	for (i = 0; i < N; i++)
		peer_answer(c, i, 1, NULL);
	pump(c);
	for (i = 0; i < N; i++) {
		fill(up, LEN, (unsigned)i + 1000);
		peer_says(c, i, up, 30000);
		peer_says(c, i, up + 30000, LEN - 30000);
		peer_says(c, i, "", 0);
		pump(c);
	}
	for (i = 0; i < N; i++) {
		fill(down, LEN, (unsigned)i);
		fill(up, LEN, (unsigned)i + 1000);
		if (c->peers[i].got.len == LEN &&
		    memcmp(c->peers[i].got.p, down, LEN) == 0 &&
		    c->cs[i].got.len == LEN &&
		    memcmp(c->cs[i].got.p, up, LEN) == 0 &&
		    c->cs[i].fin && c->peers[i].shut && c->peers[i].closed)
			ok++;
	}
	CHECK_EQ(ok, N);
	CHECK(c->max_msg <= 65536);
	CHECK_EQ(mux_active_streams(c->cl), 0);
	conn_free(c);
}

/* A peer that takes nothing stalls only its own stream, and the bytes
 * waiting for it are bounded by the window. */
static void test_stalled_peer(void)
{
	enum { LEN = 1 << 20 };
	struct fconn *c = conn_new("window=131072");
	static uint8_t d[LEN];
	size_t a, b;

	if (c == NULL)
		return;
	a = cs_open(c, NULL);
	b = cs_open(c, NULL);
	pump(c);
	c->peers[0].appetite = 1000;
	peer_answer(c, 0, 1, NULL);
	peer_answer(c, 1, 1, NULL);
	fill(d, LEN, 7);
	cs_send(c, a, d, LEN, 1);
	cs_send(c, b, d, LEN, 1);
	pump(c);
	CHECK_EQ(c->peers[1].got.len, LEN);
	CHECK(c->peers[1].shut);
	CHECK_EQ(c->peers[0].got.len, 1000);
	/* The client could not send more than a window past what the peer
	 * took: that is all the plugin holds for it. */
	CHECK(couts[a].off <= 1000 + 131072);
	CHECK(mux_stream_send_window(c->cl, c->cs[a].id) <= 0);
	CHECK(!c->peers[0].shut);
	c->peers[0].appetite = SIZE_MAX;
	pump(c);
	CHECK_EQ(c->peers[0].got.len, LEN);
	CHECK(c->peers[0].got.len == LEN &&
	    memcmp(c->peers[0].got.p, d, LEN) == 0);
	CHECK(c->peers[0].shut);
	conn_free(c);
}

/* A client that does not consume one stream: that peer is paused after
 * a window (plus one read), the other stream runs to the end. */
static void test_stalled_reader(void)
{
	enum { LEN = 1 << 20, CH = 65536 };
	struct fconn *c = conn_new("");
	static uint8_t d[LEN];
	size_t a, b, sa = 0, sb = 0;

	if (c == NULL)
		return;
	a = cs_open(c, NULL);
	b = cs_open(c, NULL);
	pump(c);
	peer_answer(c, 0, 1, NULL);
	peer_answer(c, 1, 1, NULL);
	pump(c);
	c->cs[a].consume = 0;
	fill(d, LEN, 9);
	while (sb < LEN || (sa < LEN && !c->peers[0].paused)) {
		if (sa < LEN && !c->peers[0].paused) {
			peer_says(c, 0, d + sa, CH);
			sa += CH;
		}
		if (sb < LEN) {
			CHECK(!c->peers[1].paused);
			peer_says(c, 1, d + sb, CH);
			sb += CH;
		}
		pump(c);
	}
	CHECK(c->peers[0].paused);
	CHECK(sa <= MUX_DEFAULT_WINDOW + CH);
	CHECK_EQ(c->cs[a].got.len, MUX_DEFAULT_WINDOW);
	CHECK_EQ(c->cs[b].got.len, LEN);
	/* The reader catches up: the peer resumes. */
	c->cs[a].consume = 1;
	mux_stream_consumed(c->cl, c->cs[a].id, c->cs[a].got.len);
	pump(c);
	CHECK(!c->peers[0].paused);
	while (sa < LEN) {
		CHECK(!c->peers[0].paused);
		peer_says(c, 0, d + sa, CH);
		sa += CH;
		pump(c);
	}
	CHECK(c->cs[a].got.len == LEN &&
	    memcmp(c->cs[a].got.p, d, LEN) == 0);
	conn_free(c);
}

/* Without flow control (empty SETTINGS) a stalled peer pauses the whole
 * WebSocket after a window's worth (§7, head-of-line blocking), and the
 * client's bytes wait in one bounded buffer until it drains. */
static void test_no_flow_control(void)
{
	enum { LEN = 1 << 20 };
	struct fconn *c = conn_new("window=0");
	static uint8_t d[LEN];
	size_t a;

	if (c == NULL)
		return;
	a = cs_open(c, NULL);
	pump(c);
	c->peers[0].appetite = 0;
	peer_answer(c, 0, 1, NULL);
	fill(d, LEN, 11);
	cs_send(c, a, d, LEN, 1);
	pump(c);
	CHECK(!mux_flow_control(c->cl));
	CHECK(c->ws_paused);
	CHECK_EQ(c->peers[0].got.len, 0);
	CHECK_EQ(c->close_code, 0);
	c->peers[0].appetite = SIZE_MAX;
	pump(c);
	CHECK(!c->ws_paused);
	CHECK(c->peers[0].got.len == LEN &&
	    memcmp(c->peers[0].got.p, d, LEN) == 0);
	CHECK(c->peers[0].shut);
	conn_free(c);
}

/* The client's buffer is full: output waits (bounded), peers pause, and
 * everything flows again on on_ws_writable. */
static void test_ws_full(void)
{
	enum { N = 4, CH = 65536, LEN = 512 * 1024 };
	struct fconn *c = conn_new("");
	static uint8_t d[LEN];
	size_t i, taken = 0, k;

	if (c == NULL)
		return;
	for (i = 0; i < N; i++)
		cs_open(c, NULL);
	pump(c);
	for (i = 0; i < N; i++)
		peer_answer(c, i, 1, NULL);
	pump(c);
	c->ws_room = 0;
	fill(d, LEN, 3);
	for (k = 0; k < LEN / CH; k++)
		for (i = 0; i < N; i++)
			if (!c->peers[i].paused) {
				peer_says(c, i, d + k * CH, CH);
				taken += CH;
			}
	for (i = 0; i < N; i++)
		CHECK(c->peers[i].paused);
	/* One read per stream, no more. */
	CHECK(taken <= N * CH);
	CHECK(c->ws_blocked);
	/* A small opening: messages shrink to fit. */
	c->ws_room = 3000;
	ops->on_ws_writable(c->sess);
	CHECK(c->s2c.len > 0 && c->s2c.len <= 3000);
	c->ws_room = SIZE_MAX;
	pump(c);
	for (i = 0; i < N; i++)
		CHECK(!c->peers[i].paused);
	for (i = 0; i < N; i++)
		CHECK_EQ(c->cs[i].got.len, CH);
	CHECK(c->max_msg <= 65536);
	conn_free(c);
}

/* Find a GOAWAY in the server's output; returns its error code or -1. */
static long goaway_code(const struct vec *v, char *why, size_t whylen)
{
	mux_decoder d;
	mux_frame f;
	size_t off = 0;
	ssize_t r;
	long code = -1;

	mux_decoder_init(&d, MUX_MAX_FRAME_LIMIT);
	while (off < v->len && (r = mux_decode(&d, v->p + off, v->len - off,
	    &f)) > 0) {
		off += r;
		if (f.type == MUX_GOAWAY && f.len >= 8) {
			code = (long)f.payload[4] << 24 | f.payload[5] << 16 |
			    f.payload[6] << 8 | f.payload[7];
			snprintf(why, whylen, "%.*s", (int)(f.len - 8),
			    f.payload + 8);
		}
	}
	mux_decoder_free(&d);
	return code;
}

/* A client that breaks the protocol gets GOAWAY and a 1002 close. */
static void test_protocol_errors(void)
{
	static const uint8_t data_first[] = { 0, 0, 1, MUX_DATA, 0, 0, 0, 0,
	    1, 'x' };
	struct fconn c;
	char why[MUX_REASON_MAX] = "";

	memset(&c, 0, sizeof(c));
	c.ws_room = SIZE_MAX;
	c.sess = ops->open(&host, &c, "", "tcp://127.0.0.1:9");
	CHECK(c.sess != NULL);
	if (c.sess == NULL)
		return;
	ops->on_message(c.sess, WSY_OP_BINARY, data_first,
	    sizeof(data_first), 1);
	CHECK_EQ(c.close_code, 1002);
	CHECK_EQ(goaway_code(&c.s2c, why, sizeof(why)), MUX_E_PROTOCOL);
	CHECK(strcmp(why, "expected SETTINGS") == 0);
	/* More input after that is ignored. */
	ops->on_message(c.sess, WSY_OP_BINARY, data_first,
	    sizeof(data_first), 1);
	end_session(&c, 1002);
	CHECK_EQ(c.calls_after_close, 0);
	vec_free(&c.s2c);

	/* Text messages are not part of the channel. */
	memset(&c, 0, sizeof(c));
	c.sess = ops->open(&host, &c, "", "");
	ops->on_message(c.sess, WSY_OP_TEXT, (const uint8_t *)"hi", 2, 1);
	CHECK_EQ(c.close_code, 1003);
	end_session(&c, 1003);
}

/* DATA beyond the window ends the tunnel: nothing unbounded is kept. */
static void test_window_enforced(void)
{
	struct fconn *c = conn_new("window=65536");
	uint8_t frame[MUX_HDR_LEN + 16384];
	char why[MUX_REASON_MAX] = "";
	size_t i;

	if (c == NULL)
		return;
	cs_open(c, NULL);
	pump(c);
	c->peers[0].appetite = 0;
	peer_answer(c, 0, 1, NULL);
	pump(c);
	memset(frame, 'z', sizeof(frame));
	mux_put_header(frame, 16384, MUX_DATA, 0, c->cs[0].id);
	for (i = 0; i < 6; i++)
		vec_put(&c->c2s, frame, sizeof(frame));
	vec_free(&c->s2c);
	pump(c);
	CHECK_EQ(c->close_code, 1002);
	CHECK_EQ(goaway_code(&c->s2c, why, sizeof(why)), MUX_E_FLOW);
	CHECK(c->peers[0].closed);
	conn_free(c);
}

/* The client's PING is answered. */
static void test_ping(void)
{
	struct fconn *c = conn_new("keepalive=0");

	if (c == NULL)
		return;
	CHECK_EQ(mux_ping(c->cl), 0);
	pump(c);
	/* An unanswered PING would close the client tunnel here. */
	mux_tick(c->cl, 10001);
	CHECK_EQ(mux_tunnel_state(c->cl), MUX_T_READY);
	CHECK(!c->cl_closed);
	conn_free(c);
}

/* Time passes: due timers fire, in order, then everything moves. */
static void advance(struct fconn *c, uint64_t ms)
{
	uint64_t end = fake_now + ms;
	size_t i, best;

	for (;;) {
		best = MAXT;
		for (i = 0; i < MAXT; i++)
			if (ftimers[i].id && ftimers[i].at <= end &&
			    (best == MAXT || ftimers[i].at < ftimers[best].at))
				best = i;
		if (best == MAXT)
			break;
		if (ftimers[best].at > fake_now)
			fake_now = ftimers[best].at;
		ftimers[best].id = 0;
		ftimers[best].cb(ftimers[best].arg);
		if (!c->gone)
			pump(c);
	}
	fake_now = end;
}

/* Keepalive from the server, driven by the host's timer: an answering
 * client stays, a deaf one is closed after the timeout. */
static void test_keepalive(void)
{
	struct fconn *c = conn_new("keepalive=2 timeout=3");
	size_t before;

	if (c == NULL)
		return;
	CHECK_EQ(timers_armed(), 1);
	before = c->nmsg;
	advance(c, 2500);
	CHECK(c->nmsg > before);        /* a PING went out */
	advance(c, 10000);
	CHECK_EQ(c->close_code, 0);
	CHECK_EQ(mux_tunnel_state(c->cl), MUX_T_READY);
	CHECK_EQ(timers_armed(), 1);
	c->deaf = 1;
	advance(c, 2000 + 3000 + 100);
	CHECK_EQ(c->close_code, 1001);
	CHECK(strcmp(c->close_reason, "keepalive timeout") == 0);
	conn_free(c);
}

/* A client that never sends its SETTINGS is closed by the timer. */
static void test_handshake_timeout(void)
{
	struct fconn c;

	memset(&c, 0, sizeof(c));
	c.ws_room = SIZE_MAX;
	c.sess = ops->open(&host, &c, "timeout=5", "");
	CHECK(c.sess != NULL);
	if (c.sess == NULL)
		return;
	CHECK_EQ(timers_armed(), 1);
	c.deaf = 1;
	c.cl_closed = 1;
	advance(&c, 4000);
	CHECK_EQ(c.close_code, 0);
	advance(&c, 1100);
	CHECK_EQ(c.close_code, 1001);
	CHECK(strcmp(c.close_reason, "handshake timeout") == 0);
	end_session(&c, 1001);
	CHECK_EQ(c.calls_after_close, 0);
	vec_free(&c.s2c);
}

/* A graceful GOAWAY from the client: the plugin drains and closes 1000. */
static void test_goaway(void)
{
	struct fconn *c = conn_new("");
	size_t i;

	if (c == NULL)
		return;
	i = cs_open(c, NULL);
	pump(c);
	peer_answer(c, 0, 1, NULL);
	mux_goaway(c->cl, "bye");
	pump(c);
	CHECK_EQ(c->close_code, 0);
	cs_send(c, i, "a", 1, 1);
	peer_says(c, 0, "", 0);
	pump(c);
	CHECK_EQ(c->close_code, 1000);
	CHECK(strcmp(c->close_reason, "goaway") == 0);
	conn_free(c);
}

/* The host may run on_close from inside ws_send (a failed client write);
 * the plugin must neither touch freed memory nor call the host again. */
static void test_close_inside_send(void)
{
	struct fconn *c = conn_new("");
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < 3; i++)
		cs_open(c, NULL);
	pump(c);
	for (i = 0; i < 3; i++)
		peer_answer(c, i, 1, NULL);
	pump(c);
	c->close_in_send = 1;
	peer_says(c, 1, "boom", 4);
	CHECK(c->gone);
	CHECK_EQ(c->calls_after_close, 0);
	conn_free(c);
}

/* ---- loading ---- */

static int plugin_path(char *path, size_t len)
{
	const char *env = getenv("WSY_PLUGIN_DIR");
	const char *slash;

	if (env != NULL && *env != '\0') {
		snprintf(path, len, "%s/framing_kcp-mux.so", env);
		return access(path, R_OK);
	}
	if ((slash = strrchr(argv0, '/')) != NULL) {
		snprintf(path, len, "%.*s/../plugins/framing_kcp-mux.so",
		    (int)(slash - argv0), argv0);
		if (access(path, R_OK) == 0)
			return 0;
	}
	snprintf(path, len, "build/plugins/framing_kcp-mux.so");
	return access(path, R_OK);
}

static void *load(void)
{
	char path[PATH_MAX + 64];
	const wsy_plugin *p;
	const wsy_framing_ops *fo;
	void *dl;

	if (plugin_path(path, sizeof(path)) != 0) {
		fprintf(stderr, "%s: not found (run make first, or set "
		    "WSY_PLUGIN_DIR)\n", path);
		CHECK(!"plugin built");
		return NULL;
	}
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "%s\n", dlerror());
		CHECK(!"dlopen");
		return NULL;
	}
	p = dlsym(dl, WSY_PLUGIN_SYMBOL);
	CHECK(p != NULL);
	/* Only WSY_PLUGIN is exported: the mux inside stays private. */
	CHECK(dlsym(dl, "mux_tunnel_new") == NULL);
	if (p == NULL || p->ops == NULL) {
		dlclose(dl);
		return NULL;
	}
	CHECK_EQ(p->api_version, WEBSOCKSY_API_VERSION);
	CHECK_EQ(p->kind, WSY_KIND_FRAMING);
	CHECK(strcmp(p->name, "kcp-mux") == 0);
	CHECK_EQ(p->ops_size, sizeof(wsy_framing_ops));
	fo = p->ops;
	CHECK(fo->frame == NULL && fo->frame_skip == NULL);
	CHECK(fo->session != NULL);
	ops = fo->session;
	if (ops == NULL || ops->struct_size != sizeof(wsy_session_ops)) {
		ops = NULL;
		dlclose(dl);
		return NULL;
	}
	return dl;
}

int main(int argc, char **argv)
{
	void *dl;

	(void)argc;
	argv0 = argv[0];
	if ((dl = load()) == NULL)
		return test_summary("test_kcpmux_plugin");
	test_basic();
	test_peer_fin_first();
	test_resets();
	test_targets();
	test_many();
	test_stalled_peer();
	test_stalled_reader();
	test_ws_full();
	test_no_flow_control();
	test_protocol_errors();
	test_window_enforced();
	test_ping();
	test_keepalive();
	test_handshake_timeout();
	test_goaway();
	test_close_inside_send();
	dlclose(dl);
	return test_summary("test_kcpmux_plugin");
}
