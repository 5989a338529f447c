/*
 * test_ws.c - the RFC 6455 codec: round trips at every length class,
 * input split at every byte, chunked payload, fragmentation with control
 * frames in between, every protocol error with its close code, masking.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/ws.h"
#include "test.h"

#define BIG 140000

static const uint8_t key1[4] = { 0x37, 0xfa, 0x21, 0x3d };
static const uint8_t key0[4] = { 0, 0, 0, 0 };

/* What a run of the decoder produced. */
struct run {
	uint8_t data[BIG];	/* data payload of all messages, in order */
	size_t data_len;
	int ndata;		/* DATA events */
	int nmsg;		/* DATA events with fin */
	int opcode;		/* opcode of the last DATA event */
	size_t max_chunk;
	int in_msg;
	int bad;		/* events breaking first/fin/pointer rules */
	uint8_t ctl[WS_MAX_CONTROL];	/* payload of the last control */
	size_t ctl_len;
	int code;		/* of the last CLOSE */
	char log[64];		/* M message, P ping, O pong, C close */
	size_t log_len;
	size_t fed;		/* bytes offered when the run ended */
};

static void logc(struct run *r, char c)
{
	if (r->log_len < sizeof(r->log) - 1)
		r->log[r->log_len++] = c;
}

static void record(struct run *r, const ws_event *ev, const uint8_t *buf,
    size_t total)
{
	switch (ev->type) {
	case WS_EV_DATA:
		if (ev->first != !r->in_msg)
			r->bad++;
		if (ev->opcode != WS_OP_TEXT && ev->opcode != WS_OP_BINARY)
			r->bad++;
		/* Data is unmasked in place: it must point into our buffer. */
		if (ev->len > 0 && (ev->data < buf ||
		    ev->data + ev->len > buf + total))
			r->bad++;
		if (ev->len > r->max_chunk)
			r->max_chunk = ev->len;
		if (r->data_len + ev->len > sizeof(r->data)) {
			r->bad++;
			break;
		}
		if (ev->len > 0)
			memcpy(r->data + r->data_len, ev->data, ev->len);
		r->data_len += ev->len;
		r->opcode = ev->opcode;
		r->in_msg = !ev->fin;
		r->ndata++;
		if (ev->fin) {
			r->nmsg++;
			logc(r, 'M');
		}
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
	case WS_EV_CLOSE:
		if (ev->len > WS_MAX_CONTROL || !ev->fin) {
			r->bad++;
			break;
		}
		memcpy(r->ctl, ev->data, ev->len);
		r->ctl_len = ev->len;
		if (ev->type == WS_EV_CLOSE)
			r->code = ev->code;
		logc(r, ev->type == WS_EV_PING ? 'P' :
		    ev->type == WS_EV_PONG ? 'O' : 'C');
		break;
	default:
		r->bad++;
	}
}

/*
 * Decode buf[0..total), offering `step` more bytes whenever the decoder
 * wants more.  Returns the bytes consumed or the (negative) error.
 */
static ssize_t run(ws_decoder *d, uint8_t *buf, size_t total, size_t step,
    size_t max_payload, struct run *r)
{
	size_t pos = 0, end = 0;
	long guard = 0;
	ws_event ev;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if (++guard > 10 * (long)total + 100) {
			r->bad++;
			break;
		}
		n = ws_decode(d, buf + pos, end - pos, max_payload, &ev);
		r->fed = end;
		if (n < 0)
			return n;
		if ((size_t)n > end - pos) {
			r->bad++;
			break;
		}
		pos += (size_t)n;
		if (ev.type != WS_EV_NONE)
			record(r, &ev, buf, total);
		else if (n == 0) {
			if (end == total)
				break;
			end = end + step > total ? total : end + step;
		}
	}
	return (ssize_t)pos;
}

