/*
 * ws.c - RFC 6455 frame codec.  Layer: protocol.
 *
 * The decoder is a two-state machine (header, payload) that accepts its
 * input split at any byte.  Data payload is unmasked in place and handed
 * out as it arrives, so memory use does not grow with the message size;
 * control frames are small (<= 125 bytes) and are collected whole so the
 * caller never sees half a ping or a close.  Every error is reported as
 * the negated close code the peer should get, and is sticky: once a
 * decoder has failed it keeps returning the same code.
 */
#include <limits.h>
#include <string.h>

#include "ws.h"

enum { ST_HEADER = 0, ST_PAYLOAD };

#define ERR(d, code) ((d)->state = -(code), -(ssize_t)(code))

static int is_control(int opcode)
{
	return opcode & 0x08;
}

void ws_decoder_init(ws_decoder *d, int server, uint64_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->require_mask = server != 0;
	d->expect_unmasked = server == 0;
	d->max_message = max_message;
	d->state = ST_HEADER;
	d->hdr_need = 2;
}

/*
 * The first two header bytes decide almost every protocol error, so check
 * them before waiting for the extended length and the key (fail fast), and
 * work out how many header bytes are still to come.
 */
static int header_start(ws_decoder *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	unsigned len7 = b1 & 0x7f;

	d->fin = (b0 & 0x80) != 0;
	d->opcode = b0 & 0x0f;
	d->masked = (b1 & 0x80) != 0;

	/* No extension was negotiated, so no RSV bit has a meaning. */
	if (b0 & 0x70)
		return -WS_CLOSE_PROTOCOL;
	switch (d->opcode) {
	case WS_OP_CONT:
		if (!d->in_message)
			return -WS_CLOSE_PROTOCOL;
		break;
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		/* Messages do not nest; only control frames interleave. */
		if (d->in_message)
			return -WS_CLOSE_PROTOCOL;
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		/* §5.5: control frames are short and never fragmented. */
		if (!d->fin || len7 > WS_MAX_CONTROL)
			return -WS_CLOSE_PROTOCOL;
		/* §5.5.1: a close body starts with a 2-byte code. */
		if (d->opcode == WS_OP_CLOSE && len7 == 1)
			return -WS_CLOSE_PROTOCOL;
		break;
	default:
		return -WS_CLOSE_PROTOCOL;
	}
	/* §5.1: clients mask, servers do not. */
	if (d->require_mask && !d->masked)
		return -WS_CLOSE_PROTOCOL;
	if (d->expect_unmasked && d->masked)
		return -WS_CLOSE_PROTOCOL;

	d->hdr_need = 2;
	if (len7 == 126)
		d->hdr_need += 2;
	else if (len7 == 127)
		d->hdr_need += 8;
	if (d->masked)
		d->hdr_need += 4;
	return 0;
}

/* The whole header is in d->hdr: length, key, message bookkeeping. */
static int header_end(ws_decoder *d)
{
	const uint8_t *p = d->hdr + 2;
	uint64_t len = d->hdr[1] & 0x7f;
	int i;

	/* §5.2: the minimal number of bytes must be used for the length. */
	if (len == 126) {
		len = (uint64_t)p[0] << 8 | p[1];
		p += 2;
		if (len < 126)
			return -WS_CLOSE_PROTOCOL;
	} else if (len == 127) {
		len = 0;
		for (i = 0; i < 8; i++)
			len = len << 8 | p[i];
		p += 8;
		if (len >> 63 || len < 65536)
			return -WS_CLOSE_PROTOCOL;
	}

	if (d->masked) {
		memcpy(d->mask, p, 4);
		d->mask_zero = memcmp(d->mask, "\0\0\0\0", 4) == 0;
	} else
		d->mask_zero = 1;
	d->mask_off = 0;
	d->remaining = len;

	if (is_control(d->opcode)) {
		d->ctl_have = 0;
		return 0;
	}
	if (d->opcode != WS_OP_CONT) {
		d->in_message = 1;
		d->msg_opcode = d->opcode;
		d->msg_started = 0;
		d->msg_size = 0;
		d->utf8 = (utf8_state)UTF8_INIT;
	}
	/* Refuse an oversized message before reading any of its payload. */
	if (d->max_message != 0) {
		if (len > d->max_message - d->msg_size)
			return -WS_CLOSE_TOO_BIG;
		d->msg_size += len;
	}
	return 0;
}

/*
 * Collect header bytes from buf[*pos..len).  Returns 1 when the header is
 * complete, 0 when more input is needed, or a negative close code.
 */
static int read_header(ws_decoder *d, const uint8_t *buf, size_t len,
    size_t *pos)
{
	size_t n;
	int rc;

	while (d->hdr_have < d->hdr_need) {
		if (*pos == len)
			return 0;
		n = d->hdr_need - d->hdr_have;
		if (n > len - *pos)
			n = len - *pos;
		memcpy(d->hdr + d->hdr_have, buf + *pos, n);
		d->hdr_have += n;
		*pos += n;
		/* hdr_need starts at 2, so this is reached exactly once. */
		if (d->hdr_have == 2 && (rc = header_start(d)) < 0)
			return rc;
	}
	if ((rc = header_end(d)) < 0)
		return rc;
	return 1;
}

/* The current frame is fully consumed: expect the next header. */
static void frame_done(ws_decoder *d)
{
	d->state = ST_HEADER;
	d->hdr_have = 0;
	d->hdr_need = 2;
}

