/*
 * test_tls.c - TLS over a non-blocking socketpair, both ends driven from
 * one thread: handshake with the test CA, SNI picking the second pair,
 * ALPN, data both ways (1 MiB), tls_pending, self-signed start-up with
 * pinning and insecure mode, client certificates, reload, resumption,
 * refused renegotiation, EOF and close_notify.
 *
 * Certificates come from tests/certs (make.sh); run from the repo root.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "../../core/tls.h"
#include "test.h"

#define CERTS "tests/certs/"

/* One end of a connection: a tls_conn, or a raw GnuTLS client for what
 * tls_connect cannot do (present a client certificate, renegotiate). */
typedef struct side {
	tls_conn *t;
	gnutls_session_t raw;
	int fd;
	int want;	/* TLS_WANT_* while in progress */
	int rc;		/* 1 done, -1 failed, 0 in progress */
} side;

static void mkpair(int fd[2])
{
	int i;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0) {
		perror("socketpair");
		exit(2);
	}
	for (i = 0; i < 2; i++)
		fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
}

static int raw_step(gnutls_session_t s)
{
	int ret = gnutls_handshake(s);

	if (ret == 0)
		return TLS_OK;
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		return gnutls_record_get_direction(s) ? TLS_WANT_WRITE :
		    TLS_WANT_READ;
	if (!gnutls_error_is_fatal(ret))
		return TLS_WANT_READ;
	return TLS_ERR;
}

static void step(side *x)
{
	int r;

	if (x->rc != 0)
		return;
	r = x->t != NULL ? tls_handshake(x->t) : raw_step(x->raw);
	if (r == TLS_OK)
		x->rc = 1;
	else if (r == TLS_ERR)
		x->rc = -1;
	else
		x->want = r;
}

static short events(const side *x)
{
	return x->want == TLS_WANT_WRITE ? POLLOUT : POLLIN;
}

/* Run both handshakes until both finish; once one side fails the other
 * gets a short grace to notice (it may never: a TLS 1.3 client is done
 * before the server has checked its certificate). */
static void handshake(side *a, side *b)
{
	struct pollfd p[2];
	int i, grace = 50;

	a->rc = b->rc = 0;
	a->want = b->want = TLS_WANT_READ;
	for (i = 0; i < 5000 && grace > 0; i++) {
		step(a);
		step(b);
		if (a->rc != 0 && b->rc != 0)
			return;
		if (a->rc < 0 || b->rc < 0)
			grace--;
		p[0].fd = a->fd;
		p[0].events = a->rc == 0 ? events(a) : 0;
		p[1].fd = b->fd;
		p[1].events = b->rc == 0 ? events(b) : 0;
		poll(p, 2, 10);
	}
}

/* Read whatever is there now into buf; -1 on error or EOF. */
static ssize_t drain(tls_conn *t, unsigned char *buf, size_t n)
{
	ssize_t r, got = 0;
	int want;

	while ((size_t)got < n) {
		r = tls_read(t, buf + got, n - got, &want);
		if (r > 0)
			got += r;
		else if (r == 0 || want == TLS_ERR)
			return got ? got : -1;
		else
			break;
	}
	return got;
}

/* Send n bytes from one to the other, interleaving reads so neither
 * socket buffer stalls; returns 0 if everything arrived intact. */
static int transfer(tls_conn *from, tls_conn *to, size_t n)
{
	unsigned char *src = malloc(n), *dst = malloc(n);
	size_t sent = 0, got = 0, i;
	ssize_t r;
	int want, spins = 0, ok;

	for (i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 7 + i / 251);
	while (got < n && spins++ < 100000) {
		if (sent < n) {
			r = tls_write(from, src + sent, n - sent, &want);
			if (r > 0)
				sent += (size_t)r;
			else if (want == TLS_ERR)
				break;
		}
		r = drain(to, dst + got, n - got);
		if (r < 0)
			break;
		got += (size_t)r;
	}
	ok = got == n && memcmp(src, dst, n) == 0;
	free(src);
	free(dst);
	return ok ? 0 : -1;
}

static void pair_free(side *a, side *b)
{
	tls_free(a->t);
	tls_free(b->t);
	a->t = b->t = NULL;
	close(a->fd);
	close(b->fd);
}

