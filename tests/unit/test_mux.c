/*
 * test_mux.c - KCP-mux: the frame codec (round trips, every split), and
 * a client and a server tunnel wired back to back in memory (handshake,
 * SYN/SYN-ACK/DATA/FIN/RST, 0-RTT, flow control, limits, protocol errors,
 * keepalive, bounded memory).  Raw frames drive a tunnel where a
 * well-behaved peer could not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/mux.h"
#include "test.h"

#define OUTCAP (1 << 20)
#define MAXID 64

/* One end: its tunnel, what it wrote, what its callbacks saw. */
struct side {
	mux_tunnel *t;
	uint8_t *out;
	size_t out_len;
	size_t room_cap;              /* room reported: min(this, free) */
	uint8_t *rx[MAXID];           /* per id, received payload */
	size_t rx_len[MAXID];
	int opened[MAXID], fin[MAXID], reset[MAXID], writable[MAXID];
	char uri[MUX_URI_MAX];
	char why[MUX_REASON_MAX];     /* last reset reason */
	int closed;
	char closed_why[MUX_REASON_MAX];
	int auto_accept, auto_consume;
};

static struct side C, S;

static void cb_output(void *arg, const uint8_t *p, size_t n)
{
	struct side *x = arg;

	CHECK(x->out_len + n <= OUTCAP);
	if (x->out_len + n <= OUTCAP) {
		memcpy(x->out + x->out_len, p, n);
		x->out_len += n;
	}
}

static void cb_open(void *arg, uint32_t id, const char *uri)
{
	struct side *x = arg;

	if (id < MAXID)
		x->opened[id]++;
	snprintf(x->uri, sizeof(x->uri), "%s", uri);
	if (x->auto_accept)
		mux_stream_accept(x->t, id);
}

static void cb_data(void *arg, uint32_t id, const uint8_t *p, size_t n)
{
	struct side *x = arg;

	if (id < MAXID) {
		x->rx[id] = realloc(x->rx[id], x->rx_len[id] + n);
		memcpy(x->rx[id] + x->rx_len[id], p, n);
		x->rx_len[id] += n;
	}
	if (x->auto_consume)
		mux_stream_consumed(x->t, id, n);
}

static void cb_fin(void *arg, uint32_t id)
{
	struct side *x = arg;

	if (id < MAXID)
		x->fin[id]++;
}

static void cb_reset(void *arg, uint32_t id, const char *why)
{
	struct side *x = arg;

	if (id < MAXID)
		x->reset[id]++;
	snprintf(x->why, sizeof(x->why), "%s", why);
}

static void cb_writable(void *arg, uint32_t id)
{
	struct side *x = arg;

	if (id < MAXID)
		x->writable[id]++;
}

static void cb_closed(void *arg, const char *why)
{
	struct side *x = arg;

	x->closed++;
	snprintf(x->closed_why, sizeof(x->closed_why), "%s", why);
}

static void side_init(struct side *x, const mux_config *c)
{
	mux_callbacks cb = { cb_output, cb_open, cb_data, cb_fin, cb_reset,
	    cb_writable, cb_closed, x };
	int i;

	for (i = 0; i < MAXID; i++)
		free(x->rx[i]);
	free(x->out);
	memset(x, 0, sizeof(*x));
	x->out = malloc(OUTCAP);
	x->room_cap = OUTCAP;
	x->auto_consume = 1;
	x->t = mux_tunnel_new(c, &cb, 1000);
	CHECK(x->t != NULL);
}

static void side_free(struct side *x)
{
	int i;

	mux_tunnel_free(x->t);
	x->t = NULL;
	for (i = 0; i < MAXID; i++) {
		free(x->rx[i]);
		x->rx[i] = NULL;
	}
	free(x->out);
	x->out = NULL;
}

static void give_room(struct side *x)
{
	size_t room = OUTCAP - x->out_len;

	mux_set_room(x->t, room < x->room_cap ? room : x->room_cap);
}

/* Move a's output into b; returns bytes moved.  Input b refuses stays. */
static size_t move(struct side *a, struct side *b)
{
	ssize_t r;

	if (a->out_len == 0 || mux_tunnel_state(b->t) == MUX_T_CLOSED)
		return 0;
	r = mux_input(b->t, a->out, a->out_len);
	if (r <= 0)
		return 0;
	memmove(a->out, a->out + r, a->out_len - r);
	a->out_len -= r;
	return r;
}

/* Exchange until quiet. */
static void pump(void)
{
	size_t moved;
	int i;

	for (i = 0; i < 1000; i++) {
		give_room(&C);
		give_room(&S);
		moved = move(&C, &S) + move(&S, &C);
		if (moved == 0)
			break;
	}
}

