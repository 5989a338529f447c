/*
 * fuzz_framing_newline.c - the built-in "newline" framing under the core's
 * calling convention (fuzz_sim.h), mode (crlf, lfcr, lf, cr or anything
 * else) from the input.  A frame it cuts ends with the line end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/framing.h"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *eol(const char *mode)
{
	if (*mode == '\0' || strcmp(mode, "crlf") == 0)
		return "\r\n";
	if (strcmp(mode, "lfcr") == 0)
		return "\n\r";
	if (strcmp(mode, "lf") == 0)
		return "\n";
	if (strcmp(mode, "cr") == 0)
		return "\r";
	return NULL;
}

static void check_nl(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	const char *e = eol(config);
	size_t el = strlen(e);

	(void)op;
	if (n == 0)
		abort();
	if (!flushed && (n < el || memcmp(frame + n - el, e, el) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_input x;
	int ok;

	if (fs_split(data, size, 1, "", &x) < 0)
		return 0;
	ok = framing_builtin_check("newline", x.config, NULL, 0) == 0;
	if (ok != (eol(x.config) != NULL))
		abort();
	if (!ok) {
		/* the core would refuse the config; the framing itself
		 * must still fail cleanly, allocating nothing */
		if (fs_run(framing_builtin("newline"), NULL, &x, NULL) == 0 &&
		    x.size > 0)
			abort();
		return 0;
	}
	if (fs_run(framing_builtin("newline"), NULL, &x, check_nl) != 0)
		abort();
	return 0;
}
