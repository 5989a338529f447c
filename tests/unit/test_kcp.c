/*
 * test_kcp.c - KCP ARQ: the captured kcp-go datagrams of
 * /work/shared/kcp-vectors.md decoded, fed in and reproduced byte for byte,
 * malformed input, backpressure, zero-window probes, and two instances over
 * a simulated lossy, reordering, duplicating channel (deterministic PRNG).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../core/kcp.h"
#include "test.h"

/* ---- captured datagrams (hex dumps of kcp-vectors.md) ---- */

static const char v1_hex[] =
    "0403020151002000000000000000000000000000400000000001020304050607"
    "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627"
    "28292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
static const char v2_hex[] =
    "040302015200200000000000000000000100000000000000";
static const char v3_hex[] =
    "0403020152002000f80100000000000001000000000000000403020151002000"
    "010000000100000001000000400000000102030405060708090a0b0c0d0e0f10"
    "1112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30"
    "3132333435363738393a3b3c3d3e3f40";
static const char v4_hex[] =
    "0f0c0b0a52001e00f80100000200000003000000000000000f0c0b0a51001e00"
    "01000000050000000300000064000000ab8ce9ca27086546a384e1c23e5d001f"
    "bad97c9b3655f817b2d174932e4df00faac96c8b2645e807a2c164831e3de0ff"
    "9ab95c7b1635d8f792b154730e2dd0ef8aa94c6b0625c8e782a14463fe1dc0df"
    "7a993c5bf615b8d772913453ee0db0cf6a892c4b0f0c0b0a51001e0001000000"
    "060000000300000064000000e605a8c762812443defda0bf5a791c3bd6f598b7"
    "52711433ceed90af4a690c2bc6e588a742610423bedd809f3a59fc1bb6d57897"
    "3251f413aecd708f2a49ec0ba6c568872241e4039ebd607f1a39dcfb96b55877"
    "1231d4f38ead506f0a29cceb86a548670f0c0b0a51001e000100000007000000"
    "03000000640000000221c4e37e9d405ffa19bcdb76953857f211b4d36e8d304f"
    "ea09accb66852847e201a4c35e7d203fdaf99cbb56751837d2f194b34e6d102f"
    "cae98cab46650827c2e184a35d3e1f00d9ba9b7c553617f8d1b293744d2e0ff0"
    "c9aa8b6c452607e8c1a283640f0c0b0a51001e00010000000800000003000000"
    "640000003d1effe0b99a7b5c3516f7d8b19273542d0eefd0a98a6b4c2506e7c8"
    "a18263441dfedfc0997a5b3c15f6d7b8917253340deecfb0896a4b2c05e6c7a8"
    "81624324fddebfa0795a3b1cf5d6b79871523314edceaf90694a2b0ce5c6a788"
    "61422304ddbe9f80";
static const char v5_head_hex[] =
    "0d0c0b0a510020000100000003000000010000006005000009eacbac8d6e4f30"
    "01e2c3a485664728f9dabb9c7d5e3f20";
static const char v6_hex[] =
    "100f0e0d52000000f70100001f0000002000000000000000";
static const char v7_hex[] =
    "100f0e0d5300000000000000000000004100000000000000";
static const char v8_hex[] =
    "100f0e0d5400000000000000000000002000000000000000";
static const char v9_hex[] =
    "100f0e0d5400200000000000000000002000000000000000";
static const char v10_head_hex[] =
    "dec0551052007800320100000f0000000e00000000000000dec0551052007800"
    "32010000100000000e00000000000000dec05510520078003201000011000000"
    "0e00000000000000dec055105200780032010000120000000e00000000000000"
    "dec055105200780032010000130000000e00000000000000dec0551052007800";
static const char msg_a0_hex[] =
    "4433221151022000340000000000000000000000280000000001020304050607"
    "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627";
static const char msg_a1_hex[] =
    "44332211510120003400000001000000000000002800000028292a2b2c2d2e2f"
    "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f";
static const char msg_a2_hex[] =
    "4433221151002000340000000200000000000000140000005051525354555657"
    "58595a5b5c5d5e5f60616263";
static const char msg_b_ack_hex[] =
    "443322115200200034000000020000000300000000000000";
static const char probe_wask_hex[] =
    "ccbbaa995300200000000000000000000000000000000000";
static const char probe_wins_hex[] =
    "ccbbaa995400000000000000000000000200000000000000";

/* ---- helpers ---- */

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	for (; h[0] && h[1]; h += 2) {
		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

typedef struct tseg {
	uint32_t conv;
	uint8_t cmd, frg;
	uint16_t wnd;
	uint32_t ts, sn, una, len;
	const uint8_t *data;
} tseg;

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8 & 0xff;
	p[2] = v >> 16 & 0xff;
	p[3] = v >> 24;
}

/* The test's own decoder: segments of p[0..len) into s[], header-only
 * for a truncated last segment.  Returns the count. */
static int tdecode(const uint8_t *p, size_t len, tseg *s, int max)
{
	int n = 0;

	while (len >= 24 && n < max) {
		s[n].conv = rd32(p);
		s[n].cmd = p[4];
		s[n].frg = p[5];
		s[n].wnd = p[6] | p[7] << 8;
		s[n].ts = rd32(p + 8);
		s[n].sn = rd32(p + 12);
		s[n].una = rd32(p + 16);
		s[n].len = rd32(p + 20);
		s[n].data = p + 24;
		if (s[n].len > len - 24) {
			n++;
			break;
		}
		len -= 24 + s[n].len;
		p += 24 + s[n].len;
		n++;
	}
	return n;
}