static void pair(uint32_t cwin, uint32_t swin, uint32_t smax)
{
	mux_config cc, sc;

	mux_config_default(&cc, 0);
	mux_config_default(&sc, 1);
	cc.window = cwin;
	sc.window = swin;
	sc.max_streams = smax;
	side_init(&C, &cc);
	side_init(&S, &sc);
	S.auto_accept = 1;
}

/* ---- raw frames ---- */

struct rawf {
	int type, flags;
	uint32_t stream;
	uint8_t p[256];
	size_t len;
};

/* Decode everything x wrote (and forget it). */
static int frames(struct side *x, struct rawf *f, int max)
{
	mux_decoder d;
	mux_frame fr;
	size_t off = 0;
	ssize_t r;
	int n = 0;

	mux_decoder_init(&d, MUX_MAX_FRAME_LIMIT);
	while (off < x->out_len && (r = mux_decode(&d, x->out + off,
	    x->out_len - off, &fr)) > 0) {
		off += r;
		if (fr.type < 0 || n == max)
			continue;
		f[n].type = fr.type;
		f[n].flags = fr.flags;
		f[n].stream = fr.stream;
		f[n].len = fr.len < 256 ? fr.len : 256;
		memcpy(f[n].p, fr.payload, f[n].len);
		n++;
	}
	mux_decoder_free(&d);
	x->out_len = 0;
	return n;
}

/* Feed one raw frame to x's tunnel. */
static ssize_t feed(struct side *x, int type, int flags, uint32_t id,
    const void *p, size_t len)
{
	uint8_t b[MUX_HDR_LEN + 256];
	size_t n = mux_encode(b, sizeof(b), type, flags, id, p, len);

	return mux_input(x->t, b, n);
}

static const uint8_t settings_std[18] = {
	0, 3, 0, 0, 0, 100, 0, 4, 0, 4, 0, 0, 0, 5, 0, 0, 0x40, 0 };

/* A server with a handshake done by raw frames; returns it READY. */
static void raw_server(uint32_t max_streams, uint32_t window)
{
	mux_config sc;

	mux_config_default(&sc, 1);
	sc.max_streams = max_streams;
	sc.window = window;
	side_init(&S, &sc);
	give_room(&S);
	feed(&S, MUX_SETTINGS, 0, 0, settings_std, sizeof(settings_std));
	feed(&S, MUX_SETTINGS, MUX_F_ACK, 0, NULL, 0);
	S.out_len = 0;
	give_room(&S);
}

/* The GOAWAY x wrote last, with its code; -1 if none. */
static long goaway_code(struct side *x, char *why, size_t cap)
{
	struct rawf f[64];
	int n = frames(x, f, 64), i;
	long code = -1;

	for (i = 0; i < n; i++)
		if (f[i].type == MUX_GOAWAY && f[i].len >= 8) {
			code = (long)f[i].p[4] << 24 | f[i].p[5] << 16 |
			    f[i].p[6] << 8 | f[i].p[7];
			snprintf(why, cap, "%.*s", (int)f[i].len - 8,
			    (const char *)f[i].p + 8);
		}
	return code;
}

/* ---- codec ---- */

