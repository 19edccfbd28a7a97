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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kinds),
	    cmocka_unit_test(test_read_auth),
	    cmocka_unit_test(test_ct_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
