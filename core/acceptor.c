/*
 * acceptor.c - see acceptor.h.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "log.h"

static void pause_all(acceptor *a, int paused)
{
	int i;

	for (i = 0; i < a->n; i++)
		loop_events(a->fd[i], paused ? 0 : LOOP_READ);
}

static void resume(void *arg)
{
	acceptor *a = arg;

	if (!a->stopped)
		pause_all(a, 0);
}

static void on_ready(int fd, int ev, void *arg)
{
	acceptor *a = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int i, idx, cfd;

	(void)ev;
	for (idx = 0; idx < a->n && a->fd[idx] != fd; idx++)
		;
	for (i = 0; i < 64 && !a->stopped; i++) {
		sl = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* The backlog waits until descriptors free
				 * up; a readable listener would spin. */
				log_warn(0, "accept: %s: pausing 100 ms",
				    strerror(errno));
				pause_all(a, 1);
				loop_timer_set(&a->resume, 100);
			}
			return;
		}
		a->cb(cfd, (struct sockaddr *)&ss, idx, a->arg);
	}
}

void acceptor_init(acceptor *a, acceptor_cb cb, void *arg)
{
	memset(a, 0, sizeof(*a));
	a->cb = cb;
	a->arg = arg;
	loop_timer_init(&a->resume, resume, a);
}

int acceptor_add(acceptor *a, int lfd)
{
	if (a->n == ACCEPTOR_MAX || loop_watch(lfd, LOOP_READ, on_ready,
	    a) < 0)
		return -1;
	a->fd[a->n] = lfd;
	return a->n++;
}

void acceptor_close(acceptor *a)
{
	int i;

	a->stopped = 1;
	loop_timer_stop(&a->resume);
	for (i = 0; i < a->n; i++) {
		loop_unwatch(a->fd[i]);
		close(a->fd[i]);
	}
	a->n = 0;
}
