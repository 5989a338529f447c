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

#include "muxclient.h"

extern const muxc_chan kcpc_chan;

/* Move the session to a new UDP socket (a new ephemeral source port),
 * keeping the conversation.  A roaming aid, and the test hook behind
 * SIGUSR1: with a key the server follows the session to the new address.
 */
void kcpc_rebind(void);

/* Release what outlives sessions (the replay cache). */
void kcpc_cleanup(void);

#endif
