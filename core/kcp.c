/*
 * kcp.c - KCP ARQ (selective repeat with cumulative and per-segment ACKs).
 * Layer: bottom.  Written from the published segment format and algorithm
 * description, not from another implementation.
 *
 * Both in-flight and out-of-order segments live in rings indexed by their
 * distance from the window base (snd_una, rcv_nxt), so ACKs, duplicates
 * and reordering cost O(1) and the rings' sizes are the memory bound.
 * Sequence numbers and wire timestamps are u32 and always compared through
 * a signed 32-bit difference; internal timers use the caller's u64 clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kcp.h"

#define CMD_PUSH 81
#define CMD_ACK  82
#define CMD_WASK 83
#define CMD_WINS 84

#define ASK_SEND 1              /* send WASK at the next flush */
#define ASK_TELL 2              /* send WINS at the next flush */

#define RTO_INIT      200
#define RTO_MIN       100
#define RTO_MIN_FAST  30        /* with nodelay */
#define RTO_MAX       60000
#define PROBE_INIT    7000      /* first WASK after the peer's window shut */
#define PROBE_MAX     120000
#define FAST_LIMIT    5         /* fast resends stop after so many sends */
#define RMT_WND_INIT  32        /* kcp-go's default until the peer tells */
#define MAX_RX_SEG    1476      /* kcp-go reads 1500-byte datagrams */

typedef struct kseg {
	struct kseg *next;      /* send queue link */
	uint64_t resendts;      /* retransmit when now reaches this */
	uint32_t sn, ts, rto, fastack, xmit;
	uint32_t len, off, cap; /* off: bytes already read by kcp_recv */
	uint8_t frg;
	uint8_t data[];
} kseg;

typedef struct khdr {
	uint32_t conv;
	uint8_t cmd, frg;
	uint16_t wnd;
	uint32_t ts, sn, una, len;
} khdr;

typedef struct kack {
	uint32_t sn, ts;
} kack;

struct kcp {
	uint32_t conv, mtu, mss, max_rx;
	uint32_t snd_wnd, rcv_wnd, rmt_wnd, interval, resend;
	int nodelay, nocwnd, stream, flush_now;
	size_t sndbuf;
	kcp_output_fn output;
	void *arg;

	kseg *sq_head, *sq_tail;        /* not yet given an sn */
	size_t nsq;
	kseg **sb;                      /* in flight, slot of snd_una = sb_head */
	uint32_t sb_head, snd_una, snd_nxt;
	size_t nsb, snd_bytes;          /* snd_bytes: payload in sq and sb */

	kseg **rb;                      /* out of order, slot of rcv_nxt = rb_head */
	uint32_t rb_head, rcv_nxt;
	size_t nrb;
	kseg **rq;                      /* in order, waiting for kcp_recv */
	uint32_t rq_head;
	size_t nrq, rcv_bytes;

	kack *acks;
	size_t nack;

	uint32_t srtt, rttvar, rto, minrto;
	int rtt_seen;
	uint32_t cwnd, ssthresh, incr;  /* congestion window, when enabled */

	uint64_t last_flush, rto_next, ts_probe;
	uint32_t probe_wait;
	int flushed, probe, fast_pending;

	uint8_t *buf;                   /* datagram being assembled */
	size_t pos, mem;
	kcp_stat st;
};

