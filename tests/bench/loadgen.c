/*
 * loadgen.c - load generator for the benchmarks.
 *
 *	loadgen [options] WORKLOAD
 *
 * One thread, level-triggered epoll, many connections.  Two modes: raw
 * TCP (for the direct and plain relay baselines) and WebSocket (HTTP
 * upgrade with a checked Sec-WebSocket-Accept, masked binary frames with
 * a fresh random key per frame or an all-zero key, unmasked server frames
 * parsed with fragmentation and control frames).
 *
 * Every payload byte comes from a deterministic pattern: the byte at
 * stream offset i of connection k is pat[(seed(k) + i) % PATLEN].  What
 * comes back is compared with the same pattern, so any loss, duplication
 * or reordering counts as an integrity error.
 *
 * Workloads (one JSON line on stdout per run):
 *   bulk        -c N connections send -s S byte messages for -t seconds,
 *               at most -w bytes in flight each; reports echoed bytes/s
 *   pingpong    one connection, -n round trips of -s bytes; p50/p99 us
 *   handshakes  -c workers loop connect + upgrade + one echo + close for
 *               -t seconds; reports completed handshakes per second
 *   idle        opens -c connections, prints "ready N FAILED" and holds
 *               them until SIGTERM (or --hold seconds), then the JSON
 *
 * --tls runs every mode over TLS (GnuTLS, non-blocking, inside the same
 * epoll loop): wss, or raw TLS with --tcp.  The server certificate is
 * checked against the system trust store or --ca FILE, for the name given
 * with --sni (also sent as SNI); --insecure skips the check.  Buffered
 * plaintext (gnutls_record_check_pending) is drained before epoll_wait
 * sleeps, so no echoed byte is stranded inside GnuTLS.
 *
 * Every loop is bounded by a deadline and a count.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PATLEN		65521		/* prime: connections differ */
#define CHUNK		(256 * 1024)	/* largest read, largest compare */
#define MAX_EVENTS	1024
#define HS_MAX		4096		/* longest 101 response */
#define CTL_MAX		125
#define TLS_REC		16384		/* plaintext per TLS record */
#define TLS_RA		(128 * 1024)	/* TLS read-ahead */
#define TLS_WB		(128 * 1024)	/* TLS records gathered for a send */
#define TLS_REC_MAX	(2 * (TLS_REC + 256))	/* a record, overhead, key update */

enum mode { M_TCP, M_WS };
enum workload { W_BULK, W_PINGPONG, W_HANDSHAKES, W_IDLE };
enum state { S_FREE, S_CONNECTING, S_TLS_HS, S_HS_RECV, S_OPEN, S_CLOSING,
    S_DONE };

struct opts {
	enum mode	 mode;
	enum workload	 work;
	const char	*host;
	int		 port;
	int		 conns;
	size_t		 size;
	double		 seconds;
	long		 count;
	size_t		 window;
	int		 zero_mask;
	int		 src_spread;
	double		 hold;
	double		 timeout;
	int		 concurrency;	/* idle: handshakes in progress */
	const char	*path;
	const char	*protocol;
	int		 tls;
	int		 insecure;
	const char	*sni;		/* server name: SNI and the check */
	const char	*ca;		/* trust file instead of the system's */
};

struct conn {
	int		 fd;
	int		 idx;
	enum state	 state;
	uint32_t	 events;	/* current epoll interest */
	uint32_t	 seed;
	uint64_t	 sent;		/* payload bytes queued */
	uint64_t	 rcvd;		/* payload bytes echoed and checked */
	double		 t_start;	/* this attempt began */
	/* output: whole frames (or raw bytes) */
	uint8_t		*out;
	size_t		 out_cap;
	size_t		 out_off;
	size_t		 out_len;
	/* handshake */
	char		 accept[29];
	char		*hs;
	size_t		 hs_len;
	/* frame parser */
	uint8_t		 hdr[14];
	size_t		 hdr_len;
	size_t		 hdr_need;
	uint64_t	 frame_left;
	int		 frame_op;
	int		 frame_fin;
	int		 in_frag;
	uint8_t		 ctl[CTL_MAX];
	size_t		 ctl_len;
	int		 close_rcvd;
	int		 close_sent;
	/* TLS */
	gnutls_session_t sess;
	int		 in_pend;	/* on the pending-plaintext list */
	/* our TLS transport: read-ahead and gathered records */
	uint8_t		*trb;
	size_t		 trb_off, trb_len;
	uint8_t		*twb;
	size_t		 twb_off, twb_len;
	int		 gather;
};

struct stats {
	uint64_t	 bytes;		/* echoed payload bytes checked */
	uint64_t	 frames;	/* data frames received */
	uint64_t	 done;		/* handshakes completed */
	uint64_t	 connect_err;
	uint64_t	 hs_err;
	uint64_t	 proto_err;
	uint64_t	 integrity_err;
	uint64_t	 closed;	/* closed by the other side */
	uint64_t	 timeouts;
};

static struct opts	 O;
static struct stats	 ST;
static struct conn	*conns;
static int		 epfd;
static uint8_t		*pat;		/* PATLEN + CHUNK bytes */
static uint8_t		 rbuf[CHUNK];
static uint64_t		 rng_state;
static volatile sig_atomic_t	got_term;
static const char	*last_error = "";
static const char	*tls_cipher = "";	/* as negotiated, for the report */
static gnutls_certificate_credentials_t	xcred;
static struct conn	**pend, **pend_run;	/* pending TLS plaintext */
static int		 npend;

/* ---- small utilities ---- */

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
rng_next(void)
{
	uint64_t	x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static int
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > 0x7fffffff ? 0x7fffffff : (int)rl.rlim_cur;
}

/* The deterministic payload pattern, extended by CHUNK so that any slice
 * of up to CHUNK bytes starting below PATLEN is contiguous. */
static void
pat_init(void)
{
	uint64_t	x = 0x9e3779b97f4a7c15ULL;
	size_t		i;

	if ((pat = malloc(PATLEN + CHUNK)) == NULL) {
		perror("loadgen: malloc");
		exit(1);
	}
	for (i = 0; i < PATLEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pat[i] = (uint8_t)(x >> 32);
	}
	for (i = PATLEN; i < PATLEN + CHUNK; i++)
		pat[i] = pat[i - PATLEN];
}

