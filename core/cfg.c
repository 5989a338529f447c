/*
 * cfg.c - the [core] key table and INI loading.
 *
 * Every core key is one row of a table: name, type, where it lives and its
 * bounds.  The same row serves INI files, -C key=value and the flags, so a
 * key has one spelling, one parser and one error message everywhere.
 */
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cfg.h"
#include "log.h"
#include "psk.h"
#include "loop.h"

enum { T_STR, T_UINT, T_SECS, T_PORT, T_LEVEL, T_LIST, T_BOOL, T_VERIFY,
    T_CERT, T_KEY, T_PORT0, T_POLLER };

struct key {
	const char *name;
	int type;
	size_t off;
	size_t size;          /* T_STR: capacity */
	uint64_t min, max;    /* T_UINT / T_SECS (ms) */
};

#define STR(n, f)  { n, T_STR, offsetof(wsy_config, f), \
	sizeof(((wsy_config *)0)->f), 0, 0 }
#define UINT(n, f, lo, hi) { n, T_UINT, offsetof(wsy_config, f), 0, lo, hi }
#define SECS(n, f, lo, hi) { n, T_SECS, offsetof(wsy_config, f), 0, lo, hi }

static const struct key keys[] = {
	{ "port", T_PORT0, offsetof(wsy_config, port), 0, 0, 0 },
	STR("listen", listen),
	STR("backend", backend),
	STR("plugins", plugins),
	STR("web", web),
	STR("resolver", resolver),
	{ "origin", T_LIST, offsetof(wsy_config, origins), 0, 0, 0 },
	SECS("ping", ping_ms, 0, 86400000),
	UINT("max-connections", max_connections, 1, 10000000),
	UINT("buffer-size", buffer_size, 1024, 64u << 20),
	UINT("max-request-line", max_request_line, 64, 1u << 20),
	UINT("max-header-bytes", max_header_bytes, 256, 1u << 20),
	UINT("max-headers", max_headers, 8, 256),
	SECS("handshake-timeout", handshake_timeout_ms, 100, 3600000),
	SECS("connect-timeout", connect_timeout_ms, 100, 3600000),
	SECS("close-timeout", close_timeout_ms, 100, 3600000),
	SECS("linger", linger_ms, 0, 3600000),
	SECS("send-timeout", send_timeout_ms, 100, 86400000),
	UINT("max-datagram", max_datagram, 1, 1u << 20),
	UINT("max-streams", max_streams, 1, 65536),
	UINT("buffer-pool", buffer_pool, 0, 1ull << 34),
	STR("ws-host", ws_host),
	STR("ws-path", ws_path),
	SECS("peer-close-linger", peer_close_linger_ms, 0, 3600000),
	SECS("response-linger", response_linger_ms, 0, 3600000),
	SECS("memory-trim", memory_trim_ms, 0, 3600000),
	{ "poller", T_POLLER, offsetof(wsy_config, poller), 0, 0, 0 },
	SECS("utf8-hold", utf8_hold_ms, 0, 60000),
	{ "log-level", T_LEVEL, offsetof(wsy_config, log_level), 0, 0, 0 },
	STR("log", log),
	{ "tls-port", T_PORT, offsetof(wsy_config, tls_port), 0, 0, 0 },
	{ "tls-cert", T_CERT, 0, 0, 0, 0 },
	{ "tls-key", T_KEY, 0, 0, 0, 0 },
	STR("tls-servername", tls_servername),
	STR("tls-ocsp", tls_ocsp),
	STR("tls-priority", tls_priority),
	{ "tls-only", T_BOOL, offsetof(wsy_config, tls_only), 0, 0, 0 },
	STR("tls-client-ca", tls_client_ca),
	{ "tls-client-verify", T_VERIFY, offsetof(wsy_config,
	    tls_client_verify), 0, 0, 0 },
	SECS("tls-handshake-timeout", tls_handshake_timeout_ms, 100, 3600000),
	STR("kcp-listen", kcp_listen),
	STR("kcp-psk", kcp_psk),
	STR("kcp-peer", kcp_peer),
	STR("kcp-mux-config", kcp_mux_config),
	STR("kcp-framing", kcp_framing),
	UINT("kcp-mtu", kcp_mtu, 256, 1500),
	UINT("kcp-window", kcp_window, 16, 65535),
	UINT("kcp-sessions", kcp_sessions, 1, 1000000),
	SECS("kcp-session-timeout", kcp_session_timeout_ms, 1000, 86400000),
	SECS("kcp-keepalive", kcp_keepalive_ms, 100, 3600000),
	UINT("kcp-replay-cache", kcp_replay_cache, 1024, 1u << 24),
	{ "kcp-allow-move", T_BOOL, offsetof(wsy_config, kcp_allow_move), 0, 0,
	    0 },
};

