/* SQLite backend: pipelines and jobs (reads, heartbeats, and the
 * transaction primitives server/sched/jobstate.c makes transitions from). */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_COLS                                                                                             \
	SQ_JOB_LIST " FROM jobs j"                                                                           \
	            " JOIN pipelines p ON p.id = j.pipeline_id"                                              \
	            " JOIN repos r ON r.id = p.repo_id"                                                      \
	            " LEFT JOIN agents a ON a.id = j.agent_id "

#define PIPE_COLS                                                                                            \
	"p.id, p.repo_id, r.name, p.ref, p.commit_sha, p.event, p.delivery, p.state, p.message,"             \
	" p.commit_message, p.author, p.created_unix_ms, p.finished_unix_ms, p.variables FROM pipelines p"   \
	" JOIN repos r ON r.id = p.repo_id "

const struct sq_sql sq_jobs_sql[] = {
    {SQ_PIPE_BY_DELIVERY, "SELECT id FROM pipelines WHERE repo_id = ?1 AND delivery = ?2"},
    {SQ_PIPE_BY_REPO_DELIVERY, "SELECT p.id FROM pipelines p JOIN repos r ON r.id = p.repo_id"
                               " WHERE r.name = ?1 AND p.delivery = ?2"},
    {SQ_PIPE_INSERT, "INSERT INTO pipelines(repo_id, ref, commit_sha, event, delivery, state, message,"
                     " commit_message, author, created_unix_ms, finished_unix_ms, variables)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
    {SQ_JOB_INSERT, "INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, retry_of,"
                    " created_unix_ms, kind, labels, approve)"
                    " VALUES(?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
    {SQ_JOB_APPROVE, "UPDATE jobs SET approved_by = ?2, approved_unix_ms = ?3 WHERE id = ?1"},
    /* NULL filters match everything; ref matches a full ref or a branch or
     * tag name; before pages by id (newest first). */
    {SQ_PIPE_PAGE, "SELECT " PIPE_COLS "WHERE (?2 IS NULL OR r.name = ?2)"
                   " AND (?3 IS NULL OR p.ref = ?3 OR p.ref = 'refs/heads/' || ?3"
                   " OR p.ref = 'refs/tags/' || ?3) AND (?4 IS NULL OR p.state = ?4)"
                   " AND (?5 IS NULL OR p.event = ?5) AND (?6 <= 0 OR p.id < ?6)"
                   " ORDER BY p.id DESC LIMIT ?1"},
    {SQ_JOB_PAGE, "SELECT " JOB_COLS "WHERE (?2 IS NULL OR a.name = ?2) AND (?3 IS NULL OR r.name = ?3)"
                  " AND (?4 IS NULL OR p.ref = ?4) AND (?5 IS NULL OR j.name = ?5)"
                  " AND (?6 IS NULL OR j.target = ?6) AND (?7 IS NULL OR j.state = ?7)"
                  " AND (?8 <= 0 OR j.id < ?8) ORDER BY j.id DESC LIMIT ?1"},
    {SQ_TX_JOB_LOCK, "SELECT id, pipeline_id, kind, name, state, attempt, max_attempts, agent_id,"
                     " lease_until_unix_ms, started_unix_ms, finished_unix_ms, exit_code, message,"
                     " cancel_requested, log_bytes, log_truncated FROM jobs WHERE id = ?1"},
    {SQ_TX_JOB_WRITE, "UPDATE jobs SET state = ?2, attempt = ?3, agent_id = ?4, lease_until_unix_ms = ?5,"
                      " started_unix_ms = ?6, finished_unix_ms = ?7, exit_code = ?8, message = ?9,"
                      " cancel_requested = ?10 WHERE id = ?1"},
    {SQ_TX_PIPE_FACTS, "SELECT p.repo_id, r.name, p.ref, p.commit_sha, r.release_pattern,"
                       " r.status_token <> '' AND r.forge IN ('github', 'gitea', 'gitlab')"
                       " FROM pipelines p JOIN repos r ON r.id = p.repo_id WHERE p.id = ?1"},
    {SQ_PIPE_GET, "SELECT " PIPE_COLS "WHERE p.id = ?1"},
    {SQ_PIPE_LIST, "SELECT " PIPE_COLS "ORDER BY p.id DESC LIMIT ?1"},
    {SQ_PIPE_LIST_REPO, "SELECT " PIPE_COLS "WHERE r.name = ?2 ORDER BY p.id DESC LIMIT ?1"},
    {SQ_PIPE_JOBS, "SELECT " JOB_COLS "WHERE j.pipeline_id = ?1 ORDER BY j.id"},
    {SQ_PIPE_CURRENT_STATES, "SELECT state FROM jobs j WHERE pipeline_id = ?1"
                             " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)"},
    {SQ_PIPE_SET_STATE, "UPDATE pipelines SET state = ?2, finished_unix_ms = ?3 WHERE id = ?1"},
    {SQ_JOB_GET, "SELECT " JOB_COLS "WHERE j.id = ?1"},
    {SQ_JOB_STATE, "SELECT state, attempt, max_attempts, cancel_requested, pipeline_id, log_bytes,"
                   " log_truncated FROM jobs WHERE id = ?1"},
    /* A deploy job of a pipeline that records a release is handed out only
     * once that release is signed (its claim carries the signed manifest);
     * when another pipeline recorded that version it never is (the release
     * thread ends it). */
    {SQ_JOB_QUEUED,
     "SELECT j.id, j.target, j.kind, j.labels, (SELECT r.agent_labels FROM pipelines p"
     " JOIN repos r ON r.id = p.repo_id WHERE p.id = j.pipeline_id), j.pipeline_id, j.name,"
     " j.message, (SELECT message FROM pipelines WHERE id = j.pipeline_id),"
     " (SELECT repo_id FROM pipelines WHERE id = j.pipeline_id) FROM jobs j WHERE j.state = 'queued'"
     " AND NOT EXISTS (SELECT 1 FROM job_needs n WHERE n.job_id = j.id AND NOT EXISTS (SELECT 1 FROM jobs d "
     "WHERE d.pipeline_id = j.pipeline_id AND d.name = n.name AND d.target = n.target AND d.state = "
     "'success' AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.retry_of = d.id)))"
     " AND NOT (j.kind = 'deploy' AND j.name = 'deploy' AND EXISTS (SELECT 1 FROM pipelines p"
     " JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"
     " WHERE p.id = j.pipeline_id AND substr(p.ref, 1, 10) = 'refs/tags/'"
     " AND (x.pipeline_id <> p.id OR x.signature IS NULL)))"
     " AND NOT (j.approve = 1 AND j.approved_unix_ms IS NULL) ORDER BY j.id LIMIT ?1"},
    {SQ_JOB_LEASE, "UPDATE jobs SET lease_until_unix_ms = ?2 WHERE id = ?1"},
    {SQ_JOB_EXPIRED, "SELECT id FROM jobs WHERE state = 'running' AND lease_until_unix_ms < ?1"},
    {SQ_JOB_OWNER, "SELECT coalesce(agent_id, 0) FROM jobs WHERE id = ?1"},
    /* ui reads */
    {SQ_UI_PIPE_LATEST_REFS, "SELECT " PIPE_COLS "WHERE p.id IN (SELECT max(id) FROM pipelines"
                             " GROUP BY repo_id, ref) ORDER BY r.name, p.ref LIMIT ?1"},
    {SQ_UI_PIPE_LATEST_REF,
     "SELECT " PIPE_COLS "WHERE r.name = ?1 AND p.ref = ?2 ORDER BY p.id DESC LIMIT 1"},
    {SQ_NEED_INSERT, "INSERT INTO job_needs(job_id, name, target) VALUES(?1, ?2, ?3)"},
    {SQ_NEEDS_OF_JOB, "SELECT name, target FROM job_needs WHERE job_id = ?1 ORDER BY name, target"},
    {SQ_JOBS_NEEDING, "SELECT j.id FROM jobs s JOIN job_needs n ON n.name = s.name AND n.target = s.target"
                      " JOIN jobs j ON j.id = n.job_id AND j.pipeline_id = s.pipeline_id"
                      " WHERE s.id = ?1 AND j.state = 'queued' ORDER BY j.id"},
    {SQ_PIPE_CURRENT_JOBS, "SELECT id FROM jobs j WHERE pipeline_id = ?1"
                           " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id) ORDER BY id"},
    {SQ_PIPES_SUPERSEDED, "SELECT id FROM pipelines WHERE repo_id = ?1 AND ref = ?2 AND id < ?3"
                          " AND event = 'push' AND state IN ('queued', 'running') ORDER BY id"},
    {SQ_PIPE_SET_MESSAGE, "UPDATE pipelines SET message = ?2 WHERE id = ?1"},
    {SQ_JOB_INPUTS, "SELECT d.id, d.name, d.target, a.name, a.sha256, a.size, a.mode FROM jobs j"
                    " JOIN job_needs n ON n.job_id = j.id JOIN jobs d ON d.pipeline_id = j.pipeline_id"
                    " AND d.name = n.name AND d.target = n.target AND d.state = 'success'"
                    " AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.retry_of = d.id)"
                    " JOIN artifacts a ON a.job_id = d.id WHERE j.id = ?1 ORDER BY d.id, a.name"},
    {SQ_JOBS_UNSUCCEEDED,
     "SELECT count(*) FROM jobs j WHERE pipeline_id = ?1 AND (?2 IS NULL OR kind = ?2)"
     " AND (?3 IS NULL OR name = ?3)"
     " AND state <> 'success' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)"},
};
const size_t sq_jobs_sql_n = sizeof(sq_jobs_sql) / sizeof(sq_jobs_sql[0]);

void sq_job_row_read(sqlite3_stmt *s, void *row)
{
	struct job_row *j = row;

	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(s, 0);
	j->pipeline_id = sqlite3_column_int64(s, 1);
	j->name = sq_col_dup_empty(s, 2);
	j->target = sq_col_dup_empty(s, 3);
	if (jobstate_parse((const char *)sqlite3_column_text(s, 4), &j->state) < 0)
		j->state = JOB_ERROR;
	j->attempt = sqlite3_column_int(s, 5);
	j->max_attempts = sqlite3_column_int(s, 6);
	j->has_exit_code = sqlite3_column_type(s, 7) != SQLITE_NULL;
	j->exit_code = sqlite3_column_int(s, 7);
	j->agent_name = sq_col_dup(s, 8);
	j->message = sq_col_dup_empty(s, 9);
	j->retry_of = sqlite3_column_int64(s, 10);
	j->spec = sq_col_dup_empty(s, 11);
	j->cancel_requested = sqlite3_column_int(s, 12);
	j->lease_until_ms = sqlite3_column_int64(s, 13);
	j->log_bytes = sqlite3_column_int64(s, 14);
	j->log_truncated = sqlite3_column_int(s, 15);
	j->created_ms = sqlite3_column_int64(s, 16);
	j->started_ms = sqlite3_column_int64(s, 17);
	j->finished_ms = sqlite3_column_int64(s, 18);
	j->repo_name = sq_col_dup_empty(s, 19);
	j->repo_url = sq_col_dup_empty(s, 20);
	j->ref = sq_col_dup_empty(s, 21);
	j->commit_sha = sq_col_dup_empty(s, 22);
	j->kind = sq_col_dup_empty(s, 23);
	j->labels = sq_col_dup_empty(s, 24);
	j->approve = sqlite3_column_int(s, 25);
	j->approved_by = sq_col_dup(s, 26);
	j->approved_ms = sqlite3_column_int64(s, 27);
}

static void sq_pipeline_row_read(sqlite3_stmt *s, void *row)
{
	struct pipeline_row *p = row;

	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(s, 0);
	p->repo_id = sqlite3_column_int64(s, 1);
	p->repo_name = sq_col_dup_empty(s, 2);
	p->ref = sq_col_dup_empty(s, 3);
	p->commit_sha = sq_col_dup_empty(s, 4);
	p->event = sq_col_dup_empty(s, 5);
	p->delivery = sq_col_dup(s, 6);
	if (jobstate_parse((const char *)sqlite3_column_text(s, 7), &p->state) < 0)
		p->state = JOB_ERROR;
	p->message = sq_col_dup_empty(s, 8);
	p->commit_message = sq_col_dup_empty(s, 9);
	p->author = sq_col_dup_empty(s, 10);
	p->created_ms = sqlite3_column_int64(s, 11);
	p->finished_ms = sqlite3_column_int64(s, 12);
	p->variables = sq_col_dup_empty(s, 13);
}

int sq_pipeline_by_delivery(struct store_be *be, const char *repo, const char *delivery, int64_t *id_out,
                            struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_PIPE_BY_REPO_DELIVERY);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, delivery);
	rc = sq_scalar(be, s, "delivery", id_out, err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_pipeline_get(struct store_be *be, int64_t id, struct pipeline_row *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_PIPE_GET);
	sq_bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		sq_pipeline_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)id);
	} else {
		sq_fail(be, err, step, "pipeline get");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_pipeline_list(struct store_be *be, const char *repo, int limit, struct pipeline_row **out,
                     size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, repo ? SQ_PIPE_LIST_REPO : SQ_PIPE_LIST);
	sq_bind_i64(s, 1, limit);
	if (repo)
		sq_bind_text(s, 2, repo);
	rc = sq_rows(be, s, "pipeline list", sizeof(struct pipeline_row), sq_pipeline_row_read, &rows, &n,
	             err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		pipeline_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_pipeline_jobs(struct store_be *be, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                     struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_PIPE_JOBS);
	sq_bind_i64(s, 1, pipeline_id);
	rc = sq_rows(be, s, "pipeline jobs", sizeof(struct job_row), sq_job_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		job_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

static int sq_job_get_locked(struct store_be *be, int64_t id, struct job_row *out, struct err *err)
{
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_GET);
	int step;

	sq_bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		sq_job_row_read(s, out);
	sq_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	return sq_fail(be, err, step, "job get");
}

int sq_job_get(struct store_be *be, int64_t id, struct job_row *out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&be->mu);
	rc = sq_job_get_locked(be, id, out, err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_job_state(struct store_be *be, int64_t id, struct job_state_row *out, struct err *err)
{
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_STATE);
	int step;

	memset(out, 0, sizeof(*out));
	sq_bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		if (jobstate_parse((const char *)sqlite3_column_text(s, 0), &out->state) < 0)
			out->state = JOB_ERROR;
		out->attempt = sqlite3_column_int(s, 1);
		out->max_attempts = sqlite3_column_int(s, 2);
		out->cancel_requested = sqlite3_column_int(s, 3);
		out->pipeline_id = sqlite3_column_int64(s, 4);
		out->log_bytes = sqlite3_column_int64(s, 5);
		out->log_truncated = sqlite3_column_int(s, 6);
	}
	sq_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	return sq_fail(be, err, step, "job state");
}

/* The job must be running at exactly this attempt. */
int sq_job_check_attempt(struct store_be *be, int64_t id, int attempt, struct job_state_row *out,
                         struct err *err)
{
	if (sq_job_state(be, id, out, err) < 0)
		return -1;
	if (out->state != JOB_RUNNING || out->attempt != attempt)
		return err_set(err, ERR_CONFLICT, "job %lld is %s at attempt %d, not running at attempt %d",
		               (long long)id, jobstate_name(out->state), out->attempt, attempt);
	return 0;
}

int sq_job_heartbeat(struct store_be *be, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                     int *cancel_out, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sq_job_check_attempt(be, id, attempt, &js, err) < 0)
		goto out;
	s = sq_stmt(be, SQ_JOB_LEASE);
	sq_bind_i64(s, 1, id);
	sq_bind_i64(s, 2, now_ms + lease_ms);
	if (sq_exec(be, s, "job lease", err) < 0)
		goto out;
	*cancel_out = js.cancel_requested;
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_job_owner_check(struct store_be *be, int64_t job_id, int64_t agent_id, struct err *err)
{
	sqlite3_stmt *s;
	int64_t owner = 0;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_JOB_OWNER);
	sq_bind_i64(s, 1, job_id);
	rc = sq_scalar(be, s, "job owner", &owner, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		if (err && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)job_id);
		return -1;
	}
	if (owner == 0 || owner != agent_id)
		return err_set(err, ERR_FORBIDDEN, "job %lld's current attempt was not claimed by this agent",
		               (long long)job_id);
	return 0;
}

