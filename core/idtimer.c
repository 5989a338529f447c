/*
 * idtimer.c - id-addressed one-shot timers over the loop's heap.
 *
 * Timers live in a slot table; the id is (sequence << 32 | slot + 1), so a
 * cancel finds its slot at once and knows a stale id by its sequence.  Free
 * slots are kept on a stack and reused.  A timer of a group is also on the
 * group's doubly linked list, so that leaving it is O(1) too.
 */
#include <stdlib.h>

#include "idtimer.h"
#include "loop.h"

struct idtimer {
	loop_timer t;
	uint64_t id;
	idtimer_cb cb;
	void *arg;
	idtimer_group *g;
	struct idtimer *prev, *next;   /* in g */
};

static struct {
	struct idtimer **slot;
	size_t nslot, capslot;
	uint32_t *free;           /* free slot numbers */
	size_t nfree, capfree;
	uint32_t seq;
	size_t armed;
} T;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
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

static struct idtimer *lookup(uint64_t id)
{
	uint64_t s = id & 0xffffffffu;

	if (s == 0 || s > T.nslot || T.slot[s - 1] == NULL ||
	    T.slot[s - 1]->id != id)
		return NULL;
	return T.slot[s - 1];
}

static void release(struct idtimer *h)
{
	uint32_t s = (uint32_t)(h->id & 0xffffffffu) - 1;

	if (h->g) {
		if (h->prev)
			h->prev->next = h->next;
		else
			h->g->head = h->next;
		if (h->next)
			h->next->prev = h->prev;
	}
	T.slot[s] = NULL;
	/* The free stack has room: it never holds more than nslot. */
	T.free[T.nfree++] = s;
	T.armed--;
	free(h);
}

static void fire(void *arg)
{
	struct idtimer *h = arg;
	idtimer_cb cb = h->cb;
	void *a = h->arg;

	release(h);
	cb(a);
}

uint64_t idtimer_add(idtimer_group *g, uint64_t ms, idtimer_cb cb,
    void *arg)
{
	struct idtimer *h;
	uint32_t s;

	if (grow((void **)&T.free, &T.capfree, T.nslot + 1,
	    sizeof(*T.free)) < 0 || (h = calloc(1, sizeof(*h))) == NULL)
		return 0;
	if (T.nfree) {
		s = T.free[--T.nfree];
	} else {
		if (T.nslot == 0xffffffffu || grow((void **)&T.slot,
		    &T.capslot, T.nslot + 1, sizeof(*T.slot)) < 0) {
			free(h);
			return 0;
		}
		s = (uint32_t)T.nslot++;
	}
	if (++T.seq == 0)
		T.seq = 1;
	h->id = (uint64_t)T.seq << 32 | ((uint64_t)s + 1);
	h->cb = cb;
	h->arg = arg;
	if ((h->g = g) != NULL) {
		h->next = g->head;
		if (g->head)
			g->head->prev = h;
		g->head = h;
	}
	T.slot[s] = h;
	T.armed++;
	loop_timer_init(&h->t, fire, h);
	loop_timer_set(&h->t, ms);
	return h->id;
}

void idtimer_cancel_in(idtimer_group *g, uint64_t id)
{
	struct idtimer *h = lookup(id);

	if (h == NULL || (g && h->g != g))
		return;
	loop_timer_stop(&h->t);
	release(h);
}

void idtimer_cancel(uint64_t id)
{
	idtimer_cancel_in(NULL, id);
}

void idtimer_cancel_group(idtimer_group *g)
{
	while (g->head) {
		struct idtimer *h = g->head;

		loop_timer_stop(&h->t);
		release(h);
	}
}

void idtimer_free_all(void)
{
	size_t i;

	for (i = 0; i < T.nslot; i++) {
		if (T.slot[i]) {
			loop_timer_stop(&T.slot[i]->t);
			free(T.slot[i]);
		}
	}
	free(T.slot);
	free(T.free);
	T.slot = NULL;
	T.free = NULL;
	T.nslot = T.capslot = T.nfree = T.capfree = 0;
	T.armed = 0;
}

size_t idtimer_count(void)
{
	return T.armed;
}
