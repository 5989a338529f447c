/*
 * test_psk.c - the KCP datagram envelope: round trip, tampering, replay,
 * timestamps, the bounded replay cache, key encodings, and the RFC 8439
 * §2.8.2 AEAD vector and an RFC 7914 §11 PBKDF2 vector through Nettle (the
 * primitives are the ones the contract names).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/chacha-poly1305.h>

#include "../../core/psk.h"
#include "test.h"

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	for (; h[0] && h[1]; h += 2) {
		if (*h == ' ')
			h--;
		else if (sscanf(h, "%2x", &v) == 1)
			out[n++] = v;
	}
	return n;
}

static void test_rfc8439(void)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: "
	    "If I could offer you only one tip for the future, sunscreen "
	    "would be it.";
	uint8_t key[32], nonce[12], aad[12], ct[114], want[114], tag[16],
	    wtag[16], back[114];
	struct chacha_poly1305_ctx ctx;
	int i;

	for (i = 0; i < 32; i++)
		key[i] = 0x80 + i;
	unhex("070000004041424344454647", nonce);
	unhex("50515253c0c1c2c3c4c5c6c7", aad);
	CHECK_EQ(unhex(
	    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
	    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
	    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
	    "3ff4def08e4b7a9de576d26586cec64b6116", want), 114);
	unhex("1ae10b594f09e26a7e902ecbd0600691", wtag);
	CHECK_EQ(sizeof(pt) - 1, 114);
	chacha_poly1305_set_key(&ctx, key);
	chacha_poly1305_set_nonce(&ctx, nonce);
	chacha_poly1305_update(&ctx, sizeof(aad), aad);
	chacha_poly1305_encrypt(&ctx, 114, ct, (const uint8_t *)pt);
	chacha_poly1305_digest(&ctx, 16, tag);
	CHECK_MEM(ct, want, 114);
	CHECK_MEM(tag, wtag, 16);
	chacha_poly1305_set_key(&ctx, key);
	chacha_poly1305_set_nonce(&ctx, nonce);
	chacha_poly1305_update(&ctx, sizeof(aad), aad);
	chacha_poly1305_decrypt(&ctx, 114, back, ct);
	chacha_poly1305_digest(&ctx, 16, tag);
	CHECK_MEM(back, pt, 114);
	CHECK_MEM(tag, wtag, 16);
}

static void test_pbkdf2(void)
{
	uint8_t out[64], want[64], k1[32], k2[32];

	unhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
	    "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
	    want);
	psk_pbkdf2("passwd", 6, "salt", 4, 1, out, 64);
	CHECK_MEM(out, want, 64);
	psk_key_from_password("correct horse", k1);
	psk_key_from_password("correct horse", k2);
	CHECK_MEM(k1, k2, 32);
	psk_key_from_password("correct horsf", k2);
	CHECK(memcmp(k1, k2, 32) != 0);
}

static void test_keys(void)
{
	uint8_t k[32], k2[32], zero[32] = { 0 };
	char b64[64];

	CHECK_EQ(psk_genkey(k), 0);
	CHECK(memcmp(k, zero, 32) != 0);
	CHECK_EQ(psk_key_to_base64(k, b64, 44), -1);
	CHECK_EQ(psk_key_to_base64(k, b64, sizeof(b64)), 0);
	CHECK_EQ(strlen(b64), 44);
	CHECK_EQ(b64[43], '=');
	CHECK_EQ(psk_key_from_base64(b64, k2), 0);
	CHECK_MEM(k, k2, 32);
	strcat(b64, "\n");
	CHECK_EQ(psk_key_from_base64(b64, k2), 0);
	CHECK_EQ(psk_key_from_base64("AAAA", k2), -1);
	CHECK_EQ(psk_key_from_base64(
	    "!!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", k2), -1);
	psk_key_to_base64(zero, b64, sizeof(b64));
	CHECK(strcmp(b64, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == 0);
}

static void test_envelope(void)
{
	const uint64_t now = 1700000000000ull;
	uint8_t key[32], other[32], dg[256], bad[256], out[256];
	const char msg[] = "kcp segments";
	psk_ctx *c, *c2;
	ssize_t n, r;
	size_t i;

	psk_genkey(key);
	psk_genkey(other);
	c = psk_ctx_new(key, 0);
	CHECK(c != NULL);
	n = psk_seal(key, now, (const uint8_t *)msg, 12, dg, sizeof(dg));
	CHECK_EQ(n, 12 + PSK_OVERHEAD);
	CHECK_EQ(psk_seal(key, now, (const uint8_t *)msg, 12, dg, 47), -1);
	/* Tampering anywhere: nonce, timestamp, payload, tag. */
	for (i = 0; i < (size_t)n; i++) {
		memcpy(bad, dg, n);
		bad[i] ^= 0x01;
		CHECK_EQ(psk_open(c, bad, n, now, out, sizeof(out)), -1);
	}
	CHECK_EQ(psk_open(c, dg, n - 1, now, out, sizeof(out)), -1);
	CHECK_EQ(psk_open(c, dg, 20, now, out, sizeof(out)), -1);
	c2 = psk_ctx_new(other, 64);
	CHECK_EQ(psk_open(c2, dg, n, now, out, sizeof(out)), -1);
	psk_ctx_free(c2);
	CHECK_EQ(psk_replay_used(c), 0);
	/* The real thing, once. */
	r = psk_open(c, dg, n, now + 100, out, sizeof(out));
	CHECK_EQ(r, 12);
	CHECK_MEM(out, msg, 12);
	CHECK_EQ(psk_open(c, dg, n, now + 200, out, sizeof(out)), -1);
	CHECK_EQ(psk_replay_used(c), 1);
	/* An empty payload is fine. */
	n = psk_seal(key, now, NULL, 0, dg, sizeof(dg));
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), 0);
	/* Timestamps: 30 s either way is the limit. */
	n = psk_seal(key, now - 30000, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), 12);
	n = psk_seal(key, now - 30001, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), -1);
	n = psk_seal(key, now + 30000, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), 12);
	n = psk_seal(key, now + 30001, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), -1);
	/* A replay after its cache entry expired meets the clock instead. */
	n = psk_seal(key, now, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, sizeof(out)), 12);
	CHECK_EQ(psk_open(c, dg, n, now + 30001, out, sizeof(out)), -1);
	/* Output too small. */
	n = psk_seal(key, now, (const uint8_t *)msg, 12, dg, 256);
	CHECK_EQ(psk_open(c, dg, n, now, out, 19), -1);
	psk_ctx_free(c);
}

