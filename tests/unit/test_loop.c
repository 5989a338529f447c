/*
 * test_loop.c - the event loop, once per poller (poll, then epoll): timer
 * order, stop and re-arm, a watcher removed (and its fd number reused)
 * during a dispatch pass is not called, events 0 keeps an fd idle,
 * LOOP_RDHUP and LOOP_ERROR, a watcher paused during a pass, interest
 * changes cost one poller call or none, regular files, many idle fds,
 * deferred calls, signals through the self-pipe.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/idtimer.h"
#include "../../core/loop.h"
#include "test.h"

static int order[64], norder;

static void rec(void *arg)
{
	order[norder++] = (int)(long)arg;
}

static void stop_cb(void *arg)
{
	(void)arg;
	loop_stop();
}

static void test_timers(void)
{
	loop_timer t[10], stop;
	int i;
	/* Shuffled deadlines: they must fire in deadline order. */
	static const int ms[10] = { 50, 10, 30, 20, 0, 40, 5, 45, 15, 25 };

	norder = 0;
	for (i = 0; i < 10; i++) {
		loop_timer_init(&t[i], rec, (void *)(long)ms[i]);
		loop_timer_set(&t[i], (uint64_t)ms[i]);
	}
	loop_timer_stop(&t[2]);            /* 30 never fires */
	loop_timer_set(&t[1], 60);         /* 10 re-armed to 60 */
	CHECK(loop_timer_armed(&t[0]));
	CHECK(!loop_timer_armed(&t[2]));
	loop_timer_init(&stop, stop_cb, NULL);
	loop_timer_set(&stop, 80);
	CHECK_EQ(loop_run(), 0);
	CHECK_EQ(norder, 9);
	for (i = 1; i < norder; i++)
		CHECK(order[i - 1] <= order[i] || order[i] == 10);
	CHECK_EQ(order[norder - 1], 10);   /* the re-armed one, last */
	for (i = 0; i < norder; i++)
		CHECK(order[i] != 30);
}

static int fds_a[2], fds_b[2];
static int called_b, called_a, called_new;

static void on_new(int fd, int ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	called_new++;
}

/* Remove the other pipe's watcher and make a new, readable fd take its
 * number; the pollers report A and B in no promised order, so each of
 * them does it to the other and exactly one may run in that pass. */
static void replace_other(int *other)
{
	int p[2];

	loop_unwatch(other[0]);
	close(other[0]);
	if (pipe(p) == 0) {
		/* p[0] takes the lowest free number: other[0]'s. */
		CHECK_EQ(p[0], other[0]);
		CHECK_EQ(write(p[1], "z", 1), 1);
		loop_watch(p[0], LOOP_READ, on_new, NULL);
		other[0] = p[0];
		close(p[1]);
	}
}

static void on_a(int fd, int ev, void *arg)
{
	char c;

	(void)ev; (void)arg;
	called_a++;
	(void)!read(fd, &c, 1);
	replace_other(fds_b);
	loop_unwatch(fd);
	loop_stop();
}

static void on_b(int fd, int ev, void *arg)
{
	char c;

	(void)ev; (void)arg;
	called_b++;
	(void)!read(fd, &c, 1);
	replace_other(fds_a);
	loop_unwatch(fd);
	loop_stop();
}

static void test_watch_removed(void)
{
	called_a = called_b = called_new = 0;
	CHECK_EQ(pipe(fds_a), 0);
	CHECK_EQ(pipe(fds_b), 0);
	CHECK_EQ(write(fds_a[1], "x", 1), 1);
	CHECK_EQ(write(fds_b[1], "y", 1), 1);
	CHECK_EQ(loop_watch(fds_a[0], LOOP_READ, on_a, NULL), 0);
	CHECK_EQ(loop_watch(fds_b[0], LOOP_READ, on_b, NULL), 0);
	CHECK_EQ(loop_nwatched(), 2);
	loop_run();
	/* One of them ran; the other, removed in that pass, did not, and
	 * neither did the new watcher that took its fd number. */
	CHECK_EQ(called_a + called_b, 1);
	CHECK_EQ(called_new, 0);
	CHECK_EQ(loop_nwatched(), 1);
	loop_unwatch(fds_a[0]);
	loop_unwatch(fds_b[0]);
	close(fds_a[0]); close(fds_a[1]);
	close(fds_b[0]); close(fds_b[1]);
	CHECK_EQ(loop_nwatched(), 0);
}

