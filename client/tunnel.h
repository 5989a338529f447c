/*
 * tunnel.h - websocksy-client's relay: one local TCP connection in, one
 * remote connection out (raw TCP, raw TLS, ws or wss), bytes both ways.
 *
 * Close rules (nothing already received is dropped):
 *  - local EOF: everything read is sent, then close 1000 (ws) or a write
 *    shutdown (raw); the remote's data keeps flowing to the local side
 *    until the server's close / the remote's EOF, waited for a bounded time;
 *  - server close or remote EOF: everything received is written to the
 *    local socket, then shutdown(SHUT_WR), then close.
 */
#ifndef WSY_CLIENT_TUNNEL_H
#define WSY_CLIENT_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/opts.h"
#include "../core/peer.h"
#include "../core/sip003.h"
#include "../core/tls.h"

typedef struct tunnel_cfg {
	const client_opts *opt;
	peer_uri remote[SIP003_MAX_HOSTS];	/* tried in turn */
	int nremote;
	tls_client *tls;		/* set iff opt->tls */
	size_t bufsize;			/* per direction */
	uint64_t close_wait_ms;		/* close handshake, local drain */
} tunnel_cfg;

/* cfg must outlive the tunnel.  Returns 0 or -1. */
int tunnel_init(const tunnel_cfg *cfg);
/* Accept local connections on the listening fd.  Returns 0 or -1. */
int tunnel_listen(int fd);
/* Stop accepting, end every connection (close 1001 / shutdown), and stop
 * the loop once all are gone or close_wait_ms has passed. */
void tunnel_shutdown(void);
void tunnel_cleanup(void);

#endif
