/*
 * tls.c - TLS on GnuTLS, non-blocking, driven by the caller's poll() loop.
 *
 * Server credentials and client credentials are reference counted so that
 * a reload (or the owner letting go) never frees what a live session still
 * points at.  Sessions are made with GNUTLS_NONBLOCK on the caller's fd
 * (gnutls_transport_set_int); every GNUTLS_E_AGAIN is turned into the
 * direction GnuTLS waits for.
 *
 * Decisions worth knowing:
 *  - Server ALPN offers only "http/1.1" and is mandatory: a client that
 *    offers ALPN without http/1.1 (h2 only) gets a no_application_protocol
 *    alert; a client that sends no ALPN at all is served.
 *  - TLS 1.2 renegotiation is refused with a no_renegotiation warning;
 *    TLS 1.3 key updates are handled by GnuTLS itself.
 *  - Client pinning replaces CA trust: with a pin the chain and name are
 *    not checked, only the SHA-256 of the leaf certificate (DER).
 *  - Resumption uses tickets (TLS 1.3 and 1.2); 0-RTT early data is not
 *    used because a replayed WebSocket upgrade is not idempotent.  A
 *    resumed session is not re-verified (no certificate is sent): the
 *    ticket came from a session of the same tls_client that passed.
 *  - client_verify "optional" still refuses a certificate that does not
 *    verify; it only lets a client send none.
 *  - Certificate files are parsed here, not by GnuTLS's file loader,
 *    which leaks on malformed PEM (3.7.9), and a reload must survive
 *    bad files.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "tls.h"

#define TLS_DEFAULT_PRIORITY \
	"SECURE256:SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"%SERVER_PRECEDENCE"
/* The client talks to backends we do not control: take the library's
 * normal set, minus the old protocol versions. */
#define TLS_CLIENT_PRIORITY \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#define TLS_MAX_ALPN 8
#define SHA256_LEN 32

struct tls_server {
	int refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key;	/* kept across reloads */
	gnutls_datum_t ss_cert;		/* self-signed PEM, kept on reload */
	gnutls_datum_t ss_key;
	char *ss_name;			/* the name ss_cert was made for */
	int client_verify;
};

struct tls_client {
	int refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	char *sni;
	char *alpn_buf;			/* the ALPN names, NUL-separated */
	gnutls_datum_t alpn[TLS_MAX_ALPN];
	unsigned nalpn;
	int insecure;
	int haspin;
	unsigned char pin[SHA256_LEN];
	int resume;
	gnutls_datum_t sess;		/* last session data for resumption */
};

struct tls_conn {
	gnutls_session_t s;
	tls_server *srv;
	tls_client *cli;
	int done;			/* handshake complete */
	int dead;			/* failed: tls_error() says why */
	int bye;			/* close_notify sent */
	int saved;			/* session data stored for resumption */
	int pin_failed;
	int peer_failed;		/* client certificate rejected */
	int alert;			/* no_renegotiation alert to send */
	int stale_hello;		/* a refused ClientHello to drop */
	char *sni;
	char *alpn;
	char *subject;
	char err[160];
	/* Our transport (see pull()/push()): read-ahead of raw records. */
	int fd;
	uint8_t *rbuf;			/* from the buffer pool, NULL if empty */
	size_t roff, rlen;
	int cork;			/* tls_set_cork(): batch records */
	int gather;			/* tls_write(): push into wbuf */
	int queued;			/* pushed behind wbuf outside it */
	uint8_t *wbuf;			/* records to send, NULL if empty */
	size_t woff, wlen;
};

/*
 * GnuTLS's own transport reads a record header and then its body with two
 * recv() calls (and probes once more for EAGAIN), and sends each record
 * with its own call.  Our pull reads up to TLS_RBUF bytes at once and
 * serves GnuTLS from that; the buffer comes from the pool and goes back
 * as soon as it is empty, so an idle session holds none.  Bytes in it are
 * invisible to poll(): tls_pending() counts them.
 */
#define TLS_RBUF 131072

static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	tls_conn *t = ptr;
	ssize_t n;
	size_t m;

	if (!t->cork && t->rlen == 0) {
		/* Without batching (the client relays), read exactly what
		 * GnuTLS asks for: the rest stays visible to poll(). */
		n = recv(t->fd, data, len, 0);
		if (n < 0)
			gnutls_transport_set_errno(t->s, errno);
		return n;
	}
	if (t->rlen == 0) {
		if (t->rbuf == NULL &&
		    (t->rbuf = bufpool_get(TLS_RBUF)) == NULL) {
			gnutls_transport_set_errno(t->s, ENOMEM);
			return -1;
		}
		n = recv(t->fd, t->rbuf, TLS_RBUF, 0);
		if (n <= 0) {
			int e = errno;
			bufpool_put(t->rbuf, TLS_RBUF);
			t->rbuf = NULL;
			if (n < 0) {
				gnutls_transport_set_errno(t->s, e);
				return -1;
			}
			return 0;
		}
		t->roff = 0;
		t->rlen = (size_t)n;
	}
	m = len < t->rlen ? len : t->rlen;
	memcpy(data, t->rbuf + t->roff, m);
	t->roff += m;
	t->rlen -= m;
	if (t->rlen == 0) {
		bufpool_put(t->rbuf, TLS_RBUF);
		t->rbuf = NULL;
	}
	return (ssize_t)m;
}

