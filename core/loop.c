/*
 * loop.c - poll() event loop.
 *
 * Watchers live in a table indexed by fd; the pollfd array is dense and each
 * watcher remembers its slot.  Removing a watcher during a dispatch pass only
 * marks its slot dead (fd = -1) so the pass can go on over a stable array;
 * dead slots are squeezed out after the pass.  A watcher added during a pass
 * is appended and not looked at until the next pass.
 *
 * Timers are a binary min-heap of pointers to caller-owned loop_timer
 * structs; each timer knows its heap slot, so stop and re-arm are O(log n).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

struct watcher {
	loop_io_cb cb;
	void *arg;
	size_t slot;          /* index in pfd + 1; 0 = not watched */
};

struct deferred {
	loop_cb cb;
	void *arg;
};

#define LOOP_MAX_SIGNALS 8

static struct {
	struct pollfd *pfd;
	size_t npfd, cappfd;
	int dead;                 /* dead slots to squeeze */
	struct watcher *w;        /* indexed by fd */
	size_t capw;
	loop_timer **heap;
	size_t nheap, capheap;
	struct deferred *defer;
	size_t ndefer, capdefer;
	uint64_t now;
	int stop;
	int sigpipe[2];
	struct { int signo; loop_cb cb; void *arg; } sig[LOOP_MAX_SIGNALS];
	int nsig;
} L = { .sigpipe = { -1, -1 } };

static volatile sig_atomic_t sig_pending[65];

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	if ((q = realloc(*p, n * elem)) == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

uint64_t loop_update_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	L.now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return L.now;
}

uint64_t loop_now(void)
{
	return L.now;
}

static void sig_read(int fd, int events, void *arg)
{
	char b[64];
	int i;

	(void)events;
	(void)arg;
	while (read(fd, b, sizeof(b)) > 0)
		;
	for (i = 0; i < L.nsig; i++) {
		if (sig_pending[L.sig[i].signo]) {
			sig_pending[L.sig[i].signo] = 0;
			L.sig[i].cb(L.sig[i].arg);
		}
	}
}

static void run_deferred(void);

int loop_init(void)
{
	loop_update_time();
	return 0;
}

void loop_free(void)
{
	run_deferred();
	free(L.pfd);
	free(L.w);
	free(L.heap);
	free(L.defer);
	if (L.sigpipe[0] >= 0) {
		close(L.sigpipe[0]);
		close(L.sigpipe[1]);
	}
	memset(&L, 0, sizeof(L));
	L.sigpipe[0] = L.sigpipe[1] = -1;
}

/* ---- fd watchers ---- */

static short to_poll(int events)
{
	return (short)(((events & LOOP_READ) ? POLLIN : 0) |
	    ((events & LOOP_WRITE) ? POLLOUT : 0) |
	    ((events & LOOP_RDHUP) ? POLLRDHUP : 0));
}

int loop_watch(int fd, int events, loop_io_cb cb, void *arg)
{
	struct watcher *w;
	size_t old = L.capw;

	if (fd < 0)
		return -1;
	if (grow((void **)&L.w, &L.capw, (size_t)fd + 1, sizeof(*L.w)) < 0)
		return -1;
	if (L.capw > old)
		memset(L.w + old, 0, (L.capw - old) * sizeof(*L.w));
	w = &L.w[fd];
	if (w->slot == 0) {
		if (grow((void **)&L.pfd, &L.cappfd, L.npfd + 1,
		    sizeof(*L.pfd)) < 0)
			return -1;
		L.pfd[L.npfd].fd = fd;
		L.pfd[L.npfd].revents = 0;
		w->slot = ++L.npfd;
	}
	L.pfd[w->slot - 1].events = to_poll(events);
	w->cb = cb;
	w->arg = arg;
	return 0;
}

void loop_events(int fd, int events)
{
	if (fd >= 0 && (size_t)fd < L.capw && L.w[fd].slot)
		L.pfd[L.w[fd].slot - 1].events = to_poll(events);
}

void loop_unwatch(int fd)
{
	struct watcher *w;

	if (fd < 0 || (size_t)fd >= L.capw || L.w[fd].slot == 0)
		return;
	w = &L.w[fd];
	L.pfd[w->slot - 1].fd = -1;   /* poll() ignores negative fds */
	L.pfd[w->slot - 1].events = 0;
	L.pfd[w->slot - 1].revents = 0;
	w->slot = 0;
	w->cb = NULL;
	L.dead++;
}

size_t loop_nwatched(void)
{
	return L.npfd - (size_t)L.dead;
}

/* Squeeze dead slots out of pfd, keeping the watchers' slots right. */
static void squeeze(void)
{
	size_t i, j;

	if (L.dead == 0)
		return;
	for (i = j = 0; i < L.npfd; i++) {
		if (L.pfd[i].fd < 0)
			continue;
		if (i != j) {
			L.pfd[j] = L.pfd[i];
			L.w[L.pfd[j].fd].slot = j + 1;
		}
		j++;
	}
	L.npfd = j;
	L.dead = 0;
}

/* ---- timers: min-heap on when ---- */

static void heap_place(loop_timer *t, size_t i)
{
	L.heap[i] = t;
	t->idx = i + 1;
}

