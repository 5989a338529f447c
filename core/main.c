/*
 * main.c - websocksy: command line, configuration, start-up, the loop.
 *
 *   websocksy [-p port] [-l host] [-k secs] [-b backend] [-c key=value]...
 *             [-C corekey=value]... [-w dir] [-v|-q]...
 *   websocksy FILE          exactly one argument: an INI file
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "buf.h"
#include "cfg.h"
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "plugin.h"
#include "sock.h"
#include "tls.h"
#include "sip003.h"
#include "tunnel.h"
#include "kcpserve.h"
#include "psk.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: websocksy [options]\n"
"       websocksy FILE          read the configuration from an INI file\n"
"       websocksy               with SS_* variables: a SIP003 plugin\n"
"\n"
"  -p PORT        plain ws listen port (default 8001; 0 = none)\n"
"  -s PORT        TLS (wss) listen port (needs -C tls-cert=... -C tls-key=...\n"
"                 or -C tls-servername=NAME for a self-signed certificate)\n"
"  -l HOST        listen address (default :: = IPv6 and IPv4)\n"
"  -k SECONDS     keepalive ping interval (default 30, 0 = off)\n"
"  -b NAME        backend (default static)\n"
"  -c KEY=VALUE   backend option (repeatable, kept in order)\n"
"  -C KEY=VALUE   core option, any [core] key (repeatable)\n"
"  -w DIR         serve static files from DIR to plain GET requests\n"
"  -o OPTIONS     tunnel option string, e.g. 'ws;host=example.com;path=/ws'\n"
"                 or 'ws;tls;cert=C;key=K' (the websocksy-client vocabulary)\n"
"  -v, -q         more / less logging (repeatable)\n"
"  -h, --help     this text\n"
"  -V, --version  print the version\n"
"  --genpsk       print a fresh 32-byte KCP pre-shared key (base64)\n"
"\n"
"tls keys (-C or [tls]): tls-cert, tls-key, tls-servername, tls-ocsp,\n"
"  tls-priority, tls-only, tls-client-ca, tls-client-verify,\n"
"  tls-handshake-timeout; SIGHUP reloads certificates\n"
"static backend options: host, port, framing, framing-config, protocol\n"
"see websocksy.cfg(5) for every key, websocksy(8) for the rest.\n");
}

static int genpsk(void)
{
	uint8_t key[PSK_KEY_LEN];
	char b64[64];

	if (psk_genkey(key) < 0 || psk_key_to_base64(key, b64,
	    sizeof(b64)) < 0) {
		fprintf(stderr, "websocksy: cannot generate a key\n");
		return 1;
	}
	printf("%s\n", b64);
	return 0;
}

/* Split "key=value" in place; returns the value or NULL. */
static char *split_kv(char *s)
{
	char *eq = strchr(s, '=');

	if (eq == NULL || eq == s)
		return NULL;
	*eq = '\0';
	return eq + 1;
}

static int set_flag(wsy_config *c, const char *flag, const char *key,
    const char *value)
{
	char err[256];

	if (cfg_set_from(c, key, value, flag, 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s %s: %s\n", flag, key, err);
		return 1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, wsy_config *c, int *verbosity,
    int *sip003_mode)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "genpsk", no_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 }
	};
	int ch, errors = 0;
	char *v, err[512];
	const char *tunnel_opts = NULL;

	while ((ch = getopt_long(argc, argv, "p:s:l:k:b:c:C:w:o:vqhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p': errors += set_flag(c, "-p", "port", optarg); break;
		case 's': errors += set_flag(c, "-s", "tls-port", optarg);
			break;
		case 'l': errors += set_flag(c, "-l", "listen", optarg); break;
		case 'k': errors += set_flag(c, "-k", "ping", optarg); break;
		case 'b': errors += set_flag(c, "-b", "backend", optarg); break;
		case 'w': errors += set_flag(c, "-w", "web", optarg); break;
		case 'c':
		case 'C':
			if ((v = split_kv(optarg)) == NULL) {
				fprintf(stderr, "-%c %s: expected key=value\n",
				    ch, optarg);
				errors++;
			} else if (ch == 'C') {
				errors += set_flag(c, "-C", optarg, v);
			} else if (cfg_add_backend_opt(c, optarg, v, "-c",
			    0) < 0) {
				fprintf(stderr, "out of memory\n");
				errors++;
			}
			break;
		case 'o':
			/* Applied after every flag: -p and -o in any order. */
			tunnel_opts = optarg;
			break;
		case 'v': (*verbosity)++; break;
		case 'q': (*verbosity)--; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("websocksy %s\n", WSY_VERSION); exit(0);
		case 'G': exit(genpsk());
		default: usage(stderr); exit(2);
		}
	}
	if (tunnel_opts && tunnel_apply(c, tunnel_opts, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "-o: %s\n", err);
		errors++;
	}
	if (optind < argc) {
		if (optind != 1 || argc != 2) {
			fprintf(stderr, "websocksy: either options or exactly "
			    "one configuration file, not both\n");
			usage(stderr);
			exit(2);
		}
		errors += cfg_load(c, argv[1]);
	} else if (argc == 1) {
		int r = tunnel_sip003(c, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "websocksy: SIP003: %s\n", err);
			errors++;
		}
		*sip003_mode = r > 0;
	}
	return errors;
}