int sq_pipeline_latest_refs(struct store_be *be, int limit, struct pipeline_row **out, size_t *n_out,
                            struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_UI_PIPE_LATEST_REFS);
	sq_bind_i64(s, 1, limit);
	rc = sq_rows(be, s, "latest pipelines", sizeof(struct pipeline_row), sq_pipeline_row_read, &rows, &n,
	             err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		pipeline_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_pipeline_latest_ref(struct store_be *be, const char *repo, const char *ref, struct pipeline_row *out,
                           struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_UI_PIPE_LATEST_REF);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, ref);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		sq_pipeline_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no pipeline for that repository and ref");
	} else {
		sq_fail(be, err, step, "latest pipeline");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

/* ---- transaction primitives: pipelines and jobs ---- */

static void sq_bind_ms(sqlite3_stmt *s, int i, int64_t ms)
{
	if (ms == 0)
		sqlite3_bind_null(s, i);
	else
		sq_bind_i64(s, i, ms);
}

int sq_tx_job_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_JOB_LOCK);
	int step;

	memset(out, 0, sizeof(*out));
	sq_bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		out->id = sqlite3_column_int64(s, 0);
		out->pipeline_id = sqlite3_column_int64(s, 1);
		out->kind = sq_col_dup_empty(s, 2);
		out->name = sq_col_dup_empty(s, 3);
		if (jobstate_parse((const char *)sqlite3_column_text(s, 4), &out->state) < 0)
			out->state = JOB_ERROR;
		out->attempt = sqlite3_column_int(s, 5);
		out->max_attempts = sqlite3_column_int(s, 6);
		out->agent_id = sqlite3_column_int64(s, 7);
		out->lease_until_ms = sqlite3_column_int64(s, 8);
		out->started_ms = sqlite3_column_int64(s, 9);
		out->finished_ms = sqlite3_column_int64(s, 10);
		out->has_exit_code = sqlite3_column_type(s, 11) != SQLITE_NULL;
		out->exit_code = sqlite3_column_int(s, 11);
		out->message = sq_col_dup_empty(s, 12);
		out->cancel_requested = sqlite3_column_int(s, 13);
		out->log_bytes = sqlite3_column_int64(s, 14);
		out->log_truncated = sqlite3_column_int(s, 15);
	}
	sq_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	return sq_fail(be, err, step, "job lock");
}

