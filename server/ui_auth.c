#include "server/ui_auth.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ui_auth_sign(const char *key_hex, const char *msg, char out[65])
{
	crypto_hmac_sha256_hex(key_hex, strlen(key_hex), msg, strlen(msg), out);
}

void ui_auth_cookie_make(const char *key_hex, int64_t expiry_s, char out[UI_AUTH_COOKIE_MAX])
{
	char msg[48], mac[65];

	snprintf(msg, sizeof(msg), "session:%lld", (long long)expiry_s);
	ui_auth_sign(key_hex, msg, mac);
	snprintf(out, UI_AUTH_COOKIE_MAX, "%lld.%s", (long long)expiry_s, mac);
}

int ui_auth_cookie_ok(const char *key_hex, const char *value, int64_t now_s)
{
	char want[UI_AUTH_COOKIE_MAX];
	long long expiry;
	char *end;

	if (value == NULL || value[0] < '0' || value[0] > '9')
		return 0;
	expiry = strtoll(value, &end, 10);
	if (*end != '.' || expiry <= now_s)
		return 0;
	ui_auth_cookie_make(key_hex, expiry, want);
	return crypto_ct_equal(want, strlen(want), value, strlen(value));
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
