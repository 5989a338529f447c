/*
 * mux.c - KCP-mux frames and tunnel state machine.  Layer: protocol.
 *
 * Everything the tunnel must say is either written at once (when the
 * caller's reported room allows) or recorded as a pending flag on the
 * tunnel or the stream and written by flush() when room comes back.  Flags
 * coalesce, so a peer that floods PINGs or a caller that never drains its
 * output cannot make the tunnel hold more than a fixed amount of state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mux.h"

/* ---- frame codec ---- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void mux_put_header(uint8_t *out, size_t len, int type, int flags,
    uint32_t stream)
{
	out[0] = len >> 16;
	out[1] = len >> 8;
	out[2] = len;
	out[3] = type;
	out[4] = flags;
	put32(out + 5, stream & 0x7fffffffu);
}

size_t mux_encode(uint8_t *out, size_t cap, int type, int flags,
    uint32_t stream, const void *payload, size_t len)
{
	if (len > MUX_MAX_FRAME_LIMIT || cap < MUX_HDR_LEN + len)
		return 0;
	mux_put_header(out, len, type, flags, stream);
	if (len)
		memcpy(out + MUX_HDR_LEN, payload, len);
	return MUX_HDR_LEN + len;
}

void mux_decoder_init(mux_decoder *d, uint32_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
}

void mux_decoder_free(mux_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
}

int mux_decoder_idle(const mux_decoder *d)
{
	return d->hdr_have == 0;
}

static void frame_out(mux_decoder *d, mux_frame *f, const uint8_t *payload)
{
	f->type = d->hdr[3];
	f->flags = d->hdr[4];
	/* The top bit is reserved: ignored on receipt (RFC 9113 §4.1). */
	f->stream = get32(d->hdr + 5) & 0x7fffffffu;
	f->payload = payload;
	f->len = d->plen;
	d->hdr_have = 0;
	d->have = 0;
}

ssize_t mux_decode(mux_decoder *d, const uint8_t *in, size_t len,
    mux_frame *f)
{
	size_t off = 0, n;

	f->type = -1;
	if (d->err)
		return -1;
	if (d->hdr_have < MUX_HDR_LEN) {
		n = MUX_HDR_LEN - d->hdr_have;
		if (n > len)
			n = len;
		memcpy(d->hdr + d->hdr_have, in, n);
		d->hdr_have += n;
		off = n;
		if (d->hdr_have < MUX_HDR_LEN)
			return off;
		/* Check the length before waiting for the payload. */
		d->plen = (size_t)d->hdr[0] << 16 | d->hdr[1] << 8 | d->hdr[2];
		if (d->plen > d->max_frame) {
			d->err = MUX_E_FRAME_SIZE;
			return -1;
		}
		d->have = 0;
		/* Whole payload in the input: hand it out without a copy. */
		if (len - off >= d->plen) {
			frame_out(d, f, in + off);
			return off + f->len;
		}
	}
	if (d->buf == NULL && (d->buf = malloc(d->max_frame ?
	    d->max_frame : 1)) == NULL) {
		d->err = MUX_E_INTERNAL;
		return -1;
	}
	n = d->plen - d->have;
	if (n > len - off)
		n = len - off;
	memcpy(d->buf + d->have, in + off, n);
	d->have += n;
	off += n;
	if (d->have == d->plen)
		frame_out(d, f, d->buf);
	return off;
}

/* ---- tunnel ---- */

/* Stream flag bits: what happened and what still has to be sent. */
enum {
	SF_EST = 1 << 0,        /* SYN-ACK received (client) / SYN (server) */
	SF_ACCEPTED = 1 << 1,   /* server: the caller connected the peer */
	SF_LFIN = 1 << 2,       /* we ended our direction */
	SF_RFIN = 1 << 3,       /* the peer ended its direction */
	SF_DEAD = 1 << 4,
	SF_LRST = 1 << 5,       /* we reset it: late DATA is ignored */
	SF_RFIN_HELD = 1 << 6,  /* FIN arrived before accept */
	SF_BLOCKED = 1 << 7,    /* a send was cut short: wake when possible */
	SF_RELEASED = 1 << 8,   /* forgotten once pending frames are out */
	/* pending frames */
	SF_P_SYN = 1 << 9,
	SF_P_SYNACK = 1 << 10,
	SF_P_FIN = 1 << 11,
	SF_P_RST = 1 << 12,
	SF_P_WU = 1 << 13,
	SF_FULL = 1 << 14,      /* no flow control and a window's worth held */
};
#define SF_PENDING (SF_P_SYN | SF_P_SYNACK | SF_P_FIN | SF_P_RST | SF_P_WU)

typedef struct mux_stream {
	uint32_t id;              /* 0: free slot */
	uint32_t flags;
	int64_t send_win;         /* bytes we may still send */
	int64_t recv_credit;      /* bytes the peer may still send */
	uint32_t recv_done;       /* consumed, not yet announced */
	size_t unconsumed;        /* delivered, not yet consumed */
	uint8_t *hold;            /* client: pending SYN URI; server: 0-RTT */
	size_t hold_len, hold_cap;
	char reason[MUX_REASON_MAX];
} mux_stream;

/* Tunnel pending bits. */
enum { TP_SETTINGS = 1, TP_PINGACK = 2, TP_PING = 4, TP_GOAWAY = 8 };

#define REFUSE_MAX 16

struct mux_tunnel {
	mux_config cfg;
	mux_callbacks cb;
	int state;
	int closing;              /* tunnel_close() is running */
	int draining;             /* GOAWAY sent or received */
	int goaway_sent;
	size_t room;
	mux_decoder dec;

