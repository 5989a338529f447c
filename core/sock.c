/*
 * sock.c - listening sockets.  Start-up only: getaddrinfo() may block here
 * because nothing else is running yet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sock.h"

int sock_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

long sock_close_drained(int fd)
{
	char junk[16384];
	long dropped = 0;
	ssize_t n = 0;

	while (dropped < SOCK_DRAIN_MAX) {
		n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		dropped += n;
	}
	close(fd);
	return n > 0 ? -1 : dropped;
}

static int listen_one(const struct addrinfo *ai, char *err, size_t errlen)
{
	int fd, on = 1, off = 0;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;

	sock_ntop(ai->ai_addr, host, sizeof(host), &port);
	fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* "::" serves IPv4 too (mapped addresses), whatever the sysctl. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (sock_nonblock(fd) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 4096) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listen on %s%s%s:%u: %s",
	    ai->ai_family == AF_INET6 ? "[" : "", host,
	    ai->ai_family == AF_INET6 ? "]" : "", port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int sock_listen(const char *host, const char *port, int *fds, int max,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int n = 0, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((r = getaddrinfo(*host ? host : NULL, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen address %s: %s", host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		int fd = listen_one(ai, err, errlen);
		if (fd < 0) {
			/* "localhost" may give ::1 and 127.0.0.1; with
			 * "::" bound dual-stack the second bind of the
			 * same port can fail: keep what we have. */
			if (n > 0 && errno == EADDRINUSE)
				continue;
			while (n > 0)
				close(fds[--n]);
			freeaddrinfo(res);
			return -1;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	return n;
}

void sock_ntop(const struct sockaddr *sa, char *host, size_t hostlen,
    uint16_t *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host,
			    (socklen_t)hostlen);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, host,
			    (socklen_t)hostlen);
		*port = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hostlen);
		*port = ntohs(s4->sin_port);
	} else {
		snprintf(host, hostlen, "local");
		*port = 0;
	}
}
