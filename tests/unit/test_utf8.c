/*
 * test_utf8.c - the incremental UTF-8 validator: valid and invalid tables,
 * every split position, fail-fast positions and utf8_prefix tails.
 */
#include <stdint.h>
#include <string.h>

#include "../../core/utf8.h"
#include "test.h"

struct seq {
	const char *bytes;
	size_t len;
};

#define S(x) { x, sizeof(x) - 1 }

static const struct seq valid[] = {
	S(""),
	S("a"),
	S("hello, world: plain ASCII longer than one word"),
	S("\x00"),
	S("\x7f"),
	S("\xc2\x80"),			/* U+0080, smallest 2-byte */
	S("\xdf\xbf"),			/* U+07FF */
	S("\xe0\xa0\x80"),		/* U+0800, smallest 3-byte */
	S("\xed\x9f\xbf"),		/* U+D7FF, just below surrogates */
	S("\xee\x80\x80"),		/* U+E000, just above surrogates */
	S("\xef\xbf\xbf"),		/* U+FFFF */
	S("\xef\xbb\xbf"),		/* BOM */
	S("\xf0\x90\x80\x80"),		/* U+10000, smallest 4-byte */
	S("\xf4\x8f\xbf\xbf"),		/* U+10FFFF, largest */
	S("\xf0\x9f\x98\x80"),		/* U+1F600 */
	S("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
	S("abcdefgh\xc3\xa9ijklmnopqrstuvw\xf0\x9f\x98\x80xyz0123456789"),
};

/* Invalid inputs with the index of the first byte that makes them so. */
struct bad {
	const char *bytes;
	size_t len;
	size_t at;
};

#define B(x, at) { x, sizeof(x) - 1, at }

static const struct bad invalid[] = {
	B("\x80", 0),			/* lone continuation */
	B("\xbf", 0),
	B("a\x80", 1),
	B("abcdefghijk\x80", 11),	/* after a full ASCII word */
	B("\xc0\x80", 0),		/* overlong NUL: C0 is never legal */
	B("\xc1\xbf", 0),
	B("\xe0\x80\x80", 1),		/* overlong 3-byte */
	B("\xe0\x9f\xbf", 1),
	B("\xf0\x80\x80\x80", 1),	/* overlong 4-byte */
	B("\xf0\x8f\xbf\xbf", 1),
	B("\xed\xa0\x80", 1),		/* U+D800 */
	B("\xed\xbf\xbf", 1),		/* U+DFFF */
	B("\xed\xa0\x80\xed\xb0\x80", 1), /* surrogate pair */
	B("\xf4\x90\x80\x80", 1),	/* U+110000 */
	B("\xf5\x80\x80\x80", 0),
	B("\xf7\xbf\xbf\xbf", 0),
	B("\xf8\x88\x80\x80\x80", 0),	/* 5-byte form */
	B("\xfc\x84\x80\x80\x80\x80", 0),
	B("\xfe", 0),
	B("\xff", 0),
	B("\xc2\x41", 1),		/* lead then ASCII */
	B("\xe1\x80\x41", 2),
	B("\xf0\x90\x80\x41", 3),
	B("\xc2\xc2\x80", 1),		/* lead then lead */
	B("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 12),
};

/* Incomplete at the end: valid so far but not complete. */
static const struct seq partial[] = {
	S("\xc2"),
	S("\xe0"),
	S("\xe0\xa0"),
	S("\xf0"),
	S("\xf0\x90"),
	S("\xf0\x90\x80"),
	S("\xf4\x8f\xbf"),
	S("\xed\x9f"),
	S("abc\xe2\x82"),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t *U(const char *s)
{
	return (const uint8_t *)s;
}

/* Feed p[0..n) cut at k; the result must not depend on k. */
static int feed_split(const uint8_t *p, size_t n, size_t k, int *complete)
{
	utf8_state s = UTF8_INIT;

	if (utf8_feed(&s, p, k) == -1 || utf8_feed(&s, p + k, n - k) == -1)
		return -1;
	*complete = utf8_complete(&s);
	return 0;
}

/* Feed one byte per call; returns the index of the failing byte or n. */
static size_t feed_bytewise(const uint8_t *p, size_t n)
{
	utf8_state s = UTF8_INIT;
	size_t i;

	for (i = 0; i < n; i++)
		if (utf8_feed(&s, p + i, 1) == -1)
			return i;
	return n;
}

static void test_valid(void)
{
	size_t i, k;
	int complete;

	for (i = 0; i < NELEM(valid); i++) {
		const uint8_t *p = U(valid[i].bytes);
		size_t n = valid[i].len;

		CHECK(utf8_valid(p, n));
		for (k = 0; k <= n; k++) {
			complete = 0;
			CHECK_EQ(feed_split(p, n, k, &complete), 0);
			CHECK(complete);
		}
		CHECK_EQ(feed_bytewise(p, n), n);
	}
}

static void test_invalid(void)
{
	size_t i, k;
	int complete;

	for (i = 0; i < NELEM(invalid); i++) {
		const uint8_t *p = U(invalid[i].bytes);
		size_t n = invalid[i].len, at = invalid[i].at;
		utf8_state s = UTF8_INIT;

		CHECK(!utf8_valid(p, n));
		/* Fail fast: the prefix before "at" is fine, with it not. */
		CHECK_EQ(utf8_feed(&s, p, at), 0);
		s = (utf8_state)UTF8_INIT;
		CHECK_EQ(utf8_feed(&s, p, at + 1), -1);
		CHECK_EQ(feed_bytewise(p, n), at);
		for (k = 0; k <= n; k++)
			CHECK_EQ(feed_split(p, n, k, &complete), -1);
	}
}

static void test_partial(void)
{
	size_t i;

	for (i = 0; i < NELEM(partial); i++) {
		const uint8_t *p = U(partial[i].bytes);
		size_t n = partial[i].len;
		utf8_state s = UTF8_INIT;

		CHECK_EQ(utf8_feed(&s, p, n), 0);
		CHECK(!utf8_complete(&s));
		CHECK(!utf8_valid(p, n));
	}
}

static void test_prefix(void)
{
	const uint8_t *p;
	size_t n;
	int tail;

	/* Complete input: all of it, no tail. */
	p = U("abc\xc3\xa9");
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 5, &tail), 5);
	CHECK_EQ(tail, 0);

	/* Tails of 1, 2 and 3 bytes of a 4-byte sequence. */
	p = U("ab\xf0\x9f\x98\x80");
	for (n = 3; n <= 5; n++) {
		tail = -1;
		CHECK_EQ(utf8_prefix(p, n, &tail), 2);
		CHECK_EQ(tail, 1);
	}
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 6, &tail), 6);
	CHECK_EQ(tail, 0);

	/* A 2-byte tail of a 3-byte sequence after a long ASCII run. */
	p = U("0123456789abcdef\xe2\x82");
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 18, &tail), 16);
	CHECK_EQ(tail, 1);

	/* Invalid remainder: prefix stops before it, no tail. */
	p = U("ab\xc3\xa9\xed\xa0\x80zz");
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 9, &tail), 4);
	CHECK_EQ(tail, 0);

	/* Invalid inside what could have been a tail. */
	p = U("ab\xf4\x90");
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 4, &tail), 2);
	CHECK_EQ(tail, 0);

	p = U("\x80");
	tail = -1;
	CHECK_EQ(utf8_prefix(p, 1, &tail), 0);
	CHECK_EQ(tail, 0);

	tail = -1;
	CHECK_EQ(utf8_prefix(p, 0, &tail), 0);
	CHECK_EQ(tail, 0);
}

