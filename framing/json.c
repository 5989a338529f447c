/*
 * json.c - framing plugin: one text message per top-level JSON value.
 *
 * A value is an object, array, string, number, true, false or null
 * (RFC 8259).  Values may follow each other directly or with whitespace
 * between them.  Whitespace outside values is dropped (the frame_skip form
 * of the contract), so every message is exactly one value.  A top-level
 * number ends at the first byte that cannot continue it, so it is only
 * sent once that byte (whitespace, '{', '[' or '"') has arrived.
 *
 * The scan is a strict RFC 8259 recogniser: a byte that cannot start or
 * continue a value (garbage, a bad escape, a raw control character in a
 * string, a nesting deeper than the limit) returns -1, and the core closes
 * the connection with 1011 and logs "framing error".  Resynchronising on
 * a broken stream would only guess.
 *
 * framing-config: empty, or "depth=N" (1..65536, default 64), the deepest
 * nesting of objects and arrays.  The core validates nothing for plugins
 * at start-up: a bad config makes the first call return -1.
 *
 * The scan is incremental: the lexer and parser state survive between
 * calls, and each call only looks at bytes it has not seen (last_read
 * being exact, as the plugin header promises).  A value longer than the
 * core's buffer-size is flushed by the core in parts; the state goes on
 * where it was, so the stream stays in step.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../plugins/websocksy_plugin.h"

#define JS_DEPTH_DEFAULT 64
#define JS_DEPTH_MAX 65536

/* What the parser expects outside a token. */
enum js_expect {
	P_VALUE,                /* a value: top level, after ':', array ',' */
	P_VALUE_OR_END,         /* after '[' */
	P_KEY_OR_END,           /* after '{' */
	P_KEY,                  /* after ',' in an object */
	P_COLON,                /* after a key */
	P_COMMA_OR_END,         /* after a value inside a container */
};

/* Where the lexer is inside a token. */
enum js_lex {
	L_NONE,
	L_STR, L_ESC, L_HEX,    /* string; after '\'; in \uXXXX */
	L_LIT,                  /* true, false, null */
	N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP,
};

/* What one byte did. */
enum js_step {
	J_ERR = -1,
	J_MORE,                 /* consumed, the value goes on */
	J_END_AFTER,            /* consumed, the top-level value ends with it */
	J_END_BEFORE,           /* not consumed, the value ended before it */
};

struct js_state {
	size_t max;             /* nesting limit */
	size_t depth;
	size_t scanned;         /* data[0..scanned) went through the lexer */
	size_t waiting;         /* buffer length when we last said "wait" */
	enum js_expect ps;
	enum js_lex lx;
	const char *lit;        /* the literal being matched */
	unsigned aux;           /* bytes of the literal or \u digits seen */
	int key;                /* the current string is an object key */
	int inval;              /* a top-level value has begun */
	uint8_t stack[];        /* '{' or '[' per open container */
};

