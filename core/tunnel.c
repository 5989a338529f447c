/*
 * tunnel.c - the server's tunnel vocabulary, shared with websocksy-client
 * through core/opts.c: one option string serves both ends.
 */
#include <stdio.h>
#include <string.h>

#include "opts.h"
#include "sip003.h"
#include "tunnel.h"

/* Keys the server understands; the client's own keys (sni, mask, pin...)
 * are accepted and ignored so one string can be shared by both ends. */
static const opt_spec server_spec[] = {
	{ "ws", OPT_FLAG }, { "tls", OPT_FLAG }, { "server", OPT_FLAG },
	{ "host", OPT_VALUE }, { "path", OPT_VALUE },
	{ "cert", OPT_VALUE }, { "key", OPT_VALUE },
	{ "servername", OPT_VALUE }, { "ocsp", OPT_VALUE },
	{ "mux", OPT_ANY }, { "mode", OPT_VALUE }, { "loglevel", OPT_VALUE },
	{ "linger", OPT_VALUE }, { "fast-open", OPT_FLAG },
	{ "sni", OPT_VALUE }, { "alpn", OPT_VALUE }, { "mask", OPT_VALUE },
	{ "pin", OPT_VALUE }, { "insecure", OPT_FLAG }, { "0rtt", OPT_FLAG },
	{ "ca", OPT_VALUE }, { "ping", OPT_VALUE }, { "timeout", OPT_VALUE },
	{ "kcp", OPT_FLAG }, { "psk", OPT_VALUE }, { "kcp-mtu", OPT_VALUE },
	{ "kcp-window", OPT_VALUE }, { "kcp-replay", OPT_VALUE },
	{ "mux-window", OPT_VALUE }, { "mux-streams", OPT_VALUE },
	{ NULL, 0 }
};

static int set(wsy_config *c, const char *key, const char *value,
    const char *opt, char *err, size_t errlen)
{
	char e[256];

	if (cfg_set(c, key, value, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "option '%s': %s", opt, e);
		return -1;
	}
	return 0;
}

static int apply_level(wsy_config *c, const char *v, char *err,
    size_t errlen)
{
	/* v2ray-plugin's names: debug, info, warning, error, none. */
	if (strcmp(v, "warning") == 0)
		v = "warn";
	else if (strcmp(v, "none") == 0)
		v = "error";
	return set(c, "log-level", v, "loglevel", err, errlen);
}

int tunnel_apply(wsy_config *c, const char *options, char *err,
    size_t errlen)
{
	const char *v;
	opts o;
	int rc = -1;

	if (opts_parse(options, &o, err, errlen) < 0)
		return -1;
	if (opts_check(&o, server_spec, err, errlen) < 0)
		goto out;
	if ((v = opts_get(&o, "mode")) && strcmp(v, "websocket") != 0) {
		snprintf(err, errlen, "option 'mode': only websocket is "
		    "supported, not '%s'", v);
		goto out;
	}
	/* mux=0 (v2ray-plugin's one WebSocket per connection, the default)
	 * or mux / mux=1: many connections over one WebSocket with our
	 * kcp-mux (websocksy-client's mux option); v2ray-plugin's own
	 * multiplexing is not spoken. */
	if (opts_has(&o, "mux")) {
		v = opts_get(&o, "mux");
		if (v == NULL || strcmp(v, "1") == 0) {
			c->tunnel_mux = 1;
		} else if (strcmp(v, "0") != 0) {
			snprintf(err, errlen, "option 'mux': 0 (one WebSocket "
			    "per connection) or 1 (kcp-mux), not '%s'", v);
			goto out;
		}
	}
	if ((v = opts_get(&o, "host")) &&
	    set(c, "ws-host", v, "host", err, errlen) < 0)
		goto out;
	if ((v = opts_get(&o, "path")) &&
	    set(c, "ws-path", v, "path", err, errlen) < 0)
		goto out;
	if ((v = opts_get(&o, "loglevel")) && apply_level(c, v, err,
	    errlen) < 0)
		goto out;
	if (opts_has(&o, "tls")) {
		/* The tunnel port itself speaks TLS. */
		const char *cert = opts_get(&o, "cert");
		const char *key = opts_get(&o, "key");
		const char *name = opts_get(&o, "servername");

		if ((cert == NULL) != (key == NULL)) {
			snprintf(err, errlen, "option '%s': cert and key go "
			    "together", cert ? "key" : "cert");
			goto out;
		}
		if (cert == NULL && name == NULL && (name = opts_get(&o,
		    "host")) == NULL) {
			snprintf(err, errlen, "option 'tls': needs cert and "
			    "key, or servername (or host) for a self-signed "
			    "certificate");
			goto out;
		}
		if ((cert && (set(c, "tls-cert", cert, "cert", err,
		    errlen) < 0 || set(c, "tls-key", key, "key", err,
		    errlen) < 0)) || (cert == NULL && set(c,
		    "tls-servername", name, "servername", err, errlen) < 0))
			goto out;
		if ((v = opts_get(&o, "ocsp")) &&
		    set(c, "tls-ocsp", v, "ocsp", err, errlen) < 0)
			goto out;
		if (set(c, "tls-port", c->port[0] ? c->port : "8443", "tls",
		    err, errlen) < 0 || set(c, "port", "0", "tls", err,
		    errlen) < 0)
			goto out;
	} else if (opts_get(&o, "cert") || opts_get(&o, "servername")) {
		snprintf(err, errlen, "option '%s': only with tls",
		    opts_get(&o, "cert") ? "cert" : "servername");
		goto out;
	}
	/* Tunnels carry bytes: binary frames, and after the peer's EOF
	 * let the client close first (v2ray-plugin loses the tail of a
	 * stream when a close frame follows the last data at once). */
	if (set(c, "peer-close-linger", (v = opts_get(&o, "linger")) ? v :
	    "1", "linger", err, errlen) < 0)
		goto out;
	c->tunnel = 1;
	rc = 0;
out:
	opts_free(&o);
	return rc;
}

int tunnel_sip003(wsy_config *c, char *err, size_t errlen)
{
	char hosts[SIP003_MAX_HOSTS][SIP003_HOSTLEN], peer[300], e[256];
	sip003 s;
	int r, n;

	if ((r = sip003_from_env(&s, err, errlen)) <= 0)
		return r;
	/* Several server addresses: listen on the first (the others are
	 * usually the same host's other family, which "::" covers). */
	if ((n = sip003_hosts(s.remote_host, hosts, SIP003_MAX_HOSTS, err,
	    errlen)) < 0)
		return -1;
	if (set(c, "listen", n > 1 ? "::" : hosts[0], "SS_REMOTE_HOST", err,
	    errlen) < 0 || set(c, "port", s.remote_port, "SS_REMOTE_PORT",
	    err, errlen) < 0)
		return -1;
	if ((n = sip003_hosts(s.local_host, hosts, SIP003_MAX_HOSTS, err,
	    errlen)) < 0)
		return -1;
	snprintf(peer, sizeof(peer), strchr(hosts[0], ':') ?
	    "tcp://[%s]:%s" : "tcp://%s:%s", hosts[0], s.local_port);
	if (tunnel_apply(c, s.options, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "SS_PLUGIN_OPTIONS: %s", e);
		return -1;
	}
	if (cfg_add_backend_opt(c, "host", peer, "SS_LOCAL_HOST", 0) < 0 ||
	    cfg_add_backend_opt(c, "framing", c->tunnel_mux ? "kcp-mux" :
	    "binary", "SIP003", 0) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 1;
}
