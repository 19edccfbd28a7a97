/* PostgreSQL: pipelines and jobs. The primitives server/sched/jobstate.c
 * builds each transition from (a job locked FOR UPDATE, the job a claim picks
 * locked FOR UPDATE SKIP LOCKED so two servers never hand out one), and the
 * reads of pipelines and jobs. */
#include "server/store/pg_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- rows ---- */

void pg_job_row_read(const PGresult *r, int i, struct job_row *j)
{
	memset(j, 0, sizeof(*j));
	j->id = pg_i64(r, i, 0);
	j->pipeline_id = pg_i64(r, i, 1);
	j->name = pg_dup0(r, i, 2);
	j->target = pg_dup0(r, i, 3);
	if (jobstate_parse(PQgetvalue(r, i, 4), &j->state) < 0)
		j->state = JOB_ERROR;
	j->attempt = pg_int(r, i, 5);
	j->max_attempts = pg_int(r, i, 6);
	j->has_exit_code = !pg_null(r, i, 7);
	j->exit_code = pg_int(r, i, 7);
	j->agent_name = pg_dup(r, i, 8);
	j->message = pg_dup0(r, i, 9);
	j->retry_of = pg_i64(r, i, 10);
	j->spec = pg_dup0(r, i, 11);
	j->cancel_requested = pg_int(r, i, 12);
	j->lease_until_ms = pg_i64(r, i, 13);
	j->log_bytes = pg_i64(r, i, 14);
	j->log_truncated = pg_int(r, i, 15);
	j->created_ms = pg_i64(r, i, 16);
	j->started_ms = pg_i64(r, i, 17);
	j->finished_ms = pg_i64(r, i, 18);
	j->repo_name = pg_dup0(r, i, 19);
	j->repo_url = pg_dup0(r, i, 20);
	j->ref = pg_dup0(r, i, 21);
	j->commit_sha = pg_dup0(r, i, 22);
	j->kind = pg_dup0(r, i, 23);
	j->labels = pg_dup0(r, i, 24);
	j->approve = pg_int(r, i, 25);
	j->approved_by = pg_dup(r, i, 26);
	j->approved_ms = pg_i64(r, i, 27);
}

void pg_pipeline_row_read(const PGresult *r, int i, struct pipeline_row *p)
{
	memset(p, 0, sizeof(*p));
	p->id = pg_i64(r, i, 0);
	p->repo_id = pg_i64(r, i, 1);
	p->repo_name = pg_dup0(r, i, 2);
	p->ref = pg_dup0(r, i, 3);
	p->commit_sha = pg_dup0(r, i, 4);
	p->event = pg_dup0(r, i, 5);
	p->delivery = pg_dup(r, i, 6);
	if (jobstate_parse(PQgetvalue(r, i, 7), &p->state) < 0)
		p->state = JOB_ERROR;
	p->message = pg_dup0(r, i, 8);
	p->commit_message = pg_dup0(r, i, 9);
	p->author = pg_dup0(r, i, 10);
	p->created_ms = pg_i64(r, i, 11);
	p->finished_ms = pg_i64(r, i, 12);
	p->variables = pg_dup0(r, i, 13);
}

/* Rows of a pipeline query into a fresh array (*out owned, NULL when none). */
static void pg_pipeline_rows(const PGresult *r, struct pipeline_row **out, size_t *n_out)
{
	int n = PQntuples(r);

	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_pipeline_row_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
}

/* ---- job primitives ---- */

/* claim: SKIP LOCKED and only a queued row (else ERR_CONFLICT); otherwise
 * FOR UPDATE, waiting for the row. */
