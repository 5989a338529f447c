/*
 * fuzz_ws.c - the RFC 6455 decoder (server and client roles) on arbitrary
 * bytes, in chunks whose sizes come from the input; every event must point
 * inside the buffer or the control buffer, and errors must be close codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size, int server)
{
	ws_decoder d;
	uint8_t *buf = malloc(size ? size : 1);
	size_t off = 0;

	if (buf == NULL)
		return;
	memcpy(buf, data, size);
	ws_decoder_init(&d, server, 1 << 16);
	while (off < size) {
		ws_event ev;
		size_t chunk = 1 + (buf[off] & 0x3f);
		ssize_t r;

		if (chunk > size - off)
			chunk = size - off;
		r = ws_decode(&d, buf + off, chunk, 1 + (data[off] & 0xff),
		    &ev);
		if (r < 0) {
			if (r != -WS_CLOSE_PROTOCOL && r != -WS_CLOSE_BAD_DATA &&
			    r != -WS_CLOSE_TOO_BIG)
				abort();
			break;
		}
		if ((size_t)r > chunk)
			abort();
		if (ev.type == WS_EV_DATA && ev.len &&
		    (ev.data < buf || ev.data + ev.len > buf + size))
			abort();
		if (r == 0 && ev.type == WS_EV_NONE)
			off += chunk;   /* decoder wants more: skip on */
		off += (size_t)r;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, 1);
	run(data, size, 0);
	return 0;
}
