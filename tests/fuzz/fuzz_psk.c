/*
 * fuzz_psk.c - the PSK envelope (core/psk.h): psk_open on arbitrary
 * datagrams (forgeries must fail and leave nothing readable), and a
 * seal -> (maybe flip a bit) -> open round trip with the payload, clock
 * and tamper position from the input: an untouched datagram within the
 * window opens to the same bytes exactly once, a touched one never.
 * Also the base64 key parser round trip.
 *
 * Input: byte 0 = mode/slots, bytes 1..8 = clock, rest = payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/psk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[PSK_KEY_LEN] = "websocksy fuzz key, 32 bytes...";

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t k2[PSK_KEY_LEN];
	char b64[PSK_KEY_B64_LEN + 1], *s;
	uint8_t *dg, *out;
	psk_ctx *c;
	uint64_t now, skew;
	size_t len, cap;
	ssize_t r;

	if (size < 9)
		return 0;
	now = get64(data + 1) >> 1;
	if ((c = psk_ctx_new(key, 1 + data[0] % 64)) == NULL)
		return 0;
	len = size - 9;
	cap = len + PSK_OVERHEAD;
	dg = malloc(cap);
	out = malloc(cap);
	if (dg == NULL || out == NULL)
		goto done;

	/* arbitrary bytes as a datagram: a forgery, cap exactly enough */
	r = psk_open(c, data + 9, len, now,  out,
	    len >= PSK_OVERHEAD ? len - PSK_NONCE_LEN - PSK_TAG_LEN : 0);
	if (r >= 0)
		abort();

	/* a genuine datagram, maybe from another time, maybe altered */
	skew = (data[0] >> 6) * 15000u;
	if (psk_seal(key, now + skew, data + 9, len, dg, cap) !=
	    (ssize_t)cap)
		abort();
	if (data[0] & 0x20 && len > 0)
		dg[data[9] % cap] ^= 1 << (data[size - 1] & 7);
	r = psk_open(c, dg, cap, now, out, cap);
	if (data[0] & 0x20 && len > 0) {
		if (r >= 0)
			abort();
	} else if (skew <= PSK_WINDOW_MS) {
		if (r != (ssize_t)len || memcmp(out, data + 9, len) != 0)
			abort();
		if (psk_open(c, dg, cap, now + 1, out, cap) >= 0)
			abort();    /* a replay */
	} else if (r >= 0) {
		abort();
	}
	psk_replay_used(c);

	/* the key text */
	if ((s = malloc(len + 1)) != NULL) {
		memcpy(s, data + 9, len);
		s[len] = '\0';
		if (psk_key_from_base64(s, k2) == 0) {
			if (psk_key_to_base64(k2, b64, sizeof(b64)) < 0)
				abort();
			if (psk_key_from_base64(b64, k2) != 0)
				abort();
		}
		free(s);
	}
done:
	free(dg);
	free(out);
	psk_ctx_free(c);
	return 0;
}
