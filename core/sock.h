/*
 * sock.h - listening sockets and small socket helpers.  Layer: sockets.
 */
#ifndef WSY_SOCK_H
#define WSY_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Bind and listen on host:port (host "::" = IPv6 and IPv4; a name is
 * resolved once, at start-up, and every address is bound).  Stores up to
 * max fds in fds; returns how many, or -1 with a reason in err. */
int sock_listen(const char *host, const char *port, int *fds, int max,
    char *err, size_t errlen);

int sock_nonblock(int fd);

/* close(fd), but first read and drop what the other side sent that was
 * never read (at most SOCK_DRAIN_MAX bytes, without blocking): closing a
 * TCP socket with unread bytes sends a reset instead of a FIN, and the
 * kernel throws away what it had not yet delivered of ours (RFC 1122
 * 4.2.2.13).  Returns the bytes dropped, or -1 when more was unread than
 * that bound (the close may then reset). */
#define SOCK_DRAIN_MAX (256 * 1024)
long sock_close_drained(int fd);

/* "1.2.3.4" / "::1" (v4-mapped shown as v4) and the port of sa. */
void sock_ntop(const struct sockaddr *sa, char *host, size_t hostlen,
    uint16_t *port);

#endif
