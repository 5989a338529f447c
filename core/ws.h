/*
 * ws.h - RFC 6455 frame codec: an incremental decoder that streams payload
 * and validates everything the RFC asks of a receiver, and a header encoder.
 * Layer: protocol (below the bridge).  Never logs, never allocates beyond
 * its context, never does I/O.
 */
#ifndef WSY_WS_H
#define WSY_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "utf8.h"

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2,
       WS_OP_CLOSE = 8, WS_OP_PING = 9, WS_OP_PONG = 10 };

/* Close codes (RFC 6455 §7.4.1). */
enum { WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001,
       WS_CLOSE_PROTOCOL = 1002, WS_CLOSE_UNSUPPORTED = 1003,
       WS_CLOSE_NO_STATUS = 1005, WS_CLOSE_ABNORMAL = 1006,
       WS_CLOSE_BAD_DATA = 1007, WS_CLOSE_POLICY = 1008,
       WS_CLOSE_TOO_BIG = 1009, WS_CLOSE_INTERNAL = 1011 };

#define WS_MAX_HEADER 14
#define WS_MAX_CONTROL 125

enum ws_ev_type { WS_EV_NONE = 0, WS_EV_DATA, WS_EV_PING, WS_EV_PONG,
                  WS_EV_CLOSE };

/*
 * One decoder event.  DATA: a chunk of a text/binary message (opcode is the
 * message's opcode, first set on the message's first chunk, fin set on its
 * last chunk; a chunk may be empty).  PING/PONG: complete control payload.
 * CLOSE: code (WS_CLOSE_NO_STATUS if the payload was empty) and reason.
 * data points into the caller's buffer (unmasked in place) or into the
 * decoder's control buffer; valid until the next ws_decode call.
 */
typedef struct ws_event {
	int type;
	int opcode;
	int first;            /* first chunk of a message */
	int fin;              /* last chunk of a message */
	const uint8_t *data;
	size_t len;
	int code;             /* CLOSE only */
} ws_event;

typedef struct ws_decoder {
	int require_mask;     /* server side: 1 (RFC 6455 §5.1) */
	int expect_unmasked;  /* client side: server frames must be unmasked */
	uint64_t max_message; /* 0 = no limit; else 1009 beyond */
	/* private state */
	int state;
	uint8_t hdr[WS_MAX_HEADER];
	size_t hdr_have;
	size_t hdr_need;
	int opcode, fin, masked;
	uint8_t mask[4];
	int mask_zero;
	uint64_t remaining;   /* payload bytes left in the current frame */
	uint64_t mask_off;
	int in_message;       /* a fragmented data message is open */
	int msg_opcode;
	int msg_started;      /* first chunk of the message already delivered */
	uint64_t msg_size;
	utf8_state utf8;
	uint8_t ctl[WS_MAX_CONTROL];
	size_t ctl_have;
} ws_decoder;

/* Initialise for a server (require_mask = 1) or a client (0). */
void ws_decoder_init(ws_decoder *d, int server, uint64_t max_message);

/*
 * Consume bytes from buf[0..len), unmasking payload in place.  Delivers at
 * most one event per call in *ev (type WS_EV_NONE if none yet) and at most
 * max_payload bytes of data payload.  Returns the number of bytes consumed
 * (>= 0), or a negative close code: -WS_CLOSE_PROTOCOL, -WS_CLOSE_BAD_DATA,
 * -WS_CLOSE_TOO_BIG.  Call again while it consumes bytes or yields events.
 */
ssize_t ws_decode(ws_decoder *d, uint8_t *buf, size_t len,
    size_t max_payload, ws_event *ev);

/* Encode a frame header into out (WS_MAX_HEADER bytes); mask may be NULL
 * (no mask bit).  Returns the header length. */
size_t ws_encode_header(uint8_t *out, int opcode, int fin, uint64_t len,
    const uint8_t *mask);

/* XOR data with key, starting at key offset off (mod 4); wide words. */
void ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t off);

/* 1 if code may appear in a close frame on the wire (§7.4). */
int ws_close_code_valid(int code);

#endif
