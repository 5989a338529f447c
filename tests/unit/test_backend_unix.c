/*
 * test_backend_unix.c - the unix backend: the request encoder (escapes,
 * an older request struct), the answer parser (good and bad answers), and
 * real round trips through a temporary unix socket served from the same
 * event loop (core/loop.h) that backs the fake host: answers, a silent
 * resolver (timeout), one that closes, one that is down, cancel().
 *
 * The backend source is compiled in whole: its functions are static.
 */
#include "../../backends/unix.c"

#include <fcntl.h>
#include <stdarg.h>

#include "../../core/loop.h"
#include "test.h"

/* ---- fake host on top of core/loop ---- */

static struct {
	int n;
	uint64_t qid;
	int status;
	char peer[400], framing[64], fconf[256], protocol[128];
} ans;

static int nlogs;
static char lastlog[600];

static void fake_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fake_log(int level, const char *fmt, ...)
{
	va_list ap;

	(void)level;
	nlogs++;
	va_start(ap, fmt);
	vsnprintf(lastlog, sizeof(lastlog), fmt, ap);
	va_end(ap);
}

static int fake_answer(uint64_t qid, const wsy_answer *a)
{
	ans.n++;
	ans.qid = qid;
	ans.status = a->status;
	snprintf(ans.peer, sizeof(ans.peer), "%s", a->peer ? a->peer : "");
	snprintf(ans.framing, sizeof(ans.framing), "%s",
	    a->framing ? a->framing : "");
	snprintf(ans.fconf, sizeof(ans.fconf), "%s",
	    a->framing_config ? a->framing_config : "");
	snprintf(ans.protocol, sizeof(ans.protocol), "%s",
	    a->protocol ? a->protocol : "");
	loop_stop();
	return 0;
}

static int fake_watch(int fd, int events, wsy_fd_cb cb, void *arg)
{
	if (events == 0) {
		loop_unwatch(fd);
		return 0;
	}
	return loop_watch(fd, events, (loop_io_cb)cb, arg);
}

struct ftimer {
	loop_timer t;
	uint64_t id;
	wsy_timer_cb cb;
	void *arg;
	struct ftimer *next;
};

static struct ftimer *ftimers;
static uint64_t ftimer_ids;
static int ntimers;

static void ftimer_unlink(struct ftimer *t)
{
	struct ftimer **pp = &ftimers;

	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = t->next;
		ntimers--;
	}
}

static void ftimer_fire(void *arg)
{
	struct ftimer *t = arg;
	wsy_timer_cb cb = t->cb;
	void *a = t->arg;

	ftimer_unlink(t);
	free(t);
	cb(a);
}

static uint64_t fake_timer_add(uint64_t ms, wsy_timer_cb cb, void *arg)
{
	struct ftimer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return 0;
	t->id = ++ftimer_ids;
	t->cb = cb;
	t->arg = arg;
	loop_timer_init(&t->t, ftimer_fire, t);
	loop_timer_set(&t->t, ms);
	t->next = ftimers;
	ftimers = t;
	ntimers++;
	return t->id;
}

static void fake_timer_cancel(uint64_t id)
{
	struct ftimer *t;

	for (t = ftimers; t; t = t->next) {
		if (t->id == id) {
			loop_timer_stop(&t->t);
			ftimer_unlink(t);
			free(t);
			return;
		}
	}
}

static uint64_t fake_now(void)
{
	return loop_now();
}

static const wsy_host host = {
	.struct_size = sizeof(wsy_host),
	.api_version = WEBSOCKSY_API_VERSION,
	.log = fake_log,
	.answer = fake_answer,
	.watch_fd = fake_watch,
	.unwatch_fd = loop_unwatch,
	.timer_add = fake_timer_add,
	.timer_cancel = fake_timer_cancel,
	.now_ms = fake_now,
};

/* ---- a request ---- */

static const wsy_header hdrs[] = {
	{ "Host", "example" },
	{ "X-Odd", "a\\b\nc\x01\x7f d" },
	{ "Cookie", "k=v" },
};
static const char *const protos[] = { "chat", "super chat" };

static void mkreq(wsy_request *r)
{
	memset(r, 0, sizeof(*r));
	r->struct_size = sizeof(*r);
	r->conn_id = 12;
	r->endpoint = "/room\\1";
	r->query = "a=1&b";
	r->headers = hdrs;
	r->n_headers = 3;
	r->protocols = protos;
	r->n_protocols = 2;
	r->client_addr = "::1";
	r->client_port = 5555;
	r->tls = 1;
	r->tls_sni = "example.org";
}

