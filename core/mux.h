/*
 * mux.h - KCP-mux: many TCP streams over one ordered, reliable byte
 * channel (docs/KCP-MUX.md).  Layer: protocol.  No I/O, no clock reads,
 * no poll: the caller feeds channel bytes in (mux_input), takes frames out
 * through the output callback, and passes the time in (mux_tick).
 *
 * Memory is bounded by the configuration: a stream table of 2 *
 * max_streams slots, one frame buffer of max_frame bytes, and per stream at
 * most one window of buffered 0-RTT data.  Output never exceeds the room
 * the caller reports (mux_set_room); control frames that do not fit wait as
 * flags, not bytes.
 */
#ifndef WSY_MUX_H
#define WSY_MUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Frame types and flags (§1). */
enum { MUX_DATA = 0x0, MUX_HEADERS = 0x1, MUX_SETTINGS = 0x4, MUX_PING = 0x6,
       MUX_GOAWAY = 0x7, MUX_WINDOW_UPDATE = 0x8 };
#define MUX_F_ACK 0x1
#define MUX_F_END_STREAM 0x1

/* Settings ids. */
enum { MUX_SET_MAX_STREAMS = 0x3, MUX_SET_WINDOW = 0x4,
       MUX_SET_MAX_FRAME = 0x5 };

/* GOAWAY error codes (the HTTP/2 numbers). */
enum { MUX_E_NONE = 0, MUX_E_PROTOCOL = 1, MUX_E_INTERNAL = 2,
       MUX_E_FLOW = 3, MUX_E_FRAME_SIZE = 6 };

#define MUX_HDR_LEN 9
#define MUX_DEFAULT_WINDOW 262144u
/* What we advertise by default: a window must cover the path's
 * bandwidth-delay product (1 MiB: 20 MB/s per stream at 50 ms); memory per
 * stream is bounded by it, in total by it times max-streams. */
#define MUX_LOCAL_WINDOW 1048576u
#define MUX_DEFAULT_FRAME 16384u
#define MUX_MAX_FRAME_LIMIT 65535u
#define MUX_MAX_WINDOW 0x7fffffffu
#define MUX_URI_MAX 1024          /* longest peer URI in a SYN */
#define MUX_REASON_MAX 128        /* reasons are cut to this, NUL included */

/* ---- frame codec ---- */

typedef struct mux_frame {
	int type;                 /* -1: no frame yet */
	int flags;
	uint32_t stream;
	const uint8_t *payload;   /* into the input or the decoder's buffer */
	size_t len;
} mux_frame;

typedef struct mux_decoder {
	uint32_t max_frame;
	int err;                  /* sticky MUX_E_* once failed, else 0 */
	uint8_t hdr[MUX_HDR_LEN];
	size_t hdr_have;
	size_t plen;              /* payload length of the current frame */
	size_t have;              /* payload bytes collected in buf */
	uint8_t *buf;             /* max_frame bytes, allocated on first split */
} mux_decoder;

/* Write a 9-byte frame header. */
void mux_put_header(uint8_t *out, size_t len, int type, int flags,
    uint32_t stream);
/* Encode a whole frame into out[0..cap).  Returns its size, or 0 if it
 * does not fit or len > MUX_MAX_FRAME_LIMIT. */
size_t mux_encode(uint8_t *out, size_t cap, int type, int flags,
    uint32_t stream, const void *payload, size_t len);

void mux_decoder_init(mux_decoder *d, uint32_t max_frame);
void mux_decoder_free(mux_decoder *d);
/* At a frame boundary (nothing of the next frame received yet)? */
int mux_decoder_idle(const mux_decoder *d);
/*
 * Consume bytes from in[0..len) until one frame is complete (f->type >= 0)
 * or the input is used up (f->type == -1).  Returns the bytes consumed, or
 * -1 with d->err set (a frame longer than max_frame: MUX_E_FRAME_SIZE; out
 * of memory: MUX_E_INTERNAL).  A frame's payload stays valid until the next
 * call.  Input may be split at any byte.
 */
ssize_t mux_decode(mux_decoder *d, const uint8_t *in, size_t len,
    mux_frame *f);

/* ---- tunnel ---- */

enum mux_tunnel_state { MUX_T_INIT = 0, MUX_T_HANDSHAKE_SENT, MUX_T_READY,
                        MUX_T_CLOSED };
enum mux_stream_state { MUX_S_NONE = 0, MUX_S_SYN_SENT, MUX_S_ESTABLISHED,
                        MUX_S_FIN_SENT, MUX_S_FIN_RECV, MUX_S_DEAD,
                        MUX_S_REAL_CLOSED };

