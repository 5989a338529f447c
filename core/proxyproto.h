/*
 * proxyproto.h - the PROXY protocol header (haproxy's proxy-protocol.txt),
 * versions 1 (text) and 2 (binary): what a load balancer in front of us
 * (haproxy `send-proxy-v2`, nginx `proxy_protocol on`, a CDN) writes before
 * the connection's own bytes to tell the real client's address.
 * Layer: bottom (no loop, no allocation); the caller owns the buffer.
 *
 * The parser is incremental: give it what has arrived so far, from the
 * first byte of the connection; it says "need more", "done, N bytes of
 * header", or "not a valid header" with a reason.  It never reads past the
 * header and is bounded: a v1 line is at most 107 bytes (the spec's
 * limit), a v2 header at most the caller's max (16 bytes + address block
 * + TLVs).
 *
 * Not wired into the server yet (issue 15: `proxy-protocol = on` on the
 * listeners, `peer-proxy-protocol` for peers).
 */
#ifndef WSY_PROXYPROTO_H
#define WSY_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107        /* "PROXY ... \r\n", CRLF included */
#define PROXY_V2_HDR 16         /* signature, ver/cmd, fam, len */
#define PROXY_V2_MAX_DEFAULT 1024

enum proxy_cmd {
	PROXY_CMD_LOCAL = 0,    /* the balancer's own (health check): no
	                         * client address, use the socket's */
	PROXY_CMD_PROXY = 1,    /* a relayed connection: addresses given */
};

typedef struct proxy_hdr {
	int version;                    /* 1 or 2 */
	int cmd;                        /* PROXY_CMD_* */
	int known;                      /* 1: src/dst hold addresses (TCP or
	                                 * UDP over IPv4/IPv6); 0: UNKNOWN,
	                                 * UNSPEC, unix or LOCAL */
	int stream;                     /* v2: 1 STREAM, 2 DGRAM, 0 unspec */
	struct sockaddr_storage src, dst;
	socklen_t srclen, dstlen;
	const uint8_t *tlv;             /* v2: the TLVs, in the caller's buffer */
	size_t tlvlen;
} proxy_hdr;

/* Parse the start of a connection.  Returns the header's length (> 0) and
 * fills h when the header is complete; 0 when more bytes are needed; -1
 * with a reason in *why (a static string) when the bytes cannot be a
 * PROXY header, or are one that is malformed, truncated at v2max or not
 * one we accept.  v2max bounds a v2 header (0: PROXY_V2_MAX_DEFAULT). */
int proxy_parse(const uint8_t *buf, size_t len, size_t v2max, proxy_hdr *h,
    const char **why);

/* Look up a v2 TLV of the given type; returns its value and length, or
 * NULL if absent (or the TLV area is malformed). */
const uint8_t *proxy_tlv(const proxy_hdr *h, uint8_t type, size_t *len);

/* Write a v2 header (PROXY, STREAM) for src -> dst into out (at least
 * PROXY_V2_HDR + 36 bytes); LOCAL if either is not IPv4/IPv6 or they
 * differ in family.  Returns its length. */
size_t proxy_write_v2(const struct sockaddr *src, const struct sockaddr *dst,
    uint8_t *out, size_t outlen);

/* The same as a v1 line ("PROXY TCP4 ... \r\n", or "PROXY UNKNOWN\r\n");
 * returns its length, or 0 if out is too small (PROXY_V1_MAX is enough). */
size_t proxy_write_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char *out, size_t outlen);

#endif
