/*
 * sip003.h - running as a shadowsocks SIP003 plugin, and host:port
 * addresses.  Layer: sockets (above loop).
 *
 * The parent passes SS_REMOTE_HOST, SS_REMOTE_PORT, SS_LOCAL_HOST,
 * SS_LOCAL_PORT and SS_PLUGIN_OPTIONS.  A host may be a list separated by
 * '|' ("::1|127.0.0.1") and IPv6 literals come without brackets.
 */
#ifndef WSY_SIP003_H
#define WSY_SIP003_H

#include <stddef.h>

#include "loop.h"

#define SIP003_HOSTLEN 256
#define SIP003_MAX_HOSTS 8

typedef struct sip003 {
	char remote_host[1024];	/* raw list as passed */
	char remote_port[8];
	char local_host[1024];
	char local_port[8];
	char options[4096];	/* SS_PLUGIN_OPTIONS, "" if unset */
} sip003;

/* Read the environment.  Returns 1 (plugin mode, s filled), 0 (no
 * SS_REMOTE_HOST: not a plugin), or -1 with the reason in err (a variable
 * missing, empty, too long, or a bad port). */
int sip003_from_env(sip003 *s, char *err, size_t errlen);

/* Split a '|' host list into hosts (brackets removed, empty entries
 * skipped).  Returns how many (at most max), or -1 with the reason. */
int sip003_hosts(const char *list, char hosts[][SIP003_HOSTLEN], int max,
    char *err, size_t errlen);

/* Parse "host:port", "[v6]:port" (host copied without brackets).  A bare
 * IPv6 literal is refused: its last ':' would be ambiguous.  Returns 0 or
 * -1 with the reason in err. */
int hostport_parse(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen, char *err, size_t errlen);

/* 1 if p is a decimal port 1..65535. */
int port_valid(const char *p);

/* Call cb(arg) from the loop once the parent process is gone: the kernel
 * sends SIGTERM (PR_SET_PDEATHSIG; the caller handles SIGTERM), and a
 * timer checks getppid() every interval_ms in case the signal was missed
 * (the parent died before prctl, or exited from a non-main thread).
 * Returns 0 or -1. */
int sip003_watch_parent(unsigned interval_ms, loop_cb cb, void *arg);

#endif
