/*
 * static.c - the built-in static backend: every connection goes to one
 * peer.  Options, as the original websocksy documents them:
 *   host            host name or address (then port is required), or a
 *                   full peer URI (tcp://, udp://, unix://, unix-dgram://)
 *   port            TCP port for a plain host
 *   framing         framing name (default auto)
 *   framing-config  the framing's configuration string
 *   protocol        subprotocol to select if the client offers it;
 *                   "*" selects the first one the client offers
 * It is written against the public plugin ABI like any loadable backend.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/peer.h"
#include "../core/plugin.h"

struct static_be {
	const wsy_host *host;
	char hostname[300];
	char port[8];
	char framing[64];
	char framing_config[256];
	char protocol[128];
	char peer[400];
};

static void *st_init(const wsy_host *host, char *err, size_t errlen)
{
	struct static_be *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->host = host;
	strcpy(s->framing, "auto");
	return s;
}

static int copy(char *dst, size_t size, const char *v, char *err,
    size_t errlen)
{
	if (strlen(v) >= size) {
		snprintf(err, errlen, "value too long (max %zu)", size - 1);
		return WSY_ERROR;
	}
	strcpy(dst, v);
	return WSY_OK;
}

/* Check what can be checked per key now, so the error names the line. */
static int check_host(const char *v, char *err, size_t errlen)
{
	peer_uri u;

	if (*v == '\0') {
		snprintf(err, errlen, "empty host");
		return WSY_ERROR;
	}
	if (strstr(v, "://") && peer_uri_parse(v, "1", &u, err, errlen) < 0)
		return WSY_ERROR;
	return WSY_OK;
}

static int check_port(const char *v, char *err, size_t errlen)
{
	char *end;
	long p = strtol(v, &end, 10);

	if (*v < '0' || *v > '9' || *end || p < 1 || p > 65535) {
		snprintf(err, errlen, "'%s' is not a port (1-65535)", v);
		return WSY_ERROR;
	}
	return WSY_OK;
}

static int st_configure(void *st, const char *key, const char *value,
    char *err, size_t errlen)
{
	struct static_be *s = st;
	const wsy_framing_ops *fn;
	int trusted;

	if (strcmp(key, "host") == 0)
		return check_host(value, err, errlen) != WSY_OK ? WSY_ERROR :
		    copy(s->hostname, sizeof(s->hostname), value, err,
		    errlen);
	if (strcmp(key, "port") == 0)
		return check_port(value, err, errlen) != WSY_OK ? WSY_ERROR :
		    copy(s->port, sizeof(s->port), value, err, errlen);
	if (strcmp(key, "framing") == 0)
		return framing_resolve(value, NULL, &fn, &trusted, err,
		    errlen) < 0 ? WSY_ERROR : copy(s->framing,
		    sizeof(s->framing), value, err, errlen);
	if (strcmp(key, "framing-config") == 0)
		return copy(s->framing_config, sizeof(s->framing_config),
		    value, err, errlen);
	if (strcmp(key, "protocol") == 0)
		return copy(s->protocol, sizeof(s->protocol), value, err,
		    errlen);
	snprintf(err, errlen, "unknown key (host, port, framing, "
	    "framing-config, protocol)");
	return WSY_ERROR;
}

static int st_start(void *st, char *err, size_t errlen)
{
	struct static_be *s = st;
	const wsy_framing_ops *fn;
	peer_uri u;
	int trusted;

	if (s->hostname[0] == '\0') {
		snprintf(err, errlen, "host: required (a host name with "
		    "port, or a peer URI)");
		return WSY_ERROR;
	}
	if (strstr(s->hostname, "://"))
		snprintf(s->peer, sizeof(s->peer), "%s", s->hostname);
	else if (strchr(s->hostname, ':') && s->hostname[0] != '[')
		snprintf(s->peer, sizeof(s->peer), "tcp://[%s]", s->hostname);
	else
		snprintf(s->peer, sizeof(s->peer), "tcp://%s", s->hostname);
	if (peer_uri_parse(s->peer, s->port[0] ? s->port : NULL, &u, err,
	    errlen) < 0)
		return WSY_ERROR;
	peer_uri_format(&u, s->peer, sizeof(s->peer));
	if (framing_resolve(s->framing, s->framing_config, &fn, &trusted,
	    err, errlen) < 0)
		return WSY_ERROR;
	return WSY_OK;
}

static int st_query(void *st, const wsy_request *req, uint64_t qid)
{
	struct static_be *s = st;
	wsy_answer a;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	a.peer = s->peer;
	a.framing = s->framing;
	a.framing_config = s->framing_config;
	if (strcmp(s->protocol, "*") == 0 && req->n_protocols > 0)
		a.protocol = req->protocols[0];
	for (i = 0; s->protocol[0] && i < req->n_protocols; i++)
		if (strcmp(req->protocols[i], s->protocol) == 0)
			a.protocol = s->protocol;
	s->host->answer(qid, &a);
	return WSY_OK;
}

static void st_cleanup(void *st)
{
	free(st);
}

const wsy_backend_ops backend_static_ops = {
	.init = st_init,
	.configure = st_configure,
	.start = st_start,
	.query = st_query,
	.cancel = NULL,
	.cleanup = st_cleanup,
};