	/* settings */
	int peer_settings;        /* the peer's first SETTINGS arrived */
	int peer_fc;              /* ... and it was not empty */
	int settings_acked;       /* the peer acknowledged ours */
	uint32_t acks_owed;       /* SETTINGS ACKs to send */
	uint32_t peer_window;     /* the peer's INITIAL_WINDOW_SIZE */
	uint32_t peer_frame;      /* the largest frame we may send */
	uint32_t peer_streams;    /* streams the peer lets us open */

	/* streams */
	mux_stream *slots;
	uint32_t nslots, nused, nactive, npending, nblocked, nfull;
	uint32_t *index;          /* open addressing: slot + 1, 0 empty */
	uint32_t index_mask;
	uint32_t next_id;         /* client: next odd id */
	uint32_t last_peer_id;    /* server: highest SYN seen */
	uint32_t wake_from;       /* round robin start for stream_writable */
	uint32_t refused[REFUSE_MAX];
	const char *refused_why[REFUSE_MAX];
	uint32_t nrefused;

	/* tunnel-level pending frames */
	unsigned pending;
	uint8_t ping_ack[8];
	uint8_t ping_data[8];
	uint32_t goaway_code;
	char goaway_reason[MUX_REASON_MAX];

	/* time */
	uint64_t now, last_rx, ping_at, created;
	int ping_out;
};

static void flush(mux_tunnel *t);
static void tunnel_close(mux_tunnel *t, uint32_t code, const char *reason,
    int goaway);

static void copy_reason(char *dst, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= MUX_REASON_MAX)
		n = MUX_REASON_MAX - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static uint32_t hash_id(uint32_t id)
{
	return id * 2654435761u;
}

static mux_stream *find(const mux_tunnel *t, uint32_t id)
{
	uint32_t i, s;

	if (id == 0)
		return NULL;
	for (i = hash_id(id) & t->index_mask; (s = t->index[i]) != 0;
	    i = (i + 1) & t->index_mask)
		if (t->slots[s - 1].id == id)
			return &t->slots[s - 1];
	return NULL;
}

static mux_stream *stream_alloc(mux_tunnel *t, uint32_t id)
{
	uint32_t i, s;

	if (t->nused == t->nslots)
		return NULL;
	for (s = 0; t->slots[s].id != 0; s++)
		;
	memset(&t->slots[s], 0, sizeof(t->slots[s]));
	t->slots[s].id = id;
	for (i = hash_id(id) & t->index_mask; t->index[i] != 0;
	    i = (i + 1) & t->index_mask)
		;
	t->index[i] = s + 1;
	t->nused++;
	t->nactive++;
	return &t->slots[s];
}

/* Linear probing deletion by backward shift: no tombstones to pile up. */
static void index_remove(mux_tunnel *t, uint32_t id)
{
	uint32_t i, j, k, m = t->index_mask;

	for (i = hash_id(id) & m; t->slots[t->index[i] - 1].id != id;
	    i = (i + 1) & m)
		;
	for (j = (i + 1) & m; t->index[j] != 0; j = (j + 1) & m) {
		k = hash_id(t->slots[t->index[j] - 1].id) & m;
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->index[i] = t->index[j];
		i = j;
	}
	t->index[i] = 0;
}

/* Update flags and the counters that mirror them. */
static void sflags(mux_tunnel *t, mux_stream *s, uint32_t set, uint32_t clr)
{
	uint32_t o = s->flags, n = (o | set) & ~clr;

	s->flags = n;
	t->npending += !!(n & SF_PENDING) - !!(o & SF_PENDING);
	t->nblocked += !!(n & SF_BLOCKED) - !!(o & SF_BLOCKED);
	t->nactive -= !!(n & SF_DEAD) - !!(o & SF_DEAD);
	t->nfull += !!(n & SF_FULL) - !!(o & SF_FULL);
}

static void stream_free(mux_tunnel *t, mux_stream *s)
{
	sflags(t, s, SF_DEAD, SF_PENDING | SF_BLOCKED | SF_FULL);
	free(s->hold);
	index_remove(t, s->id);
	memset(s, 0, sizeof(*s));
	t->nused--;
}

/* Both sides do per-stream flow control (or the peer's answer is still
 * unknown: then assume it does, which only ever sends less). */
static int fc_on(const mux_tunnel *t)
{
	return t->cfg.window != 0 && (!t->peer_settings || t->peer_fc);
}

static int64_t send_avail(const mux_tunnel *t, const mux_stream *s)
{
	return fc_on(t) ? s->send_win : INT64_MAX;
}

/*
 * One frame out, whole or not at all.  Small frames go out in one output
 * call; DATA goes as header and payload so the payload is not copied.
 */
static int emit(mux_tunnel *t, int type, int flags, uint32_t id,
    const void *p, size_t len)
{
	uint8_t f[MUX_HDR_LEN + 8 + MUX_URI_MAX];

	if (t->room < MUX_HDR_LEN + len)
		return -1;
	t->room -= MUX_HDR_LEN + len;
	if (len <= sizeof(f) - MUX_HDR_LEN) {
		mux_encode(f, sizeof(f), type, flags, id, p, len);
		t->cb.output(t->cb.arg, f, MUX_HDR_LEN + len);
		return 0;
	}
	mux_put_header(f, len, type, flags, id);
	t->cb.output(t->cb.arg, f, MUX_HDR_LEN);
	t->cb.output(t->cb.arg, p, len);
	return 0;
}

