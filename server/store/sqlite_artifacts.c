/* SQLite backend: artifact rows, the blob index and their retention
 * (the blobs themselves are files: server/store/blob.c). */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sq_sql sq_artifacts_sql[] = {
    {SQ_BLOB_INSERT, "INSERT OR IGNORE INTO blobs(sha256, size, created_unix_ms) VALUES(?1, ?2, ?3)"},
    {SQ_ARTIFACT_UPSERT, "INSERT INTO artifacts(job_id, name, sha256, size, mode) VALUES(?1, ?2, ?3, ?4, ?5)"
                         " ON CONFLICT(job_id, name) DO UPDATE SET sha256 = excluded.sha256,"
                         " size = excluded.size, mode = excluded.mode"},
    {SQ_ARTIFACT_LIST, "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = ?1 ORDER BY name"},
    {SQ_ARTIFACT_GET, "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = ?1 AND name = ?2"},
    /* a release's files are its pipeline's artifacts: those stay */
    {SQ_RET_ART_JOBS, "SELECT j.id FROM jobs j WHERE j.finished_unix_ms < ?1"
                      " AND j.artifacts_expired_unix_ms IS NULL"
                      " AND j.state IN ('success', 'failed', 'canceled', 'error')"
                      " AND NOT EXISTS (SELECT 1 FROM releases x WHERE x.pipeline_id = j.pipeline_id)"
                      " ORDER BY j.finished_unix_ms LIMIT ?2"},
    {SQ_RET_ART_DELETE, "DELETE FROM artifacts WHERE job_id = ?1"},
    {SQ_RET_ART_MARK, "UPDATE jobs SET artifacts_expired_unix_ms = ?2 WHERE id = ?1"},
    {SQ_RET_BLOB_UNREF, "SELECT b.sha256 FROM blobs b WHERE NOT EXISTS"
                        " (SELECT 1 FROM artifacts a WHERE a.sha256 = b.sha256) LIMIT ?1"},
    {SQ_RET_BLOB_DELETE, "DELETE FROM blobs WHERE sha256 = ?1"
                         " AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = ?1)"},
    {SQ_RET_BLOB_EXISTS, "SELECT count(*) FROM blobs WHERE sha256 = ?1"},
};
const size_t sq_artifacts_sql_n = sizeof(sq_artifacts_sql) / sizeof(sq_artifacts_sql[0]);

int sq_artifact_add(struct store_be *be, int64_t job_id, int attempt, const char *name,
                    const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	if (sq_job_check_attempt(be, job_id, attempt, &js, err) < 0)
		goto fail;
	s = sq_stmt(be, SQ_BLOB_INSERT);
	sq_bind_text(s, 1, sha256_hex);
	sq_bind_i64(s, 2, size);
	sq_bind_i64(s, 3, now_ms);
	if (sq_exec(be, s, "blob insert", err) < 0)
		goto fail;
	s = sq_stmt(be, SQ_ARTIFACT_UPSERT);
	sq_bind_i64(s, 1, job_id);
	sq_bind_text(s, 2, name);
	sq_bind_text(s, 3, sha256_hex);
	sq_bind_i64(s, 4, size);
	sq_bind_i64(s, 5, mode);
	if (sq_exec(be, s, "artifact insert", err) < 0)
		goto fail;
	if (sq_commit(be, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_artifact_row_read(sqlite3_stmt *s, void *row)
{
	struct artifact_row *a = row;

	a->name = sq_col_dup_empty(s, 0);
	snprintf(a->sha256, sizeof(a->sha256), "%s", (const char *)sqlite3_column_text(s, 1));
	a->size = sqlite3_column_int64(s, 2);
	a->mode = sqlite3_column_int(s, 3);
}

int sq_artifact_list(struct store_be *be, int64_t job_id, struct artifact_row **out, size_t *n_out,
                     struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_ARTIFACT_LIST);
	sq_bind_i64(s, 1, job_id);
	rc = sq_rows(be, s, "artifact list", sizeof(struct artifact_row), sq_artifact_row_read, &rows, &n,
	             err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		artifact_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_artifact_get(struct store_be *be, int64_t job_id, const char *name, struct artifact_row *out,
                    struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_ARTIFACT_GET);
	sq_bind_i64(s, 1, job_id);
	sq_bind_text(s, 2, name);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		sq_artifact_row_read(s, out);
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld has no artifact named that", (long long)job_id);
	return err_set(err, ERR_SYS, "artifact get failed");
}

int sq_artifact_expire(struct store_be *be, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                       struct err *err)
{
	int64_t *ids = xcalloc((size_t)limit, sizeof(*ids));
	int n = 0, rc = -1;
	sqlite3_stmt *s;

	*n_out = 0;
	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	if (sq_ret_jobs(be, SQ_RET_ART_JOBS, before_ms, limit, ids, NULL, NULL, &n, err) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		s = sq_stmt(be, SQ_RET_ART_DELETE);
		sq_bind_i64(s, 1, ids[i]);
		if (sq_exec(be, s, "artifact delete", err) < 0)
			goto fail;
		s = sq_stmt(be, SQ_RET_ART_MARK);
		sq_bind_i64(s, 1, ids[i]);
		sq_bind_i64(s, 2, now_ms);
		if (sq_exec(be, s, "artifact mark", err) < 0)
			goto fail;
	}
	if (sq_commit(be, err) < 0)
		goto fail;
	*n_out = n;
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	free(ids);
	return rc;
}

int sq_blob_collect(struct store_be *be, int limit, struct strv *shas_out, struct err *err)
{
	struct strv found = {0};
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	s = sq_stmt(be, SQ_RET_BLOB_UNREF);
	sq_bind_i64(s, 1, limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		strv_push(&found, (const char *)sqlite3_column_text(s, 0));
	sq_done(s);
	if (step != SQLITE_DONE) {
		sq_fail(be, err, step, "blob select");
		goto fail;
	}
	for (size_t i = 0; i < found.n; i++) {
		s = sq_stmt(be, SQ_RET_BLOB_DELETE);
		sq_bind_text(s, 1, found.v[i]);
		if (sq_exec(be, s, "blob delete", err) < 0)
			goto fail;
	}
	if (sq_commit(be, err) < 0)
		goto fail;
	for (size_t i = 0; i < found.n; i++)
		strv_push(shas_out, found.v[i]);
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	strv_release(&found);
	return rc;
}

int sq_blob_exists(struct store_be *be, const char *sha256_hex, int *exists_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_RET_BLOB_EXISTS);
	sq_bind_text(s, 1, sha256_hex);
	rc = sq_scalar(be, s, "blob exists", &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc == 0)
		*exists_out = n > 0;
	return rc;
}
