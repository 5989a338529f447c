/*
 * opts.c - Kaminari-style option strings and the client's reading of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "opts.h"
#include "psk.h"

/* User text for an error message: printable ASCII as typed (backslashes
 * too, so an escape reads as the user wrote it), the rest as \xHH. */
static const char *q(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n && s[i] && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
			    c);
	}
	if (i < n && s[i] && outlen > 4) {
		if (o > outlen - 4)
			o = outlen - 4;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* The raw key of the option starting at s: up to the first unescaped
 * '=' or ';' (escapes kept, as the user typed it). */
static size_t raw_key_len(const char *s)
{
	size_t i;

	for (i = 0; s[i] && s[i] != '=' && s[i] != ';'; i++)
		if (s[i] == '\\' && s[i + 1])
			i++;
	return i;
}

static int push(opts *o, size_t *cap, const char *key, const char *value)
{
	opt_kv *nv;

	if (o->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		if ((nv = realloc(o->v, *cap * sizeof(*nv))) == NULL)
			return -1;
		o->v = nv;
	}
	o->v[o->n].key = key;
	o->v[o->n].value = value;
	o->n++;
	return 0;
}

static int bad_escape(const char *seg, const char *at, const char *key,
    char *err, size_t errlen)
{
	char k[128], e[16];

	if (key == NULL)
		q(seg, raw_key_len(seg), k, sizeof(k));
	else
		q(key, strlen(key), k, sizeof(k));
	if (at[1] == '\0')
		snprintf(err, errlen, "option '%s': '\\' at the end of the "
		    "string", k);
	else
		snprintf(err, errlen, "option '%s': bad escape '\\%s' (only "
		    "\\; \\= \\\\)", k, q(at + 1, 1, e, sizeof(e)));
	return -1;
}

/*
 * One pass: unescaped bytes are copied into the store; an unescaped '='
 * (the first of an option) ends the key, an unescaped ';' ends the option.
 * The store needs at most strlen(s) + 1 bytes: escapes only shrink.
 */
int opts_parse(const char *s, opts *o, char *err, size_t errlen)
{
	const char *p, *seg = s;
	char *w, *key, *value = NULL, k[128];
	size_t cap = 0;

	memset(o, 0, sizeof(*o));
	if ((o->store = malloc(strlen(s) + 1)) == NULL)
		goto nomem;
	w = key = o->store;
	for (p = s;; p++) {
		if (*p == '\\') {
			if (p[1] != ';' && p[1] != '=' && p[1] != '\\') {
				*w = '\0';
				bad_escape(seg, p, value ? key : NULL, err,
				    errlen);
				goto fail;
			}
			*w++ = *++p;
			continue;
		}
		if (*p == '=' && value == NULL) {
			*w++ = '\0';
			value = w;
			continue;
		}
		if (*p != ';' && *p != '\0') {
			*w++ = *p;
			continue;
		}
		*w++ = '\0';
		if (*key == '\0' && value != NULL) {
			snprintf(err, errlen, "option '=%s': empty key",
			    q(value, strlen(value), k, sizeof(k)));
			goto fail;
		}
		if (*key != '\0' && push(o, &cap, key, value) < 0)
			goto nomem;
		if (*p == '\0')
			return 0;
		key = w;
		value = NULL;
		seg = p + 1;
	}
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	opts_free(o);
	return -1;
}

void opts_free(opts *o)
{
	free(o->v);
	free(o->store);
	memset(o, 0, sizeof(*o));
}

const opt_kv *opts_find(const opts *o, const char *key)
{
	size_t i;

	for (i = o->n; i > 0; i--)
		if (strcmp(o->v[i - 1].key, key) == 0)
			return &o->v[i - 1];
	return NULL;
}

int opts_has(const opts *o, const char *key)
{
	return opts_find(o, key) != NULL;
}

const char *opts_get(const opts *o, const char *key)
{
	const opt_kv *kv = opts_find(o, key);

	return kv ? kv->value : NULL;
}

int opts_check(const opts *o, const opt_spec *spec, char *err,
    size_t errlen)
{
	const opt_spec *sp;
	char k[128];
	size_t i;

	for (i = 0; i < o->n; i++) {
		const opt_kv *kv = &o->v[i];

		for (sp = spec; sp->key; sp++)
			if (strcmp(sp->key, kv->key) == 0)
				break;
		q(kv->key, strlen(kv->key), k, sizeof(k));
		if (sp->key == NULL) {
			snprintf(err, errlen, "unknown option '%s'", k);
			return -1;
		}
		if (sp->kind == OPT_VALUE && (kv->value == NULL ||
		    *kv->value == '\0')) {
			snprintf(err, errlen, "option '%s' needs a value "
			    "('%s=...')", k, k);
			return -1;
		}
		if (sp->kind == OPT_FLAG && kv->value != NULL) {
			snprintf(err, errlen, "option '%s' takes no value",
			    k);
			return -1;
		}
	}
	return 0;
}

/* ---- the client's options ---- */

const opt_spec client_opt_spec[] = {
	{ "ws", OPT_FLAG },
	{ "host", OPT_VALUE },
	{ "path", OPT_VALUE },
	{ "mask", OPT_VALUE },
	{ "tls", OPT_FLAG },
	{ "sni", OPT_VALUE },
	{ "alpn", OPT_VALUE },
	{ "insecure", OPT_FLAG },
	{ "pin", OPT_VALUE },
	{ "ca", OPT_VALUE },
	{ "0rtt", OPT_FLAG },
	{ "ping", OPT_VALUE },
	{ "timeout", OPT_VALUE },
	{ "close-linger", OPT_VALUE },
	{ "mux", OPT_ANY },
	{ "kcp", OPT_FLAG },
	{ "psk", OPT_VALUE },
	{ "kcp-mtu", OPT_VALUE },
	{ "kcp-window", OPT_VALUE },
	{ "kcp-replay", OPT_VALUE },
	{ "mux-window", OPT_VALUE },
	{ "mux-streams", OPT_VALUE },
	{ "poller", OPT_VALUE },
	{ NULL, 0 }
};

int opts_mask_mode(const char *s)
{
	if (strcmp(s, "skip") == 0)
		return MASK_SKIP;
	if (strcmp(s, "standard") == 0)
		return MASK_STANDARD;
	if (strcmp(s, "fixed") == 0)
		return MASK_FIXED;
	return -1;
}

static int number(const char *key, const char *v, unsigned lo, unsigned hi,
    unsigned *out, char *err, size_t errlen)
{
	char *end, b[64];
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno || n < lo ||
	    n > hi) {
		snprintf(err, errlen, "option '%s': '%s' is not a number "
		    "from %u to %u", key, q(v, strlen(v), b, sizeof(b)), lo,
		    hi);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* SECS with up to three decimals ("1", "0.25") into ms, lo..hi ms. */
static int millis(const char *key, const char *v, unsigned lo, unsigned hi,
    unsigned *out, char *err, size_t errlen)
{
	unsigned long n = 0, scale = 1000;
	const char *p = v;
	char b[64];

	for (; *p >= '0' && *p <= '9' && n <= hi; p++)
		n = n * 10 + (unsigned long)(*p - '0');
	n *= 1000;
	if (*p == '.' && p[1] >= '0' && p[1] <= '9')
		for (p++; *p >= '0' && *p <= '9' && scale > 1; p++)
			n += (unsigned long)(*p - '0') * (scale /= 10);
	if (*v < '0' || *v > '9' || *p != '\0' || n < lo || n > hi) {
		snprintf(err, errlen, "option '%s': '%s' is not a number of "
		    "seconds from %g to %g", key, q(v, strlen(v), b,
		    sizeof(b)), lo / 1000.0, hi / 1000.0);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* A SHA-256 fingerprint: 64 hex digits, colons allowed between them. */
static int pin_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		if (*s == ':')
			continue;
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		    (*s >= 'A' && *s <= 'F')))
			return 0;
		n++;
	}
	return n == 64;
}