static int send_settings(mux_tunnel *t)
{
	uint8_t p[18];
	size_t n = 0;
	const uint32_t v[3][2] = {
		{ MUX_SET_MAX_STREAMS, t->cfg.max_streams },
		{ MUX_SET_WINDOW, t->cfg.window },
		{ MUX_SET_MAX_FRAME, t->cfg.max_frame },
	};
	int i;

	/* Window 0 in the configuration: the empty SETTINGS of §1. */
	for (i = 0; t->cfg.window && i < 3; i++) {
		p[n] = v[i][0] >> 8;
		p[n + 1] = v[i][0];
		put32(p + n + 2, v[i][1]);
		n += 6;
	}
	if (emit(t, MUX_SETTINGS, 0, 0, p, n) < 0)
		return -1;
	t->pending &= ~TP_SETTINGS;
	if (t->state == MUX_T_INIT && !t->cfg.server)
		t->state = MUX_T_HANDSHAKE_SENT;
	return 0;
}

static int send_goaway(mux_tunnel *t)
{
	uint8_t p[8 + MUX_REASON_MAX];
	size_t n = strlen(t->goaway_reason);

	put32(p, t->last_peer_id);
	put32(p + 4, t->goaway_code);
	memcpy(p + 8, t->goaway_reason, n);
	if (emit(t, MUX_GOAWAY, 0, 0, p, 8 + n) < 0)
		return -1;
	t->pending &= ~TP_GOAWAY;
	return 0;
}

static int send_wu(mux_tunnel *t, mux_stream *s)
{
	uint8_t p[4];

	put32(p, s->recv_done);
	if (emit(t, MUX_WINDOW_UPDATE, 0, s->id, p, 4) < 0)
		return -1;
	s->recv_credit += s->recv_done;
	s->recv_done = 0;
	return 0;
}

/* Pending frames of one stream, in wire order.  -1: out of room. */
static int flush_stream(mux_tunnel *t, mux_stream *s)
{
	if (s->flags & SF_P_SYN) {
		if (emit(t, MUX_HEADERS, 0, s->id, s->hold, s->hold_len) < 0)
			return -1;
		free(s->hold);
		s->hold = NULL;
		s->hold_len = s->hold_cap = 0;
		sflags(t, s, 0, SF_P_SYN);
	}
	if (s->flags & SF_P_SYNACK) {
		if (emit(t, MUX_HEADERS, 0, s->id, NULL, 0) < 0)
			return -1;
		sflags(t, s, 0, SF_P_SYNACK);
	}
	if (s->flags & SF_P_WU) {
		if (send_wu(t, s) < 0)
			return -1;
		sflags(t, s, 0, SF_P_WU);
	}
	if (s->flags & SF_P_FIN) {
		if (emit(t, MUX_DATA, MUX_F_END_STREAM, s->id, NULL, 0) < 0)
			return -1;
		sflags(t, s, 0, SF_P_FIN);
	}
	if (s->flags & SF_P_RST) {
		if (emit(t, MUX_HEADERS, MUX_F_END_STREAM, s->id, s->reason,
		    strlen(s->reason)) < 0)
			return -1;
		sflags(t, s, 0, SF_P_RST);
	}
	if (s->flags & SF_RELEASED)
		stream_free(t, s);
	return 0;
}

/* A GOAWAY has been exchanged and everything is said: the tunnel is done. */
static void check_drained(mux_tunnel *t)
{
	if (t->draining && t->nactive == 0 && t->npending == 0 &&
	    t->pending == 0 && t->nrefused == 0 && t->state != MUX_T_CLOSED)
		tunnel_close(t, MUX_E_NONE, "goaway", 0);
}

static void flush(mux_tunnel *t)
{
	uint32_t i;

	if (t->state == MUX_T_CLOSED)
		return;
	/* SETTINGS is the first frame on the wire; nothing passes it. */
	if ((t->pending & TP_SETTINGS) && send_settings(t) < 0)
		return;
	for (; t->acks_owed; t->acks_owed--)
		if (emit(t, MUX_SETTINGS, MUX_F_ACK, 0, NULL, 0) < 0)
			return;
	if (t->pending & TP_PINGACK) {
		if (emit(t, MUX_PING, MUX_F_ACK, 0, t->ping_ack, 8) < 0)
			return;
		t->pending &= ~TP_PINGACK;
	}
	if (t->pending & TP_PING) {
		if (emit(t, MUX_PING, 0, 0, t->ping_data, 8) < 0)
			return;
		t->pending &= ~TP_PING;
	}
	for (; t->nrefused; t->nrefused--) {
		const char *why = t->refused_why[0];

		if (emit(t, MUX_HEADERS, MUX_F_END_STREAM, t->refused[0],
		    why, strlen(why)) < 0)
			return;
		memmove(t->refused, t->refused + 1,
		    (REFUSE_MAX - 1) * sizeof(t->refused[0]));
		memmove(t->refused_why, t->refused_why + 1,
		    (REFUSE_MAX - 1) * sizeof(t->refused_why[0]));
	}
	for (i = 0; t->npending && i < t->nslots; i++)
		if (t->slots[i].id && (t->slots[i].flags & SF_PENDING) &&
		    flush_stream(t, &t->slots[i]) < 0)
			return;
	if ((t->pending & TP_GOAWAY) && send_goaway(t) < 0)
		return;
	check_drained(t);
}

/* Tell blocked streams they may send, starting from a rotating slot so
 * that no stream always gets the room first. */
static void wake(mux_tunnel *t)
{
	uint32_t k, i, id;
	mux_stream *s;

	for (k = 0; k < t->nslots && t->nblocked; k++) {
		if (t->state == MUX_T_CLOSED || t->room <= MUX_HDR_LEN)
			break;
		i = (t->wake_from + k) % t->nslots;
		s = &t->slots[i];
		if (s->id == 0 || !(s->flags & SF_BLOCKED) ||
		    send_avail(t, s) <= 0)
			continue;
		id = s->id;
		sflags(t, s, 0, SF_BLOCKED);
		t->cb.stream_writable(t->cb.arg, id);
	}
	t->wake_from = t->nslots ? (t->wake_from + 1) % t->nslots : 0;
}