static int pg_job_lock(struct store_tx *tx, int64_t id, int claim, struct job_state_row *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	r = pg_exec(tx->conn, "job lock",
	            claim ? "SELECT id, pipeline_id, kind, name, state, attempt, max_attempts, agent_id,"
	                    " lease_until_unix_ms, started_unix_ms, finished_unix_ms, exit_code, message,"
	                    " cancel_requested, log_bytes, log_truncated FROM jobs WHERE id = $1"
	                    " AND state = 'queued' FOR UPDATE SKIP LOCKED"
	                  : "SELECT id, pipeline_id, kind, name, state, attempt, max_attempts, agent_id,"
	                    " lease_until_unix_ms, started_unix_ms, finished_unix_ms, exit_code, message,"
	                    " cancel_requested, log_bytes, log_truncated FROM jobs WHERE id = $1 FOR UPDATE",
	            &a, 0, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		if (claim)
			return err_set(err, ERR_CONFLICT, "job %lld is taken or no longer queued",
			               (long long)id);
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	}
	memset(out, 0, sizeof(*out));
	out->id = pg_i64(r, 0, 0);
	out->pipeline_id = pg_i64(r, 0, 1);
	out->kind = pg_dup0(r, 0, 2);
	out->name = pg_dup0(r, 0, 3);
	if (jobstate_parse(PQgetvalue(r, 0, 4), &out->state) < 0)
		out->state = JOB_ERROR;
	out->attempt = pg_int(r, 0, 5);
	out->max_attempts = pg_int(r, 0, 6);
	out->agent_id = pg_i64(r, 0, 7);
	out->lease_until_ms = pg_i64(r, 0, 8);
	out->started_ms = pg_i64(r, 0, 9);
	out->finished_ms = pg_i64(r, 0, 10);
	out->has_exit_code = !pg_null(r, 0, 11);
	out->exit_code = pg_int(r, 0, 11);
	out->message = pg_dup0(r, 0, 12);
	out->cancel_requested = pg_int(r, 0, 13);
	out->log_bytes = pg_i64(r, 0, 14);
	out->log_truncated = pg_int(r, 0, 15);
	PQclear(r);
	return 0;
}

int pg_tx_job_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err)
{
	return pg_job_lock(tx, id, 0, out, err);
}

int pg_tx_job_claim_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err)
{
	return pg_job_lock(tx, id, 1, out, err);
}

int pg_job_check_attempt(struct store_tx *tx, int64_t job_id, int attempt, struct job_state_row *out,
                         struct err *err)
{
	if (pg_tx_job_lock(tx, job_id, out, err) < 0)
		return -1;
	if (out->state != JOB_RUNNING || out->attempt != attempt) {
		err_set(err, ERR_CONFLICT, "job %lld is %s at attempt %d, not running at attempt %d",
		        (long long)job_id, jobstate_name(out->state), out->attempt, attempt);
		job_state_row_release(out);
		return -1;
	}
	return 0;
}

int pg_tx_job_write(struct store_tx *tx, const struct job_state_row *js, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_i64(&a, js->id);
	pg_arg_text(&a, jobstate_name(js->state));
	pg_arg_i64(&a, js->attempt);
	pg_arg_i64_null0(&a, js->agent_id);
	pg_arg_i64_null0(&a, js->lease_until_ms);
	pg_arg_i64_null0(&a, js->started_ms);
	pg_arg_i64_null0(&a, js->finished_ms);
	if (js->has_exit_code)
		pg_arg_i64(&a, js->exit_code);
	else
		pg_arg_text(&a, NULL);
	pg_arg_text(&a, js->message ? js->message : "");
	pg_arg_i64(&a, js->cancel_requested ? 1 : 0);
	if (pg_cmd(tx->conn, "job write",
	           "UPDATE jobs SET state = $2, attempt = $3, agent_id = $4, lease_until_unix_ms = $5,"
	           " started_unix_ms = $6, finished_unix_ms = $7, exit_code = $8, message = $9,"
	           " cancel_requested = $10 WHERE id = $1",
	           &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)js->id);
	return 0;
}