/* Options that mean nothing without the transport they configure. */
static int needs(const opts *o, const char *const *keys, int have,
    const char *what, char *err, size_t errlen)
{
	for (; *keys; keys++)
		if (!have && opts_has(o, *keys)) {
			snprintf(err, errlen, "option '%s' needs '%s'", *keys,
			    what);
			return -1;
		}
	return 0;
}

static int client_ws(const opts *o, client_opts *c, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "host", "path", "mask",
	    "close-linger", NULL };
	const char *m;
	char b[64];

	if (needs(o, keys, c->ws, "ws", err, errlen) < 0)
		return -1;
	if (!c->ws)
		return 0;
	c->host = opts_get(o, "host");
	c->path = opts_get(o, "path");
	if (c->host == NULL) {
		snprintf(err, errlen, "option 'ws' needs 'host='");
		return -1;
	}
	if (c->path == NULL) {
		snprintf(err, errlen, "option 'ws' needs 'path='");
		return -1;
	}
	if (c->path[0] != '/' || strpbrk(c->path, " \r\n")) {
		snprintf(err, errlen, "option 'path': '%s' must start with "
		    "'/' and have no spaces", q(c->path, strlen(c->path), b,
		    sizeof(b)));
		return -1;
	}
	if (strpbrk(c->host, " \r\n")) {
		snprintf(err, errlen, "option 'host': no spaces allowed");
		return -1;
	}
	if ((m = opts_get(o, "mask")) && (c->mask = opts_mask_mode(m)) < 0) {
		snprintf(err, errlen, "option 'mask': '%s' is not skip, "
		    "standard or fixed", q(m, strlen(m), b, sizeof(b)));
		return -1;
	}
	return 0;
}