static size_t tenc(uint8_t *p, uint32_t conv, uint8_t cmd, uint8_t frg,
    uint16_t wnd, uint32_t ts, uint32_t sn, uint32_t una,
    const uint8_t *data, uint32_t len)
{
	wr32(p, conv);
	p[4] = cmd;
	p[5] = frg;
	p[6] = wnd & 0xff;
	p[7] = wnd >> 8;
	wr32(p + 8, ts);
	wr32(p + 12, sn);
	wr32(p + 16, una);
	wr32(p + 20, len);
	if (len)
		memcpy(p + 24, data, len);
	return 24 + len;
}

#define CAPN 256

/* Output callback that records datagrams. */
typedef struct cap {
	int n, lost;
	size_t len[CAPN];
	uint8_t d[CAPN][1500];
} cap;

static cap cap_a, cap_b;

static int cap_out(const uint8_t *p, size_t len, void *arg)
{
	cap *c = arg;

	if (c->n >= CAPN || len > sizeof(c->d[0])) {
		c->lost++;
		return -1;
	}
	memcpy(c->d[c->n], p, len);
	c->len[c->n++] = len;
	return 0;
}

static void cap_reset(cap *c)
{
	c->n = 0;
	c->lost = 0;
}

static kcp *mk(uint32_t conv, unsigned mtu, unsigned rcv_wnd, int stream,
    cap *c)
{
	kcp_opts o;

	kcp_opts_default(&o);
	o.mtu = mtu;
	o.rcv_wnd = rcv_wnd;
	o.stream = stream;
	cap_reset(c);
	return kcp_new(conv, &o, cap_out, c);
}

static int check_seg(const tseg *s, uint32_t conv, int cmd, int frg, int wnd,
    uint32_t ts, uint32_t sn, uint32_t una, uint32_t len)
{
	return s->conv == conv && s->cmd == cmd && s->frg == frg &&
	    s->wnd == wnd && s->ts == ts && s->sn == sn && s->una == una &&
	    s->len == len;
}

/* Feed n one-byte PUSHes sn0.. into k (peer wnd 32, una 0). */
static void feed_pushes(kcp *k, uint32_t conv, uint32_t sn0, int n,
    uint64_t now)
{
	uint8_t d[32];
	uint8_t b = 0x5a;
	int i;

	for (i = 0; i < n; i++) {
		tenc(d, conv, 81, 0, 32, 504, sn0 + i, 0, &b, 1);
		CHECK_EQ(kcp_input(k, d, 25, now), 1);
	}
}

/* ---- the vectors decode as the tables say ---- */

static void test_decode(void)
{
	uint8_t b[600];
	tseg s[32];
	size_t n;
	int i;

	n = unhex(v1_hex, b);
	CHECK_EQ(n, 88);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x01020304, 81, 0, 32, 0, 0, 0, 64));
	for (i = 0; i < 64; i++)
		CHECK_EQ(s[0].data[i], i);
	CHECK_EQ(kcp_conv_of(b, n), 0x01020304);
	CHECK_EQ(kcp_conv_of(b, 23), 0);

	n = unhex(v2_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x01020304, 82, 0, 32, 0, 0, 1, 0));

	n = unhex(v3_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 2);
	CHECK(check_seg(&s[0], 0x01020304, 82, 0, 32, 504, 0, 1, 0));
	CHECK(check_seg(&s[1], 0x01020304, 81, 0, 32, 1, 1, 1, 64));
	CHECK_EQ(s[1].data[0], 1);
	CHECK_EQ(s[1].data[63], 0x40);

	n = unhex(v4_hex, b);
	CHECK_EQ(n, 520);
	CHECK_EQ(tdecode(b, n, s, 32), 5);
	CHECK(check_seg(&s[0], 0x0a0b0c0f, 82, 0, 30, 504, 2, 3, 0));
	for (i = 1; i < 5; i++)
		CHECK(check_seg(&s[i], 0x0a0b0c0f, 81, 0, 30, 1, 4 + i, 3,
		    100));
	CHECK_EQ(s[4].data[0], 0x3d);

	n = unhex(v5_head_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x0a0b0c0d, 81, 0, 32, 1, 3, 1, 1376));

	n = unhex(v6_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 82, 0, 0, 503, 31, 32, 0));
	n = unhex(v7_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 83, 0, 0, 0, 0, 65, 0));
	n = unhex(v8_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 84, 0, 0, 0, 0, 32, 0));
	n = unhex(v9_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 84, 0, 32, 0, 0, 32, 0));

	n = unhex(v10_head_hex, b);
	CHECK_EQ(n, 128);
	CHECK_EQ(tdecode(b, n, s, 32), 5);
	for (i = 0; i < 5; i++)
		CHECK(check_seg(&s[i], 0x1055c0de, 82, 0, 120, 306, 15 + i,
		    14, 0));

	n = unhex(msg_a0_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x11223344, 81, 2, 32, 52, 0, 0, 40));
	n = unhex(msg_a1_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x11223344, 81, 1, 32, 52, 1, 0, 40));
	n = unhex(msg_a2_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x11223344, 81, 0, 32, 52, 2, 0, 20));
	n = unhex(msg_b_ack_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x11223344, 82, 0, 32, 52, 2, 3, 0));
	n = unhex(probe_wask_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x99aabbcc, 83, 0, 32, 0, 0, 0, 0));
	n = unhex(probe_wins_hex, b);
	CHECK_EQ(tdecode(b, n, s, 32), 1);
	CHECK(check_seg(&s[0], 0x99aabbcc, 84, 0, 0, 0, 0, 2, 0));
}

/* ---- kcp-go's datagrams fed in, ours reproduced byte for byte ---- */