int sq_tx_job_write(struct store_tx *tx, const struct job_state_row *r, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_JOB_WRITE);

	sq_bind_i64(s, 1, r->id);
	sq_bind_text(s, 2, jobstate_name(r->state));
	sq_bind_i64(s, 3, r->attempt);
	sq_bind_ms(s, 4, r->agent_id);
	sq_bind_ms(s, 5, r->lease_until_ms);
	sq_bind_ms(s, 6, r->started_ms);
	sq_bind_ms(s, 7, r->finished_ms);
	if (r->has_exit_code)
		sq_bind_i64(s, 8, r->exit_code);
	else
		sqlite3_bind_null(s, 8);
	sq_bind_text(s, 9, r->message ? r->message : "");
	sq_bind_i64(s, 10, r->cancel_requested);
	return sq_exec(be, s, "job write", err);
}

int sq_tx_job_insert(struct store_tx *tx, const struct job_insert *in, int64_t now_ms, int64_t *id_out,
                     struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_INSERT);

	sq_bind_i64(s, 1, in->pipeline_id);
	sq_bind_text(s, 2, in->name);
	sq_bind_text(s, 3, in->target);
	sq_bind_i64(s, 4, in->max_attempts);
	sq_bind_text(s, 5, in->spec);
	sq_bind_ms(s, 6, in->retry_of);
	sq_bind_i64(s, 7, now_ms);
	sq_bind_text(s, 8, in->kind ? in->kind : "build");
	sq_bind_text(s, 9, in->labels ? in->labels : "");
	sq_bind_i64(s, 10, in->approve ? 1 : 0);
	if (sq_exec(be, s, "job insert", err) < 0)
		return -1;
	*id_out = sqlite3_last_insert_rowid(be->db);
	return 0;
}