static int client_tls(const opts *o, client_opts *c, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "sni", "alpn", "insecure", "pin",
	    "ca", "0rtt", NULL };

	if (needs(o, keys, c->tls, "tls", err, errlen) < 0)
		return -1;
	if (!c->tls)
		return 0;
	c->sni = opts_get(o, "sni");
	c->alpn = opts_get(o, "alpn");
	c->pin = opts_get(o, "pin");
	c->ca = opts_get(o, "ca");
	c->insecure = opts_has(o, "insecure");
	c->resume = opts_has(o, "0rtt");
	if (c->sni == NULL) {
		snprintf(err, errlen, "option 'tls' needs 'sni='");
		return -1;
	}
	if (c->pin && !pin_ok(c->pin)) {
		snprintf(err, errlen, "option 'pin': expected a SHA-256 "
		    "fingerprint (64 hex digits, colons allowed)");
		return -1;
	}
	return 0;
}

/* KCP over UDP: no TCP, so neither ws nor tls; the key is checked here so
 * that a typo fails at start-up, not at the first datagram. */
static int client_kcp(const opts *o, client_opts *c, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "psk", "kcp-mtu", "kcp-window",
	    "kcp-replay", NULL };
	const char *v;

	if (needs(o, keys, c->kcp, "kcp", err, errlen) < 0)
		return -1;
	if (!c->kcp)
		return 0;
	if (c->ws || c->tls) {
		snprintf(err, errlen, "option 'kcp' cannot be combined with "
		    "'%s'", c->ws ? "ws" : "tls");
		return -1;
	}
	if (c->kcp_raw && (opts_has(o, "psk") || opts_has(o, "kcp-replay"))) {
		snprintf(err, errlen, "option '%s' cannot be used with "
		    "'mux=0' (raw KCP peers such as kcp-go do not speak the "
		    "envelope)", opts_has(o, "psk") ? "psk" : "kcp-replay");
		return -1;
	}
	if ((v = opts_get(o, "psk"))) {
		if (psk_key_from_base64(v, c->psk) < 0) {
			snprintf(err, errlen, "option 'psk': expected a "
			    "32-byte key in base64 (see --genpsk)");
			return -1;
		}
		c->has_psk = 1;
	}
	if ((v = opts_get(o, "kcp-mtu")) &&
	    number("kcp-mtu", v, 256, 1500, &c->kcp_mtu, err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "kcp-window")) &&
	    number("kcp-window", v, 16, 65535, &c->kcp_window, err,
	    errlen) < 0)
		return -1;
	if ((v = opts_get(o, "kcp-replay")) &&
	    number("kcp-replay", v, 1024, 16777216, &c->kcp_replay, err,
	    errlen) < 0)
		return -1;
	return 0;
}

/* mux, mux=1: on; mux=0: off (with kcp: raw KCP); absent: off. */
static int mux_value(const opts *o, char *err, size_t errlen)
{
	const char *v;
	char b[64];

	if (!opts_has(o, "mux"))
		return 0;
	if ((v = opts_get(o, "mux")) == NULL || strcmp(v, "1") == 0)
		return 1;
	if (strcmp(v, "0") == 0)
		return 0;
	snprintf(err, errlen, "option 'mux': '%s' is not 0 or 1",
	    q(v, strlen(v), b, sizeof(b)));
	return -1;
}

