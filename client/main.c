/*
 * main.c - websocksy-client: command line, SIP003 mode, start-up.
 *
 *   websocksy-client [-v|-q]... <local_addr> <remote_addr> '<options>'
 *   websocksy-client            no arguments + SS_* variables: SIP003
 *   websocksy-client --genpsk   print a new KCP pre-shared key
 *
 * Three relays: one remote connection per local connection (tunnel.c);
 * with mux / kcp every local connection as a stream of one kcp-mux tunnel
 * (muxclient.c over a WebSocket, kcpclient.c over KCP/UDP); with
 * kcp;mux=0 one raw KCP conversation per local connection (kcpraw.c).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/dns.h"
#include "../core/log.h"
#include "../core/loop.h"
#include "../core/opts.h"
#include "../core/psk.h"
#include "../core/sip003.h"
#include "../core/sock.h"
#include "kcpclient.h"
#include "kcpraw.h"
#include "muxclient.h"
#include "tunnel.h"

#define PROG "websocksy-client"

/* Where to listen and connect, from the arguments or the environment. */
typedef struct endpoints {
	char lhost[SIP003_MAX_HOSTS][SIP003_HOSTLEN];
	int nlhost;
	char lport[8];
	char rhost[SIP003_MAX_HOSTS][SIP003_HOSTLEN];
	int nrhost;
	char rport[8];
	const char *options;
	int sip003;
	int mux;		/* the kcp-mux relay (muxclient.c) */
	int raw;		/* raw KCP, kcp;mux=0 (kcpraw.c) */
} endpoints;

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [-v|-q] LOCAL_ADDR REMOTE_ADDR 'OPTIONS'\n"
"       " PROG "                   SIP003 plugin mode (SS_* variables)\n"
"       " PROG " --genpsk          print a new pre-shared key (base64)\n"
"\n"
"  LOCAL_ADDR, REMOTE_ADDR   host:port, or [v6]:port\n"
"  OPTIONS   ';'-separated key or key=value; escape ; = \\ with \\\n"
"    ws               WebSocket (needs host= and path=)\n"
"    host=NAME        Host header          path=/P   request path\n"
"    mask=MODE        skip (all-zero key), standard (default, fresh key\n"
"                     per frame) or fixed (one key per connection)\n"
"    tls              TLS (needs sni=); with ws: wss, alone: raw TLS\n"
"    sni=NAME         server name, also verified\n"
"    alpn=LIST        ALPN protocols (ws default: http/1.1)\n"
"    insecure         do not verify the certificate\n"
"    pin=SHA256       accept only this certificate fingerprint\n"
"    ca=FILE          trust FILE instead of the system store\n"
"    0rtt             TLS session resumption / 0-RTT\n"
"    ping=SECS        WebSocket keepalive (default 30, 0 = off)\n"
"    timeout=SECS     connect + handshake timeout (default 10)\n"
"    close-linger=SECS\n"
"                     ws: after the local EOF, wait this long for the\n"
"                     server's close before sending ours (default 1)\n"
"    mux              with ws: every connection is a stream of one\n"
"                     WebSocket (kcp-mux framing on the server)\n"
"    kcp              every connection a stream of one KCP session over\n"
"                     UDP (the server's kcp-listen)\n"
"    mux=0            with kcp: raw KCP, one conversation per connection,\n"
"                     no mux, no psk (kcp-go / kcptun-style peers)\n"
"    psk=KEY          kcp: pre-shared key (base64, see --genpsk)\n"
"    kcp-mtu=N        kcp: datagram size (default 1400)\n"
"    kcp-window=N     kcp: window in segments (default 1024)\n"
"    kcp-replay=N     kcp+psk: replay cache slots (default 1048576,\n"
"                     24 bytes each; ~35k datagrams/s)\n"
"    mux-window=N     stream window in bytes (default 1048576)\n"
"    mux-streams=N    concurrent streams (default 128)\n"
"  neither ws nor tls nor kcp: raw TCP\n"
"\n"
"  -v, -q         more / less logging (repeatable)\n"
"  -h, --help     this text\n"
"  --genpsk       print a fresh 32-byte key in base64 and exit\n"
"  -V, --version  print the version\n"
"\n"
"example: " PROG " 127.0.0.1:1080 example.com:443 \\\n"
"             'ws;host=example.com;path=/ws;tls;sni=example.com'\n");
}