/* Append one frame to out at *len; the payload is masked if key. */
static void frame(uint8_t *out, size_t *len, int opcode, int fin,
    const void *payload, size_t plen, const uint8_t *key)
{
	size_t h;

	h = ws_encode_header(out + *len, opcode, fin, plen, key);
	*len += h;
	if (plen > 0)
		memcpy(out + *len, payload, plen);
	if (key != NULL)
		ws_mask(out + *len, plen, key, 0);
	*len += plen;
}

static uint8_t wire[BIG + 1000];
static uint8_t orig[BIG];
static struct run R;

static void fill(uint8_t *p, size_t n, int text)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = text ? 'a' + i % 26 : (uint8_t)(i * 7 + (i >> 8));
}

static void test_encode_header(void)
{
	uint8_t h[WS_MAX_HEADER];

	CHECK_EQ(ws_encode_header(h, WS_OP_TEXT, 1, 0, NULL), 2);
	CHECK_MEM(h, "\x81\x00", 2);
	CHECK_EQ(ws_encode_header(h, WS_OP_BINARY, 0, 125, NULL), 2);
	CHECK_MEM(h, "\x02\x7d", 2);
	CHECK_EQ(ws_encode_header(h, WS_OP_CONT, 1, 126, NULL), 4);
	CHECK_MEM(h, "\x80\x7e\x00\x7e", 4);
	CHECK_EQ(ws_encode_header(h, WS_OP_BINARY, 1, 65535, NULL), 4);
	CHECK_MEM(h, "\x82\x7e\xff\xff", 4);
	CHECK_EQ(ws_encode_header(h, WS_OP_BINARY, 1, 65536, NULL), 10);
	CHECK_MEM(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	CHECK_EQ(ws_encode_header(h, WS_OP_BINARY, 1, 0x0102030405060708ULL,
	    NULL), 10);
	CHECK_MEM(h, "\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
	CHECK_EQ(ws_encode_header(h, WS_OP_PING, 1, 5, key1), 6);
	CHECK_MEM(h, "\x89\x85\x37\xfa\x21\x3d", 6);
	CHECK_EQ(ws_encode_header(h, WS_OP_CLOSE, 1, 300, key1), 8);
	CHECK_MEM(h, "\x88\xfe\x01\x2c\x37\xfa\x21\x3d", 8);
	CHECK_EQ(ws_encode_header(h, WS_OP_TEXT, 1, 70000, key1), 14);
	CHECK_MEM(h, "\x81\xff\x00\x00\x00\x00\x00\x01\x11\x70"
	    "\x37\xfa\x21\x3d", 14);
}

static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };
#define NLENS (sizeof(lens) / sizeof(lens[0]))

/* One frame of each length, masked to a server and unmasked to a client,
 * decoded whole, in 4 KiB pieces with 1000-byte chunks, and bytewise. */
static void test_roundtrip(void)
{
	ws_decoder d;
	size_t i, n, hlen;
	int masked, text;

	for (i = 0; i < NLENS; i++)
	for (masked = 0; masked <= 1; masked++)
	for (text = 0; text <= 1; text++) {
		const uint8_t *key = masked ? key1 : NULL;
		int opcode = text ? WS_OP_TEXT : WS_OP_BINARY;

		fill(orig, lens[i], text);
		hlen = (lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10) +
		    (masked ? 4 : 0);

		n = 0;
		frame(wire, &n, opcode, 1, orig, lens[i], key);
		CHECK_EQ(n, hlen + lens[i]);
		ws_decoder_init(&d, masked, 0);
		CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
		CHECK_EQ(R.ndata, 1);
		CHECK_EQ(R.nmsg, 1);
		CHECK_EQ(R.opcode, opcode);
		CHECK_EQ(R.bad, 0);
		CHECK_EQ(R.data_len, lens[i]);
		CHECK_MEM(R.data, orig, lens[i]);

		n = 0;
		frame(wire, &n, opcode, 1, orig, lens[i], key);
		ws_decoder_init(&d, masked, 0);
		CHECK_EQ(run(&d, wire, n, 4096, 1000, &R), n);
		CHECK_EQ(R.nmsg, 1);
		CHECK(R.max_chunk <= 1000);
		CHECK_EQ(R.bad, 0);
		CHECK_EQ(R.data_len, lens[i]);
		CHECK_MEM(R.data, orig, lens[i]);

		n = 0;
		frame(wire, &n, opcode, 1, orig, lens[i], key);
		ws_decoder_init(&d, masked, 0);
		CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
		CHECK_EQ(R.nmsg, 1);
		CHECK_EQ(R.bad, 0);
		CHECK_EQ(R.data_len, lens[i]);
		CHECK_MEM(R.data, orig, lens[i]);
	}
}

/* Two frames cut into two calls at every position. */
static void test_split_everywhere(void)
{
	static const size_t plens[] = { 3, 200, 65536 };
	ws_decoder d;
	ws_event ev;
	size_t i, k, n, pos;
	ssize_t rc;
	int wrong, events;

	for (i = 0; i < 3; i++) {
		fill(orig, plens[i], 0);
		wrong = 0;
		for (k = 0; k <= (i == 2 ? 40 : plens[i] * 2 + 20); k++) {
			n = 0;
			frame(wire, &n, WS_OP_BINARY, 1, orig, plens[i], key1);
			frame(wire, &n, WS_OP_PING, 1, "ping", 4, key1);
			if (k > n)
				break;
			ws_decoder_init(&d, 1, 0);
			memset(&R, 0, sizeof(R));
			events = 0;
			/* First call sees wire[0..k), later ones the rest. */
			for (pos = 0; pos < n; ) {
				size_t end = pos < k ? k : n;

				rc = ws_decode(&d, wire + pos, end - pos, 0,
				    &ev);
				if (rc < 0) {
					wrong++;
					break;
				}
				if (ev.type != WS_EV_NONE) {
					record(&R, &ev, wire, n);
					events++;
				} else if (rc == 0 && end == n) {
					wrong++;
					break;
				}
				pos += (size_t)rc;
			}
			if (events < 2 || R.nmsg != 1 || R.bad != 0 ||
			    R.data_len != plens[i] ||
			    memcmp(R.data, orig, plens[i]) != 0 ||
			    strcmp(R.log, "MP") != 0 || R.ctl_len != 4 ||
			    memcmp(R.ctl, "ping", 4) != 0)
				wrong++;
		}
		CHECK_EQ(wrong, 0);
	}
}

/* Payload trickles in over many calls and leaves in tiny chunks. */
static void test_small_chunks(void)
{
	ws_decoder d;
	size_t n = 0;

	fill(orig, 70000, 1);
	frame(wire, &n, WS_OP_TEXT, 1, orig, 70000, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 10007, 7, &R), n);
	CHECK(R.max_chunk <= 7);
	CHECK(R.ndata >= 10000);
	CHECK_EQ(R.nmsg, 1);
	CHECK_EQ(R.bad, 0);
	CHECK_EQ(R.data_len, 70000);
	CHECK_MEM(R.data, orig, 70000);

	/* A header at the end of one call, payload in the next. */
	n = 0;
	frame(wire, &n, WS_OP_BINARY, 1, orig, 10, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 6, 3, &R), n);
	CHECK_EQ(R.data_len, 10);
	CHECK_EQ(R.ndata, 4);
	CHECK_MEM(R.data, orig, 10);
}

