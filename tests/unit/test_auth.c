/* Token checks at the HTTP edge: hashed tokens, kinds (admin, enrollment
 * secret, an agent's own token), revocation, constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "server/http/http.h"
#include "server/srv.h"
#include "server/ui/ui_auth.h"

#define ADMIN  "admin-secret-0123456789"
#define ENROLL "enroll-secret-0123456789"
#define AGENT  "agent-own-token-0123456789"

/* A srv with the admin and enrollment hashes and a store holding agent a1
 * with its own token. */
static void fill(struct srv *srv, int read_auth)
{
	struct err err = {0};
	char hash[65];
	int64_t id;
	int requeued;

	memset(srv, 0, sizeof(*srv));
	crypto_sha256_hex(ADMIN, strlen(ADMIN), srv->admin_hash);
	crypto_sha256_hex(ENROLL, strlen(ENROLL), srv->enroll_hash);
	srv->cfg.read_auth = read_auth;
	assert_int_equal(store_open(":memory:", &srv->store, &err), 0);
	crypto_sha256_hex(AGENT, strlen(AGENT), hash);
	assert_int_equal(jobstate_agent_register(srv->store, "a1", "[]", hash, 1, &id, &requeued, &err), 0);
}

static void test_kinds(void **state)
{
	struct srv srv;
	struct err err = {0};
	int64_t agent_id = 0;

	(void)state;
	fill(&srv, 0);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_READ, NULL, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " ADMIN, AUTH_ADMIN, NULL, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " ENROLL, AUTH_ENROLL, NULL, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " AGENT, AUTH_AGENT, &agent_id, &err), 0);
	assert_int_equal(agent_id, 1);
	/* the enrollment secret alone does not speak for an agent: 401 */
	assert_int_equal(http_auth_check(&srv, "Bearer " ENROLL, AUTH_AGENT, &agent_id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer " AGENT, AUTH_ENROLL, NULL, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, "Bearer " ENROLL, AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, "Bearer " AGENT, AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, "Bearer " ADMIN, AUTH_AGENT, &agent_id, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, "Bearer " ADMIN, AUTH_ENROLL, NULL, &err), -1);
	assert_int_equal(err.code, ERR_FORBIDDEN);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer ", AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Basic " ADMIN, AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer admin-secret-012345678", AUTH_ADMIN, NULL, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(
	    http_auth_check(&srv, "Bearer agent-own-token-012345678", AUTH_AGENT, &agent_id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	/* The stored form is the hash: presenting the hash itself is no token. */
	char bearer[80];
	snprintf(bearer, sizeof(bearer), "Bearer %s", srv.admin_hash);
	assert_int_equal(http_auth_check(&srv, bearer, AUTH_ADMIN, NULL, &err), -1);
	store_free(srv.store);
}

/* Registering the name again or agent rm: the old token is refused (401). */
static void test_agent_token_revoked(void **state)
{
	struct srv srv;
	struct err err = {0};
	char hash[65];
	int64_t id = 0, agent_id = 0;
	int requeued = -1;

	(void)state;
	fill(&srv, 0);
	crypto_sha256_hex("agent-new-token-0123456789", 26, hash);
	assert_int_equal(jobstate_agent_register(srv.store, "a1", "[]", hash, 2, &id, &requeued, &err), 0);
	assert_int_equal(id, 1);
	assert_int_equal(requeued, 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " AGENT, AUTH_AGENT, &agent_id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(
	    http_auth_check(&srv, "Bearer agent-new-token-0123456789", AUTH_AGENT, &agent_id, &err), 0);
	assert_int_equal(agent_id, 1);
	assert_int_equal(jobstate_agent_remove(srv.store, "a1", 3, &id, &requeued, &err), 0);
	assert_int_equal(
	    http_auth_check(&srv, "Bearer agent-new-token-0123456789", AUTH_AGENT, &agent_id, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(jobstate_agent_remove(srv.store, "nope", 3, &id, &requeued, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	store_free(srv.store);
}

static void test_read_auth(void **state)
{
	struct srv srv;
	struct err err = {0};

	(void)state;
	fill(&srv, 1);
	assert_int_equal(http_auth_check(&srv, NULL, AUTH_READ, NULL, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_int_equal(http_auth_check(&srv, "Bearer " ENROLL, AUTH_READ, NULL, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " AGENT, AUTH_READ, NULL, &err), 0);
	assert_int_equal(http_auth_check(&srv, "Bearer " ADMIN, AUTH_READ, NULL, &err), 0);
	store_free(srv.store);
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
	    cmocka_unit_test(test_agent_token_revoked),
	    cmocka_unit_test(test_read_auth),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
