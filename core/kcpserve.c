/*
 * kcpserve.c - the KCP-mux listener (docs/KCP-MUX.md §6): one non-blocking
 * UDP socket, KCP conversations keyed by conv, each feeding a framing
 * session (the kcp-mux plugin) as if it were a WebSocket of binary
 * messages.
 *
 * Datagram path: [psk_open] -> conv -> known: kcp_input (maybe move the
 * session to the sender's new address) / unknown: a new session, only for
 * a plausible first datagram.  Nothing is ever sent in answer to a
 * datagram that failed authentication or that created nothing.
 *
 * Each session has one loop timer, armed for the earliest of: kcp_next()
 * (KCP ticks on demand), the idle deadline, deferred work (a pause lifted,
 * a close asked for from inside the plugin).  Plugin calls never run from
 * inside another plugin call: the link functions only set flags and arm
 * the timer.
 *
 * The session framing is kcp-framing (default kcp-mux; the tests use an
 * echo session for raw KCP interop with kcp-go).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kcp.h"
#include "bridge.h"
#include "kcpserve.h"
#include "log.h"
#include "loop.h"
#include "plugin.h"
#include "psk.h"
#include "session.h"
#include "sock.h"

#define KS_RX_BATCH 256           /* datagrams per readiness event */
#define KS_DROP_LOG_MS 30000      /* at most one drop summary per 30 s */
#define KS_SOCKBUF (4 << 20)      /* UDP buffers: a window in flight */
#define KS_MAX_BUCKETS 65536
#define KS_DGRAM_MAX 65536

/* Little-endian header fields (KCP-MUX.md §6). */
#define HDR_CMD 4
#define HDR_FRG 5
#define HDR_SN 12
#define HDR_UNA 16
#define CMD_PUSH 81

typedef struct ksess {
	struct ksess *hnext;          /* conv hash chain */
	struct ksess *prev, *next;    /* every session */
	uint32_t conv;
	uint64_t id;                  /* for logs */
	kcp *k;
	session *s;                   /* NULL once closed (lingering) */
	struct sockaddr_storage addr; /* where output goes */
	socklen_t alen;
	loop_timer t;
	uint64_t last_rx;             /* last authenticated input */
	uint64_t linger_until;        /* closed: drop after, acked or not */
	size_t wake;                  /* writable bytes that unblock */
	int paused;                   /* the plugin takes no input */
	int blocked;                  /* a ws_send failed: wake it */
	int closing;                  /* close asked: do it in the timer */
	int kick;                     /* deferred work: run the timer now */
	int code;                     /* close code for session_close */
} ksess;

static struct {
	const wsy_config *cfg;
	int fd;
	const wsy_session_ops *ops;
	char fname[64];
	char mux_config[600];
	uint8_t key[PSK_KEY_LEN];
	psk_ctx *pc;                  /* NULL: no key */
	kcp_opts ko;
	ksess **tab;
	size_t mask;
	ksess *all;
	size_t n;
	int stopping;
	uint64_t drop_auth, drop_other, drop_log_at;
	uint64_t refuse_log_at;
	uint8_t rbuf[KS_DGRAM_MAX];   /* datagram as received */
	uint8_t pbuf[KS_DGRAM_MAX];   /* its plaintext */
	uint8_t sbuf[KS_DGRAM_MAX];   /* sealed output */
	uint8_t mbuf[KS_DGRAM_MAX];   /* bytes handed to the session */
} K = { .fd = -1 };

static void ks_tick(void *arg);

/* The PSK envelope's timestamp is wall-clock time (§6.1). */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void addr_str(const struct sockaddr_storage *ss, char *out,
    size_t outlen)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;

	sock_ntop((const struct sockaddr *)ss, host, sizeof(host), &port);
	snprintf(out, outlen, "%s%s%s:%u", strchr(host, ':') ? "[" : "",
	    host, strchr(host, ':') ? "]" : "", port);
}

