/*
 * peer.c - peer URIs and non-blocking connects.
 *
 * A connect walks the resolved addresses in order under one deadline.  The
 * result always reaches the caller from the loop: DNS answers arrive
 * through loop_defer(), unix connects start from a deferred call, and the
 * rest from fd and timer events.  A peer_conn is freed right after its
 * callback, or by peer_cancel() -- unless a deferred call still points at
 * it, in which case that call frees it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dns.h"
#include "loop.h"
#include "peer.h"

/* --- URIs --- */

static const struct {
	const char *name;
	int kind;
} schemes[] = {
	{ "tcp", PEER_TCP },
	{ "udp", PEER_UDP },
	{ "unix", PEER_UNIX },
	{ "unix-dgram", PEER_UNIX_DGRAM },
};

static int scheme_kind(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strlen(schemes[i].name) == len &&
		    strncasecmp(schemes[i].name, s, len) == 0)
			return schemes[i].kind;
	return 0;
}

static const char *kind_name(int kind)
{
	size_t i;

	for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (schemes[i].kind == kind)
			return schemes[i].name;
	return "?";
}

/* Host names: letters, digits, '-', '.', '_' (the last for SRV-style and
 * docker-compose names).  Anything else is a typo or an unsupported
 * feature such as user@host. */
static int host_ok(const char *h, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

/* A bracketed literal must be IPv6, optionally with a %zone. */
static int v6_ok(const char *h, size_t len)
{
	struct in6_addr a;
	char buf[INET6_ADDRSTRLEN];
	const char *pct = memchr(h, '%', len);
	size_t alen = pct ? (size_t)(pct - h) : len;

	if (alen >= sizeof buf || (pct && pct + 1 == h + len))
		return 0;
	memcpy(buf, h, alen);
	buf[alen] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static int port_ok(const char *p, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* "host[:port]" or "[v6][:port]" after "tcp://" or "udp://". */
static int parse_inet(const char *s, const char *default_port, peer_uri *u,
    char *err, size_t errlen)
{
	const char *h = s, *end;
	size_t hlen;

	if (*s == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL) {
			snprintf(err, errlen, "unclosed '[' in host");
			return -1;
		}
		hlen = (size_t)(end - h);
		end++;
	} else {
		hlen = strcspn(s, ":/?#");
		end = s + hlen;
	}
	if (hlen == 0) {
		snprintf(err, errlen, "empty host");
		return -1;
	}
	if (hlen >= sizeof u->host) {
		snprintf(err, errlen, "host too long");
		return -1;
	}
	if (h == s ? !host_ok(h, hlen) : !v6_ok(h, hlen)) {
		snprintf(err, errlen, "bad host '%.*s'", (int)hlen, h);
		return -1;
	}
	memcpy(u->host, h, hlen);
	u->host[hlen] = '\0';
	if (*end == ':') {
		size_t plen = strcspn(end + 1, "/?#");

		if (!port_ok(end + 1, plen)) {
			snprintf(err, errlen, "bad port '%.*s' (1-65535)",
			    (int)plen, end + 1);
			return -1;
		}
		memcpy(u->port, end + 1, plen);
		u->port[plen] = '\0';
		end += 1 + plen;
	} else if (default_port != NULL && *default_port != '\0') {
		if (!port_ok(default_port, strlen(default_port))) {
			snprintf(err, errlen, "bad default port '%s'",
			    default_port);
			return -1;
		}
		snprintf(u->port, sizeof u->port, "%s", default_port);
	} else if (*end == '\0') {
		snprintf(err, errlen, "missing port");
		return -1;
	}
	if (*end == '/') {
		snprintf(err, errlen, "a %s URI has no path", kind_name(u->kind));
		return -1;
	}
	if (*end != '\0') {
		snprintf(err, errlen, "junk after host/port: '%s'", end);
		return -1;
	}
	return 0;
}

/* "/abs/path" after "unix://" or "unix-dgram://". */
static int parse_unix(const char *s, peer_uri *u, char *err, size_t errlen)
{
	struct sockaddr_un sa;

	if (*s != '/') {
		snprintf(err, errlen, "%s path must be absolute (%s:///path)",
		    kind_name(u->kind), kind_name(u->kind));
		return -1;
	}
	if (strlen(s) >= sizeof sa.sun_path || strlen(s) >= sizeof u->path) {
		snprintf(err, errlen, "path too long (at most %zu bytes)",
		    sizeof sa.sun_path - 1);
		return -1;
	}
	snprintf(u->path, sizeof u->path, "%s", s);
	return 0;
}

int peer_uri_parse(const char *uri, const char *default_port, peer_uri *u,
    char *err, size_t errlen)
{
	size_t slen = strcspn(uri, ":");

	memset(u, 0, sizeof *u);
	if ((u->kind = scheme_kind(uri, slen)) == 0) {
		snprintf(err, errlen,
		    "unknown scheme '%.*s' (tcp, udp, unix, unix-dgram)",
		    (int)slen, uri);
		return -1;
	}
	if (strncmp(uri + slen, "://", 3) != 0) {
		snprintf(err, errlen, "missing '//' after '%s:'",
		    kind_name(u->kind));
		return -1;
	}
	if (u->kind == PEER_TCP || u->kind == PEER_UDP)
		return parse_inet(uri + slen + 3, default_port, u, err, errlen);
	return parse_unix(uri + slen + 3, u, err, errlen);
}

void peer_uri_format(const peer_uri *u, char *out, size_t outlen)
{
	const char *k = kind_name(u->kind);

	if (u->kind == PEER_UNIX || u->kind == PEER_UNIX_DGRAM)
		snprintf(out, outlen, "%s://%s", k, u->path);
	else if (strchr(u->host, ':'))
		snprintf(out, outlen, "%s://[%s]%s%s", k, u->host,
		    u->port[0] ? ":" : "", u->port);
	else
		snprintf(out, outlen, "%s://%s%s%s", k, u->host,
		    u->port[0] ? ":" : "", u->port);
}

/* --- connecting --- */

enum {
	P_DEFER = 1,		/* unix_start() is queued and holds pc */
	P_CANCELLED = 2,
	P_DONE = 4,		/* the callback is running or ran */
};

struct peer_conn {
	peer_uri u;
	peer_cb cb;
	void *arg;
	int flags;
	int fd;			/* the attempt in flight, or -1 */
	char *bound;		/* unix-dgram client path, or NULL */
	dns_query *dq;
	dns_addr *addrs;
	size_t n, next;		/* next: the address to try next */
	loop_timer timer;
	char err[600];
};

static unsigned peer_bind_seq;

static void try_next(peer_conn *pc);

/* Lower-case wording for the errors people actually meet. */
static const char *errno_text(int e)
{
	switch (e) {
	case ECONNREFUSED:	return "connection refused";
	case ENOENT:		return "no such file";
	case ETIMEDOUT:		return "timed out";
	case EHOSTUNREACH:	return "host unreachable";
	case ENETUNREACH:	return "network unreachable";
	case EADDRNOTAVAIL:	return "address not available";
	case EAFNOSUPPORT:	return "address family not supported";
	case EACCES:
	case EPERM:		return "permission denied";
	case EAGAIN:		return "resource temporarily unavailable";
	case ECONNRESET:	return "connection reset";
	case ENOTSOCK:		return "not a socket";
	case EPROTOTYPE:	return "wrong socket type";
	default:		return strerror(e);
	}
}

/* "127.0.0.1:9", "[::1]:9" or the unix path: what the attempt went to. */
static void target_text(const peer_conn *pc, char *out, size_t outlen)
{
	const dns_addr *a;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (pc->u.kind == PEER_UNIX || pc->u.kind == PEER_UNIX_DGRAM) {
		snprintf(out, outlen, "%s", pc->u.path);
		return;
	}
	if (pc->next == 0 || pc->next > pc->n) {
		snprintf(out, outlen, "%s:%s", pc->u.host, pc->u.port);
		return;
	}
	a = &pc->addrs[pc->next - 1];
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(out, outlen, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

static void set_error(peer_conn *pc, int e)
{
	char t[400];

	target_text(pc, t, sizeof t);
	snprintf(pc->err, sizeof pc->err, "%s (%s)", errno_text(e), t);
}

static void drop_fd(peer_conn *pc)
{
	if (pc->fd < 0)
		return;
	loop_unwatch(pc->fd);
	close(pc->fd);
	pc->fd = -1;
}

static void drop_bound(peer_conn *pc)
{
	if (pc->bound == NULL)
		return;
	unlink(pc->bound);
	free(pc->bound);
	pc->bound = NULL;
}

/* Free pc unless a queued unix_start() still points at it. */
static void release(peer_conn *pc)
{
	if (pc->flags & P_DEFER)
		return;
	free(pc->addrs);
	free(pc);
}

static void finish(peer_conn *pc, int fd, const char *err)
{
	char *bound;

	loop_timer_stop(&pc->timer);
	if (fd < 0)
		drop_bound(pc);
	bound = pc->bound;
	pc->bound = NULL;
	pc->fd = -1;
	pc->flags |= P_DONE;
	pc->cb(pc->arg, fd, bound, err);
	release(pc);
}

static void on_timeout(void *arg)
{
	peer_conn *pc = arg;
	char uri[512];

	dns_cancel(pc->dq);
	pc->dq = NULL;
	drop_fd(pc);
	peer_uri_format(&pc->u, uri, sizeof uri);
	snprintf(pc->err, sizeof pc->err, "connect timeout (%s)", uri);
	finish(pc, -1, pc->err);
}

static void on_writable(int fd, int events, void *arg)
{
	peer_conn *pc = arg;
	socklen_t len = sizeof(int);
	int e = 0;

	(void)events;
	loop_unwatch(fd);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e == 0) {
		pc->fd = -1;
		finish(pc, fd, NULL);
		return;
	}
	set_error(pc, e);
	drop_fd(pc);
	if (pc->u.kind == PEER_UNIX || pc->u.kind == PEER_UNIX_DGRAM)
		finish(pc, -1, pc->err);
	else
		try_next(pc);
}

/* connect() fd to sa: 1 connected, 0 in progress (watched), -1 failed
 * with pc->err set and fd closed. */
static int start_connect(peer_conn *pc, int fd, const struct sockaddr *sa,
    socklen_t len)
{
	pc->fd = fd;
	if (connect(fd, sa, len) == 0)
		return 1;
	/* EINTR: the connect goes on asynchronously, as for EINPROGRESS. */
	if (errno == EINPROGRESS || errno == EINTR) {
		if (loop_watch(fd, LOOP_WRITE, on_writable, pc) == 0)
			return 0;
		snprintf(pc->err, sizeof pc->err, "out of memory");
	} else
		set_error(pc, errno);
	close(fd);
	pc->fd = -1;
	return -1;
}

static void try_next(peer_conn *pc)
{
	int type = pc->u.kind == PEER_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int fd, one = 1, r;

	while (pc->next < pc->n) {
		const dns_addr *a = &pc->addrs[pc->next++];

		fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd < 0) {
			set_error(pc, errno);
			continue;
		}
		/* Small WebSocket messages must not wait for Nagle. */
		if (type == SOCK_STREAM)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof one);
		r = start_connect(pc, fd, (const struct sockaddr *)&a->ss,
		    a->len);
		if (r == 1) {
			pc->fd = -1;
			finish(pc, fd, NULL);
		}
		if (r >= 0)
			return;
	}
	finish(pc, -1, pc->err[0] ? pc->err : "no address to connect to");
}

static void on_dns(void *arg, const dns_addr *addrs, size_t n,
    const char *err)
{
	peer_conn *pc = arg;

	pc->dq = NULL;
	if (n == 0) {
		finish(pc, -1, err);
		return;
	}
	if ((pc->addrs = calloc(n, sizeof *addrs)) == NULL) {
		finish(pc, -1, "out of memory");
		return;
	}
	memcpy(pc->addrs, addrs, n * sizeof *addrs);
	pc->n = n;
	try_next(pc);
}

/*
 * A unix datagram socket needs a name of its own or the peer cannot reply.
 * A real file (not the Linux abstract namespace) so that the peer's
 * permissions and tools work the same as for its own socket; pid and a
 * counter keep it unique, and a stale file left by a dead process with the
 * same pid is removed first.
 */
static int bind_client(peer_conn *pc, int fd)
{
	struct sockaddr_un sa;
	const char *dir = getenv("TMPDIR");
	int n;

	if (dir == NULL || *dir != '/')
		dir = "/tmp";
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/websocksy-%d-%u.sock",
	    dir, (int)getpid(), peer_bind_seq++);
	if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
		snprintf(pc->err, sizeof pc->err,
		    "client socket path too long (TMPDIR=%s)", dir);
		return -1;
	}
	if ((pc->bound = strdup(sa.sun_path)) == NULL) {
		snprintf(pc->err, sizeof pc->err, "out of memory");
		return -1;
	}
	(void)unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(pc->err, sizeof pc->err, "cannot bind %s: %s",
		    sa.sun_path, errno_text(errno));
		free(pc->bound);
		pc->bound = NULL;
		return -1;
	}
	return 0;
}

