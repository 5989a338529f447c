/*
 * kcp-mux.c - the kcp-mux framing session (docs/KCP-MUX.md §5): the
 * server role of the mux over one WebSocket.  The payloads of the client's
 * binary messages, concatenated, are the mux byte channel; each stream the
 * client opens becomes a peer stream of the session host (the backend's
 * peer, or an allowed target named in the SYN).
 *
 * Backpressure, both ways, without unbounded memory:
 *   client -> peer: what peer_write does not take waits in the stream's
 *     down buffer and is not reported consumed, so the client's window
 *     closes; down is therefore bounded by the window.
 *   peer -> client: what mux_stream_send does not take (window closed, or
 *     the WebSocket is full) waits in the stream's up buffer and the peer
 *     is paused; up is bounded by one read of the host.
 *   mux output is coalesced into one buffer of OUT_CAP bytes; the mux is
 *     never given more room than that buffer has left.
 *   client bytes the mux cannot take yet (§7: no flow control, refusal
 *     queue full) wait in one buffer while client reads are paused.
 * A full WebSocket output does not pause client reads: what client input
 * makes the mux say is kept as flags (bounded), and a client that writes
 * before it reads would otherwise deadlock against us.
 *
 * Keepalive and the handshake timeout run on the session host's timer
 * (one armed at a time, for the mux's next deadline).
 *
 * Framing-config (space separated key=value):
 *   targets=tcp://127.0.0.1:*,tcp://[::1]:22   SYN URIs allowed (default
 *                            none: only the backend's peer)
 *   window=1048576           INITIAL_WINDOW_SIZE; 0 = no flow control
 *   max-streams=128          MAX_CONCURRENT_STREAMS
 *   max-frame=16384          MAX_FRAME_SIZE we accept
 *   keepalive=10 timeout=10  seconds (keepalive 0 = off)
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../plugins/websocksy_plugin.h"
#include "../core/mux.h"

#define OUT_CAP 65536           /* mux output coalesced per message */
#define MIN_MSG 256             /* smallest message tried when full */
#define IN_MAX (4 * 65536)      /* client bytes held while paused */
#define MAX_TARGETS 64
#define HOST_MAX 256

/* A byte buffer: data at p[off .. off+len), freed when it empties so an
 * idle stream holds no memory. */
struct bytes {
	uint8_t *p;
	size_t off, len, cap;
};

struct target {
	char scheme[8];
	char host[HOST_MAX];      /* "*" = any host */
	unsigned port;            /* 0 = any port */
};

/* Stream flags. */
enum {
	KS_OPEN = 1 << 0,         /* the peer is connected, stream accepted */
	KS_RFIN = 1 << 1,         /* the client's FIN arrived */
	KS_SHUT = 1 << 2,         /* peer_shutdown done */
	KS_PEOF = 1 << 3,         /* the peer's EOF arrived */
	KS_LFIN = 1 << 4,         /* our FIN is queued in the mux */
	KS_PAUSED = 1 << 5,       /* peer reads paused */
	KS_DEAD = 1 << 6,         /* unlinked, freed when the call unwinds */
};

struct kstream {
	struct kstream *mnext, *pnext;  /* hash chains by mux id, peer id */
	struct kstream *gnext;          /* the graveyard */
	uint32_t mid;
	uint64_t pid;
	unsigned fl;
	struct bytes down;              /* client -> peer, not taken yet */
	struct bytes up;                /* peer -> client, not taken yet */
};

struct kmux {
	const wsy_session_host *h;
	void *conn;
	mux_tunnel *t;
	mux_config mc;
	struct target targets[MAX_TARGETS];
	size_t ntargets;
	uint8_t *obuf;                  /* OUT_CAP bytes of mux output */
	size_t olen;
	struct bytes in;                /* client bytes the mux left */
	struct kstream **bym, **byp;    /* hash buckets */
	size_t mask;
	struct kstream *grave;
	size_t down_max;
	int depth;                      /* nesting of our entry points */
	int gone;                       /* on_close ran: no host calls */
	int in_paused;
	int tclosed, close_sent;
	char why[MUX_REASON_MAX];
	int timers;                     /* the host has timer_add */
	uint64_t timer_id, timer_at;    /* the armed mux_tick timer */
};