int sq_tx_job_approve(struct store_tx *tx, int64_t id, const char *by, int64_t now_ms, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_APPROVE);

	sq_bind_i64(s, 1, id);
	sq_bind_text(s, 2, by);
	sq_bind_i64(s, 3, now_ms);
	return sq_exec(be, s, "job approve", err);
}

int sq_tx_job_get(struct store_tx *tx, int64_t id, struct job_row *out, struct err *err)
{
	return sq_job_get_locked(sq_tx_be(tx), id, out, err);
}

static void sq_job_claimable_read(sqlite3_stmt *s, void *row)
{
	struct job_claimable *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->target = sq_col_dup_empty(s, 1);
	r->kind = sq_col_dup_empty(s, 2);
	r->labels = sq_col_dup_empty(s, 3);
	r->pool = sq_col_dup_empty(s, 4);
	r->pipeline_id = sqlite3_column_int64(s, 5);
	r->name = sq_col_dup_empty(s, 6);
	r->message = sq_col_dup_empty(s, 7);
	r->pipeline_message = sq_col_dup_empty(s, 8);
	r->repo_id = sqlite3_column_int64(s, 9);
}

int sq_tx_jobs_claimable(struct store_tx *tx, int limit, struct job_claimable **out, size_t *n_out,
                         struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_QUEUED);
	void *rows;
	size_t n;

	sq_bind_i64(s, 1, limit);
	if (sq_rows(be, s, "queued jobs", sizeof(struct job_claimable), sq_job_claimable_read, &rows, &n,
	            err) < 0) {
		job_claimables_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_tx_jobs_expired(struct store_tx *tx, int64_t now_ms, int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOB_EXPIRED);

	sq_bind_i64(s, 1, now_ms);
	return sq_ids(be, s, "expired jobs", ids_out, n_out, err);
}

