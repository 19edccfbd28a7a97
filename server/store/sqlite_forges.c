/* SQLite backend: repositories and their forge settings, secrets, the heads
 * the poller saw, and the commit status queue. */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sq_sql sq_forges_sql[] = {
    {SQ_TX_STATUS_QUEUE, "INSERT INTO status_queue(job_id, state, description, next_attempt_unix_ms,"
                         " created_unix_ms) VALUES(?1, ?2, ?3, ?4, ?4)"},
    {SQ_REPO_UPSERT, "INSERT INTO repos(name, url, created_unix_ms) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(name) DO UPDATE SET url = excluded.url"},
    {SQ_REPO_ID, "SELECT id FROM repos WHERE name = ?1"},
    {SQ_REPO_LIST, "SELECT id, name, url FROM repos ORDER BY name"},
    /* forges */
    {SQ_FORGE_REPO_SET,
     "INSERT INTO repos(name, url, created_unix_ms, forge, hook_secret, status_token, api_url,"
     " poll_s, agent_labels) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, ''))"
     " ON CONFLICT(name) DO UPDATE SET"
     " url = excluded.url, forge = excluded.forge, hook_secret = excluded.hook_secret,"
     " status_token = excluded.status_token, api_url = excluded.api_url,"
     " poll_s = excluded.poll_s, agent_labels = coalesce(?9, agent_labels)"},
    {SQ_FORGE_REPO_GET, "SELECT id, name, url, forge, hook_secret, status_token, api_url, poll_s,"
                        " agent_labels FROM repos WHERE name = ?1"},
    {SQ_FORGE_REPO_LIST, "SELECT id, name, url, forge, hook_secret, status_token, api_url, poll_s,"
                         " agent_labels FROM repos ORDER BY name"},
    {SQ_FORGE_SECRET_SET,
     "INSERT INTO repo_secrets(repo_id, name, value, updated_unix_ms, pull_requests)"
     " SELECT id, ?2, ?3, ?4, ?5 FROM repos WHERE name = ?1 AND true"
     " ON CONFLICT(repo_id, name) DO UPDATE SET value = excluded.value,"
     " updated_unix_ms = excluded.updated_unix_ms, pull_requests = excluded.pull_requests"},
    {SQ_FORGE_SECRET_DELETE, "DELETE FROM repo_secrets WHERE name = ?2"
                             " AND repo_id = (SELECT id FROM repos WHERE name = ?1)"},
    {SQ_FORGE_SECRET_LIST, "SELECT s.name, s.value FROM repo_secrets s JOIN repos r ON r.id = s.repo_id"
                           " WHERE r.name = ?1 AND (?2 = 0 OR s.pull_requests = 1) ORDER BY s.name"},
    {SQ_FORGE_HEADS, "SELECT ref, sha FROM poll_heads WHERE repo_id = ?1 ORDER BY ref"},
    {SQ_FORGE_HEAD_SET, "INSERT INTO poll_heads(repo_id, ref, sha) VALUES(?1, ?2, ?3)"
                        " ON CONFLICT(repo_id, ref) DO UPDATE SET sha = excluded.sha"},
    {SQ_FORGE_HEAD_DELETE, "DELETE FROM poll_heads WHERE repo_id = ?1 AND ref = ?2"},
    /* A job's statuses go out in order: a row waits while an older one of
     * its job is still queued (being retried). */
    {SQ_FORGE_STATUS_DUE,
     "SELECT q.id, q.job_id, q.state, q.description, q.attempts, r.forge, r.api_url,"
     " r.status_token, r.url, p.commit_sha, j.target FROM status_queue q"
     " JOIN jobs j ON j.id = q.job_id JOIN pipelines p ON p.id = j.pipeline_id"
     " JOIN repos r ON r.id = p.repo_id WHERE q.gave_up = 0 AND q.next_attempt_unix_ms <= ?1"
     " AND NOT EXISTS (SELECT 1 FROM status_queue o WHERE o.job_id = q.job_id"
     " AND o.gave_up = 0 AND o.id < q.id) ORDER BY q.id LIMIT ?2"},
    {SQ_FORGE_STATUS_DELETE, "DELETE FROM status_queue WHERE id = ?1"},
    {SQ_FORGE_STATUS_RETRY, "UPDATE status_queue SET attempts = ?2, next_attempt_unix_ms = ?3,"
                            " last_error = ?4, gave_up = ?5 WHERE id = ?1"},
    {SQ_FORGE_STATUS_COUNT, "SELECT count(*) FROM status_queue WHERE gave_up = 0"},
    {SQ_FORGE_STATUS_PRUNE, "DELETE FROM status_queue WHERE id IN (SELECT id FROM status_queue"
                            " WHERE gave_up = 1 AND created_unix_ms < ?1 ORDER BY id LIMIT ?2)"},
};
const size_t sq_forges_sql_n = sizeof(sq_forges_sql) / sizeof(sq_forges_sql[0]);