static int pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	tls_conn *t = ptr;
	struct pollfd p = { t->fd, POLLIN, 0 };
	int r;

	if (t->rlen > 0)
		return 1;
	r = poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
	return r < 0 ? -1 : r > 0;
}

/*
 * Sending.  Without batching every record GnuTLS makes goes out with its
 * own sendmsg().  With batching, tls_write() turns on "gather": the
 * records go into wbuf (from the pool) and leave with one send() per
 * TLS_WBUF bytes, as plain writes of the same bytes would.  Anything
 * GnuTLS sends while wbuf holds bytes (an alert, close_notify, a key
 * update) is queued behind them, so the order on the wire is kept.
 */
#define TLS_WBUF 65536
/* Room kept free for one record_send(): its record and its overhead,
 * and whatever GnuTLS may send with it (a key update). */
#define TLS_SEND_ROOM (2 * (16384 + 256))

static size_t iov_total(const giovec_t *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Send what wbuf holds.  Returns 0 when it is empty, -1 with errno. */
static int wflush(tls_conn *t)
{
	ssize_t n;

	while (t->wlen > 0) {
		n = send(t->fd, t->wbuf + t->woff, t->wlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		t->woff += (size_t)n;
		t->wlen -= (size_t)n;
	}
	if (t->wbuf != NULL) {
		bufpool_put(t->wbuf, TLS_WBUF);
		t->wbuf = NULL;
	}
	t->woff = 0;
	return 0;
}

/* Room at wbuf's tail for n more bytes (moving its data to the front or
 * taking a buffer from the pool)?  1 yes, 0 no, -1 out of memory. */
static int wroom(tls_conn *t, size_t n)
{
	if (t->wbuf == NULL) {
		if (n > TLS_WBUF)
			return 0;
		if ((t->wbuf = bufpool_get(TLS_WBUF)) == NULL)
			return -1;
		t->woff = t->wlen = 0;
	}
	if (t->wlen + n > TLS_WBUF)
		return 0;
	if (t->woff + t->wlen + n > TLS_WBUF) {
		memmove(t->wbuf, t->wbuf + t->woff, t->wlen);
		t->woff = 0;
	}
	return 1;
}

static ssize_t vec_push(gnutls_transport_ptr_t ptr, const giovec_t *iov,
    int iovcnt)
{
	tls_conn *t = ptr;
	struct msghdr mh;
	size_t total = iov_total(iov, iovcnt);
	ssize_t n;
	int r;

	if (t->gather || t->wlen > 0) {
		if ((r = wroom(t, total)) == 0 && wflush(t) == 0)
			r = t->gather ? wroom(t, total) : 0;
		if (r < 0)
			errno = ENOMEM;
		if (r > 0) {
			for (int i = 0; i < iovcnt; i++) {
				memcpy(t->wbuf + t->woff + t->wlen,
				    iov[i].iov_base, iov[i].iov_len);
				t->wlen += iov[i].iov_len;
			}
			t->queued |= !t->gather;
			return (ssize_t)total;
		}
		if (t->wlen > 0 || r < 0) {
			gnutls_transport_set_errno(t->s, errno);
			return -1;
		}
	}
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = (struct iovec *)(void *)iov;
	mh.msg_iovlen = (size_t)iovcnt;
	n = sendmsg(t->fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		gnutls_transport_set_errno(t->s, errno);
	return n;
}

static void free_datum(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

static int copy_datum(gnutls_datum_t *to, const gnutls_datum_t *from)
{
	to->data = NULL;
	to->size = 0;
	if (from->data == NULL)
		return 0;
	if ((to->data = gnutls_malloc(from->size)) == NULL)
		return -1;
	memcpy(to->data, from->data, from->size);
	to->size = from->size;
	return 0;
}

/* "AB:CD:..." from raw bytes; a full one needs 3 * n bytes of out. */
static void hex_colons(const unsigned char *p, size_t n, char *out,
    size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < n && o + 3 + (i > 0) <= outlen; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[p[i] >> 4];
		out[o++] = hex[p[i] & 15];
	}
	if (outlen > 0)
		out[o] = '\0';
}

/* Parse a SHA-256 pin: 64 hex digits, any case, colons optional. */
static int parse_pin(const char *s, unsigned char *out)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s) || n == SHA256_LEN)
			return -1;
		v = isdigit((unsigned char)*s) ? *s - '0' :
		    tolower((unsigned char)*s) - 'a' + 10;
		if (hi < 0)
			hi = v;
		else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n == SHA256_LEN && hi < 0 ? 0 : -1;
}

static char *datum_strdup(const gnutls_datum_t *d)
{
	char *s = malloc(d->size + 1);

	if (s != NULL) {
		memcpy(s, d->data, d->size);
		s[d->size] = '\0';
	}
	return s;
}

/* GnuTLS status texts end in a blank. */
static void trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/*
 * Server credentials
 */

/* "what: GnuTLS's reason", and the system's for a file that cannot be
 * read (GnuTLS only says "Error while reading file"). */
static int set_err(char *err, size_t errlen, const char *what, int ret)
{
	int e = errno;

	if (ret == GNUTLS_E_FILE_ERROR && e != 0)
		snprintf(err, errlen, "%s: %s (%s)", what, gnutls_strerror(ret),
		    strerror(e));
	else
		snprintf(err, errlen, "%s: %s", what, gnutls_strerror(ret));
	return -1;
}

