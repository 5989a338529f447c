/*
 * pmd.c - permessage-deflate (RFC 7692).  Layer: above buf, below ws.
 * See pmd.h for the rules; the parser follows RFC 6455 §9.1 and RFC 7230
 * §3.2.6 (token, quoted-string), one element at a time with a cursor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "pmd.h"

/* ---- header syntax ---- */

static int is_tchar(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return 1;
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* A token at p: its end (p itself if none). */
static const char *token_end(const char *p, const char *end)
{
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	return p;
}

/* Skip to the comma that ends this element (quotes respected); NULL if a
 * quoted string does not end. */
static const char *skip_element(const char *p, const char *end)
{
	while (p < end && *p != ',') {
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\' && ++p == end)
					return NULL;
			if (p == end)
				return NULL;
		}
		p++;
	}
	return p;
}

/*
 * A parameter value after '=': a token or a quoted-string whose unescaped
 * content is a token (RFC 6455 §9.1).  Copies the unescaped value into v
 * (up to vsize-1 bytes; longer values are cut and marked too long with
 * *vlen > vsize).  Returns the end, or NULL on a syntax error.
 */
static const char *param_value(const char *p, const char *end, char *v,
    size_t vsize, size_t *vlen)
{
	size_t n = 0;
	const char *q;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && ++p == end)
				return NULL;
			if (!is_tchar((unsigned char)*p))
				return NULL;
			if (n + 1 < vsize)
				v[n] = *p;
			n++;
		}
		if (p == end || n == 0)
			return NULL;
		p++;
	} else {
		q = token_end(p, end);
		if (q == p)
			return NULL;
		for (; p < q; p++, n++)
			if (n + 1 < vsize)
				v[n] = *p;
	}
	v[n < vsize ? n : vsize - 1] = '\0';
	*vlen = n;
	return p;
}

/* Window bits: exactly the digits 8..15. */
static int bits_value(const char *v, size_t n)
{
	if (n == 1 && v[0] >= '8' && v[0] <= '9')
		return v[0] - '0';
	if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
		return 10 + v[1] - '0';
	return -1;
}

enum { P_SNCT, P_CNCT, P_SBITS, P_CBITS, P_UNKNOWN };

static int param_kind(const char *n, size_t len)
{
	static const char *names[] = { "server_no_context_takeover",
	    "client_no_context_takeover", "server_max_window_bits",
	    "client_max_window_bits" };
	int i;

	for (i = 0; i < 4; i++)
		if (strlen(names[i]) == len && strncasecmp(n, names[i], len) == 0)
			return i;
	return P_UNKNOWN;
}

/* Record one parameter in o; an error string or NULL. */
static const char *set_param(pmd_offer *o, int kind, int has_value,
    const char *v, size_t vlen)
{
	int bits = has_value ? bits_value(v, vlen) : -1;

	switch (kind) {
	case P_SNCT:
	case P_CNCT:
		if (has_value)
			return "a no_context_takeover parameter has a value";
		if ((kind == P_SNCT ? o->server_no_ctx : o->client_no_ctx))
			return "duplicate no_context_takeover parameter";
		*(kind == P_SNCT ? &o->server_no_ctx : &o->client_no_ctx) = 1;
		return NULL;
	case P_SBITS:
	case P_CBITS:
		if ((kind == P_SBITS ? o->server_bits : o->client_bits) != 0)
			return "duplicate max_window_bits parameter";
		if (has_value && bits < 0)
			return "max_window_bits is not 8..15";
		if (!has_value && kind == P_SBITS)
			return "server_max_window_bits without a value";
		*(kind == P_SBITS ? &o->server_bits : &o->client_bits) =
		    (int8_t)bits;
		return NULL;
	}
	return "unknown parameter";
}

