/*
 * framing.c - the built-in framings: auto, binary, separator, newline.
 * Layer: protocol.  Each is a wsy_framing_fn: it looks at the bytes the
 * core buffered from the peer and says how many form the next WebSocket
 * message.  Only separator and newline keep state (the parsed separator
 * and how far the buffer was already searched).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "utf8.h"

/*
 * auto: text when it is text, else binary; decided per read.
 *
 * When the buffer ends in an incomplete UTF-8 sequence (a lead byte C2-F4
 * and fewer continuation bytes than it announces), the end may still come
 * or the peer may be sending binary that just looks like text so far.  A
 * read whose end is incomplete is held whole, so that if it turns out
 * binary (the core sends what is held as binary after utf8-hold) it goes
 * out as one binary message, not as a text message plus a binary one.
 * Once bytes are held (old: bytes shown before this read), the next read
 * that completes the sequence sends the text up to its own last boundary
 * and holds only its own incomplete end: a text stream split in the
 * middle of characters never holds more than a few bytes of what came
 * before.  Anything that is not UTF-8 goes out whole as binary.
 */
static int64_t fr_auto(const uint8_t *data, size_t length, size_t last_read,
    int *opcode, void **state, const char *config)
{
	size_t n, old;
	int tail;

	(void)state;
	(void)config;
	if (data == NULL || length == 0)
		return 0;
	n = utf8_prefix(data, length, &tail);
	if (n == length) {
		*opcode = WSY_OP_TEXT;
		return (int64_t)n;
	}
	if (!tail) {
		*opcode = WSY_OP_BINARY;
		return (int64_t)length;
	}
	old = last_read < length ? length - last_read : 0;
	if (old == 0 || n < old)
		return 0;       /* hold the read, or the sequence still open */
	*opcode = WSY_OP_TEXT;
	return (int64_t)n;
}

/* binary: whatever arrived, as one binary message. */
static int64_t fr_binary(const uint8_t *data, size_t length, size_t last_read,
    int *opcode, void **state, const char *config)
{
	(void)last_read;
	(void)state;
	(void)config;
	if (data == NULL || length == 0)
		return 0;
	*opcode = WSY_OP_BINARY;
	return (int64_t)length;
}

static void set_err(char *err, size_t errlen, const char *reason,
    const char *what)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: \"%s\"", reason, what);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the separator config into out (room for strlen(cfg) bytes: an
 * escape never decodes longer than it is written).  Returns the length,
 * or 0 with a reason in err.
 */
static size_t parse_sep(const char *cfg, uint8_t *out, char *err,
    size_t errlen)
{
	const char *p;
	size_t n = 0;
	int hi, lo;

	for (p = cfg; *p != '\0'; p++) {
		if (*p != '\\') {
			out[n++] = (uint8_t)*p;
			continue;
		}
		switch (*++p) {
		case 'r':  out[n++] = '\r'; break;
		case 't':  out[n++] = '\t'; break;
		case 'n':  out[n++] = '\n'; break;
		case '0':  out[n++] = '\0'; break;
		case 'f':  out[n++] = '\f'; break;
		case '\\': out[n++] = '\\'; break;
		case 'x':
			/* p[2] is only read when p[1] was no NUL */
			if ((hi = hexval(p[1])) < 0 ||
			    (lo = hexval(p[2])) < 0) {
				set_err(err, errlen, "separator: \\x wants two "
				    "hex digits", cfg);
				return 0;
			}
			out[n++] = (uint8_t)(hi << 4 | lo);
			p += 2;
			break;
		case '\0':
			set_err(err, errlen, "separator: trailing backslash",
			    cfg);
			return 0;
		default:
			set_err(err, errlen, "separator: unknown escape (use "
			    "\\r \\t \\n \\0 \\f \\\\ \\xHH)", cfg);
			return 0;
		}
	}
	if (n == 0)
		set_err(err, errlen, "separator: empty separator", cfg);
	return n;
}

/* The separator a newline mode stands for, or NULL if unknown. */
static const char *newline_sep(const char *mode)
{
	if (mode == NULL || *mode == '\0' || strcmp(mode, "crlf") == 0)
		return "\r\n";
	if (strcmp(mode, "lfcr") == 0)
		return "\n\r";
	if (strcmp(mode, "lf") == 0)
		return "\n";
	if (strcmp(mode, "cr") == 0)
		return "\r";
	return NULL;
}

/* Per-connection state of separator and newline. */
struct sep_state {
	size_t scanned;         /* data[0..scanned) holds no separator start */
	size_t len;
	uint8_t sep[];
};