static void test_replay_bounded(void)
{
	const uint64_t now = 1700000000000ull;
	uint8_t key[32], dg[64], out[64];
	int i, ok = 0, refused = 0;
	ssize_t n;
	psk_ctx *c;

	psk_genkey(key);
	c = psk_ctx_new(key, 64);
	/* Far more fresh datagrams than slots: the cache never grows and
	 * refuses rather than forgets. */
	for (i = 0; i < 1000; i++) {
		n = psk_seal(key, now, (const uint8_t *)"x", 1, dg, sizeof(dg));
		if (psk_open(c, dg, n, now, out, sizeof(out)) == 1)
			ok++;
		else
			refused++;
	}
	CHECK(psk_replay_used(c) <= 64);
	CHECK_EQ(ok, 64);
	CHECK_EQ(refused, 1000 - 64);
	/* Once the window has passed, the slots are reused. */
	n = psk_seal(key, now + 30001, (const uint8_t *)"y", 1, dg, 64);
	CHECK_EQ(psk_open(c, dg, n, now + 30001, out, sizeof(out)), 1);
	CHECK(psk_replay_used(c) <= 64);
	psk_ctx_free(c);
}

int main(void)
{
	test_rfc8439();
	test_pbkdf2();
	test_keys();
	test_envelope();
	test_replay_bounded();
	return test_summary("psk");
}