int pmd_next(const char **pp, const char *end, pmd_offer *o,
    const char **err)
{
	const char *p = *pp, *q, *start, *why = NULL;
	char v[8];
	size_t vlen;
	int pmd;

	memset(o, 0, sizeof(*o));
	for (;;) {	/* empty list elements are allowed (RFC 7230 §7) */
		p = skip_ows(p, end);
		if (p == end) {
			*pp = p;
			return PMD_EXT_END;
		}
		if (*p != ',')
			break;
		p++;
	}
	start = p;
	q = token_end(p, end);
	pmd = q - p == 18 && strncasecmp(p, "permessage-deflate", 18) == 0;
	if (q == p)
		why = "an extension name is not a token";
	p = q;
	while (why == NULL) {
		int kind, has_value = 0;

		p = skip_ows(p, end);
		if (p == end || *p == ',')
			break;
		if (*p != ';') {
			why = "junk after a parameter";
			break;
		}
		p = skip_ows(p + 1, end);
		q = token_end(p, end);
		if (q == p) {
			why = "a parameter name is not a token";
			break;
		}
		kind = param_kind(p, (size_t)(q - p));
		p = skip_ows(q, end);
		vlen = 0;
		if (p < end && *p == '=') {
			p = param_value(skip_ows(p + 1, end), end, v,
			    sizeof(v), &vlen);
			if (p == NULL) {
				why = "a parameter value is not a token";
				p = start;	/* find the comma from the start */
				break;
			}
			has_value = 1;
		}
		if (pmd)
			why = set_param(o, kind, has_value, v, vlen);
	}
	if (why != NULL) {
		p = skip_element(p, end);
		if (p == NULL)
			p = end;	/* an open quote: nothing more to trust */
	}
	*pp = p;
	if (err)
		*err = why;
	if (!pmd)
		return PMD_EXT_OTHER;
	return why ? PMD_EXT_BAD : PMD_EXT_PMD;
}

/* ---- negotiation ---- */

/* The window our compressor can honour: zlib has no raw window of 8. */
static int tx_bits(int bits)
{
	return bits < 9 ? 9 : bits;
}

/* Server: the answer to one well-formed offer under c; 0 if declined. */
static int server_accept(const pmd_config *c, const pmd_offer *o,
    pmd_params *out)
{
	/* Never 8, for the peer either: zlib-based peers cannot compress
	 * with it (python websockets fails on client_max_window_bits=8). */
	int want = tx_bits(c->window_bits);

	memset(out, 0, sizeof(*out));
	/* Our direction: no more than the client allows; 8 means we will
	 * send uncompressed (pmd.h), which still honours the limit. */
	out->server_bits = (uint8_t)want;
	if (o->server_bits > 0 && o->server_bits < out->server_bits)
		out->server_bits = (uint8_t)o->server_bits;
	out->say_server_bits = o->server_bits > 0;
	out->server_no_ctx = o->server_no_ctx || !c->context_takeover;
	/* The client's direction: limit it only if it lets us. */
	out->client_bits = PMD_BITS_MAX;
	if (o->client_bits != 0) {
		int most = o->client_bits > 0 ? o->client_bits : PMD_BITS_MAX;
		out->client_bits = (uint8_t)(want < most ? want : most);
	}
	out->client_no_ctx = o->client_no_ctx || !c->context_takeover ||
	    out->client_bits > want;
	return 1;
}

int pmd_server_choose(const pmd_config *c, const char *const *vals,
    const size_t *lens, size_t n, pmd_params *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *p = vals[i], *end = vals[i] + lens[i];
		pmd_offer o;
		int r;

		while ((r = pmd_next(&p, end, &o, NULL)) != PMD_EXT_END)
			if (r == PMD_EXT_PMD && server_accept(c, &o, out))
				return 1;
	}
	return 0;
}

/* Append s (and "=v" when v > 0) to buf; -1 once it does not fit. */
static int put(char *buf, size_t size, int len, const char *s, int v)
{
	int k;

	if (len < 0 || (size_t)len >= size)
		return -1;
	if (v > 0)
		k = snprintf(buf + len, size - (size_t)len, "%s=%d", s, v);
	else
		k = snprintf(buf + len, size - (size_t)len, "%s", s);
	if (k < 0 || (size_t)k >= size - (size_t)len)
		return -1;
	return len + k;
}

int pmd_answer(const pmd_params *p, char *buf, size_t size)
{
	int len = put(buf, size, 0, "permessage-deflate", 0);

	if (p->server_no_ctx)
		len = put(buf, size, len, "; server_no_context_takeover", 0);
	if (p->client_no_ctx)
		len = put(buf, size, len, "; client_no_context_takeover", 0);
	if (p->server_bits < PMD_BITS_MAX || p->say_server_bits)
		len = put(buf, size, len, "; server_max_window_bits",
		    p->server_bits);
	if (p->client_bits < PMD_BITS_MAX)
		len = put(buf, size, len, "; client_max_window_bits",
		    p->client_bits);
	return len;
}