static int js_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int js_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int js_hex(int c)
{
	return js_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void js_reset(struct js_state *st)
{
	st->depth = 0;
	st->scanned = 0;
	st->waiting = 0;
	st->ps = P_VALUE;
	st->lx = L_NONE;
	st->lit = NULL;
	st->aux = 0;
	st->key = 0;
	st->inval = 0;
}

/* A value ended: either the top-level one, or one inside a container. */
static enum js_step js_value_done(struct js_state *st)
{
	if (st->depth == 0)
		return J_END_AFTER;
	st->ps = P_COMMA_OR_END;
	return J_MORE;
}

static enum js_step js_string_done(struct js_state *st)
{
	if (st->key) {
		st->key = 0;
		st->ps = P_COLON;
		return J_MORE;
	}
	return js_value_done(st);
}

static enum js_step js_open(struct js_state *st, int c)
{
	if (st->depth >= st->max)
		return J_ERR;
	st->stack[st->depth++] = (uint8_t)c;
	st->ps = c == '{' ? P_KEY_OR_END : P_VALUE_OR_END;
	return J_MORE;
}

static enum js_step js_close(struct js_state *st, int c)
{
	int want = c == '}' ? '{' : '[';

	if (st->depth == 0 || st->stack[st->depth - 1] != want)
		return J_ERR;
	st->depth--;
	return js_value_done(st);
}

static enum js_step js_literal(struct js_state *st, const char *lit)
{
	st->lx = L_LIT;
	st->lit = lit;
	st->aux = 1;            /* the first letter picked it */
	return J_MORE;
}

static enum js_step js_value_start(struct js_state *st, int c)
{
	switch (c) {
	case '{':
	case '[':
		return js_open(st, c);
	case '"':
		st->lx = L_STR;
		return J_MORE;
	case '-':
		st->lx = N_MINUS;
		return J_MORE;
	case '0':
		st->lx = N_ZERO;
		return J_MORE;
	case 't':
		return js_literal(st, "true");
	case 'f':
		return js_literal(st, "false");
	case 'n':
		return js_literal(st, "null");
	}
	if (js_digit(c)) {
		st->lx = N_INT;
		return J_MORE;
	}
	return J_ERR;
}

/* A byte outside any token. */
static enum js_step js_structural(struct js_state *st, int c)
{
	if (js_ws(c))
		return J_MORE;
	switch (st->ps) {
	case P_COLON:
		if (c != ':')
			return J_ERR;
		st->ps = P_VALUE;
		return J_MORE;
	case P_COMMA_OR_END:
		if (c == ']' || c == '}')
			return js_close(st, c);
		if (c != ',')
			return J_ERR;
		st->ps = st->stack[st->depth - 1] == '{' ? P_KEY : P_VALUE;
		return J_MORE;
	case P_KEY_OR_END:
		if (c == '}')
			return js_close(st, c);
		/* FALLTHROUGH */
	case P_KEY:
		if (c != '"')
			return J_ERR;
		st->lx = L_STR;
		st->key = 1;
		return J_MORE;
	case P_VALUE_OR_END:
		if (c == ']')
			return js_close(st, c);
		/* FALLTHROUGH */
	case P_VALUE:
		break;
	}
	return js_value_start(st, c);
}

/*
 * A byte inside a number.  Returns J_MORE if it continues the number;
 * otherwise the number ended before it: J_ERR if it was incomplete
 * ("-", "1.", "1e+"), else J_END_BEFORE with the lexer back at L_NONE.
 */
static enum js_step js_number(struct js_state *st, int c)
{
	enum js_lex next = L_NONE;
	int final = 0;

	switch (st->lx) {
	case N_MINUS:
		if (c == '0')
			next = N_ZERO;
		else if (js_digit(c))
			next = N_INT;
		break;
	case N_ZERO:
	case N_INT:
		final = 1;
		if (st->lx == N_INT && js_digit(c))
			next = N_INT;
		else if (c == '.')
			next = N_DOT;
		else if (c == 'e' || c == 'E')
			next = N_E;
		break;
	case N_DOT:
		if (js_digit(c))
			next = N_FRAC;
		break;
	case N_FRAC:
		final = 1;
		if (js_digit(c))
			next = N_FRAC;
		else if (c == 'e' || c == 'E')
			next = N_E;
		break;
	case N_E:
		if (c == '+' || c == '-')
			next = N_ESIGN;
		else if (js_digit(c))
			next = N_EXP;
		break;
	case N_ESIGN:
	case N_EXP:
		final = st->lx == N_EXP;
		if (js_digit(c))
			next = N_EXP;
		break;
	default:
		return J_ERR;
	}
	st->lx = next;
	if (next != L_NONE)
		return J_MORE;
	return final ? J_END_BEFORE : J_ERR;
}

/* A byte inside a string or a literal. */
static enum js_step js_text(struct js_state *st, int c)
{
	switch (st->lx) {
	case L_STR:
		if (c == '"') {
			st->lx = L_NONE;
			return js_string_done(st);
		}
		if (c == '\\')
			st->lx = L_ESC;
		else if (c < 0x20)
			return J_ERR;   /* raw control characters: not JSON */
		return J_MORE;
	case L_ESC:
		if (c == 'u') {
			st->lx = L_HEX;
			st->aux = 0;
		} else if (c != '\0' && strchr("\"\\/bfnrt", c) != NULL)
			st->lx = L_STR;
		else
			return J_ERR;
		return J_MORE;
	case L_HEX:
		if (!js_hex(c))
			return J_ERR;
		if (++st->aux == 4)
			st->lx = L_STR;
		return J_MORE;
	case L_LIT:
		if (c != st->lit[st->aux])
			return J_ERR;
		if (st->lit[++st->aux] != '\0')
			return J_MORE;
		st->lx = L_NONE;
		return js_value_done(st);
	default:
		return J_ERR;
	}
}

static enum js_step js_step(struct js_state *st, int c)
{
	enum js_step r;

	if (st->lx == L_NONE)
		return js_structural(st, c);
	if (st->lx < N_MINUS)
		return js_text(st, c);
	if ((r = js_number(st, c)) != J_END_BEFORE)
		return r;
	if (st->depth == 0) {
		/* "01", "1-2", "1true" are not two values but a typo */
		if (!js_ws(c) && c != '{' && c != '[' && c != '"')
			return J_ERR;
		return J_END_BEFORE;
	}
	if ((r = js_value_done(st)) != J_MORE)
		return r;
	return js_structural(st, c);
}

/* Config: words separated by spaces or commas; only "depth=N" so far. */
static int js_config(const char *cfg, size_t *max)
{
	static const char sep[] = " ,\t";
	size_t len, i, v;

	*max = JS_DEPTH_DEFAULT;
	for (cfg = cfg != NULL ? cfg : "";; cfg += len) {
		cfg += strspn(cfg, sep);
		if (*cfg == '\0')
			return 0;
		len = strcspn(cfg, sep);
		if (len <= 6 || strncmp(cfg, "depth=", 6) != 0)
			return -1;
		for (v = 0, i = 6; i < len; i++) {
			if (!js_digit(cfg[i]))
				return -1;
			if ((v = v * 10 + (size_t)(cfg[i] - '0')) >
			    JS_DEPTH_MAX)
				return -1;
		}
		if (v == 0)
			return -1;
		*max = v;
	}
}

static struct js_state *js_new(const char *config)
{
	struct js_state *st;
	size_t max;

	if (js_config(config, &max) < 0)
		return NULL;
	if ((st = malloc(sizeof(*st) + max)) == NULL)
		return NULL;
	js_reset(st);
	st->max = max;
	return st;
}

/*
 * data[0..scanned) is the start of the current value (nothing is kept
 * between values: whitespace there is skipped at once).  lead counts the
 * whitespace before the next value.
 */
static int64_t js_frame(const uint8_t *data, size_t length,
    size_t last_read, int *opcode, size_t *skip, void **state,
    const char *config)
{
	struct js_state *st = *state;
	size_t old, i, end, lead = 0;
	enum js_step r;

	if (data == NULL) {
		free(st);
		*state = NULL;
		return 0;
	}
	*skip = 0;
	if (st == NULL && (st = *state = js_new(config)) == NULL)
		return -1;
	/* Bytes we scanned but never cut were flushed by the core. */
	old = last_read < length ? length - last_read : 0;
	if (st->waiting > old) {
		i = st->waiting - old;
		st->scanned = st->scanned > i ? st->scanned - i : 0;
	}
	st->waiting = 0;
	for (i = st->scanned; i < length; i++) {
		if (!st->inval) {
			if (js_ws(data[i])) {
				lead = i + 1;
				continue;
			}
			st->inval = 1;
		}
		if ((r = js_step(st, data[i])) == J_ERR)
			return -1;
		if (r == J_MORE)
			continue;
		end = r == J_END_AFTER ? i + 1 : i;
		js_reset(st);
		if (end == lead) {
			/* a number that ended where the core's flush cut:
			 * look at this byte again, between values */
			i--;
			continue;
		}
		*skip = lead;
		*opcode = WSY_OP_TEXT;
		return (int64_t)(end - lead);
	}
	*skip = lead;
	st->scanned = length - lead;
	/* after a skip the core calls again at once */
	st->waiting = lead > 0 ? 0 : length;
	return 0;
}

static const wsy_framing_ops js_ops = {
	.frame = NULL,
	.frame_skip = js_frame,
	.session = NULL,
};

const wsy_plugin WSY_PLUGIN = {
	WEBSOCKSY_API_VERSION,
	WSY_KIND_FRAMING,
	"json",
	sizeof(wsy_framing_ops),
	&js_ops,
};
