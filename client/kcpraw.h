/*
 * kcpraw.h - websocksy-client's raw KCP relay ('kcp;mux=0'): every
 * accepted local TCP connection gets its OWN KCP conversation (random
 * non-zero conv) on its own connected UDP socket to the remote, stream
 * mode with the settings of kcpclient.c (nodelay, interval 10, resend 2,
 * no congestion window, kcp-window, kcp-mtu), and its bytes go both ways
 * as they are: no mux, no envelope.  This is what a kcp-go peer without
 * FEC or crypt (tests/kcpgo), or a kcptun-like server, speaks.  psk= is
 * refused with mux=0 (core/opts.c): those peers do not speak the envelope
 * and websocksy's kcp-listen runs a session framing, not raw bytes.
 *
 * Backpressure: local bytes are read only while KCP's send buffer takes
 * them (kcp_writable); KCP data goes to the local socket through one
 * bounded buffer and stays in KCP (its receive window closes) while the
 * local side is slow.
 *
 * Closing (KCP has no FIN):
 *  - local EOF: nothing more is read; the connection lingers while what
 *    was sent is not yet acked or the remote still talks (its data still
 *    reaches the local socket), and closes once everything is acked and
 *    the remote has been quiet for a second, at most close_wait_ms after
 *    the EOF;
 *  - local error (reset, write failure): the local socket is closed at
 *    once, KCP lingers the same way to deliver what was sent;
 *  - nothing received for 60 s: closed.
 */
#ifndef WSY_KCPRAW_H
#define WSY_KCPRAW_H

#include "tunnel.h"

/* cfg must outlive the relay.  Returns 0 or -1. */
int kcpr_init(const tunnel_cfg *cfg);
/* Accept local connections on the listening fd.  Returns 0 or -1. */
int kcpr_listen(int fd);
/* Stop accepting; every connection ends as on local EOF; the loop stops
 * once all are gone or close_wait_ms has passed. */
void kcpr_shutdown(void);
void kcpr_cleanup(void);

#endif
