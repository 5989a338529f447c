/*
 * test_backend_file.c - the file backend: value sanitiser, template
 * expansion, cookie parsing, line parsing, matching rules, and whole
 * queries against a temporary tree (traversal, symlinks, cache reload,
 * FIFO, size limit) with a fake host that records the answer.
 *
 * The backend source is compiled in whole: its functions are static.
 */
#include "../../backends/file.c"

#include <sys/stat.h>

#include "test.h"

/* ---- fake host ---- */

static struct {
	int n;
	uint64_t qid;
	int status;
	char peer[400], framing[64], fconf[256], protocol[128];
	int has_framing, has_fconf, has_protocol;
} ans;

static void fake_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static void keep(char *dst, size_t n, const char *s, int *has)
{
	*has = s != NULL;
	snprintf(dst, n, "%s", s ? s : "");
}

static int fake_answer(uint64_t qid, const wsy_answer *a)
{
	int has;

	ans.n++;
	ans.qid = qid;
	ans.status = a->status;
	keep(ans.peer, sizeof(ans.peer), a->peer, &has);
	keep(ans.framing, sizeof(ans.framing), a->framing, &ans.has_framing);
	keep(ans.fconf, sizeof(ans.fconf), a->framing_config, &ans.has_fconf);
	keep(ans.protocol, sizeof(ans.protocol), a->protocol,
	    &ans.has_protocol);
	return 0;
}

static const wsy_host host = {
	.struct_size = sizeof(wsy_host),
	.api_version = WEBSOCKSY_API_VERSION,
	.log = fake_log,
	.answer = fake_answer,
};

/* A request: endpoint, up to 4 headers, up to 4 protocols. */
struct fake_req {
	wsy_request r;
	wsy_header h[4];
	const char *p[4];
};

static const wsy_request *mkreq(struct fake_req *f, const char *endpoint,
    const char *const *hdrs, const char *const *protos)
{
	memset(f, 0, sizeof(*f));
	f->r.struct_size = sizeof(f->r);
	f->r.conn_id = 7;
	f->r.endpoint = endpoint;
	f->r.query = "";
	f->r.client_addr = "127.0.0.1";
	for (; hdrs && *hdrs && f->r.n_headers < 4; hdrs += 2) {
		f->h[f->r.n_headers].name = hdrs[0];
		f->h[f->r.n_headers].value = hdrs[1];
		f->r.n_headers++;
	}
	for (; protos && *protos && f->r.n_protocols < 4; protos++)
		f->p[f->r.n_protocols++] = *protos;
	f->r.headers = f->h;
	f->r.protocols = f->p;
	return &f->r;
}

/* ---- pure functions ---- */

static void test_value_ok(void)
{
	char big[FB_MAX_VALUE + 2];

	CHECK(fb_value_ok("abc", 3));
	CHECK(fb_value_ok("%2e%2e", 6));	/* not decoded: a plain name */
	CHECK(fb_value_ok("a..b", 4));
	CHECK(fb_value_ok("a b", 3));
	CHECK(!fb_value_ok("", 0));
	CHECK(!fb_value_ok(".", 1));
	CHECK(!fb_value_ok("..", 2));
	CHECK(!fb_value_ok(".hidden", 7));
	CHECK(!fb_value_ok("a/b", 3));
	CHECK(!fb_value_ok("/etc/passwd", 11));
	CHECK(!fb_value_ok("a\0b", 3));
	CHECK(!fb_value_ok("a\nb", 3));
	CHECK(!fb_value_ok("a\x7f", 2));
	CHECK(!fb_value_ok("a\tb", 3));
	memset(big, 'x', sizeof(big));
	CHECK(fb_value_ok(big, FB_MAX_VALUE));
	CHECK(!fb_value_ok(big, FB_MAX_VALUE + 1));
}