/* Run the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
	loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	loop_timer_set(&t, ms);
	loop_run();
	loop_timer_stop(&t);
}

static int last_ev, nev;

static void on_ev(int fd, int ev, void *arg)
{
	(void)fd; (void)arg;
	last_ev = ev;
	nev++;
}

/* events 0: registered (counted) but never called while readable. */
static void test_idle(void)
{
	int p[2];

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	nev = 0;
	CHECK_EQ(loop_watch(p[0], 0, on_ev, NULL), 0);
	CHECK_EQ(loop_nwatched(), 1);
	run_for(30);
	CHECK_EQ(nev, 0);
	loop_events(p[0], LOOP_READ);
	run_for(30);
	CHECK(nev > 0);
	CHECK(last_ev & LOOP_READ);
	loop_events(p[0], 0);
	nev = 0;
	run_for(30);
	CHECK_EQ(nev, 0);
	loop_unwatch(p[0]);
	close(p[0]);
	close(p[1]);
}

static void stop_on_ev(int fd, int ev, void *arg)
{
	on_ev(fd, ev, arg);
	loop_events(fd, 0);
	loop_stop();
}

/* The peer shut down its writing: RDHUP (asked for) with READ; the peer
 * gone: ERROR, even with events 0, as poll() reports POLLHUP. */
static void test_rdhup_error(void)
{
	int sv[2];
	loop_timer guard;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	shutdown(sv[1], SHUT_WR);
	nev = 0;
	last_ev = 0;
	loop_timer_init(&guard, stop_cb, NULL);
	loop_timer_set(&guard, 2000);
	CHECK_EQ(loop_watch(sv[0], LOOP_READ | LOOP_RDHUP, stop_on_ev, NULL),
	    0);
	loop_run();
	CHECK_EQ(nev, 1);
	CHECK(last_ev & LOOP_RDHUP);
	CHECK(last_ev & LOOP_READ);
	CHECK(!(last_ev & LOOP_WRITE));
	/* events 0 now (stop_on_ev); close the peer: ERROR comes anyway. */
	close(sv[1]);
	nev = 0;
	last_ev = 0;
	loop_watch(sv[0], 0, stop_on_ev, NULL);
	loop_run();
	CHECK_EQ(nev, 1);
	CHECK(last_ev & LOOP_ERROR);
	CHECK(!(last_ev & LOOP_READ));
	loop_timer_stop(&guard);
	loop_unwatch(sv[0]);
	close(sv[0]);
}

static int pa[2], pb[2], nb;

static void on_pb(int fd, int ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	nb++;
}

static void on_pa(int fd, int ev, void *arg)
{
	(void)ev; (void)arg;
	loop_events(pb[0], 0);      /* pause B for the rest of the pass */
	loop_events(fd, 0);
	loop_stop();
}

static void on_pb_pauses_a(int fd, int ev, void *arg)
{
	(void)ev; (void)arg;
	nb++;
	loop_events(pa[0], 0);
	loop_events(fd, 0);
	loop_stop();
}

/* A callback that pauses another watcher in the same pass: that one is
 * not called with what it no longer asks for. */
static void test_paused_in_pass(void)
{
	int i;

	for (i = 0; i < 2; i++) {
		CHECK_EQ(pipe(pa), 0);
		CHECK_EQ(pipe(pb), 0);
		CHECK_EQ(write(pa[1], "x", 1), 1);
		CHECK_EQ(write(pb[1], "y", 1), 1);
		nb = 0;
		loop_watch(pa[0], LOOP_READ, on_pa, NULL);
		loop_watch(pb[0], LOOP_READ, i ? on_pb_pauses_a : on_pb, NULL);
		loop_run();
		/* Whichever ran first paused the other: one call in all. */
		CHECK(nb <= 1);
		loop_unwatch(pa[0]);
		loop_unwatch(pb[0]);
		close(pa[0]); close(pa[1]);
		close(pb[0]); close(pb[1]);
	}
}

