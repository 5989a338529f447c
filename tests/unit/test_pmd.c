/*
 * test_pmd.c - permessage-deflate: the offer parser, the server's choice and
 * answer, the client's offer and answer check, and the bounded codec (split
 * input in every chunk size, the RFC 7692 §7.2.3 vectors, a bomb).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/pmd.h"
#include "test.h"

static const pmd_config defcfg = { 15, 8, 0 };

/* One offer value through pmd_next: the first element's result. */
static int next1(const char *v, pmd_offer *o)
{
	const char *p = v;

	return pmd_next(&p, v + strlen(v), o, NULL);
}

static void test_params(void)
{
	pmd_config d = PMD_CONFIG_DEFAULT;
	pmd_offer o;

	CHECK(d.window_bits == 12 && d.mem_level == 5 && !d.context_takeover);

	CHECK_EQ(next1("permessage-deflate", &o), PMD_EXT_PMD);
	CHECK(!o.server_no_ctx && !o.client_no_ctx && !o.server_bits &&
	    !o.client_bits);
	CHECK_EQ(next1("Permessage-Deflate ; Server_No_Context_Takeover", &o),
	    PMD_EXT_PMD);
	CHECK(o.server_no_ctx && !o.client_no_ctx);
	CHECK_EQ(next1("permessage-deflate;client_no_context_takeover", &o),
	    PMD_EXT_PMD);
	CHECK(o.client_no_ctx);
	CHECK_EQ(next1("permessage-deflate; client_max_window_bits", &o),
	    PMD_EXT_PMD);
	CHECK_EQ(o.client_bits, -1);
	CHECK_EQ(next1("permessage-deflate; client_max_window_bits=10", &o),
	    PMD_EXT_PMD);
	CHECK_EQ(o.client_bits, 10);
	CHECK_EQ(next1("permessage-deflate; client_max_window_bits=\"8\"", &o),
	    PMD_EXT_PMD);
	CHECK_EQ(o.client_bits, 8);
	CHECK_EQ(next1("permessage-deflate; server_max_window_bits = \"1\\5\"",
	    &o), PMD_EXT_PMD);	/* quoted-pair: \5 is 5 */
	CHECK_EQ(o.server_bits, 15);
	CHECK_EQ(next1("permessage-deflate; server_max_window_bits=9;"
	    " client_max_window_bits=15; server_no_context_takeover;"
	    " client_no_context_takeover", &o), PMD_EXT_PMD);
	CHECK(o.server_bits == 9 && o.client_bits == 15 && o.server_no_ctx &&
	    o.client_no_ctx);
	CHECK_EQ(next1("\t permessage-deflate \t", &o), PMD_EXT_PMD);
}

static void test_bad_params(void)
{
	static const char *bad[] = {
		"permessage-deflate; server_max_window_bits",	/* needs one */
		"permessage-deflate; server_max_window_bits=7",
		"permessage-deflate; server_max_window_bits=16",
		"permessage-deflate; server_max_window_bits=08",
		"permessage-deflate; server_max_window_bits=+9",
		"permessage-deflate; server_max_window_bits=-9",
		"permessage-deflate; server_max_window_bits=9.0",
		"permessage-deflate; server_max_window_bits=0x9",
		"permessage-deflate; client_max_window_bits=115",
		"permessage-deflate; client_max_window_bits=\"\"",
		"permessage-deflate; client_max_window_bits=\"1 0\"",
		"permessage-deflate; client_max_window_bits=",
		"permessage-deflate; client_max_window_bits=a",
		"permessage-deflate; server_no_context_takeover=1",
		"permessage-deflate; client_no_context_takeover=\"\"",
		"permessage-deflate; server_no_context_takeover;"
		    " server_no_context_takeover",
		"permessage-deflate; client_no_context_takeover;"
		    " CLIENT_NO_CONTEXT_TAKEOVER",
		"permessage-deflate; server_max_window_bits=10;"
		    " server_max_window_bits=10",
		"permessage-deflate; client_max_window_bits;"
		    " client_max_window_bits=9",
		"permessage-deflate; foo",
		"permessage-deflate; foo=1",
		"permessage-deflate; ; server_no_context_takeover",
		"permessage-deflate; server_no_context_takeover x",
		"permessage-deflate server_no_context_takeover",
		"permessage-deflate;",
		"permessage-deflate; client_max_window_bits=1\x80",
	};
	size_t i;
	pmd_offer o;
	const char *err;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = bad[i];
		int r = pmd_next(&p, bad[i] + strlen(bad[i]), &o, &err);

		if (r != PMD_EXT_BAD)
			fprintf(stderr, "bad offer accepted: %s\n", bad[i]);
		CHECK_EQ(r, PMD_EXT_BAD);
		CHECK(err != NULL);
		CHECK(p == bad[i] + strlen(bad[i]));
	}
	CHECK_EQ(next1("x-webkit-deflate-frame", &o), PMD_EXT_OTHER);
	CHECK_EQ(next1("permessage-deflatex", &o), PMD_EXT_OTHER);
	CHECK_EQ(next1("", &o), PMD_EXT_END);
	CHECK_EQ(next1(" , ,", &o), PMD_EXT_END);
}

