/*
 * test_plugin_framings.c - the framing plugins fixedlength, dynamic32 and
 * json, loaded with dlopen() the way the core loads them (each exports
 * its own WSY_PLUGIN, so they cannot be linked in together).
 *
 * The plugins are looked up in $WSY_PLUGIN_DIR if set, else next to this
 * binary (build/san/tests/../plugins under SAN=1), else in build/plugins
 * (the Makefile runs the tests from the repository root).
 *
 * Each framing is driven by a little core: reads limited by the buffer
 * room, last_read exactly the bytes appended since the last call, every
 * frame dropped from the front at once, a full buffer flushed whole when
 * the framing still waits, and the final data == NULL call.  The same
 * input split at every byte position, and fed byte by byte, must give the
 * same messages.  Leaks are left to ASan (make SAN=1 unit).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../plugins/websocksy_plugin.h"
#include "test.h"

#define T WSY_OP_TEXT
#define B WSY_OP_BINARY
#define MAXM 64                 /* messages per run */
#define MAXIN 512               /* input bytes per run */

static const char *argv0 = "";

/* ---- loading ---- */

static void *dls[3];
static size_t ndl;

static int plugin_path(const char *name, char *path, size_t len)
{
	const char *env = getenv("WSY_PLUGIN_DIR");
	char dir[PATH_MAX];
	const char *slash;

	if (env != NULL && *env != '\0') {
		snprintf(path, len, "%s/framing_%s.so", env, name);
		return access(path, R_OK);
	}
	if ((slash = strrchr(argv0, '/')) != NULL) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - argv0), argv0);
		snprintf(path, len, "%s/../plugins/framing_%s.so", dir, name);
		if (access(path, R_OK) == 0)
			return 0;
	}
	snprintf(path, len, "build/plugins/framing_%s.so", name);
	return access(path, R_OK);
}

/* dlopen framing_NAME.so, check its WSY_PLUGIN, return its ops. */
static const wsy_framing_ops *load(const char *name, int skip_form)
{
	char path[PATH_MAX + 64];
	const wsy_plugin *p;
	const wsy_framing_ops *ops;
	void *dl;

	if (plugin_path(name, path, sizeof(path)) != 0) {
		fprintf(stderr, "%s: not found (run make first, or set "
		    "WSY_PLUGIN_DIR)\n", path);
		CHECK(!"plugin built");
		return NULL;
	}
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "%s\n", dlerror());
		CHECK(!"dlopen");
		return NULL;
	}
	dls[ndl++] = dl;
	p = dlsym(dl, WSY_PLUGIN_SYMBOL);
	CHECK(p != NULL);
	if (p == NULL)
		return NULL;
	CHECK_EQ(p->api_version, WEBSOCKSY_API_VERSION);
	CHECK_EQ(p->kind, WSY_KIND_FRAMING);
	CHECK(p->name != NULL && strcmp(p->name, name) == 0);
	CHECK_EQ(p->ops_size, sizeof(wsy_framing_ops));
	CHECK(p->ops != NULL);
	if (p->ops == NULL)
		return NULL;
	ops = p->ops;
	/* exactly one of the two forms, and no session */
	CHECK((ops->frame_skip != NULL) == skip_form);
	CHECK((ops->frame != NULL) == !skip_form);
	CHECK(ops->session == NULL);
	return ops;
}

/* ---- the little core ---- */

struct run {
	size_t nm;
	size_t start[MAXM];     /* message i is input [start[i], end[i]) */
	size_t end[MAXM];
	int op[MAXM];
	int flushed[MAXM];      /* the core flushed a full buffer */
	size_t restlen;         /* bytes still buffered after the input */
	int err;                /* the framing returned < 0 */
	int bad;                /* it broke the contract */
};

