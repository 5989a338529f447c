/*
 * test_framing.c - the built-in framings, called the way the core calls
 * them: bytes appended in reads of various sizes, every frame dropped from
 * the front of the buffer as soon as it is returned, a final call with
 * data == NULL to free the state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/framing.h"
#include "test.h"

#define T WSY_OP_TEXT
#define B WSY_OP_BINARY
#define MAXF 8

struct frame {
	const char *s;
	size_t n;
	int op;
};

#define F(s, op) { s, sizeof(s) - 1, op }
#define IN(s) s, sizeof(s) - 1

/* What a run produced. */
struct out {
	size_t nf;
	struct frame f[MAXF];
	uint8_t data[MAXF][64];
	uint8_t rest[64];
	size_t restlen;
	int err;
};

/*
 * A little core: feed in[0..len) in reads of chunk bytes.  After a frame
 * is dropped it asks again at once, with last_read 0 (nothing new), or
 * with all bytes counted as new when allnew is set: a framing must not
 * rely on last_read being as small as it could be.
 */
static void run(wsy_framing_fn fn, const char *config, const char *in,
    size_t len, size_t chunk, int allnew, struct out *o)
{
	uint8_t buf[256];
	size_t have = 0, off = 0, n;
	void *state = NULL;
	int64_t rc;
	int op;

	memset(o, 0, sizeof(*o));
	while (off < len && !o->err) {
		n = len - off < chunk ? len - off : chunk;
		memcpy(buf + have, in + off, n);
		have += n;
		off += n;
		do {
			op = 0;
			rc = fn(buf, have, n, &op, &state, config);
			if (rc < 0 || (size_t)rc > have || o->nf == MAXF ||
			    (rc > 0 && op != T && op != B)) {
				o->err = 1;
				break;
			}
			if (rc > 0) {
				memcpy(o->data[o->nf], buf, (size_t)rc);
				o->f[o->nf].s = (const char *)o->data[o->nf];
				o->f[o->nf].n = (size_t)rc;
				o->f[o->nf++].op = op;
				memmove(buf, buf + rc, have - (size_t)rc);
				have -= (size_t)rc;
				n = allnew ? have : 0;
			}
		} while (rc > 0);
	}
	memcpy(o->rest, buf, have);
	o->restlen = have;
	CHECK_EQ(fn(NULL, 0, 0, &op, &state, config), 0);
	CHECK(state == NULL);
}

/* o holds exactly the frames want[0..nwant) and rest. */
static int same(const struct out *o, const struct frame *want, size_t nwant,
    const char *rest, size_t restlen)
{
	size_t i;

	if (o->err || o->nf != nwant || o->restlen != restlen ||
	    memcmp(o->rest, rest, restlen) != 0)
		return 0;
	for (i = 0; i < nwant; i++)
		if (o->f[i].n != want[i].n || o->f[i].op != want[i].op ||
		    memcmp(o->f[i].s, want[i].s, want[i].n) != 0)
			return 0;
	return 1;
}

static int64_t call(const char *name, const char *config, const char *data,
    size_t len, int *op)
{
	wsy_framing_fn fn = framing_builtin(name);
	void *state = NULL;
	int64_t rc;

	*op = 0;
	rc = fn((const uint8_t *)data, len, len, op, &state, config);
	CHECK_EQ(fn(NULL, 0, 0, op, &state, config), 0);
	CHECK(state == NULL);
	return rc;
}

/* auto on one buffer: its answer and opcode. */
struct acase {
	const char *in;
	size_t len;
	int64_t want;
	int op;                 /* 0: not looked at */
};