int sq_tx_pipeline_insert(struct store_tx *tx, const struct pipeline_new *p, enum job_state state,
                          int64_t now_ms, int64_t finished_ms, int64_t *id_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_INSERT);

	sq_bind_i64(s, 1, p->repo_id);
	sq_bind_text(s, 2, p->ref);
	sq_bind_text(s, 3, p->commit_sha);
	sq_bind_text(s, 4, p->event);
	sq_bind_text(s, 5, p->delivery);
	sq_bind_text(s, 6, jobstate_name(state));
	sq_bind_text(s, 7, p->error_message ? p->error_message : "");
	sq_bind_text(s, 8, p->commit_message ? p->commit_message : "");
	sq_bind_text(s, 9, p->author ? p->author : "");
	sq_bind_i64(s, 10, now_ms);
	sq_bind_ms(s, 11, finished_ms);
	sq_bind_text(s, 12, p->variables ? p->variables : "");
	if (sq_exec(be, s, "pipeline insert", err) < 0)
		return -1;
	*id_out = sqlite3_last_insert_rowid(be->db);
	return 0;
}

int sq_tx_pipeline_by_delivery(struct store_tx *tx, int64_t repo_id, const char *delivery, int64_t *id_out,
                               struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_BY_DELIVERY);

	sq_bind_i64(s, 1, repo_id);
	sq_bind_text(s, 2, delivery);
	return sq_scalar(be, s, "delivery", id_out, err);
}