/* text + ping + cont + pong + cont: one message, controls in between. */
static void test_fragmentation(void)
{
	static const size_t steps[] = { 1, 5, 1000 };
	ws_decoder d;
	size_t i, n;
	int masked;

	for (masked = 0; masked <= 1; masked++)
	for (i = 0; i < 3; i++) {
		const uint8_t *key = masked ? key1 : NULL;

		n = 0;
		frame(wire, &n, WS_OP_TEXT, 0, "Hel", 3, key);
		frame(wire, &n, WS_OP_PING, 1, "x", 1, key);
		frame(wire, &n, WS_OP_CONT, 0, "lo, ", 4, key);
		frame(wire, &n, WS_OP_PONG, 1, "", 0, key);
		frame(wire, &n, WS_OP_CONT, 0, "", 0, key);
		frame(wire, &n, WS_OP_CONT, 1, "world", 5, key);
		frame(wire, &n, WS_OP_BINARY, 1, "\xff", 1, key);
		ws_decoder_init(&d, masked, 0);
		CHECK_EQ(run(&d, wire, n, steps[i], 0, &R), n);
		CHECK_EQ(R.bad, 0);
		CHECK_EQ(R.nmsg, 2);
		CHECK(strcmp(R.log, "POMM") == 0);
		CHECK_EQ(R.data_len, 13);
		CHECK_MEM(R.data, "Hello, world\xff", 13);
		CHECK_EQ(R.opcode, WS_OP_BINARY);
		if (steps[i] >= 1000)
			CHECK_EQ(R.ndata, 5);	/* one per data frame */
	}
}