/*
 * Deferred so that the result never reaches the caller from inside
 * peer_connect().  A stream connect on Linux completes or fails at once;
 * EAGAIN means the listener's backlog is full and is reported as a failure
 * rather than retried: a listener that far behind would not serve us soon.
 */
static void unix_start(void *arg)
{
	peer_conn *pc = arg;
	struct sockaddr_un sa;
	int dgram = pc->u.kind == PEER_UNIX_DGRAM, fd, r;

	pc->flags &= ~P_DEFER;
	if (pc->flags & (P_CANCELLED | P_DONE)) {
		release(pc);
		return;
	}
	fd = socket(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_STREAM) |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_error(pc, errno);
		finish(pc, -1, pc->err);
		return;
	}
	if (dgram && bind_client(pc, fd) < 0) {
		close(fd);
		finish(pc, -1, pc->err);
		return;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", pc->u.path);
	r = start_connect(pc, fd, (struct sockaddr *)&sa, sizeof sa);
	if (r == 1) {
		pc->fd = -1;
		finish(pc, fd, NULL);
	} else if (r < 0)
		finish(pc, -1, pc->err);
}

peer_conn *peer_connect(const peer_uri *u, uint64_t timeout_ms, peer_cb cb,
    void *arg)
{
	peer_conn *pc;

	if ((pc = calloc(1, sizeof *pc)) == NULL)
		return NULL;
	pc->u = *u;
	pc->cb = cb;
	pc->arg = arg;
	pc->fd = -1;
	loop_timer_init(&pc->timer, on_timeout, pc);
	if (u->kind == PEER_TCP || u->kind == PEER_UDP) {
		pc->dq = dns_resolve(u->host, u->port,
		    u->kind == PEER_TCP ? SOCK_STREAM : SOCK_DGRAM, on_dns, pc);
		if (pc->dq == NULL)
			goto fail;
	} else {
		if (loop_defer(unix_start, pc) < 0)
			goto fail;
		pc->flags |= P_DEFER;
	}
	/* 0 means no deadline of our own (DNS still has its timeouts). */
	if (timeout_ms > 0)
		loop_timer_set(&pc->timer, timeout_ms);
	return pc;
fail:
	free(pc);
	return NULL;
}

/* Also called from other objects' callbacks: everything pc holds is
 * released here except a queued unix_start(), which frees pc itself. */
void peer_cancel(peer_conn *pc)
{
	if (pc == NULL || (pc->flags & P_DONE))
		return;
	pc->flags |= P_CANCELLED;
	loop_timer_stop(&pc->timer);
	dns_cancel(pc->dq);
	pc->dq = NULL;
	drop_fd(pc);
	drop_bound(pc);
	release(pc);
}