/* V1 in: 64 bytes delivered; our ACK is V2. */
static void test_v1_v2(void)
{
	uint8_t b[128], out[128];
	size_t n;
	kcp *k;
	int i;

	k = mk(0x01020304, 1400, 32, 1, &cap_a);
	n = unhex(v1_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 0), 1);
	CHECK_EQ(kcp_readable(k), 64);
	CHECK(kcp_next(k, 0) <= 0);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 64);
	for (i = 0; i < 64; i++)
		CHECK_EQ(out[i], i);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 0);
	kcp_flush(k, 0);
	n = unhex(v2_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	CHECK_EQ(kcp_next(k, 0), KCP_IDLE);
	kcp_free(k);
}

/* V3 is an ACK and a PUSH in one datagram: produce it, then feed it. */
static void test_v3(void)
{
	uint8_t b[256], d[128], data[64], out[128];
	size_t n;
	kcp *k;
	int i;

	/* Reproduce: our sn 0 went out at t=0, the peer's sn 0 (ts 504)
	 * arrived and was read, now 64 bytes 01..40 at t=1. */
	k = mk(0x01020304, 1400, 32, 1, &cap_a);
	for (i = 0; i < 64; i++)
		data[i] = i;
	CHECK_EQ(kcp_send(k, data, 64), 64);
	kcp_flush(k, 0);
	CHECK_EQ(cap_a.n, 1);
	n = tenc(d, 0x01020304, 81, 0, 32, 504, 0, 0, data, 64);
	CHECK_EQ(kcp_input(k, d, n, 0), 1);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 64);
	for (i = 0; i < 64; i++)
		data[i] = i + 1;
	CHECK_EQ(kcp_send(k, data, 64), 64);
	cap_reset(&cap_a);
	kcp_flush(k, 1);
	n = unhex(v3_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	kcp_free(k);

	/* Feed: a sender whose sn 0 went out at ts 504 and who already has
	 * the peer's sn 0 (V1). */
	k = mk(0x01020304, 1400, 32, 1, &cap_a);
	n = unhex(v1_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 500), 1);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 64);
	CHECK_EQ(kcp_send(k, data, 64), 64);
	kcp_flush(k, 504);
	CHECK_EQ(kcp_unacked(k), 64);
	n = unhex(v3_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 520), 2);
	CHECK_EQ(kcp_unacked(k), 0);
	CHECK_EQ(kcp_readable(k), 64);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 64);
	for (i = 0; i < 64; i++)
		CHECK_EQ(out[i], i + 1);
	{
		kcp_stat st;

		kcp_stats(k, &st);
		CHECK_EQ(st.srtt, 16);
		CHECK_EQ(st.snd_buf, 0);
	}
	cap_reset(&cap_a);
	kcp_flush(k, 530);
	CHECK_EQ(cap_a.n, 1);
	n = tenc(d, 0x01020304, 82, 0, 32, 1, 1, 2, NULL, 0);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], d, n);
	kcp_free(k);
}

/* V4: message mode, an ACK and four 100-byte messages in one datagram. */
static void test_v4(void)
{
	uint8_t b[600], d[64], junk[100] = { 0 }, out[200];
	tseg s[8];
	size_t n;
	kcp *k;
	int i;

	/* Reproduce: our sn 0..4 went out at t=0; the peer's sn 0..2 came
	 * (sn 2 at ts 504) and one of them was read: wnd 32 - 2 = 30. */
	k = mk(0x0a0b0c0f, 1400, 32, 0, &cap_a);
	for (i = 0; i < 5; i++)
		CHECK_EQ(kcp_send(k, junk, 100), 100);
	kcp_flush(k, 0);
	for (i = 0; i < 3; i++) {
		n = tenc(d, 0x0a0b0c0f, 81, 0, 32, 500 + 2 * i, i, 0, junk, 1);
		CHECK_EQ(kcp_input(k, d, n, 0), 1);
	}
	CHECK_EQ(kcp_readable(k), 1);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 1);
	n = unhex(v4_hex, b);
	CHECK_EQ(tdecode(b, n, s, 8), 5);
	for (i = 1; i < 5; i++)
		CHECK_EQ(kcp_send(k, s[i].data, 100), 100);
	cap_reset(&cap_a);
	kcp_flush(k, 1);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	kcp_free(k);

	/* Feed into a fresh receiver: sn 5..8 are ahead of rcv_nxt 0, so
	 * they wait and each gets an ACK with una 0; the ACK of a sn we
	 * never sent and the una 3 beyond our snd_nxt are ignored. */
	k = mk(0x0a0b0c0f, 1400, 32, 0, &cap_a);
	CHECK_EQ(kcp_input(k, b, n, 10), 5);
	CHECK_EQ(kcp_readable(k), 0);
	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 0);
	CHECK_EQ(kcp_unacked(k), 0);
	kcp_flush(k, 10);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(tdecode(cap_a.d[0], cap_a.len[0], s, 8), 4);
	for (i = 0; i < 4; i++)
		CHECK(check_seg(&s[i], 0x0a0b0c0f, 82, 0, 32, 1, 5 + i, 0, 0));
	kcp_free(k);
}

/* V5: stream mode tops up the queued segment to the full mss (1376). */
static void test_v5(void)
{
	uint8_t b[64], d[64], data[4200];
	tseg s[4];
	size_t n;
	kcp *k;
	int i;

	k = mk(0x0a0b0c0d, 1400, 32, 1, &cap_a);
	memset(data, 0x11, sizeof(data));
	CHECK_EQ(kcp_send(k, data, 3 * 1376), 3 * 1376);
	kcp_flush(k, 0);
	CHECK_EQ(cap_a.n, 3);
	n = tenc(d, 0x0a0b0c0d, 81, 0, 32, 0, 0, 0, data, 1);
	CHECK_EQ(kcp_input(k, d, n, 0), 1);
	kcp_flush(k, 0);
	CHECK_EQ(kcp_recv(k, data, 1), 1);
	n = unhex(v5_head_hex, b);
	memcpy(data, b + 24, n - 24);
	for (i = n - 24; i < 2000; i++)
		data[i] = i * 7;
	CHECK_EQ(kcp_send(k, data, 1000), 1000);
	CHECK_EQ(kcp_send(k, data + 1000, 1000), 1000);
	cap_reset(&cap_a);
	kcp_flush(k, 1);
	CHECK_EQ(cap_a.n, 2);
	CHECK_EQ(cap_a.len[0], 1400);
	CHECK_MEM(cap_a.d[0], b, n);
	CHECK_MEM(cap_a.d[0] + 24, data, 1376);
	CHECK_EQ(tdecode(cap_a.d[1], cap_a.len[1], s, 4), 1);
	CHECK(check_seg(&s[0], 0x0a0b0c0d, 81, 0, 32, 1, 4, 1, 624));
	CHECK_MEM(s[0].data, data + 1376, 624);
	kcp_free(k);
}

