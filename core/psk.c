/*
 * psk.c - the KCP datagram envelope.  Layer: protocol.
 *
 * The crypto is Nettle's; this file only frames it.  The replay cache is a
 * hash set of nonces with a bounded probe: a nonce may live only in the
 * PSK_PROBE slots after its home, so a lookup costs at most that many
 * compares, and an entry is reusable once its datagram's timestamp is
 * older than the window (after that the timestamp check rejects a replay
 * anyway).  When all slots of a probe run are live the datagram is
 * refused: evicting a live entry would reopen its datagram to replay, and
 * a dropped datagram is only a retransmission for KCP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/chacha-poly1305.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>

#include "psk.h"

#define PSK_PROBE 32

struct replay_ent {
	uint8_t nonce[PSK_NONCE_LEN];
	uint64_t expires;         /* ms; 0: never used */
};

struct psk_ctx {
	uint8_t key[PSK_KEY_LEN];
	struct replay_ent *ents;
	size_t mask;
	size_t used;
};

psk_ctx *psk_ctx_new(const uint8_t key[PSK_KEY_LEN], size_t slots)
{
	psk_ctx *c;
	size_t n;

	if (slots == 0)
		slots = PSK_REPLAY_DEFAULT;
	for (n = PSK_PROBE; n < slots; n *= 2)
		;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->ents = calloc(n, sizeof(*c->ents))) == NULL) {
		free(c);
		return NULL;
	}
	memcpy(c->key, key, PSK_KEY_LEN);
	c->mask = n - 1;
	return c;
}

void psk_ctx_free(psk_ctx *c)
{
	if (c == NULL)
		return;
	free(c->ents);
	memset(c->key, 0, sizeof(c->key));
	free(c);
}

size_t psk_replay_used(const psk_ctx *c)
{
	return c->used;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int psk_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t r;

	while (n) {
		if ((r = getrandom(p, n, 0)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

ssize_t psk_seal(const uint8_t key[PSK_KEY_LEN], uint64_t now_ms,
    const uint8_t *pt, size_t len, uint8_t *out, size_t cap)
{
	struct chacha_poly1305_ctx ctx;
	uint8_t *body = out + PSK_NONCE_LEN;
	int i;

	if (cap < len + PSK_OVERHEAD || len > SIZE_MAX - PSK_OVERHEAD)
		return -1;
	if (psk_random(out, PSK_NONCE_LEN) < 0)
		return -1;
	/* Nettle wants all but the last piece in whole blocks: build the
	 * plaintext in place and encrypt it in one call. */
	if (len)
		memmove(body + PSK_TS_LEN, pt, len);
	for (i = PSK_TS_LEN - 1; i >= 0; i--, now_ms >>= 8)
		body[i] = now_ms;
	chacha_poly1305_set_key(&ctx, key);
	chacha_poly1305_set_nonce(&ctx, out);
	/* No associated data (§6.1). */
	chacha_poly1305_encrypt(&ctx, PSK_TS_LEN + len, body, body);
	chacha_poly1305_digest(&ctx, PSK_TAG_LEN, body + PSK_TS_LEN + len);
	return len + PSK_OVERHEAD;
}

/* 1: fresh (now remembered), 0: seen, -1: cache full. */
static int replay_check(psk_ctx *c, const uint8_t *nonce, uint64_t ts,
    uint64_t now)
{
	struct replay_ent *e, *free_e = NULL;
	size_t h, i;

	/* Nonces are random and authenticated: their bytes hash well. */
	h = (size_t)get64(nonce) ^ (size_t)(get64(nonce + 4) >> 7);
	for (i = 0; i < PSK_PROBE; i++) {
		e = &c->ents[(h + i) & c->mask];
		if (e->expires > now) {
			if (memcmp(e->nonce, nonce, PSK_NONCE_LEN) == 0)
				return 0;
		} else if (free_e == NULL) {
			free_e = e;
		}
	}
	if (free_e == NULL)
		return -1;
	if (free_e->expires == 0)
		c->used++;
	memcpy(free_e->nonce, nonce, PSK_NONCE_LEN);
	/* Replays of this datagram fail the timestamp check after this. */
	free_e->expires = ts + PSK_WINDOW_MS + 1;
	return 1;
}

ssize_t psk_open(psk_ctx *c, const uint8_t *dg, size_t len, uint64_t now_ms,
    uint8_t *out, size_t cap)
{
	struct chacha_poly1305_ctx ctx;
	uint8_t tag[PSK_TAG_LEN];
	size_t n;
	uint64_t ts;

	if (len < PSK_OVERHEAD)
		return -1;
	n = len - PSK_NONCE_LEN - PSK_TAG_LEN;      /* timestamp + payload */
	if (cap < n)
		return -1;
	chacha_poly1305_set_key(&ctx, c->key);
	chacha_poly1305_set_nonce(&ctx, dg);
	chacha_poly1305_decrypt(&ctx, n, out, dg + PSK_NONCE_LEN);
	chacha_poly1305_digest(&ctx, PSK_TAG_LEN, tag);
	if (!memeql_sec(tag, dg + len - PSK_TAG_LEN, PSK_TAG_LEN)) {
		/* Leave nothing of an unauthenticated plaintext behind. */
		memset(out, 0, n);
		return -1;
	}
	ts = get64(out);
	if ((ts > now_ms ? ts - now_ms : now_ms - ts) > PSK_WINDOW_MS)
		return -1;
	if (replay_check(c, dg, ts, now_ms) != 1)
		return -1;
	memmove(out, out + PSK_TS_LEN, n - PSK_TS_LEN);
	return n - PSK_TS_LEN;
}

int psk_genkey(uint8_t key[PSK_KEY_LEN])
{
	return psk_random(key, PSK_KEY_LEN);
}

int psk_key_to_base64(const uint8_t key[PSK_KEY_LEN], char *out, size_t cap)
{
	if (cap < PSK_KEY_B64_LEN + 1)
		return -1;
	base64_encode_raw(out, PSK_KEY_LEN, key);
	out[PSK_KEY_B64_LEN] = '\0';
	return 0;
}

int psk_key_from_base64(const char *s, uint8_t key[PSK_KEY_LEN])
{
	struct base64_decode_ctx ctx;
	uint8_t buf[BASE64_DECODE_LENGTH(PSK_KEY_B64_LEN)];
	size_t len, out = sizeof(buf);

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
	    s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len != PSK_KEY_B64_LEN)
		return -1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &out, buf, len, s) ||
	    !base64_decode_final(&ctx) || out != PSK_KEY_LEN)
		return -1;
	memcpy(key, buf, PSK_KEY_LEN);
	return 0;
}

void psk_pbkdf2(const void *pw, size_t pwlen, const void *salt,
    size_t saltlen, unsigned iter, uint8_t *out, size_t outlen)
{
	pbkdf2_hmac_sha256(pwlen, pw, iter, saltlen, salt, outlen, out);
}

void psk_key_from_password(const char *pw, uint8_t key[PSK_KEY_LEN])
{
	psk_pbkdf2(pw, strlen(pw), PSK_PBKDF2_SALT,
	    sizeof(PSK_PBKDF2_SALT) - 1, PSK_PBKDF2_ITER, key, PSK_KEY_LEN);
}