/* Server side and a tls_connect side on a fresh socketpair. */
static void start(tls_server *srv, tls_client *cli, side *s, side *c)
{
	int fd[2];

	mkpair(fd);
	memset(s, 0, sizeof(*s));
	memset(c, 0, sizeof(*c));
	s->fd = fd[0];
	c->fd = fd[1];
	s->t = tls_accept(srv, s->fd);
	c->t = tls_connect(cli, c->fd);
	if (s->t == NULL || c->t == NULL) {
		fprintf(stderr, "tls_accept/tls_connect failed\n");
		exit(2);
	}
	handshake(s, c);
}

static tls_server *server(const char *c1, const char *k1, const char *c2,
    const char *k2)
{
	tls_server_cfg cfg;
	tls_server *s;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cfg.cert[0] = c1;
	cfg.key[0] = k1;
	cfg.cert[1] = c2;
	cfg.key[1] = k2;
	cfg.npairs = c2 != NULL ? 2 : 1;
	if ((s = tls_server_new(&cfg, NULL, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tls_server_new: %s\n", err);
		exit(2);
	}
	return s;
}

static tls_client *client(const char *sni, const char *alpn,
    const char *ca, const char *pin, int insecure, int resume)
{
	tls_client_cfg cfg;
	tls_client *c;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cfg.sni = sni;
	cfg.alpn = alpn;
	cfg.ca_file = ca;
	cfg.pin = pin;
	cfg.insecure = insecure;
	cfg.resume = resume;
	if ((c = tls_client_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tls_client_new: %s\n", err);
		exit(2);
	}
	return c;
}

static int streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static void test_basic(void)
{
	tls_server *srv = server(CERTS "localhost.pem", CERTS "localhost.key",
	    CERTS "other.pem", CERTS "other.key");
	tls_client *cli = client("localhost", "http/1.1", CERTS "ca.pem",
	    NULL, 0, 0);
	unsigned char buf[256];
	side s, c;
	ssize_t r;
	int want;

	start(srv, cli, &s, &c);
	CHECK_EQ(s.rc, 1);
	CHECK_EQ(c.rc, 1);
	CHECK(streq(tls_alpn(s.t), "http/1.1"));
	CHECK(streq(tls_alpn(c.t), "http/1.1"));
	CHECK(streq(tls_sni(s.t), "localhost"));
	CHECK(streq(tls_sni(c.t), "localhost"));
	CHECK(streq(tls_version(s.t), "TLS1.3"));
	CHECK(tls_client_subject(s.t) == NULL);

	CHECK_EQ(transfer(c.t, s.t, 5), 0);
	CHECK_EQ(transfer(s.t, c.t, 5), 0);
	CHECK_EQ(transfer(c.t, s.t, 1 << 20), 0);
	CHECK_EQ(transfer(s.t, c.t, 1 << 20), 0);

	/* One 100-byte record read 10 bytes at a time: the rest waits
	 * decrypted inside GnuTLS, where poll() cannot see it. */
	memset(buf, 'x', 100);
	CHECK_EQ(tls_write(c.t, buf, 100, &want), 100);
	r = -1;
	while (r < 0) {
		r = tls_read(s.t, buf, 10, &want);
		if (r < 0 && want == TLS_ERR)
			break;
	}
	CHECK_EQ(r, 10);
	CHECK_EQ(tls_pending(s.t), 90);
	CHECK_EQ(tls_read(s.t, buf, sizeof(buf), &want), 90);
	CHECK_EQ(tls_pending(s.t), 0);
	CHECK_EQ(tls_read(s.t, buf, sizeof(buf), &want), -1);
	CHECK_EQ(want, TLS_WANT_READ);

	/* close_notify reads as a clean EOF. */
	tls_bye(c.t);
	tls_bye(c.t);	/* only once */
	CHECK_EQ(tls_read(s.t, buf, sizeof(buf), &want), 0);
	pair_free(&s, &c);

	/* So does a TCP EOF without close_notify. */
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	shutdown(c.fd, SHUT_WR);
	CHECK_EQ(tls_read(s.t, buf, sizeof(buf), &want), 0);
	pair_free(&s, &c);

	tls_client_free(cli);
	tls_server_free(srv);
}

/*
 * Batching (what the server turns on): records gathered into one send,
 * taken even when the socket is full (then tls_write_pending() and
 * tls_flush()), read-ahead counted by tls_pending(), and a close_notify
 * queued behind unsent records arriving after them.
 */
static void test_batching(void)
{
	tls_server *srv = server(CERTS "localhost.pem", CERTS "localhost.key",
	    NULL, NULL);
	tls_client *cli = client("localhost", "http/1.1", CERTS "ca.pem",
	    NULL, 0, 0);
	size_t n = 4 << 20, sent = 0, got = 0, i;
	unsigned char *src = malloc(n), *dst = malloc(n);
	int want, pending_seen = 0, spins = 0, eof = 0;
	ssize_t r;
	side s, c;

	for (i = 0; i < n; i++)
		src[i] = (unsigned char)(i * 13 + i / 509);
	start(srv, cli, &s, &c);
	CHECK_EQ(s.rc, 1);
	tls_set_cork(s.t, 1);
	CHECK_EQ(tls_write_pending(s.t), 0);

	/* Nobody reads: the socket fills, the last batch stays with us. */
	while (sent < n && spins++ < 10000) {
		r = tls_write(s.t, src + sent, n - sent, &want);
		if (r < 0) {
			CHECK_EQ(want, TLS_WANT_WRITE);
			break;
		}
		CHECK(r > 0);
		sent += (size_t)r;
	}
	CHECK(sent > 0 && sent < n);
	CHECK_EQ(tls_write_pending(s.t), 1);
	CHECK_EQ(tls_flush(s.t, &want), -1);
	CHECK_EQ(want, TLS_WANT_WRITE);

	/* The client drains; flushes and writes go on; all of it arrives
	 * in order. */
	spins = 0;
	while (got < n && spins++ < 100000) {
		r = drain(c.t, dst + got, n - got);
		if (r < 0)
			break;
		got += (size_t)r;
		if (tls_write_pending(s.t)) {
			pending_seen++;
			if (tls_flush(s.t, &want) < 0)
				CHECK_EQ(want, TLS_WANT_WRITE);
		} else if (sent < n) {
			r = tls_write(s.t, src + sent, n - sent, &want);
			if (r > 0)
				sent += (size_t)r;
		}
	}
	CHECK_EQ(got, n);
	CHECK(memcmp(src, dst, n) == 0);
	CHECK(pending_seen > 0);

	/* Fill again, then close_notify: it must come after the data. */
	sent = got = 0;
	while (sent < n) {
		r = tls_write(s.t, src + sent, n - sent, &want);
		if (r < 0)
			break;
		sent += (size_t)r;
	}
	CHECK_EQ(tls_write_pending(s.t), 1);
	tls_bye(s.t);
	spins = 0;
	while (!eof && spins++ < 100000) {
		r = tls_read(c.t, dst + got, n - got, &want);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			eof = 1;
		else if (want == TLS_ERR)
			break;
		else if (tls_write_pending(s.t))
			(void)tls_flush(s.t, &want);
	}
	CHECK_EQ(eof, 1);
	CHECK_EQ(got, sent);
	CHECK(memcmp(src, dst, got) == 0);
	CHECK_EQ(tls_write_pending(s.t), 0);
	pair_free(&s, &c);

	/* Read-ahead: many records from one recv, all counted pending. */
	start(srv, cli, &s, &c);
	tls_set_cork(s.t, 1);
	for (i = 0; i < 4; i++)
		CHECK_EQ(tls_write(c.t, src, 1000, &want), 1000);
	r = -1;
	for (i = 0; i < 100 && r < 0; i++)
		r = tls_read(s.t, dst, 1000, &want);
	CHECK_EQ(r, 1000);
	CHECK_EQ(tls_pending(s.t), 3 * (1000 + 22));
	CHECK_EQ(drain(s.t, dst, n), 3000);
	CHECK_EQ(tls_pending(s.t), 0);
	CHECK_EQ(transfer(c.t, s.t, 1 << 20), 0);
	CHECK_EQ(transfer(s.t, c.t, 1 << 20), 0);
	pair_free(&s, &c);

	free(src);
	free(dst);
	tls_client_free(cli);
	tls_server_free(srv);
}

static void test_sni(void)
{
	tls_server *srv = server(CERTS "localhost.pem", CERTS "localhost.key",
	    CERTS "other.pem", CERTS "other.key");
	tls_client *cli = client("other.test", "http/1.1", CERTS "ca.pem",
	    NULL, 0, 0);
	tls_client *bad = client("nosuch.test", NULL, CERTS "ca.pem",
	    NULL, 0, 0);
	side s, c;

	/* Verification by name only passes if other.pem was served. */
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	CHECK(streq(tls_sni(s.t), "other.test"));
	CHECK_EQ(transfer(c.t, s.t, 1000), 0);
	pair_free(&s, &c);

	/* An unknown name gets the first pair, which fails verification. */
	start(srv, bad, &s, &c);
	CHECK_EQ(c.rc, -1);
	CHECK(strstr(tls_error(c.t), "verification") != NULL);
	pair_free(&s, &c);

	tls_client_free(cli);
	tls_client_free(bad);
	tls_server_free(srv);
}

static void test_alpn(void)
{
	tls_server *srv = server(CERTS "localhost.pem", CERTS "localhost.key",
	    NULL, NULL);
	tls_client *none = client("localhost", NULL, CERTS "ca.pem",
	    NULL, 0, 0);
	tls_client *both = client("localhost", "h2, http/1.1", CERTS "ca.pem",
	    NULL, 0, 0);
	tls_client *h2 = client("localhost", "h2", CERTS "ca.pem", NULL, 0, 0);
	side s, c;

	start(srv, none, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	CHECK(tls_alpn(s.t) == NULL);
	CHECK(tls_alpn(c.t) == NULL);
	pair_free(&s, &c);

	start(srv, both, &s, &c);
	CHECK_EQ(s.rc, 1);
	CHECK(streq(tls_alpn(c.t), "http/1.1"));
	pair_free(&s, &c);

	/* h2 only: refused with an alert on both ends, no hang. */
	start(srv, h2, &s, &c);
	CHECK_EQ(s.rc, -1);
	CHECK_EQ(c.rc, -1);
	CHECK(strstr(tls_error(c.t), "alert") != NULL);
	pair_free(&s, &c);

	tls_client_free(none);
	tls_client_free(both);
	tls_client_free(h2);
	tls_server_free(srv);
}

static tls_server *selfsigned(const char *name, char *fp, size_t fplen)
{
	tls_server_cfg cfg;
	tls_server *s;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cfg.servername = name;
	if ((s = tls_server_new(&cfg, fp, fplen, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tls_server_new: %s\n", err);
		exit(2);
	}
	return s;
}

/* The same fingerprint in lower case without colons. */
static void bare(const char *fp, char *out)
{
	for (; *fp != '\0'; fp++)
		if (*fp != ':')
			*out++ = (char)(*fp >= 'A' && *fp <= 'F' ?
			    *fp - 'A' + 'a' : *fp);
	*out = '\0';
}

static void test_selfsigned(void)
{
	char fp[128], lower[80], wrong[128], err[256];
	tls_server *srv = selfsigned("self.test", fp, sizeof(fp));
	tls_client *cli;
	tls_client_cfg cc;
	side s, c;

	CHECK_EQ(strlen(fp), 95);	/* 32 bytes as XX: */

	/* Verified against the CA: refused, the server hears an alert. */
	cli = client("self.test", NULL, CERTS "ca.pem", NULL, 0, 0);
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, -1);
	CHECK_EQ(s.rc, -1);
	CHECK(strstr(tls_error(c.t), "verification failed") != NULL);
	pair_free(&s, &c);
	tls_client_free(cli);

	cli = client("self.test", NULL, NULL, NULL, 1, 0);
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	CHECK_EQ(transfer(c.t, s.t, 4096), 0);
	pair_free(&s, &c);
	tls_client_free(cli);

	/* The pin is the certificate the client was shown. */
	cli = client("self.test", NULL, NULL, fp, 0, 0);
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	pair_free(&s, &c);
	tls_client_free(cli);

	bare(fp, lower);
	cli = client("self.test", NULL, NULL, lower, 0, 0);
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	pair_free(&s, &c);
	tls_client_free(cli);

	snprintf(wrong, sizeof(wrong), "%s", fp);
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	cli = client("self.test", NULL, NULL, wrong, 0, 0);
	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, -1);
	CHECK(streq(tls_error(c.t), "certificate pin mismatch"));
	CHECK_EQ(s.rc, -1);
	pair_free(&s, &c);
	tls_client_free(cli);

	memset(&cc, 0, sizeof(cc));
	cc.pin = "AB:CD";
	CHECK(tls_client_new(&cc, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "pin") != NULL);
	tls_server_free(srv);
}

/* A raw GnuTLS client, optionally presenting cert/key. */
static gnutls_certificate_credentials_t rawcred;
static const gnutls_datum_t *resume_with;

static side raw_client(int fd, const char *cert, const char *key,
    const char *prio)
{
	side c;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	gnutls_certificate_allocate_credentials(&rawcred);
	gnutls_certificate_set_x509_trust_file(rawcred, CERTS "ca.pem",
	    GNUTLS_X509_FMT_PEM);
	if (cert != NULL &&
	    gnutls_certificate_set_x509_key_file(rawcred, cert, key,
	    GNUTLS_X509_FMT_PEM) < 0) {
		fprintf(stderr, "cannot load %s\n", cert);
		exit(2);
	}
	gnutls_init(&c.raw, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	if (prio != NULL)
		gnutls_priority_set_direct(c.raw, prio, NULL);
	else
		gnutls_set_default_priority(c.raw);
	gnutls_credentials_set(c.raw, GNUTLS_CRD_CERTIFICATE, rawcred);
	gnutls_server_name_set(c.raw, GNUTLS_NAME_DNS, "localhost", 9);
	gnutls_session_set_verify_cert(c.raw, "localhost", 0);
	gnutls_transport_set_int(c.raw, fd);
	if (resume_with != NULL)
		gnutls_session_set_data(c.raw, resume_with->data,
		    resume_with->size);
	return c;
}

static void raw_free(side *c)
{
	gnutls_deinit(c->raw);
	gnutls_certificate_free_credentials(rawcred);
	close(c->fd);
}

/* Handshake a raw client against srv; leaves the server side in *s. */
static side raw_start(tls_server *srv, side *s, const char *cert,
    const char *key)
{
	side c;
	int fd[2];

	mkpair(fd);
	memset(s, 0, sizeof(*s));
	s->fd = fd[0];
	s->t = tls_accept(srv, s->fd);
	c = raw_client(fd[1], cert, key, NULL);
	handshake(s, &c);
	return c;
}

static tls_server *verifying(int mode)
{
	tls_server_cfg cfg;
	tls_server *s;
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	cfg.cert[0] = CERTS "localhost.pem";
	cfg.key[0] = CERTS "localhost.key";
	cfg.npairs = 1;
	cfg.client_ca = CERTS "ca.pem";
	cfg.client_verify = mode;
	if ((s = tls_server_new(&cfg, NULL, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "tls_server_new: %s\n", err);
		exit(2);
	}
	return s;
}

static void test_client_cert(void)
{
	tls_server *req = verifying(2), *opt = verifying(1);
	tls_client *cli = client("localhost", NULL, CERTS "ca.pem", NULL, 0, 0);
	unsigned char buf[16];
	gnutls_datum_t sess;
	side s, c;
	int want, i;

	/* Required, none sent: the server fails; the TLS 1.3 client may
	 * have finished first and learns it from the alert on reading. */
	start(req, cli, &s, &c);
	CHECK_EQ(s.rc, -1);
	CHECK(strstr(tls_error(s.t), "certificate") != NULL);
	if (c.rc == 1) {
		for (i = 0; i < 1000 && tls_read(c.t, buf, sizeof(buf),
		    &want) < 0 && want == TLS_WANT_READ; i++)
			usleep(1000);
		CHECK_EQ(want, TLS_ERR);
	}
	pair_free(&s, &c);

	c = raw_start(req, &s, CERTS "client.pem", CERTS "client.key");
	CHECK_EQ(s.rc, 1);
	CHECK_EQ(c.rc, 1);
	CHECK(tls_client_subject(s.t) != NULL &&
	    strstr(tls_client_subject(s.t), "CN=websocksy test client") !=
	    NULL);
	/* The ticket (read here) resumes with the same client identity. */
	CHECK_EQ(tls_write(s.t, "t", 1, &want), 1);
	for (i = 0; i < 200 && gnutls_record_recv(c.raw, buf,
	    sizeof(buf)) == GNUTLS_E_AGAIN; i++)
		usleep(1000);
	CHECK_EQ(gnutls_session_get_data2(c.raw, &sess), 0);
	tls_free(s.t);
	close(s.fd);
	raw_free(&c);
	resume_with = &sess;
	c = raw_start(req, &s, CERTS "client.pem", CERTS "client.key");
	resume_with = NULL;
	CHECK_EQ(s.rc, 1);
	CHECK(gnutls_session_is_resumed(c.raw));
	CHECK(tls_client_subject(s.t) != NULL);
	gnutls_free(sess.data);
	tls_free(s.t);
	close(s.fd);
	raw_free(&c);

	/* A certificate from outside the CA is refused, even optionally. */
	c = raw_start(req, &s, CERTS "rogue.pem", CERTS "rogue.key");
	CHECK_EQ(s.rc, -1);
	CHECK(strstr(tls_error(s.t), "client certificate") != NULL);
	tls_free(s.t);
	close(s.fd);
	raw_free(&c);
	c = raw_start(opt, &s, CERTS "rogue.pem", CERTS "rogue.key");
	CHECK_EQ(s.rc, -1);
	tls_free(s.t);
	close(s.fd);
	raw_free(&c);

	/* Optional: none is fine, no subject. */
	start(opt, cli, &s, &c);
	CHECK_EQ(s.rc, 1);
	CHECK_EQ(c.rc, 1);
	CHECK(tls_client_subject(s.t) == NULL);
	pair_free(&s, &c);

	c = raw_start(opt, &s, CERTS "client.pem", CERTS "client.key");
	CHECK_EQ(s.rc, 1);
	CHECK(tls_client_subject(s.t) != NULL);
	tls_free(s.t);
	close(s.fd);
	raw_free(&c);

	tls_client_free(cli);
	tls_server_free(req);
	tls_server_free(opt);
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	size_t n;
	FILE *in = fopen(from, "r"), *out = fopen(to, "w");

	if (in == NULL || out == NULL) {
		perror(from);
		exit(2);
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
}

static void test_reload(void)
{
	char dir[] = "/tmp/wsy_tls.XXXXXX", crt[64], key[64], err[256];
	tls_client *lh = client("localhost", NULL, CERTS "ca.pem", NULL, 0, 0);
	tls_client *ot = client("other.test", NULL, CERTS "ca.pem", NULL, 0, 0);
	tls_server_cfg cfg;
	tls_server *srv, *was;
	side s, c, olds, oldc;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(crt, sizeof(crt), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	copy_file(CERTS "localhost.pem", crt);
	copy_file(CERTS "localhost.key", key);
	memset(&cfg, 0, sizeof(cfg));
	cfg.cert[0] = crt;
	cfg.key[0] = key;
	cfg.npairs = 1;
	srv = tls_server_new(&cfg, NULL, 0, err, sizeof(err));
	CHECK(srv != NULL);
	start(srv, lh, &olds, &oldc);
	CHECK_EQ(olds.rc, 1);

	/* A broken file: -1 with a reason, the old credentials stay. */
	if ((f = fopen(crt, "w")) != NULL) {
		fputs("-----BEGIN CERTIFICATE-----\nbroken\n", f);
		fclose(f);
	}
	was = srv;
	err[0] = '\0';
	CHECK_EQ(tls_server_reload(&srv, &cfg, err, sizeof(err)), -1);
	CHECK(srv == was);
	CHECK(strstr(err, crt) != NULL);
	start(srv, lh, &s, &c);
	CHECK_EQ(c.rc, 1);
	pair_free(&s, &c);

	/* A file that is gone: its name, GnuTLS's reason and the
	 * system's. */
	copy_file(CERTS "localhost.pem", crt);
	unlink(key);
	err[0] = '\0';
	CHECK_EQ(tls_server_reload(&srv, &cfg, err, sizeof(err)), -1);
	CHECK(srv == was);
	CHECK(strstr(err, key) != NULL);
	CHECK(strstr(err, "Error while reading file") != NULL);
	CHECK(strstr(err, "No such file or directory") != NULL);
	if (strstr(err, "No such file") == NULL)
		fprintf(stderr, "reload error: %s\n", err);

	/* A good new pair serves new sessions... */
	copy_file(CERTS "other.pem", crt);
	copy_file(CERTS "other.key", key);
	CHECK_EQ(tls_server_reload(&srv, &cfg, err, sizeof(err)), 0);
	start(srv, ot, &s, &c);
	CHECK_EQ(c.rc, 1);
	pair_free(&s, &c);
	start(srv, lh, &s, &c);
	CHECK_EQ(c.rc, -1);
	pair_free(&s, &c);

	/* ...while the session made before goes on with the old ones
	 * (its reference keeps them; ASan would see a use after free). */
	CHECK_EQ(transfer(oldc.t, olds.t, 70000), 0);
	CHECK_EQ(transfer(olds.t, oldc.t, 70000), 0);
	pair_free(&olds, &oldc);

	tls_server_free(srv);
	tls_client_free(lh);
	tls_client_free(ot);
	unlink(crt);
	unlink(key);
	rmdir(dir);
}

/* Resumption is seen through pinning: the server is reloaded with a new
 * self-signed certificate but keeps its ticket key, so only a resumed
 * session (no certificate shown) passes the old pin. */
static void test_resume(void)
{
	char fp[128], err[256];
	tls_server *srv = selfsigned("a.test", fp, sizeof(fp));
	tls_client *cli = client("a.test", NULL, NULL, fp, 0, 1);
	tls_client *fresh = client("a.test", NULL, NULL, fp, 0, 0);
	tls_server_cfg cfg;
	side s, c;

	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	/* TLS 1.3 tickets follow the handshake: read to receive one. */
	CHECK_EQ(transfer(s.t, c.t, 100), 0);
	pair_free(&s, &c);

	memset(&cfg, 0, sizeof(cfg));
	cfg.servername = "b.test";
	CHECK_EQ(tls_server_reload(&srv, &cfg, err, sizeof(err)), 0);

	start(srv, fresh, &s, &c);
	CHECK_EQ(c.rc, -1);
	CHECK(streq(tls_error(c.t), "certificate pin mismatch"));
	pair_free(&s, &c);

	start(srv, cli, &s, &c);
	CHECK_EQ(c.rc, 1);
	CHECK_EQ(s.rc, 1);
	CHECK_EQ(transfer(c.t, s.t, 1000), 0);
	pair_free(&s, &c);

	tls_client_free(cli);
	tls_client_free(fresh);
	tls_server_free(srv);
}

/* A TLS 1.2 client asking to renegotiate gets no_renegotiation and the
 * session carries on. */
static void test_renegotiation(void)
{
	tls_server *srv = server(CERTS "localhost.pem", CERTS "localhost.key",
	    NULL, NULL);
	unsigned char buf[64];
	side s, c;
	ssize_t r = -1;
	int fd[2], want, ret = 0, i;

	mkpair(fd);
	memset(&s, 0, sizeof(s));
	s.fd = fd[0];
	s.t = tls_accept(srv, s.fd);
	c = raw_client(fd[1], NULL, NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2");
	handshake(&s, &c);
	CHECK_EQ(s.rc, 1);
	CHECK(streq(tls_version(s.t), "TLS1.2"));

	for (i = 0; i < 200; i++) {
		ret = gnutls_handshake(c.raw);
		r = tls_read(s.t, buf, sizeof(buf), &want);
		if (ret != GNUTLS_E_AGAIN || (r < 0 && want == TLS_ERR))
			break;
		usleep(1000);
	}
	CHECK_EQ(ret, GNUTLS_E_WARNING_ALERT_RECEIVED);
	CHECK_EQ(gnutls_alert_get(c.raw), GNUTLS_A_NO_RENEGOTIATION);
	CHECK_EQ(gnutls_record_send(c.raw, "still here", 10), 10);
	for (i = 0; i < 200; i++) {
		if ((r = tls_read(s.t, buf, sizeof(buf), &want)) >= 0 ||
		    want == TLS_ERR)
			break;
		usleep(1000);
	}
	CHECK_EQ(r, 10);
	CHECK_MEM(buf, "still here", 10);
	CHECK_EQ(tls_write(s.t, "and here", 8, &want), 8);
	for (i = 0; i < 200; i++) {
		if ((r = gnutls_record_recv(c.raw, buf, sizeof(buf))) !=
		    GNUTLS_E_AGAIN)
			break;
		usleep(1000);
	}
	CHECK_EQ(r, 8);
	CHECK_MEM(buf, "and here", 8);

	tls_free(s.t);
	close(s.fd);
	raw_free(&c);
	tls_server_free(srv);
}

int main(void)
{
	test_basic();
	test_batching();
	test_sni();
	test_alpn();
	test_selfsigned();
	test_client_cert();
	test_reload();
	test_resume();
	test_renegotiation();
	return test_summary("tls");
}