/* The stream is over in both directions (FINs or RST). */
static void stream_dead(mux_tunnel *t, mux_stream *s)
{
	if (s->flags & SF_DEAD)
		return;
	sflags(t, s, SF_DEAD, SF_BLOCKED | SF_P_WU | SF_P_SYNACK);
	if (!(s->flags & SF_P_SYN)) {
		free(s->hold);
		s->hold = NULL;
		s->hold_len = s->hold_cap = 0;
	}
}

static void tunnel_close(mux_tunnel *t, uint32_t code, const char *reason,
    int goaway)
{
	char why[MUX_REASON_MAX];
	uint32_t i, id;

	if (t->state == MUX_T_CLOSED)
		return;
	copy_reason(why, reason);
	/* Nothing more is said but the GOAWAY (best effort: within room). */
	t->pending = 0;
	t->acks_owed = 0;
	t->nrefused = 0;
	if (goaway) {
		t->goaway_code = code;
		copy_reason(t->goaway_reason, why);
		send_goaway(t);
	}
	t->state = MUX_T_CLOSED;
	for (i = 0; i < t->nslots; i++) {
		mux_stream *s = &t->slots[i];

		if (s->id == 0)
			continue;
		sflags(t, s, 0, SF_PENDING);
		if (s->flags & SF_RELEASED) {
			stream_free(t, s);
			continue;
		}
		if (s->flags & SF_DEAD)
			continue;
		id = s->id;
		stream_dead(t, s);
		t->cb.stream_reset(t->cb.arg, id, why);
	}
	t->cb.tunnel_closed(t->cb.arg, why);
}

static void protocol_error(mux_tunnel *t, uint32_t code, const char *reason)
{
	tunnel_close(t, code, reason, 1);
}

/* ---- input ---- */

static size_t hold_cap(const mux_tunnel *t)
{
	return t->cfg.window ? t->cfg.window : MUX_DEFAULT_WINDOW;
}

/*
 * Without flow control nothing stops the peer but our not reading: a
 * stream holding a window's worth of undelivered or unconsumed bytes
 * pauses the whole input (documented head-of-line blocking).
 */
static void update_full(mux_tunnel *t, mux_stream *s)
{
	int full = !fc_on(t) && !(s->flags & SF_DEAD) &&
	    s->unconsumed + s->hold_len >= hold_cap(t);

	sflags(t, s, full ? SF_FULL : 0, full ? 0 : SF_FULL);
}

static int input_blocked(const mux_tunnel *t)
{
	return t->nrefused == REFUSE_MAX || t->nfull != 0;
}

static void refuse(mux_tunnel *t, uint32_t id, const char *why)
{
	/* Input pauses before the queue is full, so there is always a slot. */
	if (t->nrefused < REFUSE_MAX) {
		t->refused[t->nrefused] = id;
		t->refused_why[t->nrefused] = why;
		t->nrefused++;
	}
}

static void on_settings_ack(mux_tunnel *t, const mux_frame *f)
{
	uint32_t i;

	if (f->len) {
		protocol_error(t, MUX_E_FRAME_SIZE, "SETTINGS ACK with payload");
		return;
	}
	if (t->settings_acked)
		return;
	t->settings_acked = 1;
	/*
	 * Streams the peer opened before it saw our SETTINGS were opened
	 * with the default window; it has since moved them to ours.
	 */
	if (t->cfg.server && t->cfg.window)
		for (i = 0; i < t->nslots; i++)
			if (t->slots[i].id)
				t->slots[i].recv_credit += (int64_t)t->cfg.window -
				    MUX_DEFAULT_WINDOW;
}

static int apply_setting(mux_tunnel *t, uint32_t id, uint32_t v)
{
	uint32_t i;

	switch (id) {
	case MUX_SET_MAX_STREAMS:
		t->peer_streams = v;
		break;
	case MUX_SET_WINDOW:
		if (v > MUX_MAX_WINDOW) {
			protocol_error(t, MUX_E_FLOW, "window too large");
			return -1;
		}
		for (i = 0; i < t->nslots; i++)
			if (t->slots[i].id)
				t->slots[i].send_win += (int64_t)v - t->peer_window;
		t->peer_window = v;
		break;
	case MUX_SET_MAX_FRAME:
		if (v == 0) {
			protocol_error(t, MUX_E_PROTOCOL, "zero MAX_FRAME_SIZE");
			return -1;
		}
		t->peer_frame = v > MUX_MAX_FRAME_LIMIT ? MUX_MAX_FRAME_LIMIT : v;
		break;
	default:
		break;          /* unknown settings are ignored */
	}
	return 0;
}

static void on_settings(mux_tunnel *t, const mux_frame *f)
{
	size_t i;

	if (f->stream) {
		protocol_error(t, MUX_E_PROTOCOL, "SETTINGS on a stream");
		return;
	}
	if (f->flags & MUX_F_ACK) {
		on_settings_ack(t, f);
		return;
	}
	if (f->len % 6) {
		protocol_error(t, MUX_E_FRAME_SIZE, "bad SETTINGS length");
		return;
	}
	/* The first SETTINGS fixes whether the peer does flow control. */
	if (!t->peer_settings) {
		t->peer_settings = 1;
		t->peer_fc = f->len != 0;
		t->state = MUX_T_READY;
		if (t->cfg.server)
			t->pending |= TP_SETTINGS;
	}
	for (i = 0; i < f->len; i += 6)
		if (apply_setting(t, (uint32_t)f->payload[i] << 8 |
		    f->payload[i + 1], get32(f->payload + i + 2)) < 0)
			return;
	t->acks_owed++;
}

