/*
 * sip003.c - shadowsocks plugin environment, host:port addresses and the
 * parent watch.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "sip003.h"

int port_valid(const char *p)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; p[i]; i++) {
		if (p[i] < '0' || p[i] > '9' || i >= 5)
			return 0;
		n = n * 10 + (unsigned long)(p[i] - '0');
	}
	return i > 0 && n >= 1 && n <= 65535;
}

/* Copy the variable name into dst; missing, empty or too long is an
 * error unless it is optional (then "" is stored). */
static int env(const char *name, char *dst, size_t dstlen, int optional,
    char *err, size_t errlen)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		if (optional) {
			*dst = '\0';
			return 0;
		}
		snprintf(err, errlen, "SIP003: %s is not set", name);
		return -1;
	}
	if (strlen(v) >= dstlen) {
		snprintf(err, errlen, "SIP003: %s is too long", name);
		return -1;
	}
	strcpy(dst, v);
	return 0;
}

int sip003_from_env(sip003 *s, char *err, size_t errlen)
{
	char hosts[1][SIP003_HOSTLEN];

	if (getenv("SS_REMOTE_HOST") == NULL)
		return 0;
	if (env("SS_REMOTE_HOST", s->remote_host, sizeof(s->remote_host), 0,
	    err, errlen) < 0 ||
	    env("SS_REMOTE_PORT", s->remote_port, sizeof(s->remote_port), 0,
	    err, errlen) < 0 ||
	    env("SS_LOCAL_HOST", s->local_host, sizeof(s->local_host), 0,
	    err, errlen) < 0 ||
	    env("SS_LOCAL_PORT", s->local_port, sizeof(s->local_port), 0,
	    err, errlen) < 0 ||
	    env("SS_PLUGIN_OPTIONS", s->options, sizeof(s->options), 1,
	    err, errlen) < 0)
		return -1;
	if (!port_valid(s->remote_port)) {
		snprintf(err, errlen, "SIP003: SS_REMOTE_PORT '%s' is not a "
		    "port", s->remote_port);
		return -1;
	}
	if (!port_valid(s->local_port)) {
		snprintf(err, errlen, "SIP003: SS_LOCAL_PORT '%s' is not a "
		    "port", s->local_port);
		return -1;
	}
	if (sip003_hosts(s->remote_host, hosts, 1, err, errlen) < 0 ||
	    sip003_hosts(s->local_host, hosts, 1, err, errlen) < 0)
		return -1;
	return 1;
}

int sip003_hosts(const char *list, char hosts[][SIP003_HOSTLEN], int max,
    char *err, size_t errlen)
{
	const char *p = list, *end;
	size_t len;
	int n = 0;

	for (; *p && n < max; p = *end ? end + 1 : end) {
		end = strchr(p, '|');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		/* shadowsocks passes bare IPv6; tolerate brackets too */
		if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
			p++;
			len -= 2;
		}
		if (len == 0)
			continue;
		if (len >= SIP003_HOSTLEN) {
			snprintf(err, errlen, "host '%.40s...' is too long", p);
			return -1;
		}
		memcpy(hosts[n], p, len);
		hosts[n++][len] = '\0';
	}
	if (n == 0) {
		snprintf(err, errlen, "no host in '%s'", list);
		return -1;
	}
	return n;
}

int hostport_parse(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen, char *err, size_t errlen)
{
	const char *h = s, *colon;
	size_t len;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':') {
			snprintf(err, errlen, "'%s': expected [v6]:port", s);
			return -1;
		}
		h = s + 1;
		len = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "'%s': expected host:port", s);
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			snprintf(err, errlen, "'%s': put an IPv6 address in "
			    "brackets: [v6]:port", s);
			return -1;
		}
		len = (size_t)(colon - s);
	}
	if (len == 0 || len >= hostlen) {
		snprintf(err, errlen, "'%s': %s host", s, len ? "too long" :
		    "empty");
		return -1;
	}
	if (!port_valid(colon + 1) || strlen(colon + 1) >= portlen) {
		snprintf(err, errlen, "'%s': bad port '%s'", s, colon + 1);
		return -1;
	}
	memcpy(host, h, len);
	host[len] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static struct {
	pid_t ppid;
	unsigned interval;
	loop_timer timer;
	loop_cb cb;
	void *arg;
} W;

static void parent_tick(void *arg)
{
	(void)arg;
	if (getppid() != W.ppid) {
		log_info(0, "parent process %d exited", (int)W.ppid);
		W.cb(W.arg);
		return;
	}
	loop_timer_set(&W.timer, W.interval);
}

int sip003_watch_parent(unsigned interval_ms, loop_cb cb, void *arg)
{
	W.ppid = getppid();
	W.interval = interval_ms ? interval_ms : 1000;
	W.cb = cb;
	W.arg = arg;
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_warn(0, "prctl(PR_SET_PDEATHSIG): %m");
	loop_timer_init(&W.timer, parent_tick, NULL);
	/* the parent may already be gone (before prctl): check soon */
	loop_timer_set(&W.timer, 0);
	return 0;
}
