/*
 * framing_overrun.c - a broken framing for the tests: claims one byte more
 * than it was given.  The core must close the connection with 1011, log
 * it, and keep serving.
 */
#include "../../plugins/websocksy_plugin.h"

static int64_t overrun(const uint8_t *data, size_t length, size_t last_read,
    int *opcode, void **state, const char *config)
{
	(void)last_read; (void)state; (void)config;
	if (data == NULL)
		return 0;
	*opcode = WSY_OP_BINARY;
	return (int64_t)length + 1;
}

static const wsy_framing_ops ops = { .frame = overrun };

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_FRAMING,
	.name = "overrun",
	.ops_size = sizeof(ops),
	.ops = &ops,
};
