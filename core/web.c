/*
 * web.c - static files under a web root.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "web.h"

static const struct { const char *ext, *type; } types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "json", "application/json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "ico", "image/x-icon" },
	{ "wasm", "application/wasm" },
	{ "woff2", "font/woff2" },
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* 1 if any segment of p is "." or ".." (after decoding). */
static int has_dot_segment(const char *p)
{
	while (*p) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 1;
		p += n;
		p += strspn(p, "/");
	}
	return 0;
}

int web_open(const char *root, const char *path, size_t pathlen, int *fd,
    off_t *size, const char **ctype)
{
	char dec[PATH_MAX], full[PATH_MAX * 2 + 16], rroot[PATH_MAX],
	    real[PATH_MAX];
	struct stat st;
	size_t rl;
	int f;

	if (http_unescape(path, pathlen, dec, sizeof(dec)) < 0)
		return 400;
	if (dec[0] != '/' || has_dot_segment(dec))
		return 404;
	if (realpath(root, rroot) == NULL)
		return 404;
	snprintf(full, sizeof(full), "%s%s", rroot, dec);
	if (dec[strlen(dec) - 1] == '/')
		strncat(full, "index.html", sizeof(full) - strlen(full) - 1);
	if (realpath(full, real) == NULL)
		return 404;
	rl = strlen(rroot);
	if (strncmp(real, rroot, rl) != 0 ||
	    (real[rl] != '/' && !(rl == 1 && rroot[0] == '/')))
		return 404;
	if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
		strncat(real, "/index.html", sizeof(real) - strlen(real) - 1);
	}
	if ((f = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 404;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f);
		return 404;
	}
	*fd = f;
	*size = st.st_size;
	*ctype = content_type(real);
	return 200;
}