/* ---- byte buffers ---- */

static int bytes_put(struct bytes *b, const uint8_t *p, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (b->off && b->off + b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		for (cap = b->cap ? b->cap : 4096; cap < b->len + n; cap *= 2)
			;
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->off + b->len, p, n);
	b->len += n;
	return 0;
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void bytes_consume(struct bytes *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		bytes_free(b);
}

static const uint8_t *bytes_data(const struct bytes *b)
{
	return b->p + b->off;
}

/* ---- configuration ---- */

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || *v > max ? -1 : 0;
}

/*
 * Split "scheme://host:port" (host may be [v6]); "*" is a wildcard for the
 * host or the port when wild is set.  Nothing may follow the port: no
 * user info, path or query options reach peer_open from a SYN.
 */
static int parse_target(const char *s, int wild, struct target *t)
{
	const char *h, *hend, *colon;
	unsigned long port;
	size_t n;

	if ((h = strstr(s, "://")) == NULL || (size_t)(h - s) >=
	    sizeof(t->scheme) || h == s)
		return -1;
	memcpy(t->scheme, s, h - s);
	t->scheme[h - s] = '\0';
	h += 3;
	if (*h == '[') {
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		h++;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(h, ':')) == NULL)
			return -1;
		hend = colon;
	}
	n = hend - h;
	if (n == 0 || n >= sizeof(t->host) || memchr(h, '/', n) ||
	    memchr(h, '@', n) || memchr(h, '?', n))
		return -1;
	memcpy(t->host, h, n);
	t->host[n] = '\0';
	if (!wild && strcmp(t->host, "*") == 0)
		return -1;
	if (wild && strcmp(colon + 1, "*") == 0) {
		t->port = 0;
		return 0;
	}
	if (parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return -1;
	t->port = port;
	return 0;
}

static int parse_targets(struct kmux *k, const char *list)
{
	char item[HOST_MAX + 32];
	const char *p = list, *e;
	size_t n;

	while (*p) {
		e = strchr(p, ',');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n >= sizeof(item) || k->ntargets == MAX_TARGETS)
			return -1;
		memcpy(item, p, n);
		item[n] = '\0';
		if (n && parse_target(item, 1, &k->targets[k->ntargets++]) < 0)
			return -1;
		p += n + (e != NULL);
	}
	return 0;
}

static int target_allowed(const struct kmux *k, const char *uri)
{
	const struct target *a;
	struct target u;
	size_t i;

	if (parse_target(uri, 0, &u) < 0)
		return 0;
	for (i = 0; i < k->ntargets; i++) {
		a = &k->targets[i];
		if (strcasecmp(a->scheme, u.scheme) == 0 &&
		    (strcmp(a->host, "*") == 0 ||
		    strcasecmp(a->host, u.host) == 0) &&
		    (a->port == 0 || a->port == u.port))
			return 1;
	}
	return 0;
}

static int configure(struct kmux *k, const char *key, const char *val)
{
	unsigned long v;

	if (strcmp(key, "targets") == 0)
		return parse_targets(k, val);
	if (strcmp(key, "window") == 0 && parse_uint(val, MUX_MAX_WINDOW,
	    &v) == 0 && (v == 0 || v >= 1024))
		k->mc.window = v;
	else if (strcmp(key, "max-streams") == 0 &&
	    parse_uint(val, 65536, &v) == 0 && v > 0)
		k->mc.max_streams = v;
	else if (strcmp(key, "max-frame") == 0 &&
	    parse_uint(val, MUX_MAX_FRAME_LIMIT, &v) == 0 &&
	    v >= MUX_DEFAULT_FRAME)
		k->mc.max_frame = v;
	else if (strcmp(key, "keepalive") == 0 &&
	    parse_uint(val, 86400, &v) == 0)
		k->mc.keepalive_ms = v * 1000;
	else if (strcmp(key, "timeout") == 0 &&
	    parse_uint(val, 86400, &v) == 0 && v > 0)
		k->mc.timeout_ms = v * 1000;
	else
		return -1;
	return 0;
}

