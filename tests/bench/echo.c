/*
 * echo.c - TCP echo peer for the benchmarks.
 *
 *	echo PORT [ADDR]
 *
 * One thread, level-triggered epoll, any number of connections.  Data is
 * read into one shared scratch buffer and written straight back; only
 * what the socket does not take is copied into a per-connection buffer,
 * allocated then and freed when drained, so idle connections hold no
 * memory.  While a connection has data pending it is not read (the
 * client sees backpressure, nothing grows).  On EOF the rest is flushed
 * and the connection closed.  SIGTERM or SIGINT ends the program.
 */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRATCH_SIZE	(256 * 1024)
#define MAX_EVENTS	512

struct conn {
	int		 fd;
	int		 eof;		/* peer shut its side: close when flushed */
	uint8_t		*pend;		/* bytes not yet written back */
	size_t		 pend_off;
	size_t		 pend_len;
};

static volatile sig_atomic_t	stop;
static int			epfd;
static uint8_t			scratch[SCRATCH_SIZE];

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
conn_free(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

static int
conn_interest(struct conn *c, uint32_t ev)
{
	struct epoll_event	ee;

	memset(&ee, 0, sizeof(ee));
	ee.events = ev;
	ee.data.ptr = c;
	return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ee);
}

/* Write what is pending; 0 when drained, 1 when more remains, -1 error. */
static int
conn_flush(struct conn *c)
{
	ssize_t	n;

	while (c->pend_len > 0) {
		n = write(c->fd, c->pend + c->pend_off, c->pend_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		c->pend_off += (size_t)n;
		c->pend_len -= (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = 0;
	return 0;
}

/* Echo what can be read now; -1 means close the connection. */
static int
conn_read(struct conn *c)
{
	ssize_t	n, w;
	int	rounds;

	for (rounds = 0; rounds < 4; rounds++) {
		n = read(c->fd, scratch, sizeof(scratch));
		if (n == 0) {
			c->eof = 1;
			return -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		w = 0;
		while (w < n) {
			ssize_t	k = write(c->fd, scratch + w, (size_t)(n - w));

			if (k < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				return -1;
			}
			w += k;
		}
		if (w < n) {
			c->pend_len = (size_t)(n - w);
			c->pend_off = 0;
			if ((c->pend = malloc(c->pend_len)) == NULL)
				return -1;
			memcpy(c->pend, scratch + w, c->pend_len);
			if (conn_interest(c, EPOLLOUT) == -1)
				return -1;
			return 0;
		}
		if ((size_t)n < sizeof(scratch))
			return 0;
	}
	return 0;
}

static void
do_accept(int lfd)
{
	struct epoll_event	 ee;
	struct conn		*c;
	int			 fd, one = 1, i;

	for (i = 0; i < 256; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				fprintf(stderr, "echo: accept: %s\n",
				    strerror(errno));
			return;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		c->fd = fd;
		memset(&ee, 0, sizeof(ee));
		ee.events = EPOLLIN;
		ee.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ee) == -1) {
			close(fd);
			free(c);
			return;
		}
	}
}

int
main(int argc, char *argv[])
{
	struct epoll_event	 evs[MAX_EVENTS], ee;
	struct sockaddr_in	 sin;
	struct sigaction	 sa;
	const char		*addr = "127.0.0.1";
	int			 lfd, one = 1, n, i, port;
	static int		 lmark;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: echo PORT [ADDR]\n");
		return 2;
	}
	port = atoi(argv[1]);
	if (argc == 3)
		addr = argv[2];
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "echo: bad port %s\n", argv[1]);
		return 2;
	}
	raise_nofile();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "echo: bad address %s\n", addr);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(lfd, 65535)) {
		perror("echo: listen");
		return 1;
	}
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("echo: epoll_create1");
		return 1;
	}
	memset(&ee, 0, sizeof(ee));
	ee.events = EPOLLIN;
	ee.data.ptr = &lmark;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ee) == -1) {
		perror("echo: epoll_ctl");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		n = epoll_wait(epfd, evs, MAX_EVENTS, 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct conn	*c = evs[i].data.ptr;
			uint32_t	 ev = evs[i].events;
			int		 r;

			if (evs[i].data.ptr == &lmark) {
				do_accept(lfd);
				continue;
			}
			if (c->pend_len > 0) {
				/* Waiting for room: only EPOLLOUT is asked. */
				r = conn_flush(c);
				if (r < 0 || (r == 0 && c->eof)) {
					conn_free(c);
					continue;
				}
				if (r == 0 && conn_interest(c, EPOLLIN) == -1) {
					conn_free(c);
					continue;
				}
				continue;
			}
			if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				if (conn_read(c) < 0) {
					/* EOF with data pending: flush first. */
					if (c->eof && c->pend_len > 0 &&
					    conn_interest(c, EPOLLOUT) == 0)
						continue;
					conn_free(c);
				}
			}
		}
	}
	return 0;
}
