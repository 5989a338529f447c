/*
 * fuzz_cfg.c - the configuration: cfg_load on an INI file written from
 * the input ([core], [tls], [backend] and unknown sections, through
 * libinih), and cfg_set with a key and value split from the input, then
 * cfg_free.  Whatever is accepted must hold: strings NUL-terminated within
 * their fields, numbers within their bounds, certificate lists <= 8.
 *
 * cfg_load reports every error with fprintf(stderr); the target points
 * the stdio stream stderr at /dev/null so the fuzzer's output stays
 * readable.  Sanitizer reports are written to fd 2 directly and still
 * show.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../core/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void)
{
	static FILE *null;

	if (null == NULL && (null = fopen("/dev/null", "w")) != NULL)
		stderr = null;
}

static void check(const wsy_config *c)
{
	size_t i;

	if (memchr(c->listen, '\0', sizeof(c->listen)) == NULL ||
	    memchr(c->port, '\0', sizeof(c->port)) == NULL ||
	    memchr(c->backend, '\0', sizeof(c->backend)) == NULL ||
	    memchr(c->tls_port, '\0', sizeof(c->tls_port)) == NULL ||
	    memchr(c->tls_priority, '\0', sizeof(c->tls_priority)) == NULL)
		abort();
	if (c->ntls_cert > 8 || c->ntls_key > 8)
		abort();
	if (c->buffer_size < 1024 || c->max_headers < 8 ||
	    c->max_headers > 256 || c->max_streams < 1 ||
	    c->max_connections < 1 || c->max_datagram < 1)
		abort();
	if (c->log_level < 0 || c->log_level > 3)
		abort();
	for (i = 0; c->origins && c->origins[i]; i++)
		if (c->origins[i][0] == '\0')
			abort();
	for (i = 0; i < c->nbopts; i++)
		if (c->bopts[i].key == NULL || c->bopts[i].value == NULL ||
		    c->bopts[i].line < 1)
			abort();
}

/* key=value (value may be empty; no '=': the whole input is a key with
 * the value ""), through cfg_set, several times from one input. */
static void set_pairs(const uint8_t *data, size_t size)
{
	wsy_config c;
	char *s, *line, *next, *eq, err[256];
	uint64_t ms;

	if ((s = malloc(size + 1)) == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	cfg_defaults(&c);
	for (line = s; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((eq = strchr(line, '=')) != NULL)
			*eq++ = '\0';
		err[0] = '\0';
		if (cfg_set(&c, line, eq ? eq : "", err, sizeof(err)) < 0 &&
		    err[0] == '\0')
			abort();    /* every refusal says why */
		if (eq != NULL && cfg_parse_seconds(eq, &ms) == 0 &&
		    ms > 100000000ull * 1000 + 999)
			abort();
	}
	check(&c);
	cfg_free(&c);
	free(s);
}

static void load_file(const uint8_t *data, size_t size)
{
	wsy_config c;
	char path[64];
	int fd;

	if ((fd = memfd_create("fuzz_cfg", 0)) < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	cfg_defaults(&c);
	cfg_load(&c, path);
	check(&c);
	cfg_free(&c);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	quiet();
	if (size == 0)
		return 0;
	/* the first byte picks the entry point */
	if (data[0] & 1)
		set_pairs(data + 1, size - 1);
	else
		load_file(data + 1, size - 1);
	return 0;
}
