/* SQLite backend: web UI sessions (the sha256 of the cookie, never the
 * value). */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sq_sql sq_sessions_sql[] = {
    /* web UI sessions */
    {SQ_SESSION_ADD, "INSERT INTO ui_sessions(id_sha256, admin_sha256, created_unix_ms, expires_unix_ms)"
                     " VALUES(?1, ?2, ?3, ?4)"},
    {SQ_SESSION_CHECK, "SELECT count(*) FROM ui_sessions WHERE id_sha256 = ?1 AND admin_sha256 = ?2"
                       " AND expires_unix_ms > ?3"},
    {SQ_SESSION_DELETE, "DELETE FROM ui_sessions WHERE id_sha256 = ?1"},
    {SQ_SESSION_DELETE_ALL, "DELETE FROM ui_sessions"},
    {SQ_SESSION_EXPIRE, "DELETE FROM ui_sessions WHERE id_sha256 IN (SELECT id_sha256 FROM ui_sessions"
                        " WHERE expires_unix_ms <= ?1 LIMIT ?2)"},
};
const size_t sq_sessions_sql_n = sizeof(sq_sessions_sql) / sizeof(sq_sessions_sql[0]);

int sq_session_add(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                   int64_t expires_ms, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SESSION_ADD);
	sq_bind_text(s, 1, id_sha256);
	sq_bind_text(s, 2, admin_sha256);
	sq_bind_i64(s, 3, now_ms);
	sq_bind_i64(s, 4, expires_ms);
	rc = sq_exec(be, s, "session add", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_session_check(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                     struct err *err)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SESSION_CHECK);
	sq_bind_text(s, 1, id_sha256);
	sq_bind_text(s, 2, admin_sha256);
	sq_bind_i64(s, 3, now_ms);
	rc = sq_scalar(be, s, "session", &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc == 0 && n == 0)
		return err_set(err, ERR_AUTH, "no such session");
	return rc;
}

int sq_session_delete(struct store_be *be, const char *id_sha256, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SESSION_DELETE);
	sq_bind_text(s, 1, id_sha256);
	rc = sq_exec(be, s, "session delete", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_session_delete_all(struct store_be *be, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SESSION_DELETE_ALL);
	rc = sq_exec(be, s, "session delete all", err);
	*n_out = rc == 0 ? sqlite3_changes(be->db) : 0;
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_session_expire(struct store_be *be, int64_t now_ms, int limit, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SESSION_EXPIRE);
	sq_bind_i64(s, 1, now_ms);
	sq_bind_i64(s, 2, limit);
	rc = sq_exec(be, s, "session expire", err);
	*n_out = rc == 0 ? sqlite3_changes(be->db) : 0;
	pthread_mutex_unlock(&be->mu);
	return rc;
}