/* Configure and start the backend; errors name where each key came from. */
static int start_backend(wsy_config *c, backend *be)
{
	char err[256];
	size_t i;
	int errors = 0;

	if (backend_open(be, c->backend, bridge_host(), err, sizeof(err)) < 0) {
		fprintf(stderr, "backend: %s\n", err);
		return 1;
	}
	for (i = 0; i < c->nbopts; i++) {
		cfg_opt *o = &c->bopts[i];
		err[0] = '\0';
		if (be->ops->configure == NULL || be->ops->configure(be->st,
		    o->key, o->value, err, sizeof(err)) != WSY_OK) {
			if (o->line)
				fprintf(stderr, "%s:%d: %s: %s\n", o->file,
				    o->line, o->key, err[0] ? err :
				    "rejected by the backend");
			else
				fprintf(stderr, "-c %s: %s\n", o->key, err[0] ?
				    err : "rejected by the backend");
			errors++;
		}
	}
	if (errors)
		return errors;
	err[0] = '\0';
	if (be->ops->start && be->ops->start(be->st, err, sizeof(err)) !=
	    WSY_OK) {
		fprintf(stderr, "backend %s: %s\n", c->backend,
		    err[0] ? err : "start failed");
		return 1;
	}
	return 0;
}

/* Tunnels carry bytes: binary frames unless a framing was chosen. */
static int has_backend_opt(const wsy_config *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->nbopts; i++)
		if (strcmp(c->bopts[i].key, key) == 0)
			return 1;
	return 0;
}

static void on_stop(void *arg)
{
	(void)arg;
	kcpserve_shutdown();
	bridge_shutdown();
}

static tls_server *tls_srv;
static tls_server_cfg tls_cfg;

static void tls_config(const wsy_config *c)
{
	size_t i;

	memset(&tls_cfg, 0, sizeof(tls_cfg));
	for (i = 0; i < c->ntls_cert && i < TLS_MAX_PAIRS; i++) {
		tls_cfg.cert[i] = c->tls_cert[i];
		tls_cfg.key[i] = c->tls_key[i];
	}
	tls_cfg.npairs = i;
	tls_cfg.servername = c->tls_servername[0] ? c->tls_servername : NULL;
	tls_cfg.ocsp = c->tls_ocsp[0] ? c->tls_ocsp : NULL;
	tls_cfg.priority = c->tls_priority[0] ? c->tls_priority : NULL;
	tls_cfg.client_ca = c->tls_client_ca[0] ? c->tls_client_ca : NULL;
	tls_cfg.client_verify = c->tls_client_verify;
}

/* Which key named the file a TLS error is about ("certificate PATH: ..."
 * is the nth tls-cert): the message then starts with its FILE:LINE. */