/* Call either form; *skip stays 0 for the plain one. */
static int64_t call(const wsy_framing_ops *fn, const uint8_t *data,
    size_t length, size_t last_read, int *op, size_t *skip, void **st,
    const char *cfg)
{
	if (skip != NULL)
		*skip = 0;      /* the final call passes NULL, like the core */
	if (fn->frame_skip != NULL)
		return fn->frame_skip(data, length, last_read, op, skip, st,
		    cfg);
	return fn->frame(data, length, last_read, op, st, cfg);
}

/*
 * Feed in[0..len) through a buffer of bufsize bytes.  Reads end at the
 * buffer's room, after chunk bytes (0: no limit) and at split (0: none).
 */
static void sim(const wsy_framing_ops *fn, const char *cfg,
    const void *input, size_t len, size_t split, size_t chunk,
    size_t bufsize, struct run *r)
{
	const uint8_t *in = input;
	uint8_t buf[MAXIN];
	size_t have = 0, fresh = 0, off = 0, done = 0, n, skip;
	void *st = NULL;
	int64_t rc;
	int op;

	memset(r, 0, sizeof(*r));
	if (bufsize > sizeof(buf))
		bufsize = sizeof(buf);
	while (off < len && !r->err && !r->bad) {
		n = bufsize - have;
		if (chunk && n > chunk)
			n = chunk;
		if (off < split && off + n > split)
			n = split - off;
		if (n > len - off)
			n = len - off;
		memcpy(buf + have, in + off, n);
		have += n;
		fresh += n;
		off += n;
		while (have > 0) {
			op = 0;
			rc = call(fn, buf, have, fresh, &op, &skip, &st, cfg);
			fresh = 0;
			if (rc < 0) {
				r->err = 1;
				break;
			}
			if (skip > have || (size_t)rc > have - skip ||
			    r->nm == MAXM || (rc > 0 && op != T && op != B)) {
				r->bad = 1;
				break;
			}
			if (skip > 0) {
				memmove(buf, buf + skip, have - skip);
				have -= skip;
				done += skip;
				if (rc == 0)
					continue;
			}
			if (rc == 0 && have < bufsize)
				break;
			r->flushed[r->nm] = rc == 0;
			if (rc == 0)
				rc = (int64_t)have;
			r->start[r->nm] = done;
			done += (size_t)rc;
			r->end[r->nm] = done;
			r->op[r->nm++] = op;
			memmove(buf, buf + rc, have - (size_t)rc);
			have -= (size_t)rc;
		}
	}
	r->restlen = have;
	CHECK_EQ(call(fn, NULL, 0, 0, NULL, NULL, &st, cfg), 0);
	CHECK(st == NULL);
	CHECK(!r->bad);
}

static int same_run(const struct run *a, const struct run *b)
{
	size_t i;

	/* after an error the core stops: what is left buffered then
	 * depends on the reads and means nothing */
	if (a->nm != b->nm || a->err != b->err || a->bad || b->bad ||
	    (!a->err && a->restlen != b->restlen))
		return 0;
	for (i = 0; i < a->nm; i++)
		if (a->start[i] != b->start[i] || a->end[i] != b->end[i] ||
		    a->op[i] != b->op[i])
			return 0;
	return 1;
}

/* Every split position and byte-by-byte reads give what one read gave. */
static void check_splits(const wsy_framing_ops *fn, const char *cfg,
    const void *in, size_t len, const struct run *whole, const char *what)
{
	struct run r;
	size_t k;

	for (k = 1; k < len; k++) {
		sim(fn, cfg, in, len, k, 0, MAXIN, &r);
		if (!same_run(&r, whole)) {
			fprintf(stderr, "%s: split at %zu differs\n", what, k);
			CHECK(!"split gives the same frames");
			return;
		}
	}
	sim(fn, cfg, in, len, 0, 1, MAXIN, &r);
	if (!same_run(&r, whole)) {
		fprintf(stderr, "%s: byte by byte differs\n", what);
		CHECK(!"byte by byte gives the same frames");
	}
}

/* ---- tables ---- */