/* The decoder's own view: first/fin/opcode of each chunk. */
static void test_event_flags(void)
{
	ws_decoder d;
	ws_event ev;
	size_t n = 0, pos = 0;
	ssize_t rc;

	frame(wire, &n, WS_OP_BINARY, 0, "ab", 2, NULL);
	frame(wire, &n, WS_OP_CONT, 1, "c", 1, NULL);
	ws_decoder_init(&d, 0, 0);

	rc = ws_decode(&d, wire, n, 1, &ev);
	CHECK_EQ(rc, 3);
	CHECK_EQ(ev.type, WS_EV_DATA);
	CHECK_EQ(ev.opcode, WS_OP_BINARY);
	CHECK_EQ(ev.first, 1);
	CHECK_EQ(ev.fin, 0);
	CHECK_EQ(ev.len, 1);
	CHECK(ev.data == wire + 2);
	pos += (size_t)rc;

	rc = ws_decode(&d, wire + pos, n - pos, 1, &ev);
	CHECK_EQ(rc, 1);
	CHECK_EQ(ev.type, WS_EV_DATA);
	CHECK_EQ(ev.first, 0);
	CHECK_EQ(ev.fin, 0);
	pos += (size_t)rc;

	rc = ws_decode(&d, wire + pos, n - pos, 1, &ev);
	CHECK_EQ(rc, 3);
	CHECK_EQ(ev.type, WS_EV_DATA);
	CHECK_EQ(ev.opcode, WS_OP_BINARY);	/* the message's, not CONT */
	CHECK_EQ(ev.first, 0);
	CHECK_EQ(ev.fin, 1);
	CHECK_EQ(ev.len, 1);
	CHECK_EQ(ev.data[0], 'c');
	pos += (size_t)rc;

	rc = ws_decode(&d, wire + pos, n - pos, 1, &ev);
	CHECK_EQ(rc, 0);
	CHECK_EQ(ev.type, WS_EV_NONE);

	/* An empty unfragmented frame still yields one event with fin. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "", 0, key1);
	ws_decoder_init(&d, 1, 0);
	rc = ws_decode(&d, wire, n, 100, &ev);
	CHECK_EQ(rc, 6);
	CHECK_EQ(ev.type, WS_EV_DATA);
	CHECK_EQ(ev.first, 1);
	CHECK_EQ(ev.fin, 1);
	CHECK_EQ(ev.len, 0);

	/* A header alone gives no event until payload arrives. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "hi", 2, key1);
	ws_decoder_init(&d, 1, 0);
	rc = ws_decode(&d, wire, 6, 100, &ev);
	CHECK_EQ(rc, 6);
	CHECK_EQ(ev.type, WS_EV_NONE);
	rc = ws_decode(&d, wire + 6, 2, 100, &ev);
	CHECK_EQ(rc, 2);
	CHECK_EQ(ev.type, WS_EV_DATA);
	CHECK_MEM(ev.data, "hi", 2);
}

/* UTF-8 is validated across fragments, not per frame. */
static void test_utf8_fragments(void)
{
	ws_decoder d;
	size_t n;

	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "a\xf0\x9f", 3, key1);
	frame(wire, &n, WS_OP_CONT, 1, "\x98\x80z", 3, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
	CHECK_EQ(R.nmsg, 1);
	CHECK_MEM(R.data, "a\xf0\x9f\x98\x80z", 6);

	/* One byte per fragment, with a ping in the middle. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "\xf0", 1, key1);
	frame(wire, &n, WS_OP_CONT, 0, "\x9f", 1, key1);
	frame(wire, &n, WS_OP_PING, 1, "", 0, key1);
	frame(wire, &n, WS_OP_CONT, 0, "\x98", 1, key1);
	frame(wire, &n, WS_OP_CONT, 1, "\x80", 1, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
	CHECK_EQ(R.nmsg, 1);
	CHECK(strcmp(R.log, "PM") == 0);
	CHECK_MEM(R.data, "\xf0\x9f\x98\x80", 4);

	/* Binary messages are not UTF-8 checked. */
	n = 0;
	frame(wire, &n, WS_OP_BINARY, 1, "\xed\xa0\x80\xff", 4, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
	CHECK_EQ(R.nmsg, 1);
}

/*
 * Decode wire[0..n) whole and bytewise; both must fail with -want.  With
 * step 1, R.fed is the number of bytes offered when the error came, which
 * is returned so callers can check the decoder failed fast.
 */
static size_t expect_err(size_t n, int server, uint64_t max_message,
    int want)
{
	static uint8_t copy[BIG + 1000];
	ws_decoder d;
	ws_event ev;

	memcpy(copy, wire, n);
	ws_decoder_init(&d, server, max_message);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), -want);
	/* Errors are sticky. */
	CHECK_EQ(ws_decode(&d, wire, n, 0, &ev), -want);
	CHECK_EQ(ev.type, WS_EV_NONE);

	ws_decoder_init(&d, server, max_message);
	CHECK_EQ(run(&d, copy, n, 1, 0, &R), -want);
	return R.fed;
}