static void test_codec(void)
{
	uint8_t buf[4096], payload[300];
	mux_decoder d;
	mux_frame f;
	size_t n, total, i, split, off;
	ssize_t r;
	int got;

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = i * 7;
	/* Three frames back to back. */
	total = mux_encode(buf, sizeof(buf), MUX_DATA, MUX_F_END_STREAM, 5,
	    payload, 300);
	CHECK_EQ(total, 309);
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(buf[1], 1);
	CHECK_EQ(buf[2], 44);
	total += mux_encode(buf + total, sizeof(buf) - total, MUX_PING, 0, 0,
	    "12345678", 8);
	total += mux_encode(buf + total, sizeof(buf) - total, MUX_SETTINGS,
	    MUX_F_ACK, 0, NULL, 0);
	CHECK_EQ(total, 309 + 17 + 9);
	CHECK_EQ(mux_encode(buf, 10, MUX_PING, 0, 0, "12345678", 8), 0);

	/* Every split point of the three-frame stream, and byte by byte. */
	for (split = 0; split <= total + 1; split++) {
		mux_decoder_init(&d, MUX_DEFAULT_FRAME);
		got = 0;
		off = 0;
		while (off < total) {
			size_t lim = split == total + 1 ? off + 1 :
			    (off < split ? split : total);

			r = mux_decode(&d, buf + off, lim - off, &f);
			CHECK(r >= 0);
			if (r < 0)
				break;
			off += r;
			if (f.type < 0)
				continue;
			if (got == 0) {
				CHECK(f.type == MUX_DATA && f.flags == 1 &&
				    f.stream == 5 && f.len == 300 &&
				    memcmp(f.payload, payload, 300) == 0);
			} else if (got == 1) {
				CHECK(f.type == MUX_PING && f.len == 8 &&
				    memcmp(f.payload, "12345678", 8) == 0);
			} else {
				CHECK(f.type == MUX_SETTINGS && f.flags == 1 &&
				    f.len == 0);
			}
			got++;
		}
		CHECK_EQ(got, 3);
		CHECK(mux_decoder_idle(&d));
		mux_decoder_free(&d);
	}

	/* The reserved bit is ignored. */
	n = mux_encode(buf, sizeof(buf), MUX_DATA, 0, 3, "x", 1);
	buf[5] |= 0x80;
	mux_decoder_init(&d, MUX_DEFAULT_FRAME);
	CHECK_EQ(mux_decode(&d, buf, n, &f), n);
	CHECK_EQ(f.stream, 3);
	mux_decoder_free(&d);

	/* Longer than max_frame: error as soon as the header is in. */
	mux_put_header(buf, MUX_DEFAULT_FRAME + 1, MUX_DATA, 0, 1);
	mux_decoder_init(&d, MUX_DEFAULT_FRAME);
	CHECK_EQ(mux_decode(&d, buf, 5, &f), 5);
	CHECK_EQ(mux_decode(&d, buf + 5, 4, &f), -1);
	CHECK_EQ(d.err, MUX_E_FRAME_SIZE);
	CHECK_EQ(mux_decode(&d, buf, 1, &f), -1);      /* sticky */
	mux_decoder_free(&d);
	/* Exactly max_frame is fine. */
	mux_put_header(buf, MUX_DEFAULT_FRAME, MUX_DATA, 0, 1);
	mux_decoder_init(&d, MUX_DEFAULT_FRAME);
	CHECK_EQ(mux_decode(&d, buf, 9, &f), 9);
	CHECK_EQ(d.err, 0);
	mux_decoder_free(&d);
}

/* ---- handshake and stream life ---- */

static void test_handshake(void)
{
	struct rawf f[8];
	int n;

	pair(MUX_DEFAULT_WINDOW, MUX_DEFAULT_WINDOW, 100);
	CHECK_EQ(mux_tunnel_state(C.t), MUX_T_INIT);
	CHECK_EQ(mux_tunnel_state(S.t), MUX_T_INIT);
	/* No room, nothing written; room, SETTINGS first. */
	CHECK_EQ(C.out_len, 0);
	give_room(&C);
	CHECK_EQ(mux_tunnel_state(C.t), MUX_T_HANDSHAKE_SENT);
	n = frames(&C, f, 8);
	CHECK_EQ(n, 1);
	CHECK(f[0].type == MUX_SETTINGS && f[0].flags == 0 && f[0].len == 18);
	/* Re-run with a fresh pair through the pump. */
	side_free(&C);
	side_free(&S);
	pair(MUX_DEFAULT_WINDOW, MUX_DEFAULT_WINDOW, 100);
	pump();
	CHECK_EQ(mux_tunnel_state(C.t), MUX_T_READY);
	CHECK_EQ(mux_tunnel_state(S.t), MUX_T_READY);
	CHECK(mux_flow_control(C.t));
	CHECK(mux_flow_control(S.t));
	/* The client learned the server's stream limit. */
	CHECK_EQ(C.closed + S.closed, 0);
	side_free(&C);
	side_free(&S);

	/* Empty SETTINGS on either side: no per-stream flow control. */
	pair(MUX_DEFAULT_WINDOW, 0, 100);
	pump();
	CHECK(!mux_flow_control(C.t));
	CHECK(!mux_flow_control(S.t));
	side_free(&C);
	side_free(&S);
}