void cfg_defaults(wsy_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->listen, "::");
	strcpy(c->port, "8001");
	strcpy(c->backend, "static");
	snprintf(c->plugins, sizeof(c->plugins), "%s", WSY_PLUGINDIR);
	c->ping_ms = 30000;
	c->max_connections = 4096;
	c->buffer_size = 262144;
	c->max_request_line = 8192;
	c->max_header_bytes = 16384;
	c->max_headers = 100;
	c->handshake_timeout_ms = 10000;
	c->connect_timeout_ms = 10000;
	c->close_timeout_ms = 10000;
	c->response_linger_ms = 2000;
	c->memory_trim_ms = 250;
	c->utf8_hold_ms = 250;
	c->linger_ms = 1000;
	c->send_timeout_ms = 60000;
	c->max_datagram = 65507;
	c->max_streams = 128;
	c->buffer_pool = 16u << 20;
	c->log_level = LOGL_INFO;
	strcpy(c->log, "stderr");
	c->tls_only = 1;
	c->kcp_mtu = 1400;
	strcpy(c->kcp_framing, "kcp-mux");
	c->kcp_window = 1024;
	c->kcp_sessions = 1024;
	c->kcp_session_timeout_ms = 60000;
	c->kcp_keepalive_ms = 10000;
	c->kcp_replay_cache = PSK_REPLAY_DEFAULT;
	c->tls_handshake_timeout_ms = 10000;
}

int cfg_tls_enabled(const wsy_config *c)
{
	return c->tls_port[0] != '\0';
}

static void free_list(char **l)
{
	size_t i;

	for (i = 0; l && l[i]; i++)
		free(l[i]);
	free(l);
}

void cfg_free(wsy_config *c)
{
	size_t i;

	free_list(c->origins);
	for (i = 0; i < c->ntls_cert; i++)
		free(c->tls_cert[i]);
	for (i = 0; i < c->ntls_key; i++)
		free(c->tls_key[i]);
	c->ntls_cert = c->ntls_key = 0;
	for (i = 0; i < c->nbopts; i++) {
		free(c->bopts[i].key);
		free(c->bopts[i].value);
		free(c->bopts[i].file);
	}
	free(c->bopts);
	for (i = 0; i < c->nsrcs; i++)
		free(c->srcs[i].file);
	free(c->srcs);
	c->origins = NULL;
	c->bopts = NULL;
	c->nbopts = 0;
	c->srcs = NULL;
	c->nsrcs = 0;
}

static int parse_uint(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*v = n;
	return 0;
}

int cfg_parse_seconds(const char *s, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1000;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100000000)
			return -1;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p)
		return -1;
	*ms = whole * 1000 + frac;
	return 0;
}

/* Split an allow-list on spaces and commas. */
static int set_list(char ***dst, const char *v, char *err, size_t errlen)
{
	char **l = NULL;
	size_t n = 0;
	const char *p = v;

	while (*p) {
		size_t len = strcspn(p, " \t,");
		if (len) {
			char **nl = realloc(l, (n + 2) * sizeof(*l));
			if (nl == NULL || (nl[n] = strndup(p, len)) == NULL) {
				free_list(nl ? nl : l);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			l = nl;
			l[++n] = NULL;
		}
		p += len;
		p += strspn(p, " \t,");
	}
	free_list(*dst);
	*dst = l;
	return 0;
}

static int set_level(int *lvl, const char *v, char *err, size_t errlen)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	int i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, names[i]) == 0) {
			*lvl = i;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not a level (error, warn, info, "
	    "debug)", v);
	return -1;
}

