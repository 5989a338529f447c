/*
 * dns.c - asynchronous name resolution on c-ares, driven by the loop.
 *
 * c-ares tells us through its socket-state callback which sockets it wants
 * polled; we hand those to loop_watch() and feed events back with
 * ares_process_fd().  One timer, re-armed from ares_timeout() after every
 * step, drives retransmits and timeouts.
 *
 * A query is freed only when nobody can reach it any more: c-ares may still
 * hold it (Q_ARES) and a deferred delivery may still be queued (Q_DEFER).
 * dns_cancel() therefore only marks a query that is still referenced; the
 * reference that drops last frees it.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <ares.h>

#include "dns.h"
#include "loop.h"

#define DNS_TIMEOUT_MS	2000
#define DNS_TRIES	2

enum {
	Q_ARES = 1,		/* c-ares still owns a callback for it */
	Q_DEFER = 2,		/* a loop_defer() delivery is queued */
	Q_CANCELLED = 4,	/* the user gave it up: never call back */
	Q_DONE = 8,		/* the user callback is running or ran */
	Q_SYNC = 16,		/* inside dns_resolve(): may not call back */
};

struct dns_query {
	dns_cb cb;
	void *arg;
	int flags;
	dns_addr *addrs;
	size_t n;
	char host[256];
	char err[320];
};

static ares_channel dns_channel;
static int dns_ready;
static loop_timer dns_timer;

static void dns_step(void);

static void query_free(dns_query *q)
{
	free(q->addrs);
	free(q);
}

/* Free q once no reference is left and no callback is due. */
static void query_maybe_free(dns_query *q)
{
	if (q->flags & (Q_ARES | Q_DEFER))
		return;
	if (q->flags & (Q_CANCELLED | Q_DONE))
		query_free(q);
}

static void query_deliver(void *arg)
{
	dns_query *q = arg;

	q->flags &= ~Q_DEFER;
	if (!(q->flags & Q_CANCELLED)) {
		/* Q_DONE makes a dns_cancel() from inside cb harmless. */
		q->flags |= Q_DONE;
		q->cb(q->arg, q->addrs, q->n, q->n ? NULL : q->err);
	}
	query_maybe_free(q);
}

static int query_defer(dns_query *q)
{
	if (loop_defer(query_deliver, q) < 0)
		return -1;
	q->flags |= Q_DEFER;
	return 0;
}

/* --- the loop side of c-ares --- */

static void dns_io(int fd, int events, void *arg)
{
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	(void)arg;
	/* An error or hangup is reported to c-ares as readable: its read
	 * then fails and it handles the server as broken. */
	if (events & (LOOP_READ | LOOP_ERROR))
		rfd = fd;
	if (events & LOOP_WRITE)
		wfd = fd;
	ares_process_fd(dns_channel, rfd, wfd);
	dns_step();
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable,
    int writable)
{
	int ev = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);

	(void)data;
	if (ev == 0) {
		loop_unwatch(fd);
		return;
	}
	/* If this fails the query still ends through the timeout. */
	(void)loop_watch(fd, ev, dns_io, NULL);
}

