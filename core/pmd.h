/*
 * pmd.h - permessage-deflate (RFC 7692): negotiation and a bounded message
 * codec over zlib.  Layer: above buf, below ws/bridge.  Never logs, never
 * does I/O; allocates only zlib state (counted, see pmd_zlib_bytes).
 *
 * Not wired in yet: core/ws.c (RSV1), the bridge and websocksy-client do
 * not call this module; docs/deflate.md says what remains.
 *
 * Negotiation.  A Sec-WebSocket-Extensions value is parsed with the
 * RFC 6455 §9.1 ABNF (extension *( ";" param [ "=" token|quoted-string ] ),
 * elements separated by commas, OWS around).  A malformed, unknown or
 * duplicate parameter, or a window-bits value that is not exactly the digits
 * 8..15 (quoted or not; no sign, no leading zero), declines that one offer;
 * the next offer, in the same header or the next, is tried.  Only a
 * syntax error that loses the element boundaries (an unterminated quoted
 * string) ends the parsing of that header value.
 *
 * Window bits 8.  zlib's deflate refuses windowBits 8 for raw deflate.
 *  - deflate-window-bits = 8 in our config acts as 9 in both directions:
 *    our compressor uses 9 and says so, and we never ask a peer for 8
 *    either (zlib-based peers cannot compress with it: python websockets
 *    10.4 fails the connection on client_max_window_bits=8).
 *  - A peer that limits our direction to 8 (server_max_window_bits=8 in an
 *    offer, client_max_window_bits=8 in an answer): we accept and never
 *    compress towards it (RFC 7692 §6: a message may always be sent
 *    uncompressed); pmd_deflate_init gives PMD_RAW for that direction.
 *  - Our inflater always uses at least 9 bits: a larger window decodes
 *    every stream a smaller one does, and also peers (zlib < 1.2.9) that
 *    silently compressed with 9 after agreeing to 8.
 *
 * Memory (zlib 1.2.13 on amd64, counted by the allocator hooks; the unit
 * test checks these bounds):
 *   deflate state: 6064 + (1 << (wbits + 2)) + (1 << (memlevel + 9)) bytes
 *     wbits 15/mem 8: 262 KiB;  wbits 12/mem 5: 38 KiB;  wbits 10/mem 4: 18 KiB
 *   inflate state: 7272 + (1 << wbits) bytes  (wbits 15: 39 KiB; 10: 8 KiB)
 * Without context takeover (the default) a direction allocates its state
 * at the first byte of a message and frees it at the message's end: an
 * idle connection holds no zlib state, only the two small structs below
 * (pmd_deflater 24 bytes, pmd_inflater 40 on amd64).  With takeover the
 * state lives as long as the connection, bounded by the formulas above for
 * the negotiated window bits and our mem level; a peer that cannot be
 * limited (no client_max_window_bits in its offer) while our window is
 * below 15 gets client_no_context_takeover in the answer, so what we hold
 * between messages never exceeds what deflate-window-bits says.
 * Per-message allocation or a pool: tests/bench/pmd_bench.c, 256-byte
 * JSON message, deflateInit2+deflateEnd per message against deflateReset
 * of a kept state: wbits 15/mem 8 1385 us against 8.4 us (the 262 KiB go
 * back to the kernel and fault in again: system time), wbits 12/mem 5
 * 8.9 us against 8.8 us.  So the default state is the small one and there
 * is no pool; a pool would pay only for 15/8 without takeover.
 *
 * Defaults (pmd_bench, JSON-like 1 KiB and 16 KiB messages, zlib level 1;
 * MB/s on a loaded 2-CPU machine, compare rows, not absolutes):
 *   deflate                  on
 *   deflate-window-bits      12  ratio 0.354 (1 KiB) / 0.237 (16 KiB)
 *                                 against 15's 0.353 / 0.241; 9 gives 0.404
 *   deflate-mem-level        5   mem 4..9 all 0.353-0.354 at 1 KiB; 1 gives
 *                                 0.394.  12/5 is 38 KiB of deflate state
 *                                 during a message, 15/8 262 KiB
 *   deflate-context-takeover off no zlib state while idle (4 KiB/idle
 *                                 goal); on gives 0.255 at 1 KiB for 50 KiB
 *                                 held per connection (12/5)
 *   deflate-min-size         128 deflated size / size: 16 B 1.12, 32 B
 *                                 1.06, 64 B 0.96, 128 B 0.80, 256 B 0.59
 *   compression level        PMD_LEVEL 1: 0.353 at 21 MB/s against level
 *                                 6's 0.321 at 18 MB/s (1 KiB); 0.241 at
 *                                 40 against 0.191 at 25 (16 KiB)
 */
#ifndef WSY_PMD_H
#define WSY_PMD_H

#include <stddef.h>
#include <stdint.h>

#define PMD_BITS_MIN 8
#define PMD_BITS_MAX 15
#define PMD_LEVEL 1
#define PMD_ANSWER_MAX 160	/* longest answer/offer we build, with NUL */
#define PMD_MIN_OUT 16		/* least output room pmd_deflate accepts */

/* Results.  Codec errors map to close codes with pmd_close_code. */
enum { PMD_OK = 0, PMD_AGAIN = 1, PMD_RAW = 2,
       PMD_ERR_NOMEM = -1, PMD_ERR_DATA = -2, PMD_ERR_TOO_BIG = -3,
       PMD_ERR_ARG = -4 };

/* Our settings (the deflate-* config keys). */
typedef struct pmd_config {
	int window_bits;	/* 8..15: the window we ask for and use */
	int mem_level;		/* 1..9 */
	int context_takeover;	/* 0: every message stands alone */
} pmd_config;

