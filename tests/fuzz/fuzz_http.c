/*
 * fuzz_http.c - the HTTP upgrade parser and validation on arbitrary bytes,
 * whole and fed in two parts, with small limits so they trigger too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static http_req r;
	http_limits lim = { 256, 1024, 16 };
	char *buf = malloc(size ? size : 1);
	ssize_t n = HTTP_AGAIN;
	size_t cut = size ? data[0] % (size + 1) : 0, i;
	char key[29];

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	http_req_init(&r);
	if (cut)
		n = http_parse(&r, buf, cut, &lim);
	if (n == HTTP_AGAIN)
		n = http_parse(&r, buf, size, &lim);
	if (n > 0) {
		if (http_ws_validate(&r, buf) == 0) {
			int k = http_find(&r, buf, "Sec-WebSocket-Key");
			if (k >= 0)
				http_ws_accept(buf + r.hvalue[k].off,
				    r.hvalue[k].len, key);
		}
		http_has_token(&r, buf, "Connection", "upgrade");
		for (i = 0; i < r.n_headers; i++)
			if (r.hvalue[i].off + r.hvalue[i].len > (size_t)n)
				abort();
		{
			char path[512];
			http_unescape(buf + r.path.off, r.path.len, path,
			    sizeof(path));
		}
	}
	free(buf);
	return 0;
}