/* Several elements in one value: kinds in order. */
static void test_elements(void)
{
	const char *v = "foo; a=\"x,y\", permessage-deflate; bad, ,"
	    " permessage-deflate; client_max_window_bits, \"open, quote";
	const char *p = v, *end = v + strlen(v);
	pmd_offer o;
	int r, kinds[8], n = 0;

	while (n < 8 && (r = pmd_next(&p, end, &o, NULL)) != PMD_EXT_END)
		kinds[n++] = r;
	CHECK_EQ(n, 4);
	CHECK_EQ(kinds[0], PMD_EXT_OTHER);
	CHECK_EQ(kinds[1], PMD_EXT_BAD);
	CHECK_EQ(kinds[2], PMD_EXT_PMD);
	CHECK_EQ(kinds[3], PMD_EXT_OTHER);
	/* a bad value in quotes with a comma inside: the next offer is found */
	v = "permessage-deflate; server_max_window_bits=\"a,b\", "
	    "permessage-deflate; server_max_window_bits=12";
	p = v;
	end = v + strlen(v);
	CHECK_EQ(pmd_next(&p, end, &o, NULL), PMD_EXT_BAD);
	CHECK_EQ(pmd_next(&p, end, &o, NULL), PMD_EXT_PMD);
	CHECK_EQ(o.server_bits, 12);
	CHECK_EQ(pmd_next(&p, end, &o, NULL), PMD_EXT_END);
}

static int choose(const pmd_config *c, const char *v1, const char *v2,
    pmd_params *out, char *answer)
{
	const char *vals[2] = { v1, v2 };
	size_t lens[2] = { strlen(v1), v2 ? strlen(v2) : 0 };
	int r = pmd_server_choose(c, vals, lens, v2 ? 2 : 1, out);

	answer[0] = '\0';
	if (r == 1)
		CHECK(pmd_answer(out, answer, PMD_ANSWER_MAX) > 0);
	return r;
}

