/*
 * opts.h - Kaminari-style option strings, shared by websocksy-client and
 * the server's -o / SIP003 mode:
 *
 *   ws;host=example.com;path=/ws;tls;sni=example.com
 *
 * ';' separates options, the first unescaped '=' separates a key from its
 * value, and '\;' '\=' '\\' are the only escapes.  Layer: bottom.
 * Errors always quote the offending key.
 *
 * Also here: the client's reading of the vocabulary (client_opts) and the
 * masking-key source the mask= option selects, so both can be unit tested
 * without a network.
 */
#ifndef WSY_OPTS_H
#define WSY_OPTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct opt_kv {
	const char *key;
	const char *value;	/* NULL: given as a bare key */
} opt_kv;

/* The parsed list, in the order given; strings live in store. */
typedef struct opts {
	opt_kv *v;
	size_t n;
	char *store;
} opts;

/* Parse s into o (empty options, as in "a;;b;", are skipped).  Returns 0,
 * or -1 with the reason in err (o is left empty). */
int opts_parse(const char *s, opts *o, char *err, size_t errlen);
void opts_free(opts *o);

/* The last option named key (a later one overrides), or NULL. */
const opt_kv *opts_find(const opts *o, const char *key);
/* 1 if key was given, with or without a value. */
int opts_has(const opts *o, const char *key);
/* The value of key, or NULL if absent or bare. */
const char *opts_get(const opts *o, const char *key);

/* What a key accepts. */
enum { OPT_FLAG = 1, OPT_VALUE, OPT_ANY };

typedef struct opt_spec {
	const char *key;
	int kind;		/* OPT_FLAG: bare only; OPT_VALUE: value needed */
} opt_spec;

/* Check every option against spec (terminated by a NULL key).  Returns 0,
 * or -1 with the first problem in err ("unknown option 'foo'"). */
int opts_check(const opts *o, const opt_spec *spec, char *err,
    size_t errlen);

/* ---- the client's options ---- */

enum { MASK_SKIP = 0, MASK_STANDARD, MASK_FIXED };

typedef struct client_opts {
	int ws;			/* WebSocket on top of TCP or TLS */
	const char *host;	/* ws: Host header */
	const char *path;	/* ws: request target */
	int mask;		/* MASK_* */
	int tls;
	const char *sni;	/* tls: server name, also verified */
	const char *alpn;	/* tls: comma list or NULL */
	const char *pin;	/* tls: SHA-256 fingerprint or NULL */
	const char *ca;		/* tls: CA file instead of the system store */
	int insecure;
	int resume;		/* 0rtt: session resumption / early data */
	unsigned ping;		/* keepalive seconds, 0 = off */
	unsigned timeout;	/* connect + handshake seconds */
	unsigned close_linger_ms; /* ws, mux: after local EOF, wait this long
				   * for the server's close first (1000) */
	/* KCP-mux (docs/KCP-MUX.md): every local connection is a stream of
	 * one tunnel, over one WebSocket (mux) or one KCP session (kcp).
	 * kcp;mux=0 is raw KCP instead: every local connection its own KCP
	 * conversation carrying its bytes as they are (kcp-go / kcptun-style
	 * peers); no psk there, as those peers do not speak the envelope. */
	int mux;		/* ws + mux, or kcp (which implies it) */
	int kcp;		/* KCP over UDP instead of TCP */
	int kcp_raw;		/* kcp;mux=0: no mux (mux is 0 then) */
	int has_psk;		/* kcp: psk= given (never with kcp_raw) */
	uint8_t psk[32];	/* kcp: the pre-shared key */
	unsigned kcp_mtu;	/* kcp: datagram size (1400) */
	unsigned kcp_window;	/* kcp: send/receive window, segments (1024) */
	unsigned kcp_replay;	/* kcp+psk: replay cache slots (1048576) */
	unsigned mux_window;	/* per-stream window, bytes (262144) */
	unsigned mux_streams;	/* concurrent streams (128) */
	int poller;		/* LOOP_POLLER_* (loop.h), auto by default */
} client_opts;

extern const opt_spec client_opt_spec[];

/* "skip" / "standard" / "fixed" -> MASK_*, or -1. */
int opts_mask_mode(const char *s);

/* Check o against client_opt_spec and fill c (strings point into o).
 * Returns 0 or -1 with the reason in err. */
int opts_client(const opts *o, client_opts *c, char *err, size_t errlen);

/* Random bytes from getrandom(), drawn in batches so a fresh key per frame
 * costs a copy, not a system call. */
void opts_random(void *out, size_t n);

/* The masking key for the next frame: all zero (skip), fresh (standard),
 * or the connection's key (fixed, chosen once with opts_random). */
void opts_mask_key(int mode, const uint8_t conn_key[4], uint8_t key[4]);

#endif
