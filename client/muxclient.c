/*
 * muxclient.c - local TCP connections as streams of one kcp-mux tunnel
 * (see muxclient.h), and the WebSocket channel that can carry it.
 *
 * The tunnel's output is staged in cout (mux_set_room reports its room, so
 * the mux never writes more) and pushed to the channel in large pieces;
 * channel input lands in cin and is fed to mux_input.  Each stream has
 * `in` (local bytes the mux has not taken yet: read only when empty, so a
 * closed stream window stops reading its socket) and `out` (stream data
 * for the local socket, sized to our receive window, which the peer may
 * never exceed; consumed bytes are reported as they are written).
 *
 * Objects are freed after the loop pass (loop_defer): a channel failure or
 * a reset may happen while a stream's callbacks are on the stack.
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
#include "../core/mux.h"
#include "../core/sock.h"
#include "../core/ws.h"
#include "muxclient.h"
#include "upgrade.h"

#define S_LREADY   0x01   /* local readable (hint) */
#define S_LWBLOCK  0x02   /* local write would block */
#define S_LEOF     0x04   /* local EOF (or error) seen */
#define S_FIN_SENT 0x08   /* mux FIN queued */
#define S_RFIN     0x10   /* the peer's FIN arrived */
#define S_LSHUT    0x20   /* local write side shut down */
#define S_DONE     0x40   /* closed, freed after the loop pass */
#define S_ORPHAN   0x80   /* whole (FIN in), its tunnel gone: drain */

#define READ_CHUNK   16384        /* local read size (one max frame) */
#define STAGE_SIZE   65536        /* cout, cin */
#define BACKOFF_MIN  250
#define BACKOFF_MAX  8000

enum { CH_DOWN, CH_CONNECTING, CH_UP };

typedef struct mst {
	struct mst *prev, *next;  /* all streams */
	struct mst *hnext;        /* id hash chain */
	uint64_t lid;             /* log id */
	uint32_t id;              /* mux stream id, 0: waiting for a tunnel */
	unsigned flags;
	int fd;
	buf in, out;
	loop_timer timer;         /* waiting for a tunnel: give up */
	uint64_t up, down;
} mst;

static struct {
	const tunnel_cfg *cfg;
	const muxc_chan *chan;
	int chstate;
	mux_tunnel *t;
	unsigned gen;             /* tunnel generation, for stale callbacks */
	buf cout, cin;
	int in_starved;           /* the channel waits for resume() */
	int flushing, again;
	mst *all;
	size_t nstreams, npending;
	mst **hash;
	size_t hmask;
	uint64_t next_lid;
	unsigned backoff;         /* ms before the next channel attempt */
	int ready;                /* this channel's tunnel became ready */
	loop_timer retry;         /* backoff timer */
	loop_timer tick;          /* mux keepalive and timeouts */
	loop_timer stop_timer;
	loop_timer linger;        /* stopping: close-linger before the close */
	acceptor acc;
	int stopping;
} M;

static void pump(mst *s);
static void open_pending(void);

/* Stopping with no stream left: over a WebSocket, give the server
 * close-linger to take the last frames before the channel's close frame
 * (muxc_cleanup sends it); a channel that goes down ends the wait. */
static void stop_when_idle(void)
{
	if (M.chstate == CH_UP && M.cfg->opt->ws &&
	    M.cfg->opt->close_linger_ms) {
		if (!loop_timer_armed(&M.linger))
			loop_timer_set(&M.linger, M.cfg->opt->close_linger_ms);
		return;
	}
	loop_stop();
}

static void linger_over(void *arg)
{
	(void)arg;
	loop_stop();
}

/* ---- streams ---- */

static size_t hslot(uint32_t id)
{
	return ((id >> 1) * 2654435761u) & M.hmask;
}

