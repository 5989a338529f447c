/*
 * file.c - the file backend: the peer for a connection is read from a file
 * whose name is built from the request, as in the original websocksy.
 *
 * Options:
 *   path        base directory (required); every file read is under it
 *   expression  file name template, relative to path; repeatable, tried in
 *               the order given.  Variables: %endpoint% (the URL path
 *               without its leading '/'), %cookie:NAME%, %header:NAME%
 *               (header names case-insensitive); %% is a literal '%'.
 *               Default: one expression, %endpoint%.
 *
 * A file holds lines "peer subprotocol [framing [framing-config]]".  The
 * first line (in file order) whose subprotocol the client offered wins;
 * "*" matches the first offered protocol, or a client that offered none.
 * An expression whose variable is missing or unsafe, a missing file or a
 * file without a matching line moves on to the next expression; when none
 * is left the answer is 404.
 *
 * Reading is synchronous on purpose: the files are local, small (at most
 * FB_MAX_FILE bytes, checked before reading), opened non-blocking so a FIFO
 * cannot stall us, and parsed files are cached, so a query costs a
 * realpath() and a stat() in the common case.  That is cheaper than the
 * bookkeeping of an asynchronous read and never blocks the loop for long.
 *
 * Only the public plugin header and libc/POSIX: an outside author could
 * have written this.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../plugins/websocksy_plugin.h"

#define FB_MAX_VALUE	200		/* longest substituted value */
#define FB_MAX_FILE	65536		/* largest file we read */
#define FB_MAX_EXPR	32
#define FB_CACHE_MAX	256		/* parsed files kept */
#define FB_MAX_PEER	300

struct fb_line {
	char peer[FB_MAX_PEER];		/* normalised to a URI */
	const char *proto;		/* these point into fb_file.text */
	const char *framing;		/* NULL: the default */
	const char *fconf;		/* NULL: none */
};

struct fb_file {
	char *path;			/* realpath, the cache key */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	char *text;
	struct fb_line *lines;
	size_t nlines;
	uint64_t used;			/* LRU stamp */
	struct fb_file *next;
};

struct fb {
	const wsy_host *host;
	char path[PATH_MAX];		/* as configured */
	char base[PATH_MAX];		/* realpath of path, set by start */
	size_t baselen;
	char *expr[FB_MAX_EXPR];
	size_t nexpr;
	struct fb_file *cache;
	size_t ncache;
	uint64_t tick;
};

/* ---- values and sanitising ---- */

/*
 * A value substituted into a file name must name exactly one ordinary
 * directory entry: not empty, no '/', no leading '.' (this refuses "." and
 * ".." and hidden files), no NUL or control characters, not too long.
 * Values are used as sent: "%2e%2e" is not decoded and names a file called
 * "%2e%2e", which is harmless.
 */
static int fb_value_ok(const char *v, size_t n)
{
	size_t i;

	if (n == 0 || n > FB_MAX_VALUE || v[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch == '/' || ch < 0x20 || ch == 0x7f)
			return 0;
	}
	return 1;
}

/* The relative name after expansion: not absolute, no "." or ".."
 * component (values are checked, but two values side by side could still
 * spell ".."), no empty component. */
static int fb_name_ok(const char *name)
{
	const char *p = name, *e;
	size_t n;

	if (*name == '\0' || *name == '/')
		return 0;
	for (;;) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (e == NULL)
			return 1;
		p = e + 1;
	}
}

/* The first header called name (case-insensitive). */
static const char *fb_header(const wsy_request *req, const char *name,
    size_t namelen)
{
	size_t i;

	for (i = 0; i < req->n_headers; i++)
		if (strlen(req->headers[i].name) == namelen &&
		    strncasecmp(req->headers[i].name, name, namelen) == 0)
			return req->headers[i].value;
	return NULL;
}

/*
 * Find cookie name in one Cookie header value ("a=1; b=2", RFC 6265
 * §4.2.1).  Cookie names are case-sensitive; a value in double quotes
 * loses the quotes.
 */
static int fb_cookie_in(const char *h, const char *name, size_t namelen,
    const char **v, size_t *vlen)
{
	const char *p = h, *eq, *end;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = p + strcspn(p, ";");
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq && (size_t)(eq - p) == namelen &&
		    memcmp(p, name, namelen) == 0) {
			*v = eq + 1;
			while (end > *v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (end - *v >= 2 && **v == '"' && end[-1] == '"') {
				(*v)++;
				end--;
			}
			*vlen = (size_t)(end - *v);
			return 1;
		}
		p = end;
	}
	return 0;
}

