/*
 * fuzz_framing_dynamic32.c - the dynamic32 framing plugin (compiled in
 * from framing/dynamic32.c, its WSY_PLUGIN renamed) under the core's
 * calling convention (fuzz_sim.h): frame_skip, prefix stripped or kept,
 * either byte order, config from the input.  Until the core flushes a
 * full buffer, every frame must be the length its prefix says.
 */
#include <stdint.h>
#include <stdlib.h>

#define WSY_PLUGIN fuzz_plugin_dynamic32
#include "../../framing/dynamic32.c"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t flushes;

static void check_d32(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	struct d32_state st;
	uint32_t plen;

	if (flushed) {
		flushes++;
		return;
	}
	if (op != WSY_OP_BINARY || n == 0)
		abort();
	memset(&st, 0, sizeof(st));
	if (d32_parse(&st, config) < 0)
		abort();        /* a bad config never gives a frame */
	if (st.keep && flushes == 0) {
		if (n < D32_PREFIX)
			abort();
		plen = d32_len(&st, frame);
		if ((size_t)plen + D32_PREFIX != n)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const wsy_framing_ops *ops = WSY_PLUGIN.ops;
	struct fs_input x;

	if (fs_split(data, size, 1, "", &x) < 0)
		return 0;
	flushes = 0;
	fs_run(ops->frame, ops->frame_skip, &x, check_d32);
	return 0;
}