static void tls_error_where(const wsy_config *c, const char *err, char *w,
    size_t wlen)
{
	char want[PATH_MAX + 32];
	size_t i;

	for (i = 0; i < c->ntls_cert; i++) {
		snprintf(want, sizeof(want), "certificate %s", c->tls_cert[i]);
		if (strncmp(err, want, strlen(want)) == 0) {
			cfg_where_str(cfg_where(c, "tls-cert", i), "tls-cert",
			    w, wlen);
			return;
		}
		snprintf(want, sizeof(want), "key %s:", c->tls_key[i]);
		if (strncmp(err, want, strlen(want)) == 0) {
			cfg_where_str(cfg_where(c, "tls-key", i), "tls-key", w,
			    wlen);
			return;
		}
	}
	if (strncmp(err, "OCSP response ", 14) == 0)
		cfg_where_str(cfg_where(c, "tls-ocsp", CFG_LAST), "tls-ocsp",
		    w, wlen);
	else if (strncmp(err, "client CA ", 10) == 0)
		cfg_where_str(cfg_where(c, "tls-client-ca", CFG_LAST),
		    "tls-client-ca", w, wlen);
	else
		snprintf(w, wlen, "tls");
}

/* Credentials for the TLS port, loaded before anything listens (the
 * files were checked by cfg_check: this is about their contents). */
static int tls_start(const wsy_config *c)
{
	char err[512], fp[128] = "", where[PATH_MAX + 80];

	if (!cfg_tls_enabled(c))
		return 0;
	tls_config(c);
	if ((tls_srv = tls_server_new(&tls_cfg, fp, sizeof(fp), err,
	    sizeof(err))) == NULL) {
		tls_error_where(c, err, where, sizeof(where));
		fprintf(stderr, "%s: %s\n", where, err);
		return -1;
	}
	if (fp[0])
		log_info(0, "tls: self-signed certificate for %s, SHA-256 "
		    "fingerprint %s", c->tls_servername, fp);
	bridge_set_tls(&tls_srv);
	return 0;
}

/* SIGHUP: new sessions get the new files; a bad file keeps the old. */
static void on_reload(void *arg)
{
	char err[512];

	(void)arg;
	if (tls_srv == NULL) {
		log_info(0, "SIGHUP: nothing to reload (no TLS port)");
		return;
	}
	if (tls_server_reload(&tls_srv, &tls_cfg, err, sizeof(err)) < 0)
		log_error(0, "tls reload failed, keeping the old "
		    "certificates: %s", err);
	else
		log_info(0, "tls: certificates reloaded");
}

static int listen_port(const wsy_config *c, const char *port, int tls)
{
	char err[512];
	int fds[16], n, i;

	if ((n = sock_listen(c->listen, port, fds, 16, err, sizeof(err))) <
	    0) {
		fprintf(stderr, "websocksy: %s\n", err);
		return -1;
	}
	for (i = 0; i < n; i++)
		bridge_listen(fds[i], tls);
	return 0;
}

/* Every socket is bound before the first "listening" line: a port in
 * use fails the start without a line that says it is up. */
static int listen_all(const wsy_config *c)
{
	const char *lb = strchr(c->listen, ':') ? "[" : "";
	const char *rb = *lb ? "]" : "";

	if ((c->port[0] && listen_port(c, c->port, 0) < 0) ||
	    (cfg_tls_enabled(c) && listen_port(c, c->tls_port, 1) < 0) ||
	    kcpserve_start(c) < 0)
		return -1;
	if (c->port[0])
		log_info(0, "listening on %s%s%s:%s (ws), backend %s", lb,
		    c->listen, rb, c->port, c->backend);
	if (cfg_tls_enabled(c))
		log_info(0, "listening on %s%s%s:%s (wss%s), backend %s", lb,
		    c->listen, rb, c->tls_port, c->tls_only ? "" : " and ws",
		    c->backend);
	return 0;
}

/* A refused tls-* value: loading the credentials would only add noise. */
static int tls_keys_failed(const wsy_config *c)
{
	static const char *const keys[] = { "tls-port", "tls-cert",
	    "tls-key", "tls-servername", "tls-ocsp", "tls-priority",
	    "tls-client-ca", "tls-client-verify", NULL };
	size_t i;

	for (i = 0; keys[i]; i++)
		if (cfg_failed(c, keys[i]))
			return 1;
	return 0;
}