static mst *find(uint32_t id)
{
	mst *s;

	for (s = M.hash[hslot(id)]; s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static void hash_del(mst *s)
{
	mst **pp;

	for (pp = &M.hash[hslot(s->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	s->hnext = NULL;
}

static void st_free(void *arg)
{
	mst *s = arg;

	buf_free(&s->in);
	buf_free(&s->out);
	free(s);
	if (M.stopping && M.nstreams == 0)
		stop_when_idle();
}

/* Close the local socket and forget the stream; release tells the mux
 * (which resets a stream that is still live). */
static void st_close(mst *s, int release)
{
	if (s->flags & S_DONE)
		return;
	log_info(s->lid, "closed: %llu bytes up, %llu down",
	    (unsigned long long)s->up, (unsigned long long)s->down);
	s->flags |= S_DONE;
	loop_timer_stop(&s->timer);
	loop_unwatch(s->fd);
	close(s->fd);
	s->fd = -1;
	if (s->id) {
		hash_del(s);
		if (release && M.t && !(s->flags & S_ORPHAN))
			mux_stream_release(M.t, s->id);
	} else {
		M.npending--;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		M.all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	M.nstreams--;
	if (loop_defer(st_free, s) < 0)
		log_error(s->lid, "out of memory: leaking a stream");
	/* a slot may be free now for a connection that waits */
	if (M.npending && M.t)
		open_pending();
}

static void st_reset(mst *s, const char *why)
{
	log_info(s->lid, "reset: %s", why);
	if (M.t && s->id && !(s->flags & S_ORPHAN))
		mux_stream_reset(M.t, s->id, why);
	st_close(s, 1);
}

static void set_events(mst *s)
{
	int ev = 0;

	if (s->flags & S_DONE)
		return;
	if (s->id && M.t && !(s->flags & S_LEOF) && s->in.len == 0)
		ev |= LOOP_READ;
	if (s->out.len)
		ev |= LOOP_WRITE;
	loop_events(s->fd, ev);
}

/* Local bytes into the stream: what `in` holds first, then more reads. */
static int pump_up(mst *s)
{
	ssize_t n;

	if (s->id == 0 || M.t == NULL || (s->flags & S_FIN_SENT))
		return 0;
	if (s->in.len) {
		n = mux_stream_send(M.t, s->id, buf_data(&s->in), s->in.len);
		if (n < 0) {
			st_reset(s, "stream closed by the server");
			return 0;
		}
		buf_consume(&s->in, (size_t)n);
		s->up += (uint64_t)n;
		if (s->in.len)
			return 0;       /* window or room closed: wait */
		buf_free(&s->in);
		return n > 0;
	}
	if (s->flags & S_LEOF) {
		s->flags |= S_FIN_SENT;
		mux_stream_fin(M.t, s->id);
		return 1;
	}
	if (!(s->flags & S_LREADY) || buf_alloc(&s->in) < 0)
		return 0;
	n = read(s->fd, buf_tail(&s->in), buf_room(&s->in));
	if (n > 0) {
		buf_commit(&s->in, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			s->flags &= ~S_LREADY;
		return 0;
	}
	if (n < 0) {
		/* the local side reset: so do we */
		st_reset(s, "local connection reset");
		return 0;
	}
	log_debug(s->lid, "local EOF");
	s->flags |= S_LEOF;
	return 1;
}

/* Stream data to the local socket; consumed bytes reopen the window. */
static int pump_down(mst *s)
{
	ssize_t n;

	if (s->out.len && !(s->flags & S_LWBLOCK)) {
		n = send(s->fd, buf_data(&s->out), s->out.len, MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&s->out, (size_t)n);
			s->down += (uint64_t)n;
			if (s->out.len == 0)
				buf_free(&s->out);
			if (M.t && !(s->flags & S_ORPHAN))
				mux_stream_consumed(M.t, s->id, (size_t)n);
			return 1;
		}
		if (n < 0 && errno == EAGAIN) {
			s->flags |= S_LWBLOCK;
			return 0;
		}
		if (n < 0 && errno == EINTR)
			return 1;
		log_info(s->lid, "local write: %s", strerror(errno));
		st_reset(s, "local connection closed");
		return 0;
	}
	if (s->out.len == 0 && (s->flags & S_RFIN) &&
	    !(s->flags & S_LSHUT)) {
		shutdown(s->fd, SHUT_WR);
		s->flags |= S_LSHUT;
		return 1;
	}
	return 0;
}

/*
 * A whole stream (FIN both ways) outlives its tunnel: what it holds is
 * written, then a write shutdown, then the local side is read to its EOF
 * (nothing can carry more; it sent its EOF already) so that the close
 * resets nothing; s->timer bounds it all (close_wait_ms).
 */
static void pump_orphan(mst *s)
{
	uint8_t junk[4096];
	ssize_t n;

	while (!(s->flags & S_DONE) && pump_down(s))
		;
	if ((s->flags & S_DONE) || !(s->flags & S_LSHUT)) {
		if (!(s->flags & S_DONE))
			loop_events(s->fd, s->out.len ? LOOP_WRITE : 0);
		return;
	}
	while ((n = read(s->fd, junk, sizeof(junk))) > 0)
		;
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		loop_events(s->fd, LOOP_READ);
		return;
	}
	st_close(s, 0);
}

static void orphan(mst *s)
{
	log_debug(s->lid, "tunnel gone: writing the last %zu bytes",
	    s->out.len);
	hash_del(s);
	s->flags |= S_ORPHAN;
	loop_timer_set(&s->timer, M.cfg->close_wait_ms);
	pump_orphan(s);
}

static void pump(mst *s)
{
	if (s->flags & S_ORPHAN) {
		pump_orphan(s);
		return;
	}
	while (!(s->flags & S_DONE) && (pump_down(s) | pump_up(s)))
		;
	if (s->flags & S_DONE)
		return;
	if ((s->flags & (S_FIN_SENT | S_LSHUT)) == (S_FIN_SENT | S_LSHUT)) {
		st_close(s, 1);
		return;
	}
	set_events(s);
}

static void local_io(int fd, int ev, void *arg)
{
	mst *s = arg;

	(void)fd;
	if (ev & (LOOP_READ | LOOP_ERROR))
		s->flags |= S_LREADY;
	if (ev & (LOOP_WRITE | LOOP_ERROR))
		s->flags &= ~S_LWBLOCK;
	pump(s);
	muxc_kick();
}

static void pending_timeout(void *arg)
{
	mst *s = arg;

	if (s->flags & S_ORPHAN)
		log_info(s->lid, "the local side did not take its data and "
		    "close within %llu ms", (unsigned long long)
		    M.cfg->close_wait_ms);
	else
		log_info(s->lid, "%s: no tunnel within %u s", M.chan->name,
		    M.cfg->opt->timeout);
	st_close(s, 0);
}

/* ---- the tunnel's callbacks ---- */

/* A callback of a tunnel we already dropped (its last calls may still be
 * on the stack) must not touch the streams of the next one. */
static int stale(void *arg)
{
	return (unsigned)(uintptr_t)arg != M.gen || M.t == NULL;
}

static void on_output(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	/* never more than the room we reported: buf_put cannot fail */
	if (buf_alloc(&M.cout) == 0)
		buf_put(&M.cout, p, n);
}

static void on_stream_open(void *arg, uint32_t id, const char *uri)
{
	(void)arg;
	(void)id;
	(void)uri;      /* the server never opens streams (mux.c refuses) */
}

static void on_stream_data(void *arg, uint32_t id, const uint8_t *p,
    size_t n)
{
	mst *s;

	if (stale(arg) || (s = find(id)) == NULL || (s->flags & S_DONE))
		return;
	if (buf_alloc(&s->out) < 0 || buf_room(&s->out) < n) {
		st_reset(s, "out of memory");
		return;
	}
	buf_put(&s->out, p, n);
	pump(s);
}

static void on_stream_fin(void *arg, uint32_t id)
{
	mst *s;

	if (stale(arg) || (s = find(id)) == NULL || (s->flags & S_DONE))
		return;
	log_debug(s->lid, "FIN from the server");
	s->flags |= S_RFIN;
	pump(s);
}

static void on_stream_reset(void *arg, uint32_t id, const char *why)
{
	mst *s;

	if (stale(arg) || (s = find(id)) == NULL || (s->flags & S_DONE))
		return;
	log_info(s->lid, "reset by the server: %s", why);
	st_close(s, mux_tunnel_state(M.t) != MUX_T_CLOSED);
}

static void on_stream_writable(void *arg, uint32_t id)
{
	mst *s;

	if (stale(arg) || (s = find(id)) == NULL || (s->flags & S_DONE))
		return;
	pump(s);
}

static void drop_tunnel(const char *why);

static void on_tunnel_closed(void *arg, const char *why)
{
	if (stale(arg))
		return;
	log_info(0, "tunnel closed: %s", why);
	drop_tunnel(why);
}

/* ---- staging and the channel ---- */

static void free_tunnel(void *arg)
{
	mux_tunnel_free(arg);
}

static void tick_cb(void *arg)
{
	(void)arg;
	muxc_kick();
}

/* Rearm the keepalive timer from the mux's next deadline. */
static void rearm_tick(void)
{
	int ms;

	if (M.t == NULL)
		return;
	ms = mux_tick(M.t, loop_now());
	if (M.t == NULL)
		return;         /* timed out: dropped inside */
	if (ms < 0)
		loop_timer_stop(&M.tick);
	else
		loop_timer_set(&M.tick, (uint64_t)ms);
}

/* Push staged output to the channel until it is full or nothing is left;
 * every push makes room the mux may fill again (and wakes streams). */
static void flush_out(void)
{
	size_t n;
	int full;

	if (M.flushing) {
		M.again = 1;
		return;
	}
	M.flushing = 1;
	do {
		M.again = full = 0;
		while (M.cout.len && M.chstate == CH_UP) {
			if ((n = M.chan->push(buf_data(&M.cout),
			    M.cout.len)) == 0) {
				full = 1;
				break;
			}
			buf_consume(&M.cout, n);
		}
		if (M.t && buf_alloc(&M.cout) == 0)
			mux_set_room(M.t, buf_room(&M.cout));
	} while (M.again || (!full && M.cout.len && M.chstate == CH_UP));
	M.flushing = 0;
}

/* Feed what the channel delivered; without flow control the mux may
 * take only part (a full stream): the rest waits, and so does the
 * channel. */
static void feed_in(void)
{
	ssize_t n;

	if (M.t == NULL || M.cin.len == 0)
		return;
	n = mux_input(M.t, buf_data(&M.cin), M.cin.len);
	if (n < 0) {
		M.cin.len = M.cin.off = 0;
		return;
	}
	buf_consume(&M.cin, (size_t)n);
	if (M.in_starved && buf_room(&M.cin) > 0 && M.chstate == CH_UP) {
		M.in_starved = 0;
		M.chan->resume();
	}
}

void muxc_kick(void)
{
	if (M.t)
		rearm_tick();
	feed_in();
	flush_out();
	if (M.t && mux_tunnel_state(M.t) == MUX_T_READY)
		M.ready = 1;    /* the server answered: reconnect at once */
}

uint8_t *muxc_in_tail(size_t *room)
{
	if (buf_alloc(&M.cin) < 0 || (*room = buf_room(&M.cin)) == 0) {
		*room = 0;
		M.in_starved = 1;
		return NULL;
	}
	return buf_tail(&M.cin);
}

void muxc_in_commit(size_t n)
{
	buf_commit(&M.cin, n);
	if (M.t)
		mux_tick(M.t, loop_now());      /* input counts from now */
	muxc_kick();
}

const tunnel_cfg *muxc_cfg(void)
{
	return M.cfg;
}

/* Every stream of the dropped tunnel is reset: its bytes in flight are
 * lost, and a half-delivered stream must not look complete. */
static void drop_tunnel(const char *why)
{
	mst *s, *next;
	mux_tunnel *t = M.t;

	if (t == NULL)
		return;
	M.t = NULL;
	M.gen++;
	loop_timer_stop(&M.tick);
	for (s = M.all; s; s = next) {
		next = s->next;
		/* both ends sent their FIN, only its data for the local
		 * side is left: delivered, not reset */
		if (s->id && !(s->flags & (S_DONE | S_ORPHAN | S_LSHUT)) &&
		    (s->flags & (S_RFIN | S_FIN_SENT)) ==
		    (S_RFIN | S_FIN_SENT)) {
			orphan(s);
		} else if (s->id && !(s->flags & (S_DONE | S_ORPHAN))) {
			log_info(s->lid, "reset: tunnel gone (%s)", why);
			st_close(s, 0);
		}
	}
	if (M.chstate != CH_DOWN) {
		/* what the mux said last (a GOAWAY) goes out if it can */
		while (M.cout.len && M.chstate == CH_UP) {
			size_t n = M.chan->push(buf_data(&M.cout), M.cout.len);

			if (n == 0)
				break;
			buf_consume(&M.cout, n);
		}
		M.chstate = CH_DOWN;
		M.chan->close();
	}
	buf_free(&M.cout);
	buf_free(&M.cin);
	M.in_starved = 0;
	if (loop_defer(free_tunnel, t) < 0)
		log_error(0, "out of memory: leaking a tunnel");
	if (M.stopping && M.nstreams == 0)
		loop_stop();
	else if (M.npending)
		open_pending();
}

static void retry_cb(void *arg)
{
	(void)arg;
	if (M.npending && M.chstate == CH_DOWN && !M.stopping)
		open_pending();
}

/* Start a channel for the waiting connections, after the backoff. */
static void start_channel(void)
{
	if (M.chstate != CH_DOWN || loop_timer_armed(&M.retry) || M.stopping)
		return;
	M.chstate = CH_CONNECTING;
	M.ready = 0;
	log_info(0, "opening the %s tunnel", M.chan->name);
	if (M.chan->open() < 0) {
		M.chstate = CH_DOWN;
		muxc_chan_down("cannot start");
	}
}

/* Give waiting connections stream ids (0-RTT: their data may follow at
 * once); those over the stream limit wait for a slot. */
static void open_pending(void)
{
	static int busy;
	mst *s;
	uint32_t id;

	if (M.t == NULL) {
		start_channel();
		return;
	}
	if (busy)
		return;         /* a closing stream called us from below */
	busy = 1;
	for (s = M.all; s && M.npending && M.t; s = s->next) {
		if (s->id || (s->flags & S_DONE))
			continue;
		if ((id = mux_stream_new(M.t, NULL)) == 0) {
			if (errno != EAGAIN)
				log_info(s->lid, "no stream: %s",
				    strerror(errno));
			break;
		}
		s->id = id;
		M.npending--;
		s->hnext = M.hash[hslot(id)];
		M.hash[hslot(id)] = s;
		loop_timer_stop(&s->timer);
		log_debug(s->lid, "stream %u", (unsigned)id);
		s->flags |= S_LREADY;
		pump(s);
	}
	busy = 0;
}

void muxc_chan_up(void)
{
	mux_callbacks cb = {
		.output = on_output,
		.stream_open = on_stream_open,
		.stream_data = on_stream_data,
		.stream_fin = on_stream_fin,
		.stream_reset = on_stream_reset,
		.stream_writable = on_stream_writable,
		.tunnel_closed = on_tunnel_closed,
	};
	mux_config mc;

	mux_config_default(&mc, 0);
	mc.window = M.cfg->opt->mux_window;
	mc.max_streams = M.cfg->opt->mux_streams;
	cb.arg = (void *)(uintptr_t)++M.gen;
	M.chstate = CH_UP;
	if ((M.t = mux_tunnel_new(&mc, &cb, loop_now())) == NULL) {
		log_error(0, "tunnel: %s", strerror(errno));
		M.chstate = CH_DOWN;
		M.chan->close();
		muxc_chan_down("out of memory");
		return;
	}
	log_info(0, "%s tunnel up", M.chan->name);
	open_pending();
	muxc_kick();
}

void muxc_chan_down(const char *why)
{
	int was_ready = M.ready;

	log_info(0, "%s tunnel down: %s", M.chan->name, why);
	M.chstate = CH_DOWN;
	drop_tunnel(why);
	if (was_ready)
		M.backoff = 0;
	else
		M.backoff = M.backoff ? M.backoff * 2 : BACKOFF_MIN;
	if (M.backoff > BACKOFF_MAX)
		M.backoff = BACKOFF_MAX;
	if (M.backoff)
		loop_timer_set(&M.retry, M.backoff);
	if (M.npending && !M.backoff)
		start_channel();
}

/* ---- accepting ---- */

static void st_new(int fd, const struct sockaddr *sa)
{
	char host[46];
	uint16_t port;
	mst *s;
	int one = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    loop_watch(fd, 0, local_io, s) < 0) {
		log_error(0, "out of memory: refusing a connection");
		free(s);
		close(fd);
		return;
	}
	s->lid = ++M.next_lid;
	s->fd = fd;
	buf_init(&s->in, READ_CHUNK);
	/* the window, and a frame past it: without flow control the mux
	 * pauses the channel only between frames */
	buf_init(&s->out, M.cfg->opt->mux_window + MUX_MAX_FRAME_LIMIT);
	loop_timer_init(&s->timer, pending_timeout, s);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->next = M.all;
	if (M.all)
		M.all->prev = s;
	M.all = s;
	M.nstreams++;
	M.npending++;
	sock_ntop(sa, host, sizeof(host), &port);
	log_info(s->lid, "accepted from %s%s%s:%u", strchr(host, ':') ? "[" :
	    "", host, strchr(host, ':') ? "]" : "", port);
	loop_timer_set(&s->timer, M.cfg->opt->timeout * 1000ULL);
	open_pending();
	muxc_kick();
}

static void on_accept(int fd, const struct sockaddr *sa, int i, void *arg)
{
	(void)i;
	(void)arg;
	st_new(fd, sa);
}

/* ---- start and stop ---- */

static void stop_now(void *arg)
{
	(void)arg;
	log_info(0, "%zu connection%s still open: closing", M.nstreams,
	    M.nstreams == 1 ? "" : "s");
	loop_stop();
}

int muxc_init(const tunnel_cfg *cfg, const muxc_chan *chan)
{
	size_t n;

	memset(&M, 0, sizeof(M));
	M.cfg = cfg;
	M.chan = chan;
	/* an id hash with a chain per stream slot the mux may hold */
	for (n = 64; n < 2 * (size_t)cfg->opt->mux_streams; n *= 2)
		;
	if ((M.hash = calloc(n, sizeof(*M.hash))) == NULL)
		return -1;
	M.hmask = n - 1;
	buf_init(&M.cout, STAGE_SIZE);
	buf_init(&M.cin, STAGE_SIZE);
	loop_timer_init(&M.retry, retry_cb, NULL);
	loop_timer_init(&M.tick, tick_cb, NULL);
	acceptor_init(&M.acc, on_accept, NULL);
	loop_timer_init(&M.stop_timer, stop_now, NULL);
	loop_timer_init(&M.linger, linger_over, NULL);
	return 0;
}

int muxc_listen(int fd)
{
	return acceptor_add(&M.acc, fd) < 0 ? -1 : 0;
}

/* Open streams end as if their local side closed (a FIN each), so data in
 * flight still reaches them; waiting ones are dropped. */
void muxc_shutdown(void)
{
	mst *s, *next;

	if (M.stopping)
		return;
	M.stopping = 1;
	log_info(0, "stopping: %zu connection%s", M.nstreams,
	    M.nstreams == 1 ? "" : "s");
	acceptor_close(&M.acc);
	loop_timer_stop(&M.retry);
	for (s = M.all; s; s = next) {
		next = s->next;
		if (s->id == 0) {
			st_close(s, 0);
			continue;
		}
		s->flags |= S_LEOF;
		pump(s);
	}
	muxc_kick();
	if (M.nstreams == 0)
		stop_when_idle();
	else
		loop_timer_set(&M.stop_timer, M.cfg->close_wait_ms);
}

void muxc_cleanup(void)
{
	while (M.all)
		st_close(M.all, 0);
	if (M.t) {
		mux_tunnel_free(M.t);
		M.t = NULL;
	}
	if (M.chstate != CH_DOWN) {
		M.chstate = CH_DOWN;
		M.chan->close();
	}
	acceptor_close(&M.acc);
	buf_free(&M.cout);
	buf_free(&M.cin);
	free(M.hash);
	M.hash = NULL;
	loop_timer_stop(&M.retry);
	loop_timer_stop(&M.tick);
	loop_timer_stop(&M.stop_timer);
	loop_timer_stop(&M.linger);
}

/* ---- the WebSocket channel ----
 *
 * States: connecting (peer_connect, the remotes in turn), TLS, upgrade
 * (request sent, reading the 101), open.  rout holds the request, then
 * masked binary frames of mux bytes and our pongs; rin holds raw bytes
 * from the server, decoded into the mux input (cin).
 */

/* CLOSING: our close frame (an answer) is queued; the TCP connection
 * closes once it is sent. */
enum { WS_IDLE, WS_CONNECT, WS_TLS, WS_UPGRADE, WS_OPEN, WS_CLOSING };

#define WS_BUF       (256 * 1024)
#define WS_RESERVE   (WS_MAX_HEADER + 2 * (WS_MAX_HEADER + WS_MAX_CONTROL))
#define MAX_RESPONSE 8192

static struct {
	int state;
	int fd;
	int host;                 /* remote being tried */
	int rready, wblock, eof;
	peer_conn *pc;
	tls_conn *tls;            /* batching (tls_set_cork) once up */
	buf rout, rin;
	ws_decoder dec;
	uint8_t conn_key[4];
	char wskey[UPGRADE_KEY_LEN];
	loop_timer timer;         /* connect + handshake, then close deadline */
	char why[80];             /* CLOSING: why the channel ends */
} W;

static void ws_try_connect(void);
static void ws_io(int fd, int ev, void *arg);

static void ws_release(void)
{
	loop_timer_stop(&W.timer);
	if (W.pc)
		peer_cancel(W.pc);
	if (W.tls)
		tls_free(W.tls);
	if (W.fd >= 0) {
		loop_unwatch(W.fd);
		close(W.fd);
	}
	buf_free(&W.rout);
	buf_free(&W.rin);
	W.pc = NULL;
	W.tls = NULL;
	W.fd = -1;
	W.state = WS_IDLE;
}

static void ws_fail(const char *why)
{
	ws_release();
	muxc_chan_down(why);
}

static ssize_t ws_read(void *p, size_t n)
{
	ssize_t r;
	int want;

	if (W.tls == NULL)
		return read(W.fd, p, n);
	r = tls_read(W.tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? EPROTO : EAGAIN;
	return r;
}

/* Over TLS a write takes what it returns even when the socket is full;
 * the rest of its records wait in the session (ws_pending) and leave
 * with ws_flush(). */
static ssize_t ws_write(const void *p, size_t n)
{
	ssize_t r;
	int want;

	if (W.tls == NULL)
		return send(W.fd, p, n, MSG_NOSIGNAL);
	r = tls_write(W.tls, p, n, &want);
	if (r < 0)
		errno = want == TLS_ERR ? EPIPE : EAGAIN;
	return r;
}

static int ws_flush(void)
{
	int want;

	if (W.tls == NULL || !tls_write_pending(W.tls) ||
	    tls_flush(W.tls, &want) == 0)
		return 0;
	errno = want == TLS_ERR ? EPIPE : EAGAIN;
	return -1;
}

/* Bytes for the server still with us. */
static int ws_pending(void)
{
	return W.rout.len > 0 || (W.tls && tls_write_pending(W.tls));
}

/* Append one masked frame (the key per mask= option). */
static void ws_frame(int op, const uint8_t *p, size_t n)
{
	uint8_t key[4];
	size_t hl;

	opts_mask_key(M.cfg->opt->mask, W.conn_key, key);
	hl = ws_encode_header(buf_tail(&W.rout), op, 1, n, key);
	buf_commit(&W.rout, hl);
	buf_put(&W.rout, p, n);
	if (key[0] | key[1] | key[2] | key[3])
		ws_mask(buf_tail(&W.rout) - n, n, key, 0);
}

static size_t ws_push(const uint8_t *p, size_t n)
{
	size_t room;

	if (W.state != WS_OPEN || buf_alloc(&W.rout) < 0)
		return 0;
	room = buf_room(&W.rout);
	if (room <= WS_RESERVE)
		return 0;
	room -= WS_RESERVE;
	if (n > room)
		n = room;
	ws_frame(WS_OP_BINARY, p, n);
	loop_events(W.fd, LOOP_READ | LOOP_WRITE);
	return n;
}

/* ---- the upgrade ---- */

static int ws_request(void)
{
	const client_opts *o = M.cfg->opt;

	if (upgrade_request(&W.rout, o->path, o->host, W.wskey) < 0)
		return -1;
	W.state = WS_UPGRADE;
	return 0;
}

/* 1 once the 101 is in and checked (frames may follow it in rin). */
static int ws_response(void)
{
	char *h, *end, line[128], why[200];
	const char *bad;

	h = (char *)buf_data(&W.rin);
	if ((end = upgrade_head_end(h, W.rin.len)) == NULL) {
		if (W.rin.len >= MAX_RESPONSE)
			ws_fail("upgrade: response head too long");
		else if (W.eof)
			ws_fail("upgrade: connection closed by the server");
		return 0;
	}
	end[2] = '\0';
	if ((bad = upgrade_check(h, W.wskey)) != NULL) {
		snprintf(why, sizeof(why), "upgrade refused (%s): %s", bad,
		    log_sanitize(h, strcspn(h, "\r\n"), line, sizeof(line)));
		ws_fail(why);
		return 0;
	}
	buf_consume(&W.rin, (size_t)(end - h) + 4);
	W.state = WS_OPEN;
	loop_timer_stop(&W.timer);
	muxc_chan_up();
	return 1;
}

/* ---- WebSocket I/O ---- */

/* Answer a server's close or a bad frame (upgrade_close_reply): the close
 * goes out after what is queued, then the channel ends (ws_progress).  The
 * reserve in rout (WS_RESERVE) keeps room for it. */
static void ws_answer_close(ssize_t r, const ws_event *ev)
{
	int code = upgrade_close_reply(r, ev);
	uint8_t p[2];
	size_t n = upgrade_close_payload(code, p);

	if (r < 0)
		snprintf(W.why, sizeof(W.why), "bad frame from the server: "
		    "closing with %d", code);
	else
		snprintf(W.why, sizeof(W.why), "the server closed the "
		    "WebSocket (%d)", ev->code);
	log_debug(0, "ws: %s", W.why);
	W.state = WS_CLOSING;
	if (buf_alloc(&W.rout) == 0 &&
	    buf_room(&W.rout) >= WS_MAX_HEADER + n)
		ws_frame(WS_OP_CLOSE, p, n);
	loop_timer_set(&W.timer, M.cfg->close_wait_ms);
}

/* Frames from the server into the mux input; stops when cin is full
 * (resume() comes back here).  0 if the channel failed. */
static int ws_decode_in(void)
{
	ws_event ev;
	ssize_t r;
	size_t room;
	uint8_t *tail;

	while (W.rin.len > 0) {
		if ((tail = muxc_in_tail(&room)) == NULL)
			break;
		r = ws_decode(&W.dec, buf_data(&W.rin), W.rin.len, room, &ev);
		if (r < 0) {
			ws_answer_close(r, &ev);
			return 1;
		}
		buf_consume(&W.rin, (size_t)r);
		if (r == 0 && ev.type == WS_EV_NONE)
			break;
		if (ev.type == WS_EV_DATA && ev.len) {
			memcpy(tail, ev.data, ev.len);
			muxc_in_commit(ev.len);
			if (W.state != WS_OPEN)
				return 0;
		} else if (ev.type == WS_EV_PING &&
		    buf_room(&W.rout) >= WS_MAX_HEADER + ev.len) {
			ws_frame(WS_OP_PONG, ev.data, ev.len);
		} else if (ev.type == WS_EV_CLOSE) {
			/* everything before it went to the mux input */
			ws_answer_close(0, &ev);
			return 1;
		}
	}
	return 1;
}

static int ws_read_some(void)
{
	ssize_t n;

	if (W.eof || !(W.rready || (W.tls && tls_pending(W.tls) > 0)) ||
	    buf_alloc(&W.rin) < 0 || buf_room(&W.rin) == 0)
		return 0;
	n = ws_read(buf_tail(&W.rin), buf_room(&W.rin));
	if (n > 0) {
		buf_commit(&W.rin, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			W.rready = 0;
		/* GnuTLS stops after a post-handshake message even with
		 * whole records read ahead, which poll() will not report. */
		return W.tls && tls_pending(W.tls) > 0;
	}
	if (n < 0)
		log_info(0, "ws read: %s", W.tls && errno == EPROTO ?
		    tls_error(W.tls) : strerror(errno));
	W.eof = 1;
	return 1;
}

/* 0 if the channel failed. */
static int ws_write_some(void)
{
	ssize_t n;
	char why[300];

	while (ws_pending() && !W.wblock) {
		if ((n = ws_flush()) == 0 && W.rout.len == 0)
			break;
		if (n == 0)
			n = ws_write(buf_data(&W.rout), W.rout.len);
		if (n > 0) {
			buf_consume(&W.rout, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			W.wblock = 1;
			break;
		}
		snprintf(why, sizeof(why), "ws write: %s", W.tls &&
		    errno == EPIPE ? tls_error(W.tls) : strerror(errno));
		ws_fail(why);
		return 0;
	}
	if (W.rout.len == 0 && W.state == WS_OPEN)
		buf_free(&W.rout);
	return 1;
}

static void ws_set_events(void)
{
	int ev = 0;

	if (W.fd < 0)
		return;
	if (!W.eof && W.state >= WS_UPGRADE)
		ev |= LOOP_READ;
	if (ws_pending())
		ev |= LOOP_WRITE;
	loop_events(W.fd, ev);
}

static void ws_tls_step(void)
{
	int r = tls_handshake(W.tls);
	char m[300];

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		loop_events(W.fd, r == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE);
		return;
	}
	if (r != TLS_OK) {
		snprintf(m, sizeof(m), "TLS handshake: %s", tls_error(W.tls));
		ws_fail(m);
		return;
	}
	W.rready = 1;
	tls_set_cork(W.tls, 1);
	if (ws_request() < 0)
		ws_fail("upgrade: request too long");
}

static void ws_progress(void)
{
	int moved;

	if (W.state == WS_TLS)
		ws_tls_step();
	if (W.state < WS_UPGRADE)
		return;
	do {
		moved = ws_read_some();
		if (W.state == WS_CLOSING)
			W.rin.len = W.rin.off = 0;	/* after its close */
		if (W.state == WS_UPGRADE && W.rin.len && !ws_response())
			return;
		if (W.state == WS_OPEN && !ws_decode_in())
			return;
		if (!ws_write_some())
			return;
	} while (moved && W.state >= WS_UPGRADE);
	if (W.state == WS_CLOSING && (!ws_pending() || W.eof)) {
		ws_fail(W.why);
		return;
	}
	if (W.eof && W.state == WS_OPEN) {
		ws_fail("connection closed by the server");
		return;
	}
	if (W.eof && W.state != WS_CLOSING) {
		ws_fail("upgrade: connection closed by the server");
		return;
	}
	ws_set_events();
	/* rout has room again: more mux output may go */
	if (W.state == WS_OPEN)
		muxc_kick();
}

static void ws_io(int fd, int ev, void *arg)
{
	(void)fd;
	(void)arg;
	/* TLS may need the other direction for either: try both */
	if (ev & (LOOP_READ | LOOP_ERROR) || W.tls)
		W.rready = 1;
	if (ev & (LOOP_WRITE | LOOP_ERROR) || W.tls)
		W.wblock = 0;
	ws_progress();
}

static void ws_on_connect(void *arg, int fd, char *bound_path,
    const char *err)
{
	char name[300];
	int one = 1;

	(void)arg;
	(void)bound_path;
	W.pc = NULL;
	peer_uri_format(&M.cfg->remote[W.host], name, sizeof(name));
	if (fd < 0) {
		log_info(0, "connect %s: %s", name, err);
		if (++W.host < M.cfg->nremote)
			ws_try_connect();
		else
			ws_fail("cannot connect");
		return;
	}
	W.fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (loop_watch(fd, 0, ws_io, NULL) < 0) {
		ws_fail("out of memory");
		return;
	}
	log_debug(0, "connected to %s", name);
	if (M.cfg->tls) {
		if ((W.tls = tls_connect(M.cfg->tls, fd)) == NULL) {
			ws_fail("TLS: out of memory");
			return;
		}
		W.state = WS_TLS;
	} else if (ws_request() < 0) {
		ws_fail("upgrade: request too long");
		return;
	}
	W.rready = 1;
	ws_progress();
}

static void ws_try_connect(void)
{
	W.pc = peer_connect(&M.cfg->remote[W.host],
	    M.cfg->opt->timeout * 1000ULL, ws_on_connect, NULL);
	if (W.pc == NULL)
		ws_fail("out of memory");
}

static void ws_timeout(void *arg)
{
	char m[200];

	(void)arg;
	if (W.state == WS_CLOSING)
		snprintf(m, sizeof(m), "%s; the answer not sent within %llu "
		    "ms", W.why, (unsigned long long)M.cfg->close_wait_ms);
	else
		snprintf(m, sizeof(m), "no WebSocket within %u s",
		    M.cfg->opt->timeout);
	ws_fail(m);
}

static int ws_open(void)
{
	memset(&W, 0, sizeof(W));
	W.fd = -1;
	W.state = WS_CONNECT;
	buf_init(&W.rout, WS_BUF);
	buf_init(&W.rin, STAGE_SIZE);
	ws_decoder_init(&W.dec, 0, 0);
	if (M.cfg->opt->mask == MASK_FIXED)
		opts_random(W.conn_key, sizeof(W.conn_key));
	loop_timer_init(&W.timer, ws_timeout, NULL);
	loop_timer_set(&W.timer, M.cfg->opt->timeout * 1000ULL);
	W.pc = peer_connect(&M.cfg->remote[0], M.cfg->opt->timeout * 1000ULL,
	    ws_on_connect, NULL);
	return W.pc ? 0 : -1;
}

static void ws_resume(void)
{
	if (W.state == WS_OPEN)
		ws_progress();
}

/* A close frame and what is queued, as far as the socket takes it now. */
static void ws_close(void)
{
	static const uint8_t code[2] = { WS_CLOSE_GOING_AWAY >> 8,
	    WS_CLOSE_GOING_AWAY & 0xff };
	ssize_t n;

	if (W.state == WS_OPEN && buf_alloc(&W.rout) == 0 &&
	    buf_room(&W.rout) >= WS_MAX_HEADER + 2) {
		ws_frame(WS_OP_CLOSE, code, 2);
		W.wblock = 0;
		while (W.rout.len && (n = ws_write(buf_data(&W.rout),
		    W.rout.len)) > 0)
			buf_consume(&W.rout, (size_t)n);
		(void)ws_flush();
	}
	ws_release();
}

const muxc_chan muxc_ws_chan = {
	.name = "ws",
	.open = ws_open,
	.push = ws_push,
	.resume = ws_resume,
	.close = ws_close,
};