int pg_tx_job_insert(struct store_tx *tx, const struct job_insert *in, int64_t now_ms, int64_t *id_out,
                     struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, in->pipeline_id);
	pg_arg_text(&a, in->name);
	pg_arg_text(&a, in->target);
	pg_arg_i64(&a, in->max_attempts);
	pg_arg_text(&a, in->spec);
	pg_arg_i64_null0(&a, in->retry_of);
	pg_arg_i64(&a, now_ms);
	pg_arg_text(&a, in->kind ? in->kind : "build");
	pg_arg_text(&a, in->labels ? in->labels : "");
	pg_arg_i64(&a, in->approve ? 1 : 0);
	if (pg_scalar(tx->conn, "job insert",
	              "INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, retry_of,"
	              " created_unix_ms, kind, labels, approve)"
	              " VALUES($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
	              &a, id_out, err) < 0) {
		if (err != NULL && err->code == ERR_CONFLICT && in->retry_of != 0)
			err_set(err, ERR_CONFLICT, "job %lld was already retried", (long long)in->retry_of);
		return -1;
	}
	return 0;
}

int pg_tx_job_get(struct store_tx *tx, int64_t id, struct job_row *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	if ((r = pg_exec(tx->conn, "job get", "SELECT" PG_JOB_COLS "WHERE j.id = $1", &a, 0, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	}
	pg_job_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

/* A deploy job of a pipeline that records a release is handed out only once
 * that release is signed; when another pipeline recorded that version it
 * never is (the release thread ends it). Locked rows are another server's
 * claim in progress: skipped, not waited for. */
/* Queued jobs a claim may take (store_be.h tx_jobs_claimable). */
#define PG_CLAIMABLE_SQL                                                                                     \
	"SELECT j.id, j.kind, j.target, j.labels, coalesce((SELECT r.agent_labels FROM pipelines p"          \
	" JOIN repos r ON r.id = p.repo_id WHERE p.id = j.pipeline_id), ''), j.pipeline_id, j.name,"         \
	" j.message, (SELECT message FROM pipelines WHERE id = j.pipeline_id),"                              \
	" (SELECT repo_id FROM pipelines WHERE id = j.pipeline_id) FROM jobs j WHERE j.state = 'queued'"     \
	" AND NOT EXISTS (SELECT 1 FROM job_needs n WHERE n.job_id = j.id AND NOT EXISTS (SELECT 1"          \
	" FROM jobs d WHERE d.pipeline_id = j.pipeline_id AND d.name = n.name AND d.target = n.target"       \
	" AND d.state = 'success' AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.retry_of = d.id)))"           \
	" AND NOT (j.kind = 'deploy' AND j.name = 'deploy' AND EXISTS (SELECT 1 FROM pipelines p"            \
	" JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"                        \
	" WHERE p.id = j.pipeline_id AND substr(p.ref, 1, 10) = 'refs/tags/'"                                \
	" AND (x.pipeline_id <> p.id OR x.signature IS NULL)))"                                              \
	" AND NOT (j.approve = 1 AND j.approved_unix_ms IS NULL)"                                            \
	" ORDER BY j.id LIMIT $1"

int pg_tx_jobs_claimable(struct store_tx *tx, int limit, struct job_claimable **out, size_t *n_out,
                         struct err *err)
{
	struct pg_args a = {0};
	struct job_claimable *rows = NULL;
	PGresult *r;
	int n;

	*out = NULL;
	*n_out = 0;
	pg_arg_i64(&a, limit);
	r = pg_exec(tx->conn, "claimable jobs", PG_CLAIMABLE_SQL, &a, 0, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0)
		rows = xcalloc((size_t)n, sizeof(*rows));
	for (int i = 0; i < n; i++) {
		rows[i].id = pg_i64(r, i, 0);
		rows[i].kind = pg_dup0(r, i, 1);
		rows[i].target = pg_dup0(r, i, 2);
		rows[i].labels = pg_dup0(r, i, 3);
		rows[i].pool = pg_dup0(r, i, 4);
		rows[i].pipeline_id = pg_i64(r, i, 5);
		rows[i].name = pg_dup0(r, i, 6);
		rows[i].message = pg_dup0(r, i, 7);
		rows[i].pipeline_message = pg_dup0(r, i, 8);
		rows[i].repo_id = pg_i64(r, i, 9);
	}
	PQclear(r);
	*out = rows;
	*n_out = (size_t)n;
	return 0;
}

int pg_tx_jobs_expired(struct store_tx *tx, int64_t now_ms, int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, now_ms);
	return pg_ids(tx->conn, "expired jobs",
	              "SELECT id FROM jobs WHERE state = 'running' AND lease_until_unix_ms < $1 ORDER BY id",
	              &a, ids_out, n_out, err);
}

int pg_tx_jobs_of_agent(struct store_tx *tx, int64_t agent_id, int64_t **ids_out, size_t *n_out,
                        struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, agent_id);
	return pg_ids(tx->conn, "agent jobs",
	              "SELECT id FROM jobs WHERE agent_id = $1 AND state = 'running' ORDER BY id", &a,
	              ids_out, n_out, err);
}

/* ---- pipeline primitives ---- */

int pg_tx_pipeline_insert(struct store_tx *tx, const struct pipeline_new *p, enum job_state state,
                          int64_t now_ms, int64_t finished_ms, int64_t *id_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, p->repo_id);
	pg_arg_text(&a, p->ref);
	pg_arg_text(&a, p->commit_sha);
	pg_arg_text(&a, p->event);
	pg_arg_text(&a, p->delivery);
	pg_arg_text(&a, jobstate_name(state));
	pg_arg_text(&a, p->error_message ? p->error_message : "");
	pg_arg_text(&a, p->commit_message ? p->commit_message : "");
	pg_arg_text(&a, p->author ? p->author : "");
	pg_arg_i64(&a, now_ms);
	pg_arg_i64_null0(&a, finished_ms);
	pg_arg_text(&a, p->variables ? p->variables : "");
	return pg_scalar(tx->conn, "pipeline insert",
	                 "INSERT INTO pipelines(repo_id, ref, commit_sha, event, delivery, state, message,"
	                 " commit_message, author, created_unix_ms, finished_unix_ms, variables)"
	                 " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
	                 &a, id_out, err);
}