/* A raw header (no key) followed by plen payload bytes. */
static size_t raw(const char *hdr, size_t hlen, size_t plen)
{
	memcpy(wire, hdr, hlen);
	memset(wire + hlen, 'a', plen);
	return hlen + plen;
}

static void test_errors_framing(void)
{
	size_t n;
	int op;

	/* §5.1: masking is mandatory one way and forbidden the other. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "hi", 2, NULL);
	CHECK_EQ(expect_err(n, 1, 0, 1002), 2);
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "hi", 2, key1);
	CHECK_EQ(expect_err(n, 0, 0, 1002), 2);
	n = 0;
	frame(wire, &n, WS_OP_PING, 1, "", 0, NULL);
	CHECK_EQ(expect_err(n, 1, 0, 1002), 2);

	/* RSV1-3 without an extension. */
	CHECK_EQ(expect_err(raw("\xc2\x01", 2, 1), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\xa2\x01", 2, 1), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x92\x01", 2, 1), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x99\x00", 2, 0), 0, 0, 1002), 2);

	/* Reserved opcodes. */
	for (op = 3; op <= 15; op++) {
		uint8_t h[2] = { (uint8_t)(0x80 | op), 0 };

		if (op >= 8 && op <= 10)
			continue;
		CHECK_EQ(expect_err(raw((const char *)h, 2, 0), 0, 0, 1002),
		    2);
	}

	/* Length: non-minimal encodings and the 64-bit top bit. */
	CHECK_EQ(expect_err(raw("\x82\x7e\x00\x7d", 4, 125), 0, 0, 1002), 4);
	CHECK_EQ(expect_err(raw("\x82\x7e\x00\x00", 4, 0), 0, 0, 1002), 4);
	CHECK_EQ(expect_err(raw("\x82\x7f\0\0\0\0\0\0\xff\xff", 10, 0),
	    0, 0, 1002), 10);
	CHECK_EQ(expect_err(raw("\x82\x7f\0\0\0\0\0\0\0\x05", 10, 0),
	    0, 0, 1002), 10);
	CHECK_EQ(expect_err(raw("\x82\x7f\x80\0\0\0\0\0\0\x00", 10, 0),
	    0, 0, 1002), 10);
	CHECK_EQ(expect_err(raw("\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff",
	    10, 0), 0, 0, 1002), 10);

	/* Control frames: at most 125 bytes, never fragmented. */
	CHECK_EQ(expect_err(raw("\x89\x7e\x00\x7e", 4, 126), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x8a\x7f\0\0\0\0\0\1\0\0", 10, 0),
	    0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x09\x00", 2, 0), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x0a\x00", 2, 0), 0, 0, 1002), 2);
	CHECK_EQ(expect_err(raw("\x08\x02\x03\xe8", 4, 0), 0, 0, 1002), 2);

	/* Continuation with nothing to continue. */
	n = 0;
	frame(wire, &n, WS_OP_CONT, 1, "x", 1, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1002), 2);
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "done", 4, key1);
	frame(wire, &n, WS_OP_CONT, 1, "x", 1, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1002), 12);

	/* A new message while a fragmented one is open. */
	for (op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
		n = 0;
		frame(wire, &n, WS_OP_TEXT, 0, "a", 1, key1);
		frame(wire, &n, WS_OP_PING, 1, "", 0, key1);
		frame(wire, &n, op, 1, "b", 1, key1);
		CHECK_EQ(expect_err(n, 1, 0, 1002), 15);
	}
}

