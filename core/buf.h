/*
 * buf.h - a bounded byte buffer: (area, size, off, len), counts not
 * pointers.  Layer: bottom.  The area is allocated on first use and never
 * grows past the capacity fixed at buf_init (backpressure, not growth).
 */
#ifndef WSY_BUF_H
#define WSY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Buffer areas come from a small pool of recently freed areas (buf.c), so
 * a connection can give its areas back as soon as they are empty (idle
 * connections hold no buffer memory) without a malloc/free pair per read.
 */
void *bufpool_get(size_t size);
void bufpool_put(void *area, size_t size);
/* Bytes the pool may keep (default 16 MiB); 0 disables pooling. */
void bufpool_set_limit(size_t bytes);
void bufpool_drain(void);

typedef struct buf {
	uint8_t *area;
	size_t size;     /* capacity */
	size_t off;      /* start of data */
	size_t len;      /* bytes of data */
} buf;

static inline void buf_init(buf *b, size_t size)
{
	b->area = NULL;
	b->size = size;
	b->off = b->len = 0;
}

static inline void buf_free(buf *b)
{
	if (b->area)
		bufpool_put(b->area, b->size);
	b->area = NULL;
	b->off = b->len = 0;
}

/* Allocate the area if needed.  Returns 0 or -1 (out of memory). */
static inline int buf_alloc(buf *b)
{
	if (b->area == NULL && (b->area = bufpool_get(b->size)) == NULL)
		return -1;
	return 0;
}

static inline uint8_t *buf_data(const buf *b) { return b->area + b->off; }

/* Free room at the tail, moving data to the front when that helps. */
static inline size_t buf_room(buf *b)
{
	if (b->off && b->off + b->len == b->size) {
		memmove(b->area, b->area + b->off, b->len);
		b->off = 0;
	}
	return b->size - b->off - b->len;
}

/* Make n bytes of room at the tail if the buffer has them anywhere
 * (moves the data to the front).  Returns 0, or -1 if it cannot. */
static inline int buf_reserve(buf *b, size_t n)
{
	if (b->size - b->off - b->len >= n)
		return 0;
	if (b->size - b->len < n)
		return -1;
	memmove(b->area, b->area + b->off, b->len);
	b->off = 0;
	return 0;
}

static inline uint8_t *buf_tail(const buf *b)
{
	return b->area + b->off + b->len;
}

/* Room without compacting (what is free after the data). */
static inline size_t buf_tailroom(const buf *b)
{
	return b->size - b->off - b->len;
}

static inline void buf_commit(buf *b, size_t n) { b->len += n; }

static inline void buf_consume(buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

/* Append n bytes; the caller checked buf_room() >= n. */
static inline void buf_put(buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;   /* p may be NULL: memcpy(d, NULL, 0) is undefined */
	memcpy(buf_tail(b), p, n);
	b->len += n;
}

/* Free the area if the buffer is empty (idle connections hold no memory). */
static inline void buf_shrink(buf *b)
{
	if (b->len == 0 && b->area) {
		bufpool_put(b->area, b->size);
		b->area = NULL;
		b->off = 0;
	}
}

#endif
