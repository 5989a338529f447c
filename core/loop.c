/*
 * loop.c - the event loop: watchers, timers, deferred calls, signals.
 *
 * The kernel side is a poller (poller.h): epoll on Linux by default, poll()
 * everywhere, chosen by loop_init_poller().  This file owns the watchers,
 * a table indexed by fd, and what every poller shares:
 *
 *  - a watcher's generation is the tag of its registration; unwatch bumps
 *    it, so a ready entry collected before a watcher was removed (and its
 *    fd number perhaps reused) in the same pass is dropped, not delivered;
 *  - interest is registered lazily: loop_events() only records what is
 *    wanted and queues the fd once; before the next wait each queued fd
 *    whose wanted interest differs from the registered one costs one
 *    poller call (EPOLL_CTL_MOD), the others nothing.  A watcher that turns
 *    LOOP_WRITE on and off within one pass costs no system call;
 *  - add and remove go to the poller at once: loop_watch() can report a
 *    failure, and a closed fd never stays registered.
 *
 * Nothing here, and nothing a wake-up does, is proportional to the number
 * of watched fds: a wait costs the ready fds (with epoll), dispatch the
 * ready entries, timers O(log n) each.
 *
 * Timers are a binary min-heap of pointers to caller-owned loop_timer
 * structs; each timer knows its heap slot, so stop and re-arm are O(log n).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "poller.h"

struct watcher {
	loop_io_cb cb;
	void *arg;
	uint32_t gen;         /* tag of the current registration */
	unsigned on : 1;      /* watched */
	unsigned queued : 1;  /* on the change list */
	unsigned want : 4;    /* interest asked for */
	unsigned have : 4;    /* interest the poller has */
};

struct deferred {
	loop_cb cb;
	void *arg;
};

#define LOOP_MAX_SIGNALS 8
#define LOOP_READY_MAX 1024   /* ready entries dispatched per wake-up */
#define LOOP_INTEREST (LOOP_READ | LOOP_WRITE | LOOP_RDHUP)