static void test_server(void)
{
	pmd_config c = defcfg, small = { 10, 4, 1 }, eight = { 8, 8, 1 };
	pmd_params p;
	char a[PMD_ANSWER_MAX];

	/* Firefox: no parameters.  Takeover off by default: both reset. */
	CHECK_EQ(choose(&c, "permessage-deflate", NULL, &p, a), 1);
	CHECK(strcmp(a, "permessage-deflate; server_no_context_takeover;"
	    " client_no_context_takeover") == 0);
	CHECK(p.server_bits == 15 && p.client_bits == 15);
	/* Chromium / python websockets. */
	CHECK_EQ(choose(&c, "permessage-deflate; client_max_window_bits",
	    NULL, &p, a), 1);
	CHECK(strcmp(a, "permessage-deflate; server_no_context_takeover;"
	    " client_no_context_takeover") == 0);
	/* Small window, takeover on: both directions limited. */
	CHECK_EQ(choose(&small, "permessage-deflate; client_max_window_bits",
	    NULL, &p, a), 1);
	CHECK(strcmp(a, "permessage-deflate; server_max_window_bits=10;"
	    " client_max_window_bits=10") == 0);
	CHECK(!p.server_no_ctx && !p.client_no_ctx);
	/* Small window but the client cannot be limited: no takeover for it,
	 * so we never hold a 32 KiB window between messages. */
	CHECK_EQ(choose(&small, "permessage-deflate", NULL, &p, a), 1);
	CHECK(strcmp(a, "permessage-deflate; client_no_context_takeover;"
	    " server_max_window_bits=10") == 0);
	CHECK(p.client_bits == 15 && p.client_no_ctx);
	/* The client's limits are honoured, offered values are answered. */
	CHECK_EQ(choose(&c, "permessage-deflate; server_max_window_bits=15;"
	    " client_max_window_bits=12", NULL, &p, a), 1);
	CHECK(strstr(a, "server_max_window_bits=15") != NULL);
	CHECK(strstr(a, "client_max_window_bits=12") != NULL);
	CHECK(p.server_bits == 15 && p.client_bits == 12);
	CHECK_EQ(choose(&small, "permessage-deflate; server_max_window_bits=9",
	    NULL, &p, a), 1);
	CHECK_EQ(p.server_bits, 9);
	/* server_no_context_takeover asked: always granted. */
	CHECK_EQ(choose(&small, "permessage-deflate; "
	    "server_no_context_takeover", NULL, &p, a), 1);
	CHECK(p.server_no_ctx && strstr(a, "server_no_context_takeover"));
	/* Window 8 acts as 9: zlib peers cannot compress with 8. */
	CHECK_EQ(choose(&eight, "permessage-deflate; client_max_window_bits",
	    NULL, &p, a), 1);
	CHECK(strcmp(a, "permessage-deflate; server_max_window_bits=9;"
	    " client_max_window_bits=9") == 0);
	/* The client limits us to 8: accepted, we send uncompressed. */
	CHECK_EQ(choose(&c, "permessage-deflate; server_max_window_bits=8",
	    NULL, &p, a), 1);
	CHECK_EQ(p.server_bits, 8);
	CHECK(strstr(a, "server_max_window_bits=8") != NULL);
	{
		pmd_dir tx, rx;
		pmd_deflater d;

		pmd_dirs(&p, 1, 8, &tx, &rx);
		CHECK_EQ(pmd_deflate_init(&d, &tx), PMD_RAW);
	}
	/* Several offers: the first acceptable one, across headers too. */
	CHECK_EQ(choose(&c, "permessage-deflate; server_max_window_bits=20, "
	    "permessage-deflate; server_max_window_bits=11", NULL, &p, a), 1);
	CHECK_EQ(p.server_bits, 11);
	CHECK_EQ(choose(&c, "x-foo, permessage-deflate; bogus",
	    "permessage-deflate; client_max_window_bits=9", &p, a), 1);
	CHECK_EQ(p.client_bits, 9);
	/* Nothing acceptable: no extension, not a failure. */
	CHECK_EQ(choose(&c, "permessage-deflate; server_max_window_bits",
	    "x-webkit-deflate-frame", &p, a), 0);
	CHECK_EQ(choose(&c, "", NULL, &p, a), 0);
	/* The answer buffer is checked. */
	CHECK_EQ(choose(&c, "permessage-deflate", NULL, &p, a), 1);
	CHECK_EQ(pmd_answer(&p, a, 10), -1);
}

static int check(const pmd_config *c, const char *v, pmd_params *p,
    const char **err)
{
	const char *vals[1] = { v };
	size_t lens[1] = { strlen(v) };

	return pmd_client_check(c, vals, lens, 1, p, err);
}