#define IN(s) s, sizeof(s) - 1
#define MAXF 12

/*
 * One input in one read: the frames it must give, as lengths f (0 ends
 * the list), each after k bytes skipped, then tail bytes skipped; then
 * either an error (err) or the rest left buffered.
 */
struct tcase {
	const char *cfg;
	const char *in;
	size_t len;
	int err;
	size_t f[MAXF];
	size_t k[MAXF];
	size_t tail;
};

static void check_case(const wsy_framing_ops *fn, const char *name, int op,
    const struct tcase *c, size_t idx)
{
	char what[64];
	struct run r;
	size_t i, end = 0;
	int ok;

	sim(fn, c->cfg, c->in, c->len, 0, 0, MAXIN, &r);
	ok = r.err == c->err && !r.bad;
	for (i = 0; i < MAXF && c->f[i] != 0; i++) {
		end += c->k[i];
		ok = ok && i < r.nm && r.start[i] == end &&
		    r.end[i] == end + c->f[i] && r.op[i] == op &&
		    !r.flushed[i];
		end += c->f[i];
	}
	ok = ok && r.nm == i &&
	    (c->err || r.restlen == c->len - end - c->tail);
	if (!ok) {
		fprintf(stderr, "%s case %zu (config \"%s\"): %zu messages, "
		    "err %d, rest %zu\n", name, idx, c->cfg, r.nm, r.err,
		    r.restlen);
		CHECK(!"table case");
		return;
	}
	test_pass++;
	snprintf(what, sizeof(what), "%s case %zu", name, idx);
	check_splits(fn, c->cfg, c->in, c->len, &r, what);
}

static void check_table(const wsy_framing_ops *fn, const char *name, int op,
    const struct tcase *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check_case(fn, name, op, &c[i], i);
}

/*
 * A buffer smaller than the frames: the core flushes full buffers, yet
 * every frame end (cumulative, 0-terminated) must still be a message end,
 * whatever the read sizes.
 */
static void check_flush(const wsy_framing_ops *fn, const char *cfg,
    const void *in, size_t len, size_t bufsize, const size_t *ends,
    size_t restlen)
{
	struct run r;
	size_t chunk, i, j;
	int flushed;

	for (chunk = 0; chunk <= 7; chunk++) {
		sim(fn, cfg, in, len, 0, chunk, bufsize, &r);
		CHECK(!r.err);
		CHECK_EQ(r.restlen, restlen);
		for (i = 0, flushed = 0; i < r.nm; i++)
			flushed |= r.flushed[i];
		CHECK(flushed);
		for (i = 0; ends[i] != 0; i++) {
			for (j = 0; j < r.nm && r.end[j] != ends[i]; j++)
				;
			if (j == r.nm) {
				fprintf(stderr, "config \"%s\", chunk %zu: no "
				    "message ends at %zu\n", cfg, chunk,
				    ends[i]);
				CHECK(!"frame end is a message end");
			}
		}
	}
}

/* The final call frees nothing it never made and ignores opcode. */
static void check_final_only(const wsy_framing_ops *fn)
{
	void *st = NULL;

	CHECK_EQ(call(fn, NULL, 0, 0, NULL, NULL, &st, ""), 0);
	CHECK(st == NULL);
	CHECK_EQ(call(fn, NULL, 0, 0, NULL, NULL, &st, "garbage config"), 0);
}

/* ---- fixedlength ---- */

static const struct tcase fl_cases[] = {
	{ "3", IN("abcdefgh"), 0, { 3, 3 }, { 0 }, 0 },
	{ "1", IN("xyz"), 0, { 1, 1, 1 }, { 0 }, 0 },
	{ "8", IN("abc"), 0, { 0 }, { 0 }, 0 },
	{ "4", IN("abcd"), 0, { 4 }, { 0 }, 0 },
	{ "4", IN("\0\0\0\0\xff\xfe\xfd\xfc\0"), 0, { 4, 4 }, { 0 }, 0 },
	{ "007", IN("1234567890"), 0, { 7 }, { 0 }, 0 },
	{ "16777216", IN("abc"), 0, { 0 }, { 0 }, 0 },
	{ "", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "0", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "-1", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "+3", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ " 3", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "3x", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "16777217", IN("abc"), 1, { 0 }, { 0 }, 0 },
	{ "99999999999999999999999999", IN("abc"), 1, { 0 }, { 0 }, 0 },
};

