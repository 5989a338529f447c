/*
 * proxyproto.c - PROXY protocol v1 and v2 headers: parse and write.
 * Facts from haproxy's doc/proxy-protocol.txt; see proxyproto.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyproto.h"

static const uint8_t v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define FAIL(s) do { *why = (s); return -1; } while (0)

/* ---- v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ---- */

/* The next space-terminated token of [*p, end), moved past its space (or
 * to end); NULL if empty. */
static const char *token(const char **p, const char *end, size_t *n)
{
	const char *s = *p, *e = s;

	while (e < end && *e != ' ')
		e++;
	*n = (size_t)(e - s);
	*p = e < end ? e + 1 : e;
	return *n ? s : NULL;
}

static int v1_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;
	size_t i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int v1_addr(int af, const char *s, size_t n, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	char a[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(a))
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, a, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, a, &in6->sin6_addr) != 1)
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
	}
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, proxy_hdr *h,
    const char **why)
{
	const char *s = (const char *)buf, *p, *end, *t[6];
	size_t n[6], i, lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	uint16_t sport, dport;
	int af;

	for (i = 0; i < lim && buf[i] != '\n'; i++)
		if (buf[i] < 0x20 && buf[i] != '\r')
			FAIL("v1: control byte in the line");
	if (i == lim)
		return len >= PROXY_V1_MAX ? (*why = "v1: line longer than "
		    "107 bytes", -1) : 0;
	if (i == 0 || buf[i - 1] != '\r')
		FAIL("v1: line not ended by CRLF");
	end = s + i - 1;
	p = s;
	memset(h, 0, sizeof(*h));
	h->version = 1;
	h->cmd = PROXY_CMD_PROXY;
	for (i = 0; i < 6; i++)
		t[i] = token(&p, end, &n[i]);
	if (t[0] == NULL || n[0] != 5 || memcmp(t[0], "PROXY", 5) != 0 ||
	    t[1] == NULL)
		FAIL("v1: not PROXY TCP4|TCP6|UNKNOWN");
	if (n[1] == 7 && memcmp(t[1], "UNKNOWN", 7) == 0)
		return (int)(end - s) + 2;      /* the rest is ignored */
	if (n[1] == 4 && memcmp(t[1], "TCP4", 4) == 0)
		af = AF_INET;
	else if (n[1] == 4 && memcmp(t[1], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		FAIL("v1: not PROXY TCP4|TCP6|UNKNOWN");
	if (t[5] == NULL || p != end)
		FAIL("v1: want source, destination and both ports");
	if (v1_port(t[4], n[4], &sport) < 0 || v1_port(t[5], n[5], &dport) < 0)
		FAIL("v1: bad port");
	if (v1_addr(af, t[2], n[2], sport, &h->src, &h->srclen) < 0 ||
	    v1_addr(af, t[3], n[3], dport, &h->dst, &h->dstlen) < 0)
		FAIL("v1: bad address");
	h->known = 1;
	h->stream = 1;
	return (int)(end - s) + 2;
}

/* ---- v2: signature, ver/cmd, family, length, addresses, TLVs ---- */

static int tlvs_valid(const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t l;

		if (n < 3)
			return 0;
		l = (size_t)p[1] << 8 | p[2];
		if (l > n - 3)
			return 0;
		p += 3 + l;
		n -= 3 + l;
	}
	return 1;
}

static int parse_v2(const uint8_t *buf, size_t len, size_t v2max,
    proxy_hdr *h, const char **why)
{
	size_t body, total, alen = 0;
	int fam, proto;

	if (len < PROXY_V2_HDR)
		return 0;
	if ((buf[12] >> 4) != 2)
		FAIL("v2: version is not 2");
	if ((buf[12] & 0xf) > PROXY_CMD_PROXY)
		FAIL("v2: command is not LOCAL or PROXY");
	body = (size_t)buf[14] << 8 | buf[15];
	total = PROXY_V2_HDR + body;
	if (total > v2max)
		FAIL("v2: header longer than allowed");
	if (len < total)
		return 0;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	if (fam > 3 || proto > 2)
		FAIL("v2: unknown address family or transport");
	memset(h, 0, sizeof(*h));
	h->version = 2;
	h->cmd = buf[12] & 0xf;
	h->stream = proto;
	switch (fam) {
	case 1: alen = 12; break;
	case 2: alen = 36; break;
	case 3: alen = 216; break;
	}
	if (h->cmd == PROXY_CMD_LOCAL)
		return (int)total;      /* addresses, if any, are ignored */
	if (body < alen)
		FAIL("v2: address block shorter than its family");
	if (!tlvs_valid(buf + PROXY_V2_HDR + alen, body - alen))
		FAIL("v2: malformed TLV");
	h->tlv = buf + PROXY_V2_HDR + alen;
	h->tlvlen = body - alen;
	if (fam == 1 && proto != 0) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;
		const uint8_t *a = buf + PROXY_V2_HDR;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
		h->srclen = h->dstlen = sizeof(*s);
		h->known = 1;
	} else if (fam == 2 && proto != 0) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;
		const uint8_t *a = buf + PROXY_V2_HDR;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		h->srclen = h->dstlen = sizeof(*s);
		h->known = 1;
	}
	return (int)total;
}

