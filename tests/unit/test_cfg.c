/*
 * test_cfg.c - configuration: the [core] key table, seconds, lists, INI
 * files with errors reported by file, line and key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/cfg.h"
#include "test.h"

static char tmpl[] = "/tmp/wsy-cfg-XXXXXX";

static const char *write_ini(const char *text)
{
	int fd;
	FILE *f;

	strcpy(tmpl, "/tmp/wsy-cfg-XXXXXX");
	fd = mkstemp(tmpl);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return tmpl;
}

/* stderr goes to a file between capture_begin and capture_end. */
static FILE *cap;
static int saved_fd;

static void capture_begin(void)
{
	cap = tmpfile();
	saved_fd = dup(2);
	fflush(stderr);
	dup2(fileno(cap), 2);
}

static void capture_end(char *out, size_t outlen)
{
	size_t r;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	rewind(cap);
	r = fread(out, 1, outlen - 1, cap);
	out[r] = '\0';
	fclose(cap);
}

/* Run cfg_load with stderr captured into out. */
static int load_capture(wsy_config *c, const char *path, char *out,
    size_t outlen)
{
	int n;

	capture_begin();
	n = cfg_load(c, path);
	capture_end(out, outlen);
	return n;
}

static int check_capture(const wsy_config *c, char *out, size_t outlen)
{
	int n;

	capture_begin();
	n = cfg_check(c);
	capture_end(out, outlen);
	return n;
}

/* out holds "PATH" followed by rest. */
static int has(const char *out, const char *path, const char *rest)
{
	char want[512];

	snprintf(want, sizeof(want), "%s%s", path, rest);
	if (strstr(out, want))
		return 1;
	fprintf(stderr, "want \"%s\" in:\n%s", want, out);
	return 0;
}

static void test_defaults(void)
{
	wsy_config c;

	cfg_defaults(&c);
	CHECK(strcmp(c.port, "8001") == 0);
	CHECK(strcmp(c.listen, "::") == 0);
	CHECK(strcmp(c.backend, "static") == 0);
	CHECK_EQ(c.ping_ms, 30000);
	CHECK_EQ(c.buffer_size, 262144);
	CHECK_EQ(c.max_request_line, 8192);
	CHECK_EQ(c.max_header_bytes, 16384);
	CHECK_EQ(c.max_headers, 100);
	CHECK_EQ(c.handshake_timeout_ms, 10000);
	CHECK_EQ(c.max_datagram, 65507);
	CHECK(c.origins == NULL);
	cfg_free(&c);
}

static void test_set(void)
{
	wsy_config c;
	char err[256];
	uint64_t ms;

	cfg_defaults(&c);
	CHECK_EQ(cfg_set(&c, "port", "9000", err, sizeof(err)), 0);
	CHECK(strcmp(c.port, "9000") == 0);
	CHECK_EQ(cfg_set(&c, "tls-port", "0", err, sizeof(err)), -1);
	CHECK(strstr(err, "not a port") != NULL);
	CHECK_EQ(cfg_set(&c, "port", "0", err, sizeof(err)), 0);
	CHECK(c.port[0] == '\0');     /* no plain listener */
	CHECK_EQ(cfg_set(&c, "tls-only", "no", err, sizeof(err)), 0);
	CHECK_EQ(c.tls_only, 0);
	CHECK_EQ(cfg_set(&c, "tls-only", "maybe", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "tls-client-verify", "require", err,
	    sizeof(err)), 0);
	CHECK_EQ(c.tls_client_verify, 2);
	CHECK_EQ(cfg_set(&c, "tls-client-verify", "sometimes", err,
	    sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "tls-cert", "a.pem", err, sizeof(err)), 0);
	CHECK_EQ(cfg_set(&c, "tls-key", "a.key", err, sizeof(err)), 0);
	CHECK_EQ(c.ntls_cert, 1);
	CHECK_EQ(c.ntls_key, 1);
	CHECK_EQ(cfg_set(&c, "port", "65536", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "port", "12ab", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "nosuch", "1", err, sizeof(err)), -1);
	CHECK(strcmp(err, "unknown key") == 0);
	CHECK_EQ(cfg_set(&c, "handshake-timeout", "0.5", err, sizeof(err)),
	    0);
	CHECK_EQ(c.handshake_timeout_ms, 500);
	CHECK_EQ(cfg_set(&c, "handshake-timeout", "0.01", err, sizeof(err)),
	    -1);
	CHECK(strstr(err, "out of range") != NULL);
	CHECK_EQ(cfg_set(&c, "ping", "0", err, sizeof(err)), 0);
	CHECK_EQ(c.ping_ms, 0);
	CHECK_EQ(cfg_set(&c, "ping", "-1", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "buffer-size", "10", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "buffer-size", "65536", err, sizeof(err)), 0);
	CHECK_EQ(c.buffer_size, 65536);
	CHECK_EQ(cfg_set(&c, "max-connections", "x", err, sizeof(err)), -1);
	CHECK(strstr(err, "not a number") != NULL);
	CHECK_EQ(cfg_set(&c, "log-level", "debug", err, sizeof(err)), 0);
	CHECK_EQ(c.log_level, 3);
	CHECK_EQ(cfg_set(&c, "log-level", "loud", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "origin", "http://a, https://b  http://c", err,
	    sizeof(err)), 0);
	CHECK(c.origins && strcmp(c.origins[0], "http://a") == 0);
	CHECK(c.origins && strcmp(c.origins[1], "https://b") == 0);
	CHECK(c.origins && strcmp(c.origins[2], "http://c") == 0);
	CHECK(c.origins && c.origins[3] == NULL);
	CHECK_EQ(cfg_set(&c, "origin", "", err, sizeof(err)), 0);
	CHECK(c.origins == NULL);
	CHECK_EQ(cfg_parse_seconds("1.25", &ms), 0);
	CHECK_EQ(ms, 1250);
	CHECK_EQ(cfg_parse_seconds("1.", &ms), -1);
	CHECK_EQ(cfg_parse_seconds(".5", &ms), -1);
	CHECK_EQ(cfg_parse_seconds("2s", &ms), -1);
	cfg_free(&c);
}