/* V6 shuts our send window; V7 is the probe we send 7 s later. */
static void test_v6_v7(void)
{
	static uint8_t data[32 * 1376];
	uint8_t b[64];
	kcp_stat st;
	tseg s[4];
	size_t n;
	kcp *k;

	/* rcv_wnd 65 and 65 unread segments: wnd 0, una 65 as in V7. */
	k = mk(0x0d0e0f10, 1400, 65, 1, &cap_a);
	CHECK_EQ(kcp_send(k, data, sizeof(data)), sizeof(data));
	kcp_flush(k, 0);
	CHECK_EQ(cap_a.n, 32);
	feed_pushes(k, 0x0d0e0f10, 0, 65, 100);
	cap_reset(&cap_a);
	kcp_flush(k, 100);
	/* All 65 ACKs are below rcv_nxt: only the last one goes out. */
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(tdecode(cap_a.d[0], cap_a.len[0], s, 4), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 82, 0, 0, 504, 64, 65, 0));

	n = unhex(v6_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 600), 1);
	CHECK_EQ(kcp_unacked(k), 0);
	kcp_stats(k, &st);
	CHECK_EQ(st.rmt_wnd, 0);
	CHECK_EQ(st.srtt, 97);
	CHECK_EQ(kcp_send(k, data, 100), 100);
	cap_reset(&cap_a);
	CHECK_EQ(kcp_next(k, 600), 600);
	kcp_flush(k, 600);
	CHECK_EQ(cap_a.n, 0);
	CHECK_EQ(kcp_next(k, 600), 7600);
	kcp_flush(k, 7599);
	CHECK_EQ(cap_a.n, 0);
	kcp_flush(k, 7600);
	n = unhex(v7_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	/* Back-off: 7 s, then 1.5x each time, at most 120 s. */
	CHECK_EQ(kcp_next(k, 7600), 7600 + 10500);
	kcp_flush(k, 18100);
	CHECK_EQ(kcp_next(k, 18100), 18100 + 15750);
	kcp_stats(k, &st);
	CHECK_EQ(st.probes, 2);

	/* The window reopens (V9 form): the queued 100 bytes go out. */
	n = unhex(v9_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 20000), 1);
	CHECK(kcp_next(k, 20000) <= 20000);
	cap_reset(&cap_a);
	kcp_flush(k, 20000);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(tdecode(cap_a.d[0], cap_a.len[0], s, 4), 1);
	CHECK(check_seg(&s[0], 0x0d0e0f10, 81, 0, 0, 20000, 32, 65, 100));
	kcp_free(k);
}

