/*
 * acceptor.h - accepting connections on listening sockets, shared by the
 * server and the client: up to 64 accepts per wake-up, and when the process
 * is out of descriptors (EMFILE...) a 100 ms pause instead of spinning on
 * a listener that stays readable.  Layer: sockets (above loop).
 */
#ifndef WSY_ACCEPTOR_H
#define WSY_ACCEPTOR_H

#include <sys/socket.h>

#include "loop.h"

#define ACCEPTOR_MAX 16

/* A new non-blocking, close-on-exec connection on listener index i. */
typedef void (*acceptor_cb)(int fd, const struct sockaddr *sa, int i,
    void *arg);

typedef struct acceptor {
	int fd[ACCEPTOR_MAX];
	int n;
	int stopped;
	acceptor_cb cb;
	void *arg;
	loop_timer resume;
} acceptor;

void acceptor_init(acceptor *a, acceptor_cb cb, void *arg);
/* Watch listening fd lfd.  Returns its index, or -1 (full, no memory). */
int acceptor_add(acceptor *a, int lfd);
/* Stop accepting and close the listeners (idempotent). */
void acceptor_close(acceptor *a);

#endif
