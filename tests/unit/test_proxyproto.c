/*
 * test_proxyproto.c - PROXY protocol v1/v2: every form the spec gives,
 * fed whole and one byte at a time (incremental), LOCAL and UNKNOWN,
 * truncated, garbage, over-long, bad addresses and ports, TLVs, and the
 * writers read back by the parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../core/proxyproto.h"
#include "test.h"

/* Feed buf one byte more at a time: 0 until complete, then the length. */
static int incremental(const uint8_t *buf, size_t len, size_t v2max,
    proxy_hdr *h, const char **why)
{
	size_t i;
	int r = 0;

	for (i = 1; i <= len; i++) {
		r = proxy_parse(buf, i, v2max, h, why);
		if (r != 0)
			return i == len || r < 0 ? r : -100 - (int)i;
	}
	return r;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ?
	    ntohs(((const struct sockaddr_in *)ss)->sin_port) :
	    ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *addr_of(const struct sockaddr_storage *ss, char *b)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    b, INET6_ADDRSTRLEN);
	else
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, b,
		    INET6_ADDRSTRLEN);
	return b;
}

static void test_v1(void)
{
	static const char l4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET";
	static const char l6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
	proxy_hdr h;
	const char *why;
	char b[INET6_ADDRSTRLEN];
	int hl = (int)strlen(l4) - 3;

	CHECK_EQ(proxy_parse((const uint8_t *)l4, strlen(l4), 0, &h, &why), hl);
	CHECK_EQ(h.version, 1);
	CHECK_EQ(h.known, 1);
	CHECK(strcmp(addr_of(&h.src, b), "192.0.2.1") == 0);
	CHECK(strcmp(addr_of(&h.dst, b), "198.51.100.2") == 0);
	CHECK_EQ(port_of(&h.src), 56324);
	CHECK_EQ(port_of(&h.dst), 443);
	CHECK_EQ(incremental((const uint8_t *)l4, (size_t)hl, 0, &h, &why), hl);
	CHECK_EQ(proxy_parse((const uint8_t *)l6, strlen(l6), 0, &h, &why),
	    (int)strlen(l6));
	CHECK(strcmp(addr_of(&h.src, b), "2001:db8::1") == 0);
	CHECK_EQ(port_of(&h.dst), 65535);
	CHECK_EQ(proxy_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, 0, &h,
	    &why), 15);
	CHECK_EQ(h.known, 0);
	CHECK_EQ(proxy_parse((const uint8_t *)
	    "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 35, 0, &h, &why), 35);
	CHECK_EQ(h.known, 0);
}

static void test_v1_bad(void)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n",
		"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
		"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
		"PROXY \r\n",
		"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
		"PROXz TCP4",
		"GET / HTTP/1.1\r\n",
		"\x16\x03\x01",
	};
	char longline[200];
	proxy_hdr h;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		CHECK_EQ(proxy_parse((const uint8_t *)bad[i], strlen(bad[i]), 0,
		    &h, &why), -1);
		CHECK(why != NULL);
	}
	/* No CRLF within 107 bytes: refused at 107, not before. */
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "PROXY UNKNOWN ", 14);
	CHECK_EQ(proxy_parse((const uint8_t *)longline, 106, 0, &h, &why), 0);
	CHECK_EQ(proxy_parse((const uint8_t *)longline, 107, 0, &h, &why), -1);
	/* A full 107-byte line is fine. */
	longline[105] = '\r';
	longline[106] = '\n';
	CHECK_EQ(proxy_parse((const uint8_t *)longline, 120, 0, &h, &why), 107);
	/* Truncated: need more, not an error. */
	CHECK_EQ(proxy_parse((const uint8_t *)"PRO", 3, 0, &h, &why), 0);
	CHECK_EQ(proxy_parse((const uint8_t *)"PROXY TCP4 1.2", 14, 0, &h,
	    &why), 0);
	CHECK_EQ(proxy_parse((const uint8_t *)"", 0, 0, &h, &why), 0);
}

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static size_t v2(uint8_t *out, uint8_t vc, uint8_t fam, const uint8_t *body,
    size_t n)
{
	memcpy(out, sig, 12);
	out[12] = vc;
	out[13] = fam;
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
	if (n)
		memcpy(out + 16, body, n);
	return 16 + n;
}