static struct sep_state *sep_new(const uint8_t *sep, size_t len)
{
	struct sep_state *st;

	if ((st = malloc(sizeof(*st) + len)) == NULL)
		return NULL;
	st->scanned = 0;
	st->len = len;
	memcpy(st->sep, sep, len);
	return st;
}

/* Offset of the first separator starting at or after from, or length. */
static size_t sep_find(const struct sep_state *st, const uint8_t *data,
    size_t length, size_t from)
{
	const uint8_t *p;

	while (from + st->len <= length) {
		p = memchr(data + from, st->sep[0],
		    length - from - st->len + 1);
		if (p == NULL)
			break;
		from = (size_t)(p - data);
		if (memcmp(p, st->sep, st->len) == 0)
			return from;
		from++;
	}
	return length;
}

/*
 * Cut at the separator, which stays at the end of its frame.
 *
 * To search each byte about once, the state remembers how far the last
 * call searched in vain.  That offset is only good while the buffer start
 * has not moved: when a frame is returned the core drops its bytes before
 * the next call, so scanned goes back to 0 (the bytes after the frame were
 * never searched).  As a second bound, in case the core dropped bytes we
 * did not hand it (its buffer-full flush), the search also starts no later
 * than the new bytes minus seplen-1, the most of a separator that can hide
 * in the old ones: min(scanned, length - last_read - (seplen-1)).
 */
static int64_t sep_frame(struct sep_state *st, const uint8_t *data,
    size_t length, size_t last_read, int *opcode)
{
	size_t from = st->scanned, old, at;

	old = last_read < length ? length - last_read : 0;
	old = old > st->len - 1 ? old - (st->len - 1) : 0;
	if (old < from)
		from = old;
	at = sep_find(st, data, length, from);
	if (at == length) {
		st->scanned = length >= st->len ? length - (st->len - 1) : 0;
		return 0;
	}
	st->scanned = 0;
	at += st->len;
	*opcode = utf8_valid(data, at) ? WSY_OP_TEXT : WSY_OP_BINARY;
	return (int64_t)at;
}

/*
 * The common part of separator and newline: the final call, the state
 * made on first use from the separator sep (NUL-terminated, escapes as in
 * the config), then the cut.
 */
static int64_t sep_common(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *sep)
{
	struct sep_state *st = *state;
	uint8_t *raw;
	size_t n;

	if (data == NULL) {
		free(st);
		*state = NULL;
		return 0;
	}
	if (st == NULL) {
		/* framing_builtin_check() vetted the config at startup */
		if ((raw = malloc(strlen(sep) + 1)) == NULL)
			return -1;
		n = parse_sep(sep, raw, NULL, 0);
		st = n > 0 ? sep_new(raw, n) : NULL;
		free(raw);
		if (st == NULL)
			return -1;
		*state = st;
	}
	return sep_frame(st, data, length, last_read, opcode);
}

static int64_t fr_separator(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *config)
{
	return sep_common(data, length, last_read, opcode, state,
	    config != NULL ? config : "");
}

static int64_t fr_newline(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *config)
{
	const char *sep = newline_sep(config);

	if (sep == NULL)
		return data == NULL ? 0 : -1;   /* nothing was allocated */
	return sep_common(data, length, last_read, opcode, state, sep);
}

static const struct {
	const char *name;
	wsy_framing_fn fn;
} builtins[] = {
	{ "auto", fr_auto },
	{ "binary", fr_binary },
	{ "separator", fr_separator },
	{ "newline", fr_newline },
};

wsy_framing_fn framing_builtin(const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtins[i].fn;
	return NULL;
}

int framing_builtin_check(const char *name, const char *config, char *err,
    size_t errlen)
{
	uint8_t *raw;
	size_t n;

	if (config == NULL)
		config = "";
	if (framing_builtin(name) == NULL) {
		set_err(err, errlen, "unknown framing (built-in: auto, binary, "
		    "separator, newline)", name != NULL ? name : "");
		return -1;
	}
	if (strcmp(name, "newline") == 0 && newline_sep(config) == NULL) {
		set_err(err, errlen, "newline: mode must be crlf, lfcr, lf or "
		    "cr", config);
		return -1;
	}
	if (strcmp(name, "separator") != 0)
		return 0;       /* auto and binary ignore their config */
	if ((raw = malloc(strlen(config) + 1)) == NULL) {
		set_err(err, errlen, "separator: out of memory", config);
		return -1;
	}
	n = parse_sep(config, raw, err, errlen);
	free(raw);
	return n > 0 ? 0 : -1;
}
