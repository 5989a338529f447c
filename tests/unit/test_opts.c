/*
 * test_opts.c - option strings (escapes, errors), the client's reading of
 * them, mask modes, host:port addresses and the SIP003 environment.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/opts.h"
#include "../../core/sip003.h"
#include "../../core/ws.h"
#include "test.h"

static int has(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

static void test_parse(void)
{
	char err[256];
	opts o;

	CHECK_EQ(opts_parse("ws;host=example.com;path=/ws;tls", &o, err,
	    sizeof(err)), 0);
	CHECK_EQ(o.n, 4);
	CHECK(strcmp(o.v[0].key, "ws") == 0 && o.v[0].value == NULL);
	CHECK(strcmp(o.v[1].key, "host") == 0);
	CHECK(strcmp(o.v[1].value, "example.com") == 0);
	CHECK(strcmp(opts_get(&o, "path"), "/ws") == 0);
	CHECK(opts_has(&o, "tls") && opts_get(&o, "tls") == NULL);
	CHECK(!opts_has(&o, "sni"));
	opts_free(&o);

	/* escapes; only the first unescaped '=' splits */
	CHECK_EQ(opts_parse("path=/a\\;b\\=c\\\\d;x=1=2;k\\=ey=v", &o, err,
	    sizeof(err)), 0);
	CHECK_EQ(o.n, 3);
	CHECK(strcmp(opts_get(&o, "path"), "/a;b=c\\d") == 0);
	CHECK(strcmp(opts_get(&o, "x"), "1=2") == 0);
	CHECK(strcmp(opts_get(&o, "k=ey"), "v") == 0);
	opts_free(&o);

	/* empty options skipped, empty value kept, later wins */
	CHECK_EQ(opts_parse(";;a;;b=;a=2;", &o, err, sizeof(err)), 0);
	CHECK_EQ(o.n, 3);
	CHECK(strcmp(opts_get(&o, "b"), "") == 0);
	CHECK(strcmp(opts_get(&o, "a"), "2") == 0);
	opts_free(&o);
	CHECK_EQ(opts_parse("", &o, err, sizeof(err)), 0);
	CHECK_EQ(o.n, 0);
	opts_free(&o);

	/* errors quote the key */
	CHECK_EQ(opts_parse("ws;path=/a\\qb", &o, err, sizeof(err)), -1);
	CHECK(has(err, "'path'") && has(err, "\\q"));
	CHECK_EQ(o.n, 0);
	CHECK_EQ(opts_parse("ho\\xst=1", &o, err, sizeof(err)), -1);
	CHECK(has(err, "'ho\\xst'"));
	CHECK_EQ(opts_parse("host=abc\\", &o, err, sizeof(err)), -1);
	CHECK(has(err, "'host'") && has(err, "end"));
	CHECK_EQ(opts_parse("ws;=x", &o, err, sizeof(err)), -1);
	CHECK(has(err, "empty key"));
	CHECK_EQ(opts_parse("a\x01" "b", &o, err, sizeof(err)), 0);
	opts_free(&o);
}

static void test_check(void)
{
	static const opt_spec spec[] = {
		{ "flag", OPT_FLAG }, { "val", OPT_VALUE }, { "any", OPT_ANY },
		{ NULL, 0 }
	};
	char err[256];
	opts o;

	opts_parse("flag;val=1;any;any=2", &o, err, sizeof(err));
	CHECK_EQ(opts_check(&o, spec, err, sizeof(err)), 0);
	opts_free(&o);
	opts_parse("flag;nope=1", &o, err, sizeof(err));
	CHECK_EQ(opts_check(&o, spec, err, sizeof(err)), -1);
	CHECK(has(err, "unknown option 'nope'"));
	opts_free(&o);
	opts_parse("val", &o, err, sizeof(err));
	CHECK_EQ(opts_check(&o, spec, err, sizeof(err)), -1);
	CHECK(has(err, "'val'") && has(err, "value"));
	opts_free(&o);
	opts_parse("val=", &o, err, sizeof(err));
	CHECK_EQ(opts_check(&o, spec, err, sizeof(err)), -1);
	opts_free(&o);
	opts_parse("flag=1", &o, err, sizeof(err));
	CHECK_EQ(opts_check(&o, spec, err, sizeof(err)), -1);
	CHECK(has(err, "'flag'") && has(err, "no value"));
	opts_free(&o);
}

/* Parse s with the client's rules; returns opts_client's result.  c
 * points into the list, so it lives until the next call. */
static opts last;

static int client(const char *s, client_opts *c, char *err, size_t errlen)
{
	opts_free(&last);
	if (opts_parse(s, &last, err, errlen) < 0)
		return -2;
	return opts_client(&last, c, err, errlen);
}

