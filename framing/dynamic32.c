/*
 * dynamic32.c - framing plugin: a 4-byte length prefix, then that many
 * payload bytes.  One message per frame, binary.
 *
 * framing-config is a list of words separated by spaces or commas:
 *   big | little    byte order of the prefix (default big)
 *   strip | keep    the message is the payload only (default), or the
 *                   prefix and the payload
 * A later word overrides an earlier one.  The core validates nothing for
 * plugins at start-up: a bad config makes the first call return -1 and
 * the core closes the connection with 1011.
 *
 * strip needs to drop bytes before a frame, so this plugin uses the
 * frame_skip form of the contract.  The prefix is dropped as soon as it
 * is complete, so only the payload has to fit the core's buffer.  A frame
 * with an empty payload gives no message under strip: a frame of length 0
 * means "nothing to send" in the contract.
 *
 * A payload longer than 16 MiB is an error (-1).  A message longer than
 * the core's buffer-size is flushed by the core in parts; the state
 * notices the flush and ends the next message at the frame's end, so the
 * next prefix is still read at the right place (this relies on last_read
 * being exact, as the plugin header promises).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../plugins/websocksy_plugin.h"

#define D32_PREFIX 4
#define D32_MAX (16u << 20)

struct d32_state {
	int little;
	int keep;               /* the prefix is part of the message */
	size_t need;            /* the message length; 0 while unknown */
	size_t pos;             /* bytes of this frame the core flushed */
	size_t waiting;         /* buffer length when we last said "wait" */
};

/* One config word of len bytes.  Returns 0, or -1 if unknown. */
static int d32_word(struct d32_state *st, const char *w, size_t len)
{
	if (len == 3 && memcmp(w, "big", 3) == 0)
		st->little = 0;
	else if (len == 6 && memcmp(w, "little", 6) == 0)
		st->little = 1;
	else if (len == 4 && memcmp(w, "keep", 4) == 0)
		st->keep = 1;
	else if (len == 5 && memcmp(w, "strip", 5) == 0)
		st->keep = 0;
	else
		return -1;
	return 0;
}

static int d32_parse(struct d32_state *st, const char *cfg)
{
	static const char sep[] = " ,\t";
	size_t len;

	if (cfg == NULL)
		return 0;
	for (;;) {
		cfg += strspn(cfg, sep);
		if (*cfg == '\0')
			return 0;
		len = strcspn(cfg, sep);
		if (d32_word(st, cfg, len) < 0)
			return -1;
		cfg += len;
	}
}

static uint32_t d32_len(const struct d32_state *st, const uint8_t *p)
{
	if (st->little)
		return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static struct d32_state *d32_new(const char *config)
{
	struct d32_state st0, *st;

	memset(&st0, 0, sizeof(st0));
	if (d32_parse(&st0, config) < 0)
		return NULL;
	if ((st = malloc(sizeof(*st))) != NULL)
		*st = st0;
	return st;
}

/*
 * Read the prefix at data.  Returns how many bytes to skip (4 for strip,
 * else 0) and sets need, or -1 if the payload is too long.
 */
static int d32_prefix(struct d32_state *st, const uint8_t *data)
{
	uint32_t plen;

	if ((plen = d32_len(st, data)) > D32_MAX)
		return -1;
	st->need = (size_t)plen + (st->keep ? D32_PREFIX : 0);
	return st->keep ? 0 : D32_PREFIX;
}

static int64_t d32_frame(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, size_t *skip, void **state,
    const char *config)
{
	struct d32_state *st = *state;
	size_t old, need;
	int sk;

	if (data == NULL) {
		free(st);
		*state = NULL;
		return 0;
	}
	*skip = 0;
	if (st == NULL && (st = *state = d32_new(config)) == NULL)
		return -1;
	/* Bytes we saw but never cut were flushed by the core. */
	old = last_read < length ? length - last_read : 0;
	if (st->waiting > old) {
		/* only a whole prefix can be part of a flushed frame: the
		 * buffer (at least 1024 bytes) never fills with less */
		if (st->need == 0)
			return -1;
		st->pos += st->waiting - old;
	}
	st->waiting = 0;
	if (st->need == 0) {
		if (length < D32_PREFIX) {
			st->waiting = length;
			return 0;
		}
		if ((sk = d32_prefix(st, data)) < 0)
			return -1;
		*skip = (size_t)sk;
		data += sk;
		length -= (size_t)sk;
		if (st->need == 0)
			return 0;       /* strip, empty payload: no message */
	}
	need = st->need - st->pos;
	if (length < need) {
		/* after a skip the core calls again at once */
		st->waiting = *skip > 0 ? 0 : length;
		return 0;
	}
	st->need = st->pos = 0;
	*opcode = WSY_OP_BINARY;
	return (int64_t)need;
}

static const wsy_framing_ops d32_ops = {
	.frame = NULL,
	.frame_skip = d32_frame,
	.session = NULL,
};

const wsy_plugin WSY_PLUGIN = {
	WEBSOCKSY_API_VERSION,
	WSY_KIND_FRAMING,
	"dynamic32",
	sizeof(wsy_framing_ops),
	&d32_ops,
};
