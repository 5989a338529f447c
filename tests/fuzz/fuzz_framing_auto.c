/*
 * fuzz_framing_auto.c - the built-in "auto" framing (and "binary") under
 * the core's calling convention (fuzz_sim.h).  A text frame auto cuts
 * must be valid UTF-8 by an independent check; binary takes everything.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/framing.h"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_auto(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	(void)config;
	if (n == 0)
		abort();
	if (!flushed && op == WSY_OP_TEXT && !fs_valid_utf8(frame, n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_input x;
	wsy_framing_fn fn;

	if (fs_split(data, size, 0, "", &x) < 0)
		return 0;
	if ((fn = framing_builtin("auto")) == NULL ||
	    framing_builtin_check("auto", "", NULL, 0) != 0)
		abort();
	if (fs_run(fn, NULL, &x, check_auto) != 0)
		abort();        /* auto never fails a connection */
	fn = framing_builtin("binary");
	if (fn == NULL || fs_run(fn, NULL, &x, check_auto) != 0)
		abort();
	return 0;
}