#define PMD_CONFIG_DEFAULT { 12, 5, 0 }
#define PMD_MIN_SIZE_DEFAULT 128	/* deflate-min-size */

/* One parsed permessage-deflate element.  Window bits: 0 absent, -1
 * present without a value (only legal for client_max_window_bits), else
 * 8..15. */
typedef struct pmd_offer {
	uint8_t server_no_ctx, client_no_ctx;
	int8_t server_bits, client_bits;
} pmd_offer;

/* What pmd_next found. */
enum { PMD_EXT_END = 0, PMD_EXT_PMD = 1, PMD_EXT_BAD = 2, PMD_EXT_OTHER = 3 };

/*
 * Parse the next element of one header value, from *p up to end; *p moves
 * past it.  PMD_EXT_PMD: a well-formed permessage-deflate element in *o;
 * PMD_EXT_BAD: a permessage-deflate element that must be declined (why in
 * *err when err is not NULL); PMD_EXT_OTHER: another extension or an
 * unparseable element; PMD_EXT_END: nothing left.
 */
int pmd_next(const char **p, const char *end, pmd_offer *o,
    const char **err);

/* The result of a negotiation: the window each side compresses with (as
 * agreed, 8..15) and whether each side resets between messages. */
typedef struct pmd_params {
	uint8_t server_no_ctx, client_no_ctx;
	uint8_t server_bits, client_bits;
	uint8_t say_server_bits;	/* offered: answer it even at 15 */
} pmd_params;

/*
 * Server: choose the first acceptable offer among n header values (vals[i],
 * lens[i]).  Returns 1 with *out set, 0 when nothing is acceptable (the
 * connection goes on without compression).
 */
int pmd_server_choose(const pmd_config *c, const char *const *vals,
    const size_t *lens, size_t n, pmd_params *out);

/* The answer header value for what was chosen: its length, or -1 if it
 * does not fit size (PMD_ANSWER_MAX always does). */
int pmd_answer(const pmd_params *p, char *buf, size_t size);

/* Client: our offer header value; its length or -1. */
int pmd_client_offer(const pmd_config *c, char *buf, size_t size);

/*
 * Client: check the server's answer (n header values) against our offer
 * for c.  Returns 1 with *out set (extension in use), 0 when the server did
 * not accept (no extension), -1 when the connection must fail (RFC 7692
 * §5: a parameter we did not offer, a bad or too large value, a duplicate,
 * an extension we did not offer, or more than one element); *err says why.
 */
int pmd_client_check(const pmd_config *c, const char *const *vals,
    const size_t *lens, size_t n, pmd_params *out, const char **err);

/* One direction's codec parameters from the negotiated ones. */
typedef struct pmd_dir {
	uint8_t bits;		/* 8..15 as agreed */
	uint8_t no_ctx;		/* reset after each message */
	uint8_t mem_level;	/* deflate only */
} pmd_dir;

/* The direction we compress (tx) and the one we inflate (rx). */
void pmd_dirs(const pmd_params *p, int is_server, int mem_level,
    pmd_dir *tx, pmd_dir *rx);

/*
 * Deflater: one message at a time.  pmd_deflate_init returns PMD_OK, or
 * PMD_RAW when this direction must go uncompressed (bits 8, see above).
 * pmd_deflate compresses the input (in, inlen) into out (room outlen >=
 * PMD_MIN_OUT), advancing in and inlen and setting outlen to the bytes
 * written.  fin = 1 marks the last input of the message: the final
 * 00 00 ff ff is removed (§7.2.1).  Returns PMD_OK when the input is taken
 * (and with fin, the message is complete), PMD_AGAIN when out is full (call
 * again with more room), or PMD_ERR_NOMEM.
 */
typedef struct pmd_deflater {
	void *z;		/* z_stream, NULL while idle without takeover */
	pmd_dir dir;
	uint8_t tail[4];	/* held-back output: maybe the 00 00 ff ff */
	uint8_t ntail;
	uint8_t flushed;	/* fin: the sync flush has been asked for */
} pmd_deflater;

int pmd_deflate_init(pmd_deflater *d, const pmd_dir *dir);
int pmd_deflate(pmd_deflater *d, const uint8_t **in, size_t *inlen, int fin,
    uint8_t *out, size_t *outlen);
void pmd_deflate_free(pmd_deflater *d);

/*
 * Inflater: one message at a time, input in any chunks.  limit is the
 * largest inflated message (0 = none): zlib is never given more output
 * room than limit + 1 - inflated so far, so a message stops with
 * PMD_ERR_TOO_BIG (1009) as soon as it passes the limit.  A bad stream gives
 * PMD_ERR_DATA (1007); bytes after a BFINAL block are ignored (§7.2.3.4
 * puts a 00 there).  Same calling convention as pmd_deflate; fin = 1
 * with the last payload bytes (or alone), after which PMD_OK means the
 * message is complete and the next call starts a new message.
 */
typedef struct pmd_inflater {
	void *z;		/* z_stream, NULL while idle without takeover */
	pmd_dir dir;
	uint64_t limit, total;
	uint8_t ntail;		/* bytes of 00 00 ff ff fed so far */
	uint8_t ended;		/* a BFINAL block ended the stream */
	uint8_t boundary;	/* the last input ended a block */
} pmd_inflater;

void pmd_inflate_init(pmd_inflater *f, const pmd_dir *dir, uint64_t limit);
int pmd_inflate(pmd_inflater *f, const uint8_t **in, size_t *inlen, int fin,
    uint8_t *out, size_t *outlen);
void pmd_inflate_free(pmd_inflater *f);

/* Close code for an error (1007, 1009, 1011). */
int pmd_close_code(int err);

/* Bytes of zlib state alive now in this process, and the most ever. */
size_t pmd_zlib_bytes(void);
size_t pmd_zlib_peak(void);

#endif