static void sift_up(size_t i)
{
	loop_timer *t = L.heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (L.heap[p]->when <= t->when)
			break;
		heap_place(L.heap[p], i);
		i = p;
	}
	heap_place(t, i);
}

static void sift_down(size_t i)
{
	loop_timer *t = L.heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= L.nheap)
			break;
		if (c + 1 < L.nheap && L.heap[c + 1]->when < L.heap[c]->when)
			c++;
		if (L.heap[c]->when >= t->when)
			break;
		heap_place(L.heap[c], i);
		i = c;
	}
	heap_place(t, i);
}

void loop_timer_init(loop_timer *t, loop_cb cb, void *arg)
{
	t->when = 0;
	t->idx = 0;
	t->cb = cb;
	t->arg = arg;
}

void loop_timer_stop(loop_timer *t)
{
	size_t i;
	loop_timer *last;

	if (t->idx == 0)
		return;
	i = t->idx - 1;
	t->idx = 0;
	last = L.heap[--L.nheap];
	if (i == L.nheap)
		return;
	heap_place(last, i);
	if (i > 0 && L.heap[(i - 1) / 2]->when > last->when)
		sift_up(i);
	else
		sift_down(i);
}

void loop_timer_set(loop_timer *t, uint64_t ms)
{
	loop_timer_stop(t);
	if (grow((void **)&L.heap, &L.capheap, L.nheap + 1,
	    sizeof(*L.heap)) < 0) {
		/* Cannot happen in practice; a lost timer would hang a
		 * connection, so say it loudly. */
		log_error(0, "timer heap: out of memory");
		return;
	}
	t->when = L.now + ms;
	L.heap[L.nheap] = t;
	sift_up(L.nheap++);
}

/* A timer re-armed for 0 ms from its own callback waits for the next
 * pass: at most the timers armed at entry fire. */
static void run_timers(void)
{
	size_t budget = L.nheap;

	while (budget-- > 0 && L.nheap > 0 && L.heap[0]->when <= L.now) {
		loop_timer *t = L.heap[0];
		loop_timer_stop(t);
		t->cb(t->arg);
	}
}

/* ---- deferred calls and signals ---- */

int loop_defer(loop_cb cb, void *arg)
{
	if (grow((void **)&L.defer, &L.capdefer, L.ndefer + 1,
	    sizeof(*L.defer)) < 0)
		return -1;
	L.defer[L.ndefer].cb = cb;
	L.defer[L.ndefer].arg = arg;
	L.ndefer++;
	return 0;
}

/* Deferred calls may defer more; run until none is left. */
static void run_deferred(void)
{
	size_t i;

	for (i = 0; i < L.ndefer; i++)
		L.defer[i].cb(L.defer[i].arg);
	L.ndefer = 0;
}

static void on_signal(int signo)
{
	int saved = errno;

	if (signo > 0 && signo < 65)
		sig_pending[signo] = 1;
	if (L.sigpipe[1] >= 0)
		(void)!write(L.sigpipe[1], "", 1);
	errno = saved;
}

int loop_signal(int signo, loop_cb cb, void *arg)
{
	struct sigaction sa;

	if (L.nsig == LOOP_MAX_SIGNALS || signo <= 0 || signo >= 65)
		return -1;
	if (L.sigpipe[0] < 0) {
		if (pipe(L.sigpipe) < 0)
			return -1;
		for (int i = 0; i < 2; i++) {
			fcntl(L.sigpipe[i], F_SETFL, O_NONBLOCK);
			fcntl(L.sigpipe[i], F_SETFD, FD_CLOEXEC);
		}
		if (loop_watch(L.sigpipe[0], LOOP_READ, sig_read, NULL) < 0)
			return -1;
	}
	L.sig[L.nsig].signo = signo;
	L.sig[L.nsig].cb = cb;
	L.sig[L.nsig].arg = arg;
	L.nsig++;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(signo, &sa, NULL);
}

/* ---- the loop ---- */

static int next_timeout(void)
{
	uint64_t d;

	if (L.ndefer)
		return 0;
	if (L.nheap == 0)
		return -1;
	if (L.heap[0]->when <= L.now)
		return 0;
	d = L.heap[0]->when - L.now;
	return d > 60000 ? 60000 : (int)d;
}

static void dispatch(int n)
{
	size_t i, end = L.npfd;

	for (i = 0; i < end && n > 0; i++) {
		struct pollfd *p = &L.pfd[i];
		struct watcher *w;
		int ev = 0;

		if (p->fd < 0 || p->revents == 0)
			continue;
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
		w = &L.w[p->fd];
		if (w->cb)
			w->cb(p->fd, ev, w->arg);
	}
}

int loop_run(void)
{
	L.stop = 0;
	while (!L.stop) {
		int n;

		squeeze();
		n = poll(L.pfd, L.npfd, next_timeout());
		loop_update_time();
		if (n < 0 && errno != EINTR) {
			log_error(0, "poll: %s", strerror(errno));
			return -1;
		}
		if (n > 0)
			dispatch(n);
		run_timers();
		run_deferred();
	}
	return 0;
}

void loop_stop(void)
{
	L.stop = 1;
}