static void on_ping(mux_tunnel *t, const mux_frame *f)
{
	if (f->stream) {
		protocol_error(t, MUX_E_PROTOCOL, "PING on a stream");
		return;
	}
	if (f->len != 8) {
		protocol_error(t, MUX_E_FRAME_SIZE, "bad PING length");
		return;
	}
	if (f->flags & MUX_F_ACK) {
		if (t->ping_out && memcmp(f->payload, t->ping_data, 8) == 0)
			t->ping_out = 0;
		return;
	}
	/* Only the latest PING is answered: acks coalesce, memory does not
	 * grow with a flood. */
	memcpy(t->ping_ack, f->payload, 8);
	t->pending |= TP_PINGACK;
}

static void payload_string(char *dst, size_t cap, const uint8_t *p,
    size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, p, len);
	dst[len] = '\0';
}

static void on_goaway(mux_tunnel *t, const mux_frame *f)
{
	char why[MUX_REASON_MAX];
	uint32_t last, code, i, id;

	if (f->stream || f->len < 8) {
		protocol_error(t, MUX_E_FRAME_SIZE, "bad GOAWAY");
		return;
	}
	last = get32(f->payload) & 0x7fffffffu;
	code = get32(f->payload + 4);
	payload_string(why, sizeof(why), f->payload + 8, f->len - 8);
	if (code != MUX_E_NONE) {
		tunnel_close(t, code, why[0] ? why : "peer error", 0);
		return;
	}
	t->draining = 1;
	/* Streams above the peer's last id were never seen by it. */
	for (i = 0; !t->cfg.server && i < t->nslots; i++) {
		mux_stream *s = &t->slots[i];

		if (s->id <= last || (s->flags & SF_DEAD))
			continue;
		id = s->id;
		sflags(t, s, 0, SF_PENDING);
		stream_dead(t, s);
		t->cb.stream_reset(t->cb.arg, id, "goaway");
	}
}

static void on_window_update(mux_tunnel *t, const mux_frame *f)
{
	mux_stream *s;
	uint32_t inc;

	if (f->len != 4) {
		protocol_error(t, MUX_E_FRAME_SIZE, "bad WINDOW_UPDATE length");
		return;
	}
	inc = get32(f->payload) & 0x7fffffffu;
	/* No tunnel-wide window here; a zero increment changes nothing;
	 * a stream we forgot is a race with our RST. */
	if (f->stream == 0 || inc == 0 || (s = find(t, f->stream)) == NULL ||
	    (s->flags & SF_DEAD))
		return;
	if (s->send_win + inc > MUX_MAX_WINDOW) {
		protocol_error(t, MUX_E_FLOW, "window overflow");
		return;
	}
	s->send_win += inc;
}

/* The id was never used by the opener (as opposed to used and forgotten). */
static int never_opened(const mux_tunnel *t, uint32_t id)
{
	return t->cfg.server ? id > t->last_peer_id : id >= t->next_id;
}

static void on_rst(mux_tunnel *t, const mux_frame *f)
{
	char why[MUX_REASON_MAX];
	mux_stream *s = find(t, f->stream);
	uint32_t id = f->stream;

	/* Late RST (stream dead or forgotten): nothing to do. */
	if (s == NULL || (s->flags & SF_DEAD))
		return;
	payload_string(why, sizeof(why), f->payload, f->len);
	sflags(t, s, 0, SF_P_FIN | SF_P_SYNACK | SF_P_WU);
	stream_dead(t, s);
	t->cb.stream_reset(t->cb.arg, id, why);
}

static void on_syn(mux_tunnel *t, const mux_frame *f)
{
	char uri[MUX_URI_MAX];
	mux_stream *s;

	if (f->stream <= t->last_peer_id) {
		protocol_error(t, MUX_E_PROTOCOL, "stream id reused");
		return;
	}
	t->last_peer_id = f->stream;
	if (t->draining) {
		refuse(t, f->stream, "going away");
		return;
	}
	if (f->len >= sizeof(uri) || memchr(f->payload, 0, f->len)) {
		refuse(t, f->stream, "bad target");
		return;
	}
	if (t->nactive >= t->cfg.max_streams ||
	    (s = stream_alloc(t, f->stream)) == NULL) {
		refuse(t, f->stream, "too many streams");
		return;
	}
	s->flags = SF_EST;
	s->send_win = t->peer_window;
	s->recv_credit = t->settings_acked ? t->cfg.window : MUX_DEFAULT_WINDOW;
	payload_string(uri, sizeof(uri), f->payload, f->len);
	t->cb.stream_open(t->cb.arg, f->stream, uri);
}

static void on_headers(mux_tunnel *t, const mux_frame *f)
{
	mux_stream *s;

	if (f->stream == 0) {
		protocol_error(t, MUX_E_PROTOCOL, "HEADERS on stream 0");
		return;
	}
	if ((f->stream & 1) == 0) {
		protocol_error(t, MUX_E_PROTOCOL, "wrong stream id parity");
		return;
	}
	if (f->flags & MUX_F_END_STREAM) {
		on_rst(t, f);
		return;
	}
	if (t->cfg.server) {
		on_syn(t, f);
		return;
	}
	/* Client: a SYN-ACK.  The server never opens streams. */
	if (never_opened(t, f->stream)) {
		protocol_error(t, MUX_E_PROTOCOL, "SYN-ACK for unknown stream");
		return;
	}
	if ((s = find(t, f->stream)) != NULL)
		sflags(t, s, SF_EST, 0);
}

