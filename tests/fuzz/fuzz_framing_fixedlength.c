/*
 * fuzz_framing_fixedlength.c - the fixedlength framing plugin (compiled in
 * from framing/fixedlength.c, its WSY_PLUGIN renamed) under the core's
 * calling convention (fuzz_sim.h), N from the input.  Every frame it
 * cuts is at most N bytes, and without a buffer-full flush exactly N.
 */
#include <stdint.h>
#include <stdlib.h>

#define WSY_PLUGIN fuzz_plugin_fixedlength
#include "../../framing/fixedlength.c"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t flushes;

static void check_fl(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	size_t want = strtoul(config, NULL, 10);

	(void)frame;
	if (flushed) {
		flushes++;
		return;
	}
	if (op != WSY_OP_BINARY || n == 0 || n > want ||
	    (flushes == 0 && n != want))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const wsy_framing_ops *ops = WSY_PLUGIN.ops;
	struct fs_input x;
	int r;

	if (fs_split(data, size, 1, "4", &x) < 0)
		return 0;
	flushes = 0;
	r = fs_run(ops->frame, ops->frame_skip, &x, check_fl);
	/* a good N never fails the connection */
	if (r != 0 && fl_parse(x.config) != 0)
		abort();
	return 0;
}