static const struct acase acases[] = {
	{ IN("hello"), 5, T },
	{ IN(""), 0, 0 },
	{ IN("h\xc3\xa9"), 3, T },
	{ IN("h\xc3"), 0, 0 },                  /* \xa9 may come: held whole */
	{ IN("\xc3"), 0, 0 },
	{ IN("\xe2\x82"), 0, 0 },
	{ IN("a\xe2\x82"), 0, 0 },
	{ IN("\xe2\x82\xac"), 3, T },
	{ IN("\xf0\x9f\x98"), 0, 0 },
	{ IN("\xf0\x9f\x98\x80"), 4, T },
	{ IN("abc\xf0\x9f\x98\x80\xf0\x9f"), 0, 0 },
	{ IN("\x00\x01\xc8"), 0, 0 },          /* issue 13: held, whole */
	{ IN("\0\0"), 2, T },                   /* NUL is UTF-8 */
	{ IN("h\xff"), 2, B },
	{ IN("\xff"), 1, B },
	{ IN("\x80"), 1, B },
	{ IN("\xc3\x28"), 2, B },
	{ IN("a\xc3 b"), 4, B },
	{ IN("\xc0\x80"), 2, B },               /* overlong */
	{ IN("\xe0\x80"), 2, B },               /* overlong, fails early */
	{ IN("\xed\xa0\x80"), 3, B },           /* surrogate */
	{ IN("\xed\xa0"), 2, B },
	{ IN("\xf4\x90\x80\x80"), 4, B },       /* above U+10FFFF */
	{ IN("\xf4\x90"), 2, B },
	{ IN("\xf8\x88\x80\x80\x80"), 5, B },
	{ IN("\xe2\x82\xac\xff\xe2\x82"), 6, B },
};

static void test_auto(void)
{
	struct out o;
	size_t i;
	int64_t rc;
	int op;

	for (i = 0; i < sizeof(acases) / sizeof(acases[0]); i++) {
		rc = call("auto", "", acases[i].in, acases[i].len, &op);
		if (rc != acases[i].want)
			fprintf(stderr, "auto case %zu\n", i);
		CHECK_EQ(rc, acases[i].want);
		if (acases[i].op)
			CHECK_EQ(op, acases[i].op);
	}

	/* byte by byte, a split sequence waits for its end */
	{
		static const struct frame w[] = { F("h", T),
		    F("\xc3\xa9", T), F("!", T) };
		run(framing_builtin("auto"), "", IN("h\xc3\xa9!"), 1, 1, &o);
		CHECK(same(&o, w, 3, "", 0));
		run(framing_builtin("auto"), "", IN("h\xc3\xa9!"), 1, 0, &o);
		CHECK(same(&o, w, 3, "", 0));
	}
	{
		/* a read that ends incomplete is held whole, then goes out
		 * with its end: one message */
		static const struct frame w[] = { F("h\xc3\xa9!", T) };
		run(framing_builtin("auto"), "", IN("h\xc3\xa9!"), 2, 1, &o);
		CHECK(same(&o, w, 1, "", 0));
		run(framing_builtin("auto"), "", IN("h\xc3\xa9!"), 2, 0, &o);
		CHECK(same(&o, w, 1, "", 0));
	}
	{
		static const struct frame w[] = { F("h\xc3\xa9!", T) };
		run(framing_builtin("auto"), "", IN("h\xc3\xa9!"), 99, 1, &o);
		CHECK(same(&o, w, 1, "", 0));
	}
	{
		/* a 4-byte sequence in reads of 3: held twice */
		static const struct frame w[] = { F("ab", T),
		    F("\xf0\x9f\x98\x80", T), F("cd", T) };
		run(framing_builtin("auto"), "", IN("ab\xf0\x9f\x98\x80" "cd"),
		    2, 1, &o);
		CHECK(same(&o, w, 3, "", 0));
	}
	{
		/* the tail that never completes stays in the buffer (the
		 * core sends it as binary after utf8-hold) */
		static const struct frame w[] = { F("a", T) };
		run(framing_builtin("auto"), "", IN("a\xe2\x82"), 1, 1, &o);
		CHECK(same(&o, w, 1, "\xe2\x82", 2));
		run(framing_builtin("auto"), "", IN("a\xe2\x82"), 3, 1, &o);
		CHECK(same(&o, NULL, 0, "a\xe2\x82", 3));
	}
	{
		/* a binary write that looks like text until its last byte
		 * is held whole: after utf8-hold it goes out as one binary
		 * message, not as text "\0\1" plus binary "\xc8" */
		run(framing_builtin("auto"), "", IN("\x00\x01\xc8"), 3, 1, &o);
		CHECK(same(&o, NULL, 0, "\x00\x01\xc8", 3));
		run(framing_builtin("auto"), "", IN("\x00\x01\xc8"), 3, 0, &o);
		CHECK(same(&o, NULL, 0, "\x00\x01\xc8", 3));
	}
	{
		/* ... and when more comes that is not its end, everything
		 * held goes out with it as one binary message */
		static const struct frame w[] = { F("\x00\x01\xc8\x01", B) };
		run(framing_builtin("auto"), "", IN("\x00\x01\xc8\x01"), 3,
		    1, &o);
		CHECK(same(&o, w, 1, "", 0));
	}
	{
		/* a text stream cut inside characters by every read: held
		 * bytes go out with the read that completes them, which
		 * keeps only its own incomplete end */
		static const struct frame w[] = {
		    F("\xe2\x82\xac\xe2\x82\xac", T),
		    F("\xe2\x82\xac\xe2\x82\xac", T) };
		run(framing_builtin("auto"), "",
		    IN("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"), 4,
		    1, &o);
		CHECK(same(&o, w, 2, "", 0));
		run(framing_builtin("auto"), "",
		    IN("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"), 4,
		    0, &o);
		CHECK(same(&o, w, 2, "", 0));
	}
	{
		/* invalid bytes go out as binary, the rest as text; a lead
		 * byte held for its continuation fails with what follows */
		static const struct frame w[] = { F("a", T), F("\xff", B),
		    F(" ", T), F("\xc3(", B), F("x", T) };
		run(framing_builtin("auto"), "", IN("a\xff \xc3(x"), 1, 1, &o);
		CHECK(same(&o, w, 5, "", 0));
	}
}

