/*
 * poller_poll.c - the portable poller: poll(2) over a dense pollfd array.
 *
 * Each fd remembers its slot.  del only marks the slot dead (fd = -1,
 * which poll() skips) so that the array stays put while loop.c dispatches;
 * dead slots are squeezed out before the next poll().  The cost of a wait
 * is one pass over every registered fd, in the kernel and here: that is
 * why this is the fallback and epoll the default on Linux.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "poller.h"

static struct {
	struct pollfd *pfd;
	uint32_t *tag;            /* parallel to pfd */
	size_t n, cap;
	size_t dead;
	size_t *slot;             /* indexed by fd: slot + 1, 0 = none */
	size_t capslot;
	size_t start;             /* where the next scan begins */
} P;

static int grow_to(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((q = realloc(*p, n * elem)) == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static short to_poll(int events)
{
	return (short)(((events & LOOP_READ) ? POLLIN : 0) |
	    ((events & LOOP_WRITE) ? POLLOUT : 0) |
	    ((events & LOOP_RDHUP) ? POLLRDHUP : 0));
}

static int pp_init(void)
{
	memset(&P, 0, sizeof(P));
	return 0;
}

static void pp_done(void)
{
	free(P.pfd);
	free(P.tag);
	free(P.slot);
	memset(&P, 0, sizeof(P));
}

static int pp_add(int fd, int events, uint32_t tag)
{
	size_t old = P.capslot, cap;

	if (grow_to((void **)&P.slot, &P.capslot, (size_t)fd + 1,
	    sizeof(*P.slot)) < 0)
		return -1;
	if (P.capslot > old)
		memset(P.slot + old, 0, (P.capslot - old) * sizeof(*P.slot));
	if (P.slot[fd]) {
		errno = EEXIST;
		return -1;
	}
	cap = P.cap;
	if (grow_to((void **)&P.pfd, &cap, P.n + 1, sizeof(*P.pfd)) < 0 ||
	    grow_to((void **)&P.tag, &P.cap, P.n + 1, sizeof(*P.tag)) < 0)
		return -1;
	P.pfd[P.n].fd = fd;
	P.pfd[P.n].events = to_poll(events);
	P.pfd[P.n].revents = 0;
	P.tag[P.n] = tag;
	P.slot[fd] = ++P.n;
	return 0;
}

static int pp_mod(int fd, int events, uint32_t tag)
{
	size_t i;

	if ((size_t)fd >= P.capslot || P.slot[fd] == 0) {
		errno = ENOENT;
		return -1;
	}
	i = P.slot[fd] - 1;
	P.pfd[i].events = to_poll(events);
	P.tag[i] = tag;
	return 0;
}

static void pp_del(int fd)
{
	size_t i;

	if ((size_t)fd >= P.capslot || P.slot[fd] == 0)
		return;
	i = P.slot[fd] - 1;
	P.pfd[i].fd = -1;
	P.pfd[i].events = 0;
	P.pfd[i].revents = 0;
	P.slot[fd] = 0;
	P.dead++;
}

static void squeeze(void)
{
	size_t i, j;

	if (P.dead == 0)
		return;
	for (i = j = 0; i < P.n; i++) {
		if (P.pfd[i].fd < 0)
			continue;
		if (i != j) {
			P.pfd[j] = P.pfd[i];
			P.tag[j] = P.tag[i];
			P.slot[P.pfd[j].fd] = j + 1;
		}
		j++;
	}
	P.n = j;
	P.dead = 0;
	P.start = 0;
}

static int pp_wait(int timeout, struct loop_ready *out, int max)
{
	size_t k, i;
	int n, got = 0;

	squeeze();
	if ((n = poll(P.pfd, P.n, timeout)) <= 0)
		return n;
	/* Begin where the last truncated scan stopped, so that more ready
	 * fds than max cannot starve the ones at the end of the array. */
	if (P.start >= P.n)
		P.start = 0;
	for (k = 0, i = P.start; k < P.n && n > 0 && got < max; k++) {
		struct pollfd *p = &P.pfd[i];
		int ev = 0;

		if (p->revents) {
			n--;
			if (p->revents & POLLIN)
				ev |= LOOP_READ;
			if (p->revents & POLLOUT)
				ev |= LOOP_WRITE;
			if (p->revents & (POLLERR | POLLHUP | POLLNVAL))
				ev |= LOOP_ERROR;
			if (p->revents & POLLRDHUP)
				ev |= LOOP_RDHUP;
			p->revents = 0;
			out[got].fd = p->fd;
			out[got].events = ev;
			out[got].tag = P.tag[i];
			got++;
		}
		if (++i == P.n)
			i = 0;
	}
	P.start = n > 0 ? i : 0;
	return got;
}

const struct poller poller_poll = {
	.name = "poll",
	.init = pp_init,
	.done = pp_done,
	.add = pp_add,
	.mod = pp_mod,
	.del = pp_del,
	.wait = pp_wait,
};