/* V7 received with a full queue: we answer V8; reading reopens: V9. */
static void test_v8_v9(void)
{
	uint8_t b[64], out[64];
	size_t n;
	kcp *k;

	k = mk(0x0d0e0f10, 1400, 32, 1, &cap_a);
	feed_pushes(k, 0x0d0e0f10, 0, 32, 0);
	kcp_flush(k, 0);
	/* One more beyond the window: dropped without an ACK. */
	feed_pushes(k, 0x0d0e0f10, 64, 1, 0);
	cap_reset(&cap_a);
	n = unhex(v7_hex, b);
	CHECK_EQ(kcp_input(k, b, n, 10), 1);
	CHECK(kcp_next(k, 10) <= 20);
	kcp_flush(k, 20);
	n = unhex(v8_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	CHECK_EQ(kcp_next(k, 20), KCP_IDLE);

	CHECK_EQ(kcp_recv(k, out, sizeof(out)), 32);
	CHECK(kcp_next(k, 30) <= 30);
	cap_reset(&cap_a);
	kcp_flush(k, 30);
	n = unhex(v9_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);
	kcp_free(k);
}

/* kcp-go's core in message mode: one 100-byte message, mss 40. */
static void test_msgmode(void)
{
	uint8_t b[128], data[100], out[128];
	const char *want[3] = { msg_a0_hex, msg_a1_hex, msg_a2_hex };
	kcp *a, *bk, *st;
	size_t n;
	int i;

	a = mk(0x11223344, 64, 32, 0, &cap_a);
	for (i = 0; i < 100; i++)
		data[i] = i;
	CHECK_EQ(kcp_send(a, data, 100), 100);
	kcp_flush(a, 52);
	CHECK_EQ(cap_a.n, 3);
	for (i = 0; i < 3 && i < cap_a.n; i++) {
		n = unhex(want[i], b);
		CHECK_EQ(cap_a.len[i], n);
		CHECK_MEM(cap_a.d[i], b, n);
	}

	/* Fragments reordered: nothing until the message is whole. */
	bk = mk(0x11223344, 100, 32, 0, &cap_b);
	for (i = 0; i < 3; i++) {
		static const int order[3] = { 1, 0, 2 };

		CHECK_EQ(kcp_readable(bk), 0);
		CHECK_EQ(kcp_input(bk, cap_a.d[order[i]], cap_a.len[order[i]],
		    52), 1);
	}
	CHECK_EQ(kcp_readable(bk), 100);
	CHECK_EQ(kcp_recv(bk, out, 99), -1);
	CHECK_EQ(errno, EMSGSIZE);
	CHECK_EQ(kcp_recv(bk, out, sizeof(out)), 100);
	CHECK_MEM(out, data, 100);
	kcp_flush(bk, 52);
	/* ACKs 0..2 all sit below rcv_nxt 3 at flush time: only the last
	 * goes out, exactly kcp-go's one ACK. */
	n = unhex(msg_b_ack_hex, b);
	CHECK_EQ(cap_b.n, 1);
	CHECK_EQ(cap_b.len[0], n);
	CHECK_MEM(cap_b.d[0], b, n);
	CHECK_EQ(kcp_input(a, cap_b.d[0], cap_b.len[0], 60), 1);
	CHECK_EQ(kcp_unacked(a), 0);

	/* A stream-mode receiver just concatenates the fragments. */
	st = mk(0x11223344, 1400, 32, 1, &cap_b);
	for (i = 0; i < 3; i++)
		CHECK_EQ(kcp_input(st, cap_a.d[i], cap_a.len[i], 52), 1);
	CHECK_EQ(kcp_readable(st), 100);
	CHECK_EQ(kcp_recv(st, out, 30), 30);
	CHECK_EQ(kcp_recv(st, out + 30, 100), 70);
	CHECK_MEM(out, data, 100);
	CHECK_EQ(kcp_send(a, data, 0), -1);
	CHECK_EQ(errno, EMSGSIZE);
	{
		static uint8_t big[256 * 40];

		CHECK_EQ(kcp_send(a, big, 255 * 40 + 1), -1);
		CHECK_EQ(kcp_send(a, big, 255 * 40), 255 * 40);
	}
	kcp_free(a);
	kcp_free(bk);
	kcp_free(st);
}

/* The in-memory WASK/WINS pair: a shut window probed, a full queue. */
static void test_probe_pair(void)
{
	uint8_t b[64], d[64];
	kcp *p, *q;
	size_t n;

	p = mk(0x99aabbcc, 1400, 32, 1, &cap_a);
	n = tenc(d, 0x99aabbcc, 84, 0, 0, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(p, d, n, 0), 1);
	CHECK_EQ(kcp_send(p, d, 10), 10);
	kcp_flush(p, 0);
	CHECK_EQ(cap_a.n, 0);
	kcp_flush(p, 7000);
	n = unhex(probe_wask_hex, b);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(cap_a.len[0], n);
	CHECK_MEM(cap_a.d[0], b, n);

	q = mk(0x99aabbcc, 1400, 2, 1, &cap_b);
	feed_pushes(q, 0x99aabbcc, 0, 2, 0);
	kcp_flush(q, 0);
	cap_reset(&cap_b);
	CHECK_EQ(kcp_input(q, cap_a.d[0], cap_a.len[0], 7000), 1);
	kcp_flush(q, 7000);
	n = unhex(probe_wins_hex, b);
	CHECK_EQ(cap_b.n, 1);
	CHECK_EQ(cap_b.len[0], n);
	CHECK_MEM(cap_b.d[0], b, n);
	kcp_free(p);
	kcp_free(q);
}

/* V10: 18 ACKs above a lost sn 14; the same again triggers fast resend. */
static void test_v10(void)
{
	static uint8_t data[33 * 1376];
	uint8_t b[600], h[200], d[64];
	kcp_stat st;
	tseg s[4];
	size_t n = 0, hn;
	kcp *k;
	int i;

	for (i = 0; i < 18; i++)
		n += tenc(b + n, 0x1055c0de, 82, 0, 120, i < 14 ? 306 : 307,
		    15 + i, 14, NULL, 0);
	CHECK_EQ(n, 432);
	hn = unhex(v10_head_hex, h);
	CHECK_MEM(b, h, hn);

	k = mk(0x1055c0de, 1400, 1024, 1, &cap_a);
	n = tenc(d, 0x1055c0de, 84, 0, 120, 0, 0, 0, NULL, 0);
	CHECK_EQ(kcp_input(k, d, n, 0), 1);
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = i % 251;
	CHECK_EQ(kcp_send(k, data, sizeof(data)), sizeof(data));
	kcp_flush(k, 300);
	CHECK_EQ(cap_a.n, 33);
	n = 432;
	CHECK_EQ(kcp_input(k, b, n, 310), 18);
	CHECK_EQ(kcp_unacked(k), 1376);
	kcp_stats(k, &st);
	CHECK_EQ(st.snd_buf, 1);
	CHECK(kcp_next(k, 310) > 310);
	CHECK_EQ(kcp_input(k, b, n, 312), 18);
	CHECK_EQ(kcp_next(k, 312), 312);
	cap_reset(&cap_a);
	kcp_flush(k, 312);
	CHECK_EQ(cap_a.n, 1);
	CHECK_EQ(tdecode(cap_a.d[0], cap_a.len[0], s, 4), 1);
	CHECK(check_seg(&s[0], 0x1055c0de, 81, 0, 1024, 312, 14, 0, 1376));
	CHECK_MEM(s[0].data, data + 14 * 1376, 1376);
	kcp_stats(k, &st);
	CHECK_EQ(st.fast_retrans, 1);
	CHECK_EQ(st.retrans, 0);
	kcp_free(k);
}

/* ---- malformed input is rejected whole ---- */

static void test_malformed(void)
{
	uint8_t d[3000], x = 7;
	size_t n;
	kcp *k;

	k = mk(0xabcd, 1400, 32, 1, &cap_a);
	n = tenc(d, 0xabcd, 81, 0, 32, 0, 0, 0, &x, 1);
	CHECK_EQ(kcp_input(k, d, 23, 0), -1);
	CHECK_EQ(kcp_input(k, d, 0, 0), -1);
	CHECK_EQ(kcp_input(k, d, n - 1, 0), -1);          /* len past end */
	CHECK_EQ(kcp_input(k, d, n + 5, 0), -1);          /* trailing bytes */
	d[4] = 85;
	CHECK_EQ(kcp_input(k, d, n, 0), -1);              /* unknown cmd */
	d[4] = 80;
	CHECK_EQ(kcp_input(k, d, n, 0), -1);
	d[4] = 82;
	CHECK_EQ(kcp_input(k, d, n, 0), -1);              /* ACK with data */
	n = tenc(d, 0xabce, 81, 0, 32, 0, 0, 0, &x, 1);
	CHECK_EQ(kcp_input(k, d, n, 0), -2);              /* other conv */
	memset(d + 24, 0, 1500);
	n = tenc(d, 0xabcd, 81, 0, 32, 0, 0, 0, d + 24, 1477);
	CHECK_EQ(kcp_input(k, d, n, 0), -1);              /* oversized */
	/* A good segment followed by a bad one: nothing is applied. */
	n = tenc(d, 0xabcd, 81, 0, 32, 0, 0, 0, &x, 1);
	n += tenc(d + n, 0xabcd, 86, 0, 32, 0, 1, 0, NULL, 0);
	CHECK_EQ(kcp_input(k, d, n, 0), -1);
	n = tenc(d, 0xabcd, 81, 0, 32, 0, 0, 0, &x, 1);
	n += tenc(d + n, 0xabce, 82, 0, 32, 0, 1, 0, NULL, 0);
	CHECK_EQ(kcp_input(k, d, n, 0), -2);
	CHECK_EQ(kcp_readable(k), 0);
	CHECK_EQ(kcp_next(k, 0), KCP_IDLE);
	kcp_flush(k, 0);
	CHECK_EQ(cap_a.n, 0);
	/* A length near 2^32 must not wrap the bounds check. */
	n = tenc(d, 0xabcd, 81, 0, 32, 0, 0, 0, NULL, 0);
	wr32(d + 20, 0xffffffff);
	CHECK_EQ(kcp_input(k, d, n + 8, 0), -1);
	kcp_free(k);
}

/* ---- backpressure ---- */

static void test_backpressure(void)
{
	uint8_t data[1000] = { 1 };
	kcp_opts o;
	kcp *a, *b;
	int i;

	kcp_opts_default(&o);
	o.mtu = 100;            /* mss 76 */
	o.snd_wnd = 4;          /* sndbuf defaults to 4 * 76 */
	cap_reset(&cap_a);
	cap_reset(&cap_b);
	a = kcp_new(7, &o, cap_out, &cap_a);
	b = kcp_new(7, &o, cap_out, &cap_b);
	CHECK_EQ(kcp_writable(a), 304);
	CHECK_EQ(kcp_send(a, data, sizeof(data)), 304);
	CHECK_EQ(kcp_writable(a), 0);
	CHECK_EQ(kcp_send(a, data, sizeof(data)), 0);
	CHECK_EQ(kcp_unacked(a), 304);
	kcp_flush(a, 0);
	CHECK_EQ(cap_a.n, 4);   /* 24 + 76: one segment per datagram */
	for (i = 0; i < cap_a.n; i++)
		CHECK_EQ(kcp_input(b, cap_a.d[i], cap_a.len[i], 5), 1);
	kcp_flush(b, 5);
	CHECK_EQ(kcp_readable(b), 304);
	for (i = 0; i < cap_b.n; i++)
		CHECK(kcp_input(a, cap_b.d[i], cap_b.len[i], 10) > 0);
	CHECK_EQ(kcp_unacked(a), 0);
	CHECK_EQ(kcp_writable(a), 304);
	kcp_free(a);
	kcp_free(b);

	/* A bigger buffer than the window: the excess waits queued. */
	o.sndbuf = 1000;
	cap_reset(&cap_a);
	a = kcp_new(7, &o, cap_out, &cap_a);
	CHECK_EQ(kcp_send(a, data, sizeof(data)), 1000);
	kcp_flush(a, 0);
	CHECK_EQ(cap_a.n, 4);
	CHECK_EQ(kcp_unacked(a), 1000);
	CHECK_EQ(kcp_next(a, 0), 200);  /* window full: only the RTO */
	kcp_free(a);
}

/* ---- two instances over a simulated channel ---- */

typedef struct pkt {
	uint64_t at;
	int to;
	size_t len;
	uint8_t d[];
} pkt;

typedef struct sim {
	kcp *k[2];
	struct link {
		struct sim *s;
		int to;
	} link[2];
	pkt *q[4096];
	size_t nq;
	uint64_t now, rng;
	unsigned loss, dup, delay, jitter;      /* per mille, ms */
	size_t sent, dropped;
} sim;

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545f4914f6cdd1dULL) >> 32);
}

