/*
 * plugin.h - loading backends and framings: built in, or dlopen()ed from the
 * plugin directory as backend_<name>.so / framing_<name>.so.  Layer: config.
 * A plugin whose WSY_PLUGIN says another API version, kind or ops size is
 * refused before any of its code runs.
 */
#ifndef WSY_PLUGIN_LOADER_H
#define WSY_PLUGIN_LOADER_H

#include <stddef.h>

#include "../plugins/websocksy_plugin.h"

typedef struct backend {
	char name[64];
	const wsy_backend_ops *ops;
	wsy_backend_ops ops_copy;   /* a loaded plugin's table, core-sized */
	void *st;
	void *dl;        /* dlopen handle, NULL when built in */
} backend;

void plugin_set_dir(const char *dir);

/*
 * The plugin directory to use when none is configured: "plugins" beside
 * the running binary when that directory exists (the build tree:
 * build/websocksy and build/plugins), else WSY_PLUGINDIR (installed).
 * Writes it to out; returns 1 for the directory beside the binary.
 */
int plugin_default_dir(char *out, size_t outlen);

/* Find backend name (built in "static", else backend_<name>.so) and init
 * it with host.  Returns 0 or -1 with a reason in err. */
int backend_open(backend *b, const char *name, const wsy_host *host,
    char *err, size_t errlen);
void backend_close(backend *b);

/*
 * The framing called name: built in, or framing_<name>.so loaded once and
 * kept until plugin_cleanup().  *trusted is 1 for built-in framings (they
 * only ever mark valid UTF-8 as text; the core checks plugins' text
 * frames).  config, unless NULL, is checked for built-in framings.
 * Returns 0 or -1.
 */
int framing_resolve(const char *name, const char *config,
    const wsy_framing_ops **ops, int *trusted, char *err, size_t errlen);

void plugin_cleanup(void);

/* The built-in static backend (backends/static.c). */
extern const wsy_backend_ops backend_static_ops;

#endif