static void test_stream_life(void)
{
	uint32_t id, id2;
	int64_t w;

	pair(MUX_DEFAULT_WINDOW, MUX_DEFAULT_WINDOW, 100);
	S.auto_accept = 0;
	give_room(&C);
	/* 0-RTT: SYN and DATA before any answer. */
	id = mux_stream_new(C.t, "tcp://example.org:80");
	CHECK_EQ(id, 1);
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_SYN_SENT);
	CHECK_EQ(mux_stream_send(C.t, id, "hello ", 6), 6);
	CHECK_EQ(mux_stream_send(C.t, id, "world", 5), 5);
	w = mux_stream_send_window(C.t, id);
	CHECK_EQ(w, MUX_DEFAULT_WINDOW - 11);
	pump();
	CHECK_EQ(S.opened[1], 1);
	CHECK(strcmp(S.uri, "tcp://example.org:80") == 0);
	/* The server holds the data while it connects. */
	CHECK_EQ(mux_stream_held(S.t, 1), 11);
	CHECK_EQ(S.rx_len[1], 0);
	CHECK_EQ(mux_stream_state(S.t, 1), MUX_S_ESTABLISHED);
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_SYN_SENT);
	/* Server may not send before accepting. */
	CHECK_EQ(mux_stream_send(S.t, 1, "x", 1), -1);
	CHECK_EQ(mux_stream_accept(S.t, 1), 0);
	CHECK_EQ(mux_stream_accept(S.t, 1), -1);
	CHECK_EQ(S.rx_len[1], 11);
	CHECK_MEM(S.rx[1], "hello world", 11);
	CHECK_EQ(mux_stream_held(S.t, 1), 0);
	pump();
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_ESTABLISHED);
	CHECK_EQ(mux_stream_send(S.t, 1, "pong", 4), 4);
	pump();
	CHECK_EQ(C.rx_len[1], 4);
	CHECK_MEM(C.rx[1], "pong", 4);

	/* Default peer: an empty URI. */
	id2 = mux_stream_new(C.t, NULL);
	CHECK_EQ(id2, 3);
	pump();
	CHECK_EQ(S.opened[3], 1);
	CHECK(strcmp(S.uri, "") == 0);

	/* FIN from the client, then the server. */
	CHECK_EQ(mux_stream_fin(C.t, id), 0);
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_FIN_SENT);
	CHECK_EQ(mux_stream_send(C.t, id, "x", 1), -1);
	CHECK_EQ(mux_stream_fin(C.t, id), -1);
	pump();
	CHECK_EQ(S.fin[1], 1);
	CHECK_EQ(mux_stream_state(S.t, 1), MUX_S_FIN_RECV);
	/* Half closed: the server still sends. */
	CHECK_EQ(mux_stream_send(S.t, 1, "more", 4), 4);
	CHECK_EQ(mux_stream_fin(S.t, 1), 0);
	CHECK_EQ(mux_stream_state(S.t, 1), MUX_S_DEAD);
	pump();
	CHECK_EQ(C.rx_len[1], 8);
	CHECK_EQ(C.fin[1], 1);
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_DEAD);
	CHECK_EQ(mux_active_streams(C.t), 1);
	CHECK_EQ(mux_used_slots(C.t), 2);
	mux_stream_release(C.t, id);
	mux_stream_release(S.t, 1);
	CHECK_EQ(mux_stream_state(C.t, id), MUX_S_REAL_CLOSED);
	CHECK_EQ(mux_stream_state(S.t, 1), MUX_S_REAL_CLOSED);
	CHECK_EQ(mux_stream_state(C.t, 99), MUX_S_NONE);
	CHECK_EQ(mux_used_slots(C.t), 1);
	CHECK_EQ(mux_used_slots(S.t), 1);
	CHECK_EQ(C.reset[1] + S.reset[1], 0);

	/* RST from the server (peer connect failed), with 0-RTT in flight. */
	id = mux_stream_new(C.t, "tcp://nowhere:1");
	CHECK_EQ(id, 5);
	pump();
	CHECK_EQ(mux_stream_reset(S.t, 5, "connect failed"), 0);
	CHECK_EQ(mux_stream_state(S.t, 5), MUX_S_DEAD);
	mux_stream_release(S.t, 5);
	/* The client's DATA crosses the RST: ignored, not an error. */
	CHECK_EQ(mux_stream_send(C.t, 5, "late", 4), 4);
	pump();
	CHECK_EQ(C.reset[5], 1);
	CHECK(strcmp(C.why, "connect failed") == 0);
	CHECK_EQ(mux_stream_state(C.t, 5), MUX_S_DEAD);
	CHECK_EQ(S.closed + C.closed, 0);
	CHECK_EQ(mux_stream_send(C.t, 5, "x", 1), -1);
	/* RST from the client: the server's callback, late RST ignored. */
	CHECK_EQ(mux_stream_reset(C.t, 3, "bye"), 0);
	pump();
	CHECK_EQ(S.reset[3], 1);
	CHECK(strcmp(S.why, "bye") == 0);
	CHECK_EQ(mux_stream_reset(S.t, 3, "late"), 0);     /* already dead */
	S.out_len = 0;
	CHECK(feed(&C, MUX_HEADERS, MUX_F_END_STREAM, 3, "late", 4) >= 0);
	CHECK_EQ(C.reset[3], 0);
	CHECK_EQ(C.closed, 0);
	side_free(&C);
	side_free(&S);
}