static void test_name_ok(void)
{
	CHECK(fb_name_ok("a"));
	CHECK(fb_name_ok("dir/a"));
	CHECK(fb_name_ok("a..b/c"));
	CHECK(!fb_name_ok(""));
	CHECK(!fb_name_ok("/a"));
	CHECK(!fb_name_ok(".."));
	CHECK(!fb_name_ok("../a"));
	CHECK(!fb_name_ok("a/.."));
	CHECK(!fb_name_ok("a/../b"));
	CHECK(!fb_name_ok("a/./b"));
	CHECK(!fb_name_ok("a//b"));
	CHECK(!fb_name_ok("a/"));
}

static int cookie(const char *h, const char *name, char *out, size_t n)
{
	const char *v;
	size_t vl;

	if (!fb_cookie_in(h, name, strlen(name), &v, &vl))
		return 0;
	snprintf(out, n, "%.*s", (int)vl, v);
	return 1;
}

static void test_cookies(void)
{
	char v[64];

	CHECK(cookie("route=a", "route", v, sizeof(v)) && !strcmp(v, "a"));
	CHECK(cookie("x=1; route=b; y=2", "route", v, sizeof(v)) &&
	    !strcmp(v, "b"));
	CHECK(cookie("xroute=1;route=c", "route", v, sizeof(v)) &&
	    !strcmp(v, "c"));
	CHECK(cookie("route=\"q\"", "route", v, sizeof(v)) &&
	    !strcmp(v, "q"));
	CHECK(cookie("a=1;  route=d  ", "route", v, sizeof(v)) &&
	    !strcmp(v, "d"));
	CHECK(cookie("route=; b=1", "route", v, sizeof(v)) && !strcmp(v, ""));
	CHECK(cookie("route=x=y", "route", v, sizeof(v)) &&
	    !strcmp(v, "x=y"));
	CHECK(!cookie("Route=a", "route", v, sizeof(v)));  /* case matters */
	CHECK(!cookie("route", "route", v, sizeof(v)));
	CHECK(!cookie("", "route", v, sizeof(v)));
	CHECK(!cookie("routes=a", "route", v, sizeof(v)));
}

static int expand(const char *tmpl, const wsy_request *r, char *out,
    size_t n)
{
	const char *why;

	return fb_expand(tmpl, r, out, n, &why);
}

static void test_expand(void)
{
	static const char *const hdrs[] = { "cookie", "a=1; route=blue",
	    "X-Route", "green", "X-Evil", "../etc", NULL };
	struct fake_req f;
	const wsy_request *r = mkreq(&f, "/chat", hdrs, NULL);
	char out[256], big[300];

	CHECK(expand("%endpoint%", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "chat"));
	CHECK(expand("pre-%endpoint%.conf", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "pre-chat.conf"));
	CHECK(expand("%%%endpoint%%%", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "%chat%"));
	CHECK(expand("%cookie:route%", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "blue"));
	CHECK(expand("%header:x-route%/%cookie:route%", r, out,
	    sizeof(out)) == 0 && !strcmp(out, "green/blue"));
	CHECK(expand("%header:X-ROUTE%", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "green"));
	CHECK(expand("%cookie:nope%", r, out, sizeof(out)) < 0);
	CHECK(expand("%header:nope%", r, out, sizeof(out)) < 0);
	CHECK(expand("%header:X-Evil%", r, out, sizeof(out)) < 0);
	CHECK(expand("%endpoint%", r, out, 4) < 0);	/* too long */
	CHECK(expand("static", r, out, sizeof(out)) == 0 &&
	    !strcmp(out, "static"));
	/* endpoints: the leading '/' goes, nothing else may be a '/' */
	CHECK(expand("%endpoint%", mkreq(&f, "/", NULL, NULL), out,
	    sizeof(out)) < 0);
	CHECK(expand("%endpoint%", mkreq(&f, "/a/b", NULL, NULL), out,
	    sizeof(out)) < 0);
	CHECK(expand("%endpoint%", mkreq(&f, "//etc/passwd", NULL, NULL),
	    out, sizeof(out)) < 0);
	CHECK(expand("%endpoint%", mkreq(&f, "/..", NULL, NULL), out,
	    sizeof(out)) < 0);
	CHECK(expand("%endpoint%", mkreq(&f, "/%2e%2e", NULL, NULL), out,
	    sizeof(out)) == 0 && !strcmp(out, "%2e%2e"));
	big[0] = '/';
	memset(big + 1, 'a', 250);
	big[251] = '\0';
	CHECK(expand("%endpoint%", mkreq(&f, big, NULL, NULL), out,
	    sizeof(out)) < 0);
	/* syntax only (configure time) */
	CHECK(expand("%endpoint%", NULL, out, sizeof(out)) == 0);
	CHECK(expand("a/%cookie:x%/%header:y%", NULL, out, sizeof(out)) == 0);
	CHECK(expand("%bogus%", NULL, out, sizeof(out)) < 0);
	CHECK(expand("%endpoint", NULL, out, sizeof(out)) < 0);
	CHECK(expand("%cookie:%", NULL, out, sizeof(out)) < 0);
	CHECK(expand("%header:%", NULL, out, sizeof(out)) < 0);
}