static int addr_eq(const struct sockaddr_storage *a, socklen_t alen,
    const struct sockaddr_storage *b, socklen_t blen)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (alen != blen || a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	a6 = (const struct sockaddr_in6 *)a;
	b6 = (const struct sockaddr_in6 *)b;
	return a6->sin6_port == b6->sin6_port &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) ==
	    0 && a6->sin6_scope_id == b6->sin6_scope_id;
}

/* Count a drop; a summary at most every KS_DROP_LOG_MS, so a flood of
 * junk costs no more than a counter. */
static void drop(int unauth)
{
	uint64_t now = loop_now();

	if (unauth)
		K.drop_auth++;
	else
		K.drop_other++;
	if (now < K.drop_log_at)
		return;
	K.drop_log_at = now + KS_DROP_LOG_MS;
	log_info(0, "kcp: dropped %llu unauthenticated and %llu other "
	    "datagram(s) so far", (unsigned long long)K.drop_auth,
	    (unsigned long long)K.drop_other);
}

/* ---- the session table ---- */

static size_t bucket(uint32_t conv)
{
	return (size_t)((conv * 2654435761u) >> 7) & K.mask;
}

static ksess *ks_find(uint32_t conv)
{
	ksess *ks;

	for (ks = K.tab[bucket(conv)]; ks; ks = ks->hnext)
		if (ks->conv == conv)
			return ks;
	return NULL;
}

static void ks_free(ksess *ks)
{
	ksess **pp;
	char a[INET6_ADDRSTRLEN + 10];

	for (pp = &K.tab[bucket(ks->conv)]; *pp && *pp != ks;
	    pp = &(*pp)->hnext)
		;
	if (*pp)
		*pp = ks->hnext;
	if (ks->prev)
		ks->prev->next = ks->next;
	else
		K.all = ks->next;
	if (ks->next)
		ks->next->prev = ks->prev;
	K.n--;
	if (K.n == 0)
		bridge_maybe_stopped();
	loop_timer_stop(&ks->t);
	addr_str(&ks->addr, a, sizeof(a));
	log_debug(ks->id, "kcp conv %08x %s: released", ks->conv, a);
	kcp_free(ks->k);
	free(ks);
}

/* Arm the timer for the earliest deadline (re-arming only on change). */
static void ks_schedule(ksess *ks)
{
	uint64_t now = loop_now(), when, dl;

	when = ks->kick ? now : kcp_next(ks->k, now);
	dl = ks->s ? ks->last_rx + K.cfg->kcp_session_timeout_ms :
	    ks->linger_until;
	if (dl < when)
		when = dl;
	if (when < now)
		when = now;
	if (loop_timer_armed(&ks->t) && ks->t.when == when)
		return;
	loop_timer_set(&ks->t, when - now);
}

/* Ask for a close; done from the timer, outside any plugin call. */
static void ks_close_later(ksess *ks, int code)
{
	if (ks->closing || ks->s == NULL)
		return;
	ks->closing = 1;
	ks->code = code;
	ks->kick = 1;
	ks_schedule(ks);
}

/* ---- KCP output ---- */

static int ks_output(const uint8_t *d, size_t len, void *arg)
{
	ksess *ks = arg;
	ssize_t n;

	if (K.pc) {
		if ((n = psk_seal(K.key, wall_ms(), d, len, K.sbuf,
		    sizeof(K.sbuf))) < 0)
			return -1;
		d = K.sbuf;
		len = (size_t)n;
	}
	/* A full socket buffer loses the datagram: KCP resends it. */
	if (sendto(K.fd, d, len, 0, (struct sockaddr *)&ks->addr,
	    ks->alen) < 0)
		return -1;
	return 0;
}

/* ---- the session's link (called from inside the plugin) ---- */

/* Whole messages or nothing, as a WebSocket link behaves: the plugin
 * retries smaller pieces or waits for on_ws_writable. */
