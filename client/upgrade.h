/*
 * upgrade.h - the client side of the RFC 6455 opening handshake, shared by
 * the per-connection relay (tunnel.c) and the mux channel (muxclient.c).
 */
#ifndef WSY_CLIENT_UPGRADE_H
#define WSY_CLIENT_UPGRADE_H

#include <stddef.h>

#include "../core/buf.h"

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

#endif