static const uint8_t *
pat_at(uint32_t seed, uint64_t off)
{
	return pat + (size_t)((seed + off) % PATLEN);
}

/* Copy len pattern bytes from stream offset off, XOR-ing the 4-byte mask
 * key (all zero: plain copy).  Wide words where possible. */
static void
pat_copy_masked(uint8_t *dst, uint32_t seed, uint64_t off, size_t len,
    const uint8_t key[4])
{
	uint64_t	m8, w;
	uint32_t	k4;
	size_t		n, i;

	memcpy(&k4, key, 4);
	m8 = ((uint64_t)k4 << 32) | k4;
	while (len > 0) {
		const uint8_t	*src = pat_at(seed, off);

		n = len < CHUNK ? len : CHUNK;
		if (k4 == 0)
			memcpy(dst, src, n);
		else {
			/* Each chunk starts at a multiple of CHUNK bytes
			 * into the payload, a multiple of 4: the key
			 * phase is 0 at its start. */
			for (i = 0; i + 8 <= n; i += 8) {
				memcpy(&w, src + i, 8);
				w ^= m8;
				memcpy(dst + i, &w, 8);
			}
			for (; i < n; i++)
				dst[i] = src[i] ^ key[i & 3];
		}
		dst += n;
		off += n;
		len -= n;
	}
}

/* ---- SHA-1 (FIPS 180-4) and base64, for Sec-WebSocket-Accept ---- */

static uint32_t
rol32(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t	w[80], a, b, c, d, e, f, k, t;
	int		i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = t;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* len must be below 256 (only short strings are hashed here). */
static void
sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t	h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe,
			    0x10325476, 0xc3d2e1f0 };
	uint8_t		buf[320];
	uint64_t	bits = (uint64_t)len * 8;
	size_t		total, i;

	memcpy(buf, data, len);
	buf[len] = 0x80;
	total = (len + 9 + 63) / 64 * 64;
	memset(buf + len + 1, 0, total - len - 1);
	for (i = 0; i < 8; i++)
		buf[total - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (i = 0; i < total; i += 64)
		sha1_block(h, buf + i);
	for (i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

static void
base64(const uint8_t *in, size_t len, char *out)
{
	static const char	tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			i;
	uint32_t		v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = tab[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = tab[v >> 18];
		*out++ = tab[(v >> 12) & 63];
		*out++ = tab[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

/* ---- connections ---- */

static void
set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event	ee;

	if (c->events == ev)
		return;
	memset(&ee, 0, sizeof(ee));
	ee.events = ev;
	ee.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ee) == 0)
		c->events = ev;
}

static void
conn_reset(struct conn *c)
{
	if (c->fd != -1) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = S_FREE;
	c->events = 0;
	c->sent = c->rcvd = 0;
	c->out_off = c->out_len = 0;
	c->hs_len = 0;
	c->hdr_len = c->hdr_need = 0;
	c->frame_left = 0;
	c->frame_op = c->frame_fin = c->in_frag = 0;
	c->ctl_len = 0;
	c->close_rcvd = c->close_sent = 0;
	if (c->sess != NULL) {
		gnutls_deinit(c->sess);
		c->sess = NULL;
	}
	c->in_pend = 0;
	free(c->trb);
	free(c->twb);
	c->trb = c->twb = NULL;
	c->trb_off = c->trb_len = c->twb_off = c->twb_len = 0;
	c->gather = 0;
}

/* Connection failure of some kind: count it, drop the connection. */
static void
conn_fail(struct conn *c, uint64_t *counter, const char *why)
{
	(*counter)++;
	last_error = why;
	conn_reset(c);
}

/* ---- transport: plain socket or TLS record layer ----
 *
 * Both return what read(2) and write(2) would: a count, 0 at EOF, or -1
 * with errno (EAGAIN: wait for the socket; EINTR: call again at once;
 * EPROTO: a TLS error, its text in last_error).
 */

static ssize_t
conn_recv(struct conn *c, uint8_t *p, size_t len)
{
	ssize_t	n;

	if (c->sess == NULL)
		return read(c->fd, p, len);
	n = gnutls_record_recv(c->sess, p, len);
	if (n >= 0)
		return n;
	if (n == GNUTLS_E_AGAIN)
		errno = EAGAIN;
	else if (n == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;	/* TCP EOF without close_notify */
	else if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n))
		errno = EINTR;	/* e.g. a warning alert: go on */
	else {
		last_error = gnutls_strerror((int)n);
		errno = EPROTO;
	}
	return -1;
}

/*
 * TLS transport.  GnuTLS's own reads a record header and body with two
 * recv() calls and sends every record with its own send(); a load
 * generator that did so would spend the CPU the server under test needs
 * (2 vCPUs are shared).  So, as websocksy's server side does: reads take
 * up to TLS_RA bytes and serve GnuTLS from them, and conn_send() gathers
 * the records of one call in twb and sends them with one send().
 */
static ssize_t
tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct conn	*c = ptr;
	ssize_t		 n;

	if (c->trb_len == 0) {
		if (c->trb == NULL && (c->trb = malloc(TLS_RA)) == NULL) {
			gnutls_transport_set_errno(c->sess, ENOMEM);
			return -1;
		}
		n = recv(c->fd, c->trb, TLS_RA, 0);
		if (n <= 0) {
			if (n < 0)
				gnutls_transport_set_errno(c->sess, errno);
			return n;
		}
		c->trb_off = 0;
		c->trb_len = (size_t)n;
	}
	if (len > c->trb_len)
		len = c->trb_len;
	memcpy(data, c->trb + c->trb_off, len);
	c->trb_off += len;
	c->trb_len -= len;
	return (ssize_t)len;
}

static int
tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct conn	*c = ptr;

	(void)ms;
	return c->trb_len > 0 ? 1 : 0;	/* non-blocking: never wait */
}

