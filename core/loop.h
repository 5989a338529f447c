/*
 * loop.h - the event loop: one thread, fd watchers and timers.
 * Layer: bottom (above buf/log).  Nothing else in the program calls poll()
 * or epoll: the kernel interface is a poller inside the loop (poller.h),
 * epoll on Linux by default and poll() everywhere; both keep every
 * guarantee below.
 *
 * There is one loop per process (module-level state, like nginx's cycle).
 * Callbacks run from loop_run(); any of them may watch, unwatch, close fds,
 * arm and stop timers: a watcher removed during a dispatch pass is never
 * called again, even if its fd number is reused in the same pass.
 */
#ifndef WSY_LOOP_H
#define WSY_LOOP_H

#include <stddef.h>
#include <stdint.h>

#define LOOP_READ  1
#define LOOP_WRITE 2
#define LOOP_ERROR 4   /* delivered only: POLLERR/POLLHUP/POLLNVAL */
#define LOOP_RDHUP 8   /* the other side shut down its writing (POLLRDHUP):
                        * level-triggered, stop asking once seen */

typedef void (*loop_io_cb)(int fd, int events, void *arg);
typedef void (*loop_cb)(void *arg);

/* A timer is owned by the caller (embedded in its struct); the loop keeps
 * pointers to armed timers only. */
typedef struct loop_timer {
	uint64_t when;      /* absolute, loop_now() milliseconds */
	size_t idx;         /* heap slot + 1; 0 = not armed */
	loop_cb cb;
	void *arg;
} loop_timer;

/* Pollers, for loop_init_poller() and the `poller` config key. */
#define LOOP_POLLER_AUTO  0   /* epoll where built, else poll */
#define LOOP_POLLER_EPOLL 1
#define LOOP_POLLER_POLL  2

/* "auto", "epoll" or "poll" to LOOP_POLLER_*; -1 if unknown. */
int loop_poller_parse(const char *name);
/* 1 if this build has that poller. */
int loop_poller_available(int kind);
/* Start the loop with that poller; -1 (errno) if it cannot be had (auto
 * falls back to poll).  Once started, later calls change nothing. */
int loop_init_poller(int kind);
/* loop_init_poller(LOOP_POLLER_AUTO). */
int loop_init(void);
/* "epoll", "poll", or "none" before the loop starts. */
const char *loop_poller_name(void);
void loop_free(void);

/* Watch fd for events (LOOP_READ|LOOP_WRITE); replaces a previous watch of
 * fd (callback and events).  events 0 keeps the fd registered but idle.
 * Returns 0 or -1 (out of memory). */
int loop_watch(int fd, int events, loop_io_cb cb, void *arg);
/* Change only the events of a watched fd.  Cheap: recorded now, given to
 * the kernel once before the next wait, and not at all if by then it is
 * back to what the kernel has. */
void loop_events(int fd, int events);
void loop_unwatch(int fd);
/* Number of watched fds. */
size_t loop_nwatched(void);
/* Interest changes given to the poller so far (one epoll_ctl each with
 * epoll): for tests and statistics. */
uint64_t loop_interest_changes(void);

void loop_timer_init(loop_timer *t, loop_cb cb, void *arg);
/* Arm (or re-arm) t to fire once, ms milliseconds from now. */
void loop_timer_set(loop_timer *t, uint64_t ms);
void loop_timer_stop(loop_timer *t);
static inline int loop_timer_armed(const loop_timer *t) { return t->idx != 0; }

/* Monotonic milliseconds, cached per loop iteration. */
uint64_t loop_now(void);
/* Refresh the cached clock (rarely needed). */
uint64_t loop_update_time(void);

/* Run cb(arg) after the current dispatch pass (safe place to free an object
 * whose callbacks may still be on the stack).  Returns 0 or -1. */
int loop_defer(loop_cb cb, void *arg);

/* Deliver signo to cb from the loop (self-pipe); SIG_IGN-safe. */
int loop_signal(int signo, loop_cb cb, void *arg);

/* Run until loop_stop(); returns 0, or -1 if the poller failed. */
int loop_run(void);
void loop_stop(void);

#endif