static void dns_tick(void *arg)
{
	(void)arg;
	ares_process_fd(dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_step();
}

/* Re-arm the timer for c-ares's next deadline, or stop it when idle. */
static void dns_step(void)
{
	struct timeval tv, *tp;
	uint64_t ms;

	if (!dns_ready)
		return;
	tp = ares_timeout(dns_channel, NULL, &tv);
	if (tp == NULL) {
		loop_timer_stop(&dns_timer);
		return;
	}
	ms = (uint64_t)tp->tv_sec * 1000 + ((uint64_t)tp->tv_usec + 999) / 1000;
	loop_timer_set(&dns_timer, ms);
}

int dns_init(void)
{
	struct ares_options o;
	int mask;

	if (dns_ready)
		return 0;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return -1;
	memset(&o, 0, sizeof o);
	o.timeout = DNS_TIMEOUT_MS;
	o.tries = DNS_TRIES;
	o.sock_state_cb = dns_sock_state;
	mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	if (ares_init_options(&dns_channel, &o, mask) != ARES_SUCCESS) {
		ares_library_cleanup();
		return -1;
	}
	loop_timer_init(&dns_timer, dns_tick, NULL);
	dns_ready = 1;
	return 0;
}

/*
 * Queries still running get no callback (their users may be gone by now)
 * but stay allocated until their owner's dns_cancel(), so a handle held
 * elsewhere never dangles.  Call before loop_free(): c-ares unwatches its
 * sockets while closing them and our timer sits in the loop's heap.
 */
void dns_cleanup(void)
{
	if (!dns_ready)
		return;
	dns_ready = 0;
	ares_destroy(dns_channel);
	loop_timer_stop(&dns_timer);
	ares_library_cleanup();
}

/* Not declared in dns.h (yet): point the resolver at csv ("ip:port,...")
 * instead of resolv.conf; the unit test uses it for a local fake server. */
int dns_set_servers(const char *csv)
{
	if (!dns_ready)
		return -1;
	return ares_set_servers_ports_csv(dns_channel, csv) == ARES_SUCCESS ?
	    0 : -1;
}

/* --- answers --- */

static int parse_port(const char *port, unsigned *out)
{
	unsigned long v;
	char *end;

	if (port == NULL || *port == '\0') {
		*out = 0;
		return 0;
	}
	if (port[0] < '0' || port[0] > '9')
		return -1;
	v = strtoul(port, &end, 10);
	if (*end != '\0' || v > 65535)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void addr_set_port(dns_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static int addr_add(dns_query *q, const struct sockaddr *sa, size_t len)
{
	dns_addr *a;

	if (len > sizeof a->ss ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return 0;		/* nothing we could connect to */
	a = realloc(q->addrs, (q->n + 1) * sizeof *a);
	if (a == NULL)
		return -1;
	q->addrs = a;
	a = &q->addrs[q->n++];
	memset(a, 0, sizeof *a);
	memcpy(&a->ss, sa, len);
	a->len = (socklen_t)len;
	return 0;
}

/*
 * A literal address needs no server.  AI_NUMERICHOST keeps getaddrinfo()
 * from any lookup and still handles v6 zone ids (fe80::1%eth0).
 * Returns 1 if host was numeric, 0 if not, -1 when out of memory.
 */
static int resolve_numeric(dns_query *q, const char *host, int socktype,
    unsigned port)
{
	struct addrinfo hints, *res, *ai;
	size_t i;
	int rc = 1;

	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL && rc == 1; ai = ai->ai_next)
		if (addr_add(q, ai->ai_addr, ai->ai_addrlen) < 0)
			rc = -1;
	freeaddrinfo(res);
	if (rc == 1 && q->n == 0)
		snprintf(q->err, sizeof q->err, "no address for host: %s", host);
	for (i = 0; i < q->n; i++)
		addr_set_port(&q->addrs[i], port);
	return rc;
}

/* "localhost" is the loopback by definition (RFC 6761): answer it without
 * a server, whatever c-ares thinks of /etc/hosts. */
static int is_localhost(const char *host)
{
	return strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, "localhost.") == 0;
}

static int resolve_localhost(dns_query *q, unsigned port)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;

	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_addr = in6addr_loopback;
	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (addr_add(q, (struct sockaddr *)&s6, sizeof s6) < 0 ||
	    addr_add(q, (struct sockaddr *)&s4, sizeof s4) < 0)
		return -1;
	addr_set_port(&q->addrs[0], port);
	addr_set_port(&q->addrs[1], port);
	return 0;
}

/*
 * Alternate the families, starting with the one c-ares sorted first: a
 * connect that tries addresses in turn then loses at most one attempt to a
 * family that is broken on this host.
 */
static int take_nodes(dns_query *q, const struct ares_addrinfo_node *nodes)
{
	const struct ares_addrinfo_node *p[2];
	int fam[2], i;

	if (nodes == NULL)
		return 0;
	fam[0] = nodes->ai_family;
	fam[1] = fam[0] == AF_INET6 ? AF_INET : AF_INET6;
	p[0] = p[1] = nodes;
	for (;;) {
		int took = 0;

		for (i = 0; i < 2; i++) {
			while (p[i] != NULL && p[i]->ai_family != fam[i])
				p[i] = p[i]->ai_next;
			if (p[i] == NULL)
				continue;
			if (addr_add(q, p[i]->ai_addr, p[i]->ai_addrlen) < 0)
				return -1;
			p[i] = p[i]->ai_next;
			took = 1;
		}
		if (!took)
			return 0;
	}
}

static void ares_error(dns_query *q, int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		snprintf(q->err, sizeof q->err, "host not found: %s", q->host);
		break;
	case ARES_ETIMEOUT:
		snprintf(q->err, sizeof q->err, "DNS timeout: %s", q->host);
		break;
	default:
		snprintf(q->err, sizeof q->err, "DNS error: %s: %s", q->host,
		    ares_strerror(status));
	}
}