static void test_client(void)
{
	pmd_config c = defcfg, small = { 10, 8, 1 }, eight = { 8, 8, 1 };
	pmd_params p;
	char o[PMD_ANSWER_MAX];
	const char *err;
	size_t zero = 0;

	CHECK(pmd_client_offer(&c, o, sizeof(o)) > 0);
	CHECK(strcmp(o, "permessage-deflate; server_no_context_takeover;"
	    " client_no_context_takeover; client_max_window_bits=15") == 0);
	CHECK(pmd_client_offer(&small, o, sizeof(o)) > 0);
	CHECK(strcmp(o, "permessage-deflate; server_max_window_bits=10;"
	    " client_max_window_bits=10") == 0);
	CHECK(pmd_client_offer(&eight, o, sizeof(o)) > 0);
	CHECK(strcmp(o, "permessage-deflate; server_max_window_bits=9;"
	    " client_max_window_bits=9") == 0);
	CHECK_EQ(pmd_client_offer(&c, o, 20), -1);

	/* Our own server's answer to our own offer is accepted. */
	{
		pmd_params sp;
		char a[PMD_ANSWER_MAX];
		const pmd_config *cs[3] = { &c, &small, &eight };
		int i;

		for (i = 0; i < 3; i++) {
			pmd_client_offer(cs[i], o, sizeof(o));
			CHECK_EQ(choose(cs[i], o, NULL, &sp, a), 1);
			CHECK_EQ(check(cs[i], a, &p, &err), 1);
			CHECK(p.server_bits == sp.server_bits &&
			    p.client_bits == sp.client_bits &&
			    p.server_no_ctx == sp.server_no_ctx &&
			    p.client_no_ctx == sp.client_no_ctx);
		}
	}
	CHECK_EQ(check(&small, "permessage-deflate; server_max_window_bits=10",
	    &p, &err), 1);
	CHECK(p.server_bits == 10 && p.client_bits == 10 && !p.client_no_ctx);
	CHECK_EQ(check(&small, "permessage-deflate", &p, &err), -1);
	CHECK_EQ(check(&small, "permessage-deflate; server_max_window_bits=9;"
	    " client_max_window_bits=8; server_no_context_takeover", &p,
	    &err), 1);
	CHECK(p.server_bits == 9 && p.client_bits == 8 && p.server_no_ctx);
	/* No answer: no extension. */
	CHECK_EQ(pmd_client_check(&c, NULL, &zero, 0, &p, &err), 0);
	CHECK_EQ(check(&c, "", &p, &err), 0);
	/* Fail the connection (RFC 7692 §5). */
	CHECK_EQ(check(&c, "permessage-deflate; foo", &p, &err), -1);
	CHECK(err != NULL);
	CHECK_EQ(check(&small, "permessage-deflate; server_max_window_bits=11",
	    &p, &err), -1);
	CHECK_EQ(check(&small, "permessage-deflate; client_max_window_bits=11",
	    &p, &err), -1);
	CHECK_EQ(check(&small, "permessage-deflate; client_max_window_bits",
	    &p, &err), -1);
	CHECK_EQ(check(&small, "permessage-deflate; server_max_window_bits=7",
	    &p, &err), -1);
	CHECK_EQ(check(&c, "permessage-deflate", &p, &err), -1);
	CHECK(strstr(err, "server_no_context_takeover") != NULL);
	CHECK_EQ(check(&small, "permessage-deflate, permessage-deflate", &p,
	    &err), -1);
	CHECK_EQ(check(&small, "x-webkit-deflate-frame", &p, &err), -1);
	CHECK_EQ(check(&small, "permessage-deflate; "
	    "server_no_context_takeover; server_no_context_takeover", &p,
	    &err), -1);
}

/* ---- codec ---- */

/* Compress one message, input in chunks of `chunk`, output room `room`. */
static size_t deflate_msg(pmd_deflater *d, const uint8_t *in, size_t n,
    size_t chunk, size_t room, uint8_t *out, size_t cap)
{
	size_t len = 0, off = 0;
	int r;

	do {
		size_t k = n - off < chunk ? n - off : chunk;
		const uint8_t *p = in + off;
		size_t left = k;
		int fin = off + k == n;

		do {
			size_t o = room < cap - len ? room : cap - len;

			if (o < PMD_MIN_OUT) {
				CHECK(0);
				return 0;
			}
			r = pmd_deflate(d, &p, &left, fin, out + len, &o);
			CHECK(r >= 0);
			if (r < 0)
				return 0;
			len += o;
		} while (r == PMD_AGAIN);
		CHECK_EQ(left, 0);
		off += k;
	} while (off < n);
	return len;
}