/*
 * auto over a long text of 1- to 4-byte characters in reads of every size
 * up to 17, with exact and with overcounted last_read: every frame is
 * text, they add up to the input, and nothing older than the latest read
 * is held beyond the few bytes of one incomplete character.
 */
static void test_auto_stream(void)
{
	static const char *chars[] = { "a", "\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80" };
	uint8_t text[600], buf[600], got[600];
	size_t len = 0, chunk, off, have, ngot, n, fresh, maxheld, i;
	wsy_framing_fn fn = framing_builtin("auto");
	int allnew, op, bad;
	int64_t rc;

	for (i = 0; len + 4 <= sizeof(text); i = (i * 7 + 3) % 11) {
		memcpy(text + len, chars[i % 4], strlen(chars[i % 4]));
		len += strlen(chars[i % 4]);
	}
	for (chunk = 1; chunk <= 17; chunk++)
	for (allnew = 0; allnew <= 1; allnew++) {
		have = ngot = maxheld = 0;
		bad = 0;
		for (off = 0; off < len; off += n) {
			n = len - off < chunk ? len - off : chunk;
			memcpy(buf + have, text + off, n);
			have += n;
			fresh = n;
			while ((rc = fn(buf, have, fresh, &op, NULL, "")) > 0) {
				bad |= op != T || (size_t)rc > have;
				memcpy(got + ngot, buf, (size_t)rc);
				ngot += (size_t)rc;
				memmove(buf, buf + rc, have - (size_t)rc);
				have -= (size_t)rc;
				fresh = allnew ? have : 0;
			}
			bad |= rc < 0;
			if (have > maxheld)
				maxheld = have;
		}
		CHECK(!bad);
		CHECK_EQ(have, 0);
		CHECK_EQ(ngot, len);
		CHECK(memcmp(got, text, len) == 0);
		CHECK(maxheld <= chunk + 3);
	}
}

