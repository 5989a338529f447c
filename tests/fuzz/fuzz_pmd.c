/*
 * fuzz_pmd.c - permessage-deflate: the offer parser and the negotiation on
 * any header values (lines of the input), and the bounded inflater on any
 * compressed payload in input-chosen chunks.  Checks: no crash or leak,
 * every answer we build parses back as the offer we accepted, the inflater
 * never passes its limit and holds no zlib state after a message without
 * context takeover, and deflate then inflate gives the input back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/pmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT (256u << 10)

static void negotiate(const uint8_t *data, size_t size)
{
	static const pmd_config cfgs[] = { PMD_CONFIG_DEFAULT, { 10, 4, 1 },
	    { 8, 8, 1 } };
	const char *vals[8];
	size_t lens[8], n = 0, i, k;
	const char *p = (const char *)data, *end = p + size, *nl;

	while (n < 8 && p <= end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		vals[n] = p;
		lens[n++] = (size_t)((nl ? nl : end) - p);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	for (i = 0; i < n; i++) {	/* the cursor always moves */
		const char *q = vals[i], *e = vals[i] + lens[i], *before;
		pmd_offer o;

		for (k = 0; k <= lens[i]; k++) {
			before = q;
			if (pmd_next(&q, e, &o, NULL) == PMD_EXT_END)
				break;
			if (q <= before || q > e)
				abort();
		}
		if (k > lens[i])
			abort();
	}
	for (k = 0; k < sizeof(cfgs) / sizeof(cfgs[0]); k++) {
		pmd_params sp, cp;
		char a[PMD_ANSWER_MAX];
		const char *err;
		size_t al;
		int len;

		if (pmd_client_check(&cfgs[k], vals, lens, n, &cp, &err) < 0 &&
		    err == NULL)
			abort();
		if (pmd_server_choose(&cfgs[k], vals, lens, n, &sp) != 1)
			continue;
		if ((len = pmd_answer(&sp, a, sizeof(a))) < 0)
			abort();
		al = (size_t)len;
		{	/* the answer is one well-formed element */
			const char *q = a;
			pmd_offer o, o2;

			if (pmd_next(&q, a + al, &o, NULL) != PMD_EXT_PMD ||
			    pmd_next(&q, a + al, &o2, NULL) != PMD_EXT_END)
				abort();
			if ((o.server_bits ? o.server_bits : 15) !=
			    sp.server_bits ||
			    (o.client_bits ? o.client_bits : 15) !=
			    sp.client_bits)
				abort();
		}
	}
}

static void inflate_all(const uint8_t *data, size_t size, const pmd_dir *dir,
    size_t chunk, size_t room)
{
	static uint8_t out[LIMIT + 1];
	pmd_inflater f;
	size_t off = 0, total = 0;
	int r = PMD_OK;

	pmd_inflate_init(&f, dir, LIMIT);
	while (r >= 0) {
		size_t k = size - off < chunk ? size - off : chunk, left = k;
		const uint8_t *p = data + off;

		do {
			size_t o = room;

			if (o > sizeof(out) - total)
				o = sizeof(out) - total;
			if (o == 0)
				abort();	/* past the limit + 1 */
			r = pmd_inflate(&f, &p, &left, off + k == size,
			    out + total, &o);
			total += o;
		} while (r == PMD_AGAIN);
		if (r < 0)
			break;
		off += k;
		if (off == size)
			break;
	}
	if (total > LIMIT + 1 || (r == PMD_ERR_TOO_BIG && total != LIMIT + 1))
		abort();
	if (dir->no_ctx && f.z != NULL)
		abort();
	pmd_inflate_free(&f);
}

static void roundtrip(const uint8_t *data, size_t size)
{
	static uint8_t comp[70000], back[66000];
	pmd_dir dir = { 9, 1, 1 };
	pmd_deflater d;
	pmd_inflater f;
	const uint8_t *p = data;
	size_t left = size, clen = sizeof(comp), blen = sizeof(back);

	if (size > 65536)
		return;
	pmd_deflate_init(&d, &dir);
	if (pmd_deflate(&d, &p, &left, 1, comp, &clen) != PMD_OK || left)
		abort();
	pmd_inflate_init(&f, &dir, size);
	p = comp;
	left = clen;
	if (pmd_inflate(&f, &p, &left, 1, back, &blen) != PMD_OK ||
	    blen != size || memcmp(back, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const pmd_dir dirs[] = { { 15, 1, 8 }, { 9, 0, 8 } };
	size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;

	negotiate(data, size);
	inflate_all(data, size, &dirs[0], chunk, 1 + (size ? data[size - 1] :
	    0) * 64);
	inflate_all(data, size, &dirs[1], size + 1, LIMIT + 1);
	roundtrip(data, size);
	if (pmd_zlib_bytes() != 0)
		abort();
	return 0;
}
