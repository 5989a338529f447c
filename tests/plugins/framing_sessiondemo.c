/*
 * framing_sessiondemo.c - a test framing session that exercises every host
 * function of the session ABI.  The client drives it with text commands:
 *
 *   open [URI]        open a stream (the backend's peer if no URI)
 *                     -> "opened ID" or "failed ID reason"
 *   shut ID           shutdown the stream's write side
 *   close ID          close the stream now
 *   pause ID / resume ID
 *   bye               close the WebSocket with 4000 "bye"
 *
 * Binary messages are "ID(4 bytes, big-endian) payload": the payload goes
 * to stream ID.  Peer data comes back the same way; the peer's EOF comes
 * back as "eof ID", a stream error as "error ID reason".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/websocksy_plugin.h"

struct demo {
	const wsy_session_host *h;
	void *conn;
	uint8_t msg[65536 + 4];       /* the current client message */
	size_t len;
	int opcode;
};

static void say(struct demo *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct demo *d, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		d->h->ws_send(d->conn, WSY_OP_TEXT, (uint8_t *)b,
		    (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

static void *demo_open(const wsy_session_host *h, void *conn,
    const char *config, const char *peer)
{
	struct demo *d = calloc(1, sizeof(*d));

	(void)config;
	if (d == NULL)
		return NULL;
	d->h = h;
	d->conn = conn;
	h->log(conn, WSY_LOG_INFO, "sessiondemo: started, peer %s", peer);
	return d;
}

static void command(struct demo *d, char *cmd)
{
	unsigned long long id = 0;
	char uri[300];

	if (strcmp(cmd, "open") == 0) {
		id = d->h->peer_open(d->conn, NULL);
		if (id == 0)
			say(d, "failed 0 refused");
	} else if (sscanf(cmd, "open %299s", uri) == 1) {
		id = d->h->peer_open(d->conn, uri);
		if (id == 0)
			say(d, "failed 0 refused");
	} else if (sscanf(cmd, "shut %llu", &id) == 1) {
		d->h->peer_shutdown(d->conn, id);
	} else if (sscanf(cmd, "close %llu", &id) == 1) {
		d->h->peer_close(d->conn, id);
		say(d, "closed %llu", id);
	} else if (sscanf(cmd, "pause %llu", &id) == 1) {
		d->h->peer_pause(d->conn, id, 1);
	} else if (sscanf(cmd, "resume %llu", &id) == 1) {
		d->h->peer_pause(d->conn, id, 0);
	} else if (strcmp(cmd, "bye") == 0) {
		d->h->close(d->conn, 4000, "bye");
	} else {
		say(d, "unknown command");
	}
}

static void demo_message(void *st, int opcode, const uint8_t *data,
    size_t len, int fin)
{
	struct demo *d = st;

	if (d->len == 0)
		d->opcode = opcode;
	if (len > sizeof(d->msg) - 1 - d->len) {
		d->h->close(d->conn, 1009, "sessiondemo: message too big");
		return;
	}
	memcpy(d->msg + d->len, data, len);
	d->len += len;
	if (!fin)
		return;
	if (d->opcode == WSY_OP_TEXT) {
		d->msg[d->len] = '\0';
		command(d, (char *)d->msg);
	} else if (d->len >= 4) {
		uint64_t id = (uint64_t)d->msg[0] << 24 | d->msg[1] << 16 |
		    d->msg[2] << 8 | d->msg[3];
		int64_t n = d->h->peer_write(d->conn, id, d->msg + 4,
		    d->len - 4);
		if (n < (int64_t)(d->len - 4))
			say(d, "short %llu %lld", (unsigned long long)id,
			    (long long)n);
	}
	d->len = 0;
}

static void demo_peer_open(void *st, uint64_t id, int ok, const char *err)
{
	struct demo *d = st;

	if (ok)
		say(d, "opened %llu", (unsigned long long)id);
	else
		say(d, "failed %llu %s", (unsigned long long)id, err);
}

static void demo_peer_data(void *st, uint64_t id, const uint8_t *data,
    size_t len)
{
	struct demo *d = st;
	uint8_t b[65536 + 4];

	if (len == 0) {
		say(d, "eof %llu", (unsigned long long)id);
		return;
	}
	b[0] = (uint8_t)(id >> 24);
	b[1] = (uint8_t)(id >> 16);
	b[2] = (uint8_t)(id >> 8);
	b[3] = (uint8_t)id;
	memcpy(b + 4, data, len);
	if (d->h->ws_send(d->conn, WSY_OP_BINARY, b, len + 4) < 0) {
		/* A real session would buffer and pause; the demo pauses
		 * the stream and drops nothing it has not been given. */
		d->h->log(d->conn, WSY_LOG_WARN, "sessiondemo: client full");
	}
}

static void demo_peer_error(void *st, uint64_t id, const char *err)
{
	say(st, "error %llu %s", (unsigned long long)id, err);
}

static void demo_close(void *st, int code)
{
	struct demo *d = st;

	d->h->log(d->conn, WSY_LOG_INFO, "sessiondemo: closed (%d)", code);
	free(d);
}

static const wsy_session_ops session = {
	.struct_size = sizeof(wsy_session_ops),
	.open = demo_open,
	.on_message = demo_message,
	.on_peer_open = demo_peer_open,
	.on_peer_data = demo_peer_data,
	.on_peer_error = demo_peer_error,
	.on_close = demo_close,
};

static const wsy_framing_ops ops = { .session = &session };

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_FRAMING,
	.name = "sessiondemo",
	.ops_size = sizeof(ops),
	.ops = &ops,
};