static void test_binary(void)
{
	struct out o;
	int op;

	CHECK_EQ(call("binary", "", IN("a\n\xff"), &op), 3);
	CHECK_EQ(op, B);
	CHECK_EQ(call("binary", "", IN("hello"), &op), 5);
	CHECK_EQ(op, B);                        /* even when it is text */
	CHECK_EQ(call("binary", "", IN(""), &op), 0);
	{
		static const struct frame w[] = { F("abc", B), F("de", B) };
		run(framing_builtin("binary"), "", IN("abcde"), 3, 1, &o);
		CHECK(same(&o, w, 2, "", 0));
	}
}

/* separator and newline: the frames do not depend on how bytes arrive. */
struct scase {
	const char *framing, *config;
	const char *in;
	size_t len;
	struct frame want[MAXF];
	size_t nwant;
	const char *rest;
	size_t restlen;
};

static const struct scase scases[] = {
	{ "separator", "\\n", IN("a\nbb\n\nc"),
	    { F("a\n", T), F("bb\n", T), F("\n", T) }, 3, IN("c") },
	{ "separator", "\\n", IN("no separator"), { { 0, 0, 0 } }, 0,
	    IN("no separator") },
	{ "separator", "\\n", IN(""), { { 0, 0, 0 } }, 0, IN("") },
	/* the opcode is the frame's own, whatever follows it */
	{ "separator", "\\n", IN("caf\xc3\xa9\n\xff\n\xc3\nok\n\xc3"),
	    { F("caf\xc3\xa9\n", T), F("\xff\n", B), F("\xc3\n", B),
	    F("ok\n", T) }, 4, IN("\xc3") },
	{ "separator", "||", IN("a||b|c|||d||"),
	    { F("a||", T), F("b|c||", T), F("|d||", T) }, 3, IN("") },
	/* partial matches that overlap the real one */
	{ "separator", "aab", IN("aaab aaaab aab"),
	    { F("aaab", T), F(" aaaab", T), F(" aab", T) }, 3, IN("") },
	{ "separator", "--END--", IN("x--END-END--y--END--z-"),
	    { F("x--END-END--y--END--", T) }, 1, IN("z-") },
	{ "separator", "\\x00", IN("one\0two\0\0"),
	    { F("one\0", T), F("two\0", T), F("\0", T) }, 3, IN("") },
	{ "separator", "\\0", IN("one\0two"),
	    { F("one\0", T) }, 1, IN("two") },
	{ "separator", "\\xff", IN("a\xff" "b\xfF"),
	    { F("a\xff", B), F("b\xff", B) }, 2, IN("") },
	{ "separator", "\\xFe\\xfF", IN("a\xfe\xfe\xff"),
	    { F("a\xfe\xfe\xff", B) }, 1, IN("") },
	{ "separator", "\\\\", IN("a\\b\\"),
	    { F("a\\", T), F("b\\", T) }, 2, IN("") },
	{ "separator", "\\t\\x41\\f", IN("1\tA\f2\tA"),
	    { F("1\tA\f", T) }, 1, IN("2\tA") },
	{ "separator", "\\r\\n", IN("a\r\nb\rc\r\n\r\r\n"),
	    { F("a\r\n", T), F("b\rc\r\n", T), F("\r\r\n", T) }, 3, IN("") },
	{ "newline", "", IN("a\r\nb\rc\n\r\r\n"),
	    { F("a\r\n", T), F("b\rc\n\r\r\n", T) }, 2, IN("") },
	{ "newline", NULL, IN("a\r\nb\n"), { F("a\r\n", T) }, 1, IN("b\n") },
	{ "newline", "crlf", IN("a\r\n\r\n"), { F("a\r\n", T), F("\r\n", T) },
	    2, IN("") },
	{ "newline", "lfcr", IN("a\n\rb\r\nc\n\r"),
	    { F("a\n\r", T), F("b\r\nc\n\r", T) }, 2, IN("") },
	{ "newline", "lf", IN("a\r\nb\n\n"),
	    { F("a\r\n", T), F("b\n", T), F("\n", T) }, 3, IN("") },
	{ "newline", "cr", IN("a\r\nb\r"),
	    { F("a\r", T), F("\nb\r", T) }, 2, IN("") },
	{ "newline", "lf", IN("\xff\xfe\n"), { F("\xff\xfe\n", B) }, 1,
	    IN("") },
};

