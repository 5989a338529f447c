/*
 * framing_netstring.c - an example websocksy framing plugin, built out of
 * tree against the installed SDK (see Makefile next to it):
 *
 *   make && make install       # pkg-config websocksy-plugin finds the rest
 *   websocksy -C plugins=DIR -c framing=netstring ...
 *
 * The peer's byte stream is a sequence of netstrings (D. J. Bernstein):
 * "LENGTH:PAYLOAD," where LENGTH is decimal without leading zeros.  Each
 * netstring becomes one WebSocket message carrying PAYLOAD only; the
 * "LENGTH:" header and the "," trailer are dropped (frame_skip).  The other
 * direction (client -> peer) is not framed: the core writes client
 * messages to the peer as they are.  An empty netstring ("0:,") is
 * dropped, since a framing cannot return an empty frame.
 *
 * framing-config: words separated by spaces or commas, later ones win:
 *   binary      messages are binary (default)
 *   text        messages are text; the core sends a payload that is not
 *               valid UTF-8 as binary anyway
 *   max=N       the longest payload accepted, 1..16777216 (default 65536)
 *
 * A bad header, a missing ",", a payload longer than max, or a bad config
 * returns -1: the core closes the connection with 1011 and logs "framing
 * error".  A netstring must fit in the core's buffer (buffer-size): if the
 * core had to flush a full buffer while a netstring was incomplete, the
 * stream is out of step and the connection fails the same way.
 *
 * All the ABI this uses: WSY_PLUGIN, wsy_framing_ops.frame_skip, per
 * connection state through *state, and the final call (data == NULL) that
 * frees it.  The plugin is called from the core's one thread only, and
 * keeps nothing global, so it needs no locking.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <websocksy_plugin.h>

#define NS_MAX_LIMIT (16u << 20)
#define NS_MAX_DIGITS 8            /* 16777216 has 8 digits */

struct ns_state {
	int opcode;                /* WSY_OP_BINARY or WSY_OP_TEXT */
	size_t max;                /* longest payload */
	int comma;                 /* the next byte is a checked "," to drop */
	size_t waiting;            /* buffer length when we said "wait" */
};

/* Parse the config into st; returns 0, or -1 on a bad word. */
static int ns_config(struct ns_state *st, const char *cfg)
{
	st->opcode = WSY_OP_BINARY;
	st->max = 65536;
	while (*cfg) {
		size_t n = strcspn(cfg, " ,\t");

		if (n == 6 && memcmp(cfg, "binary", 6) == 0) {
			st->opcode = WSY_OP_BINARY;
		} else if (n == 4 && memcmp(cfg, "text", 4) == 0) {
			st->opcode = WSY_OP_TEXT;
		} else if (n > 4 && memcmp(cfg, "max=", 4) == 0) {
			size_t i, v = 0;

			for (i = 4; i < n; i++) {
				if (cfg[i] < '0' || cfg[i] > '9')
					return -1;
				v = v * 10 + (size_t)(cfg[i] - '0');
				if (v > NS_MAX_LIMIT)
					return -1;
			}
			if (v == 0)
				return -1;
			st->max = v;
		} else if (n > 0) {
			return -1;
		}
		cfg += n;
		cfg += strspn(cfg, " ,\t");
	}
	return 0;
}

/*
 * Parse "LENGTH:" at d.  Returns the header length (digits and ':') and
 * sets *len, 0 if more bytes are needed, -1 if the header is bad.
 */
static int64_t ns_header(const uint8_t *d, size_t n, size_t max,
    size_t *len)
{
	size_t i, v = 0;

	for (i = 0; i < n && d[i] >= '0' && d[i] <= '9'; i++) {
		if (i == NS_MAX_DIGITS || (i == 1 && d[0] == '0'))
			return -1;         /* too long, or a leading zero */
		v = v * 10 + (size_t)(d[i] - '0');
	}
	if (i == n)
		return 0;                  /* the header goes on */
	if (i == 0 || d[i] != ':' || v > max)
		return -1;
	*len = v;
	return (int64_t)i + 1;
}

static int64_t ns_frame(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, size_t *skip, void **state,
    const char *config)
{
	struct ns_state *st = *state;
	size_t pos = 0, len = 0, seen;
	int64_t h;

	if (data == NULL) {                /* the final call: free the state */
		free(st);
		*state = NULL;
		return 0;
	}
	if (st == NULL) {
		if ((st = calloc(1, sizeof(*st))) == NULL)
			return -1;
		if (ns_config(st, config ? config : "") < 0) {
			free(st);
			return -1;
		}
		*state = st;
	}
	/* Bytes we were shown before but never took were flushed by the
	 * core (full buffer): we no longer know where a netstring starts. */
	seen = last_read < length ? length - last_read : 0;
	if (st->waiting > seen)
		return -1;
	st->waiting = 0;

	if (st->comma) {                   /* the previous payload's "," */
		st->comma = 0;
		pos = 1;
	}
	h = ns_header(data + pos, length - pos, st->max, &len);
	if (h < 0)
		return -1;
	/* Whole netstring present?  Header, payload and the ",". */
	if (h == 0 || length - pos - (size_t)h < len + 1) {
		*skip = pos;               /* drop an old "," now */
		st->waiting = length - pos;
		return 0;
	}
	if (data[pos + (size_t)h + len] != ',')
		return -1;
	*skip = pos + (size_t)h;
	*opcode = st->opcode;
	if (len == 0) {                    /* "0:,": drop it whole */
		*skip += 1;
		return 0;
	}
	st->comma = 1;
	return (int64_t)len;
}

static const wsy_framing_ops ns_ops = {
	.frame = NULL,
	.frame_skip = ns_frame,
	.session = NULL,
};

/* The one symbol websocksy looks for.  api_version is checked before any
 * of the functions above is called. */
const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_FRAMING,
	.name = "netstring",
	.ops_size = sizeof(wsy_framing_ops),
	.ops = &ns_ops,
};