static void test_parse_line(void)
{
	struct fb_line l;
	char s[256];

#define LINE(text) (snprintf(s, sizeof(s), "%s", text), \
	memset(&l, 0, sizeof(l)), fb_parse_line(s, &l))
	CHECK(LINE("") == 0);
	CHECK(LINE("   \t ") == 0);
	CHECK(LINE("# tcp://x:1 *") == 0);
	CHECK(LINE("  # indented comment") == 0);
	CHECK(LINE("tcp://127.0.0.1:5900 *") == 1 &&
	    !strcmp(l.peer, "tcp://127.0.0.1:5900") && !strcmp(l.proto, "*") &&
	    l.framing == NULL && l.fconf == NULL);
	CHECK(LINE("localhost:5900\tchat") == 1 &&
	    !strcmp(l.peer, "tcp://localhost:5900"));
	CHECK(LINE("[::1]:80 chat") == 1 && !strcmp(l.peer, "tcp://[::1]:80"));
	CHECK(LINE("unix:///run/x.sock binary binary") == 1 &&
	    !strcmp(l.framing, "binary") && l.fconf == NULL);
	CHECK(LINE("udp://h:53 * separator a b  ") == 1 &&
	    !strcmp(l.framing, "separator") && !strcmp(l.fconf, "a b"));
	CHECK(LINE("unix-dgram:///x p newline lf") == 1 &&
	    !strcmp(l.fconf, "lf"));
	CHECK(LINE("tcp://h:1") == -1);		/* no subprotocol */
	CHECK(LINE("ftp://h:1 *") == -1);
	CHECK(LINE("host *") == -1);		/* no port */
	CHECK(LINE("host:http *") == -1);
	CHECK(LINE("::1:80 *") == -1);		/* bare IPv6 */
	CHECK(LINE(":80 *") == -1);
#undef LINE
}

/* ---- whole queries against a temporary tree ---- */

static char root[64], tree[128];

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", root, name);
	if ((fp = fopen(p, "w")) == NULL) {
		perror(p);
		return;
	}
	fputs(text, fp);
	fclose(fp);
}

static int q(struct fb *fb, const char *endpoint, const char *const *hdrs,
    const char *const *protos)
{
	struct fake_req f;

	memset(&ans, 0, sizeof(ans));
	CHECK_EQ(fb_query(fb, mkreq(&f, endpoint, hdrs, protos), 42), WSY_OK);
	CHECK_EQ(ans.n, 1);
	CHECK_EQ(ans.qid, 42);
	return ans.status;
}

static struct fb *setup(void)
{
	char err[256], p[256], big[70000];
	struct fb *fb;

