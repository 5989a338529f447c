/*
 * test_loop.c - the event loop: timer order, stop and re-arm, a watcher
 * removed (and its fd number reused) during a dispatch pass is not called,
 * deferred calls, signals through the self-pipe.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static int called_b, called_a;

static void on_b(int fd, int ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	called_b++;
}

/* A's callback removes B and makes a new fd take B's number. */
static void on_a(int fd, int ev, void *arg)
{
	int p[2];
	char c;

	(void)ev; (void)arg;
	called_a++;
	(void)!read(fd, &c, 1);
	loop_unwatch(fds_b[0]);
	close(fds_b[0]);
	if (pipe(p) == 0) {
		/* p[0] likely reuses fds_b[0]'s number. */
		loop_watch(p[0], LOOP_READ, on_b, NULL);
		fds_b[0] = p[0];
		close(p[1]);  /* makes p[0] readable (EOF) next pass */
	}
	loop_unwatch(fd);
	loop_stop();
}

static void test_watch_removed(void)
{
	CHECK_EQ(pipe(fds_a), 0);
	CHECK_EQ(pipe(fds_b), 0);
	/* Both readable: the pass that sees them sees A first (watched
	 * first), and B must not be called in that pass. */
	CHECK_EQ(write(fds_a[1], "x", 1), 1);
	CHECK_EQ(write(fds_b[1], "y", 1), 1);
	loop_watch(fds_a[0], LOOP_READ, on_a, NULL);
	loop_watch(fds_b[0], LOOP_READ, on_b, NULL);
	CHECK_EQ(loop_nwatched(), 2);
	loop_run();
	CHECK_EQ(called_a, 1);
	CHECK_EQ(called_b, 0);
	CHECK_EQ(loop_nwatched(), 1);
	loop_unwatch(fds_b[0]);
	close(fds_a[0]); close(fds_a[1]);
	close(fds_b[0]); close(fds_b[1]);
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

int main(void)
{
	loop_init();
	test_timers();
	test_watch_removed();
	test_defer();
	test_signal();
	loop_free();
	return test_summary("loop");
}
