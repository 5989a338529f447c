/*
 * kcpserve.h - websocksy's KCP-mux listener: one UDP socket, KCP sessions
 * keyed by conv (optionally sealed with a pre-shared key), each carrying a
 * kcp-mux tunnel whose streams go to peers.  Layer: bridge (beside the
 * WebSocket bridge; shares the session machinery of core/session.h).
 */
#ifndef WSY_KCPSERVE_H
#define WSY_KCPSERVE_H

#include "cfg.h"

/* Check the KCP settings and load the session framing (no-op if
 * kcp-listen is empty), before anything listens.  Prints each problem to
 * stderr and returns their count. */
int kcpserve_prepare(const wsy_config *cfg);
/* Then listen on cfg->kcp_listen (no-op if empty).  Returns 0, or -1
 * with a reason printed to stderr. */
int kcpserve_start(const wsy_config *cfg);
/* Graceful stop: GOAWAY to every session (bounded by close-timeout). */
void kcpserve_shutdown(void);
void kcpserve_cleanup(void);
/* Sessions alive (for the stop condition and logs). */
size_t kcpserve_sessions(void);

#endif