	snprintf(root, sizeof(root), "/tmp/wsyfbXXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return NULL;
	}
	snprintf(tree, sizeof(tree), "%s/tree", root);
	mkdir(tree, 0700);
	snprintf(p, sizeof(p), "%s/dir", tree);
	mkdir(p, 0700);
	put("tree/a", "# two routes\n\ntcp://127.0.0.1:1 chat\r\n"
	    "127.0.0.1:2 * newline lf\n");
	put("tree/only", "bad line\ntcp://127.0.0.1:3 chat\n");
	put("tree/dir/x", "tcp://127.0.0.1:4 *\n");
	put("tree/%2e%2e", "tcp://127.0.0.1:5 *\n");
	put("secret", "tcp://127.0.0.1:9 *\n");
	put("tree/.hidden", "tcp://127.0.0.1:9 *\n");
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put("tree/big", big);
	snprintf(p, sizeof(p), "%s/link", tree);
	CHECK(symlink("../secret", p) == 0);
	snprintf(p, sizeof(p), "%s/inlink", tree);
	CHECK(symlink("a", p) == 0);
	snprintf(p, sizeof(p), "%s/fifo", tree);
	CHECK(mkfifo(p, 0600) == 0);

	err[0] = '\0';
	fb = fb_init(&host, err, sizeof(err));
	CHECK(fb != NULL);
	if (fb == NULL)
		return NULL;
	CHECK_EQ(fb_configure(fb, "path", tree, err, sizeof(err)), WSY_OK);
	CHECK_EQ(fb_configure(fb, "expression", "%cookie:r%", err,
	    sizeof(err)), WSY_OK);
	CHECK_EQ(fb_configure(fb, "expression", "%header:x-r%", err,
	    sizeof(err)), WSY_OK);
	CHECK_EQ(fb_configure(fb, "expression", "%endpoint%", err,
	    sizeof(err)), WSY_OK);
	CHECK_EQ(fb_start(fb, err, sizeof(err)), WSY_OK);
	return fb;
}