int sq_tx_pipeline_facts(struct store_tx *tx, int64_t pipeline_id, struct pipeline_facts *out,
                         struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_PIPE_FACTS);
	int step;

	memset(out, 0, sizeof(*out));
	sq_bind_i64(s, 1, pipeline_id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		out->repo_id = sqlite3_column_int64(s, 0);
		out->repo_name = sq_col_dup_empty(s, 1);
		out->ref = sq_col_dup_empty(s, 2);
		out->commit_sha = sq_col_dup_empty(s, 3);
		out->release_pattern = sq_col_dup_empty(s, 4);
		out->statuses = sqlite3_column_int(s, 5);
	}
	sq_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)pipeline_id);
	return sq_fail(be, err, step, "pipeline facts");
}

int sq_tx_pipeline_states(struct store_tx *tx, int64_t pipeline_id, enum job_state **out, size_t *n_out,
                          struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_CURRENT_STATES);
	enum job_state *states = NULL;
	size_t n = 0;
	int step;

	sq_bind_i64(s, 1, pipeline_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		states = xrealloc(states, (n + 1) * sizeof(*states));
		if (jobstate_parse((const char *)sqlite3_column_text(s, 0), &states[n]) < 0)
			states[n] = JOB_ERROR;
		n++;
	}
	sq_done(s);
	if (step != SQLITE_DONE) {
		free(states);
		return sq_fail(be, err, step, "pipeline states");
	}
	*out = states;
	*n_out = n;
	return 0;
}