static struct {
	const struct poller *p;   /* NULL until loop_init*() */
	struct watcher *w;        /* indexed by fd */
	size_t capw;
	size_t nwatched;
	uint64_t nmod;            /* interest changes given to the poller */
	int *changes;             /* fds whose interest may have changed */
	size_t nchanges, capchanges;
	struct loop_ready *ready;
	size_t capready;
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

/* ---- pollers ---- */

int loop_poller_parse(const char *name)
{
	if (strcmp(name, "auto") == 0)
		return LOOP_POLLER_AUTO;
	if (strcmp(name, "epoll") == 0)
		return LOOP_POLLER_EPOLL;
	if (strcmp(name, "poll") == 0)
		return LOOP_POLLER_POLL;
	return -1;
}

int loop_poller_available(int kind)
{
#ifdef WSY_HAVE_EPOLL
	(void)kind;
	return 1;
#else
	return kind != LOOP_POLLER_EPOLL;
#endif
}

const char *loop_poller_name(void)
{
	return L.p ? L.p->name : "none";
}

/* auto may be overridden from the environment, as libevent's
 * EVENT_NOEPOLL: the test suite reruns clients and servers with poll. */
static int env_poller(void)
{
	const char *e = getenv("WEBSOCKSY_POLLER");
	int k;

	if (e == NULL || *e == '\0')
		return LOOP_POLLER_AUTO;
	if ((k = loop_poller_parse(e)) < 0 || !loop_poller_available(k)) {
		log_warn(0, "WEBSOCKSY_POLLER=%s: not auto, epoll or poll in "
		    "this build; ignored", e);
		return LOOP_POLLER_AUTO;
	}
	return k;
}

int loop_init_poller(int kind)
{
	const struct poller *p = &poller_poll;

	if (L.p)
		return 0;
	loop_update_time();
	if (kind == LOOP_POLLER_AUTO)
		kind = env_poller();
#ifdef WSY_HAVE_EPOLL
	if (kind == LOOP_POLLER_AUTO || kind == LOOP_POLLER_EPOLL)
		p = &poller_epoll;
#else
	if (kind == LOOP_POLLER_EPOLL) {
		errno = ENOSYS;
		return -1;
	}
#endif
	if (p->init() < 0) {
		if (kind != LOOP_POLLER_AUTO || p == &poller_poll)
			return -1;
		log_info(0, "%s: %s; using poll", p->name, strerror(errno));
		p = &poller_poll;
		if (p->init() < 0)
			return -1;
	}
	L.p = p;
	return 0;
}

int loop_init(void)
{
	return loop_init_poller(LOOP_POLLER_AUTO);
}

void loop_free(void)
{
	run_deferred();
	if (L.p)
		L.p->done();
	free(L.w);
	free(L.changes);
	free(L.ready);
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

/* Register w's wanted interest now (the change list could not grow). */
static void apply_one(int fd, struct watcher *w)
{
	L.nmod++;
	if (L.p->mod(fd, w->want, w->gen) < 0)
		log_error(0, "%s: fd %d: %s", L.p->name, fd,
		    strerror(errno));
	else
		w->have = w->want;
}

static void queue_change(int fd, struct watcher *w)
{
	if (w->queued || w->want == w->have)
		return;
	if (grow((void **)&L.changes, &L.capchanges, L.nchanges + 1,
	    sizeof(*L.changes)) < 0) {
		apply_one(fd, w);
		return;
	}
	L.changes[L.nchanges++] = fd;
	w->queued = 1;
}

/* Before a wait: the interest of every queued fd that really changed. */
static void apply_changes(void)
{
	size_t i;

	for (i = 0; i < L.nchanges; i++) {
		int fd = L.changes[i];
		struct watcher *w = &L.w[fd];

		w->queued = 0;
		if (w->on && w->want != w->have)
			apply_one(fd, w);
	}
	L.nchanges = 0;
}

int loop_watch(int fd, int events, loop_io_cb cb, void *arg)
{
	struct watcher *w;
	size_t old = L.capw;

	if (fd < 0 || (L.p == NULL && loop_init() < 0))
		return -1;
	if (grow((void **)&L.w, &L.capw, (size_t)fd + 1, sizeof(*L.w)) < 0)
		return -1;
	if (L.capw > old)
		memset(L.w + old, 0, (L.capw - old) * sizeof(*L.w));
	w = &L.w[fd];
	events &= LOOP_INTEREST;
	if (!w->on) {
		if (L.p->add(fd, events, w->gen) < 0)
			return -1;
		w->on = 1;
		w->have = w->want = (unsigned)events;
		L.nwatched++;
	} else {
		w->want = (unsigned)events;
		queue_change(fd, w);
	}
	w->cb = cb;
	w->arg = arg;
	return 0;
}

void loop_events(int fd, int events)
{
	struct watcher *w;

	if (fd < 0 || (size_t)fd >= L.capw || !L.w[fd].on)
		return;
	w = &L.w[fd];
	w->want = (unsigned)(events & LOOP_INTEREST);
	queue_change(fd, w);
}

void loop_unwatch(int fd)
{
	struct watcher *w;

	if (fd < 0 || (size_t)fd >= L.capw || !L.w[fd].on)
		return;
	w = &L.w[fd];
	L.p->del(fd);
	w->on = 0;
	w->gen++;             /* entries already collected are now stale */
	w->want = w->have = 0;
	w->cb = NULL;
	w->arg = NULL;
	L.nwatched--;
}

size_t loop_nwatched(void)
{
	return L.nwatched;
}

uint64_t loop_interest_changes(void)
{
	return L.nmod;
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
	int i;

	for (i = 0; i < n; i++) {
		const struct loop_ready *r = &L.ready[i];
		struct watcher *w;
		int ev;

		if ((size_t)r->fd >= L.capw)
			continue;
		w = &L.w[r->fd];
		if (!w->on || w->gen != r->tag || w->cb == NULL)
			continue;     /* removed during this pass */
		/* Only what is still asked for: a callback earlier in the
		 * pass may have paused this one. */
		ev = r->events & ((int)w->want | LOOP_ERROR);
		if (ev)
			w->cb(r->fd, ev, w->arg);
	}
}

int loop_run(void)
{
	if (L.p == NULL && loop_init() < 0)
		return -1;
	if (L.ready == NULL) {
		L.ready = calloc(LOOP_READY_MAX, sizeof(*L.ready));
		if (L.ready == NULL)
			return -1;
		L.capready = LOOP_READY_MAX;
	}
	L.stop = 0;
	while (!L.stop) {
		int n;

		apply_changes();
		n = L.p->wait(next_timeout(), L.ready, (int)L.capready);
		loop_update_time();
		if (n < 0 && errno != EINTR) {
			log_error(0, "%s: %s", L.p->name, strerror(errno));
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
