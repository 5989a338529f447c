/*
 * psk.h - the pre-shared-key envelope of KCP datagrams (docs/KCP-MUX.md
 * §6.1): ChaCha20-Poly1305 from Nettle, a millisecond timestamp against
 * replays of old datagrams and a bounded nonce cache against recent ones.
 * Layer: protocol.  No I/O but getrandom(); the time is passed in.
 */
#ifndef WSY_PSK_H
#define WSY_PSK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PSK_KEY_LEN 32
#define PSK_NONCE_LEN 12
#define PSK_TAG_LEN 16
#define PSK_TS_LEN 8
#define PSK_OVERHEAD (PSK_NONCE_LEN + PSK_TS_LEN + PSK_TAG_LEN)   /* 36 */
#define PSK_WINDOW_MS 30000       /* timestamp skew and replay memory */
/* Cache slots, 24 bytes each (24 MiB of address space, touched as used).
 * An entry lives ~30 s, so N slots take about N / 30 datagrams a second:
 * 1048576 is ~35000/s (~49 MB/s of 1400-byte datagrams); 65536 was ~2000/s,
 * less than one bulk KCP stream, and a full cache drops datagrams. */
#define PSK_REPLAY_DEFAULT 1048576
#define PSK_KEY_B64_LEN 44        /* base64 of 32 bytes, no NUL */
#define PSK_PBKDF2_ITER 200000
#define PSK_PBKDF2_SALT "websocksy kcp-mux psk v1"

typedef struct psk_ctx psk_ctx;

/* A receiver: the key and a replay cache of slots entries (0: default;
 * rounded up to a power of two).  NULL on no memory. */
psk_ctx *psk_ctx_new(const uint8_t key[PSK_KEY_LEN], size_t slots);
void psk_ctx_free(psk_ctx *c);

/* out = nonce | seal(timestamp | pt) | tag.  Returns len + PSK_OVERHEAD,
 * or -1 if cap is too small or getrandom() fails. */
ssize_t psk_seal(const uint8_t key[PSK_KEY_LEN], uint64_t now_ms,
    const uint8_t *pt, size_t len, uint8_t *out, size_t cap);
/*
 * Authenticate and decrypt a datagram into out (cap >= len - 28).  Returns
 * the length of the payload after the timestamp (moved to out[0]), or -1:
 * too short, bad tag, timestamp more than PSK_WINDOW_MS away from now_ms,
 * nonce already seen, or replay cache full (refused, never forgotten).
 */
ssize_t psk_open(psk_ctx *c, const uint8_t *dg, size_t len, uint64_t now_ms,
    uint8_t *out, size_t cap);
/* Entries in the replay cache (live or expired, not yet reused). */
size_t psk_replay_used(const psk_ctx *c);

int psk_random(void *buf, size_t n);
int psk_genkey(uint8_t key[PSK_KEY_LEN]);
/* out gets PSK_KEY_B64_LEN characters and a NUL (cap >= 45). */
int psk_key_to_base64(const uint8_t key[PSK_KEY_LEN], char *out, size_t cap);
/* Exactly 32 bytes of standard base64 (surrounding blanks ignored). */
int psk_key_from_base64(const char *s, uint8_t key[PSK_KEY_LEN]);
/* PBKDF2-HMAC-SHA256. */
void psk_pbkdf2(const void *pw, size_t pwlen, const void *salt,
    size_t saltlen, unsigned iter, uint8_t *out, size_t outlen);
/* The key both ends derive from a password: fixed salt and iterations. */
void psk_key_from_password(const char *pw, uint8_t key[PSK_KEY_LEN]);

#endif