static const char expected[] =
    "id 12\n"
    "endpoint /room\\\\1\n"
    "query a=1&b\n"
    "header Host: example\n"
    "header X-Odd: a\\\\b\\nc\\x01\\x7f d\n"
    "header Cookie: k=v\n"
    "protocol chat\n"
    "protocol super chat\n"
    "client ::1 5555\n"
    "tls 1\n"
    "sni example.org\n"
    "\n";

static void test_encode(void)
{
	wsy_request r;
	size_t len = 0;
	char *s;

	mkreq(&r);
	s = ux_encode(&r, &len);
	CHECK(s != NULL && len == strlen(expected) && !strcmp(s, expected));
	if (s && strcmp(s, expected))
		fprintf(stderr, "got:\n%s", s);
	free(s);
	/* an older core: no tls fields at all; no query line when empty */
	r.struct_size = offsetof(wsy_request, tls);
	r.query = "";
	s = ux_encode(&r, &len);
	CHECK(s != NULL && strstr(s, "tls") == NULL &&
	    strstr(s, "sni") == NULL && strstr(s, "query") == NULL &&
	    strstr(s, "client ::1 5555\n\n") != NULL);
	free(s);
}

static int parse(const char *line, struct ux_answer *a, char *buf,
    size_t n)
{
	const char *why;

	snprintf(buf, n, "%s", line);
	return ux_parse_answer(buf, a, &why);
}

static void test_parse(void)
{
	struct ux_answer a;
	char b[512];
	size_t i;
	static const char *const bad[] = {
		"", "   ", "hello", "status", "status 200", "status 600",
		"status 40x", "status 404 extra", "status -404", "peer",
		"peer host:1", "peer tcp://h:1 protocol",
		"peer tcp://h:1 protocol a protocol b",
		"peer tcp://h:1 color red",
		"peer tcp://h:1 framing-config a\\x00",
		"peer tcp://h:1 framing-config a\\q",
		"peer tcp://h:1 framing-config a\\x4",
		"peer tcp://h:1 framing-config a\\",
		"peer tcp://h:1\tframing binary",
		"PEER tcp://h:1",
	};

	CHECK(parse("status 404", &a, b, sizeof(b)) == 0 && a.status == 404);
	CHECK(parse("status 503\r", &a, b, sizeof(b)) == 0 && a.status == 503);
	CHECK(parse("peer tcp://127.0.0.1:5900", &a, b, sizeof(b)) == 0 &&
	    a.status == 0 && !strcmp(a.peer, "tcp://127.0.0.1:5900") &&
	    !a.protocol && !a.framing && !a.framing_config);
	CHECK(parse("peer unix:///run/x.sock framing-config a\\x20b\\n\\\\ "
	    "framing separator  protocol chat\r", &a, b, sizeof(b)) == 0 &&
	    !strcmp(a.peer, "unix:///run/x.sock") &&
	    !strcmp(a.framing_config, "a b\n\\") &&
	    !strcmp(a.framing, "separator") && !strcmp(a.protocol, "chat"));
	CHECK(parse("peer tcp://h:1 framing-config \\x1E", &a, b,
	    sizeof(b)) == 0 && !strcmp(a.framing_config, "\x1e"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], &a, b, sizeof(b));
		CHECK(r < 0);
		if (r == 0)
			fprintf(stderr, "accepted: '%s'\n", bad[i]);
	}
}

/* ---- a resolver on the same loop ---- */

enum { R_ANSWER, R_SILENT, R_CLOSE };

static struct {
	int lfd;
	int mode;
	const char *answer;
	char req[8192];
	size_t reqlen;
	int cfd;		/* the connection held in R_SILENT */
	int eof;		/* the held connection saw EOF */
} srv = { -1, 0, NULL, "", 0, -1, 0 };