static void test_fixedlength(void)
{
	const wsy_framing_ops *fn = load("fixedlength", 0);
	static const size_t ends[] = { 10, 20, 30, 0 };
	char in[35];

	if (fn == NULL)
		return;
	check_final_only(fn);
	check_table(fn, "fixedlength", B, fl_cases,
	    sizeof(fl_cases) / sizeof(fl_cases[0]));
	memset(in, 'x', sizeof(in));
	check_flush(fn, "10", in, sizeof(in), 4, ends, 1);
}

/* ---- dynamic32 ---- */

static const struct tcase d32_cases[] = {
	/* keep: the prefix is part of the message */
	{ "keep", IN("\0\0\0\3abc" "\0\0\0\0" "\0\0\0\1z" "\0\0"), 0,
	    { 7, 4, 5 }, { 0 }, 0 },
	{ "big keep", IN("\0\0\0\2hi\0"), 0, { 6 }, { 0 }, 0 },
	{ "little,keep", IN("\3\0\0\0abc" "\1\0\0\0z" "\5\0"), 0,
	    { 7, 5 }, { 0 }, 0 },
	{ " little , keep ", IN("\2\0\0\0hi"), 0, { 6 }, { 0 }, 0 },
	{ "keep\tlittle", IN("\2\0\0\0hi"), 0, { 6 }, { 0 }, 0 },
	{ "strip keep", IN("\0\0\0\2hi"), 0, { 6 }, { 0 }, 0 },
	{ "keep", IN("\0\0\0\5abc"), 0, { 0 }, { 0 }, 0 },  /* waits */
	{ "keep", IN("\1\0\0\0abc"), 0, { 0 }, { 0 }, 0 },  /* 16 MiB ok */
	/* strip (the default): the prefix is dropped at once */
	{ "", IN("\0\0\0\3abc" "\0\0\0\1z" "\0\0"), 0,
	    { 3, 1 }, { 4, 4 }, 0 },
	{ "strip", IN("\0\0\0\2hi"), 0, { 2 }, { 4 }, 0 },
	{ "keep strip", IN("\0\0\0\2hi"), 0, { 2 }, { 4 }, 0 },
	{ "little", IN("\3\0\0\0abc" "\1\0\0\0z" "\5\0"), 0,
	    { 3, 1 }, { 4, 4 }, 0 },
	{ "big little", IN("\2\0\0\0hi"), 0, { 2 }, { 4 }, 0 },
	{ "little,big", IN("\0\0\0\2hi"), 0, { 2 }, { 4 }, 0 },
	/* an empty payload gives no message under strip */
	{ "", IN("\0\0\0\0" "\0\0\0\1z"), 0, { 1 }, { 8 }, 0 },
	{ "", IN("\0\0\0\0"), 0, { 0 }, { 0 }, 4 },
	{ "", IN("\0\0\0\5abc"), 0, { 0 }, { 0 }, 4 },  /* rest: abc */
	{ "", IN("\0\0\0"), 0, { 0 }, { 0 }, 0 },
	/* too long, bad config */
	{ "keep", IN("\0\0\0\1a" "\1\0\0\1"), 1, { 5 }, { 0 }, 0 },
	{ "", IN("\0\0\0\1a" "\1\0\0\1"), 1, { 1 }, { 4 }, 0 },
	{ "", IN("\xff\xff\xff\xff"), 1, { 0 }, { 0 }, 0 },
	{ "little", IN("\1\0\0\1"), 1, { 0 }, { 0 }, 0 },
	{ "middle", IN("\0\0\0\1a"), 1, { 0 }, { 0 }, 0 },
	{ "bigx", IN("\0\0\0\1a"), 1, { 0 }, { 0 }, 0 },
	{ "big;little", IN("\0\0\0\1a"), 1, { 0 }, { 0 }, 0 },
	{ "BIG", IN("\0\0\0\1a"), 1, { 0 }, { 0 }, 0 },
	{ "stripx", IN("\0\0\0\1a"), 1, { 0 }, { 0 }, 0 },
};

