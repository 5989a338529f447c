/*
 * utf8.h - incremental UTF-8 validation (RFC 3629), bottom layer.
 * Sequences may be split across calls; fails on the first byte that makes
 * the input invalid (RFC 6455 §8.1 asks to fail fast).  Never allocates.
 */
#ifndef WSY_UTF8_H
#define WSY_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct utf8_state {
	uint32_t need;      /* continuation bytes still expected */
	uint32_t cp;        /* code point so far */
	uint32_t min;       /* smallest legal value (overlong check) */
} utf8_state;

#define UTF8_INIT { 0, 0, 0 }

/* Feed n bytes.  Returns 0 if everything so far is valid (possibly in the
 * middle of a sequence), -1 at the first invalid byte (state undefined). */
int utf8_feed(utf8_state *s, const uint8_t *p, size_t n);

/* 1 if the input so far ends on a code point boundary. */
int utf8_complete(const utf8_state *s);

/* Whole-buffer check: 1 if p[0..n) is complete valid UTF-8. */
int utf8_valid(const uint8_t *p, size_t n);

/*
 * Longest valid prefix of p[0..n) that ends on a boundary.  *tail is set to
 * 1 when the remainder is an incomplete (but so far valid) sequence shorter
 * than 4 bytes at the very end, 0 otherwise (remainder empty or invalid).
 */
size_t utf8_prefix(const uint8_t *p, size_t n, int *tail);

#endif
