/*
 * kcpclient.h - the KCP channel of websocksy-client's mux mode
 * (docs/KCP-MUX.md §6): one connected UDP socket, one KCP conversation in
 * stream mode with a random non-zero conv, optionally sealed with the
 * pre-shared-key envelope (§6.1).  The KCP timers run on demand
 * (kcp_next), not at a fixed interval.
 *
 * A session that receives nothing for 60 s is dropped (its streams are
 * reset); the next local connection starts a new conversation.
 */
#ifndef WSY_KCPCLIENT_H
#define WSY_KCPCLIENT_H

#include <stdint.h>
#include <sys/socket.h>

#include "../core/kcp.h"
#include "../core/loop.h"
#include "../core/opts.h"
#include "muxclient.h"

extern const muxc_chan kcpc_chan;

/* Move the session to a new UDP socket (a new ephemeral source port),
 * keeping the conversation.  A roaming aid, and the test hook behind
 * SIGUSR1: with a key the server follows the session to the new address.
 */
void kcpc_rebind(void);

/* Release what outlives sessions (the replay cache). */
void kcpc_cleanup(void);

/* ---- shared with the raw KCP relay (kcpraw.c) ---- */

#define KCPC_SESSION_TIMEOUT 60000 /* ms without any input: dropped */
#define KCPC_DGRAM_MAX 65536       /* receive buffer for one datagram */
#define KCPC_RECV_BATCH 256        /* datagrams per wakeup, then yield */

/* A non-blocking UDP socket connected to ss with large kernel buffers,
 * watched for reading with cb(arg).  Returns the fd, or -1 with errno. */
int kcpc_udp_socket(const struct sockaddr_storage *ss, socklen_t sslen,
    loop_io_cb cb, void *arg);
/* A KCP conversation with the client's settings (o: kcp-mtu less the
 * envelope with a key, kcp-window) and the defaults of §6: stream mode,
 * nodelay, interval 10, resend 2, no congestion window.  NULL: ENOMEM. */
kcp *kcpc_kcp_new(const client_opts *o, uint32_t conv, kcp_output_fn out,
    void *arg);
/* A random non-zero conversation id. */
uint32_t kcpc_conv(void);
/* Arm t for the next kcp_flush() k asks for (stop it when idle). */
void kcpc_schedule(const kcp *k, loop_timer *t);

#endif