static int set_bool(int *b, const char *v, char *err, size_t errlen)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcmp(v, "1") || !strcasecmp(v, "on")) {
		*b = 1;
		return 0;
	}
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcmp(v, "0") || !strcasecmp(v, "off")) {
		*b = 0;
		return 0;
	}
	snprintf(err, errlen, "'%s' is not yes or no", v);
	return -1;
}

static int set_verify(int *m, const char *v, char *err, size_t errlen)
{
	static const char *names[] = { "none", "optional", "require" };
	int i;

	for (i = 0; i < 3; i++) {
		if (strcasecmp(v, names[i]) == 0) {
			*m = i;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not none, optional or require", v);
	return -1;
}

static int set_poller(int *m, const char *v, char *err, size_t errlen)
{
	int k = loop_poller_parse(v);

	if (k < 0) {
		snprintf(err, errlen, "'%s' is not auto, epoll or poll", v);
		return -1;
	}
	if (!loop_poller_available(k)) {
		snprintf(err, errlen, "'%s': this build has no %s", v, v);
		return -1;
	}
	*m = k;
	return 0;
}

/* Certificates and keys pair up in the order given (8 pairs at most). */
static int add_path(char **list, size_t *n, const char *v, char *err,
    size_t errlen)
{
	if (*n == 8) {
		snprintf(err, errlen, "at most 8 certificate/key pairs");
		return -1;
	}
	if (*v == '\0' || (list[*n] = strdup(v)) == NULL) {
		snprintf(err, errlen, *v ? "out of memory" : "empty path");
		return -1;
	}
	(*n)++;
	return 0;
}

static const struct key *find_key(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Values a type alone does not refuse. */
static int check_value(const struct key *k, const char *value, char *err,
    size_t errlen)
{
	/* The request path always starts with '/': without one, every
	 * upgrade would get 404 (the client refuses such a path too). */
	if (strcmp(k->name, "ws-path") == 0 && *value &&
	    (*value != '/' || strpbrk(value, " \t\r\n"))) {
		snprintf(err, errlen, "'%.100s' must start with '/' and have "
		    "no spaces", value);
		return -1;
	}
	if (strcmp(k->name, "log") == 0 && log_target_parse(value) < 0) {
		snprintf(err, errlen, "'%.100s': expected stderr or syslog",
		    value);
		return -1;
	}
	return 0;
}

int cfg_set(wsy_config *c, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct key *k = find_key(key);
	char *field;
	uint64_t v = 0;

	if (k == NULL) {
		snprintf(err, errlen, "unknown key");
		return -1;
	}
	if (check_value(k, value, err, errlen) < 0)
		return -1;
	field = (char *)c + k->off;
	switch (k->type) {
	case T_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, errlen, "value too long (max %zu)",
			    k->size - 1);
			return -1;
		}
		strcpy(field, value);
		return 0;
	case T_PORT0:
		if (strcmp(value, "0") == 0 || strcmp(value, "none") == 0) {
			strcpy(field, "");
			return 0;
		}
		/* FALLTHROUGH */
	case T_PORT:
		if (parse_uint(value, &v) < 0 || v < 1 || v > 65535) {
			snprintf(err, errlen, "'%s' is not a port (1-65535)",
			    value);
			return -1;
		}
		snprintf(field, sizeof(c->port), "%u", (unsigned)v);
		return 0;
	case T_LIST:
		return set_list((char ***)(void *)field, value, err, errlen);
	case T_LEVEL:
		return set_level((int *)(void *)field, value, err, errlen);
	case T_BOOL:
		return set_bool((int *)(void *)field, value, err, errlen);
	case T_VERIFY:
		return set_verify((int *)(void *)field, value, err, errlen);
	case T_POLLER:
		return set_poller((int *)(void *)field, value, err, errlen);
	case T_CERT:
		return add_path(c->tls_cert, &c->ntls_cert, value, err,
		    errlen);
	case T_KEY:
		return add_path(c->tls_key, &c->ntls_key, value, err, errlen);
	case T_UINT:
		if (parse_uint(value, &v) < 0) {
			snprintf(err, errlen, "'%s' is not a number", value);
			return -1;
		}
		break;
	case T_SECS:
		if (cfg_parse_seconds(value, &v) < 0) {
			snprintf(err, errlen, "'%s' is not a number of seconds",
			    value);
			return -1;
		}
		break;
	}
	if (v < k->min || v > k->max) {
		if (k->type == T_SECS)
			snprintf(err, errlen, "'%s' out of range (%g-%g s)",
			    value, k->min / 1000.0, k->max / 1000.0);
		else
			snprintf(err, errlen, "'%s' out of range (%llu-%llu)",
			    value, (unsigned long long)k->min,
			    (unsigned long long)k->max);
		return -1;
	}
	memcpy(field, &v, sizeof(v));
	return 0;
}

static int add_src(wsy_config *c, const char *key, const char *file,
    int line, int bad)
{
	cfg_src *n = realloc(c->srcs, (c->nsrcs + 1) * sizeof(*n));

	if (n == NULL)
		return -1;
	c->srcs = n;
	if ((n[c->nsrcs].file = strdup(file)) == NULL)
		return -1;
	n[c->nsrcs].key = key;
	n[c->nsrcs].line = line;
	n[c->nsrcs].bad = bad;
	c->nsrcs++;
	return 0;
}

int cfg_set_from(wsy_config *c, const char *key, const char *value,
    const char *file, int line, char *err, size_t errlen)
{
	const struct key *k = find_key(key);
	int r = cfg_set(c, key, value, err, errlen);

	if (k && add_src(c, k->name, file, line, r < 0) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return r;
}

const cfg_src *cfg_where(const wsy_config *c, const char *key, size_t nth)
{
	const cfg_src *last = NULL;
	size_t i, n = 0;

	for (i = 0; i < c->nsrcs; i++) {
		if (strcmp(c->srcs[i].key, key) != 0 || c->srcs[i].bad)
			continue;
		if (n++ == nth)
			return &c->srcs[i];
		last = &c->srcs[i];
	}
	return nth == CFG_LAST ? last : NULL;
}

int cfg_failed(const wsy_config *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->nsrcs; i++)
		if (c->srcs[i].bad && strcmp(c->srcs[i].key, key) == 0)
			return 1;
	return 0;
}

void cfg_where_str(const cfg_src *s, const char *key, char *buf, size_t len)
{
	if (s == NULL)
		snprintf(buf, len, "%s", key);
	else if (s->line > 0)
		snprintf(buf, len, "%s:%d: %s", s->file, s->line, key);
	else
		snprintf(buf, len, "%s %s", s->file, key);
}

const char *cfg_key_name(size_t n)
{
	return n < sizeof(keys) / sizeof(keys[0]) ? keys[n].name : NULL;
}

static void format_secs(uint64_t ms, char *buf, size_t len)
{
	char frac[8];
	size_t n;

	snprintf(frac, sizeof(frac), "%03u", (unsigned)(ms % 1000));
	for (n = 3; n > 0 && frac[n - 1] == '0'; n--)
		frac[n - 1] = '\0';
	snprintf(buf, len, "%llu%s%s", (unsigned long long)(ms / 1000),
	    n ? "." : "", frac);
}

int cfg_format(const wsy_config *c, const char *key, char *buf, size_t len)
{
	static const char *const levels[] = { "error", "warn", "info",
	    "debug" };
	static const char *const verify[] = { "none", "optional", "require" };
	static const char *const pollers[] = { "auto", "epoll", "poll" };
	const struct key *k = find_key(key);
	const char *field;
	uint64_t v = 0;
	int i = 0;
	char **l;

	if (k == NULL)
		return -1;
	field = (const char *)c + k->off;
	switch (k->type) {
	case T_STR: case T_PORT: case T_PORT0:
		snprintf(buf, len, "%s", field);
		return 0;
	case T_UINT:
		memcpy(&v, field, sizeof(v));
		snprintf(buf, len, "%llu", (unsigned long long)v);
		return 0;
	case T_SECS:
		memcpy(&v, field, sizeof(v));
		format_secs(v, buf, len);
		return 0;
	case T_LEVEL: case T_VERIFY: case T_POLLER:
		memcpy(&i, field, sizeof(i));
		if (i < 0 || i > (k->type == T_LEVEL ? 3 : 2))
			return -1;
		snprintf(buf, len, "%s", (k->type == T_LEVEL ? levels :
		    k->type == T_VERIFY ? verify : pollers)[i]);
		return 0;
	case T_BOOL:
		memcpy(&i, field, sizeof(i));
		snprintf(buf, len, "%s", i ? "yes" : "no");
		return 0;
	case T_LIST:
		memcpy(&l, field, sizeof(l));
		for (buf[0] = '\0'; l && *l; l++)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
			    buf[0] ? " " : "", *l);
		return 0;
	}
	return -1;
}

