/*
 * buf.c - the pool behind buffer areas.  A handful of size classes (every
 * buffer of a program has one of a few sizes), each a LIFO free list
 * threaded through the areas themselves; the most recently freed area is
 * reused first, so it is still warm in the cache.
 */
#include <stdlib.h>

#include "buf.h"

#define POOL_CLASSES 8

static struct {
	size_t size;
	void *head;
	size_t count;
} cls[POOL_CLASSES];

static size_t pooled, limit = 16u << 20;

void bufpool_set_limit(size_t bytes)
{
	limit = bytes;
	if (pooled > limit)
		bufpool_drain();
}

void *bufpool_get(size_t size)
{
	size_t i;

	for (i = 0; i < POOL_CLASSES; i++) {
		if (cls[i].size == size && cls[i].head) {
			void *p = cls[i].head;
			cls[i].head = *(void **)p;
			cls[i].count--;
			pooled -= size;
			return p;
		}
	}
	return malloc(size);
}

void bufpool_put(void *area, size_t size)
{
	size_t i, free_slot = POOL_CLASSES;

	if (size < sizeof(void *) || pooled + size > limit) {
		free(area);
		return;
	}
	for (i = 0; i < POOL_CLASSES; i++) {
		if (cls[i].size == size)
			break;
		if (cls[i].size == 0 && free_slot == POOL_CLASSES)
			free_slot = i;
	}
	if (i == POOL_CLASSES) {
		if (free_slot == POOL_CLASSES) {
			free(area);
			return;
		}
		i = free_slot;
		cls[i].size = size;
	}
	*(void **)area = cls[i].head;
	cls[i].head = area;
	cls[i].count++;
	pooled += size;
}

void bufpool_drain(void)
{
	size_t i;

	for (i = 0; i < POOL_CLASSES; i++) {
		while (cls[i].head) {
			void *p = cls[i].head;
			cls[i].head = *(void **)p;
			free(p);
		}
		cls[i].count = 0;
		cls[i].size = 0;
	}
	pooled = 0;
}
