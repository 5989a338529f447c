/*
 * driver.c - runs a fuzz target over files (a corpus) without libFuzzer,
 * so the corpus is a regression test under gcc's ASan+UBSan in make test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *b;
		long len;

		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		b = malloc(len > 0 ? (size_t)len : 1);
		if (b == NULL || fread(b, 1, (size_t)len, f) != (size_t)len) {
			fprintf(stderr, "%s: read error\n", argv[i]);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(b, (size_t)len);
		free(b);
		n++;
	}
	printf("%s: %d inputs replayed, 0 failed\n", argv[0], n);
	return 0;
}