/* Inflate one message likewise; the result code, *outn the bytes. */
static int inflate_msg(pmd_inflater *f, const uint8_t *in, size_t n,
    size_t chunk, size_t room, uint8_t *out, size_t cap, size_t *outn)
{
	size_t off = 0;
	int r;

	*outn = 0;
	do {
		size_t k = n - off < chunk ? n - off : chunk;
		const uint8_t *p = in + off;
		size_t left = k;
		int fin = off + k == n;

		do {
			size_t o = room;

			if (*outn + o > cap)
				o = cap - *outn;
			if (o == 0)
				return -100;
			r = pmd_inflate(f, &p, &left, fin, out + *outn, &o);
			*outn += o;
			if (r < 0)
				return r;
		} while (r == PMD_AGAIN);
		if (left != 0)
			return -101;
		off += k;
	} while (off < n);
	return r;
}

static const pmd_dir dir15 = { 15, 1, 8 }, dir15ctx = { 15, 0, 8 };

static void check_vector(const pmd_dir *dir, const uint8_t *v, size_t n,
    const char *want)
{
	size_t chunk, outn;
	uint8_t out[64];
	pmd_inflater f;

	for (chunk = 1; chunk <= n; chunk++) {
		pmd_inflate_init(&f, dir, 0);
		CHECK_EQ(inflate_msg(&f, v, n, chunk, 1, out, sizeof(out),
		    &outn), PMD_OK);
		CHECK_EQ(outn, strlen(want));
		CHECK_MEM(out, want, outn);
		pmd_inflate_free(&f);
	}
}

static void test_rfc_vectors(void)
{
	/* §7.2.3.1: "Hello" in one compressed message. */
	static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
	    0x00 };
	/* §7.2.3.2: the second "Hello" with the window of the first. */
	static const uint8_t hello2[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
	/* §7.2.3.3: a stored (no compression) block. */
	static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
	    0x65, 0x6c, 0x6c, 0x6f, 0x00 };
	/* §7.2.3.4: BFINAL set, then a 00 that starts an empty block. */
	static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
	    0x00, 0x00 };
	/* §7.2.3.5: "He" and "llo" in two blocks of one message. */
	static const uint8_t two[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00,
	    0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00 };
	pmd_inflater f;
	pmd_deflater d;
	uint8_t out[64];
	size_t outn, n;
	int i;

	check_vector(&dir15, hello, sizeof(hello), "Hello");
	check_vector(&dir15, stored, sizeof(stored), "Hello");
	check_vector(&dir15, bfinal, sizeof(bfinal), "Hello");
	check_vector(&dir15, two, sizeof(two), "Hello");
	/* Shared window: hello then hello2 on one context. */
	pmd_inflate_init(&f, &dir15ctx, 0);
	CHECK_EQ(inflate_msg(&f, hello, sizeof(hello), 3, 64, out,
	    sizeof(out), &outn), PMD_OK);
	CHECK(outn == 5 && memcmp(out, "Hello", 5) == 0);
	CHECK_EQ(inflate_msg(&f, hello2, sizeof(hello2), 1, 1, out,
	    sizeof(out), &outn), PMD_OK);
	CHECK(outn == 5 && memcmp(out, "Hello", 5) == 0);
	/* hello2 needs the window: alone it refers to nothing. */
	pmd_inflate_free(&f);
	pmd_inflate_init(&f, &dir15, 0);
	CHECK_EQ(inflate_msg(&f, hello2, sizeof(hello2), 5, 64, out,
	    sizeof(out), &outn), PMD_ERR_DATA);
	/* A BFINAL message keeps the context for the next one. */
	pmd_inflate_init(&f, &dir15ctx, 0);
	CHECK_EQ(inflate_msg(&f, bfinal, sizeof(bfinal), 8, 64, out,
	    sizeof(out), &outn), PMD_OK);
	CHECK_EQ(inflate_msg(&f, hello2, sizeof(hello2), 5, 64, out,
	    sizeof(out), &outn), PMD_OK);
	CHECK(outn == 5 && memcmp(out, "Hello", 5) == 0);
	pmd_inflate_free(&f);
	/* Our deflater gives exactly the §7.2.3.1/2 bytes at level 1... */
	for (i = 0; i < 2; i++) {
		pmd_deflate_init(&d, &dir15ctx);
		n = deflate_msg(&d, (const uint8_t *)"Hello", 5, i ? 1 : 5,
		    PMD_MIN_OUT, out, sizeof(out));
		CHECK(n == sizeof(hello) && memcmp(out, hello, n) == 0);
		n = deflate_msg(&d, (const uint8_t *)"Hello", 5, 5, 64, out,
		    sizeof(out));
		CHECK(n == sizeof(hello2) && memcmp(out, hello2, n) == 0);
		pmd_deflate_free(&d);
	}
	CHECK_EQ(pmd_zlib_bytes(), 0);
}