static void test_ini(void)
{
	wsy_config c;
	char out[2048];
	const char *p;

	cfg_defaults(&c);
	p = write_ini("; comment\n[core]\nport = 9001\nping = 5\n"
	    "[tls]\nport = 9443\ncert = x.pem\ntls-key = x.key\n"
	    "\n[backend]\nhost = example.org\nport = 22\n"
	    "framing = newline\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK(strcmp(c.port, "9001") == 0);
	CHECK_EQ(c.ping_ms, 5000);
	CHECK(strcmp(c.tls_port, "9443") == 0);
	CHECK(c.ntls_cert == 1 && strcmp(c.tls_cert[0], "x.pem") == 0);
	CHECK(c.ntls_key == 1 && strcmp(c.tls_key[0], "x.key") == 0);
	CHECK_EQ(c.nbopts, 3);
	CHECK(c.nbopts == 3 && strcmp(c.bopts[0].key, "host") == 0 &&
	    strcmp(c.bopts[0].value, "example.org") == 0 &&
	    c.bopts[0].line == 11);
	CHECK(c.nbopts == 3 && strcmp(c.bopts[2].key, "framing") == 0 &&
	    c.bopts[2].line == 13);
	unlink(p);
	cfg_free(&c);

	/* Every error is reported, each with file, line and key. */
	cfg_defaults(&c);
	p = write_ini("[core]\nport = 99999\nbogus = 1\nping = soon\n"
	    "[other]\nx = 1\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 4);
	{
		char want[256];
		snprintf(want, sizeof(want), "%s:2: port: ", p);
		CHECK(strstr(out, want) != NULL);
		snprintf(want, sizeof(want), "%s:3: bogus: unknown key", p);
		CHECK(strstr(out, want) != NULL);
		snprintf(want, sizeof(want), "%s:4: ping: ", p);
		CHECK(strstr(out, want) != NULL);
		snprintf(want, sizeof(want), "%s:6: x: unknown section", p);
		CHECK(strstr(out, want) != NULL);
	}
	unlink(p);
	cfg_free(&c);

	/* A line that is not key = value. */
	cfg_defaults(&c);
	p = write_ini("[core]\nport = 9001\nthis is junk\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(strstr(out, ":3: syntax error") != NULL);
	unlink(p);
	cfg_free(&c);

	/* A missing file. */
	cfg_defaults(&c);
	CHECK_EQ(load_capture(&c, "/nonexistent/websocksy.cfg", out,
	    sizeof(out)), 1);
	CHECK(strstr(out, "/nonexistent/websocksy.cfg: cannot open: No such "
	    "file") != NULL);
	CHECK(c.load_failed);
	cfg_free(&c);
}

/* A key twice in one section is an error naming both lines (nginx's "is
 * duplicate"); tls-cert/tls-key and the file backend's expression repeat. */
static void test_duplicates(void)
{
	wsy_config c;
	char out[2048];
	const char *p;

	cfg_defaults(&c);
	p = write_ini("[core]\nport = 1\nport = 2\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(has(out, p, ":3: port: is duplicate (first given at line 2)"));
	CHECK(strcmp(c.port, "1") == 0);
	unlink(p);
	cfg_free(&c);

	/* [tls] port is tls-port; a second [core] section is the same one */
	cfg_defaults(&c);
	p = write_ini("[core]\ntls-port = 9443\n[tls]\nport = 9444\n"
	    "[core]\nping = 1\n[core]\nping = 2\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 2);
	CHECK(has(out, p, ":4: port: is duplicate (first given at line 2)"));
	CHECK(has(out, p, ":8: ping: is duplicate (first given at line 6)"));
	unlink(p);
	cfg_free(&c);

	/* A refused first value still counts as given. */
	cfg_defaults(&c);
	p = write_ini("[core]\nmax-headers = 1\nmax-headers = 8\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 2);
	CHECK(has(out, p, ":3: max-headers: is duplicate (first given at "
	    "line 2)"));
	unlink(p);
	cfg_free(&c);

	cfg_defaults(&c);
	p = write_ini("[tls]\ncert = a.pem\nkey = a.key\ncert = b.pem\n"
	    "key = b.key\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK_EQ(c.ntls_cert, 2);
	CHECK_EQ(c.ntls_key, 2);
	unlink(p);
	cfg_free(&c);

	/* [backend] of the static backend: every key is single */
	cfg_defaults(&c);
	p = write_ini("[backend]\nhost = a\nport = 1\nframing = binary\n"
	    "port = 2\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(has(out, p, ":5: port: is duplicate (first given at line 3)"));
	unlink(p);
	cfg_free(&c);

	/* the file backend's expression repeats, its path does not; the
	 * backend may be named after its [backend] section */
	cfg_defaults(&c);
	p = write_ini("[backend]\npath = /a\nexpression = %endpoint%\n"
	    "expression = default\npath = /b\n[core]\nbackend = file\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(has(out, p, ":5: path: is duplicate (first given at line 2)"));
	unlink(p);
	cfg_free(&c);

	/* an outside backend gets every value, in order */
	cfg_defaults(&c);
	p = write_ini("[core]\nbackend = mine\n[backend]\nx = 1\nx = 2\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK_EQ(c.nbopts, 2);
	unlink(p);
	cfg_free(&c);
}

/* A read error after "[core]\nport = 1\n": a stream that fails. */
static ssize_t failing_read(void *cookie, char *buf, size_t size)
{
	static const char text[] = "[core]\nport = 1\n";
	size_t *off = cookie;

	if (*off >= sizeof(text) - 1) {
		errno = EIO;
		return -1;
	}
	if (size > sizeof(text) - 1 - *off)
		size = sizeof(text) - 1 - *off;
	memcpy(buf, text + *off, size);
	*off += size;
	return (ssize_t)size;
}

static void test_unreadable(void)
{
	cookie_io_functions_t io = { failing_read, NULL, NULL, NULL };
	char dir[] = "/tmp/wsy-cfgdir-XXXXXX", out[2048], line[400];
	size_t off = 0;
	wsy_config c;
	const char *p;
	FILE *f;
	int n;

	/* a directory: named as one, not read as an empty file */
	CHECK(mkdtemp(dir) != NULL);
	cfg_defaults(&c);
	CHECK_EQ(load_capture(&c, dir, out, sizeof(out)), 1);
	CHECK(has(out, dir, ": is a directory"));
	CHECK(c.load_failed);
	cfg_free(&c);
	rmdir(dir);

	/* a read error part-way: file, line and the system's reason */
	cfg_defaults(&c);
	f = fopencookie(&off, "r", io);
	CHECK(f != NULL);
	capture_begin();
	n = cfg_load_stream(&c, "broken.ini", f);
	capture_end(out, sizeof(out));
	fclose(f);
	CHECK_EQ(n, 1);
	CHECK(has(out, "broken.ini", ":3: read error: Input/output error"));
	CHECK(c.load_failed);
	CHECK(strcmp(c.port, "1") == 0);
	cfg_free(&c);

	/* a line longer than inih's buffer is refused, not split in two */
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "origin = ", 9);
	{
		char text[600];
		snprintf(text, sizeof(text), "[core]\n%s\nping = 3\n", line);
		p = write_ini(text);
	}
	cfg_defaults(&c);
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(has(out, p, ":2: line too long"));
	CHECK(c.origins == NULL);
	CHECK_EQ(c.ping_ms, 3000);
	CHECK(!c.load_failed);
	unlink(p);
	cfg_free(&c);

	/* an indented line would continue the value above */
	cfg_defaults(&c);
	p = write_ini("[core]\norigin = https://a\n  https://b\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 1);
	CHECK(has(out, p, ":3: origin: an indented line continues"));
	unlink(p);
	cfg_free(&c);

	/* ...but right after a section it is a key of its own */
	cfg_defaults(&c);
	p = write_ini("[core]\n  port = 9001\n ; note\n\n[tls]\n"
	    "\tport = 9443\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK(strcmp(c.port, "9001") == 0 && strcmp(c.tls_port, "9443") == 0);
	unlink(p);
	cfg_free(&c);
}

/* Checks across keys name where each key was set. */
static void test_check(void)
{
	wsy_config c;
	char out[2048], err[256];
	const char *p;

	/* tls-* without a TLS port: unused, from a file or a flag */
	cfg_defaults(&c);
	p = write_ini("[core]\nport = 9001\n[tls]\ncert = a.pem\nkey = a.key\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 2);
	CHECK(has(out, p, ":4: tls-cert: unused: no tls-port"));
	CHECK(has(out, p, ":5: tls-key: unused: no tls-port"));
	unlink(p);
	cfg_free(&c);

	cfg_defaults(&c);
	CHECK_EQ(cfg_set_from(&c, "tls-servername", "x", "-C", 0, err,
	    sizeof(err)), 0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 1);
	CHECK(has(out, "-C tls-servername: unused", ""));
	/* ...and not twice when tls-port itself was refused */
	CHECK_EQ(cfg_set_from(&c, "tls-port", "x", "-s", 0, err,
	    sizeof(err)), -1);
	CHECK(cfg_failed(&c, "tls-port"));
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 0);
	cfg_free(&c);

	/* pairs, a certificate needed, files that cannot be read */
	cfg_defaults(&c);
	p = write_ini("[tls]\nport = 9443\ncert = /nonexistent/a.pem\n"
	    "key = /dev/null\ncert = /dev/null\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 2);
	CHECK(has(out, p, ":5: tls-cert: 2 tls-cert but 1 tls-key"));
	CHECK(has(out, p, ":3: tls-cert: cannot read /nonexistent/a.pem: "
	    "No such file or directory"));
	unlink(p);
	cfg_free(&c);

	cfg_defaults(&c);
	p = write_ini("[tls]\nport = 9443\ncert = /tmp\nkey = /dev/null\n"
	    "client-verify = require\n");
	CHECK_EQ(load_capture(&c, p, out, sizeof(out)), 0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 2);
	CHECK(has(out, p, ":3: tls-cert: cannot read /tmp: Is a directory"));
	CHECK(has(out, p, ":5: tls-client-verify: needs tls-client-ca"));
	unlink(p);
	cfg_free(&c);

	cfg_defaults(&c);
	CHECK_EQ(cfg_set_from(&c, "tls-port", "9443", "-s", 0, err,
	    sizeof(err)), 0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 1);
	CHECK(has(out, "-s tls-port: needs tls-cert and tls-key", ""));
	CHECK_EQ(cfg_set(&c, "tls-servername", "localhost", err, sizeof(err)),
	    0);
	CHECK_EQ(check_capture(&c, out, sizeof(out)), 0);
	cfg_free(&c);

	/* ws-path starts with '/', as the request path always does */
	cfg_defaults(&c);
	CHECK_EQ(cfg_set(&c, "ws-path", "ws", err, sizeof(err)), -1);
	CHECK(strstr(err, "must start with '/'") != NULL);
	CHECK_EQ(cfg_set(&c, "ws-path", "/a b", err, sizeof(err)), -1);
	CHECK_EQ(cfg_set(&c, "ws-path", "/ws", err, sizeof(err)), 0);
	CHECK_EQ(cfg_set(&c, "ws-path", "", err, sizeof(err)), 0);
	cfg_free(&c);
}

/*
 * The documentation check: every key of the table is in websocksy.cfg(5),
 * websocksy(8) and the README, and where a default is written it is the
 * one cfg_defaults really sets (kcp-replay-cache once said 65536 in three
 * places while the code said 1048576).  Man pages write a key as
 * ".BR key \" (default)\"" or ".B key"; the README as "| `key` ... | `default` |".
 * Run from the repository root, as make unit does.
 */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0) {
		fprintf(stderr, "%s: cannot read (run from the repository "
		    "root)\n", path);
		exit(2);
	}
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	fclose(f);
	return s;
}

/* roff to text, for a default: "kcp\-mux" is "kcp-mux". */
static void unroff(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && (s[1] == '-' || s[1] == ':')) {
			if (s[1] == '-')
				*w++ = '-';
			s++;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* 1 with the default in out, 0 documented without one, -1 missing. */
static int man_default(const char *page, const char *key, char *out,
    size_t outlen)
{
	char line[512], *r;
	const char *p, *nl;
	size_t n, klen = strlen(key);

	for (p = page; *p; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if (strncmp(line, ".B ", 3) && strncmp(line, ".BR ", 4))
			continue;
		r = line + (line[2] == ' ' ? 3 : 4);
		unroff(r);
		if (strcmp(r, key) == 0)
			return 0;
		if (strncmp(r, key, klen) || strncmp(r + klen, " \" (", 4))
			continue;
		r += klen + 4;
		n = strlen(r);
		if (n < 2 || strcmp(r + n - 2, ")\"") != 0)
			continue;
		snprintf(out, outlen, "%.*s", (int)(n - 2), r);
		return 1;
	}
	return -1;
}

static int readme_default(const char *readme, const char *key, char *out,
    size_t outlen)
{
	char want[128];
	const char *p, *e;
	size_t n;

	snprintf(want, sizeof(want), "\n| `%s`", key);
	if ((p = strstr(readme, want)) == NULL)
		return -1;
	p += strlen(want);
	if ((p = strchr(p, '|')) == NULL)
		return -1;
	p += strspn(p, "| ");
	n = strcspn(p, "|\n");
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n >= 2 && p[0] == '`' && (e = memchr(p + 1, '`', n - 1)))
		snprintf(out, outlen, "%.*s", (int)(e - p - 1), p + 1);
	else
		snprintf(out, outlen, "%.*s", (int)n, p);
	return 1;
}

/* Does doc say what the default really is? */
static int default_ok(const char *key, const char *doc, const char *real)
{
	size_t n = strlen(doc);

	if (strcmp(doc, real) == 0)
		return 1;
	if (real[0] == '\0' && (!strcmp(doc, "none") || !strcmp(doc,
	    "empty") || !strcmp(doc, "any")))
		return 1;
	/* compiled in from PREFIX; the pages say the default PREFIX's */
	if (strcmp(key, "plugins") == 0)
		return n > 14 && strcmp(doc + n - 14, "/lib/websocksy") == 0;
	/* empty: GnuTLS's string in core/tls.c, written out in the docs */
	if (strcmp(key, "tls-priority") == 0)
		return strncmp(doc, "SECURE", 6) == 0;
	return 0;
}

static void test_docs(void)
{
	static const char *const docs[] = { "docs/websocksy.cfg.5",
	    "docs/websocksy.8", "README.md" };
	char real[1024], doc[1024];
	wsy_config c;
	const char *k;
	size_t d, i;
	int r;

	cfg_defaults(&c);
	for (d = 0; d < 3; d++) {
		char *text = slurp(docs[d]);
		for (i = 0; (k = cfg_key_name(i)) != NULL; i++) {
			r = d == 2 ? readme_default(text, k, doc, sizeof(doc)) :
			    man_default(text, k, doc, sizeof(doc));
			if (r < 0)
				fprintf(stderr, "%s: key %s is not documented\n",
				    docs[d], k);
			CHECK(r >= 0);
			if (r <= 0 || cfg_format(&c, k, real,
			    sizeof(real)) < 0)
				continue;
			if (!default_ok(k, doc, real))
				fprintf(stderr, "%s: %s: default \"%s\", but "
				    "cfg_defaults sets \"%s\"\n", docs[d], k,
				    doc, real);
			CHECK(default_ok(k, doc, real));
		}
		free(text);
	}
	CHECK(i > 40);
	cfg_free(&c);
}

int main(void)
{
	test_defaults();
	test_set();
	test_ini();
	test_duplicates();
	test_unreadable();
	test_check();
	test_docs();
	return test_summary("cfg");
}
