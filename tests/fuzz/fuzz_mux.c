/*
 * fuzz_mux.c - KCP-mux (core/mux.h): the frame decoder on arbitrary bytes
 * in input-sized chunks (every frame's payload inside the input or the
 * decoder's buffer, never longer than max_frame), and a tunnel (server or
 * client role) fed the same bytes as its channel, with the output room,
 * the clock, stream opens, sends, accepts, resets, consumes, GOAWAY and
 * PING driven by the input.  The output may never exceed the room given.
 *
 * Input: byte 0 = flags, then a sequence of ops: a control byte c, then
 * (for feed) 1 + (c & 0x3f) channel bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/mux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* every byte handed out is read, so ASan checks it */
static volatile uint8_t sink;

static void decode(const uint8_t *data, size_t size, uint32_t max_frame)
{
	mux_decoder d;
	mux_frame f;
	size_t off = 0, chunk;
	ssize_t r;

	mux_decoder_init(&d, max_frame);
	while (off < size) {
		chunk = 1 + data[off] % 97;
		if (chunk > size - off)
			chunk = size - off;
		r = mux_decode(&d, data + off, chunk, &f);
		if (r < 0) {
			if (d.err == 0)
				abort();
			break;
		}
		if ((size_t)r > chunk || (r == 0 && f.type < 0))
			abort();
		if (f.type >= 0) {
			if (f.len > max_frame || f.type > 0xff)
				abort();
			if (f.len && !((f.payload >= data + off &&
			    f.payload + f.len <= data + off + chunk) ||
			    (d.buf && f.payload >= d.buf &&
			    f.payload + f.len <= d.buf + max_frame)))
				abort();
			if (!mux_decoder_idle(&d))
				abort();
		}
		off += (size_t)r;
	}
	mux_decoder_free(&d);
}

/* ---- tunnel ---- */

static struct {
	mux_tunnel *t;
	size_t room;            /* what the tunnel was told is left */
	size_t out;             /* written since */
	int accept, consume, closed;
	uint32_t last;          /* last stream opened or seen */
} T;

static void cb_output(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)p;
	T.out += n;
	if (T.out > T.room)
		abort();
}

static void cb_open(void *arg, uint32_t id, const char *uri)
{
	(void)arg;
	if (strlen(uri) >= MUX_URI_MAX)
		abort();
	T.last = id;
	if (T.accept & 1)
		mux_stream_accept(T.t, id);
	else if (T.accept & 2)
		mux_stream_reset(T.t, id, "refused");
	T.accept = (T.accept >> 1) | (T.accept << 7 & 0x80);
}

static void cb_data(void *arg, uint32_t id, const uint8_t *p, size_t n)
{
	size_t i;

	(void)arg;
	for (i = 0; i < n; i++)
		sink ^= p[i];      /* every byte must be readable */
	T.last = id;
	if (T.consume)
		mux_stream_consumed(T.t, id, n);
}

static void cb_fin(void *arg, uint32_t id)
{
	(void)arg;
	T.last = id;
}

static void cb_reset(void *arg, uint32_t id, const char *why)
{
	(void)arg;
	if (strlen(why) >= MUX_REASON_MAX)
		abort();
	T.last = id;
}

static void cb_writable(void *arg, uint32_t id)
{
	(void)arg;
	(void)id;
}

static void cb_closed(void *arg, const char *why)
{
	(void)arg;
	if (strlen(why) >= MUX_REASON_MAX)
		abort();
	T.closed++;
}

static void room(size_t n)
{
	T.room = n;
	T.out = 0;
	mux_set_room(T.t, n);
}

static void tunnel(const uint8_t *data, size_t size, uint8_t flags)
{
	static const uint8_t junk[300] = { 1, 2, 3 };
	mux_callbacks cb = { cb_output, cb_open, cb_data, cb_fin, cb_reset,
	    cb_writable, cb_closed, NULL };
	mux_config c;
	uint64_t now = 1000;
	size_t off = 0, n;
	ssize_t r;
	uint8_t op;

	memset(&T, 0, sizeof(T));
	mux_config_default(&c, flags & 1);
	if (flags & 2)
		c.window = 0;
	else if (flags & 4)
		c.window = 1024;
	if (flags & 8)
		c.max_streams = 2;
	c.max_frame = flags & 16 ? 16384 : 65535;
	c.keepalive_ms = flags & 32 ? 50 : 0;
	c.timeout_ms = flags & 32 ? 200 : 0;
	T.accept = 0x5d;
	T.consume = !(flags & 64);
	if ((T.t = mux_tunnel_new(&c, &cb, now)) == NULL)
		return;
	room(flags & 128 ? 64 : 1 << 20);
	while (off < size && mux_tunnel_state(T.t) != MUX_T_CLOSED) {
		op = data[off++];
		switch (op >> 6) {
		case 0:
		case 1:
			/* feed what the channel says */
			n = 1 + (op & 0x7f);
			if (n > size - off)
				n = size - off;
			r = mux_input(T.t, data + off, n);
			if (r > (ssize_t)n)
				abort();
			off += n;       /* what it refused is lost */
			break;
		case 2:
			switch (op & 7) {
			case 0:
				room(op & 8 ? 1 << 20 : (op >> 3 & 7) * 9);
				break;
			case 1:
				now += (uint64_t)(op >> 3 & 7) * 40;
				mux_tick(T.t, now);
				break;
			case 2:
				T.last = mux_stream_new(T.t, op & 8 ?
				    "tcp://127.0.0.1:1" : NULL);
				break;
			case 3:
				mux_stream_send(T.t, T.last, junk,
				    1 + (op >> 3 & 7) * 40);
				break;
			case 4:
				if (op & 8)
					mux_stream_fin(T.t, T.last);
				else
					mux_stream_reset(T.t, T.last, "fuzz");
				break;
			case 5:
				if (op & 8)
					mux_stream_accept(T.t, T.last);
				else
					mux_stream_consumed(T.t, T.last,
					    (op >> 4 & 3) * 1000);
				break;
			case 6:
				mux_stream_release(T.t, T.last);
				break;
			case 7:
				if (op & 8)
					mux_goaway(T.t, "fuzz");
				else
					mux_ping(T.t);
				break;
			}
			break;
		case 3:
			T.accept = op & 0x3f;
			break;
		}
		mux_stream_state(T.t, T.last);
		mux_stream_held(T.t, T.last);
		mux_stream_send_window(T.t, T.last);
		if (mux_active_streams(T.t) > mux_used_slots(T.t))
			abort();
		if (mux_used_slots(T.t) > 2 * c.max_streams + 2)
			abort();
	}
	mux_tunnel_free(T.t);
	T.t = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	decode(data + 1, size - 1, data[0] & 1 ? 16384 : 65535);
	tunnel(data + 1, size - 1, data[0]);
	return 0;
}