static void test_errors_text(void)
{
	size_t n;

	/* Fail at the bad byte, not at the end of the frame: 6 header
	 * bytes, then "ab", then ED A0 fails at the A0 (byte 10). */
	fill(orig, 100, 1);
	memcpy(orig + 2, "\xed\xa0\x80", 3);
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, orig, 100, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1007), 10);

	/* Lone continuation byte in the first payload byte. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "\x80xyz", 4, NULL);
	CHECK_EQ(expect_err(n, 0, 0, 1007), 3);

	/* F4 90 is above U+10FFFF already at the second byte. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "\xf4\x90\x80\x80", 4, NULL);
	CHECK_EQ(expect_err(n, 0, 0, 1007), 4);

	/* Invalid across fragments: the sequence is cut by ASCII. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "\xf0\x9f", 2, key1);
	frame(wire, &n, WS_OP_CONT, 1, "A", 1, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1007), 15);

	/* Valid so far but incomplete at fin. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "a\xe2\x82", 3, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1007), 9);
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "\xe2", 1, key1);
	frame(wire, &n, WS_OP_CONT, 1, "\x82", 1, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1007), 14);
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "\xe2", 1, key1);
	frame(wire, &n, WS_OP_CONT, 1, "", 0, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1007), 13);
}

/* A close frame with the given code and reason. */
static size_t close_frame(int code, const char *reason, size_t rlen)
{
	uint8_t body[WS_MAX_CONTROL];
	size_t n = 0;

	body[0] = (uint8_t)(code >> 8);
	body[1] = (uint8_t)code;
	memcpy(body + 2, reason, rlen);
	frame(wire, &n, WS_OP_CLOSE, 1, body, rlen + 2, key1);
	return n;
}

