/*
 * cfg.h - configuration: defaults, the [core] key table, INI files (libinih)
 * and command-line settings.  Layer: config (above the bridge's protocol
 * code, below main).  Errors are printed as "FILE:LINE: KEY: reason".
 */
#ifndef WSY_CFG_H
#define WSY_CFG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One backend option, kept in order with where it came from. */
typedef struct cfg_opt {
	char *key, *value;
	char *file;      /* "-c" for the command line */
	int line;
} cfg_opt;

/* Where a [core] key was set, in order, for the checks after parsing. */
typedef struct cfg_src {
	const char *key;  /* the table's spelling (static) */
	char *file;       /* the INI file, or the flag ("-C", "-s", "-o") */
	int line;         /* 0 for flags */
	int bad;          /* the value was refused */
} cfg_src;

typedef struct wsy_config {
	char listen[256];
	char port[8];
	char backend[64];
	char plugins[PATH_MAX];
	char web[PATH_MAX];          /* "" = no web root */
	char resolver[256];          /* DNS servers, "" = resolv.conf */
	char **origins;              /* allow-list, NULL-terminated; NULL = any */
	uint64_t ping_ms;            /* 0 = off */
	uint64_t max_connections;
	uint64_t buffer_size;
	uint64_t max_request_line;
	uint64_t max_header_bytes;
	uint64_t max_headers;
	uint64_t handshake_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t close_timeout_ms;
	uint64_t linger_ms;
	uint64_t send_timeout_ms;    /* a side that takes nothing this long */
	uint64_t max_datagram;
	uint64_t max_streams;        /* per framing session */
	uint64_t buffer_pool;        /* bytes of free buffers kept */
	char ws_host[256];           /* required Host ("" = any) */
	char ws_path[1024];          /* required path ("" = any) */
	uint64_t peer_close_linger_ms; /* after peer EOF, wait for the
	                              * client's close this long */
	uint64_t response_linger_ms; /* after an HTTP response, read and
	                              * discard this long before closing */
	uint64_t memory_trim_ms;     /* give freed memory back this long
	                              * after connections end (0 = never) */
	uint64_t utf8_hold_ms;       /* auto framing: an incomplete UTF-8
	                              * sequence waits this long for its end */
	int tunnel;                  /* configured by a tunnel option string */
	int tunnel_mux;              /* ... with mux: the kcp-mux framing */
	/* KCP-mux over UDP (the [kcp] section, or kcp-* keys) */
	char kcp_listen[300];        /* "host:port" / "[v6]:port", "" = off */
	char kcp_psk[128];           /* base64 32-byte key, "" = no crypto */
	char kcp_peer[300];          /* peer URI for streams with an empty SYN */
	char kcp_mux_config[512];    /* kcp-mux framing-config (targets=...) */
	char kcp_framing[64];        /* session framing, default kcp-mux */
	uint64_t kcp_mtu;
	uint64_t kcp_window;         /* send and receive window, segments */
	uint64_t kcp_sessions;       /* at most this many sessions */
	uint64_t kcp_session_timeout_ms;
	uint64_t kcp_keepalive_ms;
	uint64_t kcp_replay_cache;   /* nonces remembered (PSK) */
	int kcp_allow_move;          /* without a PSK, follow address moves */
	int log_level;
	char log[16];                /* "stderr" or "syslog" */
	int poller;                  /* LOOP_POLLER_* (loop.h) */
	/* TLS ([core] tls-* keys, or the [tls] section without "tls-") */
	char tls_port[8];            /* "" = no TLS listener */
	char *tls_cert[8], *tls_key[8];   /* pairs, in order */
	size_t ntls_cert, ntls_key;
	char tls_servername[256];
	char tls_ocsp[PATH_MAX];
	char tls_priority[512];
	int tls_only;                /* TLS port refuses plain HTTP */
	char tls_client_ca[PATH_MAX];
	int tls_client_verify;       /* 0 none, 1 optional, 2 require */
	uint64_t tls_handshake_timeout_ms;
	cfg_opt *bopts;              /* [backend] / -c, in order */
	size_t nbopts;
	cfg_src *srcs;               /* where each [core] key was set */
	size_t nsrcs;
	int load_failed;             /* the file was not read to the end */
} wsy_config;

void cfg_defaults(wsy_config *c);
void cfg_free(wsy_config *c);

/* Set one [core] key.  Returns 0, or -1 with a reason in err. */
int cfg_set(wsy_config *c, const char *key, const char *value, char *err,
    size_t errlen);

/* cfg_set, remembering where the key came from (file and line, or a flag
 * with line 0) for cfg_where.  A refused value is remembered as bad. */
int cfg_set_from(wsy_config *c, const char *key, const char *value,
    const char *file, int line, char *err, size_t errlen);

/* The nth setting of key (0 = first, CFG_LAST = the last), or NULL if it
 * was never set (a default).  cfg_failed: a setting of key was refused. */
#define CFG_LAST ((size_t)-1)
const cfg_src *cfg_where(const wsy_config *c, const char *key, size_t nth);
int cfg_failed(const wsy_config *c, const char *key);

/* "FILE:LINE: KEY", "-C KEY" or "KEY" (a default): the prefix of a
 * message about a setting. */
void cfg_where_str(const cfg_src *s, const char *key, char *buf,
    size_t len);

/* The table, for the documentation check: the nth key's name (NULL past
 * the last), and key's value in c written as a file would write it ("" for
 * an empty string, list or port; seconds as "0.25").  cfg_format returns
 * 0, or -1 for an unknown key or one without a single value (tls-cert). */
const char *cfg_key_name(size_t n);
int cfg_format(const wsy_config *c, const char *key, char *buf,
    size_t len);

/* Checks across keys, after parsing (a certificate needs a key and a TLS
 * port, ws-path ...).  Prints each problem as "FILE:LINE: KEY: reason" and
 * returns their count. */
int cfg_check(const wsy_config *c);

/* Append a backend option.  Returns 0 or -1 (out of memory). */
int cfg_add_backend_opt(wsy_config *c, const char *key, const char *value,
    const char *file, int line);

/* 1 if a TLS listener is configured. */
int cfg_tls_enabled(const wsy_config *c);

/* Read an INI file: [core] keys and [backend] options.  Prints every error
 * to stderr as "FILE:LINE: KEY: reason" and returns their count.  A key
 * given twice in a section is an error ("is duplicate", naming both lines),
 * except the repeatable ones (tls-cert, tls-key, and a backend's own, such
 * as the file backend's expression).  A file that cannot be opened or read
 * to the end is an error naming the file and the reason, and sets
 * c->load_failed (its settings are incomplete: later checks would only
 * add noise). */
int cfg_load(wsy_config *c, const char *path);
/* The same from an open stream (borrowed; path names it in messages). */
int cfg_load_stream(wsy_config *c, const char *path, FILE *f);

/* Parse seconds with optional decimals ("10", "0.5") into milliseconds.
 * Returns 0 or -1. */
int cfg_parse_seconds(const char *s, uint64_t *ms);

#endif