int cfg_add_backend_opt(wsy_config *c, const char *key, const char *value,
    const char *file, int line)
{
	cfg_opt *n = realloc(c->bopts, (c->nbopts + 1) * sizeof(*n));
	cfg_opt *o;

	if (n == NULL)
		return -1;
	c->bopts = n;
	o = &n[c->nbopts];
	o->key = strdup(key);
	o->value = strdup(value);
	o->file = strdup(file);
	o->line = line;
	if (!o->key || !o->value || !o->file) {
		free(o->key);
		free(o->value);
		free(o->file);
		return -1;
	}
	c->nbopts++;
	return 0;
}

/*
 * Debian's libinih is built without INI_HANDLER_LINENO, so the handler is
 * not told the line.  We feed inih through ini_parse_stream with our own
 * line reader and count lines there: inih calls the handler right after
 * reading the line that holds the key.  The reader also catches what inih
 * would take in silence: a read error (the rest of the file would look
 * like its end) and a line longer than inih's buffer (the rest of it
 * would be parsed as a line of its own).
 */
struct load_ctx {
	wsy_config *c;
	const char *path;
	FILE *f;
	int line;
	int errors;
	int read_errno;     /* a read failed: the file ends here for inih */
	int indented;       /* this line starts with blanks */
	int after_key;      /* a key was set since the last [section] */
	size_t first_src;   /* c->srcs and c->bopts before this file */
	size_t first_bopt;
};