int pg_tx_pipeline_by_delivery(struct store_tx *tx, int64_t repo_id, const char *delivery, int64_t *id_out,
                               struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, repo_id);
	pg_arg_text(&a, delivery);
	return pg_scalar(tx->conn, "delivery",
	                 "SELECT id FROM pipelines WHERE repo_id = $1 AND delivery = $2", &a, id_out, err);
}

int pg_tx_pipeline_facts(struct store_tx *tx, int64_t pipeline_id, struct pipeline_facts *out,
                         struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, pipeline_id);
	r = pg_exec(tx->conn, "pipeline facts",
	            "SELECT p.repo_id, r.name, p.ref, p.commit_sha, r.release_pattern,"
	            " (r.status_token <> '' AND r.forge IN ('github', 'gitea', 'gitlab'))::int"
	            " FROM pipelines p JOIN repos r ON r.id = p.repo_id WHERE p.id = $1",
	            &a, 0, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)pipeline_id);
	}
	memset(out, 0, sizeof(*out));
	out->repo_id = pg_i64(r, 0, 0);
	out->repo_name = pg_dup0(r, 0, 1);
	out->ref = pg_dup0(r, 0, 2);
	out->commit_sha = pg_dup0(r, 0, 3);
	out->release_pattern = pg_dup0(r, 0, 4);
	out->statuses = pg_int(r, 0, 5);
	PQclear(r);
	return 0;
}

int pg_tx_pipeline_states(struct store_tx *tx, int64_t pipeline_id, enum job_state **out, size_t *n_out,
                          struct err *err)
{
	struct pg_args a = {0};
	enum job_state *states = NULL;
	PGresult *r;
	int n;

	*out = NULL;
	*n_out = 0;
	pg_arg_i64(&a, pipeline_id);
	r = pg_exec(tx->conn, "pipeline states",
	            "SELECT state FROM jobs j WHERE pipeline_id = $1"
	            " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id) ORDER BY id",
	            &a, 0, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0)
		states = xcalloc((size_t)n, sizeof(*states));
	for (int i = 0; i < n; i++)
		if (jobstate_parse(PQgetvalue(r, i, 0), &states[i]) < 0)
			states[i] = JOB_ERROR;
	PQclear(r);
	*out = states;
	*n_out = (size_t)n;
	return 0;
}

