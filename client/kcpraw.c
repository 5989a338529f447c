/*
 * kcpraw.c - raw KCP: one KCP conversation per local connection (see
 * kcpraw.h).  The UDP socket and KCP settings come from kcpclient.c.
 *
 * Up: local read, at most kcp_writable() bytes at a time -> kcp_send.
 * The local socket is polled for reading only while KCP takes more.
 * Down: kcp_recv into `down` (bounded) -> send to the local socket; while
 * `down` holds bytes nothing more leaves KCP, whose receive window then
 * closes.  update() does the relaying after every event; the KCP clock
 * runs when kcp_next() asks (kcpc_schedule).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/acceptor.h"
#include "../core/buf.h"
#include "../core/dns.h"
#include "../core/kcp.h"
#include "../core/log.h"
#include "../core/loop.h"
#include "../core/sock.h"
#include "kcpclient.h"
#include "kcpraw.h"

#define F_LEOF     0x01   /* nothing more to read from the local side */
#define F_LDEAD    0x02   /* local socket closed: KCP drains alone */
#define F_LWBLOCK  0x04   /* local write would block */
#define F_PARKED   0x08   /* lfd unwatched: hung up while not polled */
#define F_DONE     0x10

#define DOWN_BUF     (64 * 1024) /* KCP -> local, per connection */
#define READ_CHUNK   (64 * 1024) /* one local read */
#define READ_BATCH   16          /* local reads per wakeup, then yield */
#define LINGER_QUIET 1000        /* ms of remote silence after local EOF */

typedef struct rconn {
	uint64_t id;
	struct rconn *prev, *next;
	unsigned flags;
	int lfd, ufd;
	uint32_t conv;
	kcp *k;
	dns_query *dq;
	buf down;                 /* received, not yet written locally */
	loop_timer flush;         /* kcp_next */
	loop_timer timer;         /* session timeout, linger */
	uint64_t last_input;      /* last datagram of our conv */
	uint64_t eof_at;          /* local EOF (F_LEOF) */
	uint64_t up, dn;          /* payload bytes relayed */
} rconn;

static struct {
	const tunnel_cfg *cfg;
	rconn *conns;
	size_t nconns;
	uint64_t next_id;
	unsigned tries;           /* connections started, rotates remotes */
	acceptor acc;
	int stopping;
	loop_timer stop_timer;
	uint8_t dg[KCPC_DGRAM_MAX];
	uint8_t chunk[READ_CHUNK];
} R;

static void update(rconn *c);
static void local_io(int fd, int ev, void *arg);

/* ---- bookkeeping ---- */

static void rc_free(void *arg)
{
	rconn *c = arg;

	buf_free(&c->down);
	free(c);
	if (R.stopping && R.nconns == 0)
		loop_stop();
}