int proxy_parse(const uint8_t *buf, size_t len, size_t v2max, proxy_hdr *h,
    const char **why)
{
	static const char v1sig[] = "PROXY ";
	size_t n;

	*why = NULL;
	if (v2max == 0)
		v2max = PROXY_V2_MAX_DEFAULT;
	if (v2max > PROXY_V2_HDR + 65535)
		v2max = PROXY_V2_HDR + 65535;
	if (len == 0)
		return 0;
	if (buf[0] == 'P') {
		n = len < 6 ? len : 6;
		if (memcmp(buf, v1sig, n) != 0)
			FAIL("no PROXY header");
		return n < 6 ? 0 : parse_v1(buf, len, h, why);
	}
	n = len < sizeof(v2sig) ? len : sizeof(v2sig);
	if (memcmp(buf, v2sig, n) != 0)
		FAIL("no PROXY header");
	return n < sizeof(v2sig) ? 0 : parse_v2(buf, len, v2max, h, why);
}

const uint8_t *proxy_tlv(const proxy_hdr *h, uint8_t type, size_t *len)
{
	const uint8_t *p = h->tlv;
	size_t n = h->tlvlen;

	while (p && n >= 3) {
		size_t l = (size_t)p[1] << 8 | p[2];

		if (l > n - 3)
			return NULL;
		if (p[0] == type) {
			*len = l;
			return p + 3;
		}
		p += 3 + l;
		n -= 3 + l;
	}
	return NULL;
}

/* ---- writing (peer-proxy-protocol) ---- */

/* IPv4-mapped IPv6 as IPv4, so a dual-stack listener writes TCP4. */
static int plain(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		memcpy(out, sa, sizeof(struct sockaddr_in));
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct sockaddr_in *in = (struct sockaddr_in *)out;

			in->sin_family = AF_INET;
			in->sin_port = s6->sin6_port;
			memcpy(&in->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, sa, sizeof(*s6));
		return AF_INET6;
	}
	return -1;
}

size_t proxy_write_v2(const struct sockaddr *src, const struct sockaddr *dst,
    uint8_t *out, size_t outlen)
{
	struct sockaddr_storage s, d;
	int fs = plain(src, &s), fd = plain(dst, &d);
	uint8_t *a = out + PROXY_V2_HDR;
	size_t alen;

	if (outlen < PROXY_V2_HDR + 36)
		return 0;
	memcpy(out, v2sig, sizeof(v2sig));
	if (fs < 0 || fs != fd) {
		out[12] = 0x20;                 /* v2, LOCAL */
		out[13] = 0x00;
		out[14] = out[15] = 0;
		return PROXY_V2_HDR;
	}
	out[12] = 0x21;                         /* v2, PROXY */
	if (fs == AF_INET) {
		const struct sockaddr_in *x = (struct sockaddr_in *)&s;
		const struct sockaddr_in *y = (struct sockaddr_in *)&d;

		out[13] = 0x11;                 /* INET, STREAM */
		memcpy(a, &x->sin_addr, 4);
		memcpy(a + 4, &y->sin_addr, 4);
		memcpy(a + 8, &x->sin_port, 2);
		memcpy(a + 10, &y->sin_port, 2);
		alen = 12;
	} else {
		const struct sockaddr_in6 *x = (struct sockaddr_in6 *)&s;
		const struct sockaddr_in6 *y = (struct sockaddr_in6 *)&d;

		out[13] = 0x21;                 /* INET6, STREAM */
		memcpy(a, &x->sin6_addr, 16);
		memcpy(a + 16, &y->sin6_addr, 16);
		memcpy(a + 32, &x->sin6_port, 2);
		memcpy(a + 34, &y->sin6_port, 2);
		alen = 36;
	}
	out[14] = 0;
	out[15] = (uint8_t)alen;
	return PROXY_V2_HDR + alen;
}

size_t proxy_write_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char *out, size_t outlen)
{
	struct sockaddr_storage s, d;
	int fs = plain(src, &s), fd = plain(dst, &d), n;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	unsigned ps, pd;

	if (fs < 0 || fs != fd) {
		n = snprintf(out, outlen, "PROXY UNKNOWN\r\n");
	} else if (fs == AF_INET) {
		struct sockaddr_in *x = (struct sockaddr_in *)&s;
		struct sockaddr_in *y = (struct sockaddr_in *)&d;

		inet_ntop(AF_INET, &x->sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &y->sin_addr, b, sizeof(b));
		ps = ntohs(x->sin_port);
		pd = ntohs(y->sin_port);
		n = snprintf(out, outlen, "PROXY TCP4 %s %s %u %u\r\n", a, b,
		    ps, pd);
	} else {
		struct sockaddr_in6 *x = (struct sockaddr_in6 *)&s;
		struct sockaddr_in6 *y = (struct sockaddr_in6 *)&d;

		inet_ntop(AF_INET6, &x->sin6_addr, a, sizeof(a));
		inet_ntop(AF_INET6, &y->sin6_addr, b, sizeof(b));
		ps = ntohs(x->sin6_port);
		pd = ntohs(y->sin6_port);
		n = snprintf(out, outlen, "PROXY TCP6 %s %s %u %u\r\n", a, b,
		    ps, pd);
	}
	return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}