int sq_tx_pipeline_set_state(struct store_tx *tx, int64_t pipeline_id, enum job_state state,
                             int64_t finished_ms, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_SET_STATE);

	sq_bind_i64(s, 1, pipeline_id);
	sq_bind_text(s, 2, jobstate_name(state));
	sq_bind_ms(s, 3, finished_ms);
	return sq_exec(be, s, "pipeline state", err);
}

int sq_tx_jobs_unsucceeded(struct store_tx *tx, int64_t pipeline_id, const char *kind, const char *name,
                           int64_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOBS_UNSUCCEEDED);

	sq_bind_i64(s, 1, pipeline_id);
	sq_bind_text(s, 2, kind);
	sq_bind_text(s, 3, name);
	return sq_scalar(be, s, "unsucceeded jobs", n_out, err);
}

int sq_pipeline_page(struct store_be *be, const struct pipeline_filter *f, int limit,
                     struct pipeline_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_PIPE_PAGE);
	sq_bind_i64(s, 1, limit);
	sq_bind_text(s, 2, f->repo);
	sq_bind_text(s, 3, f->ref);
	sq_bind_text(s, 4, f->state);
	sq_bind_text(s, 5, f->event);
	sq_bind_i64(s, 6, f->before_id);
	rc = sq_rows(be, s, "pipeline page", sizeof(struct pipeline_row), sq_pipeline_row_read, &rows, &n,
	             err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		pipeline_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_job_page(struct store_be *be, const struct job_filter *f, int limit, struct job_row **out,
                size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_JOB_PAGE);
	sq_bind_i64(s, 1, limit);
	sq_bind_text(s, 2, f->agent);
	sq_bind_text(s, 3, f->repo);
	sq_bind_text(s, 4, f->ref);
	sq_bind_text(s, 5, f->name);
	sq_bind_text(s, 6, f->target);
	sq_bind_text(s, 7, f->state);
	sq_bind_i64(s, 8, f->before_id);
	rc = sq_rows(be, s, "job page", sizeof(struct job_row), sq_job_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		job_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* One connection under a mutex: nobody else holds a row. */
int sq_tx_job_claim_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err)
{
	if (sq_tx_job_lock(tx, id, out, err) < 0)
		return -1;
	if (out->state != JOB_QUEUED) {
		job_state_row_release(out);
		return err_set(err, ERR_CONFLICT, "job %lld is no longer queued", (long long)id);
	}
	return 0;
}

/* ---- needs: (name, target) pairs a job waits for ---- */

int sq_tx_job_need_insert(struct store_tx *tx, int64_t job_id, const char *name, const char *target,
                          struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_NEED_INSERT);

	sq_bind_i64(s, 1, job_id);
	sq_bind_text(s, 2, name);
	sq_bind_text(s, 3, target);
	return sq_exec(be, s, "job need insert", err);
}

