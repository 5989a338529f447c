/*
 * kcpclient.c - the KCP/UDP channel under websocksy-client's mux (see
 * kcpclient.h).
 *
 * Datagrams in: (PSK: psk_open, silently dropping what fails) -> the conv
 * must be ours -> kcp_input -> kcp_recv into the mux input.  Mux bytes out:
 * kcp_send (its send buffer is the backpressure) -> kcp_flush on the timer
 * kcp_next asks for -> (PSK: psk_seal) -> send().  A send that would block
 * drops the datagram: KCP retransmits it, as it would a lost one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../core/dns.h"
#include "../core/kcp.h"
#include "../core/log.h"
#include "../core/loop.h"
#include "../core/psk.h"
#include "../core/sock.h"
#include "kcpclient.h"

#define SOCKBUF (4 * 1024 * 1024)   /* a window of segments in bursts */

static struct {
	int up;                   /* conversation running */
	int inited;               /* fd and timers set up once */
	int fd;
	uint32_t conv;
	kcp *k;
	dns_query *dq;
	int host;                 /* remote index of this session */
	unsigned tries;           /* sessions started, rotates the remotes */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	psk_ctx *psk;             /* replay cache; outlives sessions */
	uint64_t last_input;
	loop_timer flush;         /* kcp_next */
	loop_timer idle;          /* session timeout */
	uint8_t dg[KCPC_DGRAM_MAX]; /* sealed datagram out / raw one in */
	uint8_t pt[KCPC_DGRAM_MAX]; /* opened datagram */
	uint64_t dropped;         /* datagrams that did not authenticate */
	int answered;             /* the server answered this session */
} K;

static void kcp_io(int fd, int ev, void *arg);

static const client_opts *opt(void)
{
	return muxc_cfg()->opt;
}

/* The envelope's timestamp: wall-clock milliseconds (both ends' clocks
 * must agree within 30 s). */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int output(const uint8_t *dgram, size_t len, void *arg)
{
	const uint8_t *p = dgram;
	ssize_t n = (ssize_t)len;

	(void)arg;
	if (K.fd < 0)
		return -1;
	if (opt()->has_psk) {
		n = psk_seal(opt()->psk, wall_ms(), dgram, len, K.dg,
		    sizeof(K.dg));
		if (n < 0)
			return -1;
		p = K.dg;
	}
	/* EAGAIN, or an ICMP error of an earlier datagram: a loss */
	if (send(K.fd, p, (size_t)n, MSG_NOSIGNAL) < 0)
		return -1;
	return 0;
}

/* ---- shared with the raw KCP relay (kcpraw.c) ---- */

void kcpc_schedule(const kcp *k, loop_timer *t)
{
	uint64_t now = loop_now(), next;

	next = kcp_next(k, now);
	if (next == KCP_IDLE)
		loop_timer_stop(t);
	else
		loop_timer_set(t, next > now ? next - now : 0);
}