typedef struct mux_config {
	int server;               /* 1: server role (accepts SYN) */
	uint32_t max_streams;     /* MAX_CONCURRENT_STREAMS we accept */
	uint32_t window;          /* INITIAL_WINDOW_SIZE; 0: empty SETTINGS,
	                           * no per-stream flow control */
	uint32_t max_frame;       /* MAX_FRAME_SIZE we accept, 16384..65535 */
	uint32_t keepalive_ms;    /* PING after this long idle; 0: off */
	uint32_t timeout_ms;      /* no PING ack / no handshake: close */
} mux_config;

/*
 * Callbacks.  All run synchronously inside mux calls and may call mux
 * functions again, except mux_tunnel_free.  Strings are NUL-terminated
 * copies valid for the call.
 */
typedef struct mux_callbacks {
	/* Bytes for the channel; calls concatenate to the byte stream and
	 * never exceed the reported room. */
	void (*output)(void *arg, const uint8_t *p, size_t n);
	/* Server: a SYN; uri is "" for the default peer.  Answer later with
	 * mux_stream_accept or mux_stream_reset. */
	void (*stream_open)(void *arg, uint32_t id, const char *uri);
	/* In-order payload; report it with mux_stream_consumed once written. */
	void (*stream_data)(void *arg, uint32_t id, const uint8_t *p, size_t n);
	void (*stream_fin)(void *arg, uint32_t id);
	/* The peer reset the stream, or the tunnel closed under it. */
	void (*stream_reset)(void *arg, uint32_t id, const char *reason);
	/* mux_stream_send may accept more bytes now. */
	void (*stream_writable)(void *arg, uint32_t id);
	/* The tunnel is over (error, keepalive timeout or drained GOAWAY):
	 * flush the output, then close the channel. */
	void (*tunnel_closed)(void *arg, const char *reason);
	void *arg;
} mux_callbacks;

typedef struct mux_tunnel mux_tunnel;

void mux_config_default(mux_config *c, int server);
/* NULL on a bad configuration (errno EINVAL) or no memory. */
mux_tunnel *mux_tunnel_new(const mux_config *c, const mux_callbacks *cb,
    uint64_t now_ms);
void mux_tunnel_free(mux_tunnel *t);

/* The caller's output buffer has room for n more bytes now; flushes what
 * waits and wakes blocked streams. */
void mux_set_room(mux_tunnel *t, size_t n);
/* Channel bytes in.  Returns the bytes consumed (fewer than len while a
 * stream without flow control is full or the refusal queue is: feed the
 * rest later), or -1 once the tunnel is closed. */
ssize_t mux_input(mux_tunnel *t, const uint8_t *p, size_t len);
/* Time passes: keepalive and timeouts.  Returns ms until the next deadline
 * (-1: none). */
int mux_tick(mux_tunnel *t, uint64_t now_ms);
/* Send a PING now (if none is outstanding). */
int mux_ping(mux_tunnel *t);
/* Graceful shutdown: no new streams; tunnel_closed when all are done. */
int mux_goaway(mux_tunnel *t, const char *reason);

/* Client: open a stream (uri NULL or "" = default peer).  Returns the new
 * odd id, or 0 with errno EAGAIN (stream limit), EPIPE (closed or going
 * away), EINVAL (uri too long), ENOMEM. */
uint32_t mux_stream_new(mux_tunnel *t, const char *uri);
/* Queue up to len bytes; returns how many were taken (0: blocked, wait
 * for stream_writable), or -1 if the stream cannot send. */
ssize_t mux_stream_send(mux_tunnel *t, uint32_t id, const void *p,
    size_t len);
int mux_stream_fin(mux_tunnel *t, uint32_t id);
int mux_stream_reset(mux_tunnel *t, uint32_t id, const char *reason);
/* Server: the peer connected; SYN-ACK and buffered 0-RTT data follow. */
int mux_stream_accept(mux_tunnel *t, uint32_t id);
/* n delivered bytes were written to the local socket. */
void mux_stream_consumed(mux_tunnel *t, uint32_t id, size_t n);
/* The local socket is closed: forget the id (real_closed).  A live
 * stream is reset first. */
void mux_stream_release(mux_tunnel *t, uint32_t id);

int mux_tunnel_state(const mux_tunnel *t);
int mux_stream_state(const mux_tunnel *t, uint32_t id);
/* Streams not yet dead / slots in use (live + dead not released). */
uint32_t mux_active_streams(const mux_tunnel *t);
uint32_t mux_used_slots(const mux_tunnel *t);
/* Bytes of 0-RTT data held for a stream not yet accepted. */
size_t mux_stream_held(const mux_tunnel *t, uint32_t id);
/* Current send window of a stream (may be negative; INT64_MAX without
 * flow control). */
int64_t mux_stream_send_window(const mux_tunnel *t, uint32_t id);
/* 1 once both sides do per-stream flow control. */
int mux_flow_control(const mux_tunnel *t);

#endif