static void genpsk(void)
{
	uint8_t key[PSK_KEY_LEN];
	char b64[PSK_KEY_B64_LEN + 1];

	if (psk_genkey(key) < 0 || psk_key_to_base64(key, b64,
	    sizeof(b64)) < 0) {
		fprintf(stderr, PROG ": --genpsk: no randomness\n");
		exit(1);
	}
	printf("%s\n", b64);
	exit(fflush(stdout) == 0 ? 0 : 1);
}

static int parse_flags(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "genpsk", no_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, verbosity = 0;

	while ((ch = getopt_long(argc, argv, "vqhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'v': verbosity++; break;
		case 'q': verbosity--; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf(PROG " %s\n", WSY_VERSION); exit(0);
		case 'G': genpsk(); break;
		default: usage(stderr); exit(2);
		}
	}
	return verbosity;
}

/* in as an option value: ; = \\ escaped with \\ (opts.h). */
static void opt_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < outlen; in++) {
		if (*in == ';' || *in == '=' || *in == '\\')
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
}

/*
 * A URL where host:port belongs ("wss://example.com/ws": what a user of
 * other clients writes) would fail as "put an IPv6 address in brackets".
 * Returns 1 with the address and options to write instead in why, or 0 if
 * s is no URL.
 */
static int url_hint(int local, const char *s, char *why, size_t whylen)
{
	char scheme[8], host[128], port[8], path[128], epath[256], o[700];
	const char *p = strstr(s, "://"), *hp, *ep, *dport = "PORT";
	size_t n;

	if (p == NULL || p == s || (size_t)(p - s) >= sizeof(scheme) ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+-.") != (size_t)(p - s))
		return 0;
	for (n = 0; s + n < p; n++)
		scheme[n] = (char)(s[n] | 0x20);
	scheme[n] = '\0';
	hp = p + 3;
	ep = hp + strcspn(hp, "/?#");
	if (*ep == '/')
		snprintf(path, sizeof(path), "%.*s", (int)strcspn(ep, "#"), ep);
	else
		snprintf(path, sizeof(path), "/");
	/* the port: after the last ':' that is not inside [v6] */
	n = (size_t)(ep - hp);
	p = memrchr(hp, ':', n);
	port[0] = '\0';
	if (p != NULL && memchr(p, ']', (size_t)(ep - p)) == NULL) {
		snprintf(port, sizeof(port), "%.*s", (int)(ep - p - 1), p + 1);
		n = (size_t)(p - hp);
	}
	snprintf(host, sizeof(host), "%.*s", (int)n, hp);
	if (local) {
		snprintf(why, whylen, "local address '%s' is a URL: write "
		    "host:port, e.g. %s:%s", s, host, port[0] ? port : "1080");
		return 1;
	}
	opt_escape(path, epath, sizeof(epath));
	if (strcmp(scheme, "ws") == 0 || strcmp(scheme, "http") == 0) {
		dport = "80";
		snprintf(o, sizeof(o), "ws;host=%s;path=%s", host, epath);
	} else if (strcmp(scheme, "wss") == 0 || strcmp(scheme, "https") == 0) {
		dport = "443";
		snprintf(o, sizeof(o), "ws;tls;host=%s;sni=%s;path=%s", host,
		    host, epath);
	} else if (strcmp(scheme, "tls") == 0) {
		snprintf(o, sizeof(o), "tls;sni=%s", host);
	} else if (strcmp(scheme, "tcp") == 0) {
		o[0] = '\0';
	} else if (strcmp(scheme, "kcp") == 0) {
		snprintf(o, sizeof(o), "kcp;psk=KEY");
	} else {
		snprintf(why, whylen, "remote address '%s' is a URL: write "
		    "host:port, and the transport in the options (ws, ws;tls, "
		    "tls, kcp)", s);
		return 1;
	}
	snprintf(why, whylen, "remote address '%s' is a URL: write the "
	    "address as host:port and the rest as options, e.g. %s:%s '%s'",
	    s, host, port[0] ? port : dport, o);
	return 1;
}

static int from_args(char **argv, endpoints *e, char *err, size_t errlen)
{
	char why[400];

	if (url_hint(0, argv[1], err, errlen) ||
	    url_hint(1, argv[0], err, errlen))
		return -1;
	if (hostport_parse(argv[0], e->lhost[0], SIP003_HOSTLEN, e->lport,
	    sizeof(e->lport), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "local address %s", why);
		return -1;
	}
	if (hostport_parse(argv[1], e->rhost[0], SIP003_HOSTLEN, e->rport,
	    sizeof(e->rport), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "remote address %s", why);
		return -1;
	}
	e->nlhost = e->nrhost = 1;
	e->options = argv[2];
	return 0;
}

static int from_env(sip003 *s, endpoints *e, char *err, size_t errlen)
{
	int r = sip003_from_env(s, err, errlen);

	if (r <= 0) {
		if (r == 0)
			snprintf(err, errlen, "no arguments and no SIP003 "
			    "environment (SS_REMOTE_HOST...)");
		return -1;
	}
	if ((e->nlhost = sip003_hosts(s->local_host, e->lhost,
	    SIP003_MAX_HOSTS, err, errlen)) < 0 ||
	    (e->nrhost = sip003_hosts(s->remote_host, e->rhost,
	    SIP003_MAX_HOSTS, err, errlen)) < 0)
		return -1;
	strcpy(e->lport, s->local_port);
	strcpy(e->rport, s->remote_port);
	e->options = s->options;
	e->sip003 = 1;
	return 0;
}

static void set_remotes(tunnel_cfg *tc, const endpoints *e)
{
	int i;

	for (i = 0; i < e->nrhost; i++) {
		peer_uri *u = &tc->remote[i];

		memset(u, 0, sizeof(*u));
		u->kind = PEER_TCP;
		snprintf(u->host, sizeof(u->host), "%s", e->rhost[i]);
		snprintf(u->port, sizeof(u->port), "%s", e->rport);
	}
	tc->nremote = e->nrhost;
}

static tls_client *make_tls(const client_opts *o)
{
	tls_client_cfg tc;
	tls_client *c;
	char err[256];

	memset(&tc, 0, sizeof(tc));
	tc.sni = o->sni;
	/* a CDN may offer h2 to a client that does not say: ws needs 1.1 */
	tc.alpn = o->alpn ? o->alpn : o->ws ? "http/1.1" : NULL;
	tc.insecure = o->insecure;
	tc.pin = o->pin;
	tc.ca_file = o->ca;
	tc.resume = o->resume;
	if ((c = tls_client_new(&tc, err, sizeof(err))) == NULL)
		fprintf(stderr, PROG ": tls: %s\n", err);
	return c;
}

static int listen_all(const endpoints *e)
{
	char err[512];
	int fds[16], i, j, n;

	for (i = 0; i < e->nlhost; i++) {
		n = sock_listen(e->lhost[i], e->lport, fds, 16, err,
		    sizeof(err));
		if (n < 0) {
			fprintf(stderr, PROG ": %s\n", err);
			return -1;
		}
		for (j = 0; j < n; j++)
			if ((e->mux ? muxc_listen(fds[j]) : e->raw ?
			    kcpr_listen(fds[j]) : tunnel_listen(fds[j])) < 0) {
				fprintf(stderr, PROG ": too many listening "
				    "sockets\n");
				return -1;
			}
		log_info(0, "listening on %s%s%s:%s", strchr(e->lhost[i], ':') ?
		    "[" : "", e->lhost[i], strchr(e->lhost[i], ':') ? "]" : "",
		    e->lport);
	}
	return 0;
}

static void on_stop(void *arg)
{
	(void)arg;
	tunnel_shutdown();
}

static void on_stop_mux(void *arg)
{
	(void)arg;
	muxc_shutdown();
}

static void on_stop_raw(void *arg)
{
	(void)arg;
	kcpr_shutdown();
}

/* SIGUSR1 in kcp mode: a new source port for the session (roaming aid,
 * and the integration tests' way to move a client mid-transfer). */
static void on_rebind(void *arg)
{
	(void)arg;
	kcpc_rebind();
}

static const char *mode_name(const client_opts *o)
{
	if (o->kcp_raw)
		return "raw kcp, no mux";
	if (o->kcp)
		return o->has_psk ? "kcp-mux, psk" : "kcp-mux";
	if (o->ws && o->mux)
		return o->tls ? "wss, mux" : "ws, mux";
	if (o->ws)
		return o->tls ? "wss" : "ws";
	return o->tls ? "tls" : "raw tcp";
}

static int start_relay(const endpoints *e, tunnel_cfg *tc)
{
	loop_cb stop = e->mux ? on_stop_mux : e->raw ? on_stop_raw : on_stop;

	if (e->mux) {
		if (muxc_init(tc, tc->opt->kcp ? &kcpc_chan :
		    &muxc_ws_chan) < 0)
			return -1;
		if (tc->opt->kcp)
			loop_signal(SIGUSR1, on_rebind, NULL);
	} else if (e->raw) {
		if (kcpr_init(tc) < 0)
			return -1;
	} else {
		tunnel_init(tc);
	}
	if (listen_all(e) < 0)
		return -1;
	loop_signal(SIGTERM, stop, NULL);
	loop_signal(SIGINT, stop, NULL);
	if (e->sip003)
		sip003_watch_parent(1000, stop, NULL);
	return 0;
}

static int run(const endpoints *e, tunnel_cfg *tc)
{
	char rname[300];
	int rc = 1;

	if (loop_init_poller(tc->opt->poller) < 0 || dns_init() < 0) {
		fprintf(stderr, PROG ": cannot start the event loop: %s\n",
		    strerror(errno));
		goto out;
	}
	log_debug(0, "poller: %s", loop_poller_name());
	if (start_relay(e, tc) < 0)
		goto out;
	peer_uri_format(&tc->remote[0], rname, sizeof(rname));
	log_info(0, "remote %s%s, %s", rname, e->nrhost > 1 ?
	    " (and others)" : "", mode_name(tc->opt));
	rc = loop_run() < 0 ? 1 : 0;
	log_info(0, "stopped");
out:
	if (e->mux) {
		muxc_cleanup();
		kcpc_cleanup();
	} else if (e->raw) {
		kcpr_cleanup();
	} else {
		tunnel_cleanup();
	}
	dns_cleanup();
	loop_free();
	return rc;
}

/*
 * The SIP003 "server" option convention (v2ray-plugin): one plugin binary
 * for both ends.  As a server we are websocksy, next to this binary.
 */
static void maybe_server(int argc)
{
	const char *env = getenv("SS_PLUGIN_OPTIONS");
	char path[4096], err[256];
	ssize_t n;
	char *slash;
	opts o;
	int server;

	if (argc != 1 || env == NULL || opts_parse(env, &o, err,
	    sizeof(err)) < 0)
		return;
	server = opts_has(&o, "server");
	opts_free(&o);
	if (!server)
		return;
	n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	if (n <= 0)
		return;
	path[n] = '\0';
	if ((slash = strrchr(path, '/')) == NULL)
		return;
	strcpy(slash + 1, "websocksy");
	execv(path, (char *[]){ path, NULL });
	fprintf(stderr, PROG ": server option: cannot run %s\n", path);
	exit(1);
}

int main(int argc, char **argv)
{
	static endpoints e;
	static sip003 s;
	static tunnel_cfg tc;
	client_opts co;
	opts o;
	char err[512];
	int n, rc;

	log_set_prog(PROG);
	maybe_server(argc);
	n = LOGL_INFO + parse_flags(argc, argv);
	log_set_level(n < LOGL_ERROR ? LOGL_ERROR : n > LOGL_DEBUG ?
	    LOGL_DEBUG : n);
	argc -= optind;
	argv += optind;
	if (argc != 0 && argc != 3) {
		usage(stderr);
		return 2;
	}
	if ((argc ? from_args(argv, &e, err, sizeof(err)) :
	    from_env(&s, &e, err, sizeof(err))) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		if (argc == 0)
			usage(stderr);
		return argc ? 1 : 2;
	}
	if (opts_parse(e.options, &o, err, sizeof(err)) < 0 ||
	    opts_client(&o, &co, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		opts_free(&o);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	tc.opt = &co;
	e.mux = co.mux;
	e.raw = co.kcp_raw;
	tc.bufsize = 128 * 1024;
	tc.close_wait_ms = 10000;
	set_remotes(&tc, &e);
	rc = 1;
	if (!co.tls || (tc.tls = make_tls(&co)) != NULL)
		rc = run(&e, &tc);
	if (tc.tls)
		tls_client_free(tc.tls);
	opts_free(&o);
	return rc;
}