int kcpc_udp_socket(const struct sockaddr_storage *ss, socklen_t sslen,
    loop_io_cb cb, void *arg)
{
	int fd, sz = SOCKBUF;

	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(fd, (const struct sockaddr *)ss, sslen) < 0 ||
	    loop_watch(fd, LOOP_READ, cb, arg) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The contract's defaults (§6): nodelay, interval 10, resend 2, no
 * congestion window, stream mode; the envelope's 36 bytes come out of the
 * MTU so that a sealed datagram still fits it. */
kcp *kcpc_kcp_new(const client_opts *o, uint32_t conv, kcp_output_fn out,
    void *arg)
{
	kcp_opts ko;

	kcp_opts_default(&ko);
	ko.mtu = o->kcp_mtu - (o->has_psk ? PSK_OVERHEAD : 0);
	ko.snd_wnd = ko.rcv_wnd = o->kcp_window;
	ko.interval = 10;
	ko.resend = 2;
	ko.nodelay = 1;
	ko.nocwnd = 1;
	ko.stream = 1;
	ko.flush_now = 1;       /* no interval added to each round trip */
	ko.sndbuf = 0;
	return kcp_new(conv, &ko, out, arg);
}

uint32_t kcpc_conv(void)
{
	uint32_t conv;

	do
		psk_random(&conv, sizeof(conv));
	while (conv == 0);
	return conv;
}

/* ---- the mux channel ---- */

/* Run the KCP clock when it asks, not at a fixed rate. */
static void schedule(void)
{
	if (K.up)
		kcpc_schedule(K.k, &K.flush);
}

static void flush_cb(void *arg)
{
	(void)arg;
	if (!K.up)
		return;
	kcp_flush(K.k, loop_now());
	schedule();
}

static void release(void)
{
	if (!K.inited)
		return;
	loop_timer_stop(&K.flush);
	loop_timer_stop(&K.idle);
	if (K.dq) {
		dns_cancel(K.dq);
		K.dq = NULL;
	}
	if (K.k) {
		kcp_free(K.k);
		K.k = NULL;
	}
	if (K.fd >= 0) {
		loop_unwatch(K.fd);
		close(K.fd);
		K.fd = -1;
	}
	K.up = 0;
}

static void fail(const char *why)
{
	release();
	muxc_chan_down(why);
}

/*
 * The server never answers what does not authenticate (a wrong psk= looks
 * like silence, by design: no oracle for a scanner), so the client judges
 * by what comes back: nothing within timeout= is a failure it names.
 */
static void no_answer(void)
{
	const peer_uri *u = &muxc_cfg()->remote[K.host];

	if (K.dropped)
		log_error(0, "kcp: %llu datagrams came back from %s port %s "
		    "but none authenticates: psk= is not the server's "
		    "kcp-psk", (unsigned long long)K.dropped, u->host, u->port);
	else
		log_error(0, "kcp: nothing came back from %s port %s within "
		    "%u s (timeout=): %sthe server listening there "
		    "(kcp-listen) and UDP getting through", u->host, u->port,
		    opt()->timeout, opt()->has_psk ? "check psk= (the server "
		    "drops what does not authenticate, silently), " : "check ");
	fail("no authenticated answer");
}

static void idle_cb(void *arg)
{
	uint64_t quiet = loop_now() - K.last_input;

	(void)arg;
	if (!K.answered) {
		no_answer();
		return;
	}
	if (quiet >= KCPC_SESSION_TIMEOUT) {
		fail("session timeout (nothing received for 60 s)");
		return;
	}
	loop_timer_set(&K.idle, KCPC_SESSION_TIMEOUT - quiet);
}

/* A connected UDP socket to the remote; -1 on failure. */
static int udp_socket(void)
{
	return kcpc_udp_socket(&K.addr, K.addrlen, kcp_io, NULL);
}

/* In-order bytes to the mux while its input has room; the rest stays in
 * KCP, whose receive window then closes (backpressure to the server). */
static void deliver(void)
{
	uint8_t *tail;
	size_t room;
	ssize_t n;

	while (K.up && (tail = muxc_in_tail(&room)) != NULL &&
	    (n = kcp_recv(K.k, tail, room)) > 0)
		muxc_in_commit((size_t)n);
}

/* One datagram: authenticated (with a key), our conv, well formed. */
static void input(const uint8_t *p, size_t len, uint64_t now)
{
	ssize_t n;

	if (opt()->has_psk) {
		n = psk_open(K.psk, p, len, wall_ms(), K.pt, sizeof(K.pt));
		if (n < 0) {
			if (K.dropped++ == 0)
				log_info(0, "kcp: dropping datagrams that do "
				    "not authenticate");
			return;
		}
		p = K.pt;
		len = (size_t)n;
	}
	if (kcp_conv_of(p, len) != K.conv || kcp_input(K.k, p, len, now) < 0)
		return;
	K.last_input = now;
	if (!K.answered) {
		K.answered = 1;
		log_info(0, "kcp: the server answers (conversation %08x)",
		    (unsigned)K.conv);
		loop_timer_set(&K.idle, KCPC_SESSION_TIMEOUT);
	}
}

static void kcp_io(int fd, int ev, void *arg)
{
	uint64_t now = loop_now();
	ssize_t n;
	int i;

	(void)ev;
	(void)arg;
	for (i = 0; i < KCPC_RECV_BATCH && K.up && fd == K.fd; i++) {
		n = recv(fd, K.dg, sizeof(K.dg), 0);
		if (n < 0) {
			/* ECONNREFUSED: an ICMP error for an earlier
			 * datagram; the session timeout judges the peer */
			if (errno == EAGAIN)
				break;
			continue;
		}
		input(K.dg, (size_t)n, now);
	}
	deliver();
	if (!K.up)
		return;
	/* ACKs may have made room in the send buffer */
	muxc_kick();
	schedule();
}

static void start(void)
{
	if ((K.fd = udp_socket()) < 0) {
		fail(strerror(errno));
		return;
	}
	K.conv = kcpc_conv();
	if ((K.k = kcpc_kcp_new(opt(), K.conv, output, NULL)) == NULL) {
		fail("out of memory");
		return;
	}
	K.up = 1;
	K.answered = 0;
	K.dropped = 0;
	K.last_input = loop_now();
	/* the first answer is due within timeout= (the handshake) */
	loop_timer_set(&K.idle, (uint64_t)opt()->timeout * 1000 <
	    KCPC_SESSION_TIMEOUT ? (uint64_t)opt()->timeout * 1000 :
	    KCPC_SESSION_TIMEOUT);
	log_info(0, "kcp: conversation %08x", (unsigned)K.conv);
	muxc_chan_up();
}

static void on_resolved(void *arg, const dns_addr *addrs, size_t n,
    const char *err)
{
	char m[400];

	(void)arg;
	K.dq = NULL;
	if (n == 0) {
		snprintf(m, sizeof(m), "resolve %s: %s",
		    muxc_cfg()->remote[K.host].host, err);
		fail(m);
		return;
	}
	memcpy(&K.addr, &addrs[0].ss, addrs[0].len);
	K.addrlen = addrs[0].len;
	start();
}

/* A new conversation; the remotes are tried in turn across sessions. */
static int kcp_open(void)
{
	const tunnel_cfg *c = muxc_cfg();
	const peer_uri *u;

	if (!K.inited) {
		K.fd = -1;
		loop_timer_init(&K.flush, flush_cb, NULL);
		loop_timer_init(&K.idle, idle_cb, NULL);
		K.inited = 1;
	}
	if (opt()->has_psk && K.psk == NULL &&
	    (K.psk = psk_ctx_new(opt()->psk, opt()->kcp_replay)) == NULL)
		return -1;
	K.host = (int)(K.tries++ % (unsigned)c->nremote);
	u = &c->remote[K.host];
	K.dq = dns_resolve(u->host, u->port, SOCK_DGRAM, on_resolved, NULL);
	return K.dq ? 0 : -1;
}

static size_t kcp_push(const uint8_t *p, size_t n)
{
	ssize_t r;

	if (!K.up || (r = kcp_send(K.k, p, n)) <= 0)
		return 0;
	schedule();
	return (size_t)r;
}

static void kcp_resume(void)
{
	if (!K.up)
		return;
	deliver();
	schedule();
}

/* What the mux said last (a GOAWAY) leaves now, best effort. */
static void kcp_close(void)
{
	if (K.up)
		kcp_flush(K.k, loop_now());
	release();
}

void kcpc_rebind(void)
{
	int old = K.fd, fd;
	char host[46];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!K.up) {
		log_info(0, "kcp: no session to move");
		return;
	}
	if ((fd = udp_socket()) < 0) {
		log_warn(0, "kcp: rebind: %s", strerror(errno));
		return;
	}
	loop_unwatch(old);
	close(old);
	K.fd = fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		sock_ntop((struct sockaddr *)&ss, host, sizeof(host), &port);
	log_info(0, "kcp: session %08x moved to local port %u",
	    (unsigned)K.conv, port);
	/* tell the server at once, not at the next retransmission */
	kcp_flush(K.k, loop_now());
	schedule();
}

void kcpc_cleanup(void)
{
	release();
	psk_ctx_free(K.psk);
	K.psk = NULL;
}

const muxc_chan kcpc_chan = {
	.name = "kcp",
	.open = kcp_open,
	.push = kcp_push,
	.resume = kcp_resume,
	.close = kcp_close,
};
