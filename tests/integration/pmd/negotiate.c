/*
 * negotiate.c - a command-line face of core/pmd.c's negotiation for
 * test_pmd_negotiation.py (which builds it with core/pmd.c and -lz):
 *   negotiate o W M T          our client offer
 *   negotiate s OFFER W M T    our server's answer, or NONE
 *   negotiate c ANSWER W M T   our client's check: 1, 0 or -1 and why
 * W M T: deflate-window-bits, deflate-mem-level, deflate-context-takeover.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmd.h"

int main(int argc, char **argv)
{
	pmd_config c;
	char a[PMD_ANSWER_MAX];
	pmd_params p;
	const char *v[1], *err;
	size_t l[1];
	int r;

	if (argc < 5 || (argv[1][0] != 'o' && argc < 6)) {
		fprintf(stderr, "usage: negotiate o|s|c [VALUE] W M T\n");
		return 2;
	}
	c.window_bits = atoi(argv[argc - 3]);
	c.mem_level = atoi(argv[argc - 2]);
	c.context_takeover = atoi(argv[argc - 1]);
	if (argv[1][0] == 'o')
		return pmd_client_offer(&c, a, sizeof(a)) < 0 || !puts(a);
	v[0] = argv[2];
	l[0] = strlen(argv[2]);
	if (argv[1][0] == 's') {
		if (pmd_server_choose(&c, v, l, 1, &p) != 1)
			return puts("NONE") < 0;
		return pmd_answer(&p, a, sizeof(a)) < 0 || !puts(a);
	}
	r = pmd_client_check(&c, v, l, 1, &p, &err);
	printf("%d %s\n", r, err ? err : "");
	return 0;
}
