/*
 * tunnel.h - websocksy as the server end of a tunnel: the Kaminari /
 * v2ray-plugin option string (-o, or SS_PLUGIN_OPTIONS in SIP003 mode)
 * turned into ordinary configuration.  Layer: config.
 *
 *   ws;host=example.com;path=/ws            plain ws, Host and path checked
 *   ws;tls;cert=C;key=K   or  tls;servername=example.com
 *   mux=0                                   one WebSocket per TCP connection
 */
#ifndef WSY_TUNNEL_H
#define WSY_TUNNEL_H

#include <stddef.h>

#include "cfg.h"

/* Apply an option string to c (listener, TLS, Host/path checks, binary
 * framing, peer-close linger).  Returns 0 or -1 with the offending key
 * quoted in err. */
int tunnel_apply(wsy_config *c, const char *options, char *err,
    size_t errlen);

/* SIP003: with SS_* set (and no arguments), listen on SS_REMOTE_HOST:PORT
 * and send every connection to SS_LOCAL_HOST:PORT.  Returns 1 when in
 * plugin mode (c filled), 0 when not, -1 with a reason. */
int tunnel_sip003(wsy_config *c, char *err, size_t errlen);

#endif
