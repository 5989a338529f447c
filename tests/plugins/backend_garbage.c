/*
 * backend_garbage.c - a broken backend for the tests.  Option mode:
 *   badpeer    answers a peer that is not a URI        (core: 500)
 *   badstatus  answers status 99                       (core: 500)
 *   badframing answers an unknown framing              (core: 500)
 *   error      query returns WSY_ERROR                 (core: 500)
 *   silent     never answers                (core: 503 at the deadline)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/websocksy_plugin.h"

struct garbage {
	const wsy_host *host;
	char mode[32];
};

static void *g_init(const wsy_host *host, char *err, size_t errlen)
{
	struct garbage *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->host = host;
	strcpy(g->mode, "badpeer");
	return g;
}

static int g_configure(void *st, const char *key, const char *value,
    char *err, size_t errlen)
{
	struct garbage *g = st;

	if (strcmp(key, "mode") != 0 || strlen(value) >= sizeof(g->mode)) {
		snprintf(err, errlen, "only mode=badpeer|badstatus|"
		    "badframing|error|silent");
		return WSY_ERROR;
	}
	strcpy(g->mode, value);
	return WSY_OK;
}

static int g_query(void *st, const wsy_request *req, uint64_t qid)
{
	struct garbage *g = st;
	wsy_answer a;

	(void)req;
	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	if (strcmp(g->mode, "error") == 0)
		return WSY_ERROR;
	if (strcmp(g->mode, "silent") == 0)
		return WSY_PENDING;
	if (strcmp(g->mode, "badstatus") == 0) {
		a.status = 99;
	} else if (strcmp(g->mode, "badframing") == 0) {
		a.peer = "tcp://127.0.0.1:9";
		a.framing = "no-such-framing";
	} else {
		a.peer = "this is not a uri";
	}
	g->host->answer(qid, &a);
	return WSY_OK;
}

static void g_cleanup(void *st)
{
	free(st);
}

static const wsy_backend_ops ops = {
	.init = g_init,
	.configure = g_configure,
	.query = g_query,
	.cleanup = g_cleanup,
};

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_BACKEND,
	.name = "garbage",
	.ops_size = sizeof(ops),
	.ops = &ops,
};