static void srv_conn(int fd, int events, void *arg)
{
	ssize_t n;

	(void)events;
	(void)arg;
	n = read(fd, srv.req + srv.reqlen, sizeof(srv.req) - 1 - srv.reqlen);
	if (n <= 0) {
		if (n == 0)
			srv.eof = 1;
		loop_unwatch(fd);
		close(fd);
		srv.cfd = -1;
		return;
	}
	srv.reqlen += (size_t)n;
	srv.req[srv.reqlen] = '\0';
	if (strstr(srv.req, "\n\n") == NULL || srv.mode == R_SILENT)
		return;
	if (srv.mode == R_ANSWER && write(fd, srv.answer,
	    strlen(srv.answer)) < 0)
		perror("write");
	loop_unwatch(fd);
	close(fd);
	srv.cfd = -1;
}

static void srv_accept(int fd, int events, void *arg)
{
	int c;

	(void)events;
	(void)arg;
	if ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
		return;
	srv.reqlen = 0;
	srv.req[0] = '\0';
	srv.eof = 0;
	srv.cfd = c;
	loop_watch(c, LOOP_READ, srv_conn, NULL);
}

static int srv_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 8) < 0) {
		perror("resolver socket");
		return -1;
	}
	return fd;
}

static void guard(void *arg)
{
	*(int *)arg = 1;
	loop_stop();
}

/* Run the loop for at most ms (or until an answer stops it). */
static void spin(uint64_t ms)
{
	loop_timer t;
	int fired = 0;

	loop_timer_init(&t, guard, &fired);
	loop_timer_set(&t, ms);
	loop_run();
	loop_timer_stop(&t);
}

/* Ask; wait for the answer (bounded).  Returns the status or -1. */
static int ask(struct ux *ux, uint64_t qid)
{
	wsy_request r;
	int rc;

	memset(&ans, 0, sizeof(ans));
	mkreq(&r);
	rc = ux_query(ux, &r, qid);
	if (rc == WSY_PENDING && ans.n == 0)
		spin(3000);
	if (rc == WSY_ERROR || ans.n != 1)
		return -1;
	CHECK_EQ(ans.qid, qid);
	return ans.status;
}

static struct ux *mkux(const char *path, const char *timeout)
{
	char err[256];
	struct ux *ux = ux_init(&host, err, sizeof(err));

	CHECK(ux != NULL);
	CHECK_EQ(ux_configure(ux, "socket", path, err, sizeof(err)), WSY_OK);
	if (timeout)
		CHECK_EQ(ux_configure(ux, "timeout", timeout, err,
		    sizeof(err)), WSY_OK);
	CHECK_EQ(ux_start(ux, err, sizeof(err)), WSY_OK);
	return ux;
}

static void test_configure(void)
{
	char err[256], big[200];
	struct ux *ux = ux_init(&host, err, sizeof(err));

	CHECK_EQ(ux->timeout_ms, 2000);
	CHECK_EQ(ux_start(ux, err, sizeof(err)), WSY_ERROR);
	CHECK(strstr(err, "socket: required") != NULL);
	CHECK_EQ(ux_configure(ux, "timeout", "0.25", err, sizeof(err)),
	    WSY_OK);
	CHECK_EQ(ux->timeout_ms, 250);
	CHECK_EQ(ux_configure(ux, "timeout", "0", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "timeout", "-1", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "timeout", "nan", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "timeout", "2s", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "timeout", "", err, sizeof(err)),
	    WSY_ERROR);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(ux_configure(ux, "socket", big, err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "socket", "", err, sizeof(err)),
	    WSY_ERROR);
	CHECK_EQ(ux_configure(ux, "host", "x", err, sizeof(err)), WSY_ERROR);
	ux_cleanup(ux);
}

