/* PostgreSQL: web UI sessions, keyed by the sha256 of the cookie value and
 * bound to the admin token's hash. */
#include "server/store/pg_int.h"

int pg_session_add(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                   int64_t expires_ms, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, id_sha256);
	pg_arg_text(&a, admin_sha256);
	pg_arg_i64(&a, now_ms);
	pg_arg_i64(&a, expires_ms);
	return pg_be_cmd(be, "session add",
	                 "INSERT INTO ui_sessions(id_sha256, admin_sha256, created_unix_ms, expires_unix_ms)"
	                 " VALUES($1, $2, $3, $4)",
	                 &a, NULL, err);
}

int pg_session_check(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                     struct err *err)
{
	struct pg_args a = {0};
	int64_t n = 0;

	pg_arg_text(&a, id_sha256);
	pg_arg_text(&a, admin_sha256);
	pg_arg_i64(&a, now_ms);
	if (pg_be_scalar(be, "session",
	                 "SELECT count(*) FROM ui_sessions WHERE id_sha256 = $1 AND admin_sha256 = $2"
	                 " AND expires_unix_ms > $3",
	                 &a, &n, err) < 0)
		return -1;
	if (n == 0)
		return err_set(err, ERR_AUTH, "no such session");
	return 0;
}

int pg_session_delete(struct store_be *be, const char *id_sha256, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, id_sha256);
	return pg_be_cmd(be, "session delete", "DELETE FROM ui_sessions WHERE id_sha256 = $1", &a, NULL, err);
}

int pg_session_delete_all(struct store_be *be, int *n_out, struct err *err)
{
	int64_t changed = 0;

	*n_out = 0;
	if (pg_be_cmd(be, "session delete all", "DELETE FROM ui_sessions", NULL, &changed, err) < 0)
		return -1;
	*n_out = (int)changed;
	return 0;
}

int pg_session_expire(struct store_be *be, int64_t now_ms, int limit, int *n_out, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	*n_out = 0;
	pg_arg_i64(&a, now_ms);
	pg_arg_i64(&a, limit);
	if (pg_be_cmd(be, "session expire",
	              "DELETE FROM ui_sessions WHERE id_sha256 IN (SELECT id_sha256 FROM ui_sessions"
	              " WHERE expires_unix_ms <= $1 LIMIT $2)",
	              &a, &changed, err) < 0)
		return -1;
	*n_out = (int)changed;
	return 0;
}
