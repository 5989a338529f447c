/*
 * websocksy_plugin.h - the public plugin ABI of websocksy.
 *
 * Self-contained: a plugin includes only this header.  A plugin is a shared
 * object named backend_<name>.so or framing_<name>.so that exports one data
 * symbol, WSY_PLUGIN (a struct wsy_plugin).  The core reads it with dlsym()
 * and checks api_version and struct sizes before calling any plugin code.
 *
 * Threading: the core is one thread; every plugin function is called from it
 * and every host function must be called from it.  Memory never crosses the
 * boundary to be freed on the other side: strings handed to the host are
 * copied during the call; strings handed to the plugin are borrowed for the
 * duration of the call only.  Structs only ever grow at the end.
 */
#ifndef WEBSOCKSY_PLUGIN_H
#define WEBSOCKSY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define WEBSOCKSY_API_VERSION 1

enum wsy_kind { WSY_KIND_BACKEND = 1, WSY_KIND_FRAMING = 2 };

/* WebSocket opcodes a framing may choose (RFC 6455 §5.2). */
enum wsy_opcode { WSY_OP_TEXT = 1, WSY_OP_BINARY = 2 };

enum wsy_log_level { WSY_LOG_ERROR = 0, WSY_LOG_WARN, WSY_LOG_INFO, WSY_LOG_DEBUG };

/* Poll events for watch_fd. */
#define WSY_EV_READ  1
#define WSY_EV_WRITE 2

typedef void (*wsy_fd_cb)(int fd, int events, void *arg);
typedef void (*wsy_timer_cb)(void *arg);

typedef struct wsy_header {
	const char *name;
	const char *value;
} wsy_header;

/* What a backend sees of one upgrade request; everything is borrowed. */
typedef struct wsy_request {
	size_t struct_size;          /* sizeof(wsy_request) of the core */
	uint64_t conn_id;            /* the connection id used in logs */
	const char *endpoint;        /* the path, without query, e.g. "/chat" */
	const char *query;           /* after '?', "" if none */
	const wsy_header *headers;   /* in request order, names as sent */
	size_t n_headers;
	const char *const *protocols; /* offered Sec-WebSocket-Protocol values */
	size_t n_protocols;
	const char *client_addr;     /* "127.0.0.1" or "::1" */
	uint16_t client_port;
	int tls;                     /* 1 when the client came over TLS */
	const char *tls_sni;         /* NULL if none */
	const char *tls_alpn;
	const char *tls_version;
	const char *tls_client_subject;
} wsy_request;

/*
 * A backend's answer.  status 0 accepts: peer is a URI (tcp://host:port,
 * udp://host:port, unix:///path, unix-dgram:///path), framing and
 * framing_config may be NULL (the configured default), protocol is the chosen
 * subprotocol or NULL.  A non-zero status refuses with that HTTP status
 * (403, 404, 500, 503...).  The host copies every string during answer().
 */
typedef struct wsy_answer {
	size_t struct_size;
	int status;
	const char *peer;
	const char *framing;
	const char *framing_config;
	const char *protocol;
} wsy_answer;

/* Functions the core exports to plugins (no -export-dynamic needed). */
typedef struct wsy_host {
	size_t struct_size;
	uint32_t api_version;
	void (*log)(int level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
	/* Deliver the answer to query qid.  Returns 0, or -1 if the query is
	 * no longer waiting (client gone, deadline passed): not an error. */
	int (*answer)(uint64_t qid, const wsy_answer *answer);
	/* Event loop access for asynchronous backends.  watch_fd replaces any
	 * previous watch of fd; events 0 or unwatch_fd removes it. */
	int (*watch_fd)(int fd, int events, wsy_fd_cb cb, void *arg);
	void (*unwatch_fd)(int fd);
	/* One-shot timer; returns an id > 0, or 0 on failure. */
	uint64_t (*timer_add)(uint64_t ms, wsy_timer_cb cb, void *arg);
	void (*timer_cancel)(uint64_t id);
	uint64_t (*now_ms)(void);    /* monotonic milliseconds */
} wsy_host;

/* Return codes of plugin functions. */
#define WSY_OK       0
#define WSY_PENDING  1            /* query: answer() will be called later */
#define WSY_ERROR   -1

/*
 * Backend: init -> configure* -> start -> (query / cancel)* -> cleanup.
 * Errors are written to err (NUL-terminated, at most errlen bytes) and the
 * core reports them with the config file and line.
 */
typedef struct wsy_backend_ops {
	void *(*init)(const wsy_host *host, char *err, size_t errlen);
	int (*configure)(void *st, const char *key, const char *value,
	    char *err, size_t errlen);
	int (*start)(void *st, char *err, size_t errlen);
	/* Either calls host->answer(qid, ...) and returns WSY_OK, or returns
	 * WSY_PENDING and answers later, or returns WSY_ERROR (HTTP 500). */
	int (*query)(void *st, const wsy_request *req, uint64_t qid);
	/* The core stopped waiting for qid; a later answer() is ignored. */
	void (*cancel)(void *st, uint64_t qid);
	void (*cleanup)(void *st);
} wsy_backend_ops;

/*
 * Framing: the original websocksy contract.  Given the bytes buffered from
 * the peer (data, length; last_read of them are new since the last call),
 * return how many form the next frame and set *opcode, or 0 to wait for more
 * data, or < 0 to fail the connection (close 1011).  *state is per
 * connection, NULL at first; the final call has data == NULL to free it.
 * config is the framing-config string, or "" if none.
 * If the buffer is full and the framing still returns 0, the core sends the
 * whole buffer as one frame of the last opcode rather than deadlock.
 */
typedef int64_t (*wsy_framing_fn)(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *config);

typedef struct wsy_framing_ops {
	wsy_framing_fn frame;
	/* Reserved for framing sessions (kcp-mux): a framing that owns the
	 * whole connection.  NULL in API version 1. */
	const void *session;
} wsy_framing_ops;

/* The one symbol a plugin exports: const struct wsy_plugin WSY_PLUGIN. */
typedef struct wsy_plugin {
	uint32_t api_version;         /* WEBSOCKSY_API_VERSION */
	uint32_t kind;                /* enum wsy_kind */
	const char *name;             /* "file", "fixedlength"... */
	size_t ops_size;              /* sizeof the ops struct */
	const void *ops;              /* wsy_backend_ops or wsy_framing_ops */
} wsy_plugin;

#define WSY_PLUGIN_SYMBOL "WSY_PLUGIN"

#endif
