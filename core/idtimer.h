/*
 * idtimer.h - one-shot timers named by a 64-bit id, for callers that cannot
 * embed a loop_timer (plugins, through the host's timer_add/timer_cancel).
 * Layer: above loop.  Add and cancel are O(1) plus the loop's O(log n):
 * nothing scans the other timers, however many connections hold one.
 *
 * An id is never 0 and is not reused while the process lives (in practice:
 * a 32-bit sequence beside the slot), so cancelling a timer that has fired
 * or been cancelled is harmless.
 */
#ifndef WSY_IDTIMER_H
#define WSY_IDTIMER_H

#include <stdint.h>

typedef void (*idtimer_cb)(void *arg);

/* The timers of one owner (a framing session), so that the owner can
 * cancel only its own and drop all of them when it ends.  Zeroed = empty. */
typedef struct idtimer_group {
	struct idtimer *head;
} idtimer_group;

/* Fire cb(arg) once, ms from now, in group g (NULL: the process's own).
 * Returns the id, or 0 (out of memory). */
uint64_t idtimer_add(idtimer_group *g, uint64_t ms, idtimer_cb cb,
    void *arg);
/* Stop it if it has not fired and belongs to g (NULL: any). */
void idtimer_cancel_in(idtimer_group *g, uint64_t id);
/* idtimer_cancel_in(NULL, id): the plugin host's timer_cancel. */
void idtimer_cancel(uint64_t id);
/* Stop every timer of g. */
void idtimer_cancel_group(idtimer_group *g);
/* Stop and forget every timer (shutdown). */
void idtimer_free_all(void);
/* Timers armed now. */
size_t idtimer_count(void);

#endif
