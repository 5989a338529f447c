/*
 * fuzz_file.c - the file backend's template expansion and route-file
 * parser (backends/file.c compiled in, its WSY_PLUGIN renamed): the
 * request (endpoint, headers, cookies, subprotocols) and the template
 * come from the input.  An expansion that succeeds and passes the name
 * check never names an absolute path nor has a "." or ".." component, and
 * every substituted value is a safe single name.  The route-file text is
 * parsed and matched the same way.
 *
 * Input: NUL-separated fields
 *   template, endpoint, outlen byte, n_headers x (name, value),
 *   protocols (comma-separated), file text
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#define WSY_PLUGIN fuzz_plugin_file
#include "../../backends/file.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 8
#define MAXP 8

static void nolog(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nolog(int level, const char *fmt, ...)
{
	va_list ap;
	char b[512];

	(void)level;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
}

/* The next NUL-terminated field of s[0..end), or "" past the end. */
static char *field(char **p, char *end)
{
	char *f = *p;

	if (f >= end)
		return end;     /* end points at the final NUL */
	*p = f + strlen(f) + 1;
	return f;
}

static void expand(const char *tmpl, const wsy_request *req, size_t outlen)
{
	char out[PATH_MAX], tmp[PATH_MAX];
	const char *why = NULL, *p;
	int syntax;

	syntax = fb_expand(tmpl, NULL, tmp, sizeof(tmp), &why) == 0;
	why = NULL;
	if (fb_expand(tmpl, req, out, outlen, &why) < 0) {
		if (why == NULL)
			abort();
		return;
	}
	if (!syntax || strlen(out) >= outlen)
		abort();    /* expanded, so the syntax was good; fits */
	if (!fb_name_ok(out))
		return;
	if (out[0] == '/')
		abort();
	for (p = out;; p++) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			abort();
		p += n;
		if (*p == '\0')
			break;
	}
}

static void parse(char *text, const wsy_request *req)
{
	static const wsy_host host = { sizeof(wsy_host),
	    WEBSOCKSY_API_VERSION, nolog, NULL, NULL, NULL, NULL, NULL,
	    NULL };
	struct fb fb;
	struct fb_file *f;
	const struct fb_line *l;
	const char *proto = NULL;
	size_t i;

	memset(&fb, 0, sizeof(fb));
	fb.host = &host;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return;
	f->path = strdup("fuzz");
	f->text = strdup(text);
	if (f->path == NULL || f->text == NULL || fb_parse(&fb, f) < 0) {
		fb_file_free(f);
		return;
	}
	for (i = 0; i < f->nlines; i++) {
		l = &f->lines[i];
		if (strstr(l->peer, "://") == NULL || l->proto == NULL ||
		    l->proto[0] == '\0' || strpbrk(l->proto, " \t\n"))
			abort();
		if (l->fconf != NULL && l->framing == NULL)
			abort();
	}
	if ((l = fb_match(f, req, &proto)) != NULL && proto != NULL) {
		for (i = 0; i < req->n_protocols; i++)
			if (proto == req->protocols[i])
				break;
		if (i == req->n_protocols)
			abort();
	}
	fb_file_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wsy_header h[MAXH];
	const char *protos[MAXP];
	wsy_request req;
	char *s, *p, *end, *tmpl, *pl, *tok;
	size_t outlen, nh;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	p = s;
	end = s + size;
	memset(&req, 0, sizeof(req));
	req.struct_size = sizeof(req);
	tmpl = field(&p, end);
	req.endpoint = field(&p, end);
	req.query = "";
	outlen = 1 + (unsigned char)*field(&p, end);
	nh = (unsigned char)*field(&p, end) % (MAXH + 1);
	for (req.n_headers = 0; req.n_headers < nh; req.n_headers++) {
		h[req.n_headers].name = field(&p, end);
		h[req.n_headers].value = field(&p, end);
	}
	req.headers = h;
	pl = field(&p, end);
	for (tok = strtok(pl, ","); tok && req.n_protocols < MAXP;
	    tok = strtok(NULL, ","))
		protos[req.n_protocols++] = tok;
	req.protocols = protos;
	req.client_addr = "127.0.0.1";

	expand(tmpl, &req, outlen);
	expand(tmpl, &req, PATH_MAX);
	parse(field(&p, end), &req);
	free(s);
	return 0;
}
