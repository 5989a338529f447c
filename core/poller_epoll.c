/*
 * poller_epoll.c - the Linux poller: epoll(7), level-triggered.
 *
 * Why level-triggered: every reader and writer in the program handles a
 * bounded amount per callback (a batch of frames, 16-64 KiB of a peer) and
 * counts on being called again while more is ready; that keeps one busy
 * connection from starving the others.  Edge-triggered would make every
 * caller drain to EAGAIN or keep its own ready list, for no gain here: a
 * wait costs the ready fds only, either way.  What edge-triggered saves in
 * epoll_ctl calls, loop.c saves by registering interest lazily: a change
 * costs at most one EPOLL_CTL_MOD before the next wait, and none when the
 * interest is back where it was.
 *
 * The tag rides in the upper half of epoll_data so that a stale entry (its
 * watcher removed during this pass) is recognised by loop.c.
 *
 * Regular files and some character devices cannot be added (EPERM); as
 * poll() does, they are always ready for what is asked, and a wait with
 * such an fd interested does not sleep.
 */
#include "poller.h"

#ifdef WSY_HAVE_EPOLL

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define EP_BATCH 1024          /* entries per epoll_wait */

struct always {
	int fd;
	int events;
	uint32_t tag;
};

static struct {
	int fd;
	struct epoll_event ev[EP_BATCH];
	struct always *al;         /* fds epoll refuses: few, usually none */
	size_t nal, capal;
} E = { .fd = -1 };

static uint32_t to_epoll(int events)
{
	return ((events & LOOP_READ) ? EPOLLIN : 0) |
	    ((events & LOOP_WRITE) ? EPOLLOUT : 0) |
	    ((events & LOOP_RDHUP) ? EPOLLRDHUP : 0);
}

static int ep_init(void)
{
	E.fd = epoll_create1(EPOLL_CLOEXEC);
	return E.fd < 0 ? -1 : 0;
}

static void ep_done(void)
{
	if (E.fd >= 0)
		close(E.fd);
	free(E.al);
	memset(&E, 0, sizeof(E));
	E.fd = -1;
}

static struct always *find_always(int fd)
{
	size_t i;

	for (i = 0; i < E.nal; i++)
		if (E.al[i].fd == fd)
			return &E.al[i];
	return NULL;
}

static int add_always(int fd, int events, uint32_t tag)
{
	if (E.nal == E.capal) {
		size_t n = E.capal ? E.capal * 2 : 8;
		struct always *q = realloc(E.al, n * sizeof(*q));

		if (q == NULL)
			return -1;
		E.al = q;
		E.capal = n;
	}
	E.al[E.nal].fd = fd;
	E.al[E.nal].events = events;
	E.al[E.nal].tag = tag;
	E.nal++;
	return 0;
}

static int ctl(int op, int fd, int events, uint32_t tag)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	e.events = to_epoll(events);
	e.data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)tag << 32;
	return epoll_ctl(E.fd, op, fd, &e);
}

static int ep_add(int fd, int events, uint32_t tag)
{
	if (ctl(EPOLL_CTL_ADD, fd, events, tag) == 0)
		return 0;
	if (errno == EEXIST)    /* closed without unwatch, number reused */
		return ctl(EPOLL_CTL_MOD, fd, events, tag);
	if (errno == EPERM)
		return add_always(fd, events, tag);
	return -1;
}

static int ep_mod(int fd, int events, uint32_t tag)
{
	struct always *a;

	if (E.nal && (a = find_always(fd)) != NULL) {
		a->events = events;
		a->tag = tag;
		return 0;
	}
	if (ctl(EPOLL_CTL_MOD, fd, events, tag) == 0)
		return 0;
	if (errno == ENOENT)    /* closed without unwatch, number reused */
		return ep_add(fd, events, tag);
	return -1;
}

static void ep_del(int fd)
{
	struct always *a;

	if (E.nal && (a = find_always(fd)) != NULL) {
		*a = E.al[--E.nal];
		return;
	}
	/* Fails harmlessly (EBADF, ENOENT) if the caller closed fd first:
	 * close() has removed it then. */
	(void)epoll_ctl(E.fd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_wait(int timeout, struct loop_ready *out, int max)
{
	int i, n, got = 0, keep = 0;
	size_t k;

	for (k = 0; k < E.nal; k++)
		if (E.al[k].events)
			keep++;
	if (keep)
		timeout = 0;
	if (max > EP_BATCH)
		max = EP_BATCH;
	/* Room for the always-ready ones, or a busy epoll set starves them. */
	n = epoll_wait(E.fd, E.ev, max - keep > 0 ? max - keep : 1, timeout);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		uint32_t r = E.ev[i].events;
		int ev = 0;

		if (r & EPOLLIN)
			ev |= LOOP_READ;
		if (r & EPOLLOUT)
			ev |= LOOP_WRITE;
		if (r & (EPOLLERR | EPOLLHUP))
			ev |= LOOP_ERROR;
		if (r & EPOLLRDHUP)
			ev |= LOOP_RDHUP;
		out[got].fd = (int)(uint32_t)E.ev[i].data.u64;
		out[got].tag = (uint32_t)(E.ev[i].data.u64 >> 32);
		out[got].events = ev;
		got++;
	}
	for (k = 0; k < E.nal && got < max; k++) {
		if (E.al[k].events == 0)
			continue;
		out[got].fd = E.al[k].fd;
		out[got].tag = E.al[k].tag;
		out[got].events = E.al[k].events & (LOOP_READ | LOOP_WRITE);
		got++;
	}
	return got;
}

const struct poller poller_epoll = {
	.name = "epoll",
	.init = ep_init,
	.done = ep_done,
	.add = ep_add,
	.mod = ep_mod,
	.del = ep_del,
	.wait = ep_wait,
};

#else
typedef int poller_epoll_empty;   /* ISO C wants something in the file */
#endif
