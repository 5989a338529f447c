/*
 * pmd_bench.c - permessage-deflate numbers behind the defaults in
 * core/pmd.h: compression ratio and MB/s of JSON-like messages against
 * window bits and mem level (with and without context takeover), zlib
 * state bytes, compression level 1 against 6, per-message allocation
 * against a reused (reset) state, and what small messages gain.
 * Single process, no network; about 20 s on an idle machine.  Build: make build/bench/pmd_bench
 * (it compiles core/pmd.c in, as the bench tools are single sources).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "../../core/pmd.c"

#define TOTAL (4u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* JSON-like messages of about `size` bytes each (an API / chat feed). */
static size_t message(uint8_t *b, size_t size, unsigned *seed)
{
	static const char *names[] = { "alice", "bob", "carol", "dave",
	    "erin", "frank" };
	static const char *ev[] = { "update", "message", "presence", "ack" };
	size_t n = 0;

	n += (size_t)snprintf((char *)b, size, "{\"items\":[");
	while (n + 120 < size) {
		*seed = *seed * 1103515245 + 12345;
		n += (size_t)snprintf((char *)b + n, size - n,
		    "{\"id\":%u,\"user\":\"%s\",\"type\":\"%s\",\"ts\":%u,"
		    "\"value\":%u.%02u,\"ok\":%s},", *seed >> 12,
		    names[(*seed >> 4) % 6], ev[(*seed >> 8) % 4],
		    1700000000u + (*seed >> 16), (*seed >> 3) & 1023,
		    (*seed >> 9) % 100, *seed & 1 ? "true" : "false");
	}
	n += (size_t)snprintf((char *)b + n, size - n, "{}]}");
	return n;
}

static uint8_t msgbuf[70000], comp[80000], back[70000];

static void run(int bits, int mem, int noctx, size_t msize)
{
	pmd_dir dir = { (uint8_t)bits, (uint8_t)noctx, (uint8_t)mem };
	pmd_deflater d;
	pmd_inflater f;
	size_t in = 0, outb = 0, len;
	double td = 0, ti = 0, t;
	unsigned seed = 42;

	zpeak = 0;	/* pmd.c is compiled in: its counters are ours */
	pmd_deflate_init(&d, &dir);
	pmd_inflate_init(&f, &dir, 0);
	while (in < TOTAL) {
		const uint8_t *p = msgbuf;
		size_t left, c = sizeof(comp), o = sizeof(back);

		len = message(msgbuf, msize, &seed);
		left = len;
		t = now();
		if (pmd_deflate(&d, &p, &left, 1, comp, &c) != PMD_OK)
			abort();
		td += now() - t;
		p = comp;
		left = c;
		t = now();
		if (pmd_inflate(&f, &p, &left, 1, back, &o) != PMD_OK ||
		    o != len || memcmp(back, msgbuf, len))
			abort();
		ti += now() - t;
		in += len;
		outb += c;
	}
	printf("%5d %4d %-6s %6zu %6.3f %8.1f %8.1f %9zu %9zu\n", bits, mem,
	    noctx ? "off" : "on", msize, (double)outb / in, in / td / 1e6,
	    in / ti / 1e6, pmd_zlib_bytes(), pmd_zlib_peak());
	pmd_deflate_free(&d);
	pmd_inflate_free(&f);
}