int sq_repo_upsert(struct store_be *be, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                   struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REPO_UPSERT);
	sq_bind_text(s, 1, name);
	sq_bind_text(s, 2, url);
	sq_bind_i64(s, 3, now_ms);
	if (sq_exec(be, s, "repo upsert", err) < 0)
		goto out;
	s = sq_stmt(be, SQ_REPO_ID);
	sq_bind_text(s, 1, name);
	rc = sq_scalar(be, s, "repo", id_out, err);
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_repo_row_read(sqlite3_stmt *s, void *row)
{
	struct repo_row *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->name = sq_col_dup_empty(s, 1);
	r->url = sq_col_dup_empty(s, 2);
}

int sq_repo_list(struct store_be *be, struct repo_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REPO_LIST);
	rc = sq_rows(be, s, "repo list", sizeof(struct repo_row), sq_repo_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		repo_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

static void sq_repo_cfg_read(sqlite3_stmt *s, void *row)
{
	struct repo_cfg *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->name = sq_col_dup_empty(s, 1);
	r->url = sq_col_dup_empty(s, 2);
	r->forge = sq_col_dup_empty(s, 3);
	r->hook_secret = sq_col_dup_empty(s, 4);
	r->status_token = sq_col_dup_empty(s, 5);
	r->api_url = sq_col_dup_empty(s, 6);
	r->poll_s = sqlite3_column_int(s, 7);
	r->agent_labels = sq_col_dup_empty(s, 8);
}

int sq_repo_configure(struct store_be *be, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                      struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_REPO_SET);
	sq_bind_text(s, 1, in->name);
	sq_bind_text(s, 2, in->url);
	sq_bind_i64(s, 3, now_ms);
	sq_bind_text(s, 4, in->forge ? in->forge : "");
	sq_bind_text(s, 5, in->hook_secret ? in->hook_secret : "");
	sq_bind_text(s, 6, in->status_token ? in->status_token : "");
	sq_bind_text(s, 7, in->api_url ? in->api_url : "");
	sq_bind_i64(s, 8, in->poll_s);
	sq_bind_text(s, 9, in->agent_labels); /* NULL keeps the repository's pool */
	if (sq_exec(be, s, "repo configure", err) < 0)
		goto out;
	s = sq_stmt(be, SQ_REPO_ID);
	sq_bind_text(s, 1, in->name);
	rc = sq_scalar(be, s, "repo", id_out, err);
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_repo_cfg_get(struct store_be *be, const char *name, struct repo_cfg *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_REPO_GET);
	sq_bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		sq_repo_cfg_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no repository named '%s'", name);
	} else {
		sq_fail(be, err, step, "repo get");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_repo_cfg_list(struct store_be *be, struct repo_cfg **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_REPO_LIST);
	rc = sq_rows(be, s, "repo list", sizeof(struct repo_cfg), sq_repo_cfg_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		repo_cfgs_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_secret_set(struct store_be *be, const char *repo, const char *name, const char *value,
                  int pull_requests, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_SECRET_SET);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, name);
	sq_bind_text(s, 3, value);
	sq_bind_i64(s, 4, now_ms);
	sq_bind_i64(s, 5, pull_requests != 0);
	if (sq_exec(be, s, "secret set", err) < 0)
		goto out;
	if (sqlite3_changes(be->db) == 0) {
		err_set(err, ERR_NOTFOUND, "no repository named '%s'", repo);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_secret_delete(struct store_be *be, const char *repo, const char *name, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_SECRET_DELETE);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, name);
	if (sq_exec(be, s, "secret delete", err) < 0)
		goto out;
	if (sqlite3_changes(be->db) == 0) {
		err_set(err, ERR_NOTFOUND, "repository '%s' has no secret '%s'", repo, name);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_secret_list(struct store_be *be, const char *repo, int pull_requests_only, struct strv *names,
                   struct strv *values, struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_SECRET_LIST);
	sq_bind_text(s, 1, repo);
	sq_bind_i64(s, 2, pull_requests_only != 0);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(s, 1);
		strv_push(names, (const char *)sqlite3_column_text(s, 0));
		if (values != NULL)
			strv_push(values, v ? (const char *)v : "");
	}
	sq_done(s);
	if (step != SQLITE_DONE) {
		sq_fail(be, err, step, "secret list");
		pthread_mutex_unlock(&be->mu);
		return -1;
	}
	pthread_mutex_unlock(&be->mu);
	return 0;
}

