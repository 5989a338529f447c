/*
 * bridge.h - the connection state machine: accept, HTTP upgrade, backend
 * query, peer connect, relay through the framing, close.  Layer: bridge
 * (uses everything below: loop, sockets, peers, codecs, plugins).
 */
#ifndef WSY_BRIDGE_H
#define WSY_BRIDGE_H

#include "cfg.h"
#include "plugin.h"
#include "tls.h"

/* The host functions plugins call (valid for the life of the process). */
const wsy_host *bridge_host(void);

/* Start serving with cfg and the opened, started backend be. */
int bridge_init(const wsy_config *cfg, backend *be);
/* TLS credentials for TLS listeners; *srv may be replaced (reload). */
void bridge_set_tls(tls_server **srv);
/* Accept connections on a listening fd (tls: a TLS port). */
int bridge_listen(int fd, int tls);
/* Graceful stop (SIGTERM): stop accepting, close 1001 to every client,
 * stop the loop when all are gone or after close-timeout. */
void bridge_shutdown(void);
void bridge_cleanup(void);
/* A connection id for logs, unique across the bridge and KCP sessions. */
uint64_t bridge_new_id(void);
/* While stopping: stop the loop once nothing is left (KCP sessions
 * included); kcpserve calls it when its last session ends. */
void bridge_maybe_stopped(void);

#endif
