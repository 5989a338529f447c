/*
 * framing.h - the built-in framings (auto, binary, separator, newline),
 * each a wsy_framing_fn of the plugin ABI.  Layer: protocol.  Pure
 * functions over the caller's buffer; state only through *state.
 */
#ifndef WSY_FRAMING_H
#define WSY_FRAMING_H

#include "../plugins/websocksy_plugin.h"

/* The built-in framing called name, or NULL. */
wsy_framing_fn framing_builtin(const char *name);

/*
 * Validate a framing-config string for a built-in framing at config time.
 * Returns 0, or -1 with a reason in err.
 */
int framing_builtin_check(const char *name, const char *config, char *err,
    size_t errlen);

#endif