int pmd_client_offer(const pmd_config *c, char *buf, size_t size)
{
	int len = put(buf, size, 0, "permessage-deflate", 0);

	if (!c->context_takeover)
		len = put(buf, size, len, "; server_no_context_takeover"
		    "; client_no_context_takeover", 0);
	if (c->window_bits < PMD_BITS_MAX)
		len = put(buf, size, len, "; server_max_window_bits",
		    tx_bits(c->window_bits));
	/* The server may lower our window, down to what zlib can do or
	 * below (then we send uncompressed). */
	len = put(buf, size, len, "; client_max_window_bits",
	    tx_bits(c->window_bits));
	return len;
}

/* Client: one answer element against our offer for c. */
static const char *client_accept(const pmd_config *c, const pmd_offer *o,
    pmd_params *out)
{
	int offered_server = tx_bits(c->window_bits);

	if (o->client_bits < 0 || o->server_bits < 0)
		return "a max_window_bits parameter without a value";
	if (c->window_bits < PMD_BITS_MAX && o->server_bits == 0)
		return "server_max_window_bits missing, and we asked for it";
	if (o->server_bits > offered_server)
		return "server_max_window_bits above what we offered";
	if (o->client_bits > tx_bits(c->window_bits))
		return "client_max_window_bits above what we offered";
	memset(out, 0, sizeof(*out));
	out->server_no_ctx = o->server_no_ctx;
	/* We said client_no_context_takeover when takeover is off. */
	out->client_no_ctx = o->client_no_ctx || !c->context_takeover;
	out->server_bits = (uint8_t)(o->server_bits ? o->server_bits :
	    PMD_BITS_MAX);
	out->client_bits = (uint8_t)(o->client_bits ? o->client_bits :
	    tx_bits(c->window_bits));
	if (!c->context_takeover && !out->server_no_ctx)
		return "server_no_context_takeover missing, and we asked "
		    "for it";
	return NULL;
}

int pmd_client_check(const pmd_config *c, const char *const *vals,
    const size_t *lens, size_t n, pmd_params *out, const char **err)
{
	size_t i;
	int found = 0;

	*err = NULL;
	for (i = 0; i < n; i++) {
		const char *p = vals[i], *end = vals[i] + lens[i];
		pmd_offer o;
		int r;

		while ((r = pmd_next(&p, end, &o, err)) != PMD_EXT_END) {
			if (r == PMD_EXT_OTHER) {
				*err = "an extension we did not offer";
				return -1;
			}
			if (r == PMD_EXT_BAD)
				return -1;
			if (found++) {
				*err = "permessage-deflate answered twice";
				return -1;
			}
			if ((*err = client_accept(c, &o, out)) != NULL)
				return -1;
		}
	}
	return found;
}

void pmd_dirs(const pmd_params *p, int is_server, int mem_level,
    pmd_dir *tx, pmd_dir *rx)
{
	pmd_dir s = { p->server_bits, p->server_no_ctx, (uint8_t)mem_level };
	pmd_dir c = { p->client_bits, p->client_no_ctx, (uint8_t)mem_level };

	*tx = is_server ? s : c;
	*rx = is_server ? c : s;
}

int pmd_close_code(int err)
{
	if (err == PMD_ERR_DATA)
		return 1007;
	if (err == PMD_ERR_TOO_BIG)
		return 1009;
	return 1011;
}

/* ---- zlib state, counted ---- */

static size_t zbytes, zpeak;

#define ZHDR 16		/* keeps malloc's alignment for zlib's structs */

