/*
 * fuzz_utf8.c - the incremental validator must agree with the whole-buffer
 * one at every split point, and utf8_prefix must return a valid prefix.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int whole = utf8_valid(data, size), tail;
	size_t cut, p;

	for (cut = 0; cut <= size && cut < 64; cut++) {
		utf8_state s = UTF8_INIT;
		int ok = utf8_feed(&s, data, cut) == 0 &&
		    utf8_feed(&s, data + cut, size - cut) == 0 &&
		    utf8_complete(&s);
		if (ok != whole)
			abort();
	}
	p = utf8_prefix(data, size, &tail);
	if (p > size || !utf8_valid(data, p))
		abort();
	if (whole && p != size)
		abort();
	return 0;
}