static void sim_enqueue(sim *s, int to, const uint8_t *d, size_t len)
{
	pkt *p;

	if (s->nq == sizeof(s->q) / sizeof(s->q[0])) {
		s->dropped++;   /* a full router queue */
		return;
	}
	p = malloc(sizeof(*p) + len);
	p->at = s->now + s->delay + (s->jitter ? rnd(&s->rng) % s->jitter : 0);
	p->to = to;
	p->len = len;
	memcpy(p->d, d, len);
	s->q[s->nq++] = p;
}

static int sim_out(const uint8_t *d, size_t len, void *arg)
{
	struct link *l = arg;
	sim *s = l->s;

	s->sent++;
	CHECK(len <= 1400);
	if (rnd(&s->rng) % 1000 < s->loss)
		return 0;
	sim_enqueue(s, l->to, d, len);
	if (rnd(&s->rng) % 1000 < s->dup)
		sim_enqueue(s, l->to, d, len);
	return 0;
}

/* Deliver every due datagram (order among due ones is arbitrary). */
static void sim_deliver(sim *s)
{
	size_t i = 0;
	pkt *p;

	while (i < s->nq) {
		p = s->q[i];
		if (p->at > s->now) {
			i++;
			continue;
		}
		s->q[i] = s->q[--s->nq];
		CHECK(kcp_input(s->k[p->to], p->d, p->len, s->now) > 0);
		free(p);
	}
}

