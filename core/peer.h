/*
 * peer.h - peer URIs and non-blocking connects to TCP, UDP, unix stream and
 * unix datagram peers.  Layer: sockets (above loop, dns).
 *
 *   tcp://host[:port]   udp://host[:port]   host may be [v6 literal]
 *   unix:///path        unix-dgram:///path
 */
#ifndef WSY_PEER_H
#define WSY_PEER_H

#include <stddef.h>
#include <stdint.h>

enum peer_kind { PEER_TCP = 1, PEER_UDP, PEER_UNIX, PEER_UNIX_DGRAM };

typedef struct peer_uri {
	int kind;
	char host[256];     /* TCP/UDP, brackets removed */
	char port[8];       /* TCP/UDP, "" if none given */
	char path[108];     /* unix kinds */
} peer_uri;

/* 1 for UDP and unix-dgram: one message is one datagram. */
static inline int peer_is_dgram(int kind)
{
	return kind == PEER_UDP || kind == PEER_UNIX_DGRAM;
}

/* Parse uri.  default_port is used when a TCP/UDP URI has none (may be NULL:
 * then a port is required).  Returns 0, or -1 with a reason in err. */
int peer_uri_parse(const char *uri, const char *default_port, peer_uri *u,
    char *err, size_t errlen);

/* Format u back into a URI (for logs). */
void peer_uri_format(const peer_uri *u, char *out, size_t outlen);

/*
 * Connection result, always delivered from the loop (never from inside
 * peer_connect()).  fd >= 0: connected, non-blocking, owned by the caller;
 * for unix-dgram, bound_path is the client socket path the caller must
 * unlink() at close (malloc'd, caller frees), else NULL.  fd < 0: err says
 * why ("connection refused", "timed out", "no address for host").
 */
typedef void (*peer_cb)(void *arg, int fd, char *bound_path, const char *err);

typedef struct peer_conn peer_conn;

/* Resolve and connect, trying each address in turn within timeout_ms in
 * total.  Returns a handle or NULL (out of memory). */
peer_conn *peer_connect(const peer_uri *u, uint64_t timeout_ms, peer_cb cb,
    void *arg);
/* Abandon: the callback will not be called; any fd is closed. */
void peer_cancel(peer_conn *pc);

#endif
