/*
 * fixedlength.c - framing plugin: every message is exactly N bytes.
 *
 * framing-config is N, a decimal number from 1 to 16777216.  The core
 * validates nothing for plugins at start-up, so a bad config shows up on
 * the first data from the peer: the frame function returns -1 and the
 * core closes that connection with 1011.
 *
 * A frame of N bytes can only be cut when the core's buffer holds N
 * bytes; with N > buffer-size the core flushes a full buffer as a short
 * message.  The state notices such a flush (bytes vanished that were never
 * handed out) and ends the next message where the frame ends, so the
 * stream stays aligned to N even then.  This relies on last_read being
 * exact, as the plugin header promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../plugins/websocksy_plugin.h"

#define FL_MAX (16u << 20)

struct fl_state {
	size_t n;               /* the frame length */
	size_t pos;             /* bytes of this frame the core flushed */
	size_t waiting;         /* buffer length when we last said "wait" */
};

/* Strict decimal: digits only, 1..FL_MAX.  Returns 0 if bad. */
static size_t fl_parse(const char *cfg)
{
	size_t v = 0;

	if (cfg == NULL || *cfg == '\0')
		return 0;
	for (; *cfg != '\0'; cfg++) {
		if (*cfg < '0' || *cfg > '9')
			return 0;
		v = v * 10 + (size_t)(*cfg - '0');
		if (v > FL_MAX)
			return 0;
	}
	return v;
}

static int64_t fl_frame(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *config)
{
	struct fl_state *st = *state;
	size_t n, old, need;

	if (data == NULL) {
		free(st);
		*state = NULL;
		return 0;
	}
	if (st == NULL) {
		if ((n = fl_parse(config)) == 0)
			return -1;
		if ((st = calloc(1, sizeof(*st))) == NULL)
			return -1;
		st->n = n;
		*state = st;
	}
	/* Bytes we saw but never cut were flushed by the core. */
	old = last_read < length ? length - last_read : 0;
	if (st->waiting > old)
		st->pos += st->waiting - old;
	st->waiting = 0;
	need = st->n - st->pos;
	if (length < need) {
		st->waiting = length;
		return 0;
	}
	st->pos = 0;
	*opcode = WSY_OP_BINARY;
	return (int64_t)need;
}

static const wsy_framing_ops fl_ops = {
	.frame = fl_frame,
	.session = NULL,
};

const wsy_plugin WSY_PLUGIN = {
	WEBSOCKSY_API_VERSION,
	WSY_KIND_FRAMING,
	"fixedlength",
	sizeof(wsy_framing_ops),
	&fl_ops,
};