static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static uint32_t clampu(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void hdr_encode(uint8_t *p, const khdr *h)
{
	put32(p, h->conv);
	p[4] = h->cmd;
	p[5] = h->frg;
	p[6] = h->wnd;
	p[7] = h->wnd >> 8;
	put32(p + 8, h->ts);
	put32(p + 12, h->sn);
	put32(p + 16, h->una);
	put32(p + 20, h->len);
}

static void hdr_decode(const uint8_t *p, khdr *h)
{
	h->conv = get32(p);
	h->cmd = p[4];
	h->frg = p[5];
	h->wnd = p[6] | p[7] << 8;
	h->ts = get32(p + 8);
	h->sn = get32(p + 12);
	h->una = get32(p + 16);
	h->len = get32(p + 20);
}

uint32_t kcp_conv_of(const uint8_t *dgram, size_t len)
{
	return len < KCP_OVERHEAD ? 0 : get32(dgram);
}

void kcp_opts_default(kcp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mtu = 1400;
	o->snd_wnd = 1024;
	o->rcv_wnd = 1024;
	o->interval = 10;
	o->resend = 2;
	o->nodelay = 1;
	o->nocwnd = 1;
	o->stream = 1;
}

static kseg *seg_new(kcp *k, uint32_t cap)
{
	kseg *s;

	if ((s = malloc(sizeof(*s) + cap)) == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	k->mem += sizeof(*s) + cap;
	return s;
}

static void seg_free(kcp *k, kseg *s)
{
	k->mem -= sizeof(*s) + s->cap;
	free(s);
}

static void kcp_setopts(kcp *k, const kcp_opts *o)
{
	k->mtu = clampu(o->mtu, 32, 65507);
	k->mss = k->mtu - KCP_OVERHEAD;
	k->max_rx = k->mss > MAX_RX_SEG ? k->mss : MAX_RX_SEG;
	k->snd_wnd = clampu(o->snd_wnd, 1, 65535);
	k->rcv_wnd = clampu(o->rcv_wnd, 1, 65535);
	k->interval = clampu(o->interval, 1, 5000);
	k->resend = o->resend;
	k->nodelay = o->nodelay != 0;
	k->flush_now = o->flush_now != 0;
	k->nocwnd = o->nocwnd != 0;
	k->stream = o->stream != 0;
	k->sndbuf = o->sndbuf ? o->sndbuf : (size_t)k->snd_wnd * k->mss;
	k->minrto = k->nodelay ? RTO_MIN_FAST : RTO_MIN;
}

kcp *kcp_new(uint32_t conv, const kcp_opts *o, kcp_output_fn output,
    void *arg)
{
	kcp_opts def;
	kcp *k;

	if (o == NULL) {
		kcp_opts_default(&def);
		o = &def;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	kcp_setopts(k, o);
	k->conv = conv;
	k->output = output;
	k->arg = arg;
	k->snd_una = k->snd_nxt = k->rcv_nxt = o->sn0;
	k->rmt_wnd = RMT_WND_INIT;
	k->rto = RTO_INIT;
	k->cwnd = 1;
	k->ssthresh = k->snd_wnd;
	k->sb = calloc(k->snd_wnd, sizeof(*k->sb));
	k->rb = calloc(k->rcv_wnd, sizeof(*k->rb));
	k->rq = calloc(k->rcv_wnd, sizeof(*k->rq));
	/* One ACK per in-window PUSH between flushes; a full list is sent
	 * early, so its size only sets how often that happens. */
	k->acks = calloc(k->rcv_wnd, sizeof(*k->acks));
	k->buf = malloc(k->mtu);
	if (!k->sb || !k->rb || !k->rq || !k->acks || !k->buf) {
		kcp_free(k);
		return NULL;
	}
	return k;
}

void kcp_free(kcp *k)
{
	kseg *s, *n;
	uint32_t i;

	if (k == NULL)
		return;
	for (s = k->sq_head; s; s = n) {
		n = s->next;
		seg_free(k, s);
	}
	for (i = 0; i < k->snd_wnd && k->sb; i++)
		if (k->sb[i])
			seg_free(k, k->sb[i]);
	for (i = 0; i < k->rcv_wnd && k->rb; i++)
		if (k->rb[i])
			seg_free(k, k->rb[i]);
	for (i = 0; i < k->rcv_wnd && k->rq; i++)
		if (k->rq[i])
			seg_free(k, k->rq[i]);
	free(k->sb);
	free(k->rb);
	free(k->rq);
	free(k->acks);
	free(k->buf);
	free(k);
}

/* Free receive-queue slots, the window we advertise. */
static uint16_t wnd_unused(const kcp *k)
{
	return k->nrq < k->rcv_wnd ? (uint16_t)(k->rcv_wnd - k->nrq) : 0;
}

/* Segments the send window lets be in flight. */
static uint32_t cwnd_of(const kcp *k)
{
	uint32_t w = k->snd_wnd < k->rmt_wnd ? k->snd_wnd : k->rmt_wnd;

	if (!k->nocwnd && k->cwnd < w)
		w = k->cwnd;
	return w;
}

/* ---- datagram assembly ---- */

static void out_flush(kcp *k)
{
	if (k->pos == 0)
		return;
	if (k->output(k->buf, k->pos, k->arg) < 0)
		k->st.out_err++;
	k->pos = 0;
}

/* Append one segment; a datagram never exceeds the MTU. */
static void out_seg(kcp *k, const khdr *h, const uint8_t *data)
{
	if (k->pos + KCP_OVERHEAD + h->len > k->mtu)
		out_flush(k);
	hdr_encode(k->buf + k->pos, h);
	if (h->len)
		memcpy(k->buf + k->pos + KCP_OVERHEAD, data, h->len);
	k->pos += KCP_OVERHEAD + h->len;
}

/* sn and ts stay 0 on WASK/WINS: receivers ignore them. */
static void hdr_init(const kcp *k, khdr *h, uint8_t cmd)
{
	memset(h, 0, sizeof(*h));
	h->conv = k->conv;
	h->cmd = cmd;
	h->wnd = wnd_unused(k);
	h->una = k->rcv_nxt;
}

static void flush_acks(kcp *k)
{
	khdr h;
	size_t i;

	hdr_init(k, &h, CMD_ACK);
	for (i = 0; i < k->nack; i++) {
		/* una already covers sn below rcv_nxt; keep the last one so
		 * a pure duplicate still gets an answer. */
		if (sdiff(k->acks[i].sn, k->rcv_nxt) < 0 && i + 1 < k->nack)
			continue;
		h.sn = k->acks[i].sn;
		h.ts = k->acks[i].ts;
		out_seg(k, &h, NULL);
	}
	k->nack = 0;
}

/* ---- send side: acknowledgements ---- */

static kseg **sb_slot(kcp *k, uint32_t sn)
{
	return &k->sb[(k->sb_head + (sn - k->snd_una)) % k->snd_wnd];
}

static int in_flight(const kcp *k, uint32_t sn)
{
	return sn - k->snd_una < k->snd_nxt - k->snd_una;
}

static void sb_release(kcp *k, kseg **slot)
{
	k->snd_bytes -= (*slot)->len;
	k->nsb--;
	seg_free(k, *slot);
	*slot = NULL;
}

/* Slide snd_una over slots already acked one by one. */
static void sb_advance(kcp *k)
{
	while (k->snd_una != k->snd_nxt && k->sb[k->sb_head] == NULL) {
		k->sb_head = (k->sb_head + 1) % k->snd_wnd;
		k->snd_una++;
	}
}

/* Cumulative ACK; an una outside (snd_una, snd_nxt] is stale or bogus. */
static void ack_una(kcp *k, uint32_t una)
{
	if (sdiff(una, k->snd_una) <= 0 || sdiff(una, k->snd_nxt) > 0)
		return;
	while (k->snd_una != una) {
		if (k->sb[k->sb_head])
			sb_release(k, &k->sb[k->sb_head]);
		k->sb_head = (k->sb_head + 1) % k->snd_wnd;
		k->snd_una++;
	}
	sb_advance(k);
}

/* Smoothed RTT and RTO in the manner of RFC 6298, with the flush interval
 * as the floor of the variance term. */
static void rtt_update(kcp *k, uint32_t rtt)
{
	uint32_t d, var4;

	if (rtt > RTO_MAX)
		rtt = RTO_MAX;
	if (!k->rtt_seen) {
		k->srtt = rtt;
		k->rttvar = rtt / 2;
		k->rtt_seen = 1;
	} else {
		d = rtt > k->srtt ? rtt - k->srtt : k->srtt - rtt;
		k->rttvar = (3 * k->rttvar + d) / 4;
		k->srtt = (7 * k->srtt + rtt) / 8;
		if (k->srtt < 1)
			k->srtt = 1;
	}
	var4 = 4 * k->rttvar;
	if (var4 < k->interval)
		var4 = k->interval;
	k->rto = clampu(k->srtt + var4, k->minrto, RTO_MAX);
}

/* Per-segment ACK.  ts echoes the acked transmission's own send time, so
 * every sample is a true RTT even for retransmissions. */
static int ack_one(kcp *k, uint32_t sn, uint32_t ts, uint32_t now32)
{
	kseg **slot;

	if (!in_flight(k, sn) || *(slot = sb_slot(k, sn)) == NULL)
		return 0;
	if (sdiff(now32, ts) >= 0)
		rtt_update(k, (uint32_t)sdiff(now32, ts));
	sb_release(k, slot);
	sb_advance(k);
	return 1;
}

/* Segments sent before the highest ACKed one were skipped once more. */
static void count_skips(kcp *k, uint32_t maxack)
{
	uint32_t sn;
	kseg *s;

	for (sn = k->snd_una; sdiff(sn, maxack) < 0; sn++) {
		if ((s = *sb_slot(k, sn)) == NULL)
			continue;
		s->fastack++;
		if (k->resend && s->fastack >= k->resend &&
		    s->xmit <= FAST_LIMIT)
			k->fast_pending = 1;
	}
}

/* Reno-like growth, once per datagram that moved snd_una. */
static void cc_grow(kcp *k)
{
	if (k->cwnd >= k->rmt_wnd || k->cwnd >= k->snd_wnd)
		return;
	if (k->cwnd < k->ssthresh)
		k->cwnd++;
	else if (++k->incr >= k->cwnd) {
		k->incr = 0;
		k->cwnd++;
	}
}

/* ---- receive side ---- */

static void ack_push(kcp *k, uint32_t sn, uint32_t ts)
{
	/* More PUSHes than a window between two flushes: answer now
	 * rather than drop ACKs or grow the list. */
	if (k->nack == k->rcv_wnd) {
		flush_acks(k);
		out_flush(k);
	}
	k->acks[k->nack].sn = sn;
	k->acks[k->nack].ts = ts;
	k->nack++;
}

static void rx_push(kcp *k, const khdr *h, const uint8_t *data)
{
	uint32_t off = h->sn - k->rcv_nxt;
	kseg **slot, *s;

	if (sdiff(h->sn, k->rcv_nxt) < 0) {
		/* Our ACK was lost: answer again, keep nothing. */
		ack_push(k, h->sn, h->ts);
		return;
	}
	if (off >= k->rcv_wnd)
		return;         /* beyond the window: dropped unanswered */
	slot = &k->rb[(k->rb_head + off) % k->rcv_wnd];
	if (*slot == NULL) {
		if ((s = seg_new(k, h->len)) == NULL)
			return; /* unanswered, so the peer sends it again */
		s->sn = h->sn;
		s->frg = h->frg;
		s->len = h->len;
		if (h->len)
			memcpy(s->data, data, h->len);
		*slot = s;
		k->nrb++;
	}
	ack_push(k, h->sn, h->ts);
}

/* Move the in-order run from the reordering ring to the receive queue;
 * rcv_nxt (our una) only counts what the queue has room for. */
static void rx_deliver(kcp *k)
{
	kseg *s;

	while (k->nrq < k->rcv_wnd && (s = k->rb[k->rb_head]) != NULL) {
		k->rb[k->rb_head] = NULL;
		k->rb_head = (k->rb_head + 1) % k->rcv_wnd;
		k->nrb--;
		k->rcv_nxt++;
		k->rq[(k->rq_head + k->nrq) % k->rcv_wnd] = s;
		k->nrq++;
		k->rcv_bytes += s->len;
	}
}

static void rq_pop(kcp *k)
{
	kseg *s = k->rq[k->rq_head];

	k->rcv_bytes -= s->len - s->off;
	k->rq[k->rq_head] = NULL;
	k->rq_head = (k->rq_head + 1) % k->rcv_wnd;
	k->nrq--;
	seg_free(k, s);
}

/* Whole datagram checked before anything is applied. */
static int dgram_check(const kcp *k, const uint8_t *p, size_t len)
{
	size_t off;
	khdr h;
	int n = 0;

	if (len < KCP_OVERHEAD)
		return -1;
	for (off = 0; off < len; off += KCP_OVERHEAD + h.len, n++) {
		if (len - off < KCP_OVERHEAD)
			return -1;
		hdr_decode(p + off, &h);
		if (h.conv != k->conv)
			return -2;
		if (h.cmd < CMD_PUSH || h.cmd > CMD_WINS)
			return -1;
		if (h.len > len - off - KCP_OVERHEAD)
			return -1;
		if (h.cmd == CMD_PUSH ? h.len > k->max_rx : h.len != 0)
			return -1;
	}
	return n;
}

int kcp_input(kcp *k, const uint8_t *p, size_t len, uint64_t now)
{
	uint32_t una0 = k->snd_una, maxack = 0;
	int n, have_max = 0;
	size_t off;
	khdr h;

	if ((n = dgram_check(k, p, len)) < 0)
		return n;
	for (off = 0; off < len; off += KCP_OVERHEAD + h.len) {
		hdr_decode(p + off, &h);
		k->rmt_wnd = h.wnd;
		/* An ACK's own una covers its sn: take the RTT sample from
		 * the per-segment ACK before applying una. */
		if (h.cmd == CMD_ACK && in_flight(k, h.sn)) {
			if (!have_max || sdiff(h.sn, maxack) > 0)
				maxack = h.sn;
			have_max = 1;
			ack_one(k, h.sn, h.ts, (uint32_t)now);
		}
		ack_una(k, h.una);
		switch (h.cmd) {
		case CMD_PUSH:
			rx_push(k, &h, p + off + KCP_OVERHEAD);
			break;
		case CMD_WASK:
			k->probe |= ASK_TELL;
			break;
		default:        /* ACK done above; WINS: only its wnd */
			break;
		}
	}
	if (have_max)
		count_skips(k, maxack);
	rx_deliver(k);
	if (!k->nocwnd && k->snd_una != una0)
		cc_grow(k);
	return n;
}

/* ---- flush ---- */

/* While the peer's window is shut and we have data, ask with back-off. */
static void probe_timer(kcp *k, uint64_t now)
{
	if (k->rmt_wnd != 0 || k->sq_head == NULL) {
		k->probe_wait = 0;
		return;
	}
	if (k->probe_wait == 0) {
		k->probe_wait = PROBE_INIT;
		k->ts_probe = now + PROBE_INIT;
		return;
	}
	if (now < k->ts_probe)
		return;
	k->probe |= ASK_SEND;
	k->st.probes++;
	k->probe_wait += k->probe_wait / 2;
	if (k->probe_wait > PROBE_MAX)
		k->probe_wait = PROBE_MAX;
	k->ts_probe = now + k->probe_wait;
}

static void flush_probes(kcp *k)
{
	khdr h;

	if (k->probe & ASK_SEND) {
		hdr_init(k, &h, CMD_WASK);
		out_seg(k, &h, NULL);
	}
	if (k->probe & ASK_TELL) {
		hdr_init(k, &h, CMD_WINS);
		out_seg(k, &h, NULL);
	}
	k->probe = 0;
}

/* Give queued segments an sn as far as the window allows. */
static void sq_to_sb(kcp *k)
{
	uint32_t cwnd = cwnd_of(k);
	kseg *s;

	while ((s = k->sq_head) != NULL && k->snd_nxt - k->snd_una < cwnd) {
		if ((k->sq_head = s->next) == NULL)
			k->sq_tail = NULL;
		k->nsq--;
		s->next = NULL;
		s->sn = k->snd_nxt++;
		s->xmit = 0;
		s->fastack = 0;
		*sb_slot(k, s->sn) = s;
		k->nsb++;
	}
}

static void send_push(kcp *k, kseg *s, uint64_t now)
{
	khdr h;

	s->xmit++;
	s->fastack = 0;
	s->ts = (uint32_t)now;
	s->resendts = now + s->rto;
	if (s->xmit > k->st.max_xmit)
		k->st.max_xmit = s->xmit;
	k->st.xmit++;
	hdr_init(k, &h, CMD_PUSH);
	h.frg = s->frg;
	h.ts = s->ts;
	h.sn = s->sn;
	h.len = s->len;
	out_seg(k, &h, s->data);
}

/* After a loss: halve on fast resend, restart from one on timeout. */
static void cc_loss(kcp *k, int lost, int fast)
{
	uint32_t inflight = k->snd_nxt - k->snd_una;

	if (fast) {
		k->ssthresh = inflight / 2 < 2 ? 2 : inflight / 2;
		k->cwnd = k->ssthresh + k->resend;
		k->incr = 0;
	}
	if (lost) {
		k->ssthresh = k->cwnd / 2 < 2 ? 2 : k->cwnd / 2;
		k->cwnd = 1;
		k->incr = 0;
	}
}

static void sb_transmit(kcp *k, uint64_t now)
{
	uint32_t sn;
	int lost = 0, fast = 0;
	kseg *s;

	k->rto_next = KCP_IDLE;
	for (sn = k->snd_una; sn != k->snd_nxt; sn++) {
		if ((s = *sb_slot(k, sn)) == NULL)
			continue;
		if (s->xmit == 0) {
			s->rto = k->rto;
			send_push(k, s, now);
		} else if (now >= s->resendts) {
			/* nodelay backs off by 1.5x instead of doubling */
			s->rto += k->nodelay ? s->rto / 2 : s->rto;
			if (s->rto > RTO_MAX)
				s->rto = RTO_MAX;
			lost = 1;
			k->st.retrans++;
			send_push(k, s, now);
		} else if (k->resend && s->fastack >= k->resend &&
		    s->xmit <= FAST_LIMIT) {
			fast = 1;
			k->st.fast_retrans++;
			send_push(k, s, now);
		}
		if (s->resendts < k->rto_next)
			k->rto_next = s->resendts;
	}
	if (!k->nocwnd && (lost || fast))
		cc_loss(k, lost, fast);
}

/* Order on the wire: ACKs, WASK, WINS, then PUSH (as the reference). */
void kcp_flush(kcp *k, uint64_t now)
{
	k->last_flush = now;
	k->flushed = 1;
	k->fast_pending = 0;
	flush_acks(k);
	probe_timer(k, now);
	flush_probes(k);
	sq_to_sb(k);
	sb_transmit(k, now);
	out_flush(k);
}

uint64_t kcp_next(const kcp *k, uint64_t now)
{
	uint64_t soon, t = KCP_IDLE;

	if (k->fast_pending)
		return now;
	/* Batch ACKs and small writes for at most one interval (or not at
	 * all: flush_now). */
	soon = k->flushed && !k->flush_now ? k->last_flush + k->interval :
	    now;
	if (soon < now)
		soon = now;
	if (k->nack || k->probe)
		return soon;
	if (k->sq_head) {
		if (k->rmt_wnd == 0)
			t = k->probe_wait ? k->ts_probe : soon;
		else if (k->snd_nxt - k->snd_una < cwnd_of(k))
			return soon;
	}
	if (k->nsb && k->rto_next < t)
		t = k->rto_next;
	return t;
}

/* ---- application side ---- */

size_t kcp_writable(const kcp *k)
{
	size_t room, segs, max;

	room = k->snd_bytes < k->sndbuf ? k->sndbuf - k->snd_bytes : 0;
	if (!k->stream) {
		/* Small messages cost a segment each: bound their count. */
		segs = k->nsq + k->nsb;
		max = k->sndbuf / k->mss + k->snd_wnd;
		max = segs < max ? max - segs : 0;
		if (room > max * k->mss)
			room = max * k->mss;
	}
	return room;
}

size_t kcp_unacked(const kcp *k)
{
	return k->snd_bytes;
}

static void sq_append(kcp *k, kseg *s)
{
	if (k->sq_tail)
		k->sq_tail->next = s;
	else
		k->sq_head = s;
	k->sq_tail = s;
	k->nsq++;
}

/* Stream mode tops up the last unsent segment, so segments are full. */
static ssize_t send_stream(kcp *k, const uint8_t *p, size_t n)
{
	size_t take, done = 0, c;
	kseg *s = k->sq_tail;

	take = kcp_writable(k);
	if (take > n)
		take = n;
	if (s && s->len < k->mss) {
		c = k->mss - s->len < take ? k->mss - s->len : take;
		memcpy(s->data + s->len, p, c);
		s->len += c;
		done = c;
	}
	while (done < take) {
		if ((s = seg_new(k, k->mss)) == NULL)
			break;
		c = take - done < k->mss ? take - done : k->mss;
		memcpy(s->data, p + done, c);
		s->len = c;
		sq_append(k, s);
		done += c;
	}
	k->snd_bytes += done;
	if (done == 0 && take > 0) {
		errno = ENOMEM;
		return -1;
	}
	return (ssize_t)done;
}

/* Message mode: frg counts the fragments still to come (N-1 .. 0). */
static ssize_t send_msg(kcp *k, const uint8_t *p, size_t n)
{
	size_t count, i, c;
	kseg *s, *head = NULL, **tail = &head;

	count = (n + k->mss - 1) / k->mss;
	if (n == 0 || count > 255 || n > k->sndbuf) {
		errno = EMSGSIZE;
		return -1;
	}
	if (n > kcp_writable(k))
		return 0;
	for (i = 0; i < count; i++) {
		c = n - i * k->mss < k->mss ? n - i * k->mss : k->mss;
		if ((s = seg_new(k, c)) == NULL) {
			for (; head; head = s) {
				s = head->next;
				seg_free(k, head);
			}
			errno = ENOMEM;
			return -1;
		}
		memcpy(s->data, p + i * k->mss, c);
		s->len = c;
		s->frg = count - 1 - i;
		*tail = s;
		tail = &s->next;
	}
	for (; head; head = s) {
		s = head->next;
		head->next = NULL;
		sq_append(k, head);
	}
	k->snd_bytes += n;
	return (ssize_t)n;
}

ssize_t kcp_send(kcp *k, const uint8_t *p, size_t n)
{
	return k->stream ? send_stream(k, p, n) : send_msg(k, p, n);
}

/* Size of the first complete message in the receive queue, segment count
 * in *nseg (0 if the message is not complete yet). */
static size_t msg_peek(const kcp *k, size_t *nseg)
{
	size_t i, size = 0;
	kseg *s;

	for (i = 0; i < k->nrq; i++) {
		s = k->rq[(k->rq_head + i) % k->rcv_wnd];
		size += s->len;
		if (s->frg == 0) {
			*nseg = i + 1;
			return size;
		}
	}
	*nseg = 0;
	return 0;
}

size_t kcp_readable(const kcp *k)
{
	size_t nseg;

	return k->stream ? k->rcv_bytes : msg_peek(k, &nseg);
}

static size_t recv_stream(kcp *k, uint8_t *p, size_t n)
{
	size_t done = 0, c;
	kseg *s;

	while (k->nrq) {
		s = k->rq[k->rq_head];
		c = s->len - s->off < n - done ? s->len - s->off : n - done;
		if (c) {
			memcpy(p + done, s->data + s->off, c);
			s->off += c;
			k->rcv_bytes -= c;
			done += c;
		}
		if (s->off < s->len)
			break;
		rq_pop(k);
	}
	return done;
}

static ssize_t recv_msg(kcp *k, uint8_t *p, size_t n)
{
	size_t size, nseg, done = 0;
	kseg *s;

	size = msg_peek(k, &nseg);
	if (nseg == 0)
		return 0;
	if (size > n) {
		errno = EMSGSIZE;
		return -1;
	}
	while (nseg--) {
		s = k->rq[k->rq_head];
		memcpy(p + done, s->data, s->len);
		done += s->len;
		rq_pop(k);
	}
	return (ssize_t)done;
}

ssize_t kcp_recv(kcp *k, uint8_t *p, size_t n)
{
	int was_full = k->nrq >= k->rcv_wnd;
	ssize_t r;

	r = k->stream ? (ssize_t)recv_stream(k, p, n) : recv_msg(k, p, n);
	rx_deliver(k);
	/* The peer stopped sending on our zero window: tell it at once
	 * that there is room again instead of waiting for its probe. */
	if (was_full && k->nrq < k->rcv_wnd)
		k->probe |= ASK_TELL;
	return r;
}

void kcp_stats(const kcp *k, kcp_stat *st)
{
	*st = k->st;
	st->srtt = k->srtt;
	st->rttvar = k->rttvar;
	st->rto = k->rto;
	st->rmt_wnd = k->rmt_wnd;
	st->snd_queue = k->nsq;
	st->snd_buf = k->nsb;
	st->rcv_buf = k->nrb;
	st->rcv_queue = k->nrq;
	st->mem = k->mem;
}