/* Server, before accept: keep 0-RTT bytes (bounded by the window). */
static int hold_data(mux_tunnel *t, mux_stream *s, const uint8_t *p,
    size_t n)
{
	size_t cap = s->hold_cap ? s->hold_cap : 4096;
	uint8_t *nb;

	while (cap < s->hold_len + n)
		cap *= 2;
	if (cap != s->hold_cap) {
		if ((nb = realloc(s->hold, cap)) == NULL) {
			tunnel_close(t, MUX_E_INTERNAL, "out of memory", 1);
			return -1;
		}
		s->hold = nb;
		s->hold_cap = cap;
	}
	memcpy(s->hold + s->hold_len, p, n);
	s->hold_len += n;
	return 0;
}

static void remote_fin(mux_tunnel *t, mux_stream *s)
{
	uint32_t id = s->id;

	sflags(t, s, SF_RFIN, 0);
	if (t->cfg.server && !(s->flags & SF_ACCEPTED)) {
		sflags(t, s, SF_RFIN_HELD, 0);
		return;
	}
	if (s->flags & SF_LFIN)
		stream_dead(t, s);
	t->cb.stream_fin(t->cb.arg, id);
}

static void on_data(mux_tunnel *t, const mux_frame *f)
{
	mux_stream *s;
	uint32_t id = f->stream;

	if (id == 0 || (id & 1) == 0) {
		protocol_error(t, MUX_E_PROTOCOL, id ? "wrong stream id parity" :
		    "DATA on stream 0");
		return;
	}
	if ((s = find(t, id)) == NULL) {
		/* A forgotten id: DATA the peer sent before it saw our RST. */
		if (never_opened(t, id))
			protocol_error(t, MUX_E_PROTOCOL, "DATA on unknown stream");
		return;
	}
	if (s->flags & SF_LRST)
		return;
	if (s->flags & (SF_RFIN | SF_DEAD)) {
		protocol_error(t, MUX_E_PROTOCOL, "DATA on closed stream");
		return;
	}
	/* A server may answer before its SYN-ACK: it implies one. */
	sflags(t, s, SF_EST, 0);
	if (fc_on(t)) {
		if ((int64_t)f->len > s->recv_credit) {
			protocol_error(t, MUX_E_FLOW,
			    "flow control window exceeded");
			return;
		}
		s->recv_credit -= f->len;
	}
	if (f->len && t->cfg.server && !(s->flags & SF_ACCEPTED)) {
		if (hold_data(t, s, f->payload, f->len) < 0)
			return;
	} else if (f->len) {
		s->unconsumed += f->len;
		update_full(t, s);
		t->cb.stream_data(t->cb.arg, id, f->payload, f->len);
		/* The callback may have reset or released it. */
		if ((s = find(t, id)) == NULL || (s->flags & SF_DEAD))
			return;
	}
	update_full(t, s);
	if (f->flags & MUX_F_END_STREAM)
		remote_fin(t, s);
}

static void dispatch(mux_tunnel *t, const mux_frame *f)
{
	/* The handshake comes first, both ways. */
	if (!t->peer_settings &&
	    (f->type != MUX_SETTINGS || (f->flags & MUX_F_ACK))) {
		protocol_error(t, MUX_E_PROTOCOL, "expected SETTINGS");
		return;
	}
	switch (f->type) {
	case MUX_DATA:
		on_data(t, f);
		break;
	case MUX_HEADERS:
		on_headers(t, f);
		break;
	case MUX_SETTINGS:
		on_settings(t, f);
		break;
	case MUX_PING:
		on_ping(t, f);
		break;
	case MUX_GOAWAY:
		on_goaway(t, f);
		break;
	case MUX_WINDOW_UPDATE:
		on_window_update(t, f);
		break;
	default:
		break;          /* unknown types are ignored (§1) */
	}
}

ssize_t mux_input(mux_tunnel *t, const uint8_t *p, size_t len)
{
	size_t off = 0;
	ssize_t r;
	mux_frame f;

	if (t->state == MUX_T_CLOSED)
		return -1;
	if (len)
		t->last_rx = t->now;
	while (off < len && t->state != MUX_T_CLOSED) {
		/* Pause only between frames, so a frame is never half taken. */
		if (mux_decoder_idle(&t->dec) && input_blocked(t)) {
			flush(t);       /* refusals may go out now */
			if (t->state == MUX_T_CLOSED || input_blocked(t))
				break;
		}
		if ((r = mux_decode(&t->dec, p + off, len - off, &f)) < 0) {
			protocol_error(t, t->dec.err, t->dec.err ==
			    MUX_E_FRAME_SIZE ? "frame too large" : "out of memory");
			break;
		}
		off += r;
		if (f.type >= 0)
			dispatch(t, &f);
	}
	flush(t);
	wake(t);
	return t->state == MUX_T_CLOSED ? -1 : (ssize_t)off;
}

/* ---- the local side ---- */

void mux_config_default(mux_config *c, int server)
{
	memset(c, 0, sizeof(*c));
	c->server = server != 0;
	c->max_streams = 128;
	c->window = MUX_LOCAL_WINDOW;
	c->max_frame = MUX_DEFAULT_FRAME;
	c->keepalive_ms = 10000;
	c->timeout_ms = 10000;
}