static int link_ws_send(void *arg, int opcode, const uint8_t *d, size_t n)
{
	ksess *ks = arg;

	(void)opcode;
	if (ks->closing || ks->s == NULL)
		return -1;
	if (n == 0)
		return 0;
	if (kcp_writable(ks->k) < n) {
		ks->blocked = 1;
		return -1;
	}
	if (kcp_send(ks->k, d, n) != (ssize_t)n) {
		ks->blocked = 1;
		return -1;
	}
	ks_schedule(ks);
	return 0;
}

static void link_ws_close(void *arg, int code, const char *reason)
{
	ksess *ks = arg;

	if (ks->s && !ks->closing)
		log_info(ks->id, "kcp conv %08x: closing (%d %s)", ks->conv,
		    code, reason ? reason : "");
	ks_close_later(ks, code);
}

static void link_ws_pause(void *arg, int paused)
{
	ksess *ks = arg;

	ks->paused = paused;
	if (!paused) {
		ks->kick = 1;
		ks_schedule(ks);
	}
}

/* ---- driving a session ---- */

/* Hand in-order bytes to the plugin until it pauses; wake a blocked
 * sender once a useful amount of room is back. */
static void ks_pump(ksess *ks)
{
	ssize_t n;

	while (ks->s && !ks->paused && !ks->closing) {
		if ((n = kcp_recv(ks->k, K.mbuf, sizeof(K.mbuf))) <= 0)
			break;
		session_message(ks->s, WSY_OP_BINARY, K.mbuf, (size_t)n, 1);
	}
	if (ks->s && ks->blocked && !ks->closing &&
	    kcp_writable(ks->k) >= ks->wake) {
		ks->blocked = 0;
		session_ws_writable(ks->s);
	}
}

/* Close the framing session; the KCP conversation lingers until what the
 * plugin wrote last (a GOAWAY) is acknowledged, at most close-timeout. */
static void ks_end_session(ksess *ks, int code)
{
	session *s = ks->s;

	if (s == NULL)
		return;
	ks->closing = 1;
	ks->s = NULL;
	session_close(s, code);
	/* Stopping: unacked bytes get `linger`, not the whole close-timeout
	 * (a client that is gone never acks). */
	ks->linger_until = loop_now() + (K.stopping && K.cfg->linger_ms <
	    K.cfg->close_timeout_ms ? K.cfg->linger_ms :
	    K.cfg->close_timeout_ms);
	kcp_flush(ks->k, loop_now());
}

static void ks_tick(void *arg)
{
	ksess *ks = arg;
	uint64_t now = loop_now();
	char a[INET6_ADDRSTRLEN + 10];

	ks->kick = 0;
	if (ks->s && ks->closing) {
		addr_str(&ks->addr, a, sizeof(a));
		log_info(ks->id, "kcp conv %08x %s: closed", ks->conv, a);
		ks_end_session(ks, ks->code);
	}
	if (ks->s && now >= ks->last_rx + K.cfg->kcp_session_timeout_ms) {
		addr_str(&ks->addr, a, sizeof(a));
		log_info(ks->id, "kcp conv %08x %s: closed (no input for "
		    "%llu ms)", ks->conv, a,
		    (unsigned long long)K.cfg->kcp_session_timeout_ms);
		ks_end_session(ks, 1006);
	}
	if (kcp_next(ks->k, now) <= now)
		kcp_flush(ks->k, now);
	ks_pump(ks);
	if (ks->s == NULL && (kcp_unacked(ks->k) == 0 ||
	    now >= ks->linger_until)) {
		ks_free(ks);
		return;
	}
	ks_schedule(ks);
}

/* A conversation we have never seen starts with its first segment: a
 * PUSH with sn 0 and una 0.  Anything else for an unknown conv is a
 * stray (a forgotten session, a scan) and must not allocate. */
static int plausible_first(const uint8_t *p, size_t len)
{
	return len > KCP_OVERHEAD && rd32(p) != 0 && p[HDR_CMD] == CMD_PUSH &&
	    p[HDR_FRG] == 0 && rd32(p + HDR_SN) == 0 &&
	    rd32(p + HDR_UNA) == 0;
}

