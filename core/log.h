/*
 * log.h - leveled logging to stderr with the connection id.  Layer: bottom.
 * Peer bytes are never logged raw: use log_sanitize first.
 */
#ifndef WSY_LOG_H
#define WSY_LOG_H

#include <stddef.h>
#include <stdint.h>

enum { LOGL_ERROR = 0, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

void log_set_level(int level);
int log_get_level(void);
void log_set_prog(const char *name);

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