static void test_separators(void)
{
	static const size_t chunks[] = { 1, 2, 3, 5, 7, 256 };
	const struct scase *c;
	struct out o;
	size_t i, j;
	int allnew, ok;

	for (i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		c = &scases[i];
		for (j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++)
			for (allnew = 0; allnew < 2; allnew++) {
				run(framing_builtin(c->framing), c->config,
				    c->in, c->len, chunks[j], allnew, &o);
				ok = same(&o, c->want, c->nwant, c->rest,
				    c->restlen);
				if (!ok)
					fprintf(stderr, "separator case %zu, "
					    "chunk %zu, allnew %d\n", i,
					    chunks[j], allnew);
				CHECK(ok);
			}
	}
}

struct ccase {
	const char *name, *config;
	int want;
	const char *reason;     /* a word the error must hold */
};

static const struct ccase ccases[] = {
	{ "auto", "", 0, NULL },
	{ "auto", NULL, 0, NULL },
	{ "binary", "anything", 0, NULL },
	{ "separator", "\\n", 0, NULL },
	{ "separator", "END", 0, NULL },
	{ "separator", "\\r\\t\\n\\0\\f\\\\\\x00\\xAb", 0, NULL },
	{ "newline", "", 0, NULL },
	{ "newline", NULL, 0, NULL },
	{ "newline", "crlf", 0, NULL },
	{ "newline", "lfcr", 0, NULL },
	{ "newline", "lf", 0, NULL },
	{ "newline", "cr", 0, NULL },
	{ "nope", "", -1, "unknown framing" },
	{ "Auto", "", -1, "unknown framing" },
	{ "", "", -1, "unknown framing" },
	{ NULL, "", -1, "unknown framing" },
	{ "separator", "", -1, "empty" },
	{ "separator", NULL, -1, "empty" },
	{ "separator", "\\q", -1, "unknown escape" },
	{ "separator", "ab\\", -1, "trailing backslash" },
	{ "separator", "\\", -1, "trailing backslash" },
	{ "separator", "\\x4", -1, "hex" },
	{ "separator", "\\x", -1, "hex" },
	{ "separator", "\\x4g", -1, "hex" },
	{ "separator", "\\xg4", -1, "hex" },
	{ "newline", "CRLF", -1, "crlf, lfcr, lf or cr" },
	{ "newline", "\\n", -1, "crlf, lfcr, lf or cr" },
	{ "newline", "crlf ", -1, "crlf, lfcr, lf or cr" },
};

static void test_check(void)
{
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
		strcpy(err, "untouched");
		rc = framing_builtin_check(ccases[i].name, ccases[i].config,
		    err, sizeof(err));
		if (rc != ccases[i].want)
			fprintf(stderr, "check case %zu: %s\n", i, err);
		CHECK_EQ(rc, ccases[i].want);
		if (ccases[i].reason != NULL)
			CHECK(strstr(err, ccases[i].reason) != NULL);
		else
			CHECK(strcmp(err, "untouched") == 0);
	}
	/* the reason quotes the offending config */
	framing_builtin_check("separator", "a\\qb", err, sizeof(err));
	CHECK(strstr(err, "\"a\\qb\"") != NULL);
	/* no room for a reason is no crash, little room truncates */
	CHECK_EQ(framing_builtin_check("nope", "", NULL, 0), -1);
	memset(err, 'x', sizeof(err));
	CHECK_EQ(framing_builtin_check("separator", "", err, 5), -1);
	CHECK_EQ(strlen(err), 4);
}