static void test_v2(void)
{
	static const uint8_t a4[] = { 192, 0, 2, 1, 198, 51, 100, 2,
	    0xdc, 0x04, 0x01, 0xbb,
	    0x01, 0x00, 0x02, 'h', '2',            /* ALPN "h2" */
	    0x04, 0x00, 0x00 };                    /* NOOP, empty */
	uint8_t a6[36], buf[300], big[2100];
	proxy_hdr h;
	const char *why;
	const uint8_t *v;
	size_t n, vl;
	char b[INET6_ADDRSTRLEN];

	n = v2(buf, 0x21, 0x11, a4, sizeof(a4));
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), (int)n);
	CHECK_EQ(h.version, 2);
	CHECK_EQ(h.cmd, PROXY_CMD_PROXY);
	CHECK_EQ(h.known, 1);
	CHECK_EQ(h.stream, 1);
	CHECK(strcmp(addr_of(&h.src, b), "192.0.2.1") == 0);
	CHECK_EQ(port_of(&h.src), 56324);
	CHECK_EQ(port_of(&h.dst), 443);
	v = proxy_tlv(&h, 0x01, &vl);
	CHECK(v != NULL && vl == 2 && memcmp(v, "h2", 2) == 0);
	CHECK(proxy_tlv(&h, 0x02, &vl) == NULL);
	CHECK_EQ(incremental(buf, n, 0, &h, &why), (int)n);
	/* Followed by the connection's own bytes: only the header counts. */
	memcpy(buf + n, "GET /", 5);
	CHECK_EQ(proxy_parse(buf, n + 5, 0, &h, &why), (int)n);

	memset(a6, 0, sizeof(a6));
	a6[0] = 0x20; a6[1] = 0x01; a6[15] = 1;
	a6[16] = 0x20; a6[17] = 0x01; a6[31] = 2;
	a6[32] = 0x12; a6[33] = 0x34; a6[34] = 0; a6[35] = 80;
	n = v2(buf, 0x21, 0x21, a6, sizeof(a6));
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), (int)n);
	CHECK(strcmp(addr_of(&h.src, b), "2001::1") == 0);
	CHECK_EQ(port_of(&h.src), 0x1234);
	CHECK_EQ(port_of(&h.dst), 80);

	/* LOCAL (a health check): accepted, no address, whatever follows. */
	n = v2(buf, 0x20, 0x00, NULL, 0);
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), 16);
	CHECK_EQ(h.cmd, PROXY_CMD_LOCAL);
	CHECK_EQ(h.known, 0);
	n = v2(buf, 0x20, 0x11, a4, 12);
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), 28);
	CHECK_EQ(h.known, 0);
	/* UNSPEC and unix families: accepted, no address taken. */
	n = v2(buf, 0x21, 0x00, NULL, 0);
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), 16);
	CHECK_EQ(h.known, 0);
	memset(big, 'u', 216);
	n = v2(buf, 0x21, 0x31, big, 216);
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), (int)n);
	CHECK_EQ(h.known, 0);
	/* UDP over IPv4: an address, not a stream. */
	n = v2(buf, 0x21, 0x12, a4, 12);
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), 28);
	CHECK_EQ(h.stream, 2);
}