/* The first cookie called name in any Cookie header. */
static int fb_cookie(const wsy_request *req, const char *name,
    size_t namelen, const char **v, size_t *vlen)
{
	size_t i;

	for (i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, "Cookie") == 0 &&
		    fb_cookie_in(req->headers[i].value, name, namelen, v,
		    vlen))
			return 1;
	return 0;
}

/*
 * Look up one variable (the text between the '%'s).  Returns 1 with the
 * value, 0 if the request has no such value, -1 if the name is unknown.
 */
static int fb_var(const wsy_request *req, const char *var, size_t n,
    const char **v, size_t *vlen)
{
	if (n == 8 && memcmp(var, "endpoint", 8) == 0) {
		if (req == NULL)
			return 1;
		/* Only the leading '/' goes; any other '/' makes the value
		 * unsafe, so /a/b never reaches a subdirectory. */
		*v = req->endpoint[0] == '/' ? req->endpoint + 1 :
		    req->endpoint;
		*vlen = strlen(*v);
		return 1;
	}
	if (n > 7 && memcmp(var, "cookie:", 7) == 0)
		return req == NULL ? 1 : fb_cookie(req, var + 7, n - 7, v,
		    vlen);
	if (n > 7 && memcmp(var, "header:", 7) == 0) {
		if (req == NULL)
			return 1;
		if ((*v = fb_header(req, var + 7, n - 7)) == NULL)
			return 0;
		*vlen = strlen(*v);
		return 1;
	}
	return -1;
}

/*
 * Expand tmpl for req into out.  Returns 0, or -1 with *why set when a
 * variable is missing or its value unsafe: the expression is skipped.
 * With req NULL only the syntax is checked (at configure time).
 */
static int fb_expand(const char *tmpl, const wsy_request *req, char *out,
    size_t outlen, const char **why)
{
	const char *p = tmpl, *e, *v = NULL;
	size_t o = 0, vlen = 0;
	int r;

	while (*p) {
		if (*p != '%' || p[1] == '%') {
			if (o + 1 >= outlen)
				goto toolong;
			out[o++] = *p;
			p += *p == '%' ? 2 : 1;
			continue;
		}
		if ((e = strchr(p + 1, '%')) == NULL) {
			*why = "unterminated %variable%";
			return -1;
		}
		r = fb_var(req, p + 1, (size_t)(e - p - 1), &v, &vlen);
		if (r < 0) {
			*why = "unknown variable (%endpoint%, %cookie:NAME%, "
			    "%header:NAME%)";
			return -1;
		}
		if (req != NULL) {
			if (r == 0) {
				*why = "variable not in the request";
				return -1;
			}
			if (!fb_value_ok(v, vlen)) {
				*why = "unsafe value";
				return -1;
			}
			if (o + vlen >= outlen)
				goto toolong;
			memcpy(out + o, v, vlen);
			o += vlen;
		}
		p = e + 1;
	}
	out[o] = '\0';
	return 0;
toolong:
	*why = "name too long";
	return -1;
}

/* base/rel with every symlink resolved; it must still be under base. */
static int fb_resolve(const struct fb *fb, const char *rel, char *real,
    const char **why)
{
	char full[PATH_MAX];

	if (snprintf(full, sizeof(full), "%s/%s", fb->base, rel) >=
	    (int)sizeof(full)) {
		*why = "name too long";
		return -1;
	}
	if (realpath(full, real) == NULL) {
		*why = errno == ENOENT ? "no such file" : strerror(errno);
		return -1;
	}
	if (strncmp(real, fb->base, fb->baselen) != 0 ||
	    real[fb->baselen] != '/') {
		*why = "resolves outside path";
		return -1;
	}
	return 0;
}

/* ---- files: parse and cache ---- */