static uint64_t sim_next(const sim *s)
{
	uint64_t t = KCP_IDLE, u;
	size_t i;

	for (i = 0; i < 2; i++)
		if ((u = kcp_next(s->k[i], s->now)) < t)
			t = u;
	for (i = 0; i < s->nq; i++)
		if (s->q[i]->at < t)
			t = s->q[i]->at;
	return t <= s->now ? s->now + 1 : t;
}

typedef struct simcfg {
	const char *name;
	unsigned loss, dup, delay, jitter;
	int slow;               /* reader drains only this many bytes/ms */
	int stream;
	int nocwnd;
	unsigned wnd;
	uint32_t sn0;
	uint64_t t0, seed;
	size_t total;           /* bytes each way */
} simcfg;

/* Byte i of direction dir: a pattern with a long period. */
static uint8_t pat(int dir, size_t i)
{
	return (uint8_t)(i * 31 + (i >> 9) * 7 + dir * 101);
}

typedef struct flow {
	size_t wr, rd;          /* bytes written / read and checked */
	uint64_t sz_w, sz_r;    /* message-size PRNGs of writer and reader */
	size_t cur_w;           /* size of the message being written */
	int bad;
	double budget;
} flow;

/* Message sizes, the same sequence for writer and reader; the last one
 * is cut to what remains of the total. */
static size_t next_size(uint64_t *r, size_t left)
{
	size_t n = 1 + rnd(r) % 3000;

	return n < left ? n : left;
}

static void flow_write(kcp *k, flow *f, int dir, const simcfg *c)
{
	uint8_t buf[4096];
	size_t n, i;
	ssize_t r;

	while (f->wr < c->total) {
		if (!c->stream && f->cur_w == 0)
			f->cur_w = next_size(&f->sz_w, c->total - f->wr);
		n = c->stream ? sizeof(buf) : f->cur_w;
		if (n > c->total - f->wr && c->stream)
			n = c->total - f->wr;
		for (i = 0; i < n; i++)
			buf[i] = pat(dir, f->wr + i);
		if ((r = kcp_send(k, buf, n)) <= 0)
			break;
		f->wr += r;
		f->cur_w = 0;
	}
}

static void flow_read(kcp *k, flow *f, int dir, const simcfg *c,
    uint64_t dt)
{
	uint8_t buf[4096];
	size_t n, i;
	ssize_t r;

	f->budget += c->slow ? (double)c->slow * dt : 1e12;
	while (kcp_readable(k) > 0 && f->budget >= 1) {
		n = f->budget < sizeof(buf) ? (size_t)f->budget : sizeof(buf);
		if (!c->stream)
			n = sizeof(buf);
		if ((r = kcp_recv(k, buf, n)) <= 0)
			break;
		if (!c->stream &&
		    (size_t)r != next_size(&f->sz_r, c->total - f->rd))
			f->bad++;
		for (i = 0; i < (size_t)r; i++)
			if (buf[i] != pat(dir, f->rd + i))
				f->bad++;
		f->rd += r;
		f->budget -= r;
	}
	if (f->budget > 65536)
		f->budget = 65536;
}

/* Both directions carry c->total bytes; returns the simulated ms taken
 * (UINT64_MAX if it did not finish in 120 s). */
static uint64_t sim_run(const simcfg *c, size_t *maxmem)
{
	static sim s;
	flow f[2];
	kcp_opts o;
	kcp_stat st;
	size_t bound, i;
	uint64_t prev, took = UINT64_MAX;

	memset(&s, 0, sizeof(s));
	memset(f, 0, sizeof(f));
	kcp_opts_default(&o);
	o.stream = c->stream;
	o.nocwnd = c->nocwnd;
	o.snd_wnd = o.rcv_wnd = c->wnd;
	o.sn0 = c->sn0;
	s.now = prev = c->t0;
	s.rng = c->seed;
	s.loss = c->loss;
	s.dup = c->dup;
	s.delay = c->delay;
	s.jitter = c->jitter;
	for (i = 0; i < 2; i++) {
		s.link[i].s = &s;
		s.link[i].to = 1 - i;
		s.k[i] = kcp_new(0x5eed0000 + c->seed, &o, sim_out, &s.link[i]);
		f[i].sz_w = f[i].sz_r = c->seed * 7 + i + 1;
	}
	/* Send side: queued plus in flight; receive side: two windows. */
	bound = (2 * (size_t)o.snd_wnd + 2) * (1376 + 128) +
	    2 * (size_t)o.rcv_wnd * (1476 + 128);
	*maxmem = 0;
	for (;;) {
		sim_deliver(&s);
		for (i = 0; i < 2; i++) {
			flow_write(s.k[i], &f[i], i, c);
			flow_read(s.k[1 - i], &f[i], i, c, s.now - prev);
		}
		for (i = 0; i < 2; i++) {
			if (kcp_next(s.k[i], s.now) <= s.now)
				kcp_flush(s.k[i], s.now);
			kcp_stats(s.k[i], &st);
			if (st.mem > *maxmem)
				*maxmem = st.mem;
			CHECK(st.mem <= bound);
			CHECK(st.snd_buf <= o.snd_wnd);
			CHECK(st.rcv_buf <= o.rcv_wnd);
			CHECK(st.rcv_queue <= o.rcv_wnd);
		}
		if (took == UINT64_MAX && f[0].rd == c->total &&
		    f[1].rd == c->total)
			took = s.now - c->t0;
		/* Run on until everything is acked and the channel empty. */
		if (took != UINT64_MAX && s.nq == 0 &&
		    kcp_unacked(s.k[0]) == 0 && kcp_unacked(s.k[1]) == 0)
			break;
		if (s.now - c->t0 > 120000)
			break;
		prev = s.now;
		s.now = sim_next(&s);
		if (c->slow && s.now > prev + 1)
			s.now = prev + 1;
	}
	if (took != UINT64_MAX) {
		/* Idle: no timer at all, no busy tick. */
		CHECK_EQ(kcp_next(s.k[0], s.now), KCP_IDLE);
		CHECK_EQ(kcp_next(s.k[1], s.now), KCP_IDLE);
	}
	CHECK_EQ(f[0].bad, 0);
	CHECK_EQ(f[1].bad, 0);
	CHECK_EQ(f[0].rd, c->total);
	CHECK_EQ(f[1].rd, c->total);
	if (getenv("KCP_TEST_VERBOSE")) {
		kcp_stats(s.k[0], &st);
		fprintf(stderr, "%s: %llu ms, sent %zu, retrans %llu fast %llu "
		    "probes %llu, srtt %u rto %u, mem max %zu (bound %zu)\n",
		    c->name, (unsigned long long)took, s.sent,
		    (unsigned long long)st.retrans,
		    (unsigned long long)st.fast_retrans,
		    (unsigned long long)st.probes, st.srtt, st.rto, *maxmem,
		    bound);
	}
	for (i = 0; i < s.nq; i++)
		free(s.q[i]);
	kcp_free(s.k[0]);
	kcp_free(s.k[1]);
	return took;
}