static void test_close(void)
{
	static const int bad[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016,
	    1100, 2000, 2999, 5000, 65535 };
	static const int good[] = { 1000, 1001, 1002, 1003, 1007, 1008,
	    1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };
	ws_decoder d;
	size_t i, n;

	/* Empty close: no status. */
	n = 0;
	frame(wire, &n, WS_OP_CLOSE, 1, "", 0, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
	CHECK(strcmp(R.log, "C") == 0);
	CHECK_EQ(R.code, WS_CLOSE_NO_STATUS);
	CHECK_EQ(R.ctl_len, 0);

	/* Code and reason, the reason being what the event points to. */
	n = close_frame(1000, "bye \xc3\xa9", 6);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
	CHECK_EQ(R.code, 1000);
	CHECK_EQ(R.ctl_len, 6);
	CHECK_MEM(R.ctl, "bye \xc3\xa9", 6);

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = close_frame(good[i], "", 0);
		ws_decoder_init(&d, 1, 0);
		CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
		CHECK_EQ(R.code, good[i]);
		CHECK_EQ(R.ctl_len, 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = close_frame(bad[i], "x", 1);
		CHECK_EQ(expect_err(n, 1, 0, 1002), n);
	}

	/* One byte of body cannot hold a code. */
	n = 0;
	frame(wire, &n, WS_OP_CLOSE, 1, "\x03", 1, key1);
	CHECK_EQ(expect_err(n, 1, 0, 1002), 2);

	/* The reason must be UTF-8. */
	n = close_frame(1000, "bad \xed\xa0\x80", 7);
	expect_err(n, 1, 0, 1007);
	n = close_frame(1000, "cut \xe2\x82", 6);
	expect_err(n, 1, 0, 1007);

	/* The largest close frame, and a ping of 125 bytes bytewise. */
	fill(orig, 123, 1);
	n = close_frame(4000, (const char *)orig, 123);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
	CHECK_EQ(R.ctl_len, 123);
	CHECK_MEM(R.ctl, orig, 123);
	n = 0;
	fill(orig, 125, 0);
	frame(wire, &n, WS_OP_PING, 1, orig, 125, key1);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 1, 0, &R), n);
	CHECK(strcmp(R.log, "P") == 0);
	CHECK_EQ(R.ctl_len, 125);
	CHECK_MEM(R.ctl, orig, 125);
}

