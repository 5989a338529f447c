/*
 * dns.h - asynchronous name resolution on c-ares, driven by the loop.
 * Layer: sockets (above loop).  Numeric hosts resolve without a query but
 * the callback still runs from the loop, never from dns_resolve() itself.
 *
 * Why c-ares: it is a maintained Debian library whose sockets we can put in
 * our own event loop (ARES_OPT_SOCK_STATE_CB) so no thread is needed and a
 * slow DNS server never blocks the loop; getaddrinfo_a would need signals or
 * threads, and a resolver thread would need its own synchronisation.
 */
#ifndef WSY_DNS_H
#define WSY_DNS_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct dns_addr {
	struct sockaddr_storage ss;
	socklen_t len;
} dns_addr;

/* Called once: n > 0 addresses (IPv6 and IPv4 interleaved, as
 * getaddrinfo orders them), or n == 0 with a reason in err. */
typedef void (*dns_cb)(void *arg, const dns_addr *addrs, size_t n,
    const char *err);

typedef struct dns_query dns_query;

int dns_init(void);
/* Must run before loop_free(): c-ares unwatches its sockets as it closes
 * them. */
void dns_cleanup(void);

/* Use these servers ("127.0.0.1:5353,[::1]:53") instead of resolv.conf.
 * Returns 0 or -1. */
int dns_set_servers(const char *csv);

/* socktype SOCK_STREAM or SOCK_DGRAM.  Returns a handle or NULL (out of
 * memory, err set through the callback is not possible then). */
dns_query *dns_resolve(const char *host, const char *port, int socktype,
    dns_cb cb, void *arg);
/* The callback will not be called; frees the query. */
void dns_cancel(dns_query *q);

#endif
