/*
 * tls.h - TLS on GnuTLS for both programs, non-blocking, driven by the
 * caller's event loop.  Layer: sockets (below the bridge; never logs peer
 * data, never calls poll()).
 *
 * Server credentials (tls_server) are reference counted: a reload builds a
 * new set and swaps it in; sessions made before keep the old set until they
 * end, so a reload never drops a connection.
 */
#ifndef WSY_TLS_H
#define WSY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Results of tls_handshake(), and the "want" of tls_read/tls_write. */
enum { TLS_OK = 0, TLS_WANT_READ = 1, TLS_WANT_WRITE = 2, TLS_ERR = -1 };

#define TLS_MAX_PAIRS 8

typedef struct tls_server_cfg {
	/* Certificate chain + key pairs, PEM files; the first is the default,
	 * the others are chosen by SNI (names from each certificate). */
	const char *cert[TLS_MAX_PAIRS];
	const char *key[TLS_MAX_PAIRS];
	size_t npairs;
	const char *servername;   /* no cert: self-signed for this name */
	const char *ocsp;         /* stapled OCSP response (DER file) */
	const char *priority;     /* GnuTLS priority; NULL = secure default */
	const char *client_ca;    /* PEM CA file for client certificates */
	int client_verify;        /* 0 none, 1 optional, 2 require */
} tls_server_cfg;

typedef struct tls_server tls_server;
typedef struct tls_conn tls_conn;

/* Build server credentials.  Returns NULL with a reason in err.  With
 * servername and no cert, the SHA-256 fingerprint of the generated
 * certificate is written to fp (hex with colons, >= 96 bytes) if fp. */
tls_server *tls_server_new(const tls_server_cfg *cfg, char *fp,
    size_t fplen, char *err, size_t errlen);
/* Reload from the same cfg (files re-read).  On failure the old
 * credentials stay and -1 is returned with the reason. */
int tls_server_reload(tls_server **s, const tls_server_cfg *cfg, char *err,
    size_t errlen);
void tls_server_free(tls_server *s);

/* A server session on a connected non-blocking fd (ALPN http/1.1). */
tls_conn *tls_accept(tls_server *s, int fd);

typedef struct tls_client_cfg {
	const char *sni;          /* also the name verified */
	const char *alpn;         /* comma list, e.g. "http/1.1" */
	int insecure;             /* skip verification */
	const char *pin;          /* SHA-256 fingerprint hex (colons ok) */
	const char *ca_file;      /* NULL = system trust store */
	int resume;               /* session resumption / 0-RTT */
} tls_client_cfg;

typedef struct tls_client tls_client;   /* shared client credentials */
tls_client *tls_client_new(const tls_client_cfg *cfg, char *err,
    size_t errlen);
void tls_client_free(tls_client *c);
tls_conn *tls_connect(tls_client *c, int fd);

/* Drive the handshake: TLS_OK, TLS_WANT_READ/WRITE (wait for that event
 * and call again), or TLS_ERR (tls_error() says why). */
int tls_handshake(tls_conn *t);

/* > 0 bytes; 0 = clean EOF (close_notify or TCP EOF); -1 with *want set to
 * TLS_WANT_READ / TLS_WANT_WRITE (try again then) or TLS_ERR. */
ssize_t tls_read(tls_conn *t, void *buf, size_t n, int *want);
/* Same conventions.  After a WANT, call again with the same bytes (the
 * caller keeps them buffered): GnuTLS needs the retry. */
ssize_t tls_write(tls_conn *t, const void *buf, size_t n, int *want);
/* Bytes buffered inside the session, decrypted or raw read-ahead:
 * poll() does not see them, read them before polling. */
size_t tls_pending(tls_conn *t);

/*
 * Batching (the server turns it on).  Reads take up to 128 KiB from the
 * socket at once and serve GnuTLS from that (tls_pending() counts the
 * whole records held there, which poll() cannot see).  Writes: tls_write()
 * turns the bytes into records gathered in a 64 KiB buffer, sent with one
 * send() each time it fills and once at the end, and never asks for a
 * retry with the same bytes: what it returns is taken, even when the
 * socket is full.  The rest then waits in the buffer, tls_write_pending()
 * says so, and tls_flush() (on the next writable event) sends it (0, or
 * -1 with *want).  While it waits, tls_write() only takes what still fits.
 * Alerts and close_notify queue behind it, so the order holds.
 */
void tls_set_cork(tls_conn *t, int on);
int tls_write_pending(tls_conn *t);
ssize_t tls_flush(tls_conn *t, int *want);
/* Send close_notify (best effort, non-blocking). */
void tls_bye(tls_conn *t);
void tls_free(tls_conn *t);
const char *tls_error(tls_conn *t);

/* Facts about an established session (NULL if none). */
const char *tls_sni(tls_conn *t);
const char *tls_alpn(tls_conn *t);
const char *tls_version(tls_conn *t);
const char *tls_client_subject(tls_conn *t);

#endif