/*
 * A non-ASCII byte at every position of the word-at-a-time ASCII path,
 * always fed in one call so that path is the one taken.
 */
static void test_ascii_words(void)
{
	uint8_t b[40];
	utf8_state s;
	size_t k;
	int wrong = 0, tail;

	for (k = 0; k + 2 <= sizeof(b); k++) {
		memset(b, 'x', sizeof(b));
		b[k] = 0x80;
		s = (utf8_state)UTF8_INIT;
		if (utf8_feed(&s, b, sizeof(b)) != -1 ||
		    utf8_prefix(b, sizeof(b), &tail) != k || tail != 0)
			wrong++;
		b[k] = 0xc3;
		b[k + 1] = 0xa9;
		if (!utf8_valid(b, sizeof(b)))
			wrong++;
		/* Cut inside the sequence: a 1-byte tail at k. */
		if (utf8_prefix(b, k + 1, &tail) != k || tail != 1)
			wrong++;
		b[k + 1] = 'x';
		if (utf8_valid(b, sizeof(b)) ||
		    utf8_prefix(b, sizeof(b), &tail) != k || tail != 0)
			wrong++;
	}
	CHECK_EQ(wrong, 0);
}

/* Every code point, encoded by hand, against the validator. */
static size_t encode(uint32_t cp, uint8_t *out)
{
	if (cp < 0x80) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xc0 | cp >> 6;
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xe0 | cp >> 12;
		out[1] = 0x80 | (cp >> 6 & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | cp >> 18;
	out[1] = 0x80 | (cp >> 12 & 0x3f);
	out[2] = 0x80 | (cp >> 6 & 0x3f);
	out[3] = 0x80 | (cp & 0x3f);
	return 4;
}

static void test_all_code_points(void)
{
	uint8_t b[4];
	uint32_t cp;
	size_t n;
	int wrong = 0;

	for (cp = 0; cp <= 0x13ffff; cp++) {
		int want = cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);

		n = encode(cp, b);
		if (utf8_valid(b, n) != want)
			wrong++;
	}
	CHECK_EQ(wrong, 0);

	/* Every overlong 2-, 3- and 4-byte form is rejected. */
	wrong = 0;
	for (cp = 0; cp < 0x10000; cp++) {
		b[0] = 0xf0;
		b[1] = 0x80 | (cp >> 12 & 0x3f);
		b[2] = 0x80 | (cp >> 6 & 0x3f);
		b[3] = 0x80 | (cp & 0x3f);
		if (utf8_valid(b, 4))
			wrong++;
		if (cp < 0x800) {
			b[0] = 0xe0 | cp >> 12;
			b[1] = 0x80 | (cp >> 6 & 0x3f);
			b[2] = 0x80 | (cp & 0x3f);
			if (utf8_valid(b, 3))
				wrong++;
		}
		if (cp < 0x80) {
			b[0] = 0xc0 | cp >> 6;
			b[1] = 0x80 | (cp & 0x3f);
			if (utf8_valid(b, 2))
				wrong++;
		}
	}
	CHECK_EQ(wrong, 0);
}

int main(void)
{
	test_valid();
	test_invalid();
	test_partial();
	test_prefix();
	test_ascii_words();
	test_all_code_points();
	return test_summary("utf8");
}