static void toggle(int fd, int ev, void *arg)
{
	(void)ev; (void)arg;
	/* On and off again within one pass: nothing for the kernel. */
	loop_events(fd, LOOP_READ | LOOP_WRITE);
	loop_events(fd, LOOP_READ);
	loop_stop();
}

/* Interest changes cost one poller call before the next wait, none when
 * back to what the poller has. */
static void test_interest_cost(void)
{
	int p[2];
	uint64_t n0;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	loop_watch(p[0], LOOP_READ, toggle, NULL);
	n0 = loop_interest_changes();
	loop_run();
	run_for(1);
	CHECK_EQ(loop_interest_changes() - n0, 0);
	/* Two changes in one pass, one call. */
	loop_events(p[0], LOOP_READ | LOOP_WRITE);
	loop_events(p[0], 0);
	run_for(1);
	CHECK_EQ(loop_interest_changes() - n0, 1);
	/* The same events again: nothing. */
	loop_events(p[0], 0);
	loop_watch(p[0], 0, toggle, NULL);
	run_for(1);
	CHECK_EQ(loop_interest_changes() - n0, 1);
	loop_unwatch(p[0]);
	close(p[0]);
	close(p[1]);
}

/* A regular file is always ready, for what is asked only (epoll refuses
 * it; poll() reports it ready). */
static void test_regular_file(void)
{
	char path[] = "/tmp/test_loop_XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	nev = 0;
	last_ev = 0;
	CHECK_EQ(loop_watch(fd, LOOP_READ, stop_on_ev, NULL), 0);
	run_for(2000);
	CHECK_EQ(nev, 1);
	CHECK(last_ev & LOOP_READ);
	nev = 0;
	run_for(20);            /* events 0 now: not called */
	CHECK_EQ(nev, 0);
	loop_unwatch(fd);
	close(fd);
}

#define MANY 2000

/* Many idle fds, one busy: it is served, the idle ones never called. */
static void test_many_idle(void)
{
	static int p[MANY][2];
	int i, n = 0;

	for (i = 0; i < MANY; i++) {
		if (pipe(p[i]) < 0)
			break;
		loop_watch(p[i][0], LOOP_READ, on_ev, NULL);
		n++;
	}
	CHECK(n > 100);
	CHECK_EQ(loop_nwatched(), (size_t)n);
	nev = 0;
	CHECK_EQ(write(p[n / 2][1], "x", 1), 1);
	loop_watch(p[n / 2][0], LOOP_READ, stop_on_ev, NULL);
	run_for(2000);
	CHECK_EQ(nev, 1);
	for (i = 0; i < n; i++) {
		loop_unwatch(p[i][0]);
		close(p[i][0]);
		close(p[i][1]);
	}
	CHECK_EQ(loop_nwatched(), 0);
}

static int deferred;

static void defer2(void *arg) { (void)arg; deferred += 10; loop_stop(); }
static void defer1(void *arg)
{
	(void)arg;
	deferred++;
	loop_defer(defer2, NULL);   /* deferring from a deferred call */
}

static void test_defer(void)
{
	loop_defer(defer1, NULL);
	loop_run();
	CHECK_EQ(deferred, 11);
}

static int got_sig;

static void on_sig(void *arg)
{
	(void)arg;
	got_sig++;
	loop_stop();
}

static void test_signal(void)
{
	loop_timer guard;

	CHECK_EQ(loop_signal(SIGUSR1, on_sig, NULL), 0);
	loop_timer_init(&guard, stop_cb, NULL);
	loop_timer_set(&guard, 2000);
	raise(SIGUSR1);
	loop_run();
	CHECK_EQ(got_sig, 1);
	loop_timer_stop(&guard);
}

static int idfired[8];

static void idrec(void *arg)
{
	idfired[(long)arg]++;
}