static void test_close_code_valid(void)
{
	static const struct { int code, valid; } t[] = {
		{ -1, 0 }, { 0, 0 }, { 999, 0 }, { 1000, 1 }, { 1001, 1 },
		{ 1002, 1 }, { 1003, 1 }, { 1004, 0 }, { 1005, 0 },
		{ 1006, 0 }, { 1007, 1 }, { 1008, 1 }, { 1009, 1 },
		{ 1010, 1 }, { 1011, 1 }, { 1012, 1 }, { 1013, 1 },
		{ 1014, 1 }, { 1015, 0 }, { 1016, 0 }, { 2000, 0 },
		{ 2999, 0 }, { 3000, 1 }, { 3500, 1 }, { 4000, 1 },
		{ 4999, 1 }, { 5000, 0 }, { 65535, 0 }, { 70000, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_EQ(ws_close_code_valid(t[i].code), t[i].valid);
}

static void test_too_big(void)
{
	ws_decoder d;
	size_t n;

	/* Refused from the header alone: 8 header bytes are enough. */
	fill(orig, 1000, 0);
	n = 0;
	frame(wire, &n, WS_OP_BINARY, 1, orig, 1000, key1);
	CHECK_EQ(expect_err(n, 1, 999, 1009), 8);
	ws_decoder_init(&d, 1, 999);
	CHECK_EQ(run(&d, wire, 8, 8, 0, &R), -1009);

	/* Exactly the limit is fine. */
	n = 0;
	frame(wire, &n, WS_OP_BINARY, 1, orig, 1000, key1);
	ws_decoder_init(&d, 1, 1000);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
	CHECK_EQ(R.nmsg, 1);

	/* The limit is on the message, summed over fragments. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "123456", 6, key1);
	frame(wire, &n, WS_OP_PING, 1, "ping ping ping", 14, key1);
	frame(wire, &n, WS_OP_CONT, 1, "7890", 4, key1);
	ws_decoder_init(&d, 1, 10);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
	CHECK_EQ(R.data_len, 10);

	n = 0;
	frame(wire, &n, WS_OP_TEXT, 0, "123456", 6, key1);
	frame(wire, &n, WS_OP_CONT, 0, "789", 3, key1);
	frame(wire, &n, WS_OP_CONT, 1, "01", 2, key1);
	CHECK_EQ(expect_err(n, 1, 10, 1009), 12 + 9 + 6);

	/* Each message starts a new count. */
	n = 0;
	frame(wire, &n, WS_OP_TEXT, 1, "123456", 6, key1);
	frame(wire, &n, WS_OP_BINARY, 1, "123456", 6, key1);
	ws_decoder_init(&d, 1, 10);
	CHECK_EQ(run(&d, wire, n, n, 0, &R), n);
	CHECK_EQ(R.nmsg, 2);

	/* 0 means no limit, even for a 2^62-byte header. */
	memcpy(wire, "\x82\x7f\x40\0\0\0\0\0\0\0", 10);
	ws_decoder_init(&d, 0, 0);
	CHECK_EQ(run(&d, wire, 10, 10, 0, &R), 10);
	CHECK_EQ(R.ndata, 0);
	ws_decoder_init(&d, 0, 1u << 20);
	CHECK_EQ(run(&d, wire, 10, 10, 0, &R), -1009);
}

/* An all-zero key leaves the payload as it is on the wire. */
static void test_zero_mask(void)
{
	ws_decoder d;
	size_t n = 0;

	fill(orig, 1000, 1);
	frame(wire, &n, WS_OP_TEXT, 1, orig, 1000, key0);
	CHECK_EQ(wire[1], 0x80 | 126);
	CHECK_MEM(wire + 4, key0, 4);
	CHECK_MEM(wire + 8, orig, 1000);
	ws_decoder_init(&d, 1, 0);
	CHECK_EQ(run(&d, wire, n, 333, 100, &R), n);
	CHECK_EQ(d.mask_zero, 1);
	CHECK_EQ(R.data_len, 1000);
	CHECK_MEM(R.data, orig, 1000);
	CHECK_MEM(wire + 8, orig, 1000);

	/* And a real key after it does get applied. */
	n = 0;
	frame(wire, &n, WS_OP_BINARY, 1, orig, 1000, key1);
	CHECK(memcmp(wire + 8, orig, 1000) != 0);
	CHECK_EQ(run(&d, wire, n, 333, 100, &R), n);
	CHECK_EQ(d.mask_zero, 0);
	CHECK_MEM(R.data, orig, 1000);
}

static void test_mask(void)
{
	static const uint64_t offs[] = { 0, 1, 2, 3, 5, 0x100000003ULL };
	uint8_t a[128], b[128];
	size_t len, i, o, shift;
	int wrong = 0;

	for (o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
	for (shift = 0; shift < 8; shift++)
	for (len = 0; len <= 100; len++) {
		for (i = 0; i < sizeof(a); i++)
			a[i] = b[i] = (uint8_t)(i * 13 + len);
		ws_mask(a + shift, len, key1, offs[o]);
		for (i = 0; i < len; i++)
			b[shift + i] ^= key1[(offs[o] + i) % 4];
		/* Bytes outside [shift, shift+len) must be untouched too. */
		if (memcmp(a, b, sizeof(a)) != 0)
			wrong++;
	}
	CHECK_EQ(wrong, 0);

	/* Masking in two pieces equals masking at once. */
	for (i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)i;
	ws_mask(a, 128, key1, 0);
	ws_mask(b, 37, key1, 0);
	ws_mask(b + 37, 91, key1, 37);
	CHECK_MEM(a, b, 128);
	/* And twice is the identity. */
	ws_mask(a, 128, key1, 0);
	for (i = 0; i < sizeof(a); i++)
		b[i] = (uint8_t)i;
	CHECK_MEM(a, b, 128);
}

int main(void)
{
	test_encode_header();
	test_roundtrip();
	test_split_everywhere();
	test_small_chunks();
	test_fragmentation();
	test_event_flags();
	test_utf8_fragments();
	test_errors_framing();
	test_errors_text();
	test_close();
	test_close_code_valid();
	test_too_big();
	test_zero_mask();
	test_mask();
	return test_summary("ws");
}