/* Space-separated key=value words. */
static int parse_config(struct kmux *k, const char *config)
{
	char word[4096], *eq;
	const char *p = config;
	size_t n;

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return 0;
		n = strcspn(p, " \t\r\n");
		if (n >= sizeof(word))
			return -1;
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if ((eq = strchr(word, '=')) == NULL)
			return -1;
		*eq = '\0';
		if (configure(k, word, eq + 1) < 0) {
			*eq = '=';
			k->h->log(k->conn, WSY_LOG_ERROR,
			    "kcp-mux: bad framing-config word \"%s\"", word);
			return -1;
		}
	}
}

/* ---- host calls: none once on_close has run (it may run inside one) ---- */

static int host_ws_send(struct kmux *k, const uint8_t *p, size_t n)
{
	return k->gone ? -1 : k->h->ws_send(k->conn, WSY_OP_BINARY, p, n);
}

static int64_t host_peer_write(struct kmux *k, uint64_t pid,
    const uint8_t *p, size_t n)
{
	return k->gone ? -1 : k->h->peer_write(k->conn, pid, p, n);
}

static void host_peer_pause(struct kmux *k, struct kstream *ks, int paused)
{
	if (k->gone || !!(ks->fl & KS_PAUSED) == paused)
		return;
	ks->fl ^= KS_PAUSED;
	k->h->peer_pause(k->conn, ks->pid, paused);
}

static void host_ws_pause(struct kmux *k, int paused)
{
	if (k->gone || k->in_paused == paused)
		return;
	k->in_paused = paused;
	k->h->ws_pause(k->conn, paused);
}

static void host_close(struct kmux *k, int code, const char *reason)
{
	if (k->gone || k->close_sent)
		return;
	k->close_sent = 1;
	k->h->close(k->conn, code, reason);
}

/* ---- the stream table ---- */

static size_t hmix(uint64_t v)
{
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 32);
}

static struct kstream *by_mid(const struct kmux *k, uint32_t mid)
{
	struct kstream *ks;

	for (ks = k->bym[hmix(mid) & k->mask]; ks; ks = ks->mnext)
		if (ks->mid == mid)
			return ks;
	return NULL;
}

static struct kstream *by_pid(const struct kmux *k, uint64_t pid)
{
	struct kstream *ks;

	for (ks = k->byp[hmix(pid) & k->mask]; ks; ks = ks->pnext)
		if (ks->pid == pid)
			return ks;
	return NULL;
}

static void link_stream(struct kmux *k, struct kstream *ks)
{
	struct kstream **m = &k->bym[hmix(ks->mid) & k->mask];
	struct kstream **p = &k->byp[hmix(ks->pid) & k->mask];

	ks->mnext = *m;
	*m = ks;
	ks->pnext = *p;
	*p = ks;
}

static void unlink_stream(struct kmux *k, struct kstream *ks)
{
	struct kstream **pp;

	for (pp = &k->bym[hmix(ks->mid) & k->mask]; *pp != ks;
	    pp = &(*pp)->mnext)
		;
	*pp = ks->mnext;
	for (pp = &k->byp[hmix(ks->pid) & k->mask]; *pp != ks;
	    pp = &(*pp)->pnext)
		;
	*pp = ks->pnext;
}

/* Free what died; only at the outermost return, when no caller up the
 * stack can still hold a stream pointer. */
static void bury(struct kmux *k)
{
	struct kstream *ks;

	while ((ks = k->grave) != NULL) {
		k->grave = ks->gnext;
		bytes_free(&ks->down);
		bytes_free(&ks->up);
		free(ks);
	}
}

/*
 * The stream is over: close the peer (unless the host closed it already),
 * reset the mux stream if it is still alive, forget both ids.
 */
static void kill_stream(struct kmux *k, struct kstream *ks, const char *why,
    int close_peer)
{
	if (ks->fl & KS_DEAD)
		return;
	ks->fl |= KS_DEAD;
	unlink_stream(k, ks);
	ks->gnext = k->grave;
	k->grave = ks;
	if (close_peer && !k->gone)
		k->h->peer_close(k->conn, ks->pid);
	mux_stream_reset(k->t, ks->mid, why);
	mux_stream_release(k->t, ks->mid);
}

/* A SYN we do not take: RST with the reason, forget the id. */
static void refuse(struct kmux *k, uint32_t mid, const char *why)
{
	mux_stream_reset(k->t, mid, why);
	mux_stream_release(k->t, mid);
}