/* Name the certificate: an IP literal goes in an iPAddress SAN, anything
 * else in a dNSName, so that clients verifying either way accept it. */
static int selfsigned_names(gnutls_x509_crt_t crt, const char *name)
{
	unsigned char ip[16];
	int ret;

	ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
	    0, name, strlen(name));
	if (ret < 0)
		return ret;
	if (inet_pton(AF_INET, name, ip) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_SET);
	if (inet_pton(AF_INET6, name, ip) == 1)
		return gnutls_x509_crt_set_subject_alt_name(crt,
		    GNUTLS_SAN_IPADDRESS, ip, 16, GNUTLS_FSAN_SET);
	return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	    name, strlen(name), GNUTLS_FSAN_SET);
}

/* Fill in and sign a one-year server certificate for key. */
static int selfsigned_fill(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
    const char *name)
{
	unsigned char serial[16], kid[64];
	size_t kidlen = sizeof(kid);
	time_t now = time(NULL);
	int ret;

	ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (ret < 0)
		return ret;
	serial[0] = (serial[0] & 0x7f) | 0x01;	/* positive, non-zero */
	if ((ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial,
	    sizeof(serial))) < 0 ||
	    /* an hour back absorbs small clock skew between peers */
	    (ret = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt,
	    now + 365 * 86400)) < 0 ||
	    (ret = selfsigned_names(crt, name)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (ret = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_usage(crt,
	    GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_purpose_oid(crt,
	    GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
		return ret;
	if (gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen) >= 0 &&
	    (ret = gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen)) < 0)
		return ret;
	return gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
}

/* Make an ECDSA P-256 key and a self-signed certificate for name, both
 * PEM in memory; the SHA-256 fingerprint of the DER goes to fp. */
static int selfsigned(const char *name, gnutls_datum_t *cpem,
    gnutls_datum_t *kpem, char *fp, size_t fplen, char *err, size_t errlen)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	unsigned char md[SHA256_LEN];
	size_t mdlen = sizeof(md);
	int ret;

	cpem->data = kpem->data = NULL;
	if ((ret = gnutls_x509_privkey_init(&key)) < 0 ||
	    (ret = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (ret = gnutls_x509_crt_init(&crt)) < 0 ||
	    (ret = selfsigned_fill(crt, key, name)) < 0 ||
	    (ret = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256,
	    md, &mdlen)) < 0 ||
	    (ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
	    cpem)) < 0 ||
	    (ret = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
	    kpem)) < 0) {
		free_datum(cpem);
		set_err(err, errlen, "self-signed certificate", ret);
	} else if (fp != NULL)
		hex_colons(md, mdlen, fp, fplen);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret < 0 ? -1 : 0;
}

/* Client certificate check, run by GnuTLS inside the handshake so that a
 * rejected client gets a proper alert rather than a dropped connection. */
static int client_cert_cb(gnutls_session_t s)
{
	tls_conn *t = gnutls_session_get_ptr(s);
	gnutls_typed_vdata_st vd;
	gnutls_datum_t out;
	unsigned n = 0, status = 0;
	int ret;

	if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0) {
		if (t->srv->client_verify < 2)
			return 0;
		snprintf(t->err, sizeof(t->err), "no client certificate");
		t->peer_failed = 1;
		return -1;
	}
	memset(&vd, 0, sizeof(vd));
	vd.type = GNUTLS_DT_KEY_PURPOSE_OID;
	vd.data = (void *)GNUTLS_KP_TLS_WWW_CLIENT;
	ret = gnutls_certificate_verify_peers(s, &vd, 1, &status);
	if (ret >= 0 && status == 0)
		return 0;
	t->peer_failed = 1;
	if (ret < 0)
		snprintf(t->err, sizeof(t->err), "client certificate: %s",
		    gnutls_strerror(ret));
	else if (gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) >= 0) {
		snprintf(t->err, sizeof(t->err), "client certificate: %s",
		    out.data);
		gnutls_free(out.data);
		trim(t->err);
	} else
		snprintf(t->err, sizeof(t->err), "client certificate invalid");
	return -1;
}

static int load_key(const char *file, gnutls_x509_privkey_t *key,
    char *err, size_t errlen)
{
	char what[300];
	gnutls_datum_t d = { NULL, 0 };
	int ret;

	snprintf(what, sizeof(what), "key %s", file);
	*key = NULL;
	errno = 0;
	if ((ret = gnutls_load_file(file, &d)) < 0)
		return set_err(err, errlen, what, ret);
	if ((ret = gnutls_x509_privkey_init(key)) >= 0 &&
	    (ret = gnutls_x509_privkey_import2(*key, &d, GNUTLS_X509_FMT_PEM,
	    NULL, 0)) < 0) {
		gnutls_x509_privkey_deinit(*key);
		*key = NULL;
	}
	free_datum(&d);
	return ret < 0 ? set_err(err, errlen, what, ret) : 0;
}

/* One chain + key pair.  The files are parsed here rather than by
 * gnutls_certificate_set_x509_key_file2, which leaks on a malformed PEM
 * certificate (GnuTLS 3.7) - and a reload must survive a bad file. */