/* Everything that can be wrong with the configuration, reported at once
 * and before anything listens: the keys (parse_args), the checks across
 * keys, the backend and its options, the TLS files, the KCP settings.  A
 * stage whose input already failed is skipped: its errors would be noise
 * ("host: required" for a file that could not be read). */
static int check_all(wsy_config *c, backend *be, int errors)
{
	int cross;

	if (c->load_failed)
		return errors;
	errors += (cross = cfg_check(c));
	if (c->port[0] == '\0' && !cfg_tls_enabled(c) &&
	    c->kcp_listen[0] == '\0' && !cfg_failed(c, "port") &&
	    !cfg_failed(c, "tls-port") && !cfg_failed(c, "kcp-listen")) {
		fprintf(stderr, "websocksy: nothing to listen on (port 0 and "
		    "no tls-port)\n");
		errors++;
	}
	/* A KCP-only server has no WebSocket listener: its streams go to
	 * kcp-peer, and no backend is asked. */
	if ((c->port[0] || cfg_tls_enabled(c)) && !cfg_failed(c, "backend") &&
	    !cfg_failed(c, "plugins"))
		errors += start_backend(c, be);
	if (cross == 0 && !tls_keys_failed(c) && tls_start(c) < 0)
		errors++;
	return errors + kcpserve_prepare(c);
}

int main(int argc, char **argv)
{
	wsy_config cfg;
	backend be;
	int verbosity = 0, sip003_mode = 0, n, errors, rc = 1;

	log_set_prog("websocksy");
	cfg_defaults(&cfg);
	errors = parse_args(argc, argv, &cfg, &verbosity, &sip003_mode);
	if (cfg.tunnel && !has_backend_opt(&cfg, "framing") &&
	    cfg_add_backend_opt(&cfg, "framing", cfg.tunnel_mux ? "kcp-mux" :
	    "binary", "-o", 0) < 0) {
		cfg_free(&cfg);
		return 1;
	}
	n = cfg.log_level + verbosity;
	log_set_level(n < LOGL_ERROR ? LOGL_ERROR : n > LOGL_DEBUG ?
	    LOGL_DEBUG : n);
	log_open(log_target_parse(cfg.log));
	signal(SIGPIPE, SIG_IGN);
	/* Not configured: beside the binary in a build tree, else the
	 * installed directory (the README's examples run build/websocksy). */
	if (cfg_where(&cfg, "plugins", CFG_LAST) == NULL &&
	    plugin_default_dir(cfg.plugins, sizeof(cfg.plugins)))
		log_debug(0, "plugins: %s (beside the binary)", cfg.plugins);
	plugin_set_dir(cfg.plugins);
	bufpool_set_limit(cfg.buffer_pool);
	memset(&be, 0, sizeof(be));
	if (loop_init_poller(cfg.poller) < 0 || dns_init() < 0) {
		fprintf(stderr, "websocksy: cannot start the event loop: %s\n",
		    strerror(errno));
		goto out;
	}
	log_info(0, "poller: %s", loop_poller_name());
	if (cfg.resolver[0] && dns_set_servers(cfg.resolver) < 0) {
		fprintf(stderr, "websocksy: resolver: bad server list '%s'\n",
		    cfg.resolver);
		errors++;
	}
	if (check_all(&cfg, &be, errors) > 0 || bridge_init(&cfg, &be) < 0 ||
	    listen_all(&cfg) < 0)
		goto out;
	loop_signal(SIGTERM, on_stop, NULL);
	loop_signal(SIGINT, on_stop, NULL);
	loop_signal(SIGHUP, on_reload, NULL);
	/* A SIP003 plugin ends with its shadowsocks parent. */
	if (sip003_mode && sip003_watch_parent(1000, on_stop, NULL) < 0)
		log_warn(0, "SIP003: cannot watch the parent process");
	rc = loop_run() < 0 ? 1 : 0;
	log_info(0, "stopped");
out:
	kcpserve_cleanup();
	bridge_cleanup();
	if (tls_srv)
		tls_server_free(tls_srv);
	backend_close(&be);
	plugin_cleanup();
	dns_cleanup();
	loop_free();
	bufpool_drain();
	cfg_free(&cfg);
	return rc;
}