static int swallow_line(FILE *f)
{
	int ch;

	while ((ch = getc(f)) != EOF && ch != '\n')
		;
	return ferror(f) ? -1 : 0;
}

static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *x = stream;
	size_t n;
	int ch;

	if (x->read_errno)
		return NULL;
	errno = 0;
	if (fgets(str, num, x->f) == NULL) {
		if (ferror(x->f))
			x->read_errno = errno ? errno : EIO;
		return NULL;
	}
	x->line++;
	x->indented = str[0] == ' ' || str[0] == '\t';
	if (str[strspn(str, " \t")] == '[')
		x->after_key = 0;   /* inih forgets the key at a section */
	n = strlen(str);
	if (n + 1 < (size_t)num || str[n - 1] == '\n')
		return str;
	if ((ch = getc(x->f)) == EOF || ch == '\n')
		return str;     /* it just fits */
	fprintf(stderr, "%s:%d: line too long (at most %d characters)\n",
	    x->path, x->line, num - 2);
	x->errors++;
	if (swallow_line(x->f) < 0) {
		x->read_errno = errno ? errno : EIO;
		return NULL;
	}
	str[0] = '\0';          /* inih skips an empty line */
	return str;
}

static const cfg_src *seen_here(const struct load_ctx *x, const char *key)
{
	size_t i;

	for (i = x->first_src; i < x->c->nsrcs; i++)
		if (strcmp(x->c->srcs[i].key, key) == 0)
			return &x->c->srcs[i];
	return NULL;
}

/* inih reads an indented line after a key as more of that key's value (a
 * second call for the same key): multi-line values are not supported. */
static int continued(struct load_ctx *x, const char *name)
{
	if (!x->indented || !x->after_key) {
		x->after_key = 1;
		return 0;
	}
	fprintf(stderr, "%s:%d: %s: an indented line continues the value "
	    "of the line above; write the whole value on one line\n",
	    x->path, x->line, name);
	x->errors++;
	return 1;
}

/* One [core], [tls] or [kcp] key: each may be given once per file, except
 * tls-cert and tls-key, which pair up in order. */