struct bad_case {
	const char *s;
	const char *want;	/* substring of the error */
};

static const struct bad_case bad_cases[] = {
	{ "ws;host=a", "'path=" },
	{ "ws;path=/x", "'host=" },
	{ "ws;host=a;path=x", "'path'" },
	{ "host=a", "'host' needs 'ws'" },
	{ "tls", "'sni=" },
	{ "sni=a", "'sni' needs 'tls'" },
	{ "insecure", "'insecure' needs 'tls'" },
	{ "ws;host=a;path=/;mask=none", "'mask'" },
	{ "ws;host=a;path=/;bogus", "unknown option 'bogus'" },
	{ "ws;host;path=/", "'host'" },
	{ "tls;sni=a;pin=abc", "'pin'" },
	{ "ping=x", "'ping'" },
	{ "ping=-1", "'ping'" },
	{ "timeout=0", "'timeout'" },
	{ "ws=1;host=a;path=/", "'ws'" },
	{ "mux", "'mux' needs 'ws'" },
	{ "kcp;ws;host=a;path=/", "cannot be combined with 'ws'" },
	{ "kcp;tls;sni=a", "cannot be combined with 'tls'" },
	{ "kcp;psk=abc", "'psk'" },
	{ "kcp;psk", "'psk' needs a value" },
	{ "psk=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "needs 'kcp'" },
	{ "kcp-mtu=1400", "'kcp-mtu' needs 'kcp'" },
	{ "kcp;kcp-mtu=100", "'kcp-mtu'" },
	{ "kcp;kcp-window=0", "'kcp-window'" },
	{ "kcp;kcp-replay=10", "'kcp-replay'" },
	{ "mux-window=65536", "'mux-window' needs 'mux'" },
	{ "kcp;mux-window=100", "'mux-window'" },
	{ "ws;host=a;path=/;mux;mux-streams=0", "'mux-streams'" },
	{ "kcp=1", "'kcp'" },
	{ "kcp;mux=2", "'mux': '2' is not 0 or 1" },
	{ "kcp;mux=", "'mux'" },
	{ "mux=1", "'mux' needs 'ws'" },
	{ "kcp;mux=0;psk=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    "'psk' cannot be used with 'mux=0'" },
	{ "kcp;mux=0;kcp-replay=4096", "'kcp-replay' cannot be used" },
	{ "kcp;mux=0;mux-window=65536", "'mux-window' needs 'mux'" },
	{ "kcp;mux=0;mux-streams=8", "'mux-streams' needs 'mux'" },
};

/* The mux modes: kcp implies mux; the key is decoded; limits parse. */
static void test_client_mux(void)
{
	static const char key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	char s[256], err[256];
	client_opts c;
	int i;

	CHECK_EQ(client("ws;host=a;path=/", &c, err, sizeof(err)), 0);
	CHECK(!c.mux && !c.kcp && !c.has_psk);
	CHECK(c.mux_window == 1048576 && c.mux_streams == 128);
	CHECK_EQ(client("ws;host=a;path=/;mux;mux-window=65536;mux-streams=8",
	    &c, err, sizeof(err)), 0);
	CHECK(c.mux && c.ws && !c.kcp);
	CHECK(c.mux_window == 65536 && c.mux_streams == 8);
	CHECK_EQ(client("kcp", &c, err, sizeof(err)), 0);
	CHECK(c.kcp && c.mux && !c.ws && !c.has_psk);
	CHECK(c.kcp_mtu == 1400 && c.kcp_window == 1024);
	CHECK(c.kcp_replay == 1048576);
	snprintf(s, sizeof(s), "kcp;psk=%s;kcp-mtu=1200;kcp-window=256;"
	    "kcp-replay=4096", key);
	CHECK_EQ(client(s, &c, err, sizeof(err)), 0);
	CHECK(c.has_psk && c.kcp_mtu == 1200 && c.kcp_window == 256);
	CHECK(c.kcp_replay == 4096);
	for (i = 0; i < 32; i++)
		CHECK_EQ(c.psk[i], i);
	CHECK(!c.kcp_raw);
	/* mux=1 is mux; mux=0 turns it off: plain ws, raw KCP */
	CHECK_EQ(client("ws;host=a;path=/;mux=1", &c, err, sizeof(err)), 0);
	CHECK(c.mux && !c.kcp_raw);
	CHECK_EQ(client("ws;host=a;path=/;mux=0", &c, err, sizeof(err)), 0);
	CHECK(!c.mux && c.ws && !c.kcp_raw);
	CHECK_EQ(client("mux=0", &c, err, sizeof(err)), 0);
	CHECK(!c.mux && !c.kcp && !c.kcp_raw);
	CHECK_EQ(client("kcp;mux", &c, err, sizeof(err)), 0);
	CHECK(c.kcp && c.mux && !c.kcp_raw);
	CHECK_EQ(client("kcp;mux=0", &c, err, sizeof(err)), 0);
	CHECK(c.kcp && !c.mux && c.kcp_raw && !c.has_psk);
	CHECK(c.kcp_mtu == 1400 && c.kcp_window == 1024);
	CHECK_EQ(client("kcp;mux=0;kcp-mtu=1200;kcp-window=512", &c, err,
	    sizeof(err)), 0);
	CHECK(c.kcp_raw && c.kcp_mtu == 1200 && c.kcp_window == 512);
	/* the last mux wins, as for every option */
	CHECK_EQ(client("kcp;mux=0;mux", &c, err, sizeof(err)), 0);
	CHECK(c.mux && !c.kcp_raw);
}

static void test_client(void)
{
	client_opts c;
	char err[256];
	size_t i;

	CHECK_EQ(client("", &c, err, sizeof(err)), 0);
	CHECK(!c.ws && !c.tls && c.ping == 30 && c.timeout == 10);
	CHECK_EQ(c.mask, MASK_STANDARD);
	CHECK_EQ(client("ws;host=h;path=/p;mask=skip;ping=0", &c, err,
	    sizeof(err)), 0);
	CHECK(c.ws && !c.tls && strcmp(c.host, "h") == 0);
	CHECK(c.mask == MASK_SKIP && c.ping == 0);
	CHECK_EQ(client("tls;sni=example.com;alpn=h2,http/1.1;insecure;0rtt;"
	    "pin=AB:cd:" "0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789ab", &c, err, sizeof(err)), 0);
	CHECK(c.tls && !c.ws && c.insecure && c.resume);
	CHECK(strcmp(c.alpn, "h2,http/1.1") == 0);
	CHECK_EQ(client("ws;host=h;path=/;tls;sni=s;mask=fixed;timeout=3",
	    &c, err, sizeof(err)), 0);
	CHECK(c.ws && c.tls && c.mask == MASK_FIXED && c.timeout == 3);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		err[0] = '\0';
		CHECK_EQ(client(bad_cases[i].s, &c, err, sizeof(err)), -1);
		if (!has(err, bad_cases[i].want))
			fprintf(stderr, "'%s': error '%s' lacks '%s'\n",
			    bad_cases[i].s, err, bad_cases[i].want);
		CHECK(has(err, bad_cases[i].want));
	}
	opts_free(&last);
}

static void test_masks(void)
{
	uint8_t conn[4] = { 1, 2, 3, 4 }, k1[4], k2[4], zero[4] = { 0 };
	uint8_t data[37], copy[37], big[10000];
	int i, same = 0;

	CHECK_EQ(opts_mask_mode("skip"), MASK_SKIP);
	CHECK_EQ(opts_mask_mode("standard"), MASK_STANDARD);
	CHECK_EQ(opts_mask_mode("fixed"), MASK_FIXED);
	CHECK_EQ(opts_mask_mode("Skip"), -1);
	CHECK_EQ(opts_mask_mode(""), -1);

	opts_mask_key(MASK_SKIP, conn, k1);
	CHECK_MEM(k1, zero, 4);
	opts_mask_key(MASK_FIXED, conn, k1);
	CHECK_MEM(k1, conn, 4);
	/* fresh keys differ (2^-32 chance per pair of a false alarm) */
	for (i = 0; i < 8; i++) {
		opts_mask_key(MASK_STANDARD, conn, k1);
		opts_mask_key(MASK_STANDARD, conn, k2);
		same += memcmp(k1, k2, 4) == 0;
	}
	CHECK(same < 2);
	/* the pool refills: many draws, not all zero */
	opts_random(big, sizeof(big));
	opts_random(big, sizeof(big));
	for (i = 0, same = 0; i < (int)sizeof(big); i++)
		same += big[i] == 0;
	CHECK(same < 200);

	/* an all-zero key leaves the payload as is: skip costs nothing */
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	memcpy(copy, data, sizeof(data));
	ws_mask(data, sizeof(data), zero, 0);
	CHECK_MEM(data, copy, sizeof(data));
	/* masking twice with the same key is the identity */
	opts_mask_key(MASK_STANDARD, conn, k1);
	ws_mask(data, sizeof(data), k1, 0);
	ws_mask(data, sizeof(data), k1, 0);
	CHECK_MEM(data, copy, sizeof(data));
}

struct addr_case {
	const char *s;
	const char *host, *port;	/* NULL host: must fail */
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:1080", "127.0.0.1", "1080" },
	{ "localhost:1", "localhost", "1" },
	{ "[::1]:443", "::1", "443" },
	{ "[fe80::1%lo]:65535", "fe80::1%lo", "65535" },
	{ "example.com:8080", "example.com", "8080" },
	{ "::1:443", NULL, NULL },
	{ "host", NULL, NULL },
	{ ":80", NULL, NULL },
	{ "[]:80", NULL, NULL },
	{ "[::1]443", NULL, NULL },
	{ "[::1:443", NULL, NULL },
	{ "h:0", NULL, NULL },
	{ "h:65536", NULL, NULL },
	{ "h:", NULL, NULL },
	{ "h:12a", NULL, NULL },
	{ "h:-1", NULL, NULL },
	{ "h:000443", NULL, NULL },
};

static void test_addr(void)
{
	char host[SIP003_HOSTLEN], port[8], err[256];
	size_t i;
	int r;

	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *a = &addr_cases[i];

		r = hostport_parse(a->s, host, sizeof(host), port,
		    sizeof(port), err, sizeof(err));
		if ((r == 0) != (a->host != NULL))
			fprintf(stderr, "'%s': got %d (%s)\n", a->s, r,
			    r ? err : host);
		CHECK_EQ(r, a->host ? 0 : -1);
		if (r == 0 && a->host) {
			CHECK(strcmp(host, a->host) == 0);
			CHECK(strcmp(port, a->port) == 0);
		}
	}
	CHECK(port_valid("1") && port_valid("65535"));
	CHECK(!port_valid("") && !port_valid("0") && !port_valid("99999"));
}

