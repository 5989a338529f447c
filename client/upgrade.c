/*
 * upgrade.c - see upgrade.h.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>

#include "../core/http.h"
#include "../core/opts.h"
#include "upgrade.h"

int upgrade_request(buf *b, const char *path, const char *host,
    char key[UPGRADE_KEY_LEN])
{
	uint8_t nonce[16];
	size_t room;
	int n;

	opts_random(nonce, sizeof(nonce));
	base64_encode_raw(key, sizeof(nonce), nonce);
	key[24] = '\0';
	if (buf_alloc(b) < 0)
		return -1;
	room = buf_room(b);
	n = snprintf((char *)buf_tail(b), room,
	    "GET %s HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "User-Agent: websocksy-client/" WSY_VERSION "\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "\r\n", path, host, key);
	if (n < 0 || (size_t)n >= room)
		return -1;
	buf_commit(b, (size_t)n);
	return 0;
}

char *upgrade_head_end(char *h, size_t len)
{
	size_t i;

	for (i = 3; i < len; i++)
		if (h[i] == '\n' && h[i - 1] == '\r' && h[i - 2] == '\n' &&
		    h[i - 3] == '\r')
			return h + i - 3;
	return NULL;
}

/* Value of header name in head h (CRLF lines), trimmed; 0 if found. */
static int header(const char *h, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), len;
	const char *p, *e;

	for (p = strstr(h, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		p += nl + 1;
		p += strspn(p, " \t");
		if ((e = strstr(p, "\r\n")) == NULL)
			e = p + strlen(p);
		len = (size_t)(e - p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len >= outlen)
			len = outlen - 1;
		memcpy(out, p, len);
		out[len] = '\0';
		return 0;
	}
	return -1;
}

/* 1 if token is in the comma list v (case-insensitive). */
static int has_token(const char *v, const char *token)
{
	size_t tl = strlen(token), n;

	while (*v) {
		v += strspn(v, " \t,");
		n = strcspn(v, ",");
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(v, token, tl) == 0)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

const char *upgrade_check(const char *h, const char *key)
{
	char v[256], want[29];

	if (strncmp(h, "HTTP/1.1 101", 12) != 0 || (h[12] != ' ' &&
	    h[12] != '\r'))
		return "not 101";
	if (header(h, "Upgrade", v, sizeof(v)) < 0 ||
	    strcasecmp(v, "websocket") != 0)
		return "no Upgrade: websocket";
	if (header(h, "Connection", v, sizeof(v)) < 0 ||
	    !has_token(v, "upgrade"))
		return "no Connection: upgrade";
	http_ws_accept(key, strlen(key), want);
	if (header(h, "Sec-WebSocket-Accept", v, sizeof(v)) < 0 ||
	    strcmp(v, want) != 0)
		return "wrong Sec-WebSocket-Accept";
	if (header(h, "Sec-WebSocket-Extensions", v, sizeof(v)) == 0)
		return "an extension we did not offer";
	return NULL;
}

int upgrade_close_reply(ssize_t r, const ws_event *ev)
{
	if (r < 0)
		return (int)-r;
	/* ws_decode refuses a code that must not be sent: echo it */
	return ev->code;
}

size_t upgrade_close_payload(int code, uint8_t p[2])
{
	if (code == WS_CLOSE_NO_STATUS)
		return 0;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	return 2;
}
