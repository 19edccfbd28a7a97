/* Token checks at the HTTP edge: hashed tokens, kinds, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "server/http.h"
#include "server/srv.h"
#include "server/ui_auth.h"

static void fill(struct srv *srv, int read_auth)
{
	memset(srv, 0, sizeof(*srv));
	crypto_sha256_hex("admin-secret-0123456789", 23, srv->admin_hash);
	crypto_sha256_hex("agent-secret-0123456789", 23, srv->agent_hash);
	srv->cfg.read_auth = read_auth;
}

static void test_kinds(void **state)
{
	struct srv srv;
	struct err err = {0};

	(void)state;
	fill(&srv, 0);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_READ, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer admin-secret-0123456789", AUTH_ADMIN, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer agent-secret-0123456789", AUTH_AGENT, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer agent-secret-0123456789", AUTH_ADMIN, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, "Bearer admin-secret-0123456789", AUTH_AGENT, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_ADMIN, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer ", AUTH_ADMIN, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Basic admin-secret-0123456789", AUTH_ADMIN, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer admin-secret-012345678", AUTH_ADMIN, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	/* The stored form is the hash: presenting the hash itself is no token. */
	char bearer[80];
	snprintf(bearer, sizeof(bearer), "Bearer %s", srv.admin_hash);
	assert_int_equal(http_auth_check(&srv, bearer, AUTH_ADMIN, &err), -1);
}

static void test_read_auth(void **state)
{
	struct srv srv;
	struct err err = {0};

	(void)state;
	fill(&srv, 1);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_READ, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer agent-secret-0123456789", AUTH_READ, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer admin-secret-0123456789", AUTH_READ, &err), 0);
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(crypto_ct_equal("abc", 3, "abc", 3));
	assert_false(crypto_ct_equal("abc", 3, "abd", 3));
	assert_false(crypto_ct_equal("abc", 3, "abcd", 4));
}

/* Web UI sessions are server-side (issue 13): random cookie values, stored
 * hashed, looked up per request, ended by logout, by revoke-all, by a new
 * admin token and by expiry, and removed by retention. */
static void test_sessions(void **state)
{
	struct store *st = NULL;
	struct err err = {0};
	char admin[65], other_admin[65], a[UI_AUTH_COOKIE_MAX], b[UI_AUTH_COOKIE_MAX], ida[65], idb[65];
	int n = -1;

	(void)state;
	assert_int_equal(store_open(":memory:", &st, &err), 0);
	crypto_sha256_hex("admin-token", 11, admin);
	crypto_sha256_hex("new-admin-token", 15, other_admin);
	/* two logins in the same millisecond: two different sessions */
	assert_int_equal(ui_auth_session_new(a, &err), 0);
	assert_int_equal(ui_auth_session_new(b, &err), 0);
	assert_string_not_equal(a, b);
	ui_auth_session_hash(a, ida);
	ui_auth_session_hash(b, idb);
	assert_int_equal(store_session_add(st, ida, admin, 1000, 5000, &err), 0);
	assert_int_equal(store_session_add(st, idb, admin, 1000, 5000, &err), 0);
	assert_int_equal(store_session_check(st, ida, admin, 2000, &err), 0);
	assert_int_equal(store_session_check(st, idb, admin, 2000, &err), 0);
	/* the cookie value itself is not what the store knows */
	assert_int_equal(store_session_check(st, a, admin, 2000, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	/* expired, and bound to the admin token it was made under */
	assert_int_equal(store_session_check(st, ida, admin, 5000, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(store_session_check(st, ida, other_admin, 2000, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	/* logout ends one session, not the other; twice is harmless */
	assert_int_equal(store_session_delete(st, ida, &err), 0);
	assert_int_equal(store_session_delete(st, ida, &err), 0);
	assert_int_equal(store_session_check(st, ida, admin, 2000, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(store_session_check(st, idb, admin, 2000, &err), 0);
	/* revoke-all ends every one */
	assert_int_equal(store_session_add(st, ida, admin, 1000, 5000, &err), 0);
	assert_int_equal(store_session_delete_all(st, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_session_check(st, ida, admin, 2000, &err), -1);
	assert_int_equal(store_session_check(st, idb, admin, 2000, &err), -1);
	/* retention removes the expired ones only, in batches */
	assert_int_equal(store_session_add(st, ida, admin, 1000, 3000, &err), 0);
	assert_int_equal(store_session_add(st, idb, admin, 1000, 9000, &err), 0);
	assert_int_equal(store_session_expire(st, 4000, 10, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_session_check(st, idb, admin, 4000, &err), 0);
	assert_int_equal(store_session_expire(st, 4000, 10, &n, &err), 0);
	assert_int_equal(n, 0);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test(test_read_auth),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