static void test_bad_streams(void)
{
	static const uint8_t reserved[] = { 0x07, 0x00 };	/* BTYPE 11 */
	static const uint8_t cut[] = { 0xf2, 0x48, 0xcd };	/* mid block */
	static const uint8_t badlen[] = { 0x00, 0x05, 0x00, 0xfb, 0xff };
	uint8_t text[4000], comp[8000], out[8000];
	pmd_inflater f;
	pmd_deflater d;
	pmd_dir d9 = { 9, 1, 8 };
	size_t outn, n, i;

	pmd_inflate_init(&f, &dir15, 0);
	CHECK_EQ(inflate_msg(&f, reserved, sizeof(reserved), 1, 64, out,
	    sizeof(out), &outn), PMD_ERR_DATA);
	CHECK(f.z == NULL);
	CHECK_EQ(inflate_msg(&f, cut, sizeof(cut), 1, 64, out, sizeof(out),
	    &outn), PMD_ERR_DATA);
	CHECK_EQ(inflate_msg(&f, badlen, sizeof(badlen), 2, 64, out,
	    sizeof(out), &outn), PMD_ERR_DATA);
	CHECK_EQ(pmd_close_code(PMD_ERR_DATA), 1007);
	CHECK_EQ(pmd_close_code(PMD_ERR_TOO_BIG), 1009);
	CHECK_EQ(pmd_close_code(PMD_ERR_NOMEM), 1011);
	/* A distance past a 512-byte window: refused by a 9-bit inflater. */
	for (i = 0, n = 1; i < sizeof(text) / 2; i++) {
		n = n * 1103515245 + 12345;
		text[i] = (uint8_t)(n >> 16);
	}
	memcpy(text + sizeof(text) / 2, text, sizeof(text) / 2);
	pmd_deflate_init(&d, &dir15);
	n = deflate_msg(&d, text, sizeof(text), sizeof(text), 4096, comp,
	    sizeof(comp));
	CHECK(n > 0 && n < 2200);	/* the second half is matches */
	pmd_inflate_init(&f, &d9, 0);
	CHECK_EQ(inflate_msg(&f, comp, n, 100, 512, out, sizeof(out), &outn),
	    PMD_ERR_DATA);
	pmd_inflate_init(&f, &dir15, 0);
	CHECK_EQ(inflate_msg(&f, comp, n, 100, 512, out, sizeof(out), &outn),
	    PMD_OK);
	CHECK(outn == sizeof(text) && memcmp(out, text, outn) == 0);
	CHECK_EQ(pmd_zlib_bytes(), 0);
}

/* JSON-like text, deterministic. */
static size_t json_text(uint8_t *b, size_t cap, unsigned seed)
{
	size_t n = 0;

	while (n + 80 < cap) {
		seed = seed * 1103515245 + 12345;
		n += (size_t)snprintf((char *)b + n, cap - n,
		    "{\"id\":%u,\"user\":\"u%u\",\"temp\":%u.%u,\"ok\":%s},",
		    seed >> 20, (seed >> 8) & 0xff, (seed >> 4) & 0x3f,
		    seed & 7, seed & 1 ? "true" : "false");
	}
	return n;
}

/* Every input chunk size 1..N, with several output room sizes, with and
 * without context takeover; the codec holds no state after a message
 * without takeover. */