static ksess *ks_new(uint32_t conv, const struct sockaddr_storage *from,
    socklen_t flen)
{
	ksess *ks;
	size_t b;

	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	if ((ks->k = kcp_new(conv, &K.ko, ks_output, ks)) == NULL) {
		free(ks);
		return NULL;
	}
	ks->conv = conv;
	ks->id = bridge_new_id();
	memcpy(&ks->addr, from, flen);
	ks->alen = flen;
	ks->last_rx = loop_now();
	ks->wake = kcp_writable(ks->k) / 2;
	if (ks->wake > 65536)
		ks->wake = 65536;
	loop_timer_init(&ks->t, ks_tick, ks);
	b = bucket(conv);
	ks->hnext = K.tab[b];
	K.tab[b] = ks;
	ks->next = K.all;
	if (K.all)
		K.all->prev = ks;
	K.all = ks;
	K.n++;
	return ks;
}

/* The framing session, once the first datagram was accepted. */
static int ks_open_session(ksess *ks)
{
	session_link link = { ks, ks->id, link_ws_send, link_ws_close,
	    link_ws_pause };
	session_limits lim = { K.cfg->buffer_size, K.cfg->connect_timeout_ms,
	    K.cfg->max_streams };
	char a[INET6_ADDRSTRLEN + 10];

	addr_str(&ks->addr, a, sizeof(a));
	if ((ks->s = session_open(K.ops, K.mux_config, K.cfg->kcp_peer, &link,
	    &lim)) == NULL) {
		/* A bad kcp-mux-config refuses every session: say so, but
		 * not once per first datagram anyone sends. */
		if (loop_now() >= K.refuse_log_at) {
			K.refuse_log_at = loop_now() + KS_DROP_LOG_MS;
			log_warn(ks->id, "kcp conv %08x %s: %s session refused "
			    "(check kcp-mux-config)", ks->conv, a, K.fname);
		}
		return -1;
	}
	log_info(ks->id, "kcp conv %08x %s: session open (%zu of %llu)",
	    ks->conv, a, K.n, (unsigned long long)K.cfg->kcp_sessions);
	return 0;
}

/* ---- datagrams ---- */

/* A known conv from another address: the session follows it only when
 * the datagram authenticated (or moves are allowed without a key). */
static int may_move(void)
{
	return K.pc != NULL || K.cfg->kcp_allow_move;
}

static void ks_moved(ksess *ks, const struct sockaddr_storage *from,
    socklen_t flen)
{
	char a[INET6_ADDRSTRLEN + 10], b[INET6_ADDRSTRLEN + 10];

	addr_str(&ks->addr, a, sizeof(a));
	addr_str(from, b, sizeof(b));
	log_info(ks->id, "kcp conv %08x: moved from %s to %s", ks->conv, a,
	    b);
	memcpy(&ks->addr, from, flen);
	ks->alen = flen;
}

static void on_datagram(const uint8_t *d, size_t len,
    const struct sockaddr_storage *from, socklen_t flen)
{
	uint64_t now = loop_now();
	ksess *ks;
	ssize_t r;
	int created = 0, moved;

	if (K.pc) {
		if ((r = psk_open(K.pc, d, len, wall_ms(), K.pbuf,
		    sizeof(K.pbuf))) < 0) {
			drop(1);
			return;
		}
		d = K.pbuf;
		len = (size_t)r;
	}
	if (len < KCP_OVERHEAD) {
		drop(K.pc == NULL);
		return;
	}
	if ((ks = ks_find(rd32(d))) == NULL) {
		if (K.stopping || K.n >= K.cfg->kcp_sessions ||
		    !plausible_first(d, len) ||
		    (ks = ks_new(rd32(d), from, flen)) == NULL) {
			drop(K.pc == NULL);
			return;
		}
		created = 1;
	}
	moved = !addr_eq(&ks->addr, ks->alen, from, flen);
	if (moved && !may_move()) {
		drop(1);
		return;
	}
	/* Nothing moves and nothing is created for a malformed datagram. */
	if (kcp_input(ks->k, d, len, now) < 0) {
		if (created)
			ks_free(ks);
		drop(K.pc == NULL);
		return;
	}
	if (moved)
		ks_moved(ks, from, flen);
	if (created && ks_open_session(ks) < 0) {
		ks_free(ks);
		return;
	}
	if (ks->s)
		ks->last_rx = now;
	ks_pump(ks);
	ks_schedule(ks);
}

