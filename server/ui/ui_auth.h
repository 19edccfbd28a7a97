#ifndef ANVIL_UI_AUTH_H
#define ANVIL_UI_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The web UI's login sessions and CSRF tokens. Sessions are server-side: the
 * cookie holds 32 random bytes (64 hex chars) and never the admin token; the
 * store keeps only their sha256 (ui_auth_session_hash), with an expiry and
 * the admin token's hash (so a new admin token ends every session), so a
 * logout or an admin's revoke-all ends a session at once and two logins in
 * the same second get different cookies. The CSRF token of a form is
 * HMAC-SHA256(key, "csrf:" + cookie value) with key = srv->admin_hash.
 * Pure functions, any thread. */

#define UI_AUTH_COOKIE_NAME "anvil_session"
#define UI_AUTH_COOKIE_MAX  96
#define UI_AUTH_SESSION_HEX 64

/* A new random session cookie value (from getrandom(2)). */
int ui_auth_session_new(char out[UI_AUTH_COOKIE_MAX], struct err *err);
/* 1 when value has the form of a session cookie (64 lowercase hex). */
int ui_auth_session_well_formed(const char *value);
/* The sha256 hex the store keys a session by. */
void ui_auth_session_hash(const char *value, char out[65]);

/* 1 when a form's Origin header (may be NULL: curl, old browsers; the CSRF
 * token still guards those) names this server: the origin of public_url or
 * http(s)://host (the request's Host header, may be NULL). "null" and any
 * other origin are refused. */
int ui_auth_origin_ok(const char *origin, const char *host, const char *public_url);
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