/* ---- flow control ---- */

static uint8_t big[300000];

/* Send as much of big[0..len) as the stream takes; returns bytes taken. */
static size_t push(struct side *x, uint32_t id, size_t len)
{
	size_t done = 0;
	ssize_t r;

	while (done < len && (r = mux_stream_send(x->t, id, big + done,
	    len - done)) > 0)
		done += r;
	return done;
}

static void test_flow_control(void)
{
	uint32_t a, b;
	size_t sent_b = 0, n;
	int i;

	for (n = 0; n < sizeof(big); n++)
		big[n] = n * 13 + (n >> 8);
	pair(65536, 65536, 100);
	S.auto_consume = 0;
	pump();
	a = mux_stream_new(C.t, NULL);
	b = mux_stream_new(C.t, NULL);
	pump();
	/* A: the server's application never consumes. */
	CHECK_EQ(push(&C, a, 100000), 65536);
	CHECK_EQ(mux_stream_send(C.t, a, big, 1), 0);
	pump();
	CHECK_EQ(S.rx_len[a], 65536);
	/* B still flows, all 200000 bytes, while A is stalled. */
	for (i = 0; i < 100 && (sent_b < 200000 || S.rx_len[b] < 200000);
	    i++) {
		sent_b += push(&C, b, 200000 - sent_b);
		pump();
		mux_stream_consumed(S.t, b, S.rx_len[b]);
		pump();
	}
	CHECK_EQ(S.rx_len[b], 200000);
	CHECK_MEM(S.rx[b], big, 200000);
	CHECK_EQ(mux_stream_send_window(C.t, a), 0);

	/* Window math: an update only once half the window is consumed. */
	S.out_len = 0;
	mux_stream_consumed(S.t, a, 32767);
	CHECK_EQ(S.out_len, 0);
	C.writable[a] = 0;
	mux_stream_consumed(S.t, a, 1);
	CHECK_EQ(S.out_len, 13);             /* one WINDOW_UPDATE */
	CHECK_EQ(S.out[3], MUX_WINDOW_UPDATE);
	CHECK_EQ(S.out[9] << 24 | S.out[10] << 16 | S.out[11] << 8 |
	    S.out[12], 32768);
	pump();
	CHECK_EQ(mux_stream_send_window(C.t, a), 32768);
	CHECK(C.writable[a] >= 1);
	/* Consumed more than delivered is clamped. */
	mux_stream_consumed(S.t, a, 1000000);
	pump();
	CHECK_EQ(mux_stream_send_window(C.t, a), 65536);
	CHECK_EQ(C.closed + S.closed, 0);
	side_free(&C);
	side_free(&S);

	/* The server advertises less than the default, but the client's
	 * 0-RTT data left before it knew: both settle on the new window. */
	pair(MUX_DEFAULT_WINDOW, 65536, 100);
	give_room(&C);
	a = mux_stream_new(C.t, NULL);
	CHECK_EQ(push(&C, a, 100000), 100000);
	pump();
	CHECK_EQ(S.rx_len[a], 100000);
	CHECK_EQ(C.closed + S.closed, 0);
	/* Less than half a window may stay unannounced. */
	CHECK(mux_stream_send_window(C.t, a) > 32768);
	CHECK(mux_stream_send_window(C.t, a) <= 65536);
	side_free(&C);
	side_free(&S);

	/* No flow control: the channel's backpressure only. */
	pair(MUX_DEFAULT_WINDOW, 0, 100);
	pump();
	a = mux_stream_new(C.t, NULL);
	CHECK_EQ(push(&C, a, 300000), 300000);
	pump();
	CHECK_EQ(S.rx_len[a], 300000);
	side_free(&C);
	side_free(&S);

	/* Output never exceeds the reported room. */
	pair(65536, 65536, 100);
	pump();
	a = mux_stream_new(C.t, NULL);
	pump();
	mux_set_room(C.t, 50);
	CHECK_EQ(mux_stream_send(C.t, a, big, 1000), 41);
	CHECK_EQ(C.out_len, 50);
	CHECK_EQ(mux_stream_send(C.t, a, big, 1000), 0);
	CHECK_EQ(mux_stream_fin(C.t, a), 0);   /* waits as a flag */
	CHECK_EQ(C.out_len, 50);
	C.writable[a] = 0;
	pump();
	CHECK_EQ(S.rx_len[a], 41);
	CHECK_EQ(S.fin[a], 1);
	side_free(&C);
	side_free(&S);
}

