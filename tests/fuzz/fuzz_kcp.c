/*
 * fuzz_kcp.c - the KCP ARQ (core/kcp.h) fed arbitrary datagrams: each
 * kcp_input is followed by kcp_flush at an input-driven clock, reads of
 * what became deliverable and sometimes sends, in stream or message mode
 * with small or default windows.  Every datagram out fits the MTU and
 * memory stays within what the windows allow.
 *
 * Input: byte 0 = options, then datagrams, each a 2-byte length (big
 * endian, cut to what is left) and a 1-byte clock step before it.  The
 * conversation id is taken from the first datagram so segments match.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/kcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* every byte handed out is read, so ASan checks it */
static volatile uint8_t sink;

static unsigned mtu;

static int out(const uint8_t *d, size_t len, void *arg)
{
	size_t i;

	(void)arg;
	if (len < KCP_OVERHEAD || len > mtu)
		abort();
	for (i = 0; i < len; i++)
		sink ^= d[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rbuf[70000], sbuf[3000];
	kcp_opts o;
	kcp_stat st;
	kcp *k;
	uint64_t now = 0;
	size_t off = 1, n;
	uint8_t f;
	int r;

	if (size < 1)
		return 0;
	f = data[0];
	kcp_opts_default(&o);
	o.stream = f & 1;
	if (f & 2) {
		o.snd_wnd = 4;
		o.rcv_wnd = 4;
	}
	o.mtu = f & 4 ? 100 : 1400;
	o.nodelay = (f & 8) != 0;
	o.nocwnd = (f & 16) != 0;
	o.resend = f >> 5 & 3;
	o.interval = f & 128 ? 1 : 10;
	mtu = o.mtu;
	k = kcp_new(size > 4 ? kcp_conv_of(data + 4, size - 4) : 0, &o, out,
	    NULL);
	if (k == NULL)
		return 0;
	while (off + 3 <= size) {
		now += data[off] * 7u;
		n = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (n > size - off)
			n = size - off;
		r = kcp_input(k, data + off, n, now);
		if (r < -2)
			abort();
		off += n;
		kcp_flush(k, now);
		while (kcp_readable(k) > 0) {
			ssize_t g = kcp_recv(k, rbuf, sizeof(rbuf));
			if (g <= 0)
				break;
		}
		if (data[off - 1] & 1) {
			n = kcp_writable(k);
			if (n > sizeof(sbuf))
				n = sizeof(sbuf);
			if (n > 0)
				kcp_send(k, sbuf, n);
		}
		kcp_stats(k, &st);
		if (st.rcv_buf > o.rcv_wnd || st.rcv_queue > o.rcv_wnd)
			abort();
		(void)kcp_next(k, now);
	}
	kcp_flush(k, now + 5000);
	kcp_free(k);
	return 0;
}
