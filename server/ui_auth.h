#ifndef ANVIL_UI_AUTH_H
#define ANVIL_UI_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* The web UI's login session and CSRF tokens. The session cookie never holds
 * the admin token: its value is "<expiry unix s>.<HMAC-SHA256(key, expiry)>"
 * with key = the sha256 hex of the admin token (srv->admin_hash), so a new
 * admin token ends every session. The CSRF token of a form is
 * HMAC-SHA256(key, "csrf:" + cookie value). Pure functions, any thread. */

#define UI_AUTH_COOKIE_NAME "anvil_session"
#define UI_AUTH_COOKIE_MAX  96

/* Writes a session cookie value valid until expiry_s into out. */
void ui_auth_cookie_make(const char *key_hex, int64_t expiry_s, char out[UI_AUTH_COOKIE_MAX]);
/* 1 when value is a well-formed, correctly signed, unexpired session. */
int ui_auth_cookie_ok(const char *key_hex, const char *value, int64_t now_s);
/* The CSRF token (64 hex + NUL) bound to a session cookie value. */
void ui_auth_csrf(const char *key_hex, const char *cookie_value, char out[65]);
/* 1 when csrf (may be NULL) is the token of cookie_value; constant time. */
int ui_auth_csrf_ok(const char *key_hex, const char *cookie_value, const char *csrf);

/* Copies the value of cookie `name` from a Cookie header (may be NULL) into
 * out; 0 when found and it fits, -1 otherwise. */
int ui_auth_cookie_find(const char *header, const char *name, char *out, size_t max);

/* The percent-decoded value of `key` in an application/x-www-form-urlencoded
 * body ('+' is a space); NULL when absent or when it decodes to a NUL. The
 * caller frees it. */
char *ui_auth_form_get(const char *body, size_t len, const char *key);

#endif