static void test_roundtrip(void)
{
	static uint8_t text[3000], comp[8000], out[4000];
	static const size_t rooms[] = { PMD_MIN_OUT, 17, 100, 8000 };
	static const pmd_dir dirs[] = { { 15, 1, 8 }, { 15, 0, 8 },
	    { 9, 1, 1 }, { 12, 0, 9 }, { 10, 1, 4 } };
	size_t n = json_text(text, sizeof(text), 1), chunk, c, outn, ri;
	int di, msg;

	for (di = 0; di < 5; di++) {
		pmd_deflater d;
		pmd_inflater f;

		CHECK_EQ(pmd_deflate_init(&d, &dirs[di]), PMD_OK);
		pmd_inflate_init(&f, &dirs[di], sizeof(text));
		for (chunk = 1; chunk <= 64 + 8; chunk++) {
			size_t ch = chunk <= 64 ? chunk : n / (73 - chunk);

			ri = chunk % 4;
			for (msg = 0; msg < 2; msg++) {
				c = deflate_msg(&d, text, n, ch, rooms[ri],
				    comp, sizeof(comp));
				CHECK(c > 0 && c < n / 2);
				CHECK_EQ(inflate_msg(&f, comp, c, ch,
				    rooms[(ri + 1) % 4] - 15, out,
				    sizeof(out), &outn), PMD_OK);
				CHECK(outn == n && memcmp(out, text, n) == 0);
				if (dirs[di].no_ctx)
					CHECK(d.z == NULL && f.z == NULL);
			}
		}
		printf("state held: bits %d mem %d: %zu bytes\n",
		    dirs[di].bits, dirs[di].mem_level, pmd_zlib_bytes());
		if (dirs[di].no_ctx)
			CHECK_EQ(pmd_zlib_bytes(), 0);
		else	/* bounded by pmd.h's formulas */
			CHECK(pmd_zlib_bytes() <= 6100 +
			    (1u << (dirs[di].bits + 2)) +
			    (1u << (dirs[di].mem_level + 9)) + 7300 +
			    (1u << dirs[di].bits));
		pmd_deflate_free(&d);
		pmd_inflate_free(&f);
		CHECK_EQ(pmd_zlib_bytes(), 0);
	}
	/* Empty message, and an incompressible one. */
	{
		pmd_deflater d;
		pmd_inflater f;
		uint8_t rnd[1000];
		unsigned s = 7;
		size_t i;

		pmd_deflate_init(&d, &dir15);
		pmd_inflate_init(&f, &dir15, 0);
		c = deflate_msg(&d, NULL, 0, 1, PMD_MIN_OUT, comp,
		    sizeof(comp));
		CHECK_EQ(c, 1);		/* 00: an empty stored block begins */
		CHECK_EQ(inflate_msg(&f, comp, c, 1, 1, out, sizeof(out),
		    &outn), PMD_OK);
		CHECK_EQ(outn, 0);
		for (i = 0; i < sizeof(rnd); i++) {
			s = s * 1103515245 + 12345;
			rnd[i] = (uint8_t)(s >> 16);
		}
		c = deflate_msg(&d, rnd, sizeof(rnd), 333, 64, comp,
		    sizeof(comp));
		CHECK_EQ(inflate_msg(&f, comp, c, 7, 3, out, sizeof(out),
		    &outn), PMD_OK);
		CHECK(outn == sizeof(rnd) && memcmp(out, rnd, outn) == 0);
	}
}

/* The limit: exactly at it is fine, one byte over is refused. */
static void test_limit(void)
{
	static uint8_t text[3000], comp[8000], out[4000];
	size_t n = json_text(text, sizeof(text), 2), c, outn;
	pmd_deflater d;
	pmd_inflater f;

	pmd_deflate_init(&d, &dir15);
	c = deflate_msg(&d, text, n, n, 8000, comp, sizeof(comp));
	pmd_inflate_init(&f, &dir15, n);
	CHECK_EQ(inflate_msg(&f, comp, c, 10, 4000, out, sizeof(out), &outn),
	    PMD_OK);
	CHECK_EQ(outn, n);
	pmd_inflate_init(&f, &dir15, n - 1);
	CHECK_EQ(inflate_msg(&f, comp, c, 10, 4000, out, sizeof(out), &outn),
	    PMD_ERR_TOO_BIG);
	CHECK(outn <= n);	/* stopped at once, not after the message */
	CHECK(f.z == NULL);
	CHECK_EQ(pmd_zlib_bytes(), 0);
}

