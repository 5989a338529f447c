/*
 * fuzz_opts.c - the Kaminari option-string parser (core/opts.h) on
 * arbitrary strings: opts_parse, the lookups, opts_check against the
 * client's vocabulary, opts_client and opts_mask_mode.  A parse that
 * succeeds gives non-empty keys with no unescaped ';' left in them, and
 * re-escaping the list and parsing it again gives the same list.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Append s escaped (';' '=' '\' get a backslash) to out. */
static size_t esc(char *out, size_t o, const char *s, int key)
{
	for (; *s; s++) {
		if (*s == ';' || *s == '\\' || (key && *s == '='))
			out[o++] = '\\';
		out[o++] = *s;
	}
	return o;
}

static void roundtrip(const opts *o)
{
	opts o2;
	char err[256], *s;
	size_t i, len = 1, n = 0;

	for (i = 0; i < o->n; i++)
		len += 2 * strlen(o->v[i].key) + 2 +
		    (o->v[i].value ? 2 * strlen(o->v[i].value) : 0);
	if ((s = malloc(len)) == NULL)
		return;
	for (i = 0; i < o->n; i++) {
		if (i)
			s[n++] = ';';
		n = esc(s, n, o->v[i].key, 1);
		if (o->v[i].value) {
			s[n++] = '=';
			n = esc(s, n, o->v[i].value, 0);
		}
	}
	s[n] = '\0';
	if (opts_parse(s, &o2, err, sizeof(err)) < 0 || o2.n != o->n)
		abort();
	for (i = 0; i < o->n; i++) {
		if (strcmp(o->v[i].key, o2.v[i].key) != 0 ||
		    (o->v[i].value == NULL) != (o2.v[i].value == NULL) ||
		    (o->v[i].value && strcmp(o->v[i].value,
		    o2.v[i].value) != 0))
			abort();
	}
	opts_free(&o2);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *keys[] = { "ws", "host", "path", "mask", "tls",
	    "sni", "alpn", "pin", "ca", "insecure", "0rtt", "ping",
	    "timeout", "" };
	client_opts c;
	opts o;
	char err[256], *s;
	size_t i;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (opts_parse(s, &o, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || o.n != 0)
			abort();
		opts_free(&o);
		free(s);
		return 0;
	}
	for (i = 0; i < o.n; i++)
		if (o.v[i].key == NULL)
			abort();
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const opt_kv *kv = opts_find(&o, keys[i]);
		const char *v = opts_get(&o, keys[i]);

		if ((kv != NULL) != (opts_has(&o, keys[i]) != 0))
			abort();
		if (v != NULL && (kv == NULL || kv->value != v))
			abort();
		if (v != NULL)
			opts_mask_mode(v);
	}
	opts_check(&o, client_opt_spec, err, sizeof(err));
	memset(&c, 0, sizeof(c));
	opts_client(&o, &c, err, sizeof(err));
	roundtrip(&o);
	opts_free(&o);
	free(s);
	return 0;
}