/* A peer as written in a file: a URI, or host:port (TCP). */
static int fb_peer(const char *s, char *out, size_t outlen)
{
	static const char *const schemes[] = { "tcp://", "udp://",
	    "unix://", "unix-dgram://" };
	const char *colon;
	size_t i;

	if (strstr(s, "://")) {
		for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
				break;
		if (i == sizeof(schemes) / sizeof(schemes[0]))
			return -1;
		return snprintf(out, outlen, "%s", s) < (int)outlen ? 0 : -1;
	}
	colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	/* a bare IPv6 address would be ambiguous: it needs [brackets] */
	if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)))
		return -1;
	return snprintf(out, outlen, "tcp://%s", s) < (int)outlen ? 0 : -1;
}

/* Cut the next blank-separated token from *p; NULL at the end. */
static char *fb_token(char **p)
{
	char *s = *p + strspn(*p, " \t"), *e;

	if (*s == '\0')
		return NULL;
	e = s + strcspn(s, " \t");
	if (*e)
		*e++ = '\0';
	*p = e;
	return s;
}

/* One line "peer subprotocol [framing [framing-config...]]"; 1 if it
 * gave a route, 0 if blank or comment, -1 if malformed. */
static int fb_parse_line(char *s, struct fb_line *l)
{
	char *peer, *rest, *e;

	s += strspn(s, " \t");
	if (*s == '\0' || *s == '#')
		return 0;
	if ((peer = fb_token(&s)) == NULL ||
	    (l->proto = fb_token(&s)) == NULL ||
	    fb_peer(peer, l->peer, sizeof(l->peer)) < 0)
		return -1;
	l->framing = fb_token(&s);
	/* framing-config is the rest of the line: it may hold blanks */
	rest = s + strspn(s, " \t");
	e = rest + strlen(rest);
	while (e > rest && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	l->fconf = l->framing && *rest ? rest : NULL;
	return 1;
}

static void fb_file_free(struct fb_file *f)
{
	if (f == NULL)
		return;
	free(f->path);
	free(f->text);
	free(f->lines);
	free(f);
}

/* Parse f->text (NUL-terminated) into f->lines; bad lines are logged
 * (once per change of the file, thanks to the cache) and skipped. */
static int fb_parse(const struct fb *fb, struct fb_file *f)
{
	char *p = f->text, *nl;
	size_t n = 1, lineno = 0;
	int r;

	for (nl = p; (nl = strchr(nl, '\n')) != NULL; nl++)
		n++;
	if ((f->lines = calloc(n, sizeof(*f->lines))) == NULL)
		return -1;
	for (; p != NULL; p = nl) {
		lineno++;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		if (*p && p[strlen(p) - 1] == '\r')
			p[strlen(p) - 1] = '\0';
		r = fb_parse_line(p, &f->lines[f->nlines]);
		if (r > 0)
			f->nlines++;
		else if (r < 0)
			fb->host->log(WSY_LOG_WARN, "file backend: %s:%zu: "
			    "not \"peer subprotocol [framing [config]]\" "
			    "(peer: tcp://, udp://, unix://, unix-dgram:// "
			    "or host:port): line ignored", f->path, lineno);
	}
	return 0;
}

/* Read and parse the file real; O_NONBLOCK so a FIFO cannot hang the
 * loop, O_NOFOLLOW since real has no symlinks left unless swapped in. */
static struct fb_file *fb_load(const struct fb *fb, const char *real,
    const char **why)
{
	struct fb_file *f;
	struct stat sb;
	ssize_t r;
	size_t got = 0;
	int fd;

	if ((fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC |
	    O_NOFOLLOW)) < 0) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &sb) < 0)
		*why = strerror(errno);
	else if (!S_ISREG(sb.st_mode))
		*why = "not a regular file";
	else if (sb.st_size > FB_MAX_FILE)
		*why = "larger than 64 KiB";
	else
		*why = NULL;
	if (*why != NULL) {
		close(fd);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->path = strdup(real)) == NULL ||
	    (f->text = malloc(FB_MAX_FILE + 2)) == NULL)
		goto nomem;
	/* read up to one byte more than allowed to see a file that grew */
	while (got <= FB_MAX_FILE && (r = read(fd, f->text + got,
	    FB_MAX_FILE + 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = strerror(errno);
			goto fail;
		}
		got += (size_t)r;
	}
	if (got > FB_MAX_FILE) {
		*why = "larger than 64 KiB";
		goto fail;
	}
	f->text[got] = '\0';
	if (memchr(f->text, '\0', got) != NULL) {
		*why = "contains a NUL byte";
		goto fail;
	}
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->size = sb.st_size;
	f->mtime = sb.st_mtim;
	if (fb_parse(fb, f) < 0)
		goto nomem;
	close(fd);
	return f;
nomem:
	*why = "out of memory";
fail:
	close(fd);
	fb_file_free(f);
	return NULL;
}

