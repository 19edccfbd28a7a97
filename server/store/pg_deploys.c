/* PostgreSQL: boards, a pipeline's deploy plans, deploy jobs and what each
 * board of one went through. */
#include "server/store/pg_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- primitives ---- */

int pg_tx_deploy_plan_insert(struct store_tx *tx, int64_t pipeline_id, const struct deploy_plan_new *d,
                             struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, d->group);
	pg_arg_text(&a, d->spec);
	pg_arg_text(&a, d->labels ? d->labels : "");
	pg_arg_i64(&a, d->auto_deploy ? 1 : 0);
	pg_arg_i64(&a, d->approve ? 1 : 0);
	return pg_cmd(tx->conn, "deploy plan insert",
	              "INSERT INTO deploy_plans(pipeline_id, grp, spec, labels, auto, approve) VALUES($1, "
	              "$2, $3, $4, $5, $6)",
	              &a, NULL, err);
}

int pg_tx_deploys_active(struct store_tx *tx, const char *group, int64_t *n_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, group);
	return pg_scalar(tx->conn, "active deploys",
	                 "SELECT count(*) FROM jobs WHERE kind = 'deploy' AND target = $1"
	                 " AND state IN ('queued', 'running')",
	                 &a, n_out, err);
}

int pg_tx_deploy_plans_pending(struct store_tx *tx, int64_t pipeline_id, struct deploy_plan_row **out,
                               size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	*out = NULL;
	*n_out = 0;
	pg_arg_i64(&a, pipeline_id);
	r = pg_exec(tx->conn, "pending deploy plans",
	            "SELECT d.grp, d.spec, d.labels, d.approve FROM deploy_plans d WHERE d.pipeline_id = $1 "
	            "AND d.auto = 1"
	            " AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.pipeline_id = d.pipeline_id"
	            " AND x.kind = 'deploy' AND x.target = d.grp) ORDER BY d.grp COLLATE \"C\"",
	            &a, 0, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0)
		*out = xcalloc((size_t)n, sizeof(**out));
	for (int i = 0; i < n; i++) {
		(*out)[i].group = pg_dup0(r, i, 0);
		(*out)[i].spec = pg_dup0(r, i, 1);
		(*out)[i].labels = pg_dup0(r, i, 2);
		(*out)[i].approve = pg_int(r, i, 3);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

/* ---- boards ---- */

int pg_board_add(struct store_be *be, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                 struct err *err)
{
	struct pg_args a = {0};
	int64_t id = 0;

	pg_arg_text(&a, in->name);
	pg_arg_text(&a, in->host);
	pg_arg_i64(&a, in->port);
	pg_arg_text(&a, in->user);
	pg_arg_text(&a, in->arch);
	pg_arg_text(&a, in->group);
	pg_arg_text(&a, in->labels ? in->labels : "");
	pg_arg_text(&a, in->host_key);
	pg_arg_text(&a, in->private_key);
	pg_arg_i64(&a, now_ms);
	if (pg_be_scalar(
	        be, "board add",
	        "INSERT INTO boards(name, host, port, \"user\", arch, grp, labels, host_key, private_key,"
	        " created_unix_ms) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
	        &a, &id, err) < 0) {
		if (err != NULL && err->code == ERR_CONFLICT)
			err_set(err, ERR_CONFLICT, "board %s exists already", in->name);
		return -1;
	}
	if (id_out != NULL)
		*id_out = id;
	return 0;
}

int pg_board_delete(struct store_be *be, const char *name, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_text(&a, name);
	if (pg_be_cmd(be, "board delete", "DELETE FROM boards WHERE name = $1", &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "no board named %s", name);
	return 0;
}

int pg_board_list(struct store_be *be, const char *group, int with_keys, struct board_row **out,
                  size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_text(&a, group);
	pg_arg_i64(&a, with_keys ? 1 : 0);
	r = pg_be_exec(
	    be, "board list",
	    "SELECT id, name, host, port, \"user\", arch, grp, labels, host_key,"
	    " CASE WHEN $2::int <> 0 THEN private_key END, current_release, created_unix_ms FROM boards"
	    " WHERE $1::text IS NULL OR grp = $1 ORDER BY name COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		struct board_row *b = &(*out)[i];
		b->id = pg_i64(r, i, 0);
		b->name = pg_dup0(r, i, 1);
		b->host = pg_dup0(r, i, 2);
		b->port = pg_int(r, i, 3);
		b->user = pg_dup0(r, i, 4);
		b->arch = pg_dup0(r, i, 5);
		b->group = pg_dup0(r, i, 6);
		b->labels = pg_dup0(r, i, 7);
		b->host_key = pg_dup0(r, i, 8);
		b->private_key = pg_dup(r, i, 9);
		b->current_release = pg_dup(r, i, 10);
		b->created_ms = pg_i64(r, i, 11);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

/* ---- deploys ---- */

int pg_deploy_plan_get(struct store_be *be, int64_t pipeline_id, const char *group, char **spec_out,
                       char **labels_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, group);
	r = pg_be_exec(be, "deploy plan",
	               "SELECT spec, labels FROM deploy_plans WHERE pipeline_id = $1 AND grp = $2", &a, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "pipeline %lld has no deploy entry for group %s",
		               (long long)pipeline_id, group);
	}
	*spec_out = pg_dup0(r, 0, 0);
	*labels_out = pg_dup0(r, 0, 1);
	PQclear(r);
	return 0;
}

int pg_deploy_last(struct store_be *be, const char *group, int64_t *job_id_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, group);
	if (pg_be_scalar(be, "last deploy",
	                 "SELECT id FROM jobs WHERE kind = 'deploy' AND name = 'deploy' AND target = $1"
	                 " ORDER BY id DESC LIMIT 1",
	                 &a, job_id_out, err) < 0) {
		if (err != NULL && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "group %s was never deployed", group);
		return -1;
	}
	return 0;
}

int pg_deploy_report(struct store_be *be, int64_t job_id, const struct deploy_board_row *d, int64_t now_ms,
                     struct err *err)
{
	struct store_tx *tx = NULL;
	struct job_state_row js = {0};
	struct pg_args a = {0}, b = {0};
	int rc = -1;

	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	if (pg_job_check_attempt(tx, job_id, d->attempt, &js, err) < 0)
		goto out;
	pg_arg_i64(&a, job_id);
	pg_arg_text(&a, d->board);
	pg_arg_i64(&a, d->attempt);
	pg_arg_text(&a, d->release ? d->release : "");
	pg_arg_text(&a, d->previous ? d->previous : "");
	pg_arg_text(&a, d->current ? d->current : "");
	pg_arg_text(&a, d->state);
	pg_arg_text(&a, d->message ? d->message : "");
	pg_arg_i64(&a, d->bytes_sent);
	pg_arg_i64(&a, d->files_uploaded);
	pg_arg_i64(&a, d->files_skipped);
	pg_arg_i64(&a, d->restart_exit);
	pg_arg_text(&a, d->restart_output ? d->restart_output : "");
	pg_arg_i64(&a, d->health_exit);
	pg_arg_text(&a, d->health_output ? d->health_output : "");
	pg_arg_i64(&a, d->started_ms);
	pg_arg_i64(&a, now_ms);
	pg_arg_i64(&a, d->duration_ms);
	if (pg_cmd(tx->conn, "deploy report",
	           "INSERT INTO deployment_boards(job_id, board, attempt, release, previous, current, state,"
	           " message, bytes_sent, files_uploaded, files_skipped, restart_exit, restart_output,"
	           " health_exit, health_output, started_unix_ms, updated_unix_ms, duration_ms)"
	           " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
	           " ON CONFLICT(job_id, board) DO UPDATE SET attempt = excluded.attempt,"
	           " release = excluded.release, previous = excluded.previous, current = excluded.current,"
	           " state = excluded.state, message = excluded.message, bytes_sent = excluded.bytes_sent,"
	           " files_uploaded = excluded.files_uploaded, files_skipped = excluded.files_skipped,"
	           " restart_exit = excluded.restart_exit, restart_output = excluded.restart_output,"
	           " health_exit = excluded.health_exit, health_output = excluded.health_output,"
	           " started_unix_ms = excluded.started_unix_ms, updated_unix_ms = excluded.updated_unix_ms,"
	           " duration_ms = excluded.duration_ms",
	           &a, NULL, err) < 0)
		goto out;
	/* the release a board runs after the report (a failed one may have
	 * switched back) is recorded on the board */
	if (d->current && d->current[0] &&
	    (strcmp(d->state, "healthy") == 0 || strcmp(d->state, "rolled_back") == 0 ||
	     strcmp(d->state, "failed") == 0)) {
		pg_arg_text(&b, d->board);
		pg_arg_text(&b, d->current);
		if (pg_cmd(tx->conn, "board current",
		           "UPDATE boards SET current_release = $2 WHERE name = $1", &b, NULL, err) < 0)
			goto out;
	}
	rc = pg_tx_commit(tx, err);
	tx = NULL;
out:
	pg_tx_rollback(tx);
	job_state_row_release(&js);
	return rc;
}

int pg_board_previous_release(struct store_be *be, const char *board, const char *current, char **out,
                              struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, board);
	pg_arg_text(&a, current ? current : "");
	r = pg_be_exec(
	    be, "previous release",
	    "SELECT current FROM deployment_boards WHERE board = $1 AND state = 'healthy'"
	    " AND current <> '' AND current <> $2 ORDER BY updated_unix_ms DESC, job_id DESC LIMIT 1",
	    &a, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "board %s was never healthy on another release", board);
	}
	*out = pg_dup0(r, 0, 0);
	PQclear(r);
	return 0;
}