static void test_lookup(void)
{
	CHECK(framing_builtin("auto") != NULL);
	CHECK(framing_builtin("binary") != NULL);
	CHECK(framing_builtin("separator") != NULL);
	CHECK(framing_builtin("newline") != NULL);
	CHECK(framing_builtin("auto") != framing_builtin("binary"));
	CHECK(framing_builtin("separator") != framing_builtin("newline"));
	CHECK(framing_builtin("fixedlength") == NULL);
	CHECK(framing_builtin("") == NULL);
	CHECK(framing_builtin(NULL) == NULL);
}

static void test_state(void)
{
	wsy_framing_fn sep = framing_builtin("separator");
	wsy_framing_fn nl = framing_builtin("newline");
	void *state = NULL;
	int op = 0;

	/* the final call without a first one frees nothing */
	CHECK_EQ(sep(NULL, 0, 0, &op, &state, "\\n"), 0);
	CHECK(state == NULL);

	/* state lives from the first call to the final one */
	CHECK_EQ(sep((const uint8_t *)"ab", 2, 2, &op, &state, "\\n"), 0);
	CHECK(state != NULL);
	CHECK_EQ(sep((const uint8_t *)"ab\n", 3, 1, &op, &state, "\\n"), 3);
	CHECK_EQ(op, T);
	CHECK_EQ(sep(NULL, 0, 0, &op, &state, "\\n"), 0);
	CHECK(state == NULL);

	/* a config that slipped past the check fails the connection */
	CHECK(sep((const uint8_t *)"a\n", 2, 2, &op, &state, "") < 0);
	CHECK(sep((const uint8_t *)"a\n", 2, 2, &op, &state, NULL) < 0);
	CHECK(sep((const uint8_t *)"a\n", 2, 2, &op, &state, "\\q") < 0);
	CHECK(state == NULL);
	CHECK(nl((const uint8_t *)"a\n", 2, 2, &op, &state, "dos") < 0);
	CHECK(state == NULL);
	CHECK_EQ(nl(NULL, 0, 0, &op, &state, "dos"), 0);
	CHECK(state == NULL);

	/* auto and binary keep no state */
	CHECK_EQ(framing_builtin("auto")((const uint8_t *)"a", 1, 1, &op,
	    &state, ""), 1);
	CHECK(state == NULL);
}

/*
 * The core's buffer-full flush drops bytes the framing never returned.
 * The search must not trust what it remembers about them.
 */
static void test_flush(void)
{
	wsy_framing_fn sep = framing_builtin("separator");
	void *state = NULL;
	int op = 0;

	CHECK_EQ(sep((const uint8_t *)"abcdef", 6, 6, &op, &state, "\\n"), 0);
	/* flushed; two new bytes */
	CHECK_EQ(sep((const uint8_t *)"x\n", 2, 2, &op, &state, "\\n"), 2);
	CHECK_EQ(sep(NULL, 0, 0, &op, &state, "\\n"), 0);

	/* half a separator flushed away does not match with the new half */
	CHECK_EQ(sep((const uint8_t *)"ab\r", 3, 3, &op, &state, "\\r\\n"), 0);
	CHECK_EQ(sep((const uint8_t *)"\n", 1, 1, &op, &state, "\\r\\n"), 0);
	CHECK_EQ(sep((const uint8_t *)"\nx\r\n", 4, 3, &op, &state, "\\r\\n"),
	    4);
	CHECK_EQ(sep(NULL, 0, 0, &op, &state, "\\r\\n"), 0);
	CHECK(state == NULL);
}

int main(void)
{
	test_auto();
	test_auto_stream();
	test_binary();
	test_separators();
	test_check();
	test_lookup();
	test_state();
	test_flush();
	return test_summary("framing");
}
