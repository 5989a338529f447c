/*
 * kcpserve.c - placeholder until the KCP listener lands: refuses a
 * kcp-listen configuration clearly instead of ignoring it.
 */
#include <stdio.h>

#include "kcpserve.h"

int kcpserve_start(const wsy_config *cfg)
{
	if (cfg->kcp_listen[0] == '\0')
		return 0;
	fprintf(stderr, "kcp-listen: not available in this build\n");
	return -1;
}

void kcpserve_shutdown(void)
{
}

void kcpserve_cleanup(void)
{
}

size_t kcpserve_sessions(void)
{
	return 0;
}
