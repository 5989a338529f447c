/*
 * log.c - leveled logging to stderr or syslog(3).  Layer: bottom; never
 * exits.  One write per line, so lines from several processes do not mix.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_level = LOGL_INFO;
static const char *log_prog = "websocksy";
static int log_target = -1;    /* not chosen yet: stderr */
static int log_journal;        /* stderr is the journal's stream */
/* LOGL_* to syslog(3) priorities (journald reads them as "<N>"). */
static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_prog(const char *name) { log_prog = name; }

/* systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream it
 * connected stdout/stderr to; a child whose stderr was redirected
 * elsewhere inherits the variable, so compare it with stderr itself. */
static int journal_stderr(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (js == NULL || *js == '\0')
		return 0;
	dev = strtoull(js, &end, 10);
	if (end == js || *end != ':')
		return 0;
	js = end + 1;
	ino = strtoull(js, &end, 10);
	if (end == js || *end != '\0' || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

int log_target_parse(const char *name)
{
	if (strcmp(name, "stderr") == 0)
		return LOGT_STDERR;
	if (strcmp(name, "syslog") == 0)
		return LOGT_SYSLOG;
	return -1;
}

void log_open(int target)
{
	if (log_target == LOGT_SYSLOG)
		closelog();
	log_target = target == LOGT_SYSLOG ? LOGT_SYSLOG : LOGT_STDERR;
	log_journal = log_target == LOGT_STDERR && journal_stderr();
	/* LOG_NDELAY: connect to /dev/log now, while it is still reachable. */
	if (log_target == LOGT_SYSLOG)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0 && len > 0)
		buf[0] = '\0';
	else
		snprintf(buf + n, len - n, ".%03dZ",
		    (int)(ts.tv_nsec / 1000000));
}

/* The part before the message: it depends on where the line goes. */
static size_t log_prefix(char *line, size_t len, int level)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char ts[LOG_TSLEN];
	int r;

	if (log_target == LOGT_SYSLOG)      /* syslog adds prog[pid] */
		r = snprintf(line, len, "%s: ", names[level]);
	else if (log_journal)               /* sd-daemon(3) prefixes */
		r = snprintf(line, len, "<%d>%s: ", prio[level],
		    names[level]);
	else {
		log_timestamp(ts, sizeof(ts));
		r = snprintf(line, len, "%s %s[%d]: %s: ", ts, log_prog,
		    (int)getpid(), names[level]);
	}
	return r < 0 ? 0 : (size_t)r >= len ? len - 1 : (size_t)r;
}

void log_msg(int level, uint64_t conn, const char *fmt, ...)
{
	char line[1024];
	size_t n;
	int r;
	va_list ap;

	if (level > log_level || level < LOGL_ERROR)
		return;
	if (log_target < 0)
		log_open(LOGT_STDERR);
	n = log_prefix(line, sizeof line, level);
	if (conn) {
		r = snprintf(line + n, sizeof line - n, "[c%llu] ",
		    (unsigned long long)conn);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	if (log_target == LOGT_SYSLOG) {
		line[n] = '\0';
		syslog(prio[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nothing sensible to do */
	}
}

char *log_sanitize(const void *p, size_t n, char *out, size_t outlen)
{
	const unsigned char *s = p;
	size_t o = 0, i;

	if (outlen == 0)
		return out;
	for (i = 0; i < n; i++) {
		if (o + 8 >= outlen) {
			if (outlen >= 4)
				memcpy(out + (o < outlen - 4 ? o : outlen - 4), "...", 4);
			return out;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", s[i]);
	}
	out[o] = '\0';
	return out;
}