/* Both directions ended with FINs: the stream is done. */
static void maybe_done(struct kmux *k, struct kstream *ks)
{
	if ((ks->fl & (KS_LFIN | KS_SHUT)) == (KS_LFIN | KS_SHUT))
		kill_stream(k, ks, "closed", 1);
}

/* The client's FIN reaches the peer once everything before it has. */
static void shut_peer(struct kmux *k, struct kstream *ks)
{
	if (!(ks->fl & KS_RFIN) || (ks->fl & (KS_SHUT | KS_DEAD)) ||
	    ks->down.len || k->gone)
		return;
	ks->fl |= KS_SHUT;
	/* May report a write error at once (on_peer_error, nested). */
	k->h->peer_shutdown(k->conn, ks->pid);
	if (!(ks->fl & KS_DEAD))
		maybe_done(k, ks);
}

/* The peer's EOF goes out as FIN once its data has. */
static void fin_client(struct kmux *k, struct kstream *ks)
{
	if (!(ks->fl & KS_PEOF) || (ks->fl & (KS_LFIN | KS_DEAD)) ||
	    ks->up.len)
		return;
	if (mux_stream_fin(k->t, ks->mid) < 0) {
		kill_stream(k, ks, "closed", 1);
		return;
	}
	ks->fl |= KS_LFIN;
	maybe_done(k, ks);
}

/* Client bytes to the peer, as far as it takes them; the rest waits and
 * stays unconsumed, so the client's window accounts for it. */
static void drain_down(struct kmux *k, struct kstream *ks)
{
	int64_t w;

	while (ks->down.len && !(ks->fl & KS_DEAD)) {
		w = host_peer_write(k, ks->pid, bytes_data(&ks->down),
		    ks->down.len);
		if (w < 0) {
			kill_stream(k, ks, "peer write failed", 1);
			return;
		}
		mux_stream_consumed(k->t, ks->mid, (size_t)w);
		bytes_consume(&ks->down, (size_t)w);
		if (ks->down.len)
			return;         /* on_peer_writable follows */
	}
	shut_peer(k, ks);
}

/* Peer bytes to the mux; what it does not take keeps the peer paused. */
static void drain_up(struct kmux *k, struct kstream *ks)
{
	ssize_t r;

	while (ks->up.len && !(ks->fl & KS_DEAD)) {
		r = mux_stream_send(k->t, ks->mid, bytes_data(&ks->up),
		    ks->up.len);
		if (r < 0) {
			kill_stream(k, ks, "closed", 1);
			return;
		}
		if (r == 0)
			return;         /* stream_writable follows */
		bytes_consume(&ks->up, (size_t)r);
	}
	if (ks->fl & KS_DEAD)
		return;
	host_peer_pause(k, ks, 0);
	fin_client(k, ks);
}

/* ---- mux callbacks ---- */

static void cb_output(void *arg, const uint8_t *p, size_t n)
{
	struct kmux *k = arg;

	/* The mux never writes more than the room we gave it. */
	if (n > OUT_CAP - k->olen)
		n = OUT_CAP - k->olen;
	memcpy(k->obuf + k->olen, p, n);
	k->olen += n;
}

static void cb_stream_open(void *arg, uint32_t mid, const char *uri)
{
	struct kmux *k = arg;
	struct kstream *ks;

	if (*uri && !target_allowed(k, uri)) {
		refuse(k, mid, "target not allowed");
		return;
	}
	if (k->gone || (ks = calloc(1, sizeof(*ks))) == NULL) {
		refuse(k, mid, "out of memory");
		return;
	}
	/* The result comes later through on_peer_open. */
	if ((ks->pid = k->h->peer_open(k->conn, *uri ? uri : NULL)) == 0) {
		free(ks);
		refuse(k, mid, "cannot open peer");
		return;
	}
	ks->mid = mid;
	link_stream(k, ks);
}

