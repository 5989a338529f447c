/*
 * upgrade.h - the client side of the RFC 6455 opening handshake, shared by
 * the per-connection relay (tunnel.c) and the mux channel (muxclient.c).
 */
#ifndef WSY_CLIENT_UPGRADE_H
#define WSY_CLIENT_UPGRADE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/buf.h"
#include "../core/ws.h"

#define UPGRADE_KEY_LEN 25    /* 24 base64 characters and a NUL */

/* Make a fresh Sec-WebSocket-Key into key and append the request for
 * path on host to b (allocated by the caller's buf rules).  Returns 0, or
 * -1 if b has no room. */
int upgrade_request(buf *b, const char *path, const char *host,
    char key[UPGRADE_KEY_LEN]);

/* The blank line that ends a response head in h[0..len), or NULL. */
char *upgrade_head_end(char *h, size_t len);

/* Check a NUL-terminated response head against the key: NULL if it is a
 * valid 101 for us, else what is wrong ("not 101", ...). */
const char *upgrade_check(const char *h, const char *key);

/*
 * The client's close policy, one for the relay (tunnel.c) and the mux
 * channel (muxclient.c).  The code of the close frame that answers what
 * ws_decode gave: r < 0, a bad frame, is answered with its code; a close
 * event with the server's own code (RFC 6455 5.5.1), or with an empty
 * close (WS_CLOSE_NO_STATUS) if it gave none.  Either way the frame goes
 * out after everything queued before it, then the TCP connection closes;
 * what was decoded before the close is delivered first.
 */
int upgrade_close_reply(ssize_t r, const ws_event *ev);

/* The payload of a close frame with code into p: its length, 2, or 0 for
 * WS_CLOSE_NO_STATUS (sent as an empty close). */
size_t upgrade_close_payload(int code, uint8_t p[2]);

#endif
