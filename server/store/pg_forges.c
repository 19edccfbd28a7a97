/* PostgreSQL: a repository's forge settings, its secrets, the heads the
 * poller saw and the commit status queue. */
#include "server/store/pg_int.h"

#include <stdlib.h>
#include <string.h>

#define PG_REPO_CFG_COLS                                                                                     \
	"SELECT id, name, url, forge, hook_secret, status_token, api_url, poll_s, agent_labels FROM repos "

static void pg_repo_cfg_read(const PGresult *r, int i, struct repo_cfg *out)
{
	out->id = pg_i64(r, i, 0);
	out->name = pg_dup0(r, i, 1);
	out->url = pg_dup0(r, i, 2);
	out->forge = pg_dup0(r, i, 3);
	out->hook_secret = pg_dup0(r, i, 4);
	out->status_token = pg_dup0(r, i, 5);
	out->api_url = pg_dup0(r, i, 6);
	out->poll_s = pg_int(r, i, 7);
	out->agent_labels = pg_dup0(r, i, 8);
}

int pg_repo_configure(struct store_be *be, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                      struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, in->name);
	pg_arg_text(&a, in->url);
	pg_arg_i64(&a, now_ms);
	pg_arg_text(&a, in->forge ? in->forge : "");
	pg_arg_text(&a, in->hook_secret ? in->hook_secret : "");
	pg_arg_text(&a, in->status_token ? in->status_token : "");
	pg_arg_text(&a, in->api_url ? in->api_url : "");
	pg_arg_i64(&a, in->poll_s);
	pg_arg_text(&a, in->agent_labels); /* NULL keeps the repository's pool */
	return pg_be_scalar(
	    be, "repo configure",
	    "INSERT INTO repos(name, url, created_unix_ms, forge, hook_secret, status_token, api_url,"
	    " poll_s, agent_labels) VALUES($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::text, ''))"
	    " ON CONFLICT(name) DO UPDATE SET url = excluded.url, forge = excluded.forge,"
	    " hook_secret = excluded.hook_secret, status_token = excluded.status_token,"
	    " api_url = excluded.api_url, poll_s = excluded.poll_s,"
	    " agent_labels = coalesce($9::text, repos.agent_labels) RETURNING id",
	    &a, id_out, err);
}

int pg_repo_cfg_get(struct store_be *be, const char *name, struct repo_cfg *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, name);
	if ((r = pg_be_exec(be, "repo get", PG_REPO_CFG_COLS "WHERE name = $1", &a, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "no repository named '%s'", name);
	}
	pg_repo_cfg_read(r, 0, out);
	PQclear(r);
	return 0;
}

