/* PostgreSQL: artifacts, the blob rows behind them (the bytes stay in the
 * blob directory, server/store/blob.c) and their retention. */
#include "server/store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_artifact_add(struct store_be *be, int64_t job_id, int attempt, const char *name,
                    const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err)
{
	struct store_tx *tx = NULL;
	struct job_state_row js = {0};
	struct pg_args a = {0}, b = {0};
	int rc = -1;

	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	if (pg_job_check_attempt(tx, job_id, attempt, &js, err) < 0)
		goto out;
	pg_arg_text(&a, sha256_hex);
	pg_arg_i64(&a, size);
	pg_arg_i64(&a, now_ms);
	if (pg_cmd(tx->conn, "blob insert",
	           "INSERT INTO blobs(sha256, size, created_unix_ms) VALUES($1, $2, $3)"
	           " ON CONFLICT(sha256) DO UPDATE SET size = blobs.size",
	           &a, NULL, err) < 0)
		goto out;
	pg_arg_i64(&b, job_id);
	pg_arg_text(&b, name);
	pg_arg_text(&b, sha256_hex);
	pg_arg_i64(&b, size);
	pg_arg_i64(&b, mode);
	if (pg_cmd(tx->conn, "artifact insert",
	           "INSERT INTO artifacts(job_id, name, sha256, size, mode) VALUES($1, $2, $3, $4, $5)"
	           " ON CONFLICT(job_id, name) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
	           " mode = excluded.mode",
	           &b, NULL, err) < 0)
		goto out;
	rc = pg_tx_commit(tx, err);
	tx = NULL;
out:
	pg_tx_rollback(tx);
	job_state_row_release(&js);
	return rc;
}

static void pg_artifact_row_read(const PGresult *r, int i, struct artifact_row *out)
{
	out->name = pg_dup0(r, i, 0);
	snprintf(out->sha256, sizeof(out->sha256), "%s", PQgetvalue(r, i, 1));
	out->size = pg_i64(r, i, 2);
	out->mode = pg_int(r, i, 3);
}

int pg_artifact_list(struct store_be *be, int64_t job_id, struct artifact_row **out, size_t *n_out,
                     struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, job_id);
	r = pg_be_exec(
	    be, "artifact list",
	    "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = $1 ORDER BY name COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_artifact_row_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_artifact_get(struct store_be *be, int64_t job_id, const char *name, struct artifact_row *out,
                    struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, job_id);
	pg_arg_text(&a, name);
	r = pg_be_exec(be, "artifact get",
	               "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = $1 AND name = $2", &a,
	               err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "job %lld has no artifact named that", (long long)job_id);
	}
	pg_artifact_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

/* A release's files are its pipeline's artifacts: those stay. */
int pg_artifact_expire(struct store_be *be, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                       struct err *err)
{
	struct store_tx *tx = NULL;
	struct pg_args a = {0};
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	*n_out = 0;
	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	pg_arg_i64(&a, before_ms);
	pg_arg_i64(&a, limit);
	if (pg_ids(tx->conn, "retention select",
	           "SELECT j.id FROM jobs j WHERE j.finished_unix_ms < $1 AND j.artifacts_expired_unix_ms IS "
	           "NULL"
	           " AND j.state IN ('success', 'failed', 'canceled', 'error')"
	           " AND NOT EXISTS (SELECT 1 FROM releases x WHERE x.pipeline_id = j.pipeline_id)"
	           " ORDER BY j.finished_unix_ms, j.id LIMIT $2 FOR UPDATE SKIP LOCKED",
	           &a, &ids, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		memset(&a, 0, sizeof(a));
		pg_arg_i64(&a, ids[i]);
		if (pg_cmd(tx->conn, "artifact delete", "DELETE FROM artifacts WHERE job_id = $1", &a, NULL,
		           err) < 0)
			goto out;
		pg_arg_i64(&a, now_ms);
		if (pg_cmd(tx->conn, "artifact mark",
		           "UPDATE jobs SET artifacts_expired_unix_ms = $2 WHERE id = $1", &a, NULL, err) < 0)
			goto out;
	}
	rc = pg_tx_commit(tx, err);
	tx = NULL;
	if (rc == 0)
		*n_out = (int)n;
out:
	pg_tx_rollback(tx);
	free(ids);
	return rc;
}

/* One statement: the rows go only while no artifact names them. An
 * artifact_add in flight holds its blob row locked (its upsert), and
 * SKIP LOCKED passes over it. */
int pg_blob_collect(struct store_be *be, int limit, struct strv *shas_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, limit);
	r = pg_be_exec(
	    be, "blob collect",
	    "DELETE FROM blobs WHERE sha256 IN (SELECT b.sha256 FROM blobs b WHERE NOT EXISTS"
	    " (SELECT 1 FROM artifacts a WHERE a.sha256 = b.sha256) LIMIT $1 FOR UPDATE SKIP LOCKED)"
	    " AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = blobs.sha256) RETURNING sha256",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		strv_push(shas_out, PQgetvalue(r, i, 0));
	PQclear(r);
	return 0;
}

int pg_blob_exists(struct store_be *be, const char *sha256_hex, int *exists_out, struct err *err)
{
	struct pg_args a = {0};
	int64_t n = 0;

	pg_arg_text(&a, sha256_hex);
	if (pg_be_scalar(be, "blob exists", "SELECT count(*) FROM blobs WHERE sha256 = $1", &a, &n, err) < 0)
		return -1;
	*exists_out = n > 0;
	return 0;
}
