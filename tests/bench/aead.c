/*
 * aead.c - how fast GnuTLS seals 16 KiB TLS records on this machine.
 *
 *	aead [SECONDS]
 *
 * Prints one JSON line: GB/s (10^9 bytes of plaintext per second, one
 * core) for each AEAD a TLS session here may negotiate, sealing 16 KiB
 * records as the record layer does (gnutls_aead_cipher_encrypt, 12-byte
 * nonce, 16-byte tag).  run.py turns this into the ceiling the cipher
 * alone puts on wss/ws: every echoed byte is sealed and opened twice
 * (client -> server, server -> client), and opening costs what sealing
 * does.  Bounded: SECONDS (default 0.5) per cipher.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REC 16384

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double speed(gnutls_cipher_algorithm_t alg, double secs)
{
	static unsigned char in[REC], out[REC + 64], key[32], nonce[12];
	gnutls_aead_cipher_hd_t h;
	gnutls_datum_t k = { key, (unsigned)gnutls_cipher_get_key_size(alg) };
	double t0, t;
	long n = 0;

	memset(in, 0x5a, sizeof(in));
	if (gnutls_aead_cipher_init(&h, alg, &k) < 0)
		return 0;
	t0 = now();
	do {
		for (int i = 0; i < 64; i++) {
			size_t olen = sizeof(out);

			nonce[0] = (unsigned char)n;
			if (gnutls_aead_cipher_encrypt(h, nonce, sizeof(nonce),
			    NULL, 0, 16, in, REC, out, &olen) < 0) {
				gnutls_aead_cipher_deinit(h);
				return 0;
			}
			n++;
		}
		t = now() - t0;
	} while (t < secs && n < 100000000L);
	gnutls_aead_cipher_deinit(h);
	return (double)n * REC / t / 1e9;
}

int main(int argc, char **argv)
{
	static const gnutls_cipher_algorithm_t algs[] = {
		GNUTLS_CIPHER_AES_128_GCM, GNUTLS_CIPHER_AES_256_GCM,
		GNUTLS_CIPHER_CHACHA20_POLY1305,
	};
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	size_t i;

	if (secs <= 0 || secs > 10) {
		fprintf(stderr, "usage: aead [SECONDS (0-10]]\n");
		return 2;
	}
	printf("{\"workload\":\"aead\",\"record\":%d", REC);
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		printf(",\"%s\":%.3f", gnutls_cipher_get_name(algs[i]),
		    speed(algs[i], secs));
	printf("}\n");
	return 0;
}
