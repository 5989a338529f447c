/*
 * log.h - leveled logging with the connection id, to stderr (timestamped,
 * or with syslog priority prefixes for journald) or to syslog(3).
 * Layer: bottom.  Peer bytes are never logged raw: use log_sanitize first.
 */
#ifndef WSY_LOG_H
#define WSY_LOG_H

#include <stddef.h>
#include <stdint.h>

enum { LOGL_ERROR = 0, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

/* Where lines go (log_open). */
enum { LOGT_STDERR = 0, LOGT_SYSLOG };

void log_set_level(int level);
int log_get_level(void);
void log_set_prog(const char *name);

/* LOGT_STDERR: "TIMESTAMP prog[pid]: level: text", or "<N>level: text"
 * when stderr is the journal's stream (JOURNAL_STREAM names stderr's
 * device and inode; systemd sets it).  LOGT_SYSLOG: syslog(3), facility
 * daemon, opened now (before a chroot or privilege drop).  Without a call
 * lines go to stderr.  "stderr"/"syslog" to LOGT_*: log_target_parse
 * (-1 if neither). */
void log_open(int target);
int log_target_parse(const char *name);

/* The current UTC time as ISO 8601 with milliseconds,
 * "2026-12-07T16:50:23.123Z", into buf (LOG_TSLEN bytes are enough). */
#define LOG_TSLEN 32
void log_timestamp(char *buf, size_t len);

/* conn 0 = not about a connection. */
void log_msg(int level, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(c, ...) log_msg(LOGL_ERROR, (c), __VA_ARGS__)
#define log_warn(c, ...)  log_msg(LOGL_WARN, (c), __VA_ARGS__)
#define log_info(c, ...)  log_msg(LOGL_INFO, (c), __VA_ARGS__)
#define log_debug(c, ...) do { if (log_get_level() >= LOGL_DEBUG) \
	log_msg(LOGL_DEBUG, (c), __VA_ARGS__); } while (0)

/* Copy at most n bytes of p into out (size outlen) with non-printables as
 * \xHH, truncated with "..." if needed.  Returns out. */
char *log_sanitize(const void *p, size_t n, char *out, size_t outlen);

#endif