int pg_repo_cfg_list(struct store_be *be, struct repo_cfg **out, size_t *n_out, struct err *err)
{
	PGresult *r = pg_be_exec(be, "repo list", PG_REPO_CFG_COLS "ORDER BY name COLLATE \"C\"", NULL, err);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_repo_cfg_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_secret_set(struct store_be *be, const char *repo, const char *name, const char *value,
                  int pull_requests, int64_t now_ms, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_text(&a, repo);
	pg_arg_text(&a, name);
	pg_arg_text(&a, value);
	pg_arg_i64(&a, now_ms);
	pg_arg_i64(&a, pull_requests != 0);
	if (pg_be_cmd(be, "secret set",
	              "INSERT INTO repo_secrets(repo_id, name, value, updated_unix_ms, pull_requests)"
	              " SELECT id, $2, $3, $4, $5 FROM repos WHERE name = $1"
	              " ON CONFLICT(repo_id, name) DO UPDATE SET value = excluded.value,"
	              " updated_unix_ms = excluded.updated_unix_ms, pull_requests = excluded.pull_requests",
	              &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "no repository named '%s'", repo);
	return 0;
}

int pg_secret_delete(struct store_be *be, const char *repo, const char *name, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_text(&a, repo);
	pg_arg_text(&a, name);
	if (pg_be_cmd(be, "secret delete",
	              "DELETE FROM repo_secrets WHERE name = $2 AND repo_id = (SELECT id FROM repos WHERE "
	              "name = $1)",
	              &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "repository '%s' has no secret '%s'", repo, name);
	return 0;
}

int pg_secret_list(struct store_be *be, const char *repo, int pull_requests_only, struct strv *names,
                   struct strv *values, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, repo);
	pg_arg_i64(&a, pull_requests_only != 0);
	r = pg_be_exec(be, "secret list",
	               "SELECT s.name, s.value FROM repo_secrets s JOIN repos r ON r.id = s.repo_id"
	               " WHERE r.name = $1 AND ($2 = 0 OR s.pull_requests = 1) ORDER BY s.name COLLATE \"C\"",
	               &a, err);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		strv_push(names, PQgetvalue(r, i, 0));
		if (values != NULL)
			strv_push(values, PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

int pg_poll_heads(struct store_be *be, int64_t repo_id, struct strv *refs, struct strv *shas, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, repo_id);
	r = pg_be_exec(be, "poll heads",
	               "SELECT ref, sha FROM poll_heads WHERE repo_id = $1 ORDER BY ref COLLATE \"C\"", &a,
	               err);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		strv_push(refs, PQgetvalue(r, i, 0));
		strv_push(shas, PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

int pg_poll_head_set(struct store_be *be, int64_t repo_id, const char *ref, const char *sha, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, repo_id);
	pg_arg_text(&a, ref);
	if (sha == NULL)
		return pg_be_cmd(be, "poll head", "DELETE FROM poll_heads WHERE repo_id = $1 AND ref = $2",
		                 &a, NULL, err);
	pg_arg_text(&a, sha);
	return pg_be_cmd(be, "poll head",
	                 "INSERT INTO poll_heads(repo_id, ref, sha) VALUES($1, $2, $3)"
	                 " ON CONFLICT(repo_id, ref) DO UPDATE SET sha = excluded.sha",
	                 &a, NULL, err);
}

/* ---- the commit status queue ---- */

int pg_tx_status_queue(struct store_tx *tx, int64_t job_id, const char *state, const char *description,
                       int64_t now_ms, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, job_id);
	pg_arg_text(&a, state);
	pg_arg_text(&a, description);
	pg_arg_i64(&a, now_ms);
	return pg_cmd(
	    tx->conn, "status queue",
	    "INSERT INTO status_queue(job_id, state, description, next_attempt_unix_ms, created_unix_ms)"
	    " VALUES($1, $2, $3, $4, $4)",
	    &a, NULL, err);
}

/* A job's statuses go out in order: a row waits while an older one of its
 * job is still queued (being retried). */
/* How long a status handed to a sender is not handed to another. */
#define PG_STATUS_CLAIM_MS 60000

int pg_status_due(struct store_be *be, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                  struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	/* Several servers send from one queue: the rows handed out are claimed
	 * for PG_STATUS_CLAIM_MS (their next attempt moved), so no other server
	 * sends them meanwhile; status_sent, status_retry end the claim. */
	pg_arg_i64(&a, now_ms);
	pg_arg_i64(&a, limit);
	pg_arg_i64(&a, PG_STATUS_CLAIM_MS);
	r = pg_be_exec(be, "status due",
	               "WITH due AS (SELECT q.id FROM status_queue q WHERE q.gave_up = 0 AND "
	               "q.next_attempt_unix_ms <= $1"
	               " AND NOT EXISTS (SELECT 1 FROM status_queue o WHERE o.job_id = q.job_id"
	               " AND o.gave_up = 0 AND o.id < q.id) ORDER BY q.id LIMIT $2 FOR UPDATE SKIP LOCKED),"
	               " claimed AS (UPDATE status_queue q SET next_attempt_unix_ms = $1 + $3 FROM due"
	               " WHERE q.id = due.id RETURNING q.id, q.job_id, q.state, q.description, q.attempts)"
	               " SELECT c.id, c.job_id, c.state, c.description, c.attempts, r.forge, r.api_url,"
	               " r.status_token, r.url, p.commit_sha, j.target FROM claimed c"
	               " JOIN jobs j ON j.id = c.job_id JOIN pipelines p ON p.id = j.pipeline_id"
	               " JOIN repos r ON r.id = p.repo_id ORDER BY c.id",
	               &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		struct status_row *s = &(*out)[i];
		s->id = pg_i64(r, i, 0);
		s->job_id = pg_i64(r, i, 1);
		s->state = pg_dup0(r, i, 2);
		s->description = pg_dup0(r, i, 3);
		s->attempts = pg_int(r, i, 4);
		s->forge = pg_dup0(r, i, 5);
		s->api_url = pg_dup0(r, i, 6);
		s->token = pg_dup0(r, i, 7);
		s->repo_url = pg_dup0(r, i, 8);
		s->commit_sha = pg_dup0(r, i, 9);
		s->target = pg_dup0(r, i, 10);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_status_sent(struct store_be *be, int64_t id, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, id);
	return pg_be_cmd(be, "status sent", "DELETE FROM status_queue WHERE id = $1", &a, NULL, err);
}

int pg_status_retry(struct store_be *be, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                    int gave_up, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, id);
	pg_arg_i64(&a, attempts);
	pg_arg_i64(&a, next_ms);
	pg_arg_text(&a, last_error ? last_error : "");
	pg_arg_i64(&a, gave_up);
	return pg_be_cmd(be, "status retry",
	                 "UPDATE status_queue SET attempts = $2, next_attempt_unix_ms = $3, last_error = $4,"
	                 " gave_up = $5 WHERE id = $1",
	                 &a, NULL, err);
}

int pg_status_pending(struct store_be *be, int64_t *n_out, struct err *err)
{
	return pg_be_scalar(be, "status count", "SELECT count(*) FROM status_queue WHERE gave_up = 0", NULL,
	                    n_out, err);
}

int pg_status_prune(struct store_be *be, int64_t before_ms, int limit, int *n_out, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	*n_out = 0;
	pg_arg_i64(&a, before_ms);
	pg_arg_i64(&a, limit);
	if (pg_be_cmd(be, "status prune",
	              "DELETE FROM status_queue WHERE id IN (SELECT id FROM status_queue"
	              " WHERE gave_up = 1 AND created_unix_ms < $1 ORDER BY id LIMIT $2)",
	              &a, &changed, err) < 0)
		return -1;
	*n_out = (int)changed;
	return 0;
}