static void test_round_trips(const char *path)
{
	struct ux *ux = mkux(path, "0.2");
	uint64_t t0;

	srv.lfd = srv_listen(path);
	CHECK(srv.lfd >= 0);
	loop_watch(srv.lfd, LOOP_READ, srv_accept, NULL);

	/* an answer, escapes and all; the request as encoded */
	srv.mode = R_ANSWER;
	srv.answer = "peer tcp://127.0.0.1:7 protocol super\\x20chat "
	    "framing newline framing-config lf\n";
	CHECK_EQ(ask(ux, 1), 0);
	CHECK(!strcmp(ans.peer, "tcp://127.0.0.1:7") &&
	    !strcmp(ans.protocol, "super chat") &&
	    !strcmp(ans.framing, "newline") && !strcmp(ans.fconf, "lf"));
	CHECK(!strcmp(srv.req, expected));
	CHECK(ux->queries == NULL);
	srv.answer = "status 403\n";
	CHECK_EQ(ask(ux, 2), 403);
	/* an answer that arrives with more after the newline is fine */
	srv.answer = "status 404\r\nrubbish";
	CHECK_EQ(ask(ux, 3), 404);
	/* a protocol the client did not offer, a bad line: 500 */
	srv.answer = "peer tcp://127.0.0.1:7 protocol other\n";
	CHECK_EQ(ask(ux, 4), 500);
	srv.answer = "nonsense\n";
	CHECK_EQ(ask(ux, 5), 500);
	/* closed without an answer: 503 */
	srv.mode = R_CLOSE;
	CHECK_EQ(ask(ux, 6), 503);
	/* silent: 503 after the timeout, and a log line */
	srv.mode = R_SILENT;
	nlogs = 0;
	t0 = loop_update_time();
	CHECK_EQ(ask(ux, 7), 503);
	CHECK(loop_update_time() - t0 >= 190);
	CHECK(nlogs == 1 && strstr(lastlog, "did not answer") != NULL);
	CHECK(ux->queries == NULL && ntimers == 0);
	spin(20);
	CHECK(srv.eof || srv.cfd < 0);

	/* cancel: no answer afterwards, the connection is closed */
	{
		wsy_request r;

		mkreq(&r);
		memset(&ans, 0, sizeof(ans));
		CHECK_EQ(ux_query(ux, &r, 8), WSY_PENDING);
		spin(50);		/* the request reaches the resolver */
		CHECK(strstr(srv.req, "\n\n") != NULL);
		ux_cancel(ux, 8);
		ux_cancel(ux, 8);	/* twice is harmless */
		CHECK(ux->queries == NULL && ntimers == 0);
		spin(300);		/* past the timeout */
		CHECK_EQ(ans.n, 0);
		CHECK(srv.eof);
	}
	/* cleanup with a query in flight frees it (ASan sees leaks) */
	{
		wsy_request r;

		mkreq(&r);
		CHECK_EQ(ux_query(ux, &r, 9), WSY_PENDING);
		spin(20);
	}
	ux_cleanup(ux);
	CHECK_EQ(ntimers, 0);
	spin(20);
	CHECK(srv.eof);

	/* down: the listener is gone but its file stays (ECONNREFUSED) */
	loop_unwatch(srv.lfd);
	close(srv.lfd);
	ux = mkux(path, NULL);
	nlogs = 0;
	CHECK_EQ(ask(ux, 10), 503);
	CHECK(nlogs == 1 && strstr(lastlog, "answering 503") != NULL);
	/* no socket file at all (ENOENT); the log line is rate-limited */
	unlink(path);
	CHECK_EQ(ask(ux, 11), 503);
	CHECK_EQ(nlogs, 1);
	/* back: the next query just works */
	srv.lfd = srv_listen(path);
	loop_watch(srv.lfd, LOOP_READ, srv_accept, NULL);
	srv.mode = R_ANSWER;
	srv.answer = "peer unix:///x\n";
	CHECK_EQ(ask(ux, 12), 0);
	CHECK(!strcmp(ans.peer, "unix:///x"));
	ux_cleanup(ux);
	loop_unwatch(srv.lfd);
	close(srv.lfd);
	unlink(path);
}

static void test_long_answer(const char *path)
{
	static char big[UX_MAX_ANSWER + 100];
	struct ux *ux = mkux(path, "2");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	srv.lfd = srv_listen(path);
	loop_watch(srv.lfd, LOOP_READ, srv_accept, NULL);
	srv.mode = R_ANSWER;
	srv.answer = big;
	CHECK_EQ(ask(ux, 20), 500);
	ux_cleanup(ux);
	loop_unwatch(srv.lfd);
	close(srv.lfd);
	unlink(path);
}

int main(void)
{
	char dir[64], path[128];

	test_encode();
	test_parse();
	if (loop_init() < 0) {
		fprintf(stderr, "loop_init failed\n");
		return 1;
	}
	test_configure();
	snprintf(dir, sizeof(dir), "/tmp/wsyuxXXXXXX");
	if (mkdtemp(dir) != NULL) {
		snprintf(path, sizeof(path), "%s/r.sock", dir);
		test_round_trips(path);
		test_long_answer(path);
		rmdir(dir);
	} else {
		CHECK(!"mkdtemp");
	}
	CHECK_EQ(loop_nwatched(), 0);
	loop_free();
	return test_summary("test_backend_unix");
}