static void udp_io(int fd, int ev, void *arg)
{
	struct sockaddr_storage from;
	socklen_t flen;
	ssize_t n;
	int i;

	(void)ev;
	(void)arg;
	for (i = 0; i < KS_RX_BATCH; i++) {
		flen = sizeof(from);
		n = recvfrom(fd, K.rbuf, sizeof(K.rbuf), 0,
		    (struct sockaddr *)&from, &flen);
		if (n < 0) {
			/* ICMP errors surface here as ECONNREFUSED and the
			 * like: they concern one peer, not the socket. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		on_datagram(K.rbuf, (size_t)n, &from, flen);
	}
}

/* ---- start and stop ---- */

/* "host:port", "[v6]:port", ":port" (all addresses, both families). */
static int bind_udp(const char *spec, char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	char host[300], *port;
	int fd, r, off = 0, sz = KS_SOCKBUF;

	snprintf(host, sizeof(host), "%s", spec);
	if ((port = strrchr(host, ':')) == NULL) {
		snprintf(err, errlen, "expected host:port or [v6]:port");
		return -1;
	}
	*port++ = '\0';
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']') {
			snprintf(err, errlen, "unbalanced [ ]");
			return -1;
		}
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((r = getaddrinfo(host[0] ? host : "::", port, &hints, &res)) !=
	    0) {
		snprintf(err, errlen, "%s", gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_DGRAM, 0);
	if (fd >= 0 && res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (fd < 0 || sock_nonblock(fd) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	/* A window of 1024 segments in flight needs more than the default
	 * buffers; the kernel caps these, which is fine. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	return fd;
}

static int setup_key(const wsy_config *cfg)
{
	char where[PATH_MAX + 80];

	if (cfg->kcp_psk[0] == '\0')
		return 0;
	if (psk_key_from_base64(cfg->kcp_psk, K.key) < 0) {
		cfg_where_str(cfg_where(cfg, "kcp-psk", CFG_LAST), "kcp-psk",
		    where, sizeof(where));
		fprintf(stderr, "%s: expected 32 bytes in base64 (websocksy "
		    "--genpsk)\n", where);
		return -1;
	}
	if ((K.pc = psk_ctx_new(K.key, cfg->kcp_replay_cache)) == NULL) {
		fprintf(stderr, "kcp-psk: out of memory\n");
		return -1;
	}
	return 0;
}

/* The session framing and its config: kcp-keepalive goes first, so a
 * keepalive= in kcp-mux-config still wins. */
static int setup_framing(const wsy_config *cfg)
{
	const wsy_framing_ops *fops;
	char err[256];
	int trusted;

	snprintf(K.fname, sizeof(K.fname), "%s", cfg->kcp_framing);
	if (framing_resolve(K.fname, NULL, &fops, &trusted, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "kcp-listen: framing %s: %s\n", K.fname, err);
		return -1;
	}
	if (fops->session == NULL) {
		fprintf(stderr, "kcp-listen: framing %s is not a session "
		    "framing\n", K.fname);
		return -1;
	}
	K.ops = fops->session;
	snprintf(K.mux_config, sizeof(K.mux_config), "keepalive=%llu %s",
	    (unsigned long long)(cfg->kcp_keepalive_ms + 999) / 1000,
	    cfg->kcp_mux_config);
	return 0;
}

static void setup_kcp(const wsy_config *cfg)
{
	kcp_opts_default(&K.ko);
	K.ko.mtu = (unsigned)cfg->kcp_mtu;
	/* The envelope must fit in the same datagram budget. */
	if (K.pc)
		K.ko.mtu -= PSK_OVERHEAD;
	K.ko.snd_wnd = K.ko.rcv_wnd = (unsigned)cfg->kcp_window;
	/* ACKs and data at once: an interval of batching on each side
	 * would add to every round trip (kcp-go's AckNoDelay). */
	K.ko.flush_now = 1;
}

static int setup_table(const wsy_config *cfg)
{
	size_t nb;

	for (nb = 16; nb < cfg->kcp_sessions && nb < KS_MAX_BUCKETS; nb *= 2)
		;
	if ((K.tab = calloc(nb, sizeof(*K.tab))) == NULL) {
		fprintf(stderr, "kcp-listen: out of memory\n");
		return -1;
	}
	K.mask = nb - 1;
	return 0;
}

int kcpserve_prepare(const wsy_config *cfg)
{
	int errors;

	if (cfg->kcp_listen[0] == '\0')
		return 0;
	K.cfg = cfg;
	errors = (setup_key(cfg) < 0) + (setup_framing(cfg) < 0);
	if (errors == 0 && setup_table(cfg) < 0)
		errors++;
	if (errors == 0)
		setup_kcp(cfg);
	return errors;
}

int kcpserve_start(const wsy_config *cfg)
{
	char err[256];

	if (cfg->kcp_listen[0] == '\0')
		return 0;
	if ((K.fd = bind_udp(cfg->kcp_listen, err, sizeof(err))) < 0) {
		fprintf(stderr, "kcp-listen %s: %s\n", cfg->kcp_listen, err);
		return -1;
	}
	if (loop_watch(K.fd, LOOP_READ, udp_io, NULL) < 0) {
		fprintf(stderr, "kcp-listen: out of memory\n");
		return -1;
	}
	log_info(0, "listening on %s (kcp%s, %s), up to %llu sessions",
	    cfg->kcp_listen, K.pc ? ", psk" : "", K.fname,
	    (unsigned long long)cfg->kcp_sessions);
	return 0;
}

/* Sessions whose framing can drain (kcp-mux: GOAWAY, the open streams
 * finish) close by themselves; the others close now.  Each lingers until
 * its last bytes are acked; the whole shutdown is bounded by
 * close-timeout (the bridge's stop timer). */
void kcpserve_shutdown(void)
{
	ksess *ks;

	if (K.cfg == NULL || K.stopping)
		return;
	K.stopping = 1;
	if (K.n)
		log_info(0, "kcp: shutting down: %zu session(s) to close",
		    K.n);
	for (ks = K.all; ks; ks = ks->next) {
		if (ks->s && !ks->closing && session_shutdown(ks->s) == 0) {
			ks->kick = 1;
			ks_schedule(ks);
			continue;
		}
		if (ks->s)
			ks_end_session(ks, 1001);
		/* Stopping: unacked bytes get `linger`, not the whole
		 * close-timeout (a client that is gone never acks). */
		if (ks->linger_until > loop_now() + K.cfg->linger_ms)
			ks->linger_until = loop_now() + K.cfg->linger_ms;
		ks_schedule(ks);
	}
}

void kcpserve_cleanup(void)
{
	while (K.all) {
		if (K.all->s) {
			session *s = K.all->s;
			K.all->s = NULL;
			session_close(s, 1001);
		}
		ks_free(K.all);
	}
	if (K.fd >= 0) {
		loop_unwatch(K.fd);
		close(K.fd);
		K.fd = -1;
	}
	free(K.tab);
	K.tab = NULL;
	psk_ctx_free(K.pc);
	K.pc = NULL;
	explicit_bzero(K.key, sizeof(K.key));
	K.cfg = NULL;
}

size_t kcpserve_sessions(void)
{
	return K.n;
}