int pg_tx_pipeline_set_state(struct store_tx *tx, int64_t pipeline_id, enum job_state state,
                             int64_t finished_ms, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, jobstate_name(state));
	pg_arg_i64_null0(&a, finished_ms);
	if (pg_cmd(tx->conn, "pipeline state",
	           "UPDATE pipelines SET state = $2, finished_unix_ms = $3 WHERE id = $1", &a, &changed,
	           err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)pipeline_id);
	return 0;
}

int pg_tx_jobs_unsucceeded(struct store_tx *tx, int64_t pipeline_id, const char *kind, const char *name,
                           int64_t *n_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, kind);
	pg_arg_text(&a, name);
	return pg_scalar(tx->conn, "unsucceeded jobs",
	                 "SELECT count(*) FROM jobs j WHERE pipeline_id = $1 AND state <> 'success'"
	                 " AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR name = $3)"
	                 " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)",
	                 &a, n_out, err);
}

/* ---- whole operations ---- */

int pg_repo_upsert(struct store_be *be, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                   struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, name);
	pg_arg_text(&a, url);
	pg_arg_i64(&a, now_ms);
	return pg_be_scalar(be, "repo upsert",
	                    "INSERT INTO repos(name, url, created_unix_ms) VALUES($1, $2, $3)"
	                    " ON CONFLICT(name) DO UPDATE SET url = excluded.url RETURNING id",
	                    &a, id_out, err);
}

int pg_repo_list(struct store_be *be, struct repo_row **out, size_t *n_out, struct err *err)
{
	PGresult *r = pg_be_exec(be, "repo list",
	                         "SELECT id, name, url FROM repos ORDER BY name COLLATE \"C\"", NULL, err);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].id = pg_i64(r, i, 0);
		(*out)[i].name = pg_dup0(r, i, 1);
		(*out)[i].url = pg_dup0(r, i, 2);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_pipeline_by_delivery(struct store_be *be, const char *repo, const char *delivery, int64_t *id_out,
                            struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, repo);
	pg_arg_text(&a, delivery);
	return pg_be_scalar(be, "delivery",
	                    "SELECT p.id FROM pipelines p JOIN repos r ON r.id = p.repo_id"
	                    " WHERE r.name = $1 AND p.delivery = $2",
	                    &a, id_out, err);
}

int pg_pipeline_get(struct store_be *be, int64_t id, struct pipeline_row *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	if ((r = pg_be_exec(be, "pipeline get", "SELECT" PG_PIPE_COLS "WHERE p.id = $1", &a, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)id);
	}
	pg_pipeline_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

int pg_pipeline_list(struct store_be *be, const char *repo, int limit, struct pipeline_row **out,
                     size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, limit);
	pg_arg_text(&a, repo);
	r = pg_be_exec(be, "pipeline list",
	               "SELECT" PG_PIPE_COLS
	               "WHERE ($2::text IS NULL OR r.name = $2) ORDER BY p.id DESC LIMIT $1",
	               &a, err);
	if (r == NULL)
		return -1;
	pg_pipeline_rows(r, out, n_out);
	PQclear(r);
	return 0;
}

int pg_pipeline_page(struct store_be *be, const struct pipeline_filter *f, int limit,
                     struct pipeline_row **out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, limit);
	pg_arg_text(&a, f->repo);
	pg_arg_text(&a, f->ref);
	pg_arg_text(&a, f->state);
	pg_arg_text(&a, f->event);
	pg_arg_i64(&a, f->before_id);
	r = pg_be_exec(be, "pipeline page",
	               "SELECT" PG_PIPE_COLS "WHERE ($2::text IS NULL OR r.name = $2)"
	               " AND ($3::text IS NULL OR p.ref = $3 OR p.ref = 'refs/heads/' || $3"
	               " OR p.ref = 'refs/tags/' || $3) AND ($4::text IS NULL OR p.state = $4)"
	               " AND ($5::text IS NULL OR p.event = $5) AND ($6 <= 0 OR p.id < $6)"
	               " ORDER BY p.id DESC LIMIT $1",
	               &a, err);
	if (r == NULL)
		return -1;
	pg_pipeline_rows(r, out, n_out);
	PQclear(r);
	return 0;
}

