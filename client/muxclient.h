/*
 * muxclient.h - websocksy-client's mux mode (docs/KCP-MUX.md): every
 * accepted local TCP connection becomes a stream of ONE kcp-mux tunnel,
 * carried by one byte channel: a WebSocket (ws;...;mux, here) or a KCP
 * session over UDP (kcp, client/kcpclient.c).
 *
 * The channel is opened on first need and reopened, with backoff, when a
 * new local connection arrives after it dropped; streams that were open on
 * a dropped channel are reset (their local sockets closed).  Memory is
 * bounded by the windows: per stream one receive window of bytes for the
 * local socket and one read buffer; per tunnel fixed channel buffers.
 */
#ifndef WSY_MUXCLIENT_H
#define WSY_MUXCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "tunnel.h"

/* A byte channel under the mux.  Calls never call back into muxc_*
 * synchronously except where noted; failures are reported from the
 * channel's own I/O or timer callbacks with muxc_chan_down(). */
typedef struct muxc_chan {
	const char *name;
	/* Start connecting; muxc_chan_up() once bytes may flow, or
	 * muxc_chan_down().  Returns 0 or -1. */
	int (*open)(void);
	/* Take up to n mux bytes (0: full, muxc_kick() when room returns). */
	size_t (*push)(const uint8_t *p, size_t n);
	/* Input room is back: deliver what the channel holds. */
	void (*resume)(void);
	/* Best-effort flush of what was pushed, then drop the channel. */
	void (*close)(void);
} muxc_chan;

/* The WebSocket channel (ws or wss, options of cfg->opt). */
extern const muxc_chan muxc_ws_chan;

/* cfg must outlive the client.  Returns 0 or -1. */
int muxc_init(const tunnel_cfg *cfg, const muxc_chan *chan);
int muxc_listen(int fd);
/* Stop accepting, GOAWAY, let open streams finish (bounded by
 * close_wait_ms), then stop the loop. */
void muxc_shutdown(void);
void muxc_cleanup(void);

/* ---- for channels ---- */
const tunnel_cfg *muxc_cfg(void);
void muxc_chan_up(void);
/* The channel is gone (it has released its resources). */
void muxc_chan_down(const char *why);
/* Where received channel bytes go: up to *room bytes at the returned
 * pointer (room 0: full, the channel waits for resume()). */
uint8_t *muxc_in_tail(size_t *room);
/* n bytes were written at the tail: hand them to the mux. */
void muxc_in_commit(size_t n);
/* Output room may be back: push what waits, wake blocked streams. */
void muxc_kick(void);

#endif