static void test_max_streams(void)
{
	struct rawf f[16];
	uint32_t id;
	int n, i, rst = 0;

	raw_server(2, 65536);
	for (id = 1; id <= 5; id += 2)
		feed(&S, MUX_HEADERS, 0, id, NULL, 0);
	CHECK_EQ(S.opened[1] + S.opened[3], 2);
	CHECK_EQ(S.opened[5], 0);
	n = frames(&S, f, 16);
	for (i = 0; i < n; i++)
		if (f[i].type == MUX_HEADERS && f[i].flags == 1 &&
		    f[i].stream == 5 && f[i].len == 16 &&
		    memcmp(f[i].p, "too many streams", 16) == 0)
			rst++;
	CHECK_EQ(rst, 1);
	CHECK_EQ(S.closed, 0);
	/* 0-RTT DATA for the refused stream is dropped quietly. */
	give_room(&S);
	CHECK(feed(&S, MUX_DATA, 0, 5, "zz", 2) >= 0);
	CHECK_EQ(S.closed, 0);
	/* A dead stream frees its place even before release. */
	feed(&S, MUX_HEADERS, MUX_F_END_STREAM, 1, NULL, 0);
	feed(&S, MUX_HEADERS, 0, 7, NULL, 0);
	CHECK_EQ(S.opened[7], 1);
	side_free(&S);

	/* The client honours the server's limit. */
	pair(MUX_DEFAULT_WINDOW, MUX_DEFAULT_WINDOW, 2);
	pump();
	CHECK(mux_stream_new(C.t, NULL) != 0);
	CHECK(mux_stream_new(C.t, NULL) != 0);
	errno = 0;
	CHECK_EQ(mux_stream_new(C.t, NULL), 0);
	CHECK_EQ(errno, EAGAIN);
	mux_stream_reset(C.t, 1, "done");
	id = mux_stream_new(C.t, NULL);
	CHECK_EQ(id, 5);
	pump();
	CHECK_EQ(S.closed + C.closed, 0);
	side_free(&C);
	side_free(&S);
}

/* ---- protocol errors ---- */

static void expect_goaway(long code, const char *why)
{
	char got[MUX_REASON_MAX] = "";

	CHECK_EQ(S.closed, 1);
	CHECK_EQ(mux_tunnel_state(S.t), MUX_T_CLOSED);
	CHECK_EQ(goaway_code(&S, got, sizeof(got)), code);
	CHECK(strcmp(got, why) == 0);
	CHECK(strcmp(S.closed_why, why) == 0);
	if (strcmp(got, why) != 0)
		fprintf(stderr, "  reason \"%s\", want \"%s\"\n", got, why);
	side_free(&S);
}

static void test_protocol_errors(void)
{
	uint8_t b[MUX_HDR_LEN + 16384], wu[4] = { 0x7f, 0xff, 0xff, 0xff };
	mux_config sc;
	int i;

	raw_server(10, 65536);
	CHECK_EQ(feed(&S, MUX_HEADERS, 0, 2, NULL, 0), -1);
	expect_goaway(MUX_E_PROTOCOL, "wrong stream id parity");

	raw_server(10, 65536);
	feed(&S, MUX_DATA, 0, 7, "x", 1);
	expect_goaway(MUX_E_PROTOCOL, "DATA on unknown stream");

	raw_server(10, 65536);
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	feed(&S, MUX_WINDOW_UPDATE, 0, 1, wu, 4);
	expect_goaway(MUX_E_FLOW, "window overflow");

	raw_server(10, 65536);
	mux_put_header(b, MUX_DEFAULT_FRAME + 1, MUX_DATA, 0, 1);
	CHECK_EQ(mux_input(S.t, b, MUX_HDR_LEN), -1);
	expect_goaway(MUX_E_FRAME_SIZE, "frame too large");

	/* The handshake first. */
	mux_config_default(&sc, 1);
	side_init(&S, &sc);
	give_room(&S);
	feed(&S, MUX_PING, 0, 0, "12345678", 8);
	expect_goaway(MUX_E_PROTOCOL, "expected SETTINGS");

	raw_server(10, 65536);
	feed(&S, MUX_SETTINGS, 0, 0, "abcde", 5);
	expect_goaway(MUX_E_FRAME_SIZE, "bad SETTINGS length");

	/* Beyond the window, while the server still holds 0-RTT data: the
	 * hold never exceeds the window. */
	raw_server(10, 65536);
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	memset(b, 'd', sizeof(b));
	for (i = 0; i < 4; i++) {
		mux_put_header(b, 16384, MUX_DATA, 0, 1);
		CHECK_EQ(mux_input(S.t, b, sizeof(b)), sizeof(b));
	}
	CHECK_EQ(mux_stream_held(S.t, 1), 65536);
	feed(&S, MUX_DATA, 0, 1, "x", 1);
	expect_goaway(MUX_E_FLOW, "flow control window exceeded");

	raw_server(10, 65536);
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	feed(&S, MUX_DATA, MUX_F_END_STREAM, 1, "a", 1);
	feed(&S, MUX_DATA, 0, 1, "b", 1);
	expect_goaway(MUX_E_PROTOCOL, "DATA on closed stream");

	raw_server(10, 65536);
	feed(&S, MUX_HEADERS, 0, 3, NULL, 0);
	feed(&S, MUX_HEADERS, 0, 3, NULL, 0);
	expect_goaway(MUX_E_PROTOCOL, "stream id reused");

	/* Ignored: unknown types, late RST, updates for forgotten streams,
	 * the tunnel-wide window. */
	raw_server(10, 65536);
	feed(&S, 0x42, 0xff, 9, "whatever", 8);
	feed(&S, MUX_HEADERS, MUX_F_END_STREAM, 1, "late", 4);
	feed(&S, MUX_WINDOW_UPDATE, 0, 0, "\0\0\1\0", 4);
	CHECK_EQ(S.closed, 0);
	CHECK_EQ(mux_tunnel_state(S.t), MUX_T_READY);
	/* A GOAWAY with an error from the peer ends the tunnel silently. */
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	S.out_len = 0;
	feed(&S, MUX_GOAWAY, 0, 0, "\0\0\0\0\0\0\0\1oops", 12);
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(S.reset[1], 1);
	CHECK(strcmp(S.why, "oops") == 0);
	CHECK_EQ(S.out_len, 0);
	side_free(&S);

	/* The client: a SYN-ACK for a stream it never opened. */
	pair(65536, 65536, 10);
	pump();
	C.out_len = 0;
	CHECK_EQ(feed(&C, MUX_HEADERS, 0, 9, NULL, 0), -1);
	CHECK_EQ(C.closed, 1);
	CHECK(strcmp(C.closed_why, "SYN-ACK for unknown stream") == 0);
	side_free(&C);
	side_free(&S);
}