int pg_job_page(struct store_be *be, const struct job_filter *f, int limit, struct job_row **out,
                size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, limit);
	pg_arg_text(&a, f->agent);
	pg_arg_text(&a, f->repo);
	pg_arg_text(&a, f->ref);
	pg_arg_text(&a, f->name);
	pg_arg_text(&a, f->target);
	pg_arg_text(&a, f->state);
	pg_arg_i64(&a, f->before_id);
	r = pg_be_exec(be, "job page",
	               "SELECT" PG_JOB_COLS "WHERE ($2::text IS NULL OR a.name = $2)"
	               " AND ($3::text IS NULL OR r.name = $3) AND ($4::text IS NULL OR p.ref = $4)"
	               " AND ($5::text IS NULL OR j.name = $5) AND ($6::text IS NULL OR j.target = $6)"
	               " AND ($7::text IS NULL OR j.state = $7) AND ($8 <= 0 OR j.id < $8)"
	               " ORDER BY j.id DESC LIMIT $1",
	               &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_job_row_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_pipeline_jobs(struct store_be *be, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                     struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, pipeline_id);
	r = pg_be_exec(be, "pipeline jobs", "SELECT" PG_JOB_COLS "WHERE j.pipeline_id = $1 ORDER BY j.id", &a,
	               err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_job_row_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_job_get(struct store_be *be, int64_t id, struct job_row *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	if ((r = pg_be_exec(be, "job get", "SELECT" PG_JOB_COLS "WHERE j.id = $1", &a, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	}
	pg_job_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

int pg_job_heartbeat(struct store_be *be, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                     int *cancel_out, struct err *err)
{
	struct store_tx *tx = NULL;
	struct job_state_row js = {0};
	struct pg_args a = {0};
	int rc = -1;

	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	if (pg_job_check_attempt(tx, id, attempt, &js, err) < 0)
		goto out;
	pg_arg_i64(&a, id);
	pg_arg_i64(&a, now_ms + lease_ms);
	if (pg_cmd(tx->conn, "job lease", "UPDATE jobs SET lease_until_unix_ms = $2 WHERE id = $1", &a, NULL,
	           err) < 0)
		goto out;
	if (pg_tx_commit(tx, err) < 0) {
		tx = NULL;
		goto out;
	}
	tx = NULL;
	*cancel_out = js.cancel_requested;
	rc = 0;
out:
	pg_tx_rollback(tx);
	job_state_row_release(&js);
	return rc;
}

int pg_pipeline_latest_refs(struct store_be *be, int limit, struct pipeline_row **out, size_t *n_out,
                            struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, limit);
	r = pg_be_exec(be, "latest pipelines",
	               "SELECT" PG_PIPE_COLS
	               "WHERE p.id IN (SELECT max(id) FROM pipelines GROUP BY repo_id, ref)"
	               " ORDER BY r.name COLLATE \"C\", p.ref COLLATE \"C\" LIMIT $1",
	               &a, err);
	if (r == NULL)
		return -1;
	pg_pipeline_rows(r, out, n_out);
	PQclear(r);
	return 0;
}

int pg_pipeline_latest_ref(struct store_be *be, const char *repo, const char *ref, struct pipeline_row *out,
                           struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, repo);
	pg_arg_text(&a, ref);
	r = pg_be_exec(be, "latest pipeline",
	               "SELECT" PG_PIPE_COLS "WHERE r.name = $1 AND p.ref = $2 ORDER BY p.id DESC LIMIT 1",
	               &a, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "no pipeline for that repository and ref");
	}
	pg_pipeline_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

/* ---- needs: (name, target) pairs a job waits for ---- */

int pg_tx_job_need_insert(struct store_tx *tx, int64_t job_id, const char *name, const char *target,
                          struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, job_id);
	pg_arg_text(&a, name);
	pg_arg_text(&a, target);
	return pg_cmd(tx->conn, "job need insert",
	              "INSERT INTO job_needs(job_id, name, target) VALUES($1, $2, $3)", &a, NULL, err);
}

int pg_tx_job_needs(struct store_tx *tx, int64_t job_id, struct strv *names, struct strv *targets,
                    struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, job_id);
	r = pg_exec(tx->conn, "job needs",
	            "SELECT name, target FROM job_needs WHERE job_id = $1 ORDER BY name COLLATE \"C\","
	            " target COLLATE \"C\"",
	            &a, 0, err);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		strv_push(names, PQgetvalue(r, i, 0));
		strv_push(targets, PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

int pg_tx_jobs_needing(struct store_tx *tx, int64_t job_id, int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, job_id);
	return pg_ids(tx->conn, "jobs needing",
	              "SELECT j.id FROM jobs s JOIN job_needs n ON n.name = s.name AND n.target = s.target"
	              " JOIN jobs j ON j.id = n.job_id AND j.pipeline_id = s.pipeline_id"
	              " WHERE s.id = $1 AND j.state = 'queued' ORDER BY j.id",
	              &a, ids_out, n_out, err);
}

int pg_tx_pipeline_current_jobs(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, pipeline_id);
	return pg_ids(tx->conn, "pipeline current jobs",
	              "SELECT id FROM jobs j WHERE pipeline_id = $1"
	              " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id) ORDER BY id",
	              &a, ids_out, n_out, err);
}

int pg_tx_job_approve(struct store_tx *tx, int64_t id, const char *by, int64_t now_ms, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, id);
	pg_arg_text(&a, by);
	pg_arg_i64(&a, now_ms);
	return pg_cmd(tx->conn, "job approve",
	              "UPDATE jobs SET approved_by = $2, approved_unix_ms = $3 WHERE id = $1", &a, NULL, err);
}

