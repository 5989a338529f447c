/*
 * fuzz_framing_json.c - the json framing plugin (compiled in from
 * framing/json.c, its WSY_PLUGIN renamed) under the core's calling
 * convention (fuzz_sim.h), config ("depth=N") from the input.  Until the
 * core flushes a full buffer, every frame is one whole value: it starts
 * with no whitespace, and brackets outside strings balance.
 */
#include <stdint.h>
#include <stdlib.h>

#define WSY_PLUGIN fuzz_plugin_json
#include "../../framing/json.c"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t flushes;

static void check_js(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	size_t i;
	long depth = 0;
	int instr = 0, esc = 0;

	(void)config;
	if (flushed) {
		flushes++;
		return;
	}
	if (op != WSY_OP_TEXT || n == 0)
		abort();
	if (flushes)
		return;
	if (js_ws(frame[0]) || js_ws(frame[n - 1]))
		abort();
	for (i = 0; i < n; i++) {
		uint8_t c = frame[i];

		if (instr) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				instr = 0;
			continue;
		}
		if (c == '"')
			instr = 1;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']') {
			if (--depth < 0)
				abort();
			if (depth == 0 && i + 1 != n)
				abort();    /* two values in one frame */
		}
	}
	if (depth != 0 || instr)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const wsy_framing_ops *ops = WSY_PLUGIN.ops;
	struct fs_input x;

	if (fs_split(data, size, 1, "", &x) < 0)
		return 0;
	flushes = 0;
	fs_run(ops->frame, ops->frame_skip, &x, check_js);
	return 0;
}
