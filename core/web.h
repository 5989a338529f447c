/*
 * web.h - static files for plain GET requests (websockify's --web).
 * Layer: bridge helper.  Traversal-safe: the resolved path (symlinks
 * followed) must stay under the resolved root.
 */
#ifndef WSY_WEB_H
#define WSY_WEB_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Open the file for the (still percent-encoded) request path under root.
 * Returns 200 with *fd, *size and *ctype set, or 404 (missing, outside the
 * root, not a regular file) or 400 (bad encoding).
 */
int web_open(const char *root, const char *path, size_t pathlen, int *fd,
    off_t *size, const char **ctype);

#endif
