/* SQLite backend: boards, deploy plans and what each board of a deploy job
 * went through. */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_COLS                                                                                             \
	"j.id, j.pipeline_id, j.name, j.target, j.state, j.attempt, j.max_attempts, j.exit_code, a.name,"    \
	" j.message, j.retry_of, j.spec, j.cancel_requested, j.lease_until_unix_ms, j.log_bytes,"            \
	" j.log_truncated, j.created_unix_ms, j.started_unix_ms, j.finished_unix_ms, r.name, r.url, p.ref,"  \
	" p.commit_sha, j.kind, j.labels FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id"               \
	" JOIN repos r ON r.id = p.repo_id"                                                                  \
	" LEFT JOIN agents a ON a.id = j.agent_id "

const struct sq_sql sq_deploys_sql[] = {
    /* boards and deployments */
    {SQ_DEPLOY_PLAN_INSERT, "INSERT INTO deploy_plans(pipeline_id, grp, spec, labels, auto, approve) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
    {SQ_TX_DEPLOY_PLANS_PENDING,
     "SELECT d.grp, d.spec, d.labels, d.approve FROM deploy_plans d WHERE d.pipeline_id = ?1"
     " AND d.auto = 1 AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.pipeline_id = d.pipeline_id"
     " AND x.kind = 'deploy' AND x.target = d.grp) ORDER BY d.grp"},
    {SQ_DEPLOY_PLAN_GET, "SELECT spec, labels FROM deploy_plans WHERE pipeline_id = ?1 AND grp = ?2"},
    {SQ_BOARD_INSERT, "INSERT INTO boards(name, host, port, user, arch, grp, labels, host_key, private_key,"
                      " created_unix_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
    {SQ_BOARD_DELETE, "DELETE FROM boards WHERE name = ?1"},
    {SQ_BOARD_LIST, "SELECT id, name, host, port, user, arch, grp, labels, host_key,"
                    " CASE WHEN ?2 THEN private_key END, current_release, created_unix_ms FROM boards"
                    " WHERE ?1 IS NULL OR grp = ?1 ORDER BY name"},
    {SQ_DEPLOY_ACTIVE, "SELECT count(*) FROM jobs WHERE kind = 'deploy' AND target = ?1"
                       " AND state IN ('queued', 'running')"},
    {SQ_DEPLOY_LAST, "SELECT id FROM jobs WHERE kind = 'deploy' AND name = 'deploy' AND target = ?1"
                     " ORDER BY id DESC LIMIT 1"},
    {SQ_DEPLOY_REPORT,
     "INSERT INTO deployment_boards(job_id, board, attempt, release, previous, current, state,"
     " message, bytes_sent, files_uploaded, files_skipped, restart_exit, restart_output,"
     " health_exit, health_output, started_unix_ms, updated_unix_ms, duration_ms)"
     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
     " ON CONFLICT(job_id, board) DO UPDATE SET attempt = excluded.attempt,"
     " release = excluded.release, previous = excluded.previous, current = excluded.current,"
     " state = excluded.state, message = excluded.message, bytes_sent = excluded.bytes_sent,"
     " files_uploaded = excluded.files_uploaded, files_skipped = excluded.files_skipped,"
     " restart_exit = excluded.restart_exit, restart_output = excluded.restart_output,"
     " health_exit = excluded.health_exit, health_output = excluded.health_output,"
     " started_unix_ms = excluded.started_unix_ms, updated_unix_ms = excluded.updated_unix_ms,"
     " duration_ms = excluded.duration_ms"},
    {SQ_DEPLOY_BOARD_CURRENT, "UPDATE boards SET current_release = ?2 WHERE name = ?1"},
    {SQ_DEPLOY_BOARDS,
     "SELECT board, attempt, release, previous, current, state, message, bytes_sent,"
     " files_uploaded, files_skipped, restart_exit, restart_output, health_exit, health_output,"
     " started_unix_ms, updated_unix_ms, duration_ms FROM deployment_boards WHERE job_id = ?1"
     " ORDER BY board"},
    {SQ_DEPLOY_LIST, "SELECT " JOB_COLS "WHERE j.kind = 'deploy' AND (?2 IS NULL OR j.target = ?2)"
                     " ORDER BY j.id DESC LIMIT ?1"},
    {SQ_DEPLOY_COUNTS,
     "SELECT count(*), coalesce(sum(state = 'healthy'), 0), coalesce(sum(state = 'failed'), 0),"
     " coalesce(sum(state = 'rolled_back'), 0), coalesce(sum(state = 'skipped'), 0),"
     " coalesce(sum(state = 'refused'), 0) FROM deployment_boards WHERE job_id = ?1"},
    {SQ_DEPLOY_PREVIOUS,
     "SELECT current FROM deployment_boards WHERE board = ?1 AND state = 'healthy'"
     " AND current <> '' AND current <> ?2 ORDER BY updated_unix_ms DESC, job_id DESC LIMIT 1"},
    {SQ_BOARD_DEPLOYS,
     "SELECT " SQ_JOB_LIST ", d.board, d.attempt, d.release, d.previous, d.current, d.state,"
     " d.message, d.bytes_sent, d.files_uploaded, d.files_skipped, d.restart_exit, d.restart_output,"
     " d.health_exit, d.health_output, d.started_unix_ms, d.updated_unix_ms, d.duration_ms"
     " FROM deployment_boards d JOIN jobs j ON j.id = d.job_id JOIN pipelines p ON p.id = j.pipeline_id"
     " JOIN repos r ON r.id = p.repo_id LEFT JOIN agents a ON a.id = j.agent_id"
     " WHERE d.board = ?1 ORDER BY j.id DESC LIMIT ?2"},
};
const size_t sq_deploys_sql_n = sizeof(sq_deploys_sql) / sizeof(sq_deploys_sql[0]);

int sq_board_add(struct store_be *be, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                 struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_BOARD_INSERT);
	sq_bind_text(s, 1, in->name);
	sq_bind_text(s, 2, in->host);
	sq_bind_i64(s, 3, in->port);
	sq_bind_text(s, 4, in->user);
	sq_bind_text(s, 5, in->arch);
	sq_bind_text(s, 6, in->group);
	sq_bind_text(s, 7, in->labels ? in->labels : "");
	sq_bind_text(s, 8, in->host_key);
	sq_bind_text(s, 9, in->private_key);
	sq_bind_i64(s, 10, now_ms);
	rc = sq_exec(be, s, "board add", err);
	if (rc < 0 && err && err->code == ERR_CONFLICT)
		err_set(err, ERR_CONFLICT, "board %s exists already", in->name);
	if (rc == 0 && id_out)
		*id_out = sqlite3_last_insert_rowid(be->db);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_board_delete(struct store_be *be, const char *name, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_BOARD_DELETE);
	sq_bind_text(s, 1, name);
	rc = sq_exec(be, s, "board delete", err);
	if (rc == 0 && sqlite3_changes(be->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "no board named %s", name);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_board_row_read(sqlite3_stmt *s, void *row)
{
	struct board_row *b = row;

	b->id = sqlite3_column_int64(s, 0);
	b->name = sq_col_dup_empty(s, 1);
	b->host = sq_col_dup_empty(s, 2);
	b->port = sqlite3_column_int(s, 3);
	b->user = sq_col_dup_empty(s, 4);
	b->arch = sq_col_dup_empty(s, 5);
	b->group = sq_col_dup_empty(s, 6);
	b->labels = sq_col_dup_empty(s, 7);
	b->host_key = sq_col_dup_empty(s, 8);
	b->private_key = sq_col_dup(s, 9);
	b->current_release = sq_col_dup(s, 10);
	b->created_ms = sqlite3_column_int64(s, 11);
}

int sq_board_list(struct store_be *be, const char *group, int with_keys, struct board_row **out,
                  size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_BOARD_LIST);
	sq_bind_text(s, 1, group);
	sq_bind_i64(s, 2, with_keys ? 1 : 0);
	rc = sq_rows(be, s, "board list", sizeof(struct board_row), sq_board_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		board_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_deploy_plan_get(struct store_be *be, int64_t pipeline_id, const char *group, char **spec_out,
                       char **labels_out, struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_DEPLOY_PLAN_GET);
	sq_bind_i64(s, 1, pipeline_id);
	sq_bind_text(s, 2, group);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*spec_out = sq_col_dup_empty(s, 0);
		*labels_out = sq_col_dup_empty(s, 1);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "pipeline %lld has no deploy entry for group %s",
		        (long long)pipeline_id, group);
	} else {
		sq_fail(be, err, step, "deploy plan");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_deploy_last(struct store_be *be, const char *group, int64_t *job_id_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_DEPLOY_LAST);
	sq_bind_text(s, 1, group);
	rc = sq_scalar(be, s, "last deploy", job_id_out, err);
	if (rc < 0 && err && err->code == ERR_NOTFOUND)
		err_set(err, ERR_NOTFOUND, "group %s was never deployed", group);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_deploy_report(struct store_be *be, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                     struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	if (sq_job_check_attempt(be, job_id, r->attempt, &js, err) < 0)
		goto fail;
	s = sq_stmt(be, SQ_DEPLOY_REPORT);
	sq_bind_i64(s, 1, job_id);
	sq_bind_text(s, 2, r->board);
	sq_bind_i64(s, 3, r->attempt);
	sq_bind_text(s, 4, r->release ? r->release : "");
	sq_bind_text(s, 5, r->previous ? r->previous : "");
	sq_bind_text(s, 6, r->current ? r->current : "");
	sq_bind_text(s, 7, r->state);
	sq_bind_text(s, 8, r->message ? r->message : "");
	sq_bind_i64(s, 9, r->bytes_sent);
	sq_bind_i64(s, 10, r->files_uploaded);
	sq_bind_i64(s, 11, r->files_skipped);
	sq_bind_i64(s, 12, r->restart_exit);
	sq_bind_text(s, 13, r->restart_output ? r->restart_output : "");
	sq_bind_i64(s, 14, r->health_exit);
	sq_bind_text(s, 15, r->health_output ? r->health_output : "");
	sq_bind_i64(s, 16, r->started_ms);
	sq_bind_i64(s, 17, now_ms);
	sq_bind_i64(s, 18, r->duration_ms);
	if (sq_exec(be, s, "deploy report", err) < 0)
		goto fail;
	if (r->current && r->current[0] &&
	    (strcmp(r->state, "healthy") == 0 || strcmp(r->state, "rolled_back") == 0 ||
	     strcmp(r->state, "failed") == 0)) {
		s = sq_stmt(be, SQ_DEPLOY_BOARD_CURRENT);
		sq_bind_text(s, 1, r->board);
		sq_bind_text(s, 2, r->current);
		if (sq_exec(be, s, "board current", err) < 0)
			goto fail;
	}
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

/* A deployment_boards row from column off on. */
static void sq_deploy_board_read(sqlite3_stmt *s, int off, struct deploy_board_row *r)
{
	r->board = sq_col_dup_empty(s, off + 0);
	r->attempt = sqlite3_column_int(s, off + 1);
	r->release = sq_col_dup_empty(s, off + 2);
	r->previous = sq_col_dup_empty(s, off + 3);
	r->current = sq_col_dup_empty(s, off + 4);
	r->state = sq_col_dup_empty(s, off + 5);
	r->message = sq_col_dup_empty(s, off + 6);
	r->bytes_sent = sqlite3_column_int64(s, off + 7);
	r->files_uploaded = sqlite3_column_int(s, off + 8);
	r->files_skipped = sqlite3_column_int(s, off + 9);
	r->restart_exit = sqlite3_column_int(s, off + 10);
	r->restart_output = sq_col_dup_empty(s, off + 11);
	r->health_exit = sqlite3_column_int(s, off + 12);
	r->health_output = sq_col_dup_empty(s, off + 13);
	r->started_ms = sqlite3_column_int64(s, off + 14);
	r->updated_ms = sqlite3_column_int64(s, off + 15);
	r->duration_ms = sqlite3_column_int64(s, off + 16);
}

static void sq_deploy_board_row_read(sqlite3_stmt *s, void *row)
{
	sq_deploy_board_read(s, 0, row);
}

/* A job's columns, then its deployment_boards row. */
static void sq_board_deploy_row_read(sqlite3_stmt *s, void *row)
{
	struct board_deploy_row *r = row;

	sq_job_row_read(s, &r->job);
	sq_deploy_board_read(s, SQ_JOB_NCOLS, &r->b);
}

int sq_board_deploys(struct store_be *be, const char *board, int limit, struct board_deploy_row **out,
                     size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_BOARD_DEPLOYS);
	sq_bind_text(s, 1, board);
	sq_bind_i64(s, 2, limit);
	rc = sq_rows(be, s, "board deploys", sizeof(struct board_deploy_row), sq_board_deploy_row_read, &rows,
	             &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		board_deploy_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_deploy_boards(struct store_be *be, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                     struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_DEPLOY_BOARDS);
	sq_bind_i64(s, 1, job_id);
	rc = sq_rows(be, s, "deploy boards", sizeof(struct deploy_board_row), sq_deploy_board_row_read, &rows,
	             &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		deploy_board_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_board_previous_release(struct store_be *be, const char *board, const char *current, char **out,
                              struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_DEPLOY_PREVIOUS);
	sq_bind_text(s, 1, board);
	sq_bind_text(s, 2, current ? current : "");
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = sq_col_dup_empty(s, 0);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "board %s was never healthy on another release", board);
	} else {
		sq_fail(be, err, step, "previous release");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_deployment_list(struct store_be *be, const char *group, int limit, struct deployment_row **out,
                       size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct deployment_row *rows;
	void *got;
	size_t n;
	int step = SQLITE_DONE;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_DEPLOY_LIST);
	sq_bind_i64(s, 1, limit);
	sq_bind_text(s, 2, group);
	/* the job row is the deployment row's first member */
	if (sq_rows(be, s, "deployment list", sizeof(*rows), sq_job_row_read, &got, &n, err) < 0) {
		pthread_mutex_unlock(&be->mu);
		deployment_rows_free(got, n);
		return -1;
	}
	rows = got;
	for (size_t i = 0; step == SQLITE_DONE && i < n; i++) {
		s = sq_stmt(be, SQ_DEPLOY_COUNTS);
		sq_bind_i64(s, 1, rows[i].job.id);
		if ((step = sqlite3_step(s)) == SQLITE_ROW) {
			rows[i].n_boards = sqlite3_column_int(s, 0);
			rows[i].n_healthy = sqlite3_column_int(s, 1);
			rows[i].n_failed = sqlite3_column_int(s, 2);
			rows[i].n_rolled_back = sqlite3_column_int(s, 3);
			rows[i].n_skipped = sqlite3_column_int(s, 4);
			rows[i].n_refused = sqlite3_column_int(s, 5);
			step = SQLITE_DONE;
		}
		sq_done(s);
	}
	if (step != SQLITE_DONE)
		sq_fail(be, err, step, "deployment list");
	pthread_mutex_unlock(&be->mu);
	if (step != SQLITE_DONE) {
		deployment_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- transaction primitives ---- */

int sq_tx_deploy_plan_insert(struct store_tx *tx, int64_t pipeline_id, const struct deploy_plan_new *d,
                             struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_DEPLOY_PLAN_INSERT);

	sq_bind_i64(s, 1, pipeline_id);
	sq_bind_text(s, 2, d->group);
	sq_bind_text(s, 3, d->spec);
	sq_bind_text(s, 4, d->labels ? d->labels : "");
	sq_bind_i64(s, 5, d->auto_deploy ? 1 : 0);
	sq_bind_i64(s, 6, d->approve ? 1 : 0);
	return sq_exec(be, s, "deploy plan insert", err);
}

int sq_tx_deploys_active(struct store_tx *tx, const char *group, int64_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_DEPLOY_ACTIVE);

	sq_bind_text(s, 1, group);
	return sq_scalar(be, s, "active deploys", n_out, err);
}

static void sq_deploy_plan_row_read(sqlite3_stmt *s, void *row)
{
	struct deploy_plan_row *r = row;

	r->group = sq_col_dup_empty(s, 0);
	r->spec = sq_col_dup_empty(s, 1);
	r->labels = sq_col_dup_empty(s, 2);
	r->approve = sqlite3_column_int(s, 3);
}

int sq_tx_deploy_plans_pending(struct store_tx *tx, int64_t pipeline_id, struct deploy_plan_row **out,
                               size_t *n_out, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_DEPLOY_PLANS_PENDING);
	void *rows;
	size_t n;

	sq_bind_i64(s, 1, pipeline_id);
	if (sq_rows(be, s, "pending deploy plans", sizeof(struct deploy_plan_row), sq_deploy_plan_row_read,
	            &rows, &n, err) < 0) {
		deploy_plan_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}
