/*
 * fuzz_framing_separator.c - the built-in "separator" framing under the
 * core's calling convention (fuzz_sim.h), with the separator config taken
 * from the input and vetted by framing_builtin_check() first, as the core
 * does at start-up.  A frame the framing cuts must end with the
 * separator and hold no earlier occurrence of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/framing.h"
#include "fuzz_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t sep[FS_MAX_CONFIG];
static size_t seplen;

static int hex(int c)
{
	static const char lo[] = "0123456789abcdef", up[] = "ABCDEF";
	const char *p;

	if (c == '\0')
		return -1;
	if ((p = strchr(lo, c)) != NULL)
		return (int)(p - lo);
	if ((p = strchr(up, c)) != NULL)
		return 10 + (int)(p - up);
	return -1;
}

/* The separator config decoded independently of core/framing.c. */
static int decode(const char *c)
{
	int h, l;

	for (seplen = 0; *c; c++) {
		if (*c != '\\') {
			sep[seplen++] = (uint8_t)*c;
			continue;
		}
		switch (*++c) {
		case 'r': sep[seplen++] = '\r'; break;
		case 't': sep[seplen++] = '\t'; break;
		case 'n': sep[seplen++] = '\n'; break;
		case '0': sep[seplen++] = '\0'; break;
		case 'f': sep[seplen++] = '\f'; break;
		case '\\': sep[seplen++] = '\\'; break;
		case 'x':
			if ((h = hex(c[1])) < 0 || (l = hex(c[2])) < 0)
				return -1;
			sep[seplen++] = (uint8_t)(h << 4 | l);
			c += 2;
			break;
		default:
			return -1;
		}
	}
	return seplen > 0 ? 0 : -1;
}

static void check_sep(const uint8_t *frame, size_t n, int op, int flushed,
    const char *config)
{
	size_t i;

	(void)op;
	(void)config;
	if (n == 0)
		abort();
	if (flushed)
		return;
	if (n < seplen || memcmp(frame + n - seplen, sep, seplen) != 0)
		abort();
	for (i = 0; i + seplen < n; i++)
		if (memcmp(frame + i, sep, seplen) == 0)
			abort();
	if (op == WSY_OP_TEXT && !fs_valid_utf8(frame, n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_input x;
	char err[256];
	int ok;

	if (fs_split(data, size, 1, "\\r\\n", &x) < 0)
		return 0;
	ok = framing_builtin_check("separator", x.config, err,
	    sizeof(err)) == 0;
	/* hex digits: the core takes upper case too, so does decode() */
	if (ok != (decode(x.config) == 0))
		abort();
	if (!ok)
		return 0;
	if (fs_run(framing_builtin("separator"), NULL, &x, check_sep) != 0)
		abort();        /* a vetted separator never fails */
	return 0;
}