static void test_dynamic32(void)
{
	const wsy_framing_ops *fn = load("dynamic32", 1);
	static const char fin[] = "\0\0\0\x0a" "0123456789" "\0\0\0\3abc"
	    "\0\0";
	static const size_t ends[] = { 14, 21, 0 };
	uint8_t big[4 + 300 + 4];
	struct run r;

	if (fn == NULL)
		return;
	check_final_only(fn);
	check_table(fn, "dynamic32", B, d32_cases,
	    sizeof(d32_cases) / sizeof(d32_cases[0]));
	check_flush(fn, "keep", fin, sizeof(fin) - 1, 8, ends, 2);
	check_flush(fn, "strip", fin, sizeof(fin) - 1, 8, ends, 2);

	/* a length above 255 in both byte orders */
	memset(big, 'p', sizeof(big));
	memcpy(big, "\0\0\x01\x2c", 4);
	memcpy(big + 304, "\0\0\0\0", 4);
	sim(fn, "keep", big, sizeof(big), 0, 0, MAXIN, &r);
	CHECK(r.nm == 2 && r.end[0] == 304 && r.end[1] == 308);
	check_splits(fn, "keep", big, sizeof(big), &r, "dynamic32 300 keep");
	sim(fn, "", big, sizeof(big), 0, 0, MAXIN, &r);
	CHECK(r.nm == 1 && r.start[0] == 4 && r.end[0] == 304 &&
	    r.restlen == 0);
	check_splits(fn, "", big, sizeof(big), &r, "dynamic32 300 strip");
	memcpy(big, "\x2c\x01\0\0", 4);
	sim(fn, "little keep", big, sizeof(big), 0, 0, MAXIN, &r);
	CHECK(r.nm == 2 && r.end[0] == 304 && r.end[1] == 308);
}

/* ---- json ---- */

#define S(s) (sizeof(s) - 1)
#define J1 "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\\"y\",\"d\":{}}"
#define J2 " [true,false,[],-0.5e+3]"
#define J3 "\n\"s\\\\\""
#define J4 "\t\"\\u00e9\\/\\b\\f\\n\\r\\t \xc3\xa9\""
#define N1 "12"
#define N2 " -0.5E-3"
#define N3 "\r\n0"
#define N4 " 1e9"

