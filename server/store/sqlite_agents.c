/* SQLite backend: agents, their tokens and the server's own tokens, and the
 * figures /metrics shows. */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sq_sql sq_agents_sql[] = {
    {SQ_TOKEN_SET, "INSERT INTO tokens(kind, sha256) VALUES(?1, ?2)"
                   " ON CONFLICT(kind) DO UPDATE SET sha256 = excluded.sha256"},
    {SQ_TOKEN_GET, "SELECT sha256 FROM tokens WHERE kind = ?1"},
    {SQ_AGENT_UPSERT, "INSERT INTO agents(name, labels, last_seen_unix_ms, token_sha256)"
                      " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET labels = excluded.labels,"
                      " last_seen_unix_ms = excluded.last_seen_unix_ms,"
                      " token_sha256 = excluded.token_sha256, removed_unix_ms = NULL"},
    {SQ_AGENT_ID, "SELECT id FROM agents WHERE name = ?1"},
    {SQ_AGENT_LABELS, "SELECT labels FROM agents WHERE id = ?1"},
    {SQ_AGENT_TOUCH, "UPDATE agents SET last_seen_unix_ms = ?2 WHERE id = ?1"},
    {SQ_AGENT_LIST, "SELECT a.id, a.name, a.labels, a.last_seen_unix_ms,"
                    " (SELECT group_concat(r.id, ',') FROM (SELECT j.id FROM jobs j"
                    " WHERE j.agent_id = a.id AND j.state = 'running' ORDER BY j.id) r)"
                    " FROM agents a WHERE a.removed_unix_ms IS NULL ORDER BY a.name"},
    {SQ_AGENT_BY_TOKEN, "SELECT id FROM agents WHERE token_sha256 = ?1 AND removed_unix_ms IS NULL"},
    {SQ_AGENT_REMOVE, "UPDATE agents SET token_sha256 = NULL, removed_unix_ms = ?2 WHERE id = ?1"},
    {SQ_AGENT_RUNNING, "SELECT id FROM jobs WHERE agent_id = ?1 AND state = 'running' ORDER BY id"},
    {SQ_STATS_JOBS, "SELECT state, count(*) FROM jobs GROUP BY state"},
    {SQ_STATS_PIPES, "SELECT count(*) FROM pipelines"},
    {SQ_STATS_LOG, "SELECT coalesce(sum(log_bytes), 0) FROM jobs"},
    {SQ_STATS_BLOBS, "SELECT count(*), coalesce(sum(size), 0) FROM blobs"},
};
const size_t sq_agents_sql_n = sizeof(sq_agents_sql) / sizeof(sq_agents_sql[0]);

int sq_token_set(struct store_be *be, const char *kind, const char *sha256_hex, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_TOKEN_SET);
	sq_bind_text(s, 1, kind);
	sq_bind_text(s, 2, sha256_hex);
	rc = sq_exec(be, s, "token set", err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_token_get(struct store_be *be, const char *kind, char out_hex[65], struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_TOKEN_GET);
	sq_bind_text(s, 1, kind);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		snprintf(out_hex, 65, "%s", (const char *)sqlite3_column_text(s, 0));
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no %s token", kind);
	} else {
		sq_fail(be, err, step, "token get");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_agent_by_token(struct store_be *be, const char *token_sha256_hex, int64_t *id_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_AGENT_BY_TOKEN);
	sq_bind_text(s, 1, token_sha256_hex);
	rc = sq_scalar(be, s, "agent token", id_out, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0 && err && err->code == ERR_NOTFOUND)
		err_set(err, ERR_AUTH, "unknown or revoked agent token");
	return rc;
}

int sq_agent_labels(struct store_be *be, int64_t id, char **labels_out, struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_AGENT_LABELS);
	sq_bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*labels_out = sq_col_dup_empty(s, 0);
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	return err_set(err, ERR_SYS, "agent labels failed");
}

int sq_agent_touch(struct store_be *be, int64_t id, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_AGENT_TOUCH);
	sq_bind_i64(s, 1, id);
	sq_bind_i64(s, 2, now_ms);
	rc = sq_exec(be, s, "agent touch", err);
	if (rc == 0 && sqlite3_changes(be->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_agent_row_read(sqlite3_stmt *s, void *row)
{
	struct agent_row *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->name = sq_col_dup_empty(s, 1);
	r->labels = sq_col_dup_empty(s, 2);
	r->last_seen_ms = sqlite3_column_int64(s, 3);
	agent_row_set_jobs(r, (const char *)sqlite3_column_text(s, 4));
}

int sq_agent_list(struct store_be *be, struct agent_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_AGENT_LIST);
	rc = sq_rows(be, s, "agent list", sizeof(struct agent_row), sq_agent_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		agent_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_stats(struct store_be *be, struct store_stats *out, struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_STATS_JOBS);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		enum job_state js;
		if (jobstate_parse((const char *)sqlite3_column_text(s, 0), &js) == 0)
			out->jobs_by_state[js] = sqlite3_column_int64(s, 1);
	}
	sq_done(s);
	if (step != SQLITE_DONE) {
		sq_fail(be, err, step, "stats");
		goto out;
	}
	if (sq_scalar(be, sq_stmt(be, SQ_STATS_PIPES), "stats", &out->pipelines, err) < 0 ||
	    sq_scalar(be, sq_stmt(be, SQ_STATS_LOG), "stats", &out->log_bytes, err) < 0)
		goto out;
	s = sq_stmt(be, SQ_STATS_BLOBS);
	if ((step = sqlite3_step(s)) == SQLITE_ROW) {
		out->blobs = sqlite3_column_int64(s, 0);
		out->blob_bytes = sqlite3_column_int64(s, 1);
	}
	sq_done(s);
	out->cache_bytes = sqlite3_memory_used();
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

/* ---- transaction primitives ---- */

int sq_tx_jobs_of_agent(struct store_tx *tx, int64_t agent_id, int64_t **ids_out, size_t *n_out,
                        struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_AGENT_RUNNING);

	sq_bind_i64(s, 1, agent_id);
	return sq_ids(be, s, "agent jobs", ids_out, n_out, err);
}

int sq_tx_agent_upsert(struct store_tx *tx, const char *name, const char *labels_json,
                       const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_AGENT_UPSERT);

	sq_bind_text(s, 1, name);
	sq_bind_text(s, 2, labels_json);
	sq_bind_i64(s, 3, now_ms);
	sq_bind_text(s, 4, token_sha256_hex);
	if (sq_exec(be, s, "agent register", err) < 0)
		return -1;
	s = sq_stmt(be, SQ_AGENT_ID);
	sq_bind_text(s, 1, name);
	return sq_scalar(be, s, "agent", id_out, err);
}

int sq_tx_agent_remove(struct store_tx *tx, const char *name, int64_t now_ms, int64_t *id_out,
                       struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_AGENT_ID);

	sq_bind_text(s, 1, name);
	if (sq_scalar(be, s, "agent", id_out, err) < 0) {
		if (err && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "no agent named '%s'", name);
		return -1;
	}
	s = sq_stmt(be, SQ_AGENT_REMOVE);
	sq_bind_i64(s, 1, *id_out);
	sq_bind_i64(s, 2, now_ms);
	return sq_exec(be, s, "agent remove", err);
}