int pg_tx_pipelines_superseded(struct store_tx *tx, int64_t repo_id, const char *ref, int64_t before_id,
                               int64_t **ids_out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, repo_id);
	pg_arg_text(&a, ref);
	pg_arg_i64(&a, before_id);
	return pg_ids(tx->conn, "superseded pipelines",
	              "SELECT id FROM pipelines WHERE repo_id = $1 AND ref = $2 AND id < $3"
	              " AND event = 'push' AND state IN ('queued', 'running') ORDER BY id FOR UPDATE",
	              &a, ids_out, n_out, err);
}

int pg_tx_pipeline_set_message(struct store_tx *tx, int64_t pipeline_id, const char *message, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, message);
	return pg_cmd(tx->conn, "pipeline message", "UPDATE pipelines SET message = $2 WHERE id = $1", &a,
	              NULL, err);
}

int pg_job_inputs(struct store_be *be, int64_t job_id, struct job_input **out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, job_id);
	r = pg_be_exec(
	    be, "job inputs",
	    "SELECT d.id, d.name, d.target, a.name, a.sha256, a.size, a.mode FROM jobs j"
	    " JOIN job_needs n ON n.job_id = j.id JOIN jobs d ON d.pipeline_id = j.pipeline_id"
	    " AND d.name = n.name AND d.target = n.target AND d.state = 'success'"
	    " AND NOT EXISTS (SELECT 1 FROM jobs x WHERE x.retry_of = d.id)"
	    " JOIN artifacts a ON a.job_id = d.id WHERE j.id = $1 ORDER BY d.id, a.name COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		struct job_input *x = &(*out)[i];

		x->job_id = pg_i64(r, i, 0);
		x->job_name = pg_dup0(r, i, 1);
		x->job_target = pg_dup0(r, i, 2);
		x->a.name = pg_dup0(r, i, 3);
		snprintf(x->a.sha256, sizeof(x->a.sha256), "%s", PQgetvalue(r, i, 4));
		x->a.size = pg_i64(r, i, 5);
		x->a.mode = (int)pg_i64(r, i, 6);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}