/*
 * A bomb: 1 GiB of zeros as one message.  Deflate tops out near 1032:1,
 * so it is about 1 MiB (a 1 KiB message inflates to 1 MiB at most).  It is
 * built from one 8 MiB block and 127 copies of a second one (zeros after
 * zeros compress the same), not by compressing 1 GiB.
 */
#include <sys/resource.h>
#include <zlib.h>

static uint8_t *bomb(size_t *len, size_t *first_two)
{
	size_t step = 8u << 20, cap = 2u << 20, a, b, i;
	uint8_t *zeros = calloc(1, step), *out = malloc(cap), *tmp;
	z_stream z;

	memset(&z, 0, sizeof(z));
	if (zeros == NULL || out == NULL ||
	    deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY))
		abort();
	z.next_in = zeros;
	z.avail_in = (uInt)step;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_SYNC_FLUSH);
	a = cap - z.avail_out;
	z.next_in = zeros;
	z.avail_in = (uInt)step;
	deflate(&z, Z_SYNC_FLUSH);
	b = cap - z.avail_out - a;
	deflateEnd(&z);
	free(zeros);
	*first_two = a + b;
	tmp = out + a;
	for (i = 1; i < 127; i++)
		memcpy(out + a + b * (i + 1) - b, tmp, b);
	*len = a + b * 127 - 4;		/* the last 00 00 ff ff removed */
	return out;
}

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_bomb(void)
{
	static uint8_t out[64 << 10];
	size_t len, two, off = 0, outn;
	uint8_t *b = bomb(&len, &two);
	long rss0 = maxrss_kib();
	uint64_t seen = 0;
	size_t peak = 0;
	pmd_inflater f;
	int r = PMD_OK;

	printf("bomb: %zu bytes for 1 GiB of zeros\n", len);
	CHECK(len < (2u << 20));
	/* The first two blocks are 16 MiB: a limit of 16 MiB takes them. */
	pmd_inflate_init(&f, &dir15, 16u << 20);
	CHECK_EQ(inflate_msg(&f, b, two - 4, 1024, sizeof(out), out,
	    sizeof(out), &outn), -100);	/* inflate_msg's buffer, not ours */
	pmd_inflate_free(&f);
	pmd_inflate_init(&f, &dir15, 16u << 20);
	{
		const uint8_t *p = b;
		size_t left = two - 4;

		do {
			size_t o = sizeof(out);

			r = pmd_inflate(&f, &p, &left, 1, out, &o);
			seen += o;
		} while (r == PMD_AGAIN);
		CHECK_EQ(r, PMD_OK);
		CHECK_EQ(seen, 16u << 20);
	}
	/* The whole bomb under a 16 MiB limit: refused at 16 MiB + 1. */
	seen = 0;
	pmd_inflate_init(&f, &dir15, 16u << 20);
	while (off < len && r >= 0) {
		const uint8_t *p = b + off;
		size_t k = len - off < 1024 ? len - off : 1024, left = k;

		do {
			size_t o = sizeof(out);

			r = pmd_inflate(&f, &p, &left, off + k == len, out,
			    &o);
			seen += o;
			if (pmd_zlib_bytes() > peak)
				peak = pmd_zlib_bytes();
		} while (r == PMD_AGAIN);
		off += k - left;
	}
	CHECK_EQ(r, PMD_ERR_TOO_BIG);
	CHECK_EQ(seen, (16u << 20) + 1);
	CHECK(off < len / 8);		/* most of the bomb never read */
	CHECK_EQ(pmd_zlib_bytes(), 0);
	CHECK(peak > 0 && peak < (48u << 10));	/* 7 KiB + 32 KiB */
	CHECK(maxrss_kib() - rss0 < 4096);	/* no growth to speak of */
	printf("bomb: refused after %zu of %zu input bytes, %llu bytes "
	    "inflated, zlib state %zu bytes, max RSS +%ld KiB\n", off, len,
	    (unsigned long long)seen, peak, maxrss_kib() - rss0);
	free(b);
}

int main(void)
{
	test_params();
	test_bad_params();
	test_elements();
	test_server();
	test_client();
	test_rfc_vectors();
	test_bad_streams();
	test_roundtrip();
	test_limit();
	test_bomb();
	return test_summary("test_pmd");
}