/* Level 1 against 6, zlib directly (raw, sync flush, no takeover). */
static void level(int lvl, size_t msize)
{
	size_t in = 0, outb = 0;
	unsigned seed = 42;
	double t = now();
	z_stream z;

	memset(&z, 0, sizeof(z));
	deflateInit2(&z, lvl, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	while (in < TOTAL) {
		size_t len = message(msgbuf, msize, &seed);

		deflateReset(&z);
		z.next_in = msgbuf;
		z.avail_in = (uInt)len;
		z.next_out = comp;
		z.avail_out = sizeof(comp);
		deflate(&z, Z_SYNC_FLUSH);
		in += len;
		outb += sizeof(comp) - z.avail_out - 4;
	}
	deflateEnd(&z);
	printf("level %d, %zu-byte messages: ratio %.3f, %.1f MB/s\n", lvl,
	    msize, (double)outb / in, in / (now() - t) / 1e6);
}

/* Per-message deflateInit2/deflateEnd against deflateReset (a pool). */
static void alloc_cost(int bits, int mem)
{
	int i, n = 20000;
	double t0, t1, t2;
	z_stream z;
	unsigned seed = 1;
	size_t len = message(msgbuf, 256, &seed);

	t0 = now();
	for (i = 0; i < n; i++) {
		memset(&z, 0, sizeof(z));
		deflateInit2(&z, 1, Z_DEFLATED, -bits, mem,
		    Z_DEFAULT_STRATEGY);
		z.next_in = msgbuf;
		z.avail_in = (uInt)len;
		z.next_out = comp;
		z.avail_out = sizeof(comp);
		deflate(&z, Z_SYNC_FLUSH);
		deflateEnd(&z);
	}
	t1 = now();
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 1, Z_DEFLATED, -bits, mem, Z_DEFAULT_STRATEGY);
	for (i = 0; i < n; i++) {
		deflateReset(&z);
		z.next_in = msgbuf;
		z.avail_in = (uInt)len;
		z.next_out = comp;
		z.avail_out = sizeof(comp);
		deflate(&z, Z_SYNC_FLUSH);
	}
	deflateEnd(&z);
	t2 = now();
	printf("wbits %2d mem %d, 256-byte message: init+end %.1f us, "
	    "reset %.1f us\n", bits, mem, (t1 - t0) / n * 1e6,
	    (t2 - t1) / n * 1e6);
}

/* Small messages: bytes on the wire (payload) with and without deflate. */
static void small(void)
{
	static const size_t sizes[] = { 16, 32, 64, 128, 256, 512 };
	pmd_dir dir = { 15, 1, 8 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t tot = 0, ctot = 0, k;
		unsigned seed = 9;

		for (k = 0; k < 1000; k++) {
			pmd_deflater d;
			size_t len, c = sizeof(comp), left;
			const uint8_t *p = msgbuf;

			/* a short JSON object, cut to the size */
			message(msgbuf, 300, &seed);
			len = sizes[i] < 300 ? sizes[i] : 300;
			if (sizes[i] > 300)
				len = message(msgbuf, sizes[i], &seed);
			left = len;
			pmd_deflate_init(&d, &dir);
			pmd_deflate(&d, &p, &left, 1, comp, &c);
			tot += len;
			ctot += c;
		}
		printf("%4zu-byte messages: deflated to %.2f of their size\n",
		    sizes[i], (double)ctot / tot);
	}
}

int main(void)
{
	static const int bits[] = { 9, 10, 12, 15 }, mems[] = { 1, 4, 8, 9 };
	size_t bi, mi;

	printf("JSON-like messages, %u MiB each run; MB/s of payload; "
	    "state = zlib bytes held between messages / most during one\n",
	    TOTAL >> 20);
	printf("wbits  mem takeover  msg  ratio  defl/s   infl/s      held"
	    "    during\n");
	for (bi = 0; bi < 4; bi++)
		for (mi = 0; mi < 4; mi++)
			run(bits[bi], mems[mi], 1, 1024);
	run(15, 8, 0, 1024);
	run(12, 5, 0, 1024);
	run(10, 4, 0, 1024);
	run(15, 8, 1, 16384);
	run(15, 8, 0, 16384);
	run(12, 5, 1, 16384);
	run(12, 5, 0, 16384);
	run(12, 5, 1, 65536);
	run(15, 8, 1, 65536);
	level(1, 1024);
	level(6, 1024);
	level(1, 16384);
	level(6, 16384);
	alloc_cost(15, 8);
	alloc_cost(12, 5);
	alloc_cost(10, 4);
	small();
	return 0;
}