static void on_ares(void *arg, int status, int timeouts,
    struct ares_addrinfo *res)
{
	dns_query *q = arg;

	(void)timeouts;
	q->flags &= ~Q_ARES;
	if (status == ARES_EDESTRUCTION && !(q->flags & Q_CANCELLED)) {
		/* dns_cleanup(): stay allocated, silent, until dns_cancel(). */
		ares_freeaddrinfo(res);
		return;
	}
	if (q->flags & Q_CANCELLED) {
		ares_freeaddrinfo(res);
		query_maybe_free(q);
		return;
	}
	if (status != ARES_SUCCESS)
		ares_error(q, status);
	else if (take_nodes(q, res->nodes) < 0)
		snprintf(q->err, sizeof q->err, "out of memory");
	else if (q->n == 0)
		snprintf(q->err, sizeof q->err, "no address for host: %s",
		    q->host);
	ares_freeaddrinfo(res);
	if (status == ARES_SUCCESS && q->err[0] != '\0') {
		free(q->addrs);
		q->addrs = NULL;
		q->n = 0;
	}
	/* Always through the loop: c-ares may call us from inside
	 * ares_getaddrinfo(), and users may destroy things in their
	 * callback that c-ares is still iterating over. */
	if (query_defer(q) < 0 && !(q->flags & Q_SYNC))
		query_deliver(q);
}

/* --- queries --- */

/* The answer (or error) is known already: deliver it on the loop's next
 * pass, never from inside dns_resolve(). */
static dns_query *answer_later(dns_query *q)
{
	if (query_defer(q) < 0) {
		query_free(q);
		return NULL;
	}
	return q;
}

/* Literals and localhost: 1 answered, 0 needs a server, -1 no memory. */
static int answer_local(dns_query *q, const char *host, int socktype,
    unsigned port)
{
	if (is_localhost(host))
		return resolve_localhost(q, port) < 0 ? -1 : 1;
	return resolve_numeric(q, host, socktype, port);
}

static dns_query *ask_server(dns_query *q, const char *port, int socktype)
{
	struct ares_addrinfo_hints hints;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	q->flags |= Q_ARES | Q_SYNC;
	ares_getaddrinfo(dns_channel, q->host, port && *port ? port : NULL,
	    &hints, on_ares, q);
	q->flags &= ~Q_SYNC;
	if (!(q->flags & (Q_ARES | Q_DEFER))) {
		/* answered synchronously but the delivery could not queue */
		query_free(q);
		return NULL;
	}
	dns_step();
	return q;
}

dns_query *dns_resolve(const char *host, const char *port, int socktype,
    dns_cb cb, void *arg)
{
	dns_query *q;
	unsigned pnum;
	int rc;

	if ((q = calloc(1, sizeof *q)) == NULL)
		return NULL;
	q->cb = cb;
	q->arg = arg;
	if (strlen(host) >= sizeof q->host) {
		snprintf(q->err, sizeof q->err, "host name too long");
		return answer_later(q);
	}
	snprintf(q->host, sizeof q->host, "%s", host);
	if (parse_port(port, &pnum) < 0) {
		snprintf(q->err, sizeof q->err, "bad port: %s", port);
		return answer_later(q);
	}
	if ((rc = answer_local(q, host, socktype, pnum)) < 0) {
		query_free(q);
		return NULL;
	}
	if (rc == 1)
		return answer_later(q);
	if (!dns_ready) {
		snprintf(q->err, sizeof q->err, "resolver not initialised");
		return answer_later(q);
	}
	return ask_server(q, port, socktype);
}

void dns_cancel(dns_query *q)
{
	if (q == NULL || (q->flags & Q_DONE))
		return;
	q->flags |= Q_CANCELLED;
	query_maybe_free(q);
}