int sq_poll_heads(struct store_be *be, int64_t repo_id, struct strv *refs, struct strv *shas, struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_HEADS);
	sq_bind_i64(s, 1, repo_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		strv_push(refs, (const char *)sqlite3_column_text(s, 0));
		strv_push(shas, (const char *)sqlite3_column_text(s, 1));
	}
	sq_done(s);
	if (step != SQLITE_DONE) {
		sq_fail(be, err, step, "poll heads");
		pthread_mutex_unlock(&be->mu);
		return -1;
	}
	pthread_mutex_unlock(&be->mu);
	return 0;
}

int sq_poll_head_set(struct store_be *be, int64_t repo_id, const char *ref, const char *sha, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, sha ? SQ_FORGE_HEAD_SET : SQ_FORGE_HEAD_DELETE);
	sq_bind_i64(s, 1, repo_id);
	sq_bind_text(s, 2, ref);
	if (sha)
		sq_bind_text(s, 3, sha);
	rc = sq_exec(be, s, "poll head", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_status_row_read(sqlite3_stmt *s, void *row)
{
	struct status_row *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->job_id = sqlite3_column_int64(s, 1);
	r->state = sq_col_dup_empty(s, 2);
	r->description = sq_col_dup_empty(s, 3);
	r->attempts = sqlite3_column_int(s, 4);
	r->forge = sq_col_dup_empty(s, 5);
	r->api_url = sq_col_dup_empty(s, 6);
	r->token = sq_col_dup_empty(s, 7);
	r->repo_url = sq_col_dup_empty(s, 8);
	r->commit_sha = sq_col_dup_empty(s, 9);
	r->target = sq_col_dup_empty(s, 10);
}

int sq_status_due(struct store_be *be, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                  struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_STATUS_DUE);
	sq_bind_i64(s, 1, now_ms);
	sq_bind_i64(s, 2, limit);
	rc = sq_rows(be, s, "status due", sizeof(struct status_row), sq_status_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		status_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_status_sent(struct store_be *be, int64_t id, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_STATUS_DELETE);
	sq_bind_i64(s, 1, id);
	rc = sq_exec(be, s, "status sent", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_status_retry(struct store_be *be, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                    int gave_up, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_STATUS_RETRY);
	sq_bind_i64(s, 1, id);
	sq_bind_i64(s, 2, attempts);
	sq_bind_i64(s, 3, next_ms);
	sq_bind_text(s, 4, last_error ? last_error : "");
	sq_bind_i64(s, 5, gave_up);
	rc = sq_exec(be, s, "status retry", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_status_pending(struct store_be *be, int64_t *n_out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&be->mu);
	rc = sq_scalar(be, sq_stmt(be, SQ_FORGE_STATUS_COUNT), "status count", n_out, err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_status_prune(struct store_be *be, int64_t before_ms, int limit, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_FORGE_STATUS_PRUNE);
	sq_bind_i64(s, 1, before_ms);
	sq_bind_i64(s, 2, limit);
	rc = sq_exec(be, s, "status prune", err);
	*n_out = rc == 0 ? sqlite3_changes(be->db) : 0;
	pthread_mutex_unlock(&be->mu);
	return rc;
}

/* ---- transaction primitives ---- */

int sq_tx_status_queue(struct store_tx *tx, int64_t job_id, const char *state, const char *description,
                       int64_t now_ms, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_STATUS_QUEUE);

	sq_bind_i64(s, 1, job_id);
	sq_bind_text(s, 2, state);
	sq_bind_text(s, 3, description);
	sq_bind_i64(s, 4, now_ms);
	return sq_exec(be, s, "status queue", err);
}