/* Send what twb holds: 0 when empty, -1 with errno. */
static int
tls_wflush(struct conn *c)
{
	ssize_t	n;

	while (c->twb_len > 0) {
		n = send(c->fd, c->twb + c->twb_off, c->twb_len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->twb_off += (size_t)n;
		c->twb_len -= (size_t)n;
	}
	c->twb_off = 0;
	return 0;
}

static ssize_t
tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct conn	*c = ptr;
	struct msghdr	 mh;
	size_t		 total = 0;
	ssize_t		 n;
	int		 i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (c->gather && c->twb_off + c->twb_len + total <= TLS_WB) {
		for (i = 0; i < iovcnt; i++) {
			memcpy(c->twb + c->twb_off + c->twb_len,
			    iov[i].iov_base, iov[i].iov_len);
			c->twb_len += iov[i].iov_len;
		}
		return (ssize_t)total;
	}
	/* Nothing may overtake what twb holds. */
	if (c->twb_len > 0 && (c->gather || tls_wflush(c) < 0)) {
		gnutls_transport_set_errno(c->sess, c->gather ? EAGAIN : errno);
		return -1;
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)(void *)iov;
	mh.msg_iovlen = (size_t)iovcnt;
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		gnutls_transport_set_errno(c->sess, errno);
	return n;
}

/* Whole records waiting in the read-ahead, or decrypted bytes. */
static int
tls_pending(struct conn *c)
{
	const uint8_t	*h;

	if (gnutls_record_check_pending(c->sess) > 0)
		return 1;
	if (c->trb_len < 5)
		return 0;
	h = c->trb + c->trb_off;
	return c->trb_len >= 5 + ((size_t)h[3] << 8 | h[4]);
}

/* Records of p go into twb (one call: as many as fit), then one send.
 * What was taken is sent even if the socket is full (conn_flush()). */