/* Id timers: fire once, cancel by id, a stale id (fired, cancelled, or a
 * reused slot's old id) is harmless and cancels nothing else. */
static void test_idtimer(void)
{
	uint64_t a, b, c, d;

	memset(idfired, 0, sizeof(idfired));
	a = idtimer_add(NULL, 5, idrec, (void *)0L);
	b = idtimer_add(NULL, 10, idrec, (void *)1L);
	c = idtimer_add(NULL, 15, idrec, (void *)2L);
	CHECK(a && b && c && a != b && b != c);
	CHECK_EQ(idtimer_count(), 3);
	idtimer_cancel(b);
	idtimer_cancel(b);                  /* twice: nothing */
	d = idtimer_add(NULL, 10, idrec, (void *)3L);   /* takes b's slot */
	CHECK(d != b);
	idtimer_cancel(b);                  /* stale: d must survive */
	CHECK_EQ(idtimer_count(), 3);
	run_for(100);
	CHECK_EQ(idfired[0], 1);
	CHECK_EQ(idfired[1], 0);
	CHECK_EQ(idfired[2], 1);
	CHECK_EQ(idfired[3], 1);
	CHECK_EQ(idtimer_count(), 0);
	idtimer_cancel(a);                  /* fired: nothing */
	a = idtimer_add(NULL, 1000, idrec, (void *)4L);
	CHECK(a != 0);
	idtimer_free_all();
	CHECK_EQ(idtimer_count(), 0);
	run_for(5);
	CHECK_EQ(idfired[4], 0);
}

/* Groups: an owner cancels only its own timers, and all of them at once;
 * a fired timer leaves its group. */
static void test_idtimer_groups(void)
{
	idtimer_group g1 = { 0 }, g2 = { 0 };
	uint64_t a, b, c;

	memset(idfired, 0, sizeof(idfired));
	a = idtimer_add(&g1, 5, idrec, (void *)0L);
	b = idtimer_add(&g1, 1000, idrec, (void *)1L);
	c = idtimer_add(&g2, 1000, idrec, (void *)2L);
	(void)idtimer_add(&g1, 1000, idrec, (void *)3L);
	idtimer_cancel_in(&g2, b);          /* not g2's: nothing */
	CHECK_EQ(idtimer_count(), 4);
	run_for(50);                        /* a fires, leaves g1 */
	CHECK_EQ(idfired[0], 1);
	CHECK(g1.head != NULL);
	idtimer_cancel_in(&g1, a);          /* fired: nothing */
	idtimer_cancel_group(&g1);
	CHECK(g1.head == NULL);
	CHECK_EQ(idtimer_count(), 1);
	idtimer_cancel_in(&g2, c);
	CHECK(g2.head == NULL);
	CHECK_EQ(idtimer_count(), 0);
	run_for(5);
	CHECK_EQ(idfired[1] + idfired[2] + idfired[3], 0);
	idtimer_free_all();
}

static void suite(int kind)
{
	CHECK_EQ(loop_init_poller(kind), 0);
	fprintf(stderr, "loop: poller %s\n", loop_poller_name());
	test_timers();
	test_watch_removed();
	test_idle();
	test_rdhup_error();
	test_paused_in_pass();
	test_interest_cost();
	test_regular_file();
	test_many_idle();
	test_idtimer();
	test_idtimer_groups();
	deferred = 0;
	test_defer();
	got_sig = 0;
	test_signal();
	loop_free();
}

int main(void)
{
	CHECK_EQ(loop_poller_parse("auto"), LOOP_POLLER_AUTO);
	CHECK_EQ(loop_poller_parse("epoll"), LOOP_POLLER_EPOLL);
	CHECK_EQ(loop_poller_parse("poll"), LOOP_POLLER_POLL);
	CHECK_EQ(loop_poller_parse("select"), -1);
	suite(LOOP_POLLER_POLL);
	CHECK(strcmp(loop_poller_name(), "none") == 0);
	if (loop_poller_available(LOOP_POLLER_EPOLL))
		suite(LOOP_POLLER_EPOLL);
	suite(LOOP_POLLER_AUTO);
	return test_summary("loop");
}