static void cb_stream_data(void *arg, uint32_t mid, const uint8_t *p,
    size_t n)
{
	struct kmux *k = arg;
	struct kstream *ks = by_mid(k, mid);
	int64_t w = 0;

	if (ks == NULL || !(ks->fl & KS_OPEN)) {
		mux_stream_consumed(k->t, mid, n);
		return;
	}
	if (ks->down.len == 0) {
		if ((w = host_peer_write(k, ks->pid, p, n)) < 0) {
			kill_stream(k, ks, "peer write failed", 1);
			return;
		}
		mux_stream_consumed(k->t, mid, (size_t)w);
	}
	if ((size_t)w == n)
		return;
	/* The window bounds this; more means a mux bug, not a peer's. */
	if (ks->down.len + n - w > k->down_max ||
	    bytes_put(&ks->down, p + w, n - w) < 0)
		kill_stream(k, ks, "buffer overflow", 1);
}

static void cb_stream_fin(void *arg, uint32_t mid)
{
	struct kmux *k = arg;
	struct kstream *ks = by_mid(k, mid);

	if (ks == NULL)
		return;
	ks->fl |= KS_RFIN;
	shut_peer(k, ks);
}

static void cb_stream_reset(void *arg, uint32_t mid, const char *reason)
{
	struct kmux *k = arg;
	struct kstream *ks = by_mid(k, mid);

	if (ks)
		kill_stream(k, ks, reason, 1);
}

static void cb_stream_writable(void *arg, uint32_t mid)
{
	struct kmux *k = arg;
	struct kstream *ks = by_mid(k, mid);

	if (ks)
		drain_up(k, ks);
}

static void cb_tunnel_closed(void *arg, const char *reason)
{
	struct kmux *k = arg;

	/* The close itself waits for kick(), after the GOAWAY went out. */
	k->tclosed = 1;
	snprintf(k->why, sizeof(k->why), "%s", reason);
}

/* ---- the WebSocket side ---- */