mux_tunnel *mux_tunnel_new(const mux_config *c, const mux_callbacks *cb,
    uint64_t now_ms)
{
	mux_tunnel *t;
	uint32_t isize;

	if (c->max_streams == 0 || c->max_streams > 65536 ||
	    c->window > MUX_MAX_WINDOW || c->max_frame < MUX_DEFAULT_FRAME ||
	    c->max_frame > MUX_MAX_FRAME_LIMIT) {
		errno = EINVAL;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->cfg = *c;
	t->cb = *cb;
	/* Dead streams wait for release: twice the limit in slots. */
	t->nslots = 2 * c->max_streams;
	for (isize = 1; isize < 2 * t->nslots; isize *= 2)
		;
	t->index_mask = isize - 1;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	t->index = calloc(isize, sizeof(*t->index));
	if (t->slots == NULL || t->index == NULL) {
		mux_tunnel_free(t);
		return NULL;
	}
	mux_decoder_init(&t->dec, c->max_frame);
	t->next_id = 1;
	t->peer_window = MUX_DEFAULT_WINDOW;
	t->peer_frame = MUX_DEFAULT_FRAME;
	t->peer_streams = UINT32_MAX;
	t->now = t->last_rx = t->created = now_ms;
	if (!c->server)
		t->pending |= TP_SETTINGS;
	return t;
}

void mux_tunnel_free(mux_tunnel *t)
{
	uint32_t i;

	if (t == NULL)
		return;
	for (i = 0; t->slots && i < t->nslots; i++)
		free(t->slots[i].hold);
	free(t->slots);
	free(t->index);
	mux_decoder_free(&t->dec);
	free(t);
}

void mux_set_room(mux_tunnel *t, size_t n)
{
	t->room = n;
	flush(t);
	wake(t);
}

static void start_ping(mux_tunnel *t)
{
	uint64_t v = t->now;
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		t->ping_data[i] = v;
	t->pending |= TP_PING;
	t->ping_out = 1;
	t->ping_at = t->now;
}

static int64_t until(uint64_t deadline, uint64_t now)
{
	return deadline > now ? (int64_t)(deadline - now) : 0;
}

int mux_tick(mux_tunnel *t, uint64_t now_ms)
{
	int64_t next = -1, d;
	uint32_t to = t->cfg.timeout_ms;

	if (now_ms > t->now)
		t->now = now_ms;
	if (t->state == MUX_T_CLOSED)
		return -1;
	if (to && t->state != MUX_T_READY && t->now - t->created >= to) {
		tunnel_close(t, MUX_E_PROTOCOL, "handshake timeout", 1);
		return -1;
	}
	if (to && t->ping_out && t->now - t->ping_at >= to) {
		tunnel_close(t, MUX_E_NONE, "keepalive timeout", 1);
		return -1;
	}
	if (t->cfg.keepalive_ms && !t->ping_out &&
	    t->now - t->last_rx >= t->cfg.keepalive_ms)
		start_ping(t);
	flush(t);
	if (t->state == MUX_T_CLOSED)
		return -1;
	if (to && t->state != MUX_T_READY)
		next = until(t->created + to, t->now);
	if (to && t->ping_out)
		d = until(t->ping_at + to, t->now);
	else if (t->cfg.keepalive_ms)
		d = until(t->last_rx + t->cfg.keepalive_ms, t->now);
	else
		d = -1;
	if (d >= 0 && (next < 0 || d < next))
		next = d;
	return next > INT32_MAX ? INT32_MAX : (int)next;
}

int mux_ping(mux_tunnel *t)
{
	if (t->state == MUX_T_CLOSED)
		return -1;
	if (!t->ping_out)
		start_ping(t);
	flush(t);
	return 0;
}

int mux_goaway(mux_tunnel *t, const char *reason)
{
	if (t->state == MUX_T_CLOSED)
		return -1;
	if (!t->goaway_sent) {
		t->goaway_sent = 1;
		copy_reason(t->goaway_reason, reason && *reason ? reason :
		    "shutdown");
		t->pending |= TP_GOAWAY;
	}
	t->draining = 1;
	flush(t);
	return 0;
}

uint32_t mux_stream_new(mux_tunnel *t, const char *uri)
{
	size_t n = uri ? strlen(uri) : 0;
	mux_stream *s;
	uint32_t id;

	if (t->cfg.server || n >= MUX_URI_MAX || n > t->peer_frame) {
		errno = EINVAL;
		return 0;
	}
	if (t->state == MUX_T_CLOSED || t->draining ||
	    t->next_id > 0x7fffffffu) {
		errno = EPIPE;
		return 0;
	}
	if (t->nactive >= t->peer_streams || t->nactive >= t->cfg.max_streams ||
	    (s = stream_alloc(t, t->next_id)) == NULL) {
		errno = EAGAIN;
		return 0;
	}
	if (n && (s->hold = malloc(n)) == NULL) {
		stream_free(t, s);
		errno = ENOMEM;
		return 0;
	}
	if (n)
		memcpy(s->hold, uri, n);
	s->hold_len = s->hold_cap = n;
	id = t->next_id;
	t->next_id += 2;
	s->send_win = t->peer_window;
	s->recv_credit = t->cfg.window;
	sflags(t, s, SF_P_SYN, 0);
	flush(t);
	return id;
}

/* A stream the local side may still write to, or NULL. */
static mux_stream *writable_stream(mux_tunnel *t, uint32_t id)
{
	mux_stream *s = find(t, id);

	if (t->state == MUX_T_CLOSED || s == NULL ||
	    (s->flags & (SF_DEAD | SF_LFIN)) ||
	    (t->cfg.server && !(s->flags & SF_ACCEPTED))) {
		errno = EPIPE;
		return NULL;
	}
	return s;
}

ssize_t mux_stream_send(mux_tunnel *t, uint32_t id, const void *p,
    size_t len)
{
	mux_stream *s;
	size_t done = 0, n;
	int64_t avail;

	if ((s = writable_stream(t, id)) == NULL)
		return -1;
	/* Our SYN or SYN-ACK must be on the wire before any DATA. */
	flush(t);
	if (s->flags & (SF_P_SYN | SF_P_SYNACK)) {
		sflags(t, s, len ? SF_BLOCKED : 0, 0);
		return 0;
	}
	while (done < len && t->room > MUX_HDR_LEN &&
	    (avail = send_avail(t, s)) > 0) {
		n = len - done;
		if (n > t->peer_frame)
			n = t->peer_frame;
		if ((int64_t)n > avail)
			n = avail;
		if (n > t->room - MUX_HDR_LEN)
			n = t->room - MUX_HDR_LEN;
		emit(t, MUX_DATA, 0, id, (const uint8_t *)p + done, n);
		s->send_win -= n;
		done += n;
	}
	sflags(t, s, done < len ? SF_BLOCKED : 0, done < len ? 0 : SF_BLOCKED);
	return done;
}

int mux_stream_fin(mux_tunnel *t, uint32_t id)
{
	mux_stream *s;

	if ((s = writable_stream(t, id)) == NULL)
		return -1;
	sflags(t, s, SF_LFIN | SF_P_FIN, SF_BLOCKED);
	if (s->flags & SF_RFIN)
		stream_dead(t, s);
	flush(t);
	return 0;
}

int mux_stream_reset(mux_tunnel *t, uint32_t id, const char *reason)
{
	mux_stream *s = find(t, id);

	if (s == NULL || t->state == MUX_T_CLOSED)
		return -1;
	if (s->flags & SF_DEAD)
		return 0;
	if (s->flags & SF_P_SYN) {
		/* The peer never heard of it: say nothing. */
		sflags(t, s, SF_LRST, SF_PENDING);
	} else {
		copy_reason(s->reason, reason);
		sflags(t, s, SF_LRST | SF_P_RST,
		    SF_P_FIN | SF_P_SYNACK | SF_P_WU);
	}
	stream_dead(t, s);
	flush(t);
	return 0;
}

int mux_stream_accept(mux_tunnel *t, uint32_t id)
{
	mux_stream *s = find(t, id);
	uint8_t *held;
	size_t n;

	if (!t->cfg.server || t->state == MUX_T_CLOSED || s == NULL ||
	    (s->flags & (SF_DEAD | SF_ACCEPTED)))
		return -1;
	sflags(t, s, SF_ACCEPTED | SF_P_SYNACK, 0);
	flush(t);
	/* Deliver what arrived while the peer was connecting. */
	held = s->hold;
	n = s->hold_len;
	s->hold = NULL;
	s->hold_len = s->hold_cap = 0;
	if (n) {
		s->unconsumed += n;
		update_full(t, s);
		t->cb.stream_data(t->cb.arg, id, held, n);
	}
	free(held);
	if ((s = find(t, id)) != NULL && (s->flags & SF_RFIN_HELD) &&
	    !(s->flags & SF_DEAD)) {
		sflags(t, s, 0, SF_RFIN_HELD);
		t->cb.stream_fin(t->cb.arg, id);
	}
	return 0;
}

void mux_stream_consumed(mux_tunnel *t, uint32_t id, size_t n)
{
	mux_stream *s = find(t, id);

	if (s == NULL || t->state == MUX_T_CLOSED)
		return;
	if (n > s->unconsumed)
		n = s->unconsumed;
	s->unconsumed -= n;
	update_full(t, s);
	if (!fc_on(t) || (s->flags & (SF_DEAD | SF_RFIN)))
		return;
	/* Announce in halves of the window: few updates, never a stall. */
	s->recv_done += n;
	if (s->recv_done >= t->cfg.window / 2) {
		sflags(t, s, SF_P_WU, 0);
		flush(t);
	}
}

void mux_stream_release(mux_tunnel *t, uint32_t id)
{
	mux_stream *s = find(t, id);

	if (s == NULL)
		return;
	if (!(s->flags & SF_DEAD) && t->state != MUX_T_CLOSED)
		mux_stream_reset(t, id, "closed");
	if ((s = find(t, id)) == NULL)
		return;
	if (t->state != MUX_T_CLOSED && (s->flags & SF_PENDING))
		sflags(t, s, SF_RELEASED, 0);
	else
		stream_free(t, s);
	flush(t);
}

int mux_tunnel_state(const mux_tunnel *t)
{
	return t->state;
}

int mux_stream_state(const mux_tunnel *t, uint32_t id)
{
	const mux_stream *s = find(t, id);

	if (s == NULL)
		return (id & 1) && !never_opened(t, id) ? MUX_S_REAL_CLOSED :
		    MUX_S_NONE;
	if (s->flags & SF_DEAD)
		return MUX_S_DEAD;
	if (!(s->flags & SF_EST))
		return MUX_S_SYN_SENT;
	if (s->flags & SF_LFIN)
		return MUX_S_FIN_SENT;
	if (s->flags & SF_RFIN)
		return MUX_S_FIN_RECV;
	return MUX_S_ESTABLISHED;
}

uint32_t mux_active_streams(const mux_tunnel *t)
{
	return t->nactive;
}

uint32_t mux_used_slots(const mux_tunnel *t)
{
	return t->nused;
}

size_t mux_stream_held(const mux_tunnel *t, uint32_t id)
{
	const mux_stream *s = find(t, id);

	return s && t->cfg.server && !(s->flags & SF_ACCEPTED) ?
	    s->hold_len : 0;
}

int64_t mux_stream_send_window(const mux_tunnel *t, uint32_t id)
{
	const mux_stream *s = find(t, id);

	return s ? send_avail(t, s) : 0;
}

int mux_flow_control(const mux_tunnel *t)
{
	return t->peer_settings && fc_on(t);
}
