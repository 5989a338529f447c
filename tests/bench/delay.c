/*
 * delay.c - one-way delay bridge for the loss benchmark (tests/bench/loss.py).
 *
 *	delay -i TUN -l LOCAL_IP:PORT -r REMOTE_IP:PORT [-d MS] [-q PACKETS]
 *
 * This kernel has no tc netem, so the delay is made in user space, at the
 * packet level: both TCP and KCP/UDP keep their own end-to-end behaviour
 * (their handshakes, windows, retransmissions and congestion control all
 * see one path with a real round trip; no connection is terminated in the
 * middle).
 *
 * Each of the two network namespaces has a point-to-point TUN device
 * (created and addressed by loss.py) and runs one delay process attached
 * to it.  IP packets the namespace's kernel routes into the TUN device are
 * read here, held for MS milliseconds and then sent, one UDP datagram
 * each, over the veth link to the other namespace's delay process, which
 * writes them into its TUN device at once: the other kernel receives them
 * as if from a wire.  So every direction is delayed exactly once, by the
 * sender's bridge.  Loss is not made here: loss.py drops packets with
 * nftables on the input hook of the receiving namespace (iifname TUN).
 *
 * The hold queue is a FIFO of at most PACKETS packets (default 8192, like
 * netem's "limit"); a packet that finds it full is dropped and counted.
 * There is no rate limit.  The process has one thread and sleeps in
 * ppoll(2) until a packet arrives or the oldest held one is due
 * (nanosecond timeout, CLOCK_MONOTONIC).  SIGTERM or SIGINT ends it; it
 * then prints its counters on stderr.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLOT_SIZE	2048		/* TUN MTU is at most 1500 */
#define READ_BURST	64		/* packets read per wakeup, each side */

struct slot {
	uint64_t	due;		/* CLOCK_MONOTONIC, ns */
	uint16_t	len;
	uint8_t		data[SLOT_SIZE];
};

static volatile sig_atomic_t	stop;

static struct slot	*ring;
static size_t		 ring_cap, ring_head, ring_len;

static unsigned long long	n_in, n_out, n_full, n_senderr;
static unsigned long long	n_rx, n_tunerr;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: delay -i TUN -l LOCAL_IP:PORT "
	    "-r REMOTE_IP:PORT [-d MS] [-q PACKETS]\n");
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long
parse_num(const char *s, long lo, long hi, const char *what)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		errx(2, "bad %s: %s", what, s);
	return v;
}

static void
parse_addr(const char *s, struct sockaddr_in *sin)
{
	char		 host[64];
	const char	*colon;
	size_t		 n;

	colon = strrchr(s, ':');
	if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
		errx(2, "bad address (want IPv4:PORT): %s", s);
	memcpy(host, s, n);
	host[n] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)parse_num(colon + 1, 1, 65535,
	    "port"));
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		errx(2, "bad IPv4 address: %s", host);
}

static int
tun_attach(const char *name)
{
	struct ifreq	ifr;
	int		fd;

	if (strlen(name) >= IFNAMSIZ)
		errx(2, "interface name too long: %s", name);
	if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) == -1)
		err(1, "/dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1)
		err(1, "TUNSETIFF %s", name);
	return fd;
}

static int
udp_open(const struct sockaddr_in *local, const struct sockaddr_in *remote)
{
	int	fd, sz = 8 * 1024 * 1024;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		err(1, "socket");
	/* Bursts of a whole window arrive at once: do not drop them here. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	if (bind(fd, (const struct sockaddr *)local, sizeof(*local)) == -1)
		err(1, "bind");
	if (connect(fd, (const struct sockaddr *)remote, sizeof(*remote)) == -1)
		err(1, "connect");
	return fd;
}

/* Read what the TUN device has into the hold queue, due after delay. */
static void
tun_to_ring(int tunfd, uint64_t delay)
{
	struct slot	 spill;
	struct slot	*s;
	ssize_t		 n;
	int		 i;

	for (i = 0; i < READ_BURST; i++) {
		if (ring_len == ring_cap)
			s = &spill;	/* read it anyway, then drop it */
		else
			s = &ring[(ring_head + ring_len) % ring_cap];
		n = read(tunfd, s->data, sizeof(s->data));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			err(1, "read tun");
		}
		if (n == 0)
			return;
		if (s == &spill) {
			n_full++;
			continue;
		}
		s->len = (uint16_t)n;
		s->due = now_ns() + delay;
		ring_len++;
		n_in++;
	}
}