static void *zalloc_count(void *opaque, unsigned items, unsigned size)
{
	size_t n = (size_t)items * size;
	unsigned char *p;

	(void)opaque;
	if (size && n / size != items)
		return NULL;
	if ((p = malloc(n + ZHDR)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	zbytes += n;
	if (zbytes > zpeak)
		zpeak = zbytes;
	return p + ZHDR;
}

static void zfree_count(void *opaque, void *ptr)
{
	unsigned char *p = ptr;
	size_t n;

	(void)opaque;
	if (p == NULL)
		return;
	p -= ZHDR;
	memcpy(&n, p, sizeof(n));
	zbytes -= n;
	free(p);
}

size_t pmd_zlib_bytes(void) { return zbytes; }
size_t pmd_zlib_peak(void) { return zpeak; }

static z_stream *zs_new(void)
{
	z_stream *z = zalloc_count(NULL, 1, sizeof(*z));

	if (z != NULL) {
		memset(z, 0, sizeof(*z));
		z->zalloc = zalloc_count;
		z->zfree = zfree_count;
	}
	return z;
}

/* ---- deflate ---- */

static const uint8_t sync_tail[4] = { 0x00, 0x00, 0xff, 0xff };

int pmd_deflate_init(pmd_deflater *d, const pmd_dir *dir)
{
	memset(d, 0, sizeof(*d));
	d->dir = *dir;
	return dir->bits < 9 ? PMD_RAW : PMD_OK;
}

static int deflate_start(pmd_deflater *d)
{
	z_stream *z = zs_new();

	if (z == NULL)
		return PMD_ERR_NOMEM;
	if (deflateInit2(z, PMD_LEVEL, Z_DEFLATED, -(int)d->dir.bits,
	    d->dir.mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
		zfree_count(NULL, z);
		return PMD_ERR_NOMEM;
	}
	d->z = z;
	return PMD_OK;
}

void pmd_deflate_free(pmd_deflater *d)
{
	if (d->z != NULL) {
		deflateEnd(d->z);
		zfree_count(NULL, d->z);
		d->z = NULL;
	}
	d->ntail = 0;
}

int pmd_deflate(pmd_deflater *d, const uint8_t **in, size_t *inlen, int fin,
    uint8_t *out, size_t *outlen)
{
	size_t room = *outlen, w, keep;
	z_stream *z;
	int r;

	*outlen = 0;
	if (room < PMD_MIN_OUT || d->dir.bits < 9 || d->dir.bits > 15)
		return PMD_ERR_ARG;
	if (d->z == NULL && (r = deflate_start(d)) != PMD_OK)
		return r;
	z = d->z;
	memcpy(out, d->tail, d->ntail);
	z->next_in = (Bytef *)(uintptr_t)*in;
	z->avail_in = *inlen > UINT32_MAX ? UINT32_MAX : (uInt)*inlen;
	z->next_out = out + d->ntail;
	z->avail_out = (uInt)(room - d->ntail);
	r = deflate(z, fin ? Z_SYNC_FLUSH : Z_NO_FLUSH);
	if (r != Z_OK && r != Z_BUF_ERROR)
		return PMD_ERR_ARG;
	w = *inlen - z->avail_in;
	*in += w;
	*inlen -= w;
	w = room - z->avail_out;
	keep = w < 4 ? w : 4;		/* maybe the 00 00 ff ff */
	memcpy(d->tail, out + w - keep, keep);
	d->ntail = (uint8_t)keep;
	*outlen = w - keep;
	if (*inlen != 0 || z->avail_out == 0)
		return PMD_AGAIN;
	if (!fin)
		return PMD_OK;
	if (d->ntail != 4 || memcmp(d->tail, sync_tail, 4) != 0)
		return PMD_ERR_ARG;	/* zlib always ends a sync flush so */
	d->ntail = 0;
	if (d->dir.no_ctx)
		pmd_deflate_free(d);
	return PMD_OK;
}

/* ---- inflate ---- */

/* The window we inflate with: at least 9 (pmd.h). */
static int rx_bits(int bits)
{
	return bits < 9 ? 9 : bits;
}

void pmd_inflate_init(pmd_inflater *f, const pmd_dir *dir, uint64_t limit)
{
	memset(f, 0, sizeof(*f));
	f->dir = *dir;
	f->limit = limit;
}

void pmd_inflate_free(pmd_inflater *f)
{
	if (f->z != NULL) {
		inflateEnd(f->z);
		zfree_count(NULL, f->z);
		f->z = NULL;
	}
	f->total = 0;
	f->ntail = f->ended = f->boundary = 0;
}

static int inflate_start(pmd_inflater *f)
{
	z_stream *z = zs_new();

	if (z == NULL)
		return PMD_ERR_NOMEM;
	if (inflateInit2(z, -rx_bits(f->dir.bits)) != Z_OK) {
		zfree_count(NULL, z);
		return PMD_ERR_NOMEM;
	}
	f->z = z;
	return PMD_OK;
}

/* A BFINAL block ended the stream but the context goes on: a new stream
 * that starts with the old window as its dictionary. */
static int inflate_carry(pmd_inflater *f)
{
	uInt n = 1u << rx_bits(f->dir.bits);
	Bytef *dict = zalloc_count(NULL, 1, n);
	int r = PMD_ERR_NOMEM;

	if (dict != NULL && inflateGetDictionary(f->z, dict, &n) == Z_OK &&
	    inflateReset(f->z) == Z_OK &&
	    inflateSetDictionary(f->z, dict, n) == Z_OK)
		r = PMD_OK;
	zfree_count(NULL, dict);
	return r;
}

/* The message is complete. */
static int inflate_done(pmd_inflater *f)
{
	int r = PMD_OK;

	if (f->dir.no_ctx)
		pmd_inflate_free(f);
	else if (f->ended)
		r = inflate_carry(f);
	f->total = 0;
	f->ntail = f->ended = f->boundary = 0;
	return r;
}

static int inflate_fail(pmd_inflater *f, int err)
{
	pmd_inflate_free(f);
	return err;
}

int pmd_inflate(pmd_inflater *f, const uint8_t **in, size_t *inlen, int fin,
    uint8_t *out, size_t *outlen)
{
	size_t room = *outlen;
	z_stream *z;
	int r;

	*outlen = 0;
	if (room == 0 || f->dir.bits < 8 || f->dir.bits > 15)
		return PMD_ERR_ARG;
	if (f->z == NULL && (r = inflate_start(f)) != PMD_OK)
		return r;
	z = f->z;
	/* Never more room than one byte past the limit. */
	if (f->limit && room > f->limit + 1 - f->total)
		room = (size_t)(f->limit + 1 - f->total);
	if (room > UINT32_MAX)
		room = UINT32_MAX;
	z->next_out = out;
	z->avail_out = (uInt)room;
	for (;;) {
		const uint8_t *src = NULL;
		size_t srclen = 0, used, made;
		uInt before = z->avail_out;
		int tail = 0;

		if (*inlen) {
			if (f->ended) {	/* after a BFINAL block: §7.2.3.4 */
				*in += *inlen;	/* puts a 00 there; ignored */
				*inlen = 0;
				break;
			}
			src = *in;
			srclen = *inlen > UINT32_MAX ? UINT32_MAX : *inlen;
		} else if (fin && !f->ended && f->ntail < 4) {
			src = sync_tail + f->ntail;
			srclen = 4u - f->ntail;
			tail = 1;
		}
		z->next_in = (Bytef *)(uintptr_t)src;
		z->avail_in = (uInt)srclen;
		r = inflate(z, Z_SYNC_FLUSH);
		used = srclen - z->avail_in;
		made = before - z->avail_out;
		if (tail)
			f->ntail = (uint8_t)(f->ntail + used);
		else {
			*in += used;
			*inlen -= used;
		}
		f->total += made;
		*outlen += made;
		if (f->limit && f->total > f->limit)
			return inflate_fail(f, PMD_ERR_TOO_BIG);
		if (r == Z_STREAM_END)
			f->ended = 1;
		else if (r == Z_MEM_ERROR)
			return inflate_fail(f, PMD_ERR_NOMEM);
		else if (r != Z_OK && r != Z_BUF_ERROR)
			return inflate_fail(f, PMD_ERR_DATA);
		if (z->avail_out == 0)
			return PMD_AGAIN;
		if (used == 0 && made == 0)
			break;
		/* zlib forgets this on a call without input: keep it */
		f->boundary = (z->data_type & 128) != 0;
	}
	if (*inlen != 0)
		return PMD_AGAIN;	/* not reached: zlib took all it could */
	if (!fin)
		return PMD_OK;
	/* All input and the tail taken, output room left: the message must
	 * end on a block boundary. */
	if (!f->ended && !f->boundary)
		return inflate_fail(f, PMD_ERR_DATA);
	return inflate_done(f);
}