static void test_v2_bad(void)
{
	static const uint8_t a4[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
	static const uint8_t badtlv[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2,
	    0x01, 0x00, 0x05, 'h' };
	uint8_t buf[2200], body[2100];
	proxy_hdr h;
	const char *why;
	size_t n;

	n = v2(buf, 0x11, 0x11, a4, 12);                 /* version 1 */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	n = v2(buf, 0x22, 0x11, a4, 12);                 /* command 2 */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	n = v2(buf, 0x21, 0x41, a4, 12);                 /* family 4 */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	n = v2(buf, 0x21, 0x13, a4, 12);                 /* transport 3 */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	n = v2(buf, 0x21, 0x21, a4, 12);                 /* INET6, 12 bytes */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	n = v2(buf, 0x21, 0x11, badtlv, sizeof(badtlv)); /* TLV overruns */
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	CHECK(why != NULL && strstr(why, "TLV") != NULL);
	/* Longer than allowed: refused as soon as the length is known. */
	memset(body, 0, sizeof(body));
	n = v2(buf, 0x21, 0x11, body, 2000);
	CHECK_EQ(proxy_parse(buf, 16, 0, &h, &why), -1);
	CHECK_EQ(proxy_parse(buf, n, 4096, &h, &why), -1);  /* TLV zeros */
	/* Truncated: need more. */
	n = v2(buf, 0x21, 0x11, a4, 12);
	CHECK_EQ(proxy_parse(buf, 5, 0, &h, &why), 0);
	CHECK_EQ(proxy_parse(buf, 15, 0, &h, &why), 0);
	CHECK_EQ(proxy_parse(buf, n - 1, 0, &h, &why), 0);
	/* A wrong byte in the signature. */
	buf[7] = 0x52;
	CHECK_EQ(proxy_parse(buf, n, 0, &h, &why), -1);
	buf[7] = 0x51;
	buf[0] = 0x0d;
	CHECK_EQ(proxy_parse(buf, 1, 0, &h, &why), 0);
}

static void test_write(void)
{
	struct sockaddr_in s4, d4;
	struct sockaddr_in6 s6, d6, m6;
	uint8_t out[64];
	char line[PROXY_V1_MAX + 1];
	proxy_hdr h;
	const char *why;
	size_t n;

	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(40000);
	inet_pton(AF_INET, "203.0.113.7", &s4.sin_addr);
	d4 = s4;
	d4.sin_port = htons(8001);
	inet_pton(AF_INET, "127.0.0.1", &d4.sin_addr);
	n = proxy_write_v2((struct sockaddr *)&s4, (struct sockaddr *)&d4,
	    out, sizeof(out));
	CHECK_EQ(n, 28);
	CHECK_EQ(proxy_parse(out, n, 0, &h, &why), 28);
	CHECK_EQ(h.known, 1);
	CHECK_EQ(port_of(&h.src), 40000);
	n = proxy_write_v1((struct sockaddr *)&s4, (struct sockaddr *)&d4,
	    line, sizeof(line));
	CHECK(strcmp(line, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8001\r\n")
	    == 0);
	CHECK_EQ(proxy_parse((uint8_t *)line, n, 0, &h, &why), (int)n);

	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(1);
	inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
	d6 = s6;
	inet_pton(AF_INET6, "::1", &d6.sin6_addr);
	n = proxy_write_v2((struct sockaddr *)&s6, (struct sockaddr *)&d6,
	    out, sizeof(out));
	CHECK_EQ(n, 52);
	CHECK_EQ(proxy_parse(out, n, 0, &h, &why), 52);
	n = proxy_write_v1((struct sockaddr *)&s6, (struct sockaddr *)&d6,
	    line, sizeof(line));
	CHECK(strcmp(line, "PROXY TCP6 2001:db8::7 ::1 1 1\r\n") == 0);

	/* A v4-mapped client on a dual-stack listener is written as TCP4;
	 * mixed families are LOCAL / UNKNOWN. */
	m6 = s6;
	inet_pton(AF_INET6, "::ffff:203.0.113.7", &m6.sin6_addr);
	n = proxy_write_v1((struct sockaddr *)&m6, (struct sockaddr *)&d4,
	    line, sizeof(line));
	CHECK(strncmp(line, "PROXY TCP4 203.0.113.7 ", 23) == 0);
	n = proxy_write_v2((struct sockaddr *)&s6, (struct sockaddr *)&d4,
	    out, sizeof(out));
	CHECK_EQ(n, 16);
	CHECK_EQ(out[12], 0x20);
	n = proxy_write_v1((struct sockaddr *)&s6, (struct sockaddr *)&d4,
	    line, sizeof(line));
	CHECK(strcmp(line, "PROXY UNKNOWN\r\n") == 0);
	CHECK_EQ(proxy_write_v1((struct sockaddr *)&s4, (struct sockaddr *)&d4,
	    line, 10), 0);
}

int main(void)
{
	test_v1();
	test_v1_bad();
	test_v2();
	test_v2_bad();
	test_write();
	return test_summary("proxyproto");
}
