/*
 * poller.h - the kernel interface behind loop.c: which fds, which events,
 * and a wait that reports what is ready.  Private to the loop (loop.c and
 * the pollers); the rest of the program sees only loop.h.
 *
 * A poller knows fds, interest and a tag per registration; loop.c knows
 * the watchers.  Each registration carries the watcher's generation as its
 * tag and every ready entry gives it back: loop.c drops an entry whose tag
 * is not the watcher's current one, which is how a watcher removed during
 * a pass is never called even when its fd number is reused in that pass.
 *
 * Interest is LOOP_READ|LOOP_WRITE|LOOP_RDHUP; ready events are those plus
 * LOOP_ERROR, which every poller reports whatever the interest (as poll()
 * reports POLLERR/POLLHUP for events 0).
 */
#ifndef WSY_POLLER_H
#define WSY_POLLER_H

#include <stdint.h>

struct loop_ready {
	int fd;
	int events;
	uint32_t tag;
};

struct poller {
	const char *name;
	int (*init)(void);                    /* 0 or -1 (errno) */
	void (*done)(void);
	int (*add)(int fd, int events, uint32_t tag);   /* 0 or -1 (errno) */
	int (*mod)(int fd, int events, uint32_t tag);   /* 0 or -1 (errno) */
	void (*del)(int fd);
	/* Wait at most timeout ms (-1: no limit); fill at most max entries
	 * of out; return their number, or -1 (errno; EINTR is not fatal). */
	int (*wait)(int timeout, struct loop_ready *out, int max);
};

extern const struct poller poller_poll;
/* WSY_NO_EPOLL builds the portable fallback only (make test-noepoll). */
#if defined(__linux__) && !defined(WSY_NO_EPOLL)
#define WSY_HAVE_EPOLL 1
extern const struct poller poller_epoll;
#endif

#endif