static void set_env(const char *rh, const char *rp, const char *lh,
    const char *lp, const char *o)
{
	unsetenv("SS_REMOTE_HOST");
	unsetenv("SS_REMOTE_PORT");
	unsetenv("SS_LOCAL_HOST");
	unsetenv("SS_LOCAL_PORT");
	unsetenv("SS_PLUGIN_OPTIONS");
	if (rh)
		setenv("SS_REMOTE_HOST", rh, 1);
	if (rp)
		setenv("SS_REMOTE_PORT", rp, 1);
	if (lh)
		setenv("SS_LOCAL_HOST", lh, 1);
	if (lp)
		setenv("SS_LOCAL_PORT", lp, 1);
	if (o)
		setenv("SS_PLUGIN_OPTIONS", o, 1);
}

static void test_sip003(void)
{
	char hosts[SIP003_MAX_HOSTS][SIP003_HOSTLEN], err[256];
	sip003 s;

	set_env(NULL, NULL, NULL, NULL, NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), 0);

	set_env("::1|127.0.0.1", "8388", "127.0.0.1", "1984",
	    "ws;host=a\\;b;path=/");
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), 1);
	CHECK(strcmp(s.remote_port, "8388") == 0);
	CHECK(strcmp(s.local_port, "1984") == 0);
	CHECK(strcmp(s.options, "ws;host=a\\;b;path=/") == 0);
	CHECK_EQ(sip003_hosts(s.remote_host, hosts, SIP003_MAX_HOSTS, err,
	    sizeof(err)), 2);
	CHECK(strcmp(hosts[0], "::1") == 0);
	CHECK(strcmp(hosts[1], "127.0.0.1") == 0);

	/* no options is raw TCP, not an error */
	set_env("10.0.0.1", "1", "127.0.0.1", "2", NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), 1);
	CHECK(s.options[0] == '\0');

	set_env("10.0.0.1", NULL, "127.0.0.1", "2", NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), -1);
	CHECK(has(err, "SS_REMOTE_PORT"));
	set_env("10.0.0.1", "x", "127.0.0.1", "2", NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), -1);
	CHECK(has(err, "SS_REMOTE_PORT"));
	set_env("10.0.0.1", "1", "127.0.0.1", "", NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), -1);
	CHECK(has(err, "SS_LOCAL_PORT"));
	set_env("|", "1", "127.0.0.1", "2", NULL);
	CHECK_EQ(sip003_from_env(&s, err, sizeof(err)), -1);

	CHECK_EQ(sip003_hosts("[::1]||a|", hosts, SIP003_MAX_HOSTS, err,
	    sizeof(err)), 2);
	CHECK(strcmp(hosts[0], "::1") == 0 && strcmp(hosts[1], "a") == 0);
	CHECK_EQ(sip003_hosts("a|b|c", hosts, 2, err, sizeof(err)), 2);
	set_env(NULL, NULL, NULL, NULL, NULL);
}

int main(void)
{
	test_parse();
	test_check();
	test_client();
	test_client_mux();
	test_masks();
	test_addr();
	test_sip003();
	return test_summary("test_opts");
}
