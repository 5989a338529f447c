/*
 * fuzz_sim.h - the core's calling convention for a framing function
 * (core/bridge.c frame_peer/read_peer), simulated for the framing fuzz
 * targets: a peer buffer of buffer-size bytes filled by reads of varying
 * size, the framing called with last_read = the bytes new since its last
 * call, frames and skipped bytes consumed, a full buffer or end of stream
 * flushed as one message, and the final call with data == NULL.
 *
 * The framing always sees a fresh heap copy of exactly `length` bytes, so
 * ASan reports any read past what the core would hand it.
 *
 * Input layout (shared by all framing targets):
 *   byte 0      seed of the read sizes and the buffer size
 *   byte 1      buffer size: 16 + 16 * (byte % 66) (16..1056 bytes)
 *   [config] 0  when with_config: the framing-config, up to a NUL
 *               within the first FS_MAX_CONFIG bytes (else "" or the
 *               target's default)
 *   rest        the peer's byte stream
 */
#ifndef FUZZ_SIM_H
#define FUZZ_SIM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/websocksy_plugin.h"

#define FS_MAX_CONFIG 64

/* What the harness checks about each frame it is given (may be NULL). */
typedef void (*fs_check_fn)(const uint8_t *frame, size_t n, int op,
    int flushed, const char *config);

struct fs_input {
	uint32_t seed;
	size_t cap;
	char config[FS_MAX_CONFIG + 1];
	const uint8_t *data;
	size_t size;
};

/* Split the input; def is the config when none is given. */
static int fs_split(const uint8_t *in, size_t len, int with_config,
    const char *def, struct fs_input *x)
{
	const uint8_t *nul;
	size_t n;

	if (len < 2)
		return -1;
	x->seed = in[0] * 2654435761u + 1;
	x->cap = 16 + 16 * (size_t)(in[1] % 66);
	in += 2;
	len -= 2;
	snprintf(x->config, sizeof(x->config), "%s", def);
	if (with_config) {
		n = len < FS_MAX_CONFIG + 1 ? len : FS_MAX_CONFIG + 1;
		if ((nul = memchr(in, '\0', n)) != NULL) {
			n = (size_t)(nul - in);
			memcpy(x->config, in, n);
			x->config[n] = '\0';
			in += n + 1;
			len -= n + 1;
		}
	}
	x->data = in;
	x->size = len;
	return 0;
}

static uint32_t fs_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static int fs_valid_utf8(const uint8_t *p, size_t n);

/*
 * Run fn (or sfn, which wins, as in the core) over x.  Returns 0 when the
 * stream went through, -1 when the framing failed the connection.
 */
static int fs_run(wsy_framing_fn fn, wsy_framing_skip_fn sfn,
    const struct fs_input *x, fs_check_fn check)
{
	uint8_t *buf, *copy;
	size_t len = 0, pos = 0, fresh = 0, skip;
	uint32_t s = x->seed;
	void *state = NULL;
	int eof = 0, last_op = 0, rc = 0, op;
	int64_t n;

	if ((buf = malloc(x->cap)) == NULL)
		return 0;
	for (;;) {
		/* read_peer: up to the room left, sometimes twice */
		do {
			size_t room = x->cap - len, chunk;

			if (pos == x->size) {
				eof = 1;
				break;
			}
			if (room == 0)
				break;
			chunk = 1 + fs_rand(&s) % (fs_rand(&s) & 1 ? 8 : 300);
			if (chunk > room)
				chunk = room;
			if (chunk > x->size - pos)
				chunk = x->size - pos;
			memcpy(buf + len, x->data + pos, chunk);
			len += chunk;
			pos += chunk;
			fresh += chunk;
		} while (fs_rand(&s) % 4 == 0);

		/* frame_peer */
		while (len > 0) {
			op = last_op ? last_op : WSY_OP_BINARY;
			skip = 0;
			if ((copy = malloc(len)) == NULL)
				goto out;
			memcpy(copy, buf, len);
			if (sfn != NULL)
				n = sfn(copy, len, fresh, &op, &skip, &state,
				    x->config);
			else
				n = fn(copy, len, fresh, &op, &state,
				    x->config);
			free(copy);
			fresh = 0;
			if (n < 0 || skip > len || (uint64_t)n > len - skip) {
				/* n > length is a plugin bug the core
				 * survives (1011): still report it here */
				if (n >= 0)
					abort();
				rc = -1;
				goto out;
			}
			if (skip) {
				memmove(buf, buf + skip, len - skip);
				len -= skip;
				if (n == 0)
					continue;
			}
			if (n == 0) {
				if (len < x->cap && !eof)
					break;
				n = (int64_t)len;
				op = fs_valid_utf8(buf, len) ? WSY_OP_TEXT :
				    WSY_OP_BINARY;
				if (check)
					check(buf, len, op, 1, x->config);
			} else if (check) {
				check(buf, (size_t)n, op, 0, x->config);
			}
			if (op != WSY_OP_TEXT)
				op = WSY_OP_BINARY;
			memmove(buf, buf + n, len - (size_t)n);
			len -= (size_t)n;
			last_op = op;
		}
		if (eof && len == 0)
			break;
	}
out:
	/* the final call frees the state */
	if (sfn != NULL)
		sfn(NULL, 0, 0, NULL, NULL, &state, x->config);
	else
		fn(NULL, 0, 0, NULL, &state, x->config);
	free(buf);
	return rc;
}

/* A plain UTF-8 check, independent of core/utf8.c. */
static int fs_valid_utf8(const uint8_t *p, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp;

	while (i < n) {
		uint8_t c = p[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else
			return 0;
		if (n - i - 1 < need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 &&
		    cp <= 0xdfff))) || (need == 3 && (cp < 0x10000 ||
		    cp > 0x10ffff)))
			return 0;
		i += need + 1;
	}
	return 1;
}

#endif