/* ---- keepalive, goaway ---- */

static void test_keepalive(void)
{
	struct rawf f[4];
	uint32_t id;
	int n;

	pair(65536, 65536, 10);
	pump();
	CHECK_EQ(mux_tick(C.t, 1000), 10000);
	CHECK_EQ(mux_tick(C.t, 5000), 6000);
	CHECK_EQ(C.out_len, 0);
	CHECK_EQ(mux_tick(C.t, 11000), 10000);   /* PING sent, ack due */
	CHECK(C.out_len == 17 && C.out[3] == MUX_PING && C.out[4] == 0);
	pump();                                  /* the server acks */
	CHECK_EQ(mux_tick(C.t, 20000), 1000);    /* idle since 11000 */
	CHECK_EQ(C.closed, 0);
	/* Now the answer is lost. */
	id = mux_stream_new(C.t, NULL);
	pump();
	/* Traffic at 20000 counts as activity. */
	CHECK_EQ(mux_tick(C.t, 21000), 9000);
	CHECK_EQ(mux_tick(C.t, 30000), 10000);
	C.out_len = 0;
	CHECK_EQ(mux_tick(C.t, 39999), 1);
	CHECK_EQ(C.closed, 0);
	CHECK_EQ(mux_tick(C.t, 40000), -1);
	CHECK_EQ(C.closed, 1);
	CHECK(strcmp(C.closed_why, "keepalive timeout") == 0);
	CHECK_EQ(C.reset[id], 1);
	CHECK_EQ(mux_tunnel_state(C.t), MUX_T_CLOSED);
	CHECK_EQ(mux_input(C.t, (const uint8_t *)"x", 1), -1);
	n = frames(&C, f, 4);
	CHECK(n == 1 && f[0].type == MUX_GOAWAY);
	side_free(&C);
	side_free(&S);

	/* No handshake answer within the timeout. */
	pair(65536, 65536, 10);
	give_room(&C);
	CHECK_EQ(mux_tick(C.t, 1000), 10000);
	CHECK_EQ(mux_tick(C.t, 11000), -1);
	CHECK(strcmp(C.closed_why, "handshake timeout") == 0);
	side_free(&C);
	side_free(&S);
}

