/*
 * log.c - leveled logging to stderr.  Layer: bottom; never exits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_level = LOGL_INFO;
static const char *log_prog = "websocksy";

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_prog(const char *name) { log_prog = name; }

void log_msg(int level, uint64_t conn, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	size_t n;
	int r;
	va_list ap;

	if (level > log_level)
		return;
	if (conn)
		r = snprintf(line, sizeof line, "%s[%d]: %s: [c%llu] ", log_prog,
		    (int)getpid(), names[level], (unsigned long long)conn);
	else
		r = snprintf(line, sizeof line, "%s[%d]: %s: ", log_prog,
		    (int)getpid(), names[level]);
	n = r < 0 ? 0 : (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line so lines from several processes do not mix. */
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