static int load_pair(gnutls_certificate_credentials_t cred,
    const char *cert, const char *keyfile, char *err, size_t errlen)
{
	char what[600];
	gnutls_datum_t d = { NULL, 0 };
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t key;
	unsigned n = 0, i;
	int ret;

	snprintf(what, sizeof(what), "certificate %s", cert);
	errno = 0;
	if ((ret = gnutls_load_file(cert, &d)) < 0)
		return set_err(err, errlen, what, ret);
	ret = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM,
	    GNUTLS_X509_CRT_LIST_SORT);
	gnutls_free(d.data);
	if (ret < 0)
		return set_err(err, errlen, what, ret);
	if (load_key(keyfile, &key, err, errlen) == 0) {
		ret = gnutls_certificate_set_x509_key(cred, crts, n, key);
		gnutls_x509_privkey_deinit(key);
		if (ret < 0) {
			snprintf(what, sizeof(what), "certificate %s, key %s",
			    cert, keyfile);
			set_err(err, errlen, what, ret);
		}
	} else
		ret = -1;
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return ret < 0 ? -1 : 0;
}

static int server_certs(tls_server *s, const tls_server_cfg *cfg,
    const tls_server *old, char *fp, size_t fplen, char *err, size_t errlen)
{
	char what[512];
	size_t i;
	int ret;

	for (i = 0; i < cfg->npairs && i < TLS_MAX_PAIRS; i++)
		if (load_pair(s->cred, cfg->cert[i], cfg->key[i], err,
		    errlen) < 0)
			return -1;
	if (cfg->npairs == 0) {
		if (cfg->servername == NULL || *cfg->servername == '\0') {
			snprintf(err, errlen,
			    "no certificate and no servername");
			return -1;
		}
		/* A reload keeps the generated certificate: a new one would
		 * break every pin taken from the printed fingerprint. */
		if (old != NULL && old->ss_cert.data != NULL &&
		    strcmp(old->ss_name, cfg->servername) == 0) {
			if (copy_datum(&s->ss_cert, &old->ss_cert) < 0 ||
			    copy_datum(&s->ss_key, &old->ss_key) < 0) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		} else if (selfsigned(cfg->servername, &s->ss_cert, &s->ss_key,
		    fp, fplen, err, errlen) < 0)
			return -1;
		if ((s->ss_name = strdup(cfg->servername)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		ret = gnutls_certificate_set_x509_key_mem2(s->cred, &s->ss_cert,
		    &s->ss_key, GNUTLS_X509_FMT_PEM, NULL, 0);
		if (ret < 0)
			return set_err(err, errlen, "self-signed certificate",
			    ret);
	}
	if (cfg->ocsp != NULL && *cfg->ocsp != '\0') {
		ret = gnutls_certificate_set_ocsp_status_request_file(s->cred,
		    cfg->ocsp, 0);
		if (ret < 0) {
			snprintf(what, sizeof(what), "OCSP response %s",
			    cfg->ocsp);
			return set_err(err, errlen, what, ret);
		}
	}
	return 0;
}

static int server_client_ca(tls_server *s, const tls_server_cfg *cfg,
    char *err, size_t errlen)
{
	char what[300];
	int ret;

	if (cfg->client_verify <= 0)
		return 0;
	if (cfg->client_ca == NULL || *cfg->client_ca == '\0') {
		snprintf(err, errlen, "client certificates need a client CA");
		return -1;
	}
	ret = gnutls_certificate_set_x509_trust_file(s->cred, cfg->client_ca,
	    GNUTLS_X509_FMT_PEM);
	snprintf(what, sizeof(what), "client CA %s", cfg->client_ca);
	if (ret < 0)
		return set_err(err, errlen, what, ret);
	if (ret == 0) {
		snprintf(err, errlen, "%s: no certificates", what);
		return -1;
	}
	gnutls_certificate_set_verify_function(s->cred, client_cert_cb);
	return 0;
}

static int server_priority(tls_server *s, const tls_server_cfg *cfg,
    char *err, size_t errlen)
{
	const char *p = cfg->priority, *pos = NULL;
	int ret;

	if (p == NULL || *p == '\0')
		p = TLS_DEFAULT_PRIORITY;
	ret = gnutls_priority_init(&s->prio, p, &pos);
	if (ret < 0)
		s->prio = NULL;
	if (ret == GNUTLS_E_INVALID_REQUEST && pos != NULL) {
		snprintf(err, errlen, "TLS priority: syntax error at \"%.60s\"",
		    pos);
		return -1;
	}
	if (ret < 0)
		return set_err(err, errlen, "TLS priority", ret);
	return 0;
}

static void server_unref(tls_server *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	if (s->cred != NULL)
		gnutls_certificate_free_credentials(s->cred);
	if (s->prio != NULL)
		gnutls_priority_deinit(s->prio);
	free_datum(&s->ticket_key);
	free_datum(&s->ss_cert);
	free_datum(&s->ss_key);
	free(s->ss_name);
	free(s);
}

static tls_server *server_build(const tls_server_cfg *cfg,
    const tls_server *old, char *fp, size_t fplen, char *err, size_t errlen)
{
	tls_server *s;
	int ret;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->refs = 1;
	s->client_verify = cfg->client_verify;
	if ((ret = gnutls_certificate_allocate_credentials(&s->cred)) < 0) {
		s->cred = NULL;
		set_err(err, errlen, "TLS credentials", ret);
		goto fail;
	}
	if (server_certs(s, cfg, old, fp, fplen, err, errlen) < 0 ||
	    server_client_ca(s, cfg, err, errlen) < 0 ||
	    server_priority(s, cfg, err, errlen) < 0)
		goto fail;
	/* Same ticket key after a reload: clients' tickets stay good. */
	if (old != NULL)
		ret = copy_datum(&s->ticket_key, &old->ticket_key) < 0 ?
		    GNUTLS_E_MEMORY_ERROR : 0;
	else
		ret = gnutls_session_ticket_key_generate(&s->ticket_key);
	if (ret < 0) {
		set_err(err, errlen, "session ticket key", ret);
		goto fail;
	}
	return s;
fail:
	server_unref(s);
	return NULL;
}

tls_server *tls_server_new(const tls_server_cfg *cfg, char *fp,
    size_t fplen, char *err, size_t errlen)
{
	if (fp != NULL && fplen > 0)
		fp[0] = '\0';
	return server_build(cfg, NULL, fp, fplen, err, errlen);
}

int tls_server_reload(tls_server **s, const tls_server_cfg *cfg, char *err,
    size_t errlen)
{
	tls_server *n;

	if ((n = server_build(cfg, *s, NULL, 0, err, errlen)) == NULL)
		return -1;
	server_unref(*s);
	*s = n;
	return 0;
}

void tls_server_free(tls_server *s)
{
	server_unref(s);
}

/*
 * Client credentials
 */

/* "a, b,c" -> datums pointing into a private copy. */
static int client_alpn(tls_client *c, const char *list, char *err,
    size_t errlen)
{
	char *p, *tok, *save = NULL;
	size_t len;

	if (list == NULL || *list == '\0')
		return 0;
	if ((c->alpn_buf = strdup(list)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = c->alpn_buf; (tok = strtok_r(p, ",", &save)) != NULL;
	    p = NULL) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		len = strlen(tok);
		while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (len == 0)
			continue;
		if (len > 255 || c->nalpn == TLS_MAX_ALPN) {
			snprintf(err, errlen, "ALPN list \"%s\" too long",
			    list);
			return -1;
		}
		c->alpn[c->nalpn].data = (unsigned char *)tok;
		c->alpn[c->nalpn++].size = (unsigned)len;
	}
	return 0;
}

static int client_trust(tls_client *c, const tls_client_cfg *cfg,
    char *err, size_t errlen)
{
	char what[300];
	int ret;

	if (cfg->ca_file != NULL && *cfg->ca_file != '\0') {
		snprintf(what, sizeof(what), "CA file %s", cfg->ca_file);
		ret = gnutls_certificate_set_x509_trust_file(c->cred,
		    cfg->ca_file, GNUTLS_X509_FMT_PEM);
	} else {
		snprintf(what, sizeof(what), "system trust store");
		ret = gnutls_certificate_set_x509_system_trust(c->cred);
	}
	/* Without verification the trust store is not needed. */
	if (c->insecure || c->haspin)
		return 0;
	if (ret < 0)
		return set_err(err, errlen, what, ret);
	if (ret == 0) {
		snprintf(err, errlen, "%s: no certificates", what);
		return -1;
	}
	return 0;
}

static void client_unref(tls_client *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	if (c->prio != NULL)
		gnutls_priority_deinit(c->prio);
	free_datum(&c->sess);
	free(c->sni);
	free(c->alpn_buf);
	free(c);
}

tls_client *tls_client_new(const tls_client_cfg *cfg, char *err,
    size_t errlen)
{
	tls_client *c;
	int ret;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->insecure = cfg->insecure;
	c->resume = cfg->resume;
	if (cfg->pin != NULL && *cfg->pin != '\0') {
		if (parse_pin(cfg->pin, c->pin) < 0) {
			snprintf(err, errlen, "certificate pin: want a SHA-256 "
			    "fingerprint (64 hex digits, colons optional)");
			goto fail;
		}
		c->haspin = 1;
	}
	if (cfg->sni != NULL && *cfg->sni != '\0' &&
	    (c->sni = strdup(cfg->sni)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (client_alpn(c, cfg->alpn, err, errlen) < 0)
		goto fail;
	if ((ret = gnutls_certificate_allocate_credentials(&c->cred)) < 0) {
		c->cred = NULL;
		set_err(err, errlen, "TLS credentials", ret);
		goto fail;
	}
	if (client_trust(c, cfg, err, errlen) < 0)
		goto fail;
	if ((ret = gnutls_priority_init(&c->prio, TLS_CLIENT_PRIORITY,
	    NULL)) < 0) {
		c->prio = NULL;
		set_err(err, errlen, "TLS priority", ret);
		goto fail;
	}
	return c;
fail:
	client_unref(c);
	return NULL;
}

void tls_client_free(tls_client *c)
{
	client_unref(c);
}

/*
 * Sessions
 */

/* Pinning replaces CA trust: only the leaf's SHA-256 must match. */
static int pin_cb(gnutls_session_t s)
{
	tls_conn *t = gnutls_session_get_ptr(s);
	const gnutls_datum_t *peers;
	unsigned char md[SHA256_LEN];
	unsigned n = 0;

	peers = gnutls_certificate_get_peers(s, &n);
	if (peers != NULL && n > 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size,
	    md) >= 0 && memcmp(md, t->cli->pin, SHA256_LEN) == 0)
		return 0;
	t->pin_failed = 1;
	return -1;
}

static tls_conn *conn_new(int fd, unsigned flags,
    gnutls_priority_t prio, gnutls_certificate_credentials_t cred)
{
	tls_conn *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	flags |= GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
	if (gnutls_init(&t->s, flags) < 0) {
		free(t);
		return NULL;
	}
	if (gnutls_priority_set(t->s, prio) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		gnutls_deinit(t->s);
		free(t);
		return NULL;
	}
	gnutls_session_set_ptr(t->s, t);
	t->fd = fd;
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_pull_timeout_function(t->s, pull_timeout);
	gnutls_transport_set_vec_push_function(t->s, vec_push);
	/* The caller's loop owns timeouts; never fail on wall-clock time. */
	gnutls_handshake_set_timeout(t->s, 0);
	return t;
}

tls_conn *tls_accept(tls_server *s, int fd)
{
	static const gnutls_datum_t http11 = {
		(unsigned char *)"http/1.1", 8
	};
	tls_conn *t;

	if ((t = conn_new(fd, GNUTLS_SERVER, s->prio, s->cred)) == NULL)
		return NULL;
	if (gnutls_session_ticket_enable_server(t->s, &s->ticket_key) < 0 ||
	    gnutls_alpn_set_protocols(t->s, &http11, 1,
	    GNUTLS_ALPN_MANDATORY) < 0) {
		gnutls_deinit(t->s);
		free(t);
		return NULL;
	}
	if (s->client_verify > 0)
		gnutls_certificate_server_set_request(t->s,
		    s->client_verify > 1 ? GNUTLS_CERT_REQUIRE :
		    GNUTLS_CERT_REQUEST);
	t->srv = s;
	s->refs++;
	return t;
}

static int is_ip(const char *name)
{
	unsigned char ip[16];

	return inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1;
}

static int connect_setup(tls_client *c, tls_conn *t)
{
	int ret = 0;

	/* RFC 6066: no IP literals in SNI (they are still verified). */
	if (c->sni != NULL && !is_ip(c->sni))
		ret = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, c->sni,
		    strlen(c->sni));
	if (ret >= 0 && c->nalpn > 0)
		ret = gnutls_alpn_set_protocols(t->s, c->alpn, c->nalpn, 0);
	if (ret < 0)
		return ret;
	if (c->haspin)
		gnutls_session_set_verify_function(t->s, pin_cb);
	else if (!c->insecure)
		gnutls_session_set_verify_cert(t->s, c->sni, 0);
	/* A stale or refused ticket only costs a full handshake. */
	if (c->resume && c->sess.data != NULL)
		(void)gnutls_session_set_data(t->s, c->sess.data,
		    c->sess.size);
	return 0;
}

tls_conn *tls_connect(tls_client *c, int fd)
{
	tls_conn *t;

	t = conn_new(fd, GNUTLS_CLIENT | (c->resume ? 0 : GNUTLS_NO_TICKETS),
	    c->prio, c->cred);
	if (t == NULL)
		return NULL;
	if (connect_setup(c, t) < 0) {
		gnutls_deinit(t->s);
		free(t);
		return NULL;
	}
	t->cli = c;
	c->refs++;
	return t;
}

static int want_dir(tls_conn *t)
{
	return gnutls_record_get_direction(t->s) ? TLS_WANT_WRITE :
	    TLS_WANT_READ;
}

/* Record why the session died; the callbacks may have said it already. */
static int conn_fail(tls_conn *t, int ret)
{
	gnutls_datum_t out;
	const char *name;
	unsigned status;

	t->dead = 1;
	/* GnuTLS leaves telling the peer to us: without an alert a failed
	 * handshake looks like a stall to the other end.  Best effort on a
	 * non-blocking socket. */
	if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED &&
	    ret != GNUTLS_E_PREMATURE_TERMINATION &&
	    ret != GNUTLS_E_PUSH_ERROR && ret != GNUTLS_E_PULL_ERROR)
		(void)gnutls_alert_send_appropriate(t->s, ret);
	if (t->peer_failed && t->err[0] != '\0')
		return TLS_ERR;
	if (t->pin_failed)
		snprintf(t->err, sizeof(t->err), "certificate pin mismatch");
	else if (t->srv != NULL && (ret == GNUTLS_E_CERTIFICATE_REQUIRED ||
	    ret == GNUTLS_E_NO_CERTIFICATE_FOUND))
		snprintf(t->err, sizeof(t->err), "no client certificate");
	else if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    (status = gnutls_session_get_verify_cert_status(t->s)) != 0 &&
	    gnutls_certificate_verification_status_print(status,
	    GNUTLS_CRT_X509, &out, 0) >= 0) {
		snprintf(t->err, sizeof(t->err),
		    "certificate verification failed: %s", out.data);
		gnutls_free(out.data);
		trim(t->err);
	} else if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		name = gnutls_alert_get_name(gnutls_alert_get(t->s));
		snprintf(t->err, sizeof(t->err), "peer sent TLS alert: %s",
		    name != NULL ? name : "unknown");
	}
	else
		snprintf(t->err, sizeof(t->err), "TLS: %s",
		    gnutls_strerror(ret));
	return TLS_ERR;
}

