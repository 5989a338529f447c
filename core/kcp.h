/*
 * kcp.h - KCP ARQ over datagrams, wire-compatible with the reference segment
 * layout (KCP-MUX.md §6).  Layer: bottom; no I/O, no clock, no loop calls.
 *
 * The caller owns time and sockets: every entry point that needs the clock
 * takes `now` (monotonic milliseconds), datagrams leave through the output
 * callback (from kcp_flush, and from kcp_input when the ACK list is full),
 * and kcp_next() says when kcp_flush() must run again.  Memory is bounded by
 * the windows: at most rcv_wnd out-of-order plus rcv_wnd in-order segments
 * on the receive side, sndbuf bytes on the send side.
 */
#ifndef WSY_KCP_H
#define WSY_KCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KCP_OVERHEAD 24         /* segment header bytes */
#define KCP_IDLE     UINT64_MAX /* kcp_next(): nothing pending */

typedef struct kcp kcp;

typedef struct kcp_opts {
	unsigned mtu;        /* datagram budget in bytes (1400; 32..65507) */
	unsigned snd_wnd;    /* send window, segments (1024; 1..65535) */
	unsigned rcv_wnd;    /* receive window, segments (1024; 1..65535) */
	unsigned interval;   /* ms between batched flushes (10; 1..5000) */
	unsigned resend;     /* fast resend after this many skips, 0 off (2) */
	int nodelay;         /* 1: min RTO 30 ms, 1.5x backoff (1) */
	int nocwnd;          /* 1: no congestion window (1) */
	int stream;          /* 1: byte stream, frg always 0 (1) */
	size_t sndbuf;       /* bytes accepted but not yet acked (snd_wnd*mss) */
	uint32_t sn0;        /* first sn; tests only, both ends must agree (0) */
	int flush_now;       /* 1: ACKs and new data leave at once (kcp_next
	                      * returns now) instead of batched for up to an
	                      * interval: the caller's timer then runs after
	                      * the current I/O pass, which still batches what
	                      * that pass produced (0) */
} kcp_opts;

typedef struct kcp_stat {
	uint32_t srtt, rttvar, rto;     /* ms */
	uint32_t rmt_wnd;               /* peer's last advertised window */
	size_t snd_queue, snd_buf;      /* segments waiting / in flight */
	size_t rcv_buf, rcv_queue;      /* segments out of order / in order */
	size_t mem;                     /* heap bytes held by segments */
	uint64_t xmit, retrans, fast_retrans, probes, out_err;
	uint32_t max_xmit;              /* most sends of one segment (dead link) */
} kcp_stat;

typedef int (*kcp_output_fn)(const uint8_t *dgram, size_t len, void *arg);

void kcp_opts_default(kcp_opts *o);

/* o NULL = defaults; out-of-range fields are clamped.  NULL on ENOMEM. */
kcp *kcp_new(uint32_t conv, const kcp_opts *o, kcp_output_fn output,
    void *arg);
void kcp_free(kcp *k);

/* Conversation id of a datagram, 0 if shorter than a header. */
uint32_t kcp_conv_of(const uint8_t *dgram, size_t len);

/* Feed one datagram.  Returns the number of segments, -1 if malformed
 * (short header, len past the end, unknown cmd, trailing bytes, oversized
 * PUSH), -2 if a segment has another conv.  Nothing is applied on error. */
int kcp_input(kcp *k, const uint8_t *dgram, size_t len, uint64_t now);

/* Stream mode: queue up to n bytes, returns how many were taken (0 when
 * the buffer is full: backpressure).  Message mode: all or nothing (0),
 * -1 with EMSGSIZE if n is 0, exceeds sndbuf or needs over 255 fragments
 * (the peer must have that many free receive slots, or it never gets it).
 * -1 with ENOMEM if nothing could be queued. */
ssize_t kcp_send(kcp *k, const uint8_t *p, size_t n);

/* Stream mode: up to n in-order bytes (0 if none).  Message mode: one whole
 * message, -1 with EMSGSIZE if it does not fit in n, 0 if none ready. */
ssize_t kcp_recv(kcp *k, uint8_t *p, size_t n);

size_t kcp_readable(const kcp *k); /* stream: bytes; message: next size */
size_t kcp_writable(const kcp *k); /* bytes kcp_send would take now */
size_t kcp_unacked(const kcp *k);  /* bytes sent or queued, not acked */

/* Send ACKs, window probe/answer, new data within the window and due
 * retransmissions (timeout or fast resend). */
void kcp_flush(kcp *k, uint64_t now);

/* When kcp_flush() must run next: <= now means now, KCP_IDLE never. */
uint64_t kcp_next(const kcp *k, uint64_t now);

void kcp_stats(const kcp *k, kcp_stat *st);

#endif
