/*
 * framing_kcpecho.c - a test framing session that echoes every message
 * back, in order, with the same opcode.  websocksy's KCP listener uses it
 * (WSY_KCP_FRAMING=kcpecho) so that a plain kcp-go peer, which cannot
 * speak mux, checks our KCP transport byte for byte.
 *
 * Backpressure: bytes the host cannot take yet are held (up to HOLD_MAX);
 * input pauses until they are gone, so memory stays bounded.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/websocksy_plugin.h"

#define HOLD_MAX (1 << 20)

struct echo {
	const wsy_session_host *h;
	void *conn;
	uint8_t *held;
	size_t len;
	int opcode, paused;
};

static void *echo_open(const wsy_session_host *h, void *conn,
    const char *config, const char *peer)
{
	struct echo *e;

	(void)config;
	(void)peer;
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->held = malloc(HOLD_MAX)) == NULL) {
		free(e);
		return NULL;
	}
	e->h = h;
	e->conn = conn;
	e->opcode = WSY_OP_BINARY;
	h->log(conn, WSY_LOG_INFO, "kcpecho: started");
	return e;
}

/* Send what is held, in halves when the host is short of room. */
static void echo_flush(struct echo *e)
{
	size_t off = 0, chunk = e->len, n;

	while (off < e->len && chunk > 0) {
		n = e->len - off < chunk ? e->len - off : chunk;
		if (e->h->ws_send(e->conn, e->opcode, e->held + off, n) == 0)
			off += n;
		else
			chunk /= 2;
	}
	memmove(e->held, e->held + off, e->len - off);
	e->len -= off;
	if (e->paused && e->len == 0) {
		e->paused = 0;
		e->h->ws_pause(e->conn, 0);
	}
}

static void echo_message(void *st, int opcode, const uint8_t *data,
    size_t len, int fin)
{
	struct echo *e = st;

	(void)fin;
	if (e->len + len > HOLD_MAX) {
		e->h->close(e->conn, 1011, "kcpecho: overflow");
		return;
	}
	e->opcode = opcode;
	memcpy(e->held + e->len, data, len);
	e->len += len;
	echo_flush(e);
	if (e->len && !e->paused) {
		e->paused = 1;
		e->h->ws_pause(e->conn, 1);
	}
}

static void echo_writable(void *st)
{
	echo_flush(st);
}

static void echo_peer_open(void *st, uint64_t id, int ok, const char *err)
{
	(void)st, (void)id, (void)ok, (void)err;
}

static void echo_peer_data(void *st, uint64_t id, const uint8_t *d,
    size_t n)
{
	(void)st, (void)id, (void)d, (void)n;
}

static void echo_peer_writable(void *st, uint64_t id)
{
	(void)st, (void)id;
}

static void echo_peer_error(void *st, uint64_t id, const char *err)
{
	(void)st, (void)id, (void)err;
}

static void echo_close(void *st, int code)
{
	struct echo *e = st;

	e->h->log(e->conn, WSY_LOG_INFO, "kcpecho: closed (%d)", code);
	free(e->held);
	free(e);
}

/* Built as a plugin of the first ABI 1 release would be: its table ends
 * with on_close (no on_shutdown), so SIGTERM closes its sessions at once
 * (test_shutdown_with_sessions checks that). */
static const wsy_session_ops session_ops = {
	.struct_size = offsetof(wsy_session_ops, on_shutdown),
	.open = echo_open,
	.on_message = echo_message,
	.on_ws_writable = echo_writable,
	.on_peer_open = echo_peer_open,
	.on_peer_data = echo_peer_data,
	.on_peer_writable = echo_peer_writable,
	.on_peer_error = echo_peer_error,
	.on_close = echo_close,
};

static const wsy_framing_ops framing_ops = { .session = &session_ops };

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_FRAMING,
	.name = "kcpecho",
	.ops_size = sizeof(wsy_framing_ops),
	.ops = &framing_ops,
};
