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

/* "1.2.3.4" / "::1" (v4-mapped shown as v4) and the port of sa. */
void sock_ntop(const struct sockaddr *sa, char *host, size_t hostlen,
    uint16_t *port);

#endif