static void set_core(struct load_ctx *x, const char *key, const char *name,
    const char *value)
{
	const struct key *k = find_key(key);
	const cfg_src *first;
	char err[256];

	if (continued(x, name))
		return;
	if (k && k->type != T_CERT && k->type != T_KEY &&
	    (first = seen_here(x, k->name)) != NULL) {
		fprintf(stderr, "%s:%d: %s: is duplicate (first given at line "
		    "%d)\n", x->path, x->line, name, first->line);
		x->errors++;
		return;
	}
	if (cfg_set_from(x->c, key, value, x->path, x->line, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s:%d: %s: %s\n", x->path, x->line, name, err);
		x->errors++;
	}
}

static int on_ini(void *user, const char *section, const char *name,
    const char *value)
{
	struct load_ctx *x = user;
	char k[64], pre[8];

	if (strcmp(section, "core") == 0) {
		set_core(x, name, name, value);
	} else if (strcmp(section, "tls") == 0 || strcmp(section, "kcp") ==
	    0) {
		/* [tls] cert = ... is tls-cert = ... in [core] */
		snprintf(pre, sizeof(pre), "%s-", section);
		snprintf(k, sizeof(k), "%s%s", strncmp(name, pre, 4) ? pre :
		    "", name);
		set_core(x, k, name, value);
	} else if (strcmp(section, "backend") == 0) {
		if (continued(x, name))
			;
		else if (cfg_add_backend_opt(x->c, name, value, x->path,
		    x->line) < 0) {
			fprintf(stderr, "%s:%d: %s: out of memory\n", x->path,
			    x->line, name);
			x->errors++;
		}
	} else {
		fprintf(stderr, "%s:%d: %s: unknown section [%s] (core, "
		    "tls, kcp, backend)\n", x->path, x->line, name, section);
		x->errors++;
	}
	return 1;   /* keep going: report every error at once */
}

/* The built-in backends' repeatable keys.  An outside plugin's keys are
 * its own business: it gets every value, in order. */
static int backend_repeats(const char *backend, const char *key)
{
	if (strcmp(backend, "file") == 0)
		return strcmp(key, "expression") == 0;
	return strcmp(backend, "static") != 0 && strcmp(backend, "unix") != 0;
}

static int backend_duplicates(const struct load_ctx *x)
{
	const wsy_config *c = x->c;
	size_t i, j;
	int errors = 0;

	for (i = x->first_bopt; i < c->nbopts; i++) {
		if (backend_repeats(c->backend, c->bopts[i].key))
			continue;
		for (j = x->first_bopt; j < i; j++)
			if (strcmp(c->bopts[j].key, c->bopts[i].key) == 0)
				break;
		if (j < i) {
			fprintf(stderr, "%s:%d: %s: is duplicate (first given "
			    "at line %d)\n", x->path, c->bopts[i].line,
			    c->bopts[i].key, c->bopts[j].line);
			errors++;
		}
	}
	return errors;
}

int cfg_load_stream(wsy_config *c, const char *path, FILE *f)
{
	struct load_ctx x;
	int r;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.path = path;
	x.f = f;
	x.first_src = c->nsrcs;
	x.first_bopt = c->nbopts;
	r = ini_parse_stream(read_line, &x, on_ini, &x);
	if (x.read_errno) {
		fprintf(stderr, "%s:%d: read error: %s\n", path, x.line + 1,
		    strerror(x.read_errno));
		c->load_failed = 1;
		return x.errors + 1;
	}
	if (r > 0) {
		/* inih reports the first syntax error line (a line that is
		 * neither a section, a key = value nor a comment). */
		fprintf(stderr, "%s:%d: syntax error (expected [section] or "
		    "key = value)\n", path, r);
		x.errors++;
	} else if (r < 0) {
		fprintf(stderr, "%s: out of memory\n", path);
		c->load_failed = 1;
		x.errors++;
	}
	return x.errors + backend_duplicates(&x);
}

int cfg_load(wsy_config *c, const char *path)
{
	struct stat sb;
	FILE *f;
	int n;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: cannot open: %s\n", path,
		    strerror(errno));
		c->load_failed = 1;
		return 1;
	}
	if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s: is a directory, not a configuration "
		    "file\n", path);
		fclose(f);
		c->load_failed = 1;
		return 1;
	}
	n = cfg_load_stream(c, path, f);
	fclose(f);
	return n;
}
