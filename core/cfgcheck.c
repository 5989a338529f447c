/*
 * cfgcheck.c - the checks across [core] keys, run after parsing and before
 * anything starts (a certificate needs a key and a TLS port, TLS files
 * must be readable).  Layer: config.  Each problem is printed with where
 * the key was set (cfg_where), never as a bare key when its line is known.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"

/* Print "WHERE: reason" for the nth setting of key. */
static int complain(const wsy_config *c, const char *key, size_t nth,
    const char *reason)
{
	char w[PATH_MAX + 80];

	cfg_where_str(cfg_where(c, key, nth), key, w, sizeof(w));
	fprintf(stderr, "%s: %s\n", w, reason);
	return 1;
}

/* A TLS file must be readable now, not at the first handshake; GnuTLS
 * alone would only say "Error while reading file". */
static int check_file(const wsy_config *c, const char *key, size_t nth,
    const char *path)
{
	char why[PATH_MAX + 64];
	struct stat sb;
	FILE *f;
	int e;

	if (path == NULL || *path == '\0')
		return 0;
	if ((f = fopen(path, "r")) == NULL) {
		e = errno;
	} else {
		e = fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode) ?
		    EISDIR : 0;
		fclose(f);
	}
	if (e == 0)
		return 0;
	snprintf(why, sizeof(why), "cannot read %s: %s", path, strerror(e));
	return complain(c, key, nth, why);
}

static int check_tls_files(const wsy_config *c)
{
	size_t i;
	int errors = 0;

	for (i = 0; i < c->ntls_cert; i++)
		errors += check_file(c, "tls-cert", i, c->tls_cert[i]);
	for (i = 0; i < c->ntls_key; i++)
		errors += check_file(c, "tls-key", i, c->tls_key[i]);
	errors += check_file(c, "tls-ocsp", CFG_LAST, c->tls_ocsp);
	if (c->tls_client_verify > 0)
		errors += check_file(c, "tls-client-ca", CFG_LAST,
		    c->tls_client_ca);
	return errors;
}

/* tls-* keys do nothing without a TLS port: say so, rather than serve
 * plain ws to someone who thinks they configured wss. */
static int check_tls_unused(const wsy_config *c)
{
	static const char *const tls_keys[] = { "tls-cert", "tls-key",
	    "tls-servername", "tls-ocsp", "tls-priority", "tls-only",
	    "tls-client-ca", "tls-client-verify", "tls-handshake-timeout",
	    NULL };
	size_t i;
	int errors = 0;

	if (cfg_failed(c, "tls-port"))
		return 0;       /* its own error said enough */
	for (i = 0; tls_keys[i]; i++)
		if (cfg_where(c, tls_keys[i], 0))
			errors += complain(c, tls_keys[i], 0, "unused: no "
			    "tls-port is set (set tls-port, or -s PORT, or "
			    "remove this key)");
	return errors;
}

int cfg_check(const wsy_config *c)
{
	char why[160];
	size_t n;
	int errors = 0;

	if (!cfg_tls_enabled(c))
		return check_tls_unused(c);
	if (c->ntls_cert != c->ntls_key) {
		n = c->ntls_cert < c->ntls_key ? c->ntls_cert : c->ntls_key;
		snprintf(why, sizeof(why), "%zu tls-cert but %zu tls-key: "
		    "they go in pairs, in order", c->ntls_cert, c->ntls_key);
		errors += complain(c, c->ntls_cert > n ? "tls-cert" :
		    "tls-key", n, why);
	} else if (c->ntls_cert == 0 && c->tls_servername[0] == '\0' &&
	    !cfg_failed(c, "tls-cert") && !cfg_failed(c, "tls-key") &&
	    !cfg_failed(c, "tls-servername")) {
		errors += complain(c, "tls-port", CFG_LAST, "needs tls-cert "
		    "and tls-key, or tls-servername for a self-signed "
		    "certificate");
	}
	if (c->tls_client_verify > 0 && c->tls_client_ca[0] == '\0')
		errors += complain(c, "tls-client-verify", CFG_LAST, "needs "
		    "tls-client-ca (the CA that signs client certificates)");
	return errors + check_tls_files(c);
}