static int client_mux(const opts *o, client_opts *c, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "mux-window", "mux-streams",
	    NULL };
	const char *v;

	if (c->mux && !c->ws && !c->kcp) {
		snprintf(err, errlen, "option 'mux' needs 'ws' (or use 'kcp')");
		return -1;
	}
	/* kcp implies mux unless mux=0 (raw KCP, one session each) */
	c->mux = c->kcp ? !c->kcp_raw : c->mux;
	if (needs(o, keys, c->mux, "mux", err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "mux-window")) &&
	    number("mux-window", v, 16384, 16777216, &c->mux_window, err,
	    errlen) < 0)
		return -1;
	if ((v = opts_get(o, "mux-streams")) &&
	    number("mux-streams", v, 1, 65536, &c->mux_streams, err,
	    errlen) < 0)
		return -1;
	return 0;
}

int opts_client(const opts *o, client_opts *c, char *err, size_t errlen)
{
	const char *v;

	memset(c, 0, sizeof(*c));
	c->mask = MASK_STANDARD;
	c->ping = 30;
	c->timeout = 10;
	c->close_linger_ms = 1000;	/* v2ray's DownlinkOnly (sip003.md) */
	c->kcp_mtu = 1400;
	c->kcp_window = 1024;
	c->kcp_replay = PSK_REPLAY_DEFAULT;
	c->mux_window = 1048576;
	c->mux_streams = 128;
	if (opts_check(o, client_opt_spec, err, errlen) < 0)
		return -1;
	c->ws = opts_has(o, "ws");
	c->tls = opts_has(o, "tls");
	c->kcp = opts_has(o, "kcp");
	if ((c->mux = mux_value(o, err, errlen)) < 0)
		return -1;
	c->kcp_raw = c->kcp && opts_has(o, "mux") && !c->mux;
	if (client_ws(o, c, err, errlen) < 0 ||
	    client_tls(o, c, err, errlen) < 0 ||
	    client_kcp(o, c, err, errlen) < 0 ||
	    client_mux(o, c, err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "ping")) &&
	    number("ping", v, 0, 86400, &c->ping, err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "timeout")) &&
	    number("timeout", v, 1, 3600, &c->timeout, err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "close-linger")) && millis("close-linger", v, 0,
	    60000, &c->close_linger_ms, err, errlen) < 0)
		return -1;
	if ((v = opts_get(o, "poller")) != NULL) {
		c->poller = loop_poller_parse(v);
		if (c->poller < 0 || !loop_poller_available(c->poller)) {
			snprintf(err, errlen, "poller=%s: %s", v, c->poller < 0 ?
			    "not auto, epoll or poll" : "not in this build");
			return -1;
		}
	}
	return 0;
}

/* ---- masking keys ---- */

void opts_random(void *out, size_t n)
{
	static uint8_t pool[4096];
	static size_t left;
	static uint64_t x;
	uint8_t *o = out;
	ssize_t r;
	size_t take;

	while (n > 0) {
		if (left == 0) {
			r = getrandom(pool, sizeof(pool), 0);
			if (r == (ssize_t)sizeof(pool)) {
				left = sizeof(pool);
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else {
				/* No kernel randomness (ancient kernel):
				 * masking keys only need to be
				 * unpredictable to scripts, not secret. */
				if (x == 0)
					x = ((uint64_t)time(NULL) ^
					    ((uint64_t)getpid() << 32)) | 1;
				for (left = 0; left < sizeof(pool); left++) {
					x ^= x << 13;
					x ^= x >> 7;
					x ^= x << 17;
					pool[left] = (uint8_t)x;
				}
			}
		}
		take = n < left ? n : left;
		memcpy(o, pool + sizeof(pool) - left, take);
		/* never hand out the same bytes twice */
		memset(pool + sizeof(pool) - left, 0, take);
		left -= take;
		o += take;
		n -= take;
	}
}

void opts_mask_key(int mode, const uint8_t conn_key[4], uint8_t key[4])
{
	switch (mode) {
	case MASK_SKIP:
		memset(key, 0, 4);
		break;
	case MASK_FIXED:
		memcpy(key, conn_key, 4);
		break;
	default:
		opts_random(key, 4);
		break;
	}
}
