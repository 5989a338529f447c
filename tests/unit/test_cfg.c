/*
 * test_cfg.c - configuration: the [core] key table, seconds, lists, INI
 * files with errors reported by file, line and key.
 */
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

/* Run cfg_load with stderr captured into out. */
static int load_capture(wsy_config *c, const char *path, char *out,
    size_t outlen)
{
	FILE *cap = tmpfile();
	int saved = dup(2), n;
	size_t r;

	fflush(stderr);
	dup2(fileno(cap), 2);
	n = cfg_load(c, path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(cap);
	r = fread(out, 1, outlen - 1, cap);
	out[r] = '\0';
	fclose(cap);
	return n;
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
	CHECK(strstr(out, "/nonexistent/websocksy.cfg: No such file") != NULL);
	cfg_free(&c);
}

int main(void)
{
	test_defaults();
	test_set();
	test_ini();
	return test_summary("cfg");
}