static void test_goaway(void)
{
	struct rawf f[4];
	uint32_t a;
	int n;

	pair(65536, 65536, 10);
	pump();
	a = mux_stream_new(C.t, NULL);
	pump();
	CHECK_EQ(mux_goaway(S.t, "maintenance"), 0);
	pump();
	errno = 0;
	CHECK_EQ(mux_stream_new(C.t, NULL), 0);
	CHECK_EQ(errno, EPIPE);
	/* The open stream finishes normally. */
	CHECK_EQ(mux_stream_send(C.t, a, "last", 4), 4);
	CHECK_EQ(mux_stream_fin(C.t, a), 0);
	pump();
	CHECK_EQ(S.rx_len[a], 4);
	CHECK_EQ(C.closed + S.closed, 0);
	CHECK_EQ(mux_stream_fin(S.t, a), 0);
	pump();
	CHECK_EQ(S.closed, 1);
	CHECK_EQ(C.closed, 1);
	CHECK(strcmp(S.closed_why, "goaway") == 0);
	CHECK_EQ(C.reset[a] + S.reset[a], 0);
	side_free(&C);
	side_free(&S);

	/* After our GOAWAY, a new SYN is refused. */
	raw_server(10, 65536);
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	mux_goaway(S.t, NULL);
	S.out_len = 0;
	feed(&S, MUX_HEADERS, 0, 3, NULL, 0);
	n = frames(&S, f, 4);
	CHECK(n == 1 && f[0].type == MUX_HEADERS && f[0].flags == 1 &&
	    f[0].stream == 3 && f[0].len == 10);
	CHECK_EQ(S.opened[3], 0);
	side_free(&S);
}

/* ---- bounded memory ---- */

static void test_bounded(void)
{
	uint8_t b[40 * MUX_HDR_LEN], d[MUX_HDR_LEN + 16384];
	struct rawf f[64];
	size_t total = 0;
	ssize_t r;
	uint32_t id;
	int i, n, acks = 0;

	/* A PING flood with no room: nothing written, one ack pending. */
	raw_server(4, 65536);
	mux_set_room(S.t, 0);
	for (i = 0; i < 1000; i++) {
		uint8_t p[8] = { 0, 0, 0, 0, 0, 0, i >> 8, i };

		feed(&S, MUX_PING, 0, 0, p, 8);
	}
	CHECK_EQ(S.out_len, 0);
	give_room(&S);
	n = frames(&S, f, 64);
	for (i = 0; i < n; i++)
		if (f[i].type == MUX_PING && f[i].flags == MUX_F_ACK &&
		    f[i].p[6] == (999 >> 8) && f[i].p[7] == (999 & 0xff))
			acks++;
	CHECK(n == 1 && acks == 1);

	/* A SYN flood: slots stay within the limit; with no room the
	 * refusal queue fills and the input pauses. */
	mux_set_room(S.t, 0);
	for (i = 0, id = 1; i < 40; i++, id += 2)
		mux_put_header(b + i * MUX_HDR_LEN, 0, MUX_HEADERS, 0, id);
	r = mux_input(S.t, b, sizeof(b));
	CHECK(r > 0 && (size_t)r < sizeof(b));
	CHECK(mux_used_slots(S.t) <= 8);
	CHECK_EQ(S.out_len, 0);
	give_room(&S);
	CHECK(S.out_len > 0);
	CHECK_EQ(mux_input(S.t, b + r, sizeof(b) - r), sizeof(b) - r);
	CHECK_EQ(mux_active_streams(S.t), 4);
	CHECK(mux_used_slots(S.t) <= 8);
	CHECK_EQ(S.closed, 0);
	side_free(&S);

	/* No flow control and an application that does not read: the
	 * tunnel stops taking input after about one window. */
	raw_server(4, 0);
	S.auto_consume = 0;
	feed(&S, MUX_HEADERS, 0, 1, NULL, 0);
	CHECK_EQ(mux_stream_accept(S.t, 1), 0);
	memset(d, 'x', sizeof(d));
	mux_put_header(d, 16384, MUX_DATA, 0, 1);
	for (i = 0; i < 100; i++) {
		r = mux_input(S.t, d, sizeof(d));
		if (r == 0)
			break;
		CHECK_EQ(r, sizeof(d));
		total += r;
	}
	CHECK(i < 100);
	CHECK_EQ(S.rx_len[1], MUX_DEFAULT_WINDOW);
	CHECK(total <= MUX_DEFAULT_WINDOW + sizeof(d));
	mux_stream_consumed(S.t, 1, S.rx_len[1]);
	CHECK_EQ(mux_input(S.t, d, sizeof(d)), sizeof(d));
	CHECK_EQ(S.closed, 0);
	side_free(&S);
}

int main(void)
{
	test_codec();
	test_handshake();
	test_stream_life();
	test_flow_control();
	test_max_streams();
	test_protocol_errors();
	test_keepalive();
	test_goaway();
	test_bounded();
	side_free(&C);
	side_free(&S);
	return test_summary("mux");
}