int sq_tx_job_needs(struct store_tx *tx, int64_t job_id, struct strv *names, struct strv *targets,
                    struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_NEEDS_OF_JOB);
	int step;

	sq_bind_i64(s, 1, job_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		strv_push(names, (const char *)sqlite3_column_text(s, 0));
		strv_push(targets, (const char *)sqlite3_column_text(s, 1));
	}
	sq_done(s);
	if (step != SQLITE_DONE)
		return sq_fail(be, err, step, "job needs");
	return 0;
}

int sq_tx_jobs_needing(struct store_tx *tx, int64_t job_id, int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_JOBS_NEEDING);

	sq_bind_i64(s, 1, job_id);
	return sq_ids(be, s, "jobs needing", ids_out, n_out, err);
}

int sq_tx_pipeline_current_jobs(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_CURRENT_JOBS);

	sq_bind_i64(s, 1, pipeline_id);
	return sq_ids(be, s, "pipeline current jobs", ids_out, n_out, err);
}

int sq_tx_pipelines_superseded(struct store_tx *tx, int64_t repo_id, const char *ref, int64_t before_id,
                               int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPES_SUPERSEDED);

	sq_bind_i64(s, 1, repo_id);
	sq_bind_text(s, 2, ref);
	sq_bind_i64(s, 3, before_id);
	return sq_ids(be, s, "superseded pipelines", ids_out, n_out, err);
}

int sq_tx_pipeline_set_message(struct store_tx *tx, int64_t pipeline_id, const char *message, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_PIPE_SET_MESSAGE);

	sq_bind_i64(s, 1, pipeline_id);
	sq_bind_text(s, 2, message);
	return sq_exec(be, s, "pipeline message", err);
}

static void sq_job_input_read(sqlite3_stmt *s, void *row)
{
	struct job_input *r = row;

	r->job_id = sqlite3_column_int64(s, 0);
	r->job_name = sq_col_dup_empty(s, 1);
	r->job_target = sq_col_dup_empty(s, 2);
	r->a.name = sq_col_dup_empty(s, 3);
	snprintf(r->a.sha256, sizeof(r->a.sha256), "%s", (const char *)sqlite3_column_text(s, 4));
	r->a.size = sqlite3_column_int64(s, 5);
	r->a.mode = sqlite3_column_int(s, 6);
}

int sq_job_inputs(struct store_be *be, int64_t job_id, struct job_input **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_JOB_INPUTS);
	sq_bind_i64(s, 1, job_id);
	rc = sq_rows(be, s, "job inputs", sizeof(struct job_input), sq_job_input_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		job_inputs_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}