/* A deployment_boards row of result row i from column off on. */
static void pg_deploy_board_read(const PGresult *r, int i, int off, struct deploy_board_row *d)
{
	d->board = pg_dup0(r, i, off + 0);
	d->attempt = pg_int(r, i, off + 1);
	d->release = pg_dup0(r, i, off + 2);
	d->previous = pg_dup0(r, i, off + 3);
	d->current = pg_dup0(r, i, off + 4);
	d->state = pg_dup0(r, i, off + 5);
	d->message = pg_dup0(r, i, off + 6);
	d->bytes_sent = pg_i64(r, i, off + 7);
	d->files_uploaded = pg_int(r, i, off + 8);
	d->files_skipped = pg_int(r, i, off + 9);
	d->restart_exit = pg_int(r, i, off + 10);
	d->restart_output = pg_dup0(r, i, off + 11);
	d->health_exit = pg_int(r, i, off + 12);
	d->health_output = pg_dup0(r, i, off + 13);
	d->started_ms = pg_i64(r, i, off + 14);
	d->updated_ms = pg_i64(r, i, off + 15);
	d->duration_ms = pg_i64(r, i, off + 16);
}

int pg_board_deploys(struct store_be *be, const char *board, int limit, struct board_deploy_row **out,
                     size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_text(&a, board);
	pg_arg_i64(&a, limit);
	r = pg_be_exec(be, "board deploys",
	               "SELECT" PG_JOB_LIST ", d.board, d.attempt, d.release, d.previous, d.current, d.state,"
	               " d.message, d.bytes_sent, d.files_uploaded, d.files_skipped, d.restart_exit,"
	               " d.restart_output, d.health_exit, d.health_output, d.started_unix_ms,"
	               " d.updated_unix_ms, d.duration_ms" PG_JOB_FROM
	               "JOIN deployment_boards d ON d.job_id = j.id WHERE d.board = $1"
	               " ORDER BY j.id DESC LIMIT $2",
	               &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		pg_job_row_read(r, i, &(*out)[i].job);
		pg_deploy_board_read(r, i, PG_JOB_NCOLS, &(*out)[i].b);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_deploy_boards(struct store_be *be, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                     struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, job_id);
	r = pg_be_exec(
	    be, "deploy boards",
	    "SELECT board, attempt, release, previous, current, state, message, bytes_sent,"
	    " files_uploaded, files_skipped, restart_exit, restart_output, health_exit, health_output,"
	    " started_unix_ms, updated_unix_ms, duration_ms FROM deployment_boards WHERE job_id = $1"
	    " ORDER BY board COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_deploy_board_read(r, i, 0, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

/* The deploy jobs with their board counts, in one statement (SQLite asks
 * for the counts of each row apart). */
int pg_deployment_list(struct store_be *be, const char *group, int limit, struct deployment_row **out,
                       size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, limit);
	pg_arg_text(&a, group);
	r = pg_be_exec(
	    be, "deployment list",
	    "SELECT" PG_JOB_LIST ", c.n, c.h, c.f, c.rb, c.s, c.rf" PG_JOB_FROM
	    " LEFT JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE d.state = 'healthy') AS h,"
	    " count(*) FILTER (WHERE d.state = 'failed') AS f,"
	    " count(*) FILTER (WHERE d.state = 'rolled_back') AS rb,"
	    " count(*) FILTER (WHERE d.state = 'skipped') AS s,"
	    " count(*) FILTER (WHERE d.state = 'refused') AS rf"
	    " FROM deployment_boards d WHERE d.job_id = j.id) c ON true"
	    " WHERE j.kind = 'deploy' AND ($2::text IS NULL OR j.target = $2) ORDER BY j.id DESC LIMIT $1",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		struct deployment_row *d = &(*out)[i];
		pg_job_row_read(r, i, &d->job);
		/* the counts follow the job's columns */
		d->n_boards = pg_int(r, i, PG_JOB_NCOLS);
		d->n_healthy = pg_int(r, i, PG_JOB_NCOLS + 1);
		d->n_failed = pg_int(r, i, PG_JOB_NCOLS + 2);
		d->n_rolled_back = pg_int(r, i, PG_JOB_NCOLS + 3);
		d->n_skipped = pg_int(r, i, PG_JOB_NCOLS + 4);
		d->n_refused = pg_int(r, i, PG_JOB_NCOLS + 5);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}