static void test_sim(void)
{
	static const simcfg cfg[] = {
		/* name       loss dup delay jit slow strm nocw wnd sn0 */
		{ "clean",       0,  0, 20,  0, 0, 1, 1, 1024, 0, 0, 1, 1 << 20 },
		{ "loss5",      50,  0, 20,  0, 0, 1, 1, 1024, 0, 0, 2, 1 << 20 },
		{ "loss20",    200,  0, 20,  0, 0, 1, 1, 1024, 0, 0, 3, 1 << 20 },
		{ "reorder",    50, 50, 10, 30, 0, 1, 1, 1024, 0, 0, 4, 1 << 20 },
		{ "wrap",       50, 20, 15, 10, 0, 1, 1, 1024, 0xffffff00u,
		    0xffffffe0ULL, 5, 1 << 20 },
		{ "cwnd",       50, 10, 20, 10, 0, 1, 0, 256, 0, 0, 6, 1 << 20 },
		{ "slowreader", 20, 10, 20,  5, 300, 1, 1, 32, 0xfffffff0u,
		    0, 7, 1 << 20 },
		{ "message",    50, 20, 20, 10, 0, 0, 1, 128, 0, 0, 8, 1 << 20 },
	};
	/* Simulated time limits, generous over what the runs take. */
	static const uint64_t limit[] = {
		1000, 5000, 30000, 5000, 5000, 20000, 20000, 20000
	};
	size_t i, mem;
	uint64_t took;

	for (i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		took = sim_run(&cfg[i], &mem);
		if (took > limit[i])
			fprintf(stderr, "sim %s: %llu ms\n", cfg[i].name,
			    (unsigned long long)took);
		CHECK(took <= limit[i]);
	}
}

/* RTO: 1.5x back-off with nodelay, 30 ms floor; ACK list overflow. */
static void test_rto(void)
{
	uint8_t d[64], x = 1;
	kcp_stat st;
	size_t n;
	kcp *k;

	k = mk(9, 1400, 4, 1, &cap_a);
	CHECK_EQ(kcp_send(k, &x, 1), 1);
	kcp_flush(k, 1000);
	CHECK_EQ(kcp_next(k, 1000), 1200);
	kcp_flush(k, 1200);
	CHECK_EQ(kcp_next(k, 1200), 1500);
	kcp_flush(k, 1500);
	CHECK_EQ(kcp_next(k, 1500), 1950);
	CHECK_EQ(cap_a.n, 3);
	kcp_stats(k, &st);
	CHECK_EQ(st.retrans, 2);
	CHECK_EQ(st.max_xmit, 3);
	/* ACK of the last transmission (ts 1500) after 1 ms. */
	n = tenc(d, 9, 82, 0, 32, 1500, 0, 1, NULL, 0);
	CHECK_EQ(kcp_input(k, d, n, 1501), 1);
	kcp_stats(k, &st);
	CHECK_EQ(st.srtt, 1);
	CHECK_EQ(st.rto, 30);
	CHECK_EQ(kcp_unacked(k), 0);
	CHECK_EQ(kcp_next(k, 1501), KCP_IDLE);

	/* rcv_wnd 4: the fifth ACK owed before a flush sends the list. */
	cap_reset(&cap_a);
	feed_pushes(k, 9, 0, 4, 1600);
	CHECK_EQ(cap_a.n, 0);
	feed_pushes(k, 9, 0, 1, 1600);
	CHECK_EQ(cap_a.n, 1);
	kcp_flush(k, 1610);
	CHECK_EQ(cap_a.n, 2);
	kcp_free(k);
}

int main(void)
{
	test_decode();
	test_v1_v2();
	test_v3();
	test_v4();
	test_v5();
	test_v6_v7();
	test_v8_v9();
	test_msgmode();
	test_probe_pair();
	test_v10();
	test_malformed();
	test_backpressure();
	test_rto();
	test_sim();
	return test_summary("kcp");
}