static ssize_t
conn_send(struct conn *c, const uint8_t *p, size_t len)
{
	size_t	done = 0;
	ssize_t	n = 0;

	if (c->sess == NULL)
		return write(c->fd, p, len);
	if (tls_wflush(c) < 0)
		return -1;
	if (c->twb == NULL && (c->twb = malloc(TLS_WB)) == NULL)
		return -1;
	c->gather = 1;
	while (done < len && c->twb_len + TLS_REC_MAX <= TLS_WB) {
		n = gnutls_record_send(c->sess, p + done,
		    len - done > TLS_REC ? TLS_REC : len - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	c->gather = 0;
	if (n < 0) {
		last_error = gnutls_strerror((int)n);
		errno = EPROTO;
		return -1;
	}
	if (tls_wflush(c) < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -1;
	return (ssize_t)done;
}

/* The text for a failed conn_recv or conn_send. */
static const char *
io_error(void)
{
	return errno == EPROTO ? last_error : strerror(errno);
}

/* Plaintext left inside GnuTLS: epoll will not report it. */
static void
pend_check(struct conn *c)
{
	if (c->sess == NULL || c->in_pend || c->fd == -1 ||
	    (c->state != S_HS_RECV && c->state != S_OPEN &&
	    c->state != S_CLOSING))
		return;
	if (npend < 2 * O.conns && tls_pending(c)) {
		c->in_pend = 1;
		pend[npend++] = c;
	}
}

static int
conn_out_reserve(struct conn *c, size_t need)
{
	uint8_t	*p;
	size_t	 cap;

	if (c->out_off > 0 && c->out_len > 0 && c->out_off + c->out_len +
	    need > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	} else if (c->out_len == 0)
		c->out_off = 0;
	if (c->out_off + c->out_len + need <= c->out_cap)
		return 0;
	cap = c->out_off + c->out_len + need;
	if (cap < 4096)
		cap = 4096;
	if ((p = realloc(c->out, cap)) == NULL)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

/* Queue one frame with the payload taken from the pattern (data) or from
 * p (control).  TCP mode: the raw payload only. */
static int
queue_frame(struct conn *c, int op, const uint8_t *p, size_t len)
{
	uint8_t		*h, key[4] = { 0, 0, 0, 0 };
	size_t		 hl = 0, i;
	uint32_t	 r;

	if (conn_out_reserve(c, len + 14) == -1)
		return -1;
	h = c->out + c->out_off + c->out_len;
	if (O.mode == M_TCP) {
		pat_copy_masked(h, c->seed, c->sent, len, key);
		c->sent += len;
		c->out_len += len;
		return 0;
	}
	h[hl++] = (uint8_t)(0x80 | op);
	if (len < 126)
		h[hl++] = (uint8_t)(0x80 | len);
	else if (len < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (uint8_t)(len >> 8);
		h[hl++] = (uint8_t)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			h[hl++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	if (!O.zero_mask) {
		r = (uint32_t)rng_next();
		memcpy(key, &r, 4);
	}
	memcpy(h + hl, key, 4);
	hl += 4;
	if (p == NULL) {
		pat_copy_masked(h + hl, c->seed, c->sent, len, key);
		c->sent += len;
	} else {
		for (i = 0; i < len; i++)
			h[hl + i] = p[i] ^ key[i & 3];
	}
	c->out_len += hl + len;
	return 0;
}

/* Write what is queued; -1 on a write error (the caller drops it). */
static int
conn_flush(struct conn *c)
{
	ssize_t	n;
	int	i;

	if (c->twb_len > 0 && tls_wflush(c) < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	for (i = 0; i < 16 && c->out_len > 0; i++) {
		n = conn_send(c, c->out + c->out_off, c->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		c->out_off += (size_t)n;
		c->out_len -= (size_t)n;
	}
	if (c->out_len == 0)
		c->out_off = 0;
	return 0;
}

static int
resolve(struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, O.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)O.port);
		*sl = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, O.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)O.port);
		*sl = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static struct sockaddr_storage	dst;
static socklen_t		dstlen;
static unsigned long		src_next;

/* Start a non-blocking connect.  With --src-spread K (IPv4 only), bind
 * to 127.0.0.(1 + i % K) first, port chosen at connect, so that K times
 * the ephemeral range is available. */
static int
conn_start(struct conn *c)
{
	struct epoll_event	ee;
	int			one = 1;

	c->fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		last_error = strerror(errno);
		ST.connect_err++;
		return -1;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (O.src_spread > 1 && dst.ss_family == AF_INET) {
		struct sockaddr_in	src;

		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000001U +
		    (uint32_t)(src_next++ % (unsigned long)O.src_spread));
		(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
		    &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
			conn_fail(c, &ST.connect_err, "bind");
			return -1;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&dst, dstlen) == -1 &&
	    errno != EINPROGRESS) {
		conn_fail(c, &ST.connect_err, strerror(errno));
		return -1;
	}
	memset(&ee, 0, sizeof(ee));
	ee.events = EPOLLOUT;
	ee.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ee) == -1) {
		conn_fail(c, &ST.connect_err, "epoll_ctl");
		return -1;
	}
	c->events = EPOLLOUT;
	c->state = S_CONNECTING;
	c->t_start = now();
	return 0;
}

/* ---- TLS ---- */

static int
tls_init(void)
{
	int	r;

	if ((r = gnutls_global_init()) < 0 ||
	    (r = gnutls_certificate_allocate_credentials(&xcred)) < 0)
		goto fail;
	if (O.insecure)
		return 0;
	if (O.ca != NULL)
		r = gnutls_certificate_set_x509_trust_file(xcred, O.ca,
		    GNUTLS_X509_FMT_PEM);
	else
		r = gnutls_certificate_set_x509_system_trust(xcred);
	if (r <= 0) {
		fprintf(stderr, "loadgen: no trusted certificate loaded from "
		    "%s\n", O.ca != NULL ? O.ca : "the system store");
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "loadgen: gnutls: %s\n", gnutls_strerror(r));
	return -1;
}

/* A fresh client session on c->fd. */
static int
tls_start(struct conn *c)
{
	gnutls_datum_t	alpn;
	int		r;

	if ((r = gnutls_init(&c->sess, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0) {
		c->sess = NULL;
		last_error = gnutls_strerror(r);
		return -1;
	}
	if ((r = gnutls_set_default_priority(c->sess)) < 0 ||
	    (r = gnutls_credentials_set(c->sess, GNUTLS_CRD_CERTIFICATE,
	    xcred)) < 0)
		goto fail;
	if (O.sni != NULL && (r = gnutls_server_name_set(c->sess,
	    GNUTLS_NAME_DNS, O.sni, strlen(O.sni))) < 0)
		goto fail;
	if (O.mode == M_WS) {
		alpn.data = (unsigned char *)(uintptr_t)"http/1.1";
		alpn.size = 8;
		if ((r = gnutls_alpn_set_protocols(c->sess, &alpn, 1, 0)) < 0)
			goto fail;
	}
	if (!O.insecure)
		gnutls_session_set_verify_cert(c->sess, O.sni, 0);
	gnutls_transport_set_ptr(c->sess, c);
	gnutls_transport_set_pull_function(c->sess, tls_pull);
	gnutls_transport_set_pull_timeout_function(c->sess, tls_pull_timeout);
	gnutls_transport_set_vec_push_function(c->sess, tls_push);
	return 0;
fail:
	last_error = gnutls_strerror(r);
	return -1;
}

/* One handshake step: 1 done, 0 in progress (epoll interest set as
 * GnuTLS wants it), -1 failed. */
static int
tls_step(struct conn *c)
{
	int		r;
	uint32_t	ev;

	r = gnutls_handshake(c->sess);
	if (r == GNUTLS_E_SUCCESS)
		return 1;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED ||
	    !gnutls_error_is_fatal(r)) {
		ev = gnutls_record_get_direction(c->sess) ? EPOLLOUT : EPOLLIN;
		set_events(c, ev);
		return 0;
	}
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
		last_error = "server certificate not trusted";
	else
		last_error = gnutls_strerror(r);
	return -1;
}

/* ---- WebSocket handshake ---- */

static int
hs_send(struct conn *c)
{
	static const char	guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t			raw[16], digest[20];
	char			key[25], cat[64], req[512], proto[128] = "";
	uint64_t		r;
	int			n;

	r = rng_next();
	memcpy(raw, &r, 8);
	r = rng_next();
	memcpy(raw + 8, &r, 8);
	base64(raw, 16, key);
	n = snprintf(cat, sizeof(cat), "%s%s", key, guid);
	sha1(cat, (size_t)n, digest);
	base64(digest, 20, c->accept);
	if (O.protocol != NULL)
		snprintf(proto, sizeof(proto), "Sec-WebSocket-Protocol: %s\r\n",
		    O.protocol);
	n = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\n"
	    "Host: %s:%d\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "%s\r\n", O.path, O.host, O.port, key, proto);
	if (n < 0 || (size_t)n >= sizeof(req) ||
	    conn_out_reserve(c, (size_t)n) == -1)
		return -1;
	memcpy(c->out + c->out_off + c->out_len, req, (size_t)n);
	c->out_len += (size_t)n;
	return conn_flush(c);
}

/* Check the collected response; returns the header length, 0 if more is
 * needed, -1 if it is not a valid 101 with the right accept value. */
static int
hs_check(struct conn *c)
{
	char	*end, *p, *line;
	size_t	 hlen;

	c->hs[c->hs_len] = '\0';
	if ((end = strstr(c->hs, "\r\n\r\n")) == NULL)
		return c->hs_len >= HS_MAX ? -1 : 0;
	hlen = (size_t)(end - c->hs) + 4;
	*end = '\0';
	if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
		last_error = "status is not 101";
		return -1;
	}
	for (line = c->hs; (p = strstr(line, "\r\n")) != NULL; ) {
		line = p + 2;
		if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
			p = line + 21;
			while (*p == ' ' || *p == '\t')
				p++;
			if (strncmp(p, c->accept, 28) == 0 &&
			    (p[28] == '\r' || p[28] == '\0' || p[28] == ' '))
				return (int)hlen;
			last_error = "wrong Sec-WebSocket-Accept";
			return -1;
		}
	}
	last_error = "no Sec-WebSocket-Accept";
	return -1;
}

/* ---- WebSocket frames from the server ---- */

static int
ws_control(struct conn *c)
{
	if (c->frame_op == 8) {
		c->close_rcvd = 1;
		if (!c->close_sent) {
			/* Echo the status code back, as RFC 6455 asks. */
			c->close_sent = 1;
			return queue_frame(c, 8, c->ctl,
			    c->ctl_len >= 2 ? 2 : 0);
		}
	} else if (c->frame_op == 9)
		return queue_frame(c, 10, c->ctl, c->ctl_len);
	return 0;
}

/* Feed bytes from the server; -1 on a protocol or integrity error. */
static int
ws_input(struct conn *c, const uint8_t *p, size_t n)
{
	size_t		k, i;
	uint64_t	len;
	int		op, b1;

	while (n > 0) {
		if (c->frame_left == 0 && c->hdr_need == 0) {
			/* Header: 2 bytes tell its full length. */
			c->hdr[c->hdr_len++] = *p++;
			n--;
			if (c->hdr_len < 2)
				continue;
			b1 = c->hdr[1];
			if (b1 & 0x80) {
				last_error = "masked server frame";
				return -1;
			}
			c->hdr_need = 2 + ((b1 & 0x7f) == 126 ? 2 :
			    (b1 & 0x7f) == 127 ? 8 : 0);
		} else if (c->hdr_need > 0 && c->hdr_len < c->hdr_need) {
			k = c->hdr_need - c->hdr_len;
			if (k > n)
				k = n;
			memcpy(c->hdr + c->hdr_len, p, k);
			c->hdr_len += k;
			p += k;
			n -= k;
		}
		if (c->hdr_need > 0 && c->hdr_len == c->hdr_need) {
			op = c->hdr[0] & 0x0f;
			len = c->hdr[1] & 0x7f;
			if (len == 126)
				len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
			else if (len == 127)
				for (len = 0, i = 2; i < 10; i++)
					len = len << 8 | c->hdr[i];
			if (c->hdr[0] & 0x70) {
				last_error = "RSV bits set";
				return -1;
			}
			c->frame_fin = (c->hdr[0] & 0x80) != 0;
			if (op >= 8) {
				if (!c->frame_fin || len > CTL_MAX || op > 10) {
					last_error = "bad control frame";
					return -1;
				}
			} else if (op == 0) {
				if (!c->in_frag) {
					last_error = "stray continuation";
					return -1;
				}
			} else if (op == 1 || op == 2) {
				if (c->in_frag) {
					last_error = "data frame inside a "
					    "fragmented message";
					return -1;
				}
			} else {
				last_error = "reserved opcode";
				return -1;
			}
			if (op < 8) {
				c->in_frag = !c->frame_fin;
				ST.frames++;
			}
			c->frame_op = op;
			c->frame_left = len;
			c->hdr_len = c->hdr_need = 0;
			c->ctl_len = 0;
			if (len == 0 && op >= 8 && ws_control(c) == -1)
				return -1;
			continue;
		}
		if (c->frame_left > 0 && n > 0) {
			k = n < c->frame_left ? n : (size_t)c->frame_left;
			if (c->frame_op >= 8) {
				memcpy(c->ctl + c->ctl_len, p, k);
				c->ctl_len += k;
			} else {
				if (c->rcvd + k > c->sent ||
				    memcmp(p, pat_at(c->seed, c->rcvd), k)) {
					last_error = "payload mismatch";
					ST.integrity_err++;
					return -1;
				}
				c->rcvd += k;
				ST.bytes += k;
			}
			c->frame_left -= k;
			p += k;
			n -= k;
			if (c->frame_left == 0 && c->frame_op >= 8 &&
			    ws_control(c) == -1)
				return -1;
		}
	}
	return 0;
}

static int
tcp_input(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->rcvd + n > c->sent || memcmp(p, pat_at(c->seed, c->rcvd), n)) {
		last_error = "payload mismatch";
		ST.integrity_err++;
		return -1;
	}
	c->rcvd += n;
	ST.bytes += n;
	return 0;
}