static const struct tcase js_cases[] = {
	{ "", IN("{\"a\":1}"), 0, { 7 }, { 0 }, 0 },
	{ "", IN(J1 J2 J3 J4 " "), 0,
	    { S(J1), S(J2) - 1, S(J3) - 1, S(J4) - 1 }, { 0, 1, 1, 1 }, 1 },
	{ "", IN(N1 N2 N3 N4 " "), 0,
	    { S(N1), S(N2) - 1, S(N3) - 2, S(N4) - 1 }, { 0, 1, 2, 1 }, 1 },
	{ "", IN("42"), 0, { 0 }, { 0 }, 0 },           /* may go on */
	{ "", IN("1{}2[]3\"\"4 "), 0, { 1, 2, 1, 2, 1, 2, 1 }, { 0 }, 1 },
	{ "", IN("{}{}[]"), 0, { 2, 2, 2 }, { 0 }, 0 },
	{ "", IN("nulltrue false"), 0, { 4, 4, 5 }, { 0, 0, 1 }, 0 },
	{ "", IN("  \r\n\t"), 0, { 0 }, { 0 }, 5 },
	{ "", IN(" \"abc"), 0, { 0 }, { 0 }, 1 },      /* rest: "abc */
	{ "", IN("{\"k\" : [ 1 , 2 ] }x"), 1, { 18 }, { 0 }, 0 },
	{ "", IN("[\"]\",\"[\",\"{\\\"\"] "), 0, { 15 }, { 0 }, 1 },
	{ "", IN("x"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("{\"a\" 1}"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("{\"a\":1,}"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("[1,]"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("[1 2]"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("{1:2}"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("{\"a\"}"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("]"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("[}"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("{]"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("\"a\\qb\""), 1, { 0 }, { 0 }, 0 },
	{ "", IN("\"\\u12g4\""), 1, { 0 }, { 0 }, 0 },
	{ "", IN("\"a\nb\""), 1, { 0 }, { 0 }, 0 },  /* raw control char */
	{ "", IN("01 "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("1-2 "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("1true"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("1. "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("- "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("1e "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("1e+ "), 1, { 0 }, { 0 }, 0 },
	{ "", IN(".5 "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("tru "), 1, { 0 }, { 0 }, 0 },
	{ "", IN("nul1"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("True"), 1, { 0 }, { 0 }, 0 },
	{ "", IN("[1]\0"), 1, { 3 }, { 0 }, 0 },
	{ "", IN("\xef\xbb\xbf{}"), 1, { 0 }, { 0 }, 0 },   /* no BOM */
	{ "depth=2", IN("[[1]] {\"a\":{}}"), 0, { 5, 8 }, { 0, 1 }, 0 },
	{ "depth=2", IN("[[[1]]]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=1", IN("[] [[]]"), 1, { 2 }, { 0 }, 0 },
	{ " depth=3 ", IN("[[[]]]"), 0, { 6 }, { 0 }, 0 },
	{ "depth=65536", IN("[]"), 0, { 2 }, { 0 }, 0 },
	{ "depth=0", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=x", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=65537", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=99999999999999999999", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "deep=3", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth=3 foo", IN("[]"), 1, { 0 }, { 0 }, 0 },
	{ "depth", IN("[]"), 1, { 0 }, { 0 }, 0 },
};

/* n nested arrays: "[[...]]" */
static size_t nest(char *out, size_t n)
{
	memset(out, '[', n);
	memset(out + n, ']', n);
	return 2 * n;
}

static void test_json(void)
{
	const wsy_framing_ops *fn = load("json", 1);
	static const char fin[] = "{\"a\":\"xxxxxxxxxxxxxxxxxxxx\"}"
	    " [1,2]" " \"s\"" " 12345678901234" " ";
	static const size_t ends[] = { 28, 34, 38, 53, 0 };
	char in[2 * 65];
	struct run r;
	size_t n;

	if (fn == NULL)
		return;
	check_final_only(fn);
	check_table(fn, "json", T, js_cases,
	    sizeof(js_cases) / sizeof(js_cases[0]));
	check_flush(fn, "", fin, sizeof(fin) - 1, 8, ends, 0);
	check_flush(fn, "depth=2", fin, sizeof(fin) - 1, 5, ends, 0);

	/* the default depth is 64 */
	n = nest(in, 64);
	sim(fn, "", in, n, 0, 0, MAXIN, &r);
	CHECK(!r.err && r.nm == 1 && r.end[0] == n && r.op[0] == T);
	check_splits(fn, "", in, n, &r, "json depth 64");
	n = nest(in, 65);
	sim(fn, "", in, n, 0, 0, MAXIN, &r);
	CHECK(r.err && r.nm == 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	argv0 = argv[0];
	test_fixedlength();
	test_dynamic32();
	test_json();
	while (ndl > 0)
		dlclose(dls[--ndl]);
	return test_summary("test_plugin_framings");
}