static void rc_close(rconn *c, const char *why)
{
	if (c->flags & F_DONE)
		return;
	if (why)
		log_info(c->id, "%s", why);
	log_info(c->id, "closed: %llu bytes up, %llu down",
	    (unsigned long long)c->up, (unsigned long long)c->dn);
	c->flags |= F_DONE;
	loop_timer_stop(&c->flush);
	loop_timer_stop(&c->timer);
	if (c->dq)
		dns_cancel(c->dq);
	if (c->k)
		kcp_free(c->k);
	c->k = NULL;
	if (c->ufd >= 0) {
		loop_unwatch(c->ufd);
		close(c->ufd);
	}
	if (c->lfd >= 0) {
		if (!(c->flags & F_PARKED))
			loop_unwatch(c->lfd);
		close(c->lfd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		R.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	R.nconns--;
	/* callbacks of this connection may still be on the stack */
	if (loop_defer(rc_free, c) < 0)
		log_error(c->id, "out of memory: leaking a connection");
}

/* ---- timers: session timeout and the linger after local EOF ---- */

/* The next moment something may be due: the session timeout, the linger
 * bound, the end of the quiet period (acks and local writes call
 * update(), which checks the rest). */
static void arm_timer(rconn *c)
{
	uint64_t now = loop_now(), when, t;

	when = c->last_input + KCPC_SESSION_TIMEOUT;
	if (c->flags & F_LEOF) {
		t = c->eof_at + R.cfg->close_wait_ms;
		if (t < when)
			when = t;
		t = c->last_input + LINGER_QUIET;
		if (t > now && t < when)
			when = t;
	}
	loop_timer_set(&c->timer, when > now ? when - now : 0);
}

/* After local EOF: 1 if the connection is done (and closed). */
static int linger_done(rconn *c, uint64_t now)
{
	size_t unacked = kcp_unacked(c->k);

	if (now - c->eof_at >= R.cfg->close_wait_ms) {
		if (unacked)
			log_info(c->id, "kcp: %zu bytes still unacked after "
			    "%llu ms", unacked,
			    (unsigned long long)R.cfg->close_wait_ms);
		rc_close(c, NULL);
		return 1;
	}
	if (unacked)
		return 0;
	/* the remote may still answer what we sent: deliver it unless there
	 * is no one to deliver to */
	if (!(c->flags & F_LDEAD) && (c->down.len ||
	    kcp_readable(c->k) || now - c->last_input < LINGER_QUIET))
		return 0;
	rc_close(c, NULL);
	return 1;
}

static void timer_cb(void *arg)
{
	rconn *c = arg;
	uint64_t now = loop_now();

	if (now - c->last_input >= KCPC_SESSION_TIMEOUT) {
		rc_close(c, "kcp: session timeout (nothing received for "
		    "60 s)");
		return;
	}
	if ((c->flags & F_LEOF) && linger_done(c, now))
		return;
	arm_timer(c);
}

static void flush_cb(void *arg)
{
	rconn *c = arg;

	if (c->k == NULL)
		return;
	kcp_flush(c->k, loop_now());
	kcpc_schedule(c->k, &c->flush);
}

static void set_eof(rconn *c)
{
	if (c->flags & F_LEOF)
		return;
	c->flags |= F_LEOF;
	c->eof_at = loop_now();
	arm_timer(c);
}

/* The local socket is gone (reset, write error): KCP still delivers what
 * was sent, within the linger bound. */
static void local_dead(rconn *c, const char *why)
{
	log_info(c->id, "local: %s", why);
	if (!(c->flags & F_PARKED))
		loop_unwatch(c->lfd);
	close(c->lfd);
	c->lfd = -1;
	c->flags |= F_LDEAD;
	c->flags &= ~F_PARKED;
	buf_free(&c->down);
	if (c->k == NULL) {
		rc_close(c, NULL);
		return;
	}
	set_eof(c);
}

/* ---- the relay ---- */

static int output(const uint8_t *dgram, size_t len, void *arg)
{
	rconn *c = arg;

	/* EAGAIN, or an ICMP error of an earlier datagram: a loss, which
	 * KCP repairs */
	if (c->ufd < 0 || send(c->ufd, dgram, len, MSG_NOSIGNAL) < 0)
		return -1;
	return 0;
}

/* Local bytes into KCP, no more than it takes now. */
static void local_in(rconn *c)
{
	size_t w;
	ssize_t n;
	int i;

	for (i = 0; i < READ_BATCH; i++) {
		if ((w = kcp_writable(c->k)) == 0)
			return;
		if (w > sizeof(R.chunk))
			w = sizeof(R.chunk);
		n = read(c->lfd, R.chunk, w);
		if (n > 0) {
			if (kcp_send(c->k, R.chunk, (size_t)n) != n) {
				rc_close(c, "kcp: out of memory");
				return;
			}
			c->up += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			local_dead(c, strerror(errno));
			return;
		}
		log_debug(c->id, "local EOF");
		set_eof(c);
		return;
	}
}

/* KCP's in-order bytes to the local socket through `down`. */
static void pump_down(rconn *c)
{
	ssize_t n;

	while (!(c->flags & F_DONE)) {
		if (c->down.len) {
			if (c->flags & F_LWBLOCK)
				return;
			n = send(c->lfd, buf_data(&c->down), c->down.len,
			    MSG_NOSIGNAL);
			if (n > 0) {
				buf_consume(&c->down, (size_t)n);
				c->dn += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				c->flags |= F_LWBLOCK;
				return;
			}
			local_dead(c, n < 0 ? strerror(errno) :
			    "write returned 0");
			continue;
		}
		if (kcp_readable(c->k) == 0) {
			buf_shrink(&c->down);
			return;
		}
		if (c->flags & F_LDEAD) {
			/* no one to deliver to: keep the window open */
			if (kcp_recv(c->k, R.chunk, sizeof(R.chunk)) <= 0)
				return;
			continue;
		}
		if (buf_alloc(&c->down) < 0) {
			rc_close(c, "out of memory");
			return;
		}
		n = kcp_recv(c->k, buf_tail(&c->down), buf_room(&c->down));
		if (n <= 0)
			return;
		buf_commit(&c->down, (size_t)n);
	}
}

/* Poll the local socket for ev; a parked one is watched again. */
static void set_events(rconn *c, int ev)
{
	if (c->flags & F_PARKED) {
		if (ev == 0)
			return;
		c->flags &= ~F_PARKED;
		if (loop_watch(c->lfd, ev, local_io, c) < 0)
			local_dead(c, "out of memory");
		return;
	}
	loop_events(c->lfd, ev);
}

static void update(rconn *c)
{
	int ev = 0;

	if ((c->flags & F_DONE) || c->k == NULL)
		return;
	pump_down(c);
	if (c->flags & F_DONE)
		return;
	if (!(c->flags & F_LDEAD)) {
		if (!(c->flags & F_LEOF) && kcp_writable(c->k) > 0)
			ev |= LOOP_READ;
		if (c->down.len)
			ev |= LOOP_WRITE;
		set_events(c, ev);
		if (c->flags & F_DONE)
			return;
	}
	kcpc_schedule(c->k, &c->flush);
	if (c->flags & F_LEOF)
		linger_done(c, loop_now());
}

static void local_io(int fd, int ev, void *arg)
{
	rconn *c = arg;

	(void)fd;
	if (c->k == NULL) {
		/* hung up (POLLHUP comes unasked) before the remote is known */
		if (ev & LOOP_ERROR)
			rc_close(c, "local connection closed early");
		return;
	}
	if (ev & (LOOP_WRITE | LOOP_ERROR))
		c->flags &= ~F_LWBLOCK;
	if ((ev & (LOOP_READ | LOOP_ERROR)) &&
	    !(c->flags & (F_LEOF | F_LDEAD)))
		local_in(c);
	if (c->flags & (F_DONE | F_LDEAD)) {
		update(c);
		return;
	}
	/* POLLHUP/POLLERR come even unasked: while we neither read (EOF,
	 * KCP full) nor write, park the socket instead of waking on every
	 * pass */
	if ((ev & LOOP_ERROR) && c->down.len == 0 && ((c->flags & F_LEOF) ||
	    kcp_writable(c->k) == 0)) {
		loop_unwatch(c->lfd);
		c->flags |= F_PARKED;
	}
	update(c);
}

static void udp_io(int fd, int ev, void *arg)
{
	rconn *c = arg;
	uint64_t now = loop_now();
	ssize_t n;
	int i;

	(void)ev;
	for (i = 0; i < KCPC_RECV_BATCH && !(c->flags & F_DONE); i++) {
		n = recv(fd, R.dg, sizeof(R.dg), 0);
		if (n < 0) {
			/* ECONNREFUSED: an ICMP error for an earlier
			 * datagram; the session timeout judges the peer */
			if (errno == EAGAIN)
				break;
			continue;
		}
		if (kcp_conv_of(R.dg, (size_t)n) != c->conv ||
		    kcp_input(c->k, R.dg, (size_t)n, now) < 0)
			continue;
		c->last_input = now;
	}
	update(c);
}

/* ---- opening ---- */

static void on_resolved(void *arg, const dns_addr *addrs, size_t n,
    const char *err)
{
	rconn *c = arg;
	char host[46], m[400];
	uint16_t port = 0;

	c->dq = NULL;
	if (n == 0) {
		snprintf(m, sizeof(m), "resolve: %s", err);
		rc_close(c, m);
		return;
	}
	if ((c->ufd = kcpc_udp_socket(&addrs[0].ss, addrs[0].len, udp_io,
	    c)) < 0) {
		snprintf(m, sizeof(m), "kcp: udp socket: %s",
		    strerror(errno));
		rc_close(c, m);
		return;
	}
	c->conv = kcpc_conv();
	if ((c->k = kcpc_kcp_new(R.cfg->opt, c->conv, output, c)) == NULL) {
		rc_close(c, "out of memory");
		return;
	}
	sock_ntop((const struct sockaddr *)&addrs[0].ss, host, sizeof(host),
	    &port);
	log_info(c->id, "kcp: conversation %08x to %s%s%s:%u (raw)",
	    (unsigned)c->conv, strchr(host, ':') ? "[" : "", host,
	    strchr(host, ':') ? "]" : "", port);
	c->last_input = loop_now();
	arm_timer(c);
	update(c);
}

static void on_accept(int fd, const struct sockaddr *sa, int i, void *arg)
{
	const tunnel_cfg *cfg = R.cfg;
	const peer_uri *u;
	char host[46];
	uint16_t port;
	rconn *c;
	int one = 1;

	(void)i;
	(void)arg;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    loop_watch(fd, 0, local_io, c) < 0) {
		log_error(0, "out of memory: refusing a connection");
		free(c);
		close(fd);
		return;
	}
	c->id = ++R.next_id;
	c->lfd = fd;
	c->ufd = -1;
	buf_init(&c->down, DOWN_BUF);
	loop_timer_init(&c->flush, flush_cb, c);
	loop_timer_init(&c->timer, timer_cb, c);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = R.conns;
	if (R.conns)
		R.conns->prev = c;
	R.conns = c;
	R.nconns++;
	sock_ntop(sa, host, sizeof(host), &port);
	log_info(c->id, "accepted from %s%s%s:%u", strchr(host, ':') ? "[" :
	    "", host, strchr(host, ':') ? "]" : "", port);
	/* the remotes in turn, one per connection */
	u = &cfg->remote[R.tries++ % (unsigned)cfg->nremote];
	if ((c->dq = dns_resolve(u->host, u->port, SOCK_DGRAM, on_resolved,
	    c)) == NULL)
		rc_close(c, "out of memory");
}

/* ---- start and stop ---- */

static void stop_now(void *arg)
{
	(void)arg;
	log_info(0, "%zu connection%s still open: closing", R.nconns,
	    R.nconns == 1 ? "" : "s");
	loop_stop();
}

int kcpr_init(const tunnel_cfg *cfg)
{
	memset(&R, 0, sizeof(R));
	R.cfg = cfg;
	acceptor_init(&R.acc, on_accept, NULL);
	loop_timer_init(&R.stop_timer, stop_now, NULL);
	return 0;
}

int kcpr_listen(int fd)
{
	return acceptor_add(&R.acc, fd) < 0 ? -1 : 0;
}

void kcpr_shutdown(void)
{
	rconn *c, *next;

	if (R.stopping)
		return;
	R.stopping = 1;
	log_info(0, "stopping: %zu connection%s", R.nconns,
	    R.nconns == 1 ? "" : "s");
	acceptor_close(&R.acc);
	for (c = R.conns; c; c = next) {
		next = c->next;
		if (c->k == NULL) {
			rc_close(c, NULL);
			continue;
		}
		set_eof(c);
		update(c);
	}
	if (R.nconns == 0)
		loop_stop();
	else
		loop_timer_set(&R.stop_timer, R.cfg->close_wait_ms);
}

void kcpr_cleanup(void)
{
	while (R.conns)
		rc_close(R.conns, NULL);
	acceptor_close(&R.acc);
	loop_timer_stop(&R.stop_timer);
}
