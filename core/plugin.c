/*
 * plugin.c - the plugin loader.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "framing.h"
#include "log.h"
#include "plugin.h"

static char plugdir[PATH_MAX] = WSY_PLUGINDIR;

/*
 * A plugin's tables are copied into zeroed tables of the core's size: a
 * plugin built against an older header of the same API version (shorter
 * tables: structs only grow at the end) works, with the newer members
 * NULL.  min_* are the sizes of the first version of each table.
 */
struct loaded {
	char name[64];
	void *dl;
	wsy_framing_ops ops;
	wsy_session_ops session;
	struct loaded *next;
};

#define MIN_BACKEND_OPS sizeof(wsy_backend_ops)
#define MIN_FRAMING_OPS sizeof(wsy_framing_ops)
/* The first session table ended with on_close. */
#define MIN_SESSION_OPS offsetof(wsy_session_ops, on_shutdown)

static void copy_table(void *dst, size_t dstsize, const void *src,
    size_t srcsize)
{
	memset(dst, 0, dstsize);
	memcpy(dst, src, srcsize < dstsize ? srcsize : dstsize);
}

static const char *const builtin_names[] = { "auto", "binary", "separator",
    "newline" };
static wsy_framing_ops builtin_ops[4];

static struct loaded *framings;

void plugin_set_dir(const char *dir)
{
	snprintf(plugdir, sizeof(plugdir), "%s", dir);
}

int plugin_default_dir(char *out, size_t outlen)
{
	char exe[PATH_MAX], dir[PATH_MAX + 16];
	struct stat st;
	ssize_t n;
	char *slash;

	snprintf(out, outlen, "%s", WSY_PLUGINDIR);
	/* Linux: the binary's own path, whatever the cwd or argv[0] */
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 0;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 0;
	*slash = '\0';
	snprintf(dir, sizeof(dir), "%s/plugins", exe);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    strlen(dir) >= outlen)
		return 0;
	snprintf(out, outlen, "%s", dir);
	return 1;
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n < 64 && strspn(name,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
	    == n;
}

/* dlopen kind_name.so and check its WSY_PLUGIN before anything else. */
static const wsy_plugin *load(const char *kind, const char *name,
    uint32_t want, size_t ops_size, void **dl, char *err, size_t errlen)
{
	char path[PATH_MAX + 80];
	const wsy_plugin *p;

	if (!valid_name(name)) {
		snprintf(err, errlen, "bad %s name '%s'", kind, name);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s_%s.so", plugdir, kind, name);
	if (access(path, F_OK) != 0) {
		snprintf(err, errlen, "unknown %s '%s' (not built in, and no "
		    "%s)", kind, name, path);
		return NULL;
	}
	if ((*dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "%s %s: cannot load: %s", kind, name,
		    dlerror());
		return NULL;
	}
	p = dlsym(*dl, WSY_PLUGIN_SYMBOL);
	if (p == NULL)
		snprintf(err, errlen, "%s: no %s symbol: not a websocksy "
		    "plugin", path, WSY_PLUGIN_SYMBOL);
	else if (p->api_version != WEBSOCKSY_API_VERSION)
		snprintf(err, errlen, "%s: built for plugin API version %u, "
		    "this websocksy speaks version %u: rebuild the plugin",
		    path, p->api_version, WEBSOCKSY_API_VERSION);
	else if (p->kind != want)
		snprintf(err, errlen, "%s: not a %s plugin", path, kind);
	else if (p->ops == NULL || p->ops_size < ops_size)  /* v1 minimum */
		snprintf(err, errlen, "%s: ops table too small (%zu < %zu)",
		    path, p->ops_size, ops_size);
	else
		return p;
	dlclose(*dl);
	*dl = NULL;
	return NULL;
}

int backend_open(backend *b, const char *name, const wsy_host *host,
    char *err, size_t errlen)
{
	const wsy_plugin *p;

	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (strcmp(name, "static") == 0) {
		b->ops = &backend_static_ops;
	} else {
		p = load("backend", name, WSY_KIND_BACKEND,
		    MIN_BACKEND_OPS, &b->dl, err, errlen);
		if (p == NULL)
			return -1;
		copy_table(&b->ops_copy, sizeof(b->ops_copy), p->ops,
		    p->ops_size);
		b->ops = &b->ops_copy;
		if (!b->ops->init || !b->ops->query) {
			snprintf(err, errlen, "backend %s: init and query "
			    "are required", name);
			dlclose(b->dl);
			b->dl = NULL;
			return -1;
		}
	}
	err[0] = '\0';
	if ((b->st = b->ops->init(host, err, errlen)) == NULL) {
		if (!err[0])
			snprintf(err, errlen, "backend %s: init failed", name);
		backend_close(b);
		return -1;
	}
	return 0;
}

void backend_close(backend *b)
{
	if (b->st && b->ops->cleanup)
		b->ops->cleanup(b->st);
	b->st = NULL;
	if (b->dl)
		dlclose(b->dl);
	b->dl = NULL;
}

int framing_resolve(const char *name, const char *config,
    const wsy_framing_ops **ops, int *trusted, char *err, size_t errlen)
{
	wsy_framing_ops *o;
	const wsy_plugin *p;
	struct loaded *l;
	void *dl;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcmp(name, builtin_names[i]) != 0)
			continue;
		builtin_ops[i].frame = framing_builtin(name);
		*ops = &builtin_ops[i];
		*trusted = 1;
		return config == NULL ? 0 : framing_builtin_check(name,
		    config, err, errlen);
	}
	*trusted = 0;
	for (l = framings; l; l = l->next) {
		if (strcmp(l->name, name) == 0) {
			*ops = &l->ops;
			return 0;
		}
	}
	p = load("framing", name, WSY_KIND_FRAMING, MIN_FRAMING_OPS, &dl, err,
	    errlen);
	if (p == NULL)
		return -1;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		dlclose(dl);
		return -1;
	}
	copy_table(&l->ops, sizeof(l->ops), p->ops, p->ops_size);
	o = &l->ops;
	if (o->session) {
		if (o->session->struct_size < MIN_SESSION_OPS) {
			snprintf(err, errlen, "framing %s: session ops too "
			    "small (%zu < %zu)", name, o->session->struct_size,
			    MIN_SESSION_OPS);
			goto bad;
		}
		copy_table(&l->session, sizeof(l->session), o->session,
		    o->session->struct_size);
		o->session = &l->session;
		if (!l->session.open || !l->session.on_message ||
		    !l->session.on_peer_open || !l->session.on_peer_data ||
		    !l->session.on_peer_error || !l->session.on_close) {
			snprintf(err, errlen, "framing %s: incomplete session "
			    "ops", name);
			goto bad;
		}
	} else if (o->frame == NULL && o->frame_skip == NULL) {
		snprintf(err, errlen, "framing %s: no frame function", name);
		goto bad;
	}
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->dl = dl;
	*ops = o;
	l->next = framings;
	framings = l;
	return 0;
bad:
	free(l);
	dlclose(dl);
	return -1;
}

void plugin_cleanup(void)
{
	struct loaded *l, *next;

	for (l = framings; l; l = next) {
		next = l->next;
		dlclose(l->dl);
		free(l);
	}
	framings = NULL;
}