/* ---- the event loop ---- */

static double	t_end;		/* the workload's deadline */
static int	sending = 1;	/* bulk: keep queueing messages */

/* Queue what the workload wants next and set the epoll interest. */
static void
drive(struct conn *c)
{
	uint32_t	ev = EPOLLIN;
	int		batch;

	if (c->state == S_OPEN && O.work == W_HANDSHAKES &&
	    c->sent > 0 && c->rcvd == c->sent) {
		/* The echo is back: close (status 1000). */
		static const uint8_t	code[2] = { 0x03, 0xe8 };

		c->state = S_CLOSING;
		c->close_sent = 1;
		if (queue_frame(c, 8, code, 2) == -1) {
			conn_fail(c, &ST.proto_err, "malloc");
			return;
		}
	}
	if (c->state == S_OPEN && O.work == W_BULK && sending) {
		for (batch = 0; batch < 4 && c->out_len < 65536 &&
		    c->sent - c->rcvd + O.size <= O.window; batch++)
			if (queue_frame(c, 2, NULL, O.size) == -1)
				break;
	}
	if ((c->out_len > 0 || c->twb_len > 0) && conn_flush(c) == -1) {
		conn_fail(c, &ST.closed, "write failed");
		return;
	}
	if (c->out_len > 0 || c->twb_len > 0)
		ev |= EPOLLOUT;
	else if (O.work == W_IDLE && c->out != NULL) {
		/* Idle connections hold no output buffer. */
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	set_events(c, ev);
}

static void on_open(struct conn *c);

/* Data arrived on c; returns 1 if the connection just ended (EOF). */
static int
conn_input(struct conn *c)
{
	ssize_t	n;
	int	rounds, hl;

	/* TLS returns one record (16 KiB at most) per call. */
	for (rounds = 0; rounds < (c->sess != NULL ? 64 : 4); rounds++) {
		n = conn_recv(c, rbuf, sizeof(rbuf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (c->state == S_HS_RECV)
				conn_fail(c, &ST.hs_err, io_error());
			else
				conn_fail(c, &ST.closed, io_error());
			return 1;
		}
		if (n == 0) {
			if (c->state == S_CLOSING && c->close_rcvd) {
				c->state = S_DONE;
				return 1;
			}
			conn_fail(c, c->state == S_HS_RECV ? &ST.hs_err :
			    &ST.closed, "closed by the server");
			return 1;
		}
		if (c->state == S_HS_RECV) {
			size_t	k = (size_t)n;

			if (c->hs == NULL && (c->hs = malloc(HS_MAX + 1)) ==
			    NULL) {
				conn_fail(c, &ST.hs_err, "malloc");
				return 1;
			}
			if (k > HS_MAX - c->hs_len)
				k = HS_MAX - c->hs_len;
			memcpy(c->hs + c->hs_len, rbuf, k);
			c->hs_len += k;
			if ((hl = hs_check(c)) == 0)
				continue;
			if (hl < 0) {
				conn_fail(c, &ST.hs_err, last_error);
				return 1;
			}
			/* Frame bytes right after the header. */
			k = c->hs_len - (size_t)hl;
			free(c->hs);
			c->hs = NULL;
			c->hs_len = 0;
			c->state = S_OPEN;
			on_open(c);
			if (c->state == S_FREE)
				return 1;
			if (k > 0 && ws_input(c, rbuf + (size_t)n - k, k)) {
				conn_fail(c, &ST.proto_err, last_error);
				return 1;
			}
			continue;
		}
		if ((O.mode == M_WS ? ws_input(c, rbuf, (size_t)n) :
		    tcp_input(c, rbuf, (size_t)n)) == -1) {
			conn_fail(c, &ST.proto_err, last_error);
			return 1;
		}
		if (c->sess == NULL && (size_t)n < sizeof(rbuf))
			break;
	}
	return 0;
}

/* The transport (TCP, or TLS over it) is up: start the upgrade or the
 * workload; returns 1 when the connection ended. */
static int
transport_ready(struct conn *c)
{
	const char	*cipher;

	if (c->sess != NULL && tls_cipher[0] == '\0' && (cipher =
	    gnutls_cipher_get_name(gnutls_cipher_get(c->sess))) != NULL)
		tls_cipher = cipher;
	if (O.mode == M_WS) {
		c->state = S_HS_RECV;
		if (hs_send(c) == -1) {
			conn_fail(c, &ST.hs_err, "write failed");
			return 1;
		}
		set_events(c, EPOLLIN | (c->out_len || c->twb_len ?
		    EPOLLOUT : 0));
		return 0;
	}
	c->state = S_OPEN;
	on_open(c);
	if (c->state == S_FREE)
		return 1;
	drive(c);
	return c->state == S_FREE;
}

/* One epoll event; returns 1 when the connection ended. */
static int
conn_event(struct conn *c, uint32_t ev)
{
	int		err = 0, r;
	socklen_t	sl = sizeof(err);

	if (c->state == S_TLS_HS) {
		if ((r = tls_step(c)) == -1) {
			conn_fail(c, &ST.hs_err, last_error);
			return 1;
		}
		return r == 1 ? transport_ready(c) : 0;
	}
	if (c->state == S_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1 ||
		    err != 0) {
			conn_fail(c, &ST.connect_err, strerror(err ? err :
			    errno));
			return 1;
		}
		if (!(ev & EPOLLOUT))
			return 0;
		if (O.tls) {
			if (tls_start(c) == -1) {
				conn_fail(c, &ST.hs_err, last_error);
				return 1;
			}
			c->state = S_TLS_HS;
			return conn_event(c, ev);
		}
		return transport_ready(c);
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (conn_input(c))
			return 1;
	}
	drive(c);
	return c->state == S_FREE;
}
/* Run the loop until the deadline, or until done() says so. */
static void
run_loop(double deadline, int (*done)(void), void (*tick)(void))
{
	struct epoll_event	evs[MAX_EVENTS];
	int			n, i, ms;
	double			t;

	for (;;) {
		t = now();
		if (t >= deadline || got_term || (done != NULL && done()))
			return;
		ms = (int)((deadline - t) * 1000) + 1;
		if (ms > 100)
			ms = 100;
		if (npend > 0)
			ms = 0;		/* plaintext waits inside GnuTLS */
		n = epoll_wait(epfd, evs, MAX_EVENTS, ms);
		if (n < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			exit(1);
		}
		for (i = 0; i < n; i++) {
			struct conn	*c = evs[i].data.ptr;

			if (c->state == S_FREE || c->state == S_DONE ||
			    c->fd == -1)
				continue;
			if (!conn_event(c, evs[i].events))
				pend_check(c);
		}
		if (npend > 0) {
			int	np = npend;

			memcpy(pend_run, pend, (size_t)np * sizeof(*pend));
			npend = 0;
			for (i = 0; i < np; i++) {
				struct conn	*c = pend_run[i];

				if (!c->in_pend)
					continue;	/* reset since */
				c->in_pend = 0;
				if (c->fd != -1 && !conn_event(c, EPOLLIN))
					pend_check(c);
			}
		}
		if (tick != NULL)
			tick();
	}
}

/* ---- workloads ---- */

static int	n_open;		/* connections that reached S_OPEN */

static void
on_open(struct conn *c)
{
	n_open++;
	if (O.work == W_HANDSHAKES && queue_frame(c, 2, NULL, O.size) == -1)
		conn_fail(c, &ST.proto_err, "malloc");
}

static int
all_open(void)
{
	int	i, pending = 0;

	for (i = 0; i < O.conns; i++)
		if (conns[i].state == S_CONNECTING ||
		    conns[i].state == S_TLS_HS ||
		    conns[i].state == S_HS_RECV)
			pending++;
	return pending == 0;
}

static void
json_common(const char *workload, double elapsed)
{
	printf("{\"workload\":\"%s\",\"mode\":\"%s\",\"tls\":%s,"
	    "\"host\":\"%s\",\"port\":%d,\"conns\":%d,\"size\":%zu,\"zero_mask\":%s,"
	    "\"elapsed\":%.3f,\"connect_errors\":%llu,"
	    "\"handshake_errors\":%llu,\"protocol_errors\":%llu,"
	    "\"integrity_errors\":%llu,\"closed_by_server\":%llu,"
	    "\"timeouts\":%llu,\"frames\":%llu,\"last_error\":\"%s\","
	    "\"cipher\":\"%s\"",
	    workload, O.mode == M_WS ? "ws" : "tcp", O.tls ? "true" : "false",
	    O.host, O.port, O.conns,
	    O.size, O.zero_mask ? "true" : "false", elapsed,
	    (unsigned long long)ST.connect_err,
	    (unsigned long long)ST.hs_err, (unsigned long long)ST.proto_err,
	    (unsigned long long)ST.integrity_err,
	    (unsigned long long)ST.closed, (unsigned long long)ST.timeouts,
	    (unsigned long long)ST.frames, last_error,
	    tls_cipher);
}

static int
errors(void)
{
	return ST.connect_err + ST.hs_err + ST.proto_err + ST.integrity_err +
	    ST.closed + ST.timeouts > 0;
}

static int
open_all(double deadline)
{
	int	i;

	for (i = 0; i < O.conns; i++)
		if (conn_start(&conns[i]) == -1)
			return -1;
	run_loop(deadline, all_open, NULL);
	return n_open == O.conns ? 0 : -1;
}

static int
all_drained(void)
{
	int	i;

	for (i = 0; i < O.conns; i++)
		if (conns[i].state == S_OPEN && conns[i].rcvd < conns[i].sent)
			return 0;
	return 1;
}

static int
work_bulk(void)
{
	double		t0, t1, warm;
	uint64_t	b0, b1;
	int		i;

	if (open_all(now() + O.timeout) == -1) {
		json_common("bulk", 0);
		printf(",\"ok\":false,\"bytes_per_s\":0}\n");
		return 1;
	}
	warm = O.seconds / 10 < 0.5 ? O.seconds / 10 : 0.5;
	for (i = 0; i < O.conns; i++)
		drive(&conns[i]);
	run_loop(now() + warm, NULL, NULL);
	t0 = now();
	b0 = ST.bytes;
	run_loop(t0 + O.seconds, NULL, NULL);
	t1 = now();
	b1 = ST.bytes;
	/* Stop sending, take back what is in flight (integrity). */
	sending = 0;
	run_loop(now() + O.timeout, all_drained, NULL);
	for (i = 0; i < O.conns; i++)
		if (conns[i].state == S_OPEN &&
		    conns[i].rcvd < conns[i].sent) {
			ST.timeouts++;
			last_error = "echo not complete at the end";
		}
	json_common("bulk", t1 - t0);
	printf(",\"ok\":%s,\"bytes\":%llu,\"bytes_per_s\":%.0f,"
	    "\"window\":%zu}\n", errors() ? "false" : "true",
	    (unsigned long long)(b1 - b0), (double)(b1 - b0) / (t1 - t0),
	    O.window);
	return errors();
}

static struct conn	*pp;

static int
pp_done(void)
{
	return pp->state != S_OPEN || pp->rcvd == pp->sent;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
work_pingpong(void)
{
	double	*lat, t0, t, deadline;
	long	 i, n = 0, warm = 50;
	size_t	 k99;

	O.conns = 1;
	pp = &conns[0];
	if ((lat = calloc((size_t)O.count, sizeof(*lat))) == NULL)
		return 1;
	deadline = now() + O.seconds;
	if (open_all(now() + O.timeout) == -1) {
		json_common("pingpong", 0);
		printf(",\"ok\":false}\n");
		return 1;
	}
	t0 = now();
	for (i = 0; i < warm + O.count && now() < deadline; i++) {
		t = now();
		if (queue_frame(pp, 2, NULL, O.size) == -1)
			break;
		drive(pp);
		run_loop(deadline, pp_done, NULL);
		if (pp->state != S_OPEN || pp->rcvd != pp->sent)
			break;
		if (i >= warm)
			lat[n++] = (now() - t) * 1e6;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	k99 = n > 0 ? (size_t)((n * 99 + 99) / 100) - 1 : 0;
	json_common("pingpong", now() - t0);
	printf(",\"ok\":%s,\"round_trips\":%ld,\"p50_us\":%.1f,"
	    "\"p99_us\":%.1f,\"max_us\":%.1f}\n",
	    errors() || n == 0 ? "false" : "true", n,
	    n ? lat[n / 2] : 0.0, n ? lat[k99] : 0.0, n ? lat[n - 1] : 0.0);
	free(lat);
	return errors() || n == 0;
}

static double	last_tick;

/* Handshakes: count the finished, restart every free slot, time out the
 * slow ones. */
static void
hs_tick(void)
{
	double	t = now();
	int	i;

	for (i = 0; i < O.conns; i++) {
		struct conn	*c = &conns[i];

		if (c->state == S_DONE) {
			ST.done++;
			conn_reset(c);
		} else if (c->state != S_FREE && t - c->t_start > O.timeout) {
			ST.timeouts++;
			last_error = "handshake cycle timed out";
			conn_reset(c);
		}
		if (c->state == S_FREE && t < t_end)
			(void)conn_start(c);
	}
}

static int
work_handshakes(void)
{
	double	t0;

	t0 = now();
	t_end = t0 + O.seconds;
	hs_tick();
	run_loop(t_end, NULL, hs_tick);
	hs_tick();
	json_common("handshakes", O.seconds);
	printf(",\"ok\":%s,\"handshakes\":%llu,\"handshakes_per_s\":%.1f}\n",
	    ST.done > 0 && ST.hs_err + ST.proto_err + ST.integrity_err == 0 ?
	    "true" : "false", (unsigned long long)ST.done,
	    (double)ST.done / O.seconds);
	return ST.done == 0;
}

static int	idle_next;	/* next connection to start */
static int	idle_pending;	/* connecting or in the handshake */
static int	idle_stop;	/* stop opening: the client is out of fds */

static void
idle_tick(void)
{
	double	t = now();
	int	i;

	if (t - last_tick < 0.02 && idle_pending > 0)
		return;
	last_tick = t;
	idle_pending = 0;
	for (i = 0; i < idle_next; i++) {
		struct conn	*c = &conns[i];

		if (c->state != S_CONNECTING && c->state != S_TLS_HS &&
		    c->state != S_HS_RECV)
			continue;
		if (t - c->t_start > O.timeout) {
			ST.timeouts++;
			last_error = "open timed out";
			conn_reset(c);
			continue;
		}
		idle_pending++;
	}
	while (!idle_stop && idle_next < O.conns &&
	    idle_pending < O.concurrency) {
		if (conn_start(&conns[idle_next++]) == -1) {
			if (errno == EMFILE || errno == ENFILE)
				idle_stop = 1;
			continue;
		}
		idle_pending++;
	}
}

static int
idle_opened(void)
{
	return (idle_next >= O.conns || idle_stop) && idle_pending == 0;
}

static int
work_idle(void)
{
	double	t0, t1, t2;
	int	i, alive = 0;

	t0 = now();
	idle_tick();
	run_loop(t0 + O.seconds, idle_opened, idle_tick);
	t1 = now();
	printf("ready %d %d\n", n_open, O.conns - n_open);
	fflush(stdout);
	run_loop(t1 + O.hold, NULL, NULL);
	t2 = now();
	for (i = 0; i < O.conns; i++)
		if (conns[i].state == S_OPEN)
			alive++;
	json_common("idle", t2 - t1);
	printf(",\"ok\":%s,\"requested\":%d,\"established\":%d,"
	    "\"alive_at_end\":%d,\"open_seconds\":%.3f}\n",
	    n_open == O.conns && alive == n_open ? "true" : "false",
	    O.conns, n_open, alive, t1 - t0);
	return n_open == 0;
}

/* ---- main ---- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [--ws | --tcp] [-H HOST] -p PORT [-c CONNS] "
	    "[-s SIZE]\n"
	    "               [-t SECONDS] [-n COUNT] [-w WINDOW] "
	    "[--zero-mask]\n"
	    "               [--src-spread K] [--hold SECONDS] "
	    "[--timeout SECONDS]\n"
	    "               [--concurrency N] [--path PATH] "
	    "[--protocol NAME]\n"
	    "               [--tls [--sni NAME] [--ca FILE | --insecure]]\n"
	    "               bulk | pingpong | handshakes | idle\n");
	exit(2);
}

static long
num(const char *s, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || (*end != '\0' && *end != 'k' &&
	    *end != 'K' && *end != 'm' && *end != 'M'))
		usage();
	if (*end == 'k' || *end == 'K')
		v *= 1024;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024;
	if (v < lo || v > hi)
		usage();
	return v;
}

static double
secs(const char *s)
{
	char	*end;
	double	 v = strtod(s, &end);

	if (end == s || *end != '\0' || v <= 0 || v > 86400)
		usage();
	return v;
}

int
main(int argc, char *argv[])
{
	static const struct option	lo[] = {
		{ "ws", no_argument, NULL, 'W' },
		{ "tcp", no_argument, NULL, 'T' },
		{ "zero-mask", no_argument, NULL, 'Z' },
		{ "src-spread", required_argument, NULL, 'S' },
		{ "hold", required_argument, NULL, 'h' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "concurrency", required_argument, NULL, 'y' },
		{ "path", required_argument, NULL, 'P' },
		{ "protocol", required_argument, NULL, 'R' },
		{ "tls", no_argument, NULL, 'L' },
		{ "sni", required_argument, NULL, 'N' },
		{ "ca", required_argument, NULL, 'A' },
		{ "insecure", no_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 }
	};
	struct sigaction	sa;
	const char		*w;
	int			ch, i, maxfd, rc;
	uint64_t		seed;

	O.mode = M_WS;
	O.host = "127.0.0.1";
	O.conns = 1;
	O.size = 16384;
	O.seconds = 5;
	O.count = 1000;
	O.window = 1024 * 1024;
	O.src_spread = 1;
	O.hold = 600;
	O.timeout = 10;
	O.concurrency = 256;
	O.path = "/";
	while ((ch = getopt_long(argc, argv, "H:p:c:s:t:n:w:", lo, NULL)) !=
	    -1) {
		switch (ch) {
		case 'W': O.mode = M_WS; break;
		case 'T': O.mode = M_TCP; break;
		case 'Z': O.zero_mask = 1; break;
		case 'S': O.src_spread = (int)num(optarg, 1, 250); break;
		case 'h': O.hold = secs(optarg); break;
		case 'o': O.timeout = secs(optarg); break;
		case 'y': O.concurrency = (int)num(optarg, 1, 100000); break;
		case 'P': O.path = optarg; break;
		case 'R': O.protocol = optarg; break;
		case 'L': O.tls = 1; break;
		case 'N': O.sni = optarg; break;
		case 'A': O.ca = optarg; break;
		case 'I': O.insecure = 1; break;
		case 'H': O.host = optarg; break;
		case 'p': O.port = (int)num(optarg, 1, 65535); break;
		case 'c': O.conns = (int)num(optarg, 1, 1000000); break;
		case 's': O.size = (size_t)num(optarg, 1, 64 << 20); break;
		case 't': O.seconds = secs(optarg); break;
		case 'n': O.count = num(optarg, 1, 10000000); break;
		case 'w': O.window = (size_t)num(optarg, 1, 1L << 30); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || O.port == 0)
		usage();
	w = argv[optind];
	if (strcmp(w, "bulk") == 0)
		O.work = W_BULK;
	else if (strcmp(w, "pingpong") == 0)
		O.work = W_PINGPONG;
	else if (strcmp(w, "handshakes") == 0)
		O.work = W_HANDSHAKES;
	else if (strcmp(w, "idle") == 0)
		O.work = W_IDLE;
	else
		usage();
	if (O.work == W_HANDSHAKES && O.mode != M_WS)
		usage();
	if (O.window < O.size)
		O.window = O.size;
	if (O.work == W_HANDSHAKES && O.size > 125 * 1024)
		O.size = 64;
	if (O.work == W_IDLE && O.seconds == 5)
		O.seconds = 300;	/* the time allowed to open them all */
	if (resolve(&dst, &dstlen) == -1) {
		fprintf(stderr, "loadgen: %s: not a numeric address\n", O.host);
		return 2;
	}

	if ((O.sni != NULL || O.ca != NULL || O.insecure) && !O.tls)
		usage();
	if (O.tls && tls_init() == -1)
		return 2;

	maxfd = raise_nofile();
	if (O.work != W_IDLE && O.conns + 16 > maxfd) {
		fprintf(stderr, "loadgen: %d connections, fd limit %d\n",
		    O.conns, maxfd);
		return 2;
	}
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rng_state = seed | 1;
	pat_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("loadgen: epoll_create1");
		return 1;
	}
	if ((conns = calloc((size_t)O.conns, sizeof(*conns))) == NULL ||
	    (pend = calloc((size_t)O.conns * 2, sizeof(*pend))) == NULL ||
	    (pend_run = calloc((size_t)O.conns * 2, sizeof(*pend))) == NULL) {
		perror("loadgen: calloc");
		return 1;
	}
	for (i = 0; i < O.conns; i++) {
		conns[i].fd = -1;
		conns[i].idx = i;
		conns[i].seed = (uint32_t)(((uint64_t)i * 7919 + 1) % PATLEN);
	}

	switch (O.work) {
	case W_BULK: rc = work_bulk(); break;
	case W_PINGPONG: rc = work_pingpong(); break;
	case W_HANDSHAKES: rc = work_handshakes(); break;
	default: rc = work_idle(); break;
	}
	fflush(stdout);
	return rc;
}
