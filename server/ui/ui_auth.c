#include "server/ui/ui_auth.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void ui_auth_sign(const char *key_hex, const char *msg, char out[65])
{
	crypto_hmac_sha256_hex(key_hex, strlen(key_hex), msg, strlen(msg), out);
}

int ui_auth_session_new(char out[UI_AUTH_COOKIE_MAX], struct err *err)
{
	return crypto_random_hex(out, UI_AUTH_SESSION_HEX / 2, err);
}

int ui_auth_session_well_formed(const char *value)
{
	return value != NULL && strlen(value) == UI_AUTH_SESSION_HEX &&
	       strspn(value, "0123456789abcdef") == UI_AUTH_SESSION_HEX;
}

void ui_auth_session_hash(const char *value, char out[65])
{
	crypto_sha256_hex(value, strlen(value), out);
}

/* 1 when origin is scheme://host exactly, for scheme http or https. */
static int ui_auth_origin_is(const char *origin, const char *host)
{
	size_t hl = strlen(host);

	if (strncmp(origin, "http://", 7) == 0)
		origin += 7;
	else if (strncmp(origin, "https://", 8) == 0)
		origin += 8;
	else
		return 0;
	return hl > 0 && strncasecmp(origin, host, hl) == 0 && origin[hl] == '\0';
}

int ui_auth_origin_ok(const char *origin, const char *host, const char *public_url)
{
	const char *p;
	size_t n;

	if (origin == NULL)
		return 1;
	if (host != NULL && ui_auth_origin_is(origin, host))
		return 1;
	/* public_url's origin: scheme://authority, without its path */
	if (public_url == NULL || (p = strstr(public_url, "://")) == NULL)
		return 0;
	n = (size_t)(p + 3 - public_url) + strcspn(p + 3, "/?#");
	return strlen(origin) == n && strncasecmp(origin, public_url, n) == 0;
}

void ui_auth_csrf(const char *key_hex, const char *cookie_value, char out[65])
{
	char msg[UI_AUTH_COOKIE_MAX + 8];

	snprintf(msg, sizeof(msg), "csrf:%s", cookie_value);
	ui_auth_sign(key_hex, msg, out);
}

int ui_auth_csrf_ok(const char *key_hex, const char *cookie_value, const char *csrf)
{
	char want[65];

	if (csrf == NULL || cookie_value == NULL)
		return 0;
	ui_auth_csrf(key_hex, cookie_value, want);
	return crypto_ct_equal(want, 64, csrf, strlen(csrf));
}

int ui_auth_cookie_find(const char *header, const char *name, char *out, size_t max)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (p != NULL && *p) {
		const char *end;
		size_t vlen;

		while (*p == ' ' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			vlen = (size_t)(end - p) - nlen - 1;
			if (vlen + 1 > max)
				return -1;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}

static int ui_auth_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes n bytes of a form value; NULL when it holds a NUL. */
static char *ui_auth_form_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && ui_auth_hex(s[i + 1]) >= 0 &&
		           ui_auth_hex(s[i + 2]) >= 0) {
			out[o++] = (char)(ui_auth_hex(s[i + 1]) * 16 + ui_auth_hex(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
		if (o > 0 && out[o - 1] == '\0') {
			free(out);
			return NULL;
		}
	}
	out[o] = '\0';
	return out;
}

char *ui_auth_form_get(const char *body, size_t len, const char *key)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		const char *amp = memchr(body + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - body) : len;

		if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=')
			return ui_auth_form_decode(body + i + klen + 1, end - i - klen - 1);
		if (end - i == klen && memcmp(body + i, key, klen) == 0)
			return xstrdup("");
		i = end + 1;
	}
	return NULL;
}