/* Keep this session for the next tls_connect.  A TLS 1.3 ticket comes
 * after the handshake, so this is tried again after reads until then;
 * gnutls_session_get_data2 is not called earlier because it would wait
 * for the ticket. */
static void save_session(tls_conn *t)
{
	gnutls_datum_t d;

	if (t->cli == NULL || !t->cli->resume || t->saved || !t->done)
		return;
	if (gnutls_protocol_get_version(t->s) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(t->s) & GNUTLS_SFLAGS_SESSION_TICKET))
		return;
	t->saved = 1;
	if (gnutls_session_get_data2(t->s, &d) < 0)
		return;
	free_datum(&t->cli->sess);
	t->cli->sess = d;
}

static char *peer_subject(tls_conn *t)
{
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn;
	unsigned n = 0;
	char *s = NULL;

	peers = gnutls_certificate_get_peers(t->s, &n);
	if (peers == NULL || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return NULL;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		s = datum_strdup(&dn);
		gnutls_free(dn.data);
	}
	gnutls_x509_crt_deinit(crt);
	return s;
}

static int handshake_done(tls_conn *t)
{
	char name[256];
	size_t len = sizeof(name) - 1;
	unsigned type;
	gnutls_datum_t proto;

	t->done = 1;
	if (t->srv != NULL) {
		if (gnutls_server_name_get(t->s, name, &len, &type, 0) >= 0 &&
		    type == GNUTLS_NAME_DNS) {
			if (len >= sizeof(name))
				len = sizeof(name) - 1;
			name[len] = '\0';
			t->sni = strdup(name);
		}
		if (t->srv->client_verify > 0)
			t->subject = peer_subject(t);
		if (t->srv->client_verify > 1 && t->subject == NULL) {
			snprintf(t->err, sizeof(t->err),
			    "no client certificate");
			t->peer_failed = 1;
			return conn_fail(t, GNUTLS_E_NO_CERTIFICATE_FOUND);
		}
	} else if (t->cli->sni != NULL)
		t->sni = strdup(t->cli->sni);
	if (gnutls_alpn_get_selected_protocol(t->s, &proto) >= 0)
		t->alpn = datum_strdup(&proto);
	save_session(t);
	return TLS_OK;
}