static uint64_t now_ms(const struct kmux *k)
{
	struct timespec ts;

	if (k->timers)
		return k->h->now_ms();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Send the coalesced output as binary messages.  A message the client's
 * buffer cannot take is retried in halves (the payloads are one byte
 * stream, so any cut is fine) down to MIN_MSG; then we wait for
 * on_ws_writable.  Returns the bytes sent.
 */
static size_t send_out(struct kmux *k)
{
	size_t off = 0, chunk = OUT_CAP, n;

	while (off < k->olen && !k->gone) {
		n = k->olen - off < chunk ? k->olen - off : chunk;
		if (host_ws_send(k, k->obuf + off, n) == 0) {
			off += n;
			continue;
		}
		if ((chunk = n / 2) < MIN_MSG)
			break;
	}
	if (off && off < k->olen)
		memmove(k->obuf, k->obuf + off, k->olen - off);
	k->olen -= off;
	return off;
}

/* Feed client bytes the mux left over; resume client reads once all are
 * taken.  Returns the bytes taken. */
static size_t retry_input(struct kmux *k)
{
	ssize_t r;

	if (k->in.len == 0)
		return 0;
	if ((r = mux_input(k->t, bytes_data(&k->in), k->in.len)) < 0) {
		bytes_free(&k->in);
		return 0;
	}
	bytes_consume(&k->in, (size_t)r);
	if (k->in.len == 0)
		host_ws_pause(k, 0);
	return (size_t)r;
}

static int close_code(const char *why)
{
	if (strcmp(why, "goaway") == 0)
		return 1000;
	if (strstr(why, "timeout") != NULL)
		return 1001;    /* keepalive or handshake: the client is gone */
	if (strcmp(why, "out of memory") == 0)
		return 1011;
	return 1002;
}

/*
 * Move everything that can move: held client bytes into the mux, output
 * to the client, room back to the mux (which wakes blocked streams, which
 * make more output).  Ends when a pass changes nothing.
 */
static void kick(struct kmux *k)
{
	size_t before, moved;

	while (!k->gone && !k->tclosed) {
		moved = retry_input(k);
		moved += send_out(k);
		before = k->olen;
		mux_set_room(k->t, OUT_CAP - k->olen);
		if (moved == 0 && k->olen == before)
			break;
	}
	if (k->tclosed && !k->gone && !k->close_sent) {
		/* Best effort for the GOAWAY: the close frame has the
		 * reason too, and a client that does not read must not
		 * keep the connection open. */
		send_out(k);
		host_close(k, close_code(k->why), k->why);
	}
}

static void destroy(struct kmux *k)
{
	struct kstream *ks;
	size_t i;

	for (i = 0; i <= k->mask; i++)
		while ((ks = k->bym[i]) != NULL) {
			k->bym[i] = ks->mnext;
			ks->gnext = k->grave;
			k->grave = ks;
		}
	bury(k);
	mux_tunnel_free(k->t);
	bytes_free(&k->in);
	free(k->bym);
	free(k->byp);
	free(k->obuf);
	free(k);
}

static void enter(struct kmux *k)
{
	k->depth++;
}

static void km_timer(void *arg);

/*
 * One timer for the mux's next deadline.  Activity only moves keepalive
 * deadlines later, so an armed timer that is early is kept (it fires,
 * ticks and re-arms) rather than cancelled and added again per event.
 */
static void arm(struct kmux *k, int ms)
{
	uint64_t at;

	if (ms < 0 || !k->timers || k->gone)
		return;
	at = now_ms(k) + (uint64_t)ms;
	if (k->timer_id && k->timer_at <= at)
		return;
	if (k->timer_id)
		k->h->timer_cancel(k->conn, k->timer_id);
	k->timer_id = k->h->timer_add(k->conn, (uint64_t)ms, km_timer, k);
	k->timer_at = at;
}

/* Leave an entry point: the outermost one runs the mux clock and moves
 * the output, frees what died, and frees everything after on_close. */
static void leave(struct kmux *k)
{
	int next;

	if (k->depth == 1 && !k->gone) {
		next = mux_tick(k->t, now_ms(k));
		kick(k);
		arm(k, next);
	}
	if (--k->depth > 0)
		return;
	bury(k);
	if (k->gone)
		destroy(k);
}

/* ---- session ops ---- */

static void *km_open(const wsy_session_host *h, void *conn,
    const char *config, const char *peer)
{
	mux_callbacks cb = {
		cb_output, cb_stream_open, cb_stream_data, cb_stream_fin,
		cb_stream_reset, cb_stream_writable, cb_tunnel_closed, NULL,
	};
	struct kmux *k;
	size_t nb;

	(void)peer;
	if (h->struct_size < offsetof(wsy_session_host, timer_add) ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->h = h;
	k->conn = conn;
	/* Without host timers (an older core) keepalive and timeouts are
	 * only checked when something happens. */
	k->timers = h->struct_size >= sizeof(wsy_session_host) &&
	    h->timer_add && h->timer_cancel && h->now_ms;
	mux_config_default(&k->mc, 1);
	if (parse_config(k, config ? config : "") < 0) {
		free(k);
		return NULL;
	}
	/* A stream holds at most a window of unconsumed bytes (the default
	 * one for 0-RTT data, §7) and one frame past it without flow
	 * control, where the mux checks between frames. */
	k->down_max = (k->mc.window > MUX_DEFAULT_WINDOW ? k->mc.window :
	    MUX_DEFAULT_WINDOW) + MUX_MAX_FRAME_LIMIT;
	for (nb = 16; nb < k->mc.max_streams; nb *= 2)
		;
	k->mask = nb - 1;
	cb.arg = k;
	k->bym = calloc(nb, sizeof(*k->bym));
	k->byp = calloc(nb, sizeof(*k->byp));
	k->obuf = malloc(OUT_CAP);
	if (k->bym == NULL || k->byp == NULL || k->obuf == NULL ||
	    (k->t = mux_tunnel_new(&k->mc, &cb, now_ms(k))) == NULL) {
		k->gone = 1;
		destroy(k);
		return NULL;
	}
	mux_set_room(k->t, OUT_CAP);
	/* The handshake timeout runs from now. */
	arm(k, mux_tick(k->t, now_ms(k)));
	h->log(conn, WSY_LOG_DEBUG, "kcp-mux: window %u, max-streams %u, "
	    "%zu targets", k->mc.window, k->mc.max_streams, k->ntargets);
	return k;
}

static void km_message(void *st, int opcode, const uint8_t *data,
    size_t len, int fin)
{
	struct kmux *k = st;
	ssize_t r = 0;

	(void)fin;
	enter(k);
	if (opcode != WSY_OP_BINARY) {
		host_close(k, 1003, "kcp-mux: binary messages only");
	} else if (!k->tclosed && len) {
		/* Behind held bytes, or what the mux leaves, waits. */
		if (k->in.len == 0 && (r = mux_input(k->t, data, len)) < 0)
			r = len;
		if ((size_t)r < len) {
			if (k->in.len + len - r > IN_MAX ||
			    bytes_put(&k->in, data + r, len - r) < 0)
				host_close(k, 1011, "kcp-mux: input overflow");
			else
				host_ws_pause(k, 1);
		}
	}
	leave(k);
}

static void km_ws_writable(void *st)
{
	struct kmux *k = st;

	enter(k);
	leave(k);       /* kick() does the work */
}

static void km_peer_open(void *st, uint64_t pid, int ok, const char *err)
{
	struct kmux *k = st;
	struct kstream *ks;

	enter(k);
	if ((ks = by_pid(k, pid)) != NULL) {
		if (!ok) {
			kill_stream(k, ks, err && *err ? err :
			    "connect failed", 0);
		} else {
			ks->fl |= KS_OPEN;
			/* 0-RTT data and a held FIN arrive from inside. */
			if (mux_stream_accept(k->t, ks->mid) < 0)
				kill_stream(k, ks, "closed", 1);
		}
	}
	leave(k);
}

static void km_peer_data(void *st, uint64_t pid, const uint8_t *data,
    size_t len)
{
	struct kmux *k = st;
	struct kstream *ks;
	ssize_t r = 0;

	enter(k);
	if ((ks = by_pid(k, pid)) == NULL)
		goto out;
	if (len == 0) {
		ks->fl |= KS_PEOF;
		fin_client(k, ks);
		goto out;
	}
	if (ks->up.len == 0 &&
	    (r = mux_stream_send(k->t, ks->mid, data, len)) < 0) {
		kill_stream(k, ks, "closed", 1);
		goto out;
	}
	if ((size_t)r < len) {
		/* One read of the host at most: we pause at once. */
		if (bytes_put(&ks->up, data + r, len - r) < 0)
			kill_stream(k, ks, "out of memory", 1);
		else
			host_peer_pause(k, ks, 1);
	}
out:
	leave(k);
}

static void km_peer_writable(void *st, uint64_t pid)
{
	struct kmux *k = st;
	struct kstream *ks;

	enter(k);
	if ((ks = by_pid(k, pid)) != NULL)
		drain_down(k, ks);
	leave(k);
}

static void km_peer_error(void *st, uint64_t pid, const char *err)
{
	struct kmux *k = st;
	struct kstream *ks;

	enter(k);
	/* The host closed the stream already. */
	if ((ks = by_pid(k, pid)) != NULL)
		kill_stream(k, ks, err && *err ? err : "peer error", 0);
	leave(k);
}

static void km_timer(void *arg)
{
	struct kmux *k = arg;

	k->timer_id = 0;
	enter(k);
	leave(k);       /* mux_tick, then re-arm */
}

static void km_close(void *st, int code)
{
	struct kmux *k = st;

	(void)code;
	/* The host closes the streams; we may be inside one of our own
	 * host calls (a failed ws_send), so the free waits for leave(). */
	k->gone = 1;
	if (k->depth == 0)
		destroy(k);
}

/* The server is going away: GOAWAY (no new streams), the open ones
 * finish; the mux reports the tunnel closed once they are all done and
 * kick() closes the session then. */
static void km_shutdown(void *st)
{
	struct kmux *k = st;

	enter(k);
	if (!k->tclosed)
		(void)mux_goaway(k->t, "server shutdown");
	leave(k);       /* kick() sends it */
}

static const wsy_session_ops session = {
	.struct_size = sizeof(wsy_session_ops),
	.open = km_open,
	.on_message = km_message,
	.on_ws_writable = km_ws_writable,
	.on_peer_open = km_peer_open,
	.on_peer_data = km_peer_data,
	.on_peer_writable = km_peer_writable,
	.on_peer_error = km_peer_error,
	.on_close = km_close,
	.on_shutdown = km_shutdown,
};

static const wsy_framing_ops ops = { .session = &session };

/* The only exported symbol: the .so is built with hidden visibility so
 * its copy of the mux never clashes with the core's. */
__attribute__((visibility("default")))
const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_FRAMING,
	.name = "kcp-mux",
	.ops_size = sizeof(ops),
	.ops = &ops,
};