static int fb_same(const struct fb_file *f, const struct stat *sb)
{
	return f->dev == sb->st_dev && f->ino == sb->st_ino &&
	    f->size == sb->st_size &&
	    f->mtime.tv_sec == sb->st_mtim.tv_sec &&
	    f->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/* Drop the least recently used file to make room. */
static void fb_evict(struct fb *fb)
{
	struct fb_file **pp, **old = NULL, *f;

	for (pp = &fb->cache; *pp; pp = &(*pp)->next)
		if (old == NULL || (*pp)->used < (*old)->used)
			old = pp;
	if (old == NULL)
		return;
	f = *old;
	*old = f->next;
	fb_file_free(f);
	fb->ncache--;
}

/* The parsed file real: from the cache if it did not change (one stat),
 * else read again.  NULL with *why if it cannot be used. */
static struct fb_file *fb_get(struct fb *fb, const char *real,
    const char **why)
{
	struct fb_file **pp, *f;
	struct stat sb;

	if (stat(real, &sb) < 0) {
		*why = strerror(errno);
		return NULL;
	}
	for (pp = &fb->cache; (f = *pp) != NULL; pp = &f->next) {
		if (strcmp(f->path, real) != 0)
			continue;
		if (fb_same(f, &sb)) {
			f->used = ++fb->tick;
			return f;
		}
		*pp = f->next;
		fb_file_free(f);
		fb->ncache--;
		break;
	}
	if (!S_ISREG(sb.st_mode)) {
		*why = "not a regular file";
		return NULL;
	}
	if ((f = fb_load(fb, real, why)) == NULL)
		return NULL;
	if (fb->ncache >= FB_CACHE_MAX)
		fb_evict(fb);
	f->used = ++fb->tick;
	f->next = fb->cache;
	fb->cache = f;
	fb->ncache++;
	return f;
}

/*
 * The first line, in file order, whose subprotocol the client offered
 * (the original websocksy's rule: the file's author ranks the routes).
 * "*" takes the client's first protocol, or none if it offered none.
 */
static const struct fb_line *fb_match(const struct fb_file *f,
    const wsy_request *req, const char **proto)
{
	const struct fb_line *l;
	size_t i, j;

	for (i = 0; i < f->nlines; i++) {
		l = &f->lines[i];
		if (strcmp(l->proto, "*") == 0) {
			*proto = req->n_protocols ? req->protocols[0] : NULL;
			return l;
		}
		for (j = 0; j < req->n_protocols; j++) {
			if (strcmp(l->proto, req->protocols[j]) == 0) {
				*proto = req->protocols[j];
				return l;
			}
		}
	}
	return NULL;
}

/* ---- the backend ---- */

static void *fb_init(const wsy_host *host, char *err, size_t errlen)
{
	struct fb *fb;

	if (host == NULL || host->struct_size < sizeof(wsy_host)) {
		snprintf(err, errlen, "host interface too old");
		return NULL;
	}
	if ((fb = calloc(1, sizeof(*fb))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fb->host = host;
	return fb;
}

static int fb_add_expr(struct fb *fb, const char *v, char *err,
    size_t errlen)
{
	char tmp[PATH_MAX];
	const char *why;

	if (*v == '\0' || *v == '/') {
		snprintf(err, errlen, "'%s': must be a name relative to "
		    "path", v);
		return WSY_ERROR;
	}
	if (fb_expand(v, NULL, tmp, sizeof(tmp), &why) < 0) {
		snprintf(err, errlen, "'%s': %s", v, why);
		return WSY_ERROR;
	}
	if (fb->nexpr == FB_MAX_EXPR) {
		snprintf(err, errlen, "at most %d expressions", FB_MAX_EXPR);
		return WSY_ERROR;
	}
	if ((fb->expr[fb->nexpr] = strdup(v)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return WSY_ERROR;
	}
	fb->nexpr++;
	return WSY_OK;
}

static int fb_configure(void *st, const char *key, const char *value,
    char *err, size_t errlen)
{
	struct fb *fb = st;

	if (strcmp(key, "path") == 0) {
		if (*value == '\0' || strlen(value) >= sizeof(fb->path)) {
			snprintf(err, errlen, "must be a directory");
			return WSY_ERROR;
		}
		snprintf(fb->path, sizeof(fb->path), "%s", value);
		return WSY_OK;
	}
	if (strcmp(key, "expression") == 0)
		return fb_add_expr(fb, value, err, errlen);
	snprintf(err, errlen, "unknown key (path, expression)");
	return WSY_ERROR;
}

static int fb_start(void *st, char *err, size_t errlen)
{
	struct fb *fb = st;
	struct stat sb;

	if (fb->path[0] == '\0') {
		snprintf(err, errlen, "path: required (the directory of "
		    "the route files)");
		return WSY_ERROR;
	}
	if (realpath(fb->path, fb->base) == NULL ||
	    stat(fb->base, &sb) < 0) {
		snprintf(err, errlen, "path: %s: %s", fb->path,
		    strerror(errno));
		return WSY_ERROR;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "path: %s: not a directory", fb->path);
		return WSY_ERROR;
	}
	/* "/" as base: every resolved path starts with base + '/' if the
	 * base is kept as "" */
	if (strcmp(fb->base, "/") == 0)
		fb->base[0] = '\0';
	fb->baselen = strlen(fb->base);
	if (fb->nexpr == 0)
		return fb_add_expr(fb, "%endpoint%", err, errlen);
	return WSY_OK;
}

/* Try one expression; 1 and *lp set if it gave a route. */
static int fb_try(struct fb *fb, const char *tmpl, const wsy_request *req,
    const struct fb_line **lp, const char **proto)
{
	char rel[PATH_MAX], real[PATH_MAX];
	const struct fb_file *f;
	const char *why;

	if (fb_expand(tmpl, req, rel, sizeof(rel), &why) < 0 ||
	    (!fb_name_ok(rel) && (why = "unsafe name")) ||
	    fb_resolve(fb, rel, real, &why) < 0) {
		fb->host->log(WSY_LOG_DEBUG, "[%llu] file backend: %s: %s",
		    (unsigned long long)req->conn_id, tmpl, why);
		return 0;
	}
	if ((f = fb_get(fb, real, &why)) == NULL) {
		fb->host->log(WSY_LOG_WARN, "[%llu] file backend: %s: %s",
		    (unsigned long long)req->conn_id, real, why);
		return 0;
	}
	if ((*lp = fb_match(f, req, proto)) == NULL) {
		fb->host->log(WSY_LOG_DEBUG, "[%llu] file backend: %s: no "
		    "line for the offered subprotocols",
		    (unsigned long long)req->conn_id, real);
		return 0;
	}
	return 1;
}

static int fb_query(void *st, const wsy_request *req, uint64_t qid)
{
	struct fb *fb = st;
	const struct fb_line *l = NULL;
	const char *proto = NULL;
	wsy_answer a;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.struct_size = sizeof(a);
	for (i = 0; i < fb->nexpr; i++)
		if (fb_try(fb, fb->expr[i], req, &l, &proto))
			break;
	if (l == NULL) {
		a.status = 404;
	} else {
		a.peer = l->peer;
		a.protocol = proto;
		a.framing = l->framing;
		a.framing_config = l->fconf;
	}
	fb->host->answer(qid, &a);
	return WSY_OK;
}

static void fb_cleanup(void *st)
{
	struct fb *fb = st;
	struct fb_file *f;
	size_t i;

	while ((f = fb->cache) != NULL) {
		fb->cache = f->next;
		fb_file_free(f);
	}
	for (i = 0; i < fb->nexpr; i++)
		free(fb->expr[i]);
	free(fb);
}

static const wsy_backend_ops fb_ops = {
	.init = fb_init,
	.configure = fb_configure,
	.start = fb_start,
	.query = fb_query,
	.cancel = NULL,		/* answers are always synchronous */
	.cleanup = fb_cleanup,
};

const wsy_plugin WSY_PLUGIN = {
	.api_version = WEBSOCKSY_API_VERSION,
	.kind = WSY_KIND_BACKEND,
	.name = "file",
	.ops_size = sizeof(wsy_backend_ops),
	.ops = &fb_ops,
};