int tls_handshake(tls_conn *t)
{
	int i, ret;

	if (t->dead)
		return TLS_ERR;
	if (t->done)
		return TLS_OK;
	/* Non-fatal results other than AGAIN (a warning alert, say) mean
	 * "call again now"; a few in a row is plenty. */
	for (i = 0; i < 8; i++) {
		ret = gnutls_handshake(t->s);
		if (ret == 0)
			return handshake_done(t);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			return want_dir(t);
		if (gnutls_error_is_fatal(ret))
			break;
	}
	return conn_fail(t, ret);
}

/* A no_renegotiation alert that met a full socket: finish it before any
 * other record, since GnuTLS wants the interrupted call repeated. */
static int flush_alert(tls_conn *t)
{
	int ret;

	if (!t->alert)
		return 0;
	ret = gnutls_alert_send(t->s, GNUTLS_AL_WARNING,
	    GNUTLS_A_NO_RENEGOTIATION);
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		return 1;
	t->alert = 0;
	return ret < 0 ? ret : 0;
}

static ssize_t read_records(tls_conn *t, void *data, size_t n, int *want)
{
	ssize_t r;
	int i, ret;

	if (!t->done || t->dead) {
		*want = TLS_ERR;
		return -1;
	}
	if ((ret = flush_alert(t)) != 0) {
		*want = ret > 0 ? TLS_WANT_WRITE : conn_fail(t, ret);
		return -1;
	}
	for (i = 0; i < 16; i++) {
		r = gnutls_record_recv(t->s, data, n);
		save_session(t);
		/* The refused ClientHello stays queued in GnuTLS; the next
		 * read drops it with this error (and nothing else). */
		if (r == GNUTLS_E_UNEXPECTED_PACKET && t->stale_hello) {
			t->stale_hello = 0;
			continue;
		}
		t->stale_hello = 0;
		if (r >= 0)
			return r;
		switch (r) {
		case GNUTLS_E_AGAIN:
		case GNUTLS_E_INTERRUPTED:
			*want = want_dir(t);
			return -1;
		case GNUTLS_E_PREMATURE_TERMINATION:
			return 0;	/* TCP EOF without close_notify */
		case GNUTLS_E_REHANDSHAKE:
			/* Renegotiation (TLS 1.2 only) is refused; the
			 * session goes on with the current keys. */
			t->alert = 1;
			t->stale_hello = t->srv != NULL;
			if ((ret = flush_alert(t)) > 0) {
				*want = TLS_WANT_WRITE;
				return -1;
			}
			if (ret < 0) {
				*want = conn_fail(t, ret);
				return -1;
			}
			continue;
		default:
			if (!gnutls_error_is_fatal((int)r))
				continue;	/* e.g. a warning alert */
			break;
		}
		break;
	}
	*want = conn_fail(t, r < 0 && gnutls_error_is_fatal((int)r) ?
	    (int)r : GNUTLS_E_UNEXPECTED_PACKET);
	return -1;
}

