/*
 * framing_badabi.c - a plugin that claims another ABI version; websocksy
 * must refuse it at start-up, naming both versions, without calling it.
 */
#include "../../plugins/websocksy_plugin.h"

static int64_t never(const uint8_t *data, size_t length, size_t last_read,
    int *opcode, void **state, const char *config)
{
	(void)data; (void)length; (void)last_read; (void)opcode;
	(void)state; (void)config;
	__builtin_trap();
}

static const wsy_framing_ops ops = { .frame = never };

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION + 98,
	.kind = WSY_KIND_FRAMING,
	.name = "badabi",
	.ops_size = sizeof(ops),
	.ops = &ops,
};
