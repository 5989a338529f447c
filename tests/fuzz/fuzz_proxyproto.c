/*
 * fuzz_proxyproto.c - the PROXY header parser on arbitrary bytes: whatever
 * it answers for the whole input it must answer for every longer prefix
 * once it has answered for a shorter one (incremental and stable), a
 * header never ends past the input, a parsed address is written back (v2
 * and v1) and read again the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proxy_hdr h, h2;
	const char *why;
	size_t i, first = 0, vl;
	int r, settled = 0;
	uint8_t out[64];
	char line[PROXY_V1_MAX + 1];

	for (i = 0; i <= size; i++) {
		r = proxy_parse(data, i, 512, &h, &why);
		if (r < -1 || (r > 0 && (size_t)r > i))
			abort();
		if (r < 0 && why == NULL)
			abort();
		if (r != 0 && !first) {
			first = i;
			settled = r;
		} else if (first && r != settled) {
			abort();         /* answered, then changed its mind */
		}
	}
	if (settled > 0) {
		r = proxy_parse(data, size, 512, &h, &why);
		if (h.tlv)
			(void)proxy_tlv(&h, data[0], &vl);
		if (h.known) {
			size_t n = proxy_write_v2((struct sockaddr *)&h.src,
			    (struct sockaddr *)&h.dst, out, sizeof(out));
			/* PROXY when both are of one family (a v4-mapped
			 * address counts as IPv4), else LOCAL. */
			if (proxy_parse(out, n, 0, &h2, &why) != (int)n ||
			    h2.known != (out[12] == 0x21))
				abort();
			if (h2.known && h.src.ss_family == h2.src.ss_family &&
			    memcmp(&h2.src, &h.src, h.srclen) != 0)
				abort();
			n = proxy_write_v1((struct sockaddr *)&h.src,
			    (struct sockaddr *)&h.dst, line, sizeof(line));
			if (n == 0 || proxy_parse((uint8_t *)line, n, 0, &h2,
			    &why) != (int)n || h2.known != (out[12] == 0x21))
				abort();
		}
	}
	return 0;
}
