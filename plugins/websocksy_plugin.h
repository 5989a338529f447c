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
#define WSY_EV_ERROR 4   /* delivered only: error or hang-up on the fd */

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
 * connection, NULL at first; the final call has data == NULL (length 0,
 * opcode NULL) to free it.  config is the framing-config string, "" if none.
 * After a frame of n bytes, the next call's data starts n bytes later.
 * If the buffer is full (buffer-size) and the framing still returns 0, or
 * the peer has closed, the core sends what is buffered as one frame rather
 * than deadlock or lose it.  A text frame that is not valid UTF-8 is sent as
 * binary (the core checks; text frames on the wire are always UTF-8).
 * Returning more than length is a plugin bug: the connection closes (1011).
 */
typedef int64_t (*wsy_framing_fn)(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, void **state, const char *config);

/*
 * The same contract, plus *skip: bytes before the frame that are discarded
 * (a length prefix to strip, whitespace between values).  The core drops
 * skip bytes, then sends the next n (the return value) as a frame; n == 0
 * with skip > 0 only discards.  *skip is 0 on entry.
 */
typedef int64_t (*wsy_framing_skip_fn)(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, size_t *skip, void **state,
    const char *config);

struct wsy_session_ops;

/* A framing sets frame or frame_skip (frame_skip wins if both), or
 * session to take over the whole connection (see below). */
typedef struct wsy_framing_ops {
	wsy_framing_fn frame;
	wsy_framing_skip_fn frame_skip;
	const struct wsy_session_ops *session;
} wsy_framing_ops;

/*
 * Framing sessions.  A framing with session ops owns the connection: the
 * core still does the handshake, the RFC 6455 codec, pings and the close
 * handshake, but it connects no peer by itself; WebSocket messages go to the
 * session, and the session opens, writes and closes peer streams through the
 * functions below (kcp-mux carries many streams over one WebSocket this
 * way).  `conn` is the core's opaque handle for the connection; stream ids
 * are chosen by the core (> 0) and never reused within a connection.
 * All calls happen on the core's thread; none may be made after on_close.
 */
typedef struct wsy_session_host {
	size_t struct_size;
	/* Queue one whole WebSocket message (WSY_OP_TEXT must be UTF-8).
	 * Returns 0, or -1 when the client's output is full: wait for
	 * on_ws_writable and retry. */
	int (*ws_send)(void *conn, int opcode, const uint8_t *data,
	    size_t len);
	/* Open a peer stream: uri is a peer URI, or NULL for the peer the
	 * backend chose.  Returns the stream id; the result arrives later
	 * through on_peer_open (never from inside this call). 0 = failure. */
	uint64_t (*peer_open)(void *conn, const char *uri);
	/* Write to a stream; returns the bytes taken (0..len; fewer = the
	 * stream's buffer is full: wait for on_peer_writable), -1 if the
	 * stream is gone. */
	int64_t (*peer_write)(void *conn, uint64_t stream,
	    const uint8_t *data, size_t len);
	/* No more data to the stream (shutdown(SHUT_WR) after the flush). */
	void (*peer_shutdown)(void *conn, uint64_t stream);
	/* Close the stream now; no more callbacks for it. */
	void (*peer_close)(void *conn, uint64_t stream);
	/* Stop (1) or resume (0) reading a stream (backpressure). */
	void (*peer_pause)(void *conn, uint64_t stream, int paused);
	/* Close the WebSocket with code and reason (on_close follows). */
	void (*close)(void *conn, int code, const char *reason);
	/* Stop (1) or resume (0) reading client messages (backpressure
	 * when the session cannot take more). */
	void (*ws_pause)(void *conn, int paused);
	/* Log about this connection (its id is added). */
	void (*log)(void *conn, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	/* One-shot timer for this connection (keepalives): id > 0, or 0 on
	 * failure.  Timers still armed at on_close are cancelled by the core;
	 * cancelling a fired or unknown id is harmless. */
	uint64_t (*timer_add)(void *conn, uint64_t ms, wsy_timer_cb cb,
	    void *arg);
	void (*timer_cancel)(void *conn, uint64_t id);
	uint64_t (*now_ms)(void);     /* monotonic milliseconds */
} wsy_session_host;

typedef struct wsy_session_ops {
	size_t struct_size;
	/* A connection was upgraded.  config is the framing-config, peer the
	 * backend's peer URI.  Returns the session state or NULL (1011). */
	void *(*open)(const wsy_session_host *host, void *conn,
	    const char *config, const char *peer);
	/* A chunk of a client message (first/fin as in RFC 6455 framing;
	 * text chunks are valid UTF-8 so far). */
	void (*on_message)(void *sess, int opcode, const uint8_t *data,
	    size_t len, int fin);
	/* ws_send may be retried. */
	void (*on_ws_writable)(void *sess);
	/* Result of peer_open: ok 1, or 0 with a reason in err. */
	void (*on_peer_open)(void *sess, uint64_t stream, int ok,
	    const char *err);
	/* Bytes from a stream; len 0 = the peer closed its side (EOF). */
	void (*on_peer_data)(void *sess, uint64_t stream,
	    const uint8_t *data, size_t len);
	/* The stream can take more after a short peer_write. */
	void (*on_peer_writable)(void *sess, uint64_t stream);
	/* The stream failed (reset, write error); it is closed already. */
	void (*on_peer_error)(void *sess, uint64_t stream, const char *err);
	/* The client said close (code), or the connection is going away:
	 * free the session; the core closes every stream left. */
	void (*on_close)(void *sess, int code);
	/* Optional (added after the first release of ABI 1; NULL or absent:
	 * the session is closed at once with 1001).  The server is shutting
	 * down: tell the client (kcp-mux sends a GOAWAY) and let the work in
	 * progress finish.  The host calls go on working; the session ends
	 * with close() when it is done, or with on_close(1001) close-timeout
	 * after the shutdown began.  Called for sessions over KCP; WebSocket
	 * connections get the close frame 1001 at once. */
	void (*on_shutdown)(void *sess);
} wsy_session_ops;

/* The one symbol a plugin exports: const struct wsy_plugin WSY_PLUGIN. */
typedef struct wsy_plugin {
	uint32_t api_version;         /* WEBSOCKSY_API_VERSION */
	uint32_t kind;                /* enum wsy_kind */
	const char *name;             /* "file", "fixedlength"... */
	size_t ops_size;              /* sizeof the ops struct */
	const void *ops;              /* wsy_backend_ops or wsy_framing_ops */
} wsy_plugin;

#define WSY_PLUGIN_SYMBOL "WSY_PLUGIN"

/* Declared here with default visibility, so that a plugin built with
 * -fvisibility=hidden (recommended: nothing else of it should leak into
 * the host's namespace) still exports its definition of it. */
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
extern const wsy_plugin WSY_PLUGIN;

#endif