/* Send every held packet that is due; returns 1 if the socket is full. */
static int
ring_to_udp(int udpfd)
{
	struct slot	*s;
	uint64_t	 now;

	now = now_ns();
	while (ring_len > 0) {
		s = &ring[ring_head];
		if (s->due > now)
			break;
		if (send(udpfd, s->data, s->len, 0) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == ENOBUFS)
				return 1;
			/* ECONNREFUSED: the peer bridge is not up yet. */
			n_senderr++;
		} else
			n_out++;
		ring_head = (ring_head + 1) % ring_cap;
		ring_len--;
	}
	return 0;
}

/* Packets from the other bridge go into the TUN device at once. */
static void
udp_to_tun(int udpfd, int tunfd)
{
	uint8_t	buf[SLOT_SIZE];
	ssize_t	n;
	int	i;

	for (i = 0; i < READ_BURST; i++) {
		n = recv(udpfd, buf, sizeof(buf), 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == ECONNREFUSED)
				return;
			err(1, "recv");
		}
		n_rx++;
		if (write(tunfd, buf, (size_t)n) != n)
			n_tunerr++;
	}
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 local, remote;
	struct sigaction	 sa;
	struct pollfd		 pfd[2];
	struct timespec		 ts, *tsp;
	const char		*tun = NULL;
	uint64_t		 delay = 0, now, wait;
	int			 ch, have_l = 0, have_r = 0, tunfd, udpfd;
	int			 blocked = 0;

	ring_cap = 8192;
	while ((ch = getopt(argc, argv, "d:i:l:q:r:")) != -1) {
		switch (ch) {
		case 'd':
			delay = (uint64_t)parse_num(optarg, 0, 10000,
			    "delay") * 1000000ULL;
			break;
		case 'i':
			tun = optarg;
			break;
		case 'l':
			parse_addr(optarg, &local);
			have_l = 1;
			break;
		case 'q':
			ring_cap = (size_t)parse_num(optarg, 1, 1 << 20,
			    "queue");
			break;
		case 'r':
			parse_addr(optarg, &remote);
			have_r = 1;
			break;
		default:
			usage();
		}
	}
	if (tun == NULL || !have_l || !have_r || optind != argc)
		usage();
	if ((ring = calloc(ring_cap, sizeof(*ring))) == NULL)
		err(1, "calloc");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	tunfd = tun_attach(tun);
	udpfd = udp_open(&local, &remote);
	/* Tell loss.py we are attached (it waits for this line). */
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		pfd[0].fd = tunfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = udpfd;
		pfd[1].events = POLLIN | (blocked ? POLLOUT : 0);
		tsp = NULL;
		if (ring_len > 0 && !blocked) {
			now = now_ns();
			wait = ring[ring_head].due > now ?
			    ring[ring_head].due - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000ULL);
			ts.tv_nsec = (long)(wait % 1000000000ULL);
			tsp = &ts;
		}
		if (ppoll(pfd, 2, tsp, NULL) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "ppoll");
		}
		if (pfd[0].revents & POLLIN)
			tun_to_ring(tunfd, delay);
		if (pfd[1].revents & POLLIN)
			udp_to_tun(udpfd, tunfd);
		blocked = ring_to_udp(udpfd);
	}
	fprintf(stderr, "delay %s: held %llu sent %llu queue-full %llu "
	    "send-errors %llu received %llu tun-write-errors %llu\n",
	    tun, n_in, n_out, n_full, n_senderr, n_rx, n_tunerr);
	free(ring);
	return 0;
}
