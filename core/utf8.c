/*
 * utf8.c - incremental UTF-8 validation (RFC 3629).  Layer: bottom.
 *
 * Rather than a table of legal second bytes, every byte narrows the range
 * of code points the sequence can still encode; the input is invalid as
 * soon as that range is entirely overlong, entirely a surrogate or entirely
 * above U+10FFFF.  This fails on the first offending byte (RFC 6455 §8.1),
 * e.g. at the A0 of ED A0 80 or the 90 of F4 90 80 80.
 */
#include <string.h>

#include "utf8.h"

#define HIGH_BITS 0x8080808080808080ULL

/* Advance the state by one byte: 0 if still valid, -1 if not. */
static int utf8_step(utf8_state *s, uint8_t c)
{
	uint32_t lo, hi, bits;

	if (s->need == 0) {
		if (c < 0x80)
			return 0;
		if (c < 0xc0)	/* a continuation byte with no lead */
			return -1;
		if (c < 0xe0) {
			s->need = 1;
			s->cp = c & 0x1f;
			s->min = 0x80;
		} else if (c < 0xf0) {
			s->need = 2;
			s->cp = c & 0x0f;
			s->min = 0x800;
		} else if (c < 0xf8) {
			s->need = 3;
			s->cp = c & 0x07;
			s->min = 0x10000;
		} else
			return -1;
	} else {
		if ((c & 0xc0) != 0x80)
			return -1;
		s->cp = s->cp << 6 | (c & 0x3f);
		s->need--;
	}

	/* [lo, hi]: every code point the bytes still to come could give. */
	bits = 6 * s->need;
	lo = s->cp << bits;
	hi = lo | ((1u << bits) - 1);
	if (hi < s->min || lo > 0x10ffff || (lo >= 0xd800 && hi <= 0xdfff))
		return -1;
	return 0;
}

/*
 * Validate p[0..n) from state s.  Returns the index of the first invalid
 * byte, or n.  *bound is the end of the last complete code point.
 */
static size_t utf8_scan(utf8_state *s, const uint8_t *p, size_t n,
    size_t *bound)
{
	uint64_t w;
	size_t i = 0;

	while (i < n) {
		if (s->need == 0) {
			/* Text is mostly ASCII: skip it a word at a time. */
			while (n - i >= 8) {
				memcpy(&w, p + i, sizeof(w));
				if (w & HIGH_BITS)
					break;
				i += 8;
			}
			while (i < n && p[i] < 0x80)
				i++;
			*bound = i;
			if (i == n)
				break;
		}
		if (utf8_step(s, p[i]) == -1)
			return i;
		i++;
		if (s->need == 0)
			*bound = i;
	}
	return n;
}

int utf8_feed(utf8_state *s, const uint8_t *p, size_t n)
{
	size_t bound = 0;

	return utf8_scan(s, p, n, &bound) == n ? 0 : -1;
}

int utf8_complete(const utf8_state *s)
{
	return s->need == 0;
}

int utf8_valid(const uint8_t *p, size_t n)
{
	utf8_state s = UTF8_INIT;

	return utf8_feed(&s, p, n) == 0 && utf8_complete(&s);
}

size_t utf8_prefix(const uint8_t *p, size_t n, int *tail)
{
	utf8_state s = UTF8_INIT;
	size_t bound = 0;

	/* An incomplete sequence is at most 3 bytes, so it is a tail. */
	*tail = utf8_scan(&s, p, n, &bound) == n && s.need != 0;
	return bound;
}
