/*
 * session.h - framing sessions: a framing plugin that owns a whole
 * connection and opens peer streams through the host functions of the
 * plugin ABI (wsy_session_host).  Layer: bridge helper (peers, loop).
 * The bridge keeps the WebSocket side; this module keeps the streams.
 */
#ifndef WSY_SESSION_H
#define WSY_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "../plugins/websocksy_plugin.h"

/* How the session reaches the WebSocket side (the bridge's connection). */
typedef struct session_link {
	void *arg;
	uint64_t id;              /* connection id, for logs */
	int (*ws_send)(void *arg, int opcode, const uint8_t *d, size_t n);
	void (*ws_close)(void *arg, int code, const char *reason);
	void (*ws_pause)(void *arg, int paused);
} session_link;

typedef struct session_limits {
	size_t buffer_size;       /* per stream, toward the peer */
	uint64_t connect_timeout_ms;
	size_t max_streams;
} session_limits;

typedef struct session session;

/* Start a session; NULL if the plugin refused (or out of memory). */
session *session_open(const wsy_session_ops *ops, const char *config,
    const char *peer, const session_link *link, const session_limits *lim);
void session_message(session *s, int opcode, const uint8_t *d, size_t n,
    int fin);
void session_ws_writable(session *s);
/* The WebSocket is gone (code as the client sent it, or 1006): tell the
 * plugin, close every stream, free. */
void session_close(session *s, int code);
/* The server is shutting down: 0 if the session drains by itself (the
 * plugin has on_shutdown; it closes when done), -1 if the caller must
 * close it now. */
int session_shutdown(session *s);

#endif