/* What GnuTLS sent while reading (an alert, a key update) may wait
 * behind wbuf: send it now, best effort (a full socket keeps it for
 * tls_flush()). */
ssize_t tls_read(tls_conn *t, void *data, size_t n, int *want)
{
	ssize_t r = read_records(t, data, n, want);

	if (t->queued) {
		t->queued = 0;
		(void)wflush(t);
	}
	return r;
}

/* The socket failed under wbuf: the session is over. */
static int send_fail(tls_conn *t, int e)
{
	t->dead = 1;
	snprintf(t->err, sizeof(t->err), "send: %s", strerror(e));
	return TLS_ERR;
}

ssize_t tls_flush(tls_conn *t, int *want)
{
	if (t->dead) {
		*want = TLS_ERR;
		return -1;
	}
	if (wflush(t) == 0)
		return 0;
	*want = errno == EAGAIN || errno == EWOULDBLOCK ? TLS_WANT_WRITE :
	    send_fail(t, errno);
	return -1;
}

/* Batched: records of data go into wbuf while it has room for one more,
 * sent whenever it fills and once at the end.  What is taken is ours
 * even if the socket is full (tls_write_pending(), tls_flush()). */
static ssize_t write_gather(tls_conn *t, const uint8_t *data, size_t n,
    int *want)
{
	size_t done = 0;
	ssize_t r = 0;
	int room, sent = 1;

	t->gather = 1;
	while (done < n) {
		if ((room = wroom(t, TLS_SEND_ROOM)) == 0) {
			if ((sent = wflush(t) == 0))
				room = wroom(t, TLS_SEND_ROOM);
		}
		if (room <= 0) {
			r = room < 0 ? GNUTLS_E_MEMORY_ERROR : 0;
			break;
		}
		r = gnutls_record_send(t->s, data + done,
		    n - done > 16384 ? 16384 : n - done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	t->gather = 0;
	if (r < 0) {
		*want = conn_fail(t, (int)r);
		return -1;
	}
	/* One send for what the loop gathered (none if the socket just
	 * said it is full). */
	if ((!sent || wflush(t) < 0) && errno != EAGAIN &&
	    errno != EWOULDBLOCK) {
		*want = send_fail(t, errno);
		return -1;
	}
	if (done == 0) {
		*want = TLS_WANT_WRITE;
		return -1;
	}
	return (ssize_t)done;
}

ssize_t tls_write(tls_conn *t, const void *data, size_t n, int *want)
{
	ssize_t r;
	int ret;

	if (!t->done || t->dead) {
		*want = TLS_ERR;
		return -1;
	}
	if ((ret = flush_alert(t)) != 0) {
		*want = ret > 0 ? TLS_WANT_WRITE : conn_fail(t, ret);
		return -1;
	}
	if (t->cork)
		return write_gather(t, data, n, want);
	r = gnutls_record_send(t->s, data, n);
	if (r >= 0)
		return r;
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		*want = want_dir(t);
	else
		*want = conn_fail(t, (int)r);
	return -1;
}

/*
 * Decrypted bytes, plus read-ahead bytes when they hold a whole record:
 * GnuTLS takes a record's header, then its body, so the read-ahead starts
 * on a record boundary whenever it is not empty.  A partial record is not
 * "pending": the rest comes with the next readable event, and counting it
 * would make the caller spin.
 */
size_t tls_pending(tls_conn *t)
{
	size_t n, rec;
	const uint8_t *h;

	if (!t->done || t->dead)
		return 0;
	n = gnutls_record_check_pending(t->s);
	if (t->rlen >= 5) {
		h = t->rbuf + t->roff;
		rec = 5 + ((size_t)h[3] << 8 | h[4]);
		if (t->rlen >= rec)
			n += t->rlen;
	}
	return n;
}

void tls_set_cork(tls_conn *t, int on)
{
	t->cork = on;
}

int tls_write_pending(tls_conn *t)
{
	return t->wlen > 0;
}


void tls_bye(tls_conn *t)
{
	if (t->bye || !t->done || t->dead)
		return;
	t->bye = 1;
	/* Best effort: a full socket just loses the close_notify. */
	(void)gnutls_bye(t->s, GNUTLS_SHUT_WR);
	(void)wflush(t);
}

void tls_free(tls_conn *t)
{
	if (t == NULL)
		return;
	gnutls_deinit(t->s);
	if (t->rbuf)
		bufpool_put(t->rbuf, TLS_RBUF);
	if (t->wbuf)
		bufpool_put(t->wbuf, TLS_WBUF);
	server_unref(t->srv);
	client_unref(t->cli);
	free(t->sni);
	free(t->alpn);
	free(t->subject);
	free(t);
}

const char *tls_error(tls_conn *t)
{
	return t->err[0] != '\0' ? t->err : "no error";
}

const char *tls_sni(tls_conn *t)
{
	return t->done ? t->sni : NULL;
}

const char *tls_alpn(tls_conn *t)
{
	return t->done ? t->alpn : NULL;
}

const char *tls_version(tls_conn *t)
{
	if (!t->done)
		return NULL;
	return gnutls_protocol_get_name(gnutls_protocol_get_version(t->s));
}

const char *tls_client_subject(tls_conn *t)
{
	return t->done ? t->subject : NULL;
}