static void test_configure_errors(void)
{
	char err[256];
	struct fb *fb = fb_init(&host, err, sizeof(err));

	CHECK_EQ(fb_start(fb, err, sizeof(err)), WSY_ERROR);
	CHECK(strstr(err, "path: required") != NULL);
	CHECK_EQ(fb_configure(fb, "expression", "/abs/%endpoint%", err,
	    sizeof(err)), WSY_ERROR);
	CHECK_EQ(fb_configure(fb, "expression", "%nope%", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(fb_configure(fb, "expression", "", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(fb_configure(fb, "colour", "red", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(fb_configure(fb, "path", "/nonexistent-wsy-dir", err,
	    sizeof(err)), WSY_OK);
	CHECK_EQ(fb_start(fb, err, sizeof(err)), WSY_ERROR);
	CHECK_EQ(fb_configure(fb, "path", "/etc/hostname", err, sizeof(err)),
	    WSY_OK);
	CHECK_EQ(fb_start(fb, err, sizeof(err)), WSY_ERROR);
	fb_cleanup(fb);
	/* no expression: %endpoint% by default */
	fb = fb_init(&host, err, sizeof(err));
	CHECK_EQ(fb_configure(fb, "path", "/tmp", err, sizeof(err)), WSY_OK);
	CHECK_EQ(fb_start(fb, err, sizeof(err)), WSY_OK);
	CHECK(fb->nexpr == 1 && !strcmp(fb->expr[0], "%endpoint%"));
	fb_cleanup(fb);
}

static void test_queries(struct fb *fb)
{
	static const char *const chat_first[] = { "chat", "other", NULL };
	static const char *const chat_second[] = { "x", "chat", NULL };
	static const char *const other[] = { "other", "y", NULL };
	static const char *const cookie_only[] = { "Cookie", "r=only", NULL };
	static const char *const cookie_dots[] = { "Cookie", "r=..", NULL };
	static const char *const hdr_a[] = { "X-R", "a", NULL };
	static const char *const hdr_trav[] = { "X-R", "../secret", NULL };
	static const char *const hdr_abs[] = { "x-r", "/etc/passwd", NULL };

	/* matching: file order over the client's order */
	CHECK(q(fb, "/a", NULL, chat_second) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:1") &&
	    !strcmp(ans.protocol, "chat") && !ans.has_framing);
	CHECK(q(fb, "/a", NULL, chat_first) == 0 &&
	    !strcmp(ans.protocol, "chat"));
	/* "*": the first offered protocol, or none */
	CHECK(q(fb, "/a", NULL, other) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2") &&
	    !strcmp(ans.protocol, "other") && !strcmp(ans.framing,
	    "newline") && !strcmp(ans.fconf, "lf"));
	CHECK(q(fb, "/a", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2") && !ans.has_protocol);
	/* no matching line, no file: 404 */
	CHECK_EQ(q(fb, "/only", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/only", NULL, other), 404);
	CHECK(q(fb, "/only", NULL, chat_second) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:3"));
	CHECK_EQ(q(fb, "/missing", NULL, NULL), 404);
	/* expressions in order: the cookie first, then the header */
	CHECK(q(fb, "/a", cookie_only, chat_first) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:3"));
	CHECK(q(fb, "/missing", hdr_a, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2"));
	/* a cookie whose file has no line for us falls through */
	CHECK(q(fb, "/a", cookie_only, other) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2"));
	/* traversal: never the secret */
	CHECK_EQ(q(fb, "/..", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/../secret", NULL, NULL), 404);
	CHECK_EQ(q(fb, "//etc/passwd", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/dir/x", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/dir", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/.hidden", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/link", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/x", cookie_dots, NULL), 404);
	CHECK_EQ(q(fb, "/x", hdr_trav, NULL), 404);
	CHECK_EQ(q(fb, "/x", hdr_abs, NULL), 404);
	/* %2e%2e is not decoded: the file of that literal name */
	CHECK(q(fb, "/%2e%2e", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:5"));
	/* a symlink that stays inside is fine */
	CHECK(q(fb, "/inlink", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2"));
	/* not regular, too large: 404, and the FIFO does not hang us */
	CHECK_EQ(q(fb, "/fifo", NULL, NULL), 404);
	CHECK_EQ(q(fb, "/big", NULL, NULL), 404);
}

static void test_cache(struct fb *fb)
{
	struct timespec ts[2];
	char p[256];
	size_t i;

	CHECK(q(fb, "/a", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:2"));
	/* a new size: read again */
	put("tree/a", "tcp://127.0.0.1:77 *\n");
	CHECK(q(fb, "/a", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:77"));
	/* the same size, another mtime: read again */
	put("tree/a", "tcp://127.0.0.1:88 *\n");
	snprintf(p, sizeof(p), "%s/a", tree);
	ts[0].tv_sec = ts[1].tv_sec = 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
	CHECK(q(fb, "/a", NULL, NULL) == 0 &&
	    !strcmp(ans.peer, "tcp://127.0.0.1:88"));
	/* gone: 404, and the entry goes too */
	unlink(p);
	CHECK_EQ(q(fb, "/a", NULL, NULL), 404);
	/* the cache is bounded */
	for (i = 0; i < FB_CACHE_MAX + 20; i++) {
		snprintf(p, sizeof(p), "tree/f%zu", i);
		put(p, "tcp://127.0.0.1:6 *\n");
		snprintf(p, sizeof(p), "/f%zu", i);
		CHECK_EQ(q(fb, p, NULL, NULL), 0);
	}
	CHECK(fb->ncache <= FB_CACHE_MAX);
	CHECK(q(fb, "/f0", NULL, NULL) == 0);
}

int main(void)
{
	struct fb *fb;
	char cmd[128];

	test_value_ok();
	test_name_ok();
	test_cookies();
	test_expand();
	test_parse_line();
	test_configure_errors();
	if ((fb = setup()) != NULL) {
		test_queries(fb);
		test_cache(fb);
		fb_cleanup(fb);
	}
	if (root[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", root);
	}
	return test_summary("test_backend_file");
}