/* Hand out the next piece of a text/binary frame's payload, in place. */
static int data_chunk(ws_decoder *d, uint8_t *buf, size_t len, size_t *pos,
    size_t max_payload, ws_event *ev)
{
	uint8_t *p = buf + *pos;
	size_t n = len - *pos;
	int fin;

	if (n > d->remaining)
		n = d->remaining;
	if (max_payload != 0 && n > max_payload)
		n = max_payload;
	/* Only an empty frame yields an empty chunk (so fin is seen). */
	if (n == 0 && d->remaining != 0)
		return 0;

	if (!d->mask_zero)
		ws_mask(p, n, d->mask, d->mask_off);
	d->mask_off += n;
	d->remaining -= n;
	*pos += n;
	fin = d->fin && d->remaining == 0;

	/* §8.1: fail as soon as the text stops being UTF-8. */
	if (d->msg_opcode == WS_OP_TEXT) {
		if (utf8_feed(&d->utf8, p, n) == -1)
			return -WS_CLOSE_BAD_DATA;
		if (fin && !utf8_complete(&d->utf8))
			return -WS_CLOSE_BAD_DATA;
	}

	ev->type = WS_EV_DATA;
	ev->opcode = d->msg_opcode;
	ev->first = !d->msg_started;
	ev->fin = fin;
	ev->data = p;
	ev->len = n;
	d->msg_started = 1;
	if (fin)
		d->in_message = 0;
	if (d->remaining == 0)
		frame_done(d);
	return 1;
}

/* A complete control frame is in d->ctl: check it and describe it. */
static int control_event(ws_decoder *d, ws_event *ev)
{
	ev->opcode = d->opcode;
	ev->first = 1;
	ev->fin = 1;
	ev->data = d->ctl;
	ev->len = d->ctl_have;
	switch (d->opcode) {
	case WS_OP_PING:
		ev->type = WS_EV_PING;
		return 1;
	case WS_OP_PONG:
		ev->type = WS_EV_PONG;
		return 1;
	}

	ev->type = WS_EV_CLOSE;
	if (d->ctl_have == 0) {
		ev->code = WS_CLOSE_NO_STATUS;
		return 1;
	}
	/* header_start() refused a 1-byte body, so the code is all here. */
	ev->code = d->ctl[0] << 8 | d->ctl[1];
	if (!ws_close_code_valid(ev->code))
		return -WS_CLOSE_PROTOCOL;
	ev->data = d->ctl + 2;
	ev->len = d->ctl_have - 2;
	if (!utf8_valid(ev->data, ev->len))
		return -WS_CLOSE_BAD_DATA;
	return 1;
}

/* Collect a control frame's payload; report it once it is whole. */
static int control_chunk(ws_decoder *d, const uint8_t *buf, size_t len,
    size_t *pos, ws_event *ev)
{
	size_t n = len - *pos;

	if (n > d->remaining)
		n = d->remaining;
	memcpy(d->ctl + d->ctl_have, buf + *pos, n);
	if (!d->mask_zero)
		ws_mask(d->ctl + d->ctl_have, n, d->mask, d->mask_off);
	d->mask_off += n;
	d->ctl_have += n;
	d->remaining -= n;
	*pos += n;
	if (d->remaining != 0)
		return 0;
	frame_done(d);
	return control_event(d, ev);
}

/*
 * max_payload 0 means no limit on a data chunk; anything else caps it, so
 * the caller can bound how much it has to forward at once.
 */
ssize_t ws_decode(ws_decoder *d, uint8_t *buf, size_t len,
    size_t max_payload, ws_event *ev)
{
	size_t pos = 0;
	int rc;

	memset(ev, 0, sizeof(*ev));
	ev->type = WS_EV_NONE;
	if (d->state < 0)
		return d->state;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;

	if (d->state == ST_HEADER) {
		rc = read_header(d, buf, len, &pos);
		if (rc < 0)
			return ERR(d, -rc);
		if (rc == 0)
			return (ssize_t)pos;
		d->state = ST_PAYLOAD;
	}
	if (is_control(d->opcode))
		rc = control_chunk(d, buf, len, &pos, ev);
	else
		rc = data_chunk(d, buf, len, &pos, max_payload, ev);
	if (rc < 0) {
		memset(ev, 0, sizeof(*ev));
		return ERR(d, -rc);
	}
	return (ssize_t)pos;
}

size_t ws_encode_header(uint8_t *out, int opcode, int fin, uint64_t len,
    const uint8_t *mask)
{
	size_t n = 2;
	int i;

	out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
	if (len < 126)
		out[1] = (uint8_t)len;
	else if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = 127;
		for (i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask != NULL) {
		out[1] |= 0x80;
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t off)
{
	uint8_t kb[8];
	uint64_t k, w;
	int i;

	/* Bytes until data is word aligned, so words never straddle lines. */
	while (len > 0 && ((uintptr_t)data & 7) != 0) {
		*data++ ^= key[off++ & 3];
		len--;
	}
	if (len >= 8) {
		/* The key rotated to the current offset, twice over. */
		for (i = 0; i < 8; i++)
			kb[i] = key[(off + i) & 3];
		memcpy(&k, kb, sizeof(k));
		/* 8 is a multiple of 4: off mod 4 is the same afterwards. */
		for (; len >= 8; len -= 8, data += 8) {
			memcpy(&w, data, sizeof(w));
			w ^= k;
			memcpy(data, &w, sizeof(w));
		}
	}
	while (len > 0) {
		*data++ ^= key[off++ & 3];
		len--;
	}
}

/*
 * §7.4: 1004-1006 and 1015 are reserved and must never be sent; 1012-1014
 * were registered later with IANA and are accepted; 3000-4999 belong to
 * libraries and applications; everything else is unassigned.
 */
int ws_close_code_valid(int code)
{
	if (code >= 1000 && code <= 1003)
		return 1;
	if (code >= 1007 && code <= 1014)
		return 1;
	return code >= 3000 && code <= 4999;
}
