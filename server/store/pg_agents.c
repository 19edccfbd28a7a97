/* PostgreSQL: agents (each with its own token, stored as its sha256), the
 * server's tokens, and the figures of /metrics. */
#include "server/store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- primitives (server/sched/jobstate.c requeues the agent's jobs) ---- */

int pg_tx_agent_upsert(struct store_tx *tx, const char *name, const char *labels_json,
                       const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, name);
	pg_arg_text(&a, labels_json);
	pg_arg_i64(&a, now_ms);
	pg_arg_text(&a, token_sha256_hex);
	return pg_scalar(
	    tx->conn, "agent register",
	    "INSERT INTO agents(name, labels, last_seen_unix_ms, token_sha256) VALUES($1, $2, $3, $4)"
	    " ON CONFLICT(name) DO UPDATE SET labels = excluded.labels,"
	    " last_seen_unix_ms = excluded.last_seen_unix_ms, token_sha256 = excluded.token_sha256,"
	    " removed_unix_ms = NULL RETURNING id",
	    &a, id_out, err);
}

int pg_tx_agent_remove(struct store_tx *tx, const char *name, int64_t now_ms, int64_t *id_out,
                       struct err *err)
{
	struct pg_args a = {0};
	int64_t id = 0;

	pg_arg_text(&a, name);
	pg_arg_i64(&a, now_ms);
	if (pg_scalar(
	        tx->conn, "agent remove",
	        "UPDATE agents SET token_sha256 = NULL, removed_unix_ms = $2 WHERE name = $1 RETURNING id",
	        &a, &id, err) < 0) {
		if (err != NULL && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "no agent named '%s'", name);
		return -1;
	}
	*id_out = id;
	return 0;
}

/* ---- tokens ---- */

int pg_token_set(struct store_be *be, const char *kind, const char *sha256_hex, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, kind);
	pg_arg_text(&a, sha256_hex);
	return pg_be_cmd(be, "token set",
	                 "INSERT INTO tokens(kind, sha256) VALUES($1, $2)"
	                 " ON CONFLICT(kind) DO UPDATE SET sha256 = excluded.sha256",
	                 &a, NULL, err);
}

int pg_token_get(struct store_be *be, const char *kind, char out_hex[65], struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, kind);
	if ((r = pg_be_exec(be, "token get", "SELECT sha256 FROM tokens WHERE kind = $1", &a, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "no %s token", kind);
	}
	snprintf(out_hex, 65, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* ---- agents ---- */

int pg_agent_by_token(struct store_be *be, const char *token_sha256_hex, int64_t *id_out, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_text(&a, token_sha256_hex);
	if (pg_be_scalar(be, "agent token",
	                 "SELECT id FROM agents WHERE token_sha256 = $1 AND removed_unix_ms IS NULL", &a,
	                 id_out, err) < 0) {
		if (err != NULL && err->code == ERR_NOTFOUND)
			err_set(err, ERR_AUTH, "unknown or revoked agent token");
		return -1;
	}
	return 0;
}

int pg_job_owner_check(struct store_be *be, int64_t job_id, int64_t agent_id, struct err *err)
{
	struct pg_args a = {0};
	int64_t owner = 0;

	pg_arg_i64(&a, job_id);
	if (pg_be_scalar(be, "job owner", "SELECT coalesce(agent_id, 0) FROM jobs WHERE id = $1", &a, &owner,
	                 err) < 0) {
		if (err != NULL && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)job_id);
		return -1;
	}
	if (owner == 0 || owner != agent_id)
		return err_set(err, ERR_FORBIDDEN, "job %lld's current attempt was not claimed by this agent",
		               (long long)job_id);
	return 0;
}

int pg_agent_labels(struct store_be *be, int64_t id, char **labels_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	if ((r = pg_be_exec(be, "agent labels", "SELECT labels FROM agents WHERE id = $1", &a, err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	}
	*labels_out = pg_dup0(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_agent_touch(struct store_be *be, int64_t id, int64_t now_ms, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_i64(&a, id);
	pg_arg_i64(&a, now_ms);
	if (pg_be_cmd(be, "agent touch", "UPDATE agents SET last_seen_unix_ms = $2 WHERE id = $1", &a,
	              &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	return 0;
}

int pg_agent_list(struct store_be *be, struct agent_row **out, size_t *n_out, struct err *err)
{
	PGresult *r =
	    pg_be_exec(be, "agent list",
	               "SELECT a.id, a.name, a.labels, a.last_seen_unix_ms,"
	               " (SELECT string_agg(j.id::text, ',' ORDER BY j.id) FROM jobs j"
	               " WHERE j.agent_id = a.id AND j.state = 'running')"
	               " FROM agents a WHERE a.removed_unix_ms IS NULL ORDER BY a.name COLLATE \"C\"",
	               NULL, err);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].id = pg_i64(r, i, 0);
		(*out)[i].name = pg_dup0(r, i, 1);
		(*out)[i].labels = pg_dup0(r, i, 2);
		(*out)[i].last_seen_ms = pg_i64(r, i, 3);
		agent_row_set_jobs(&(*out)[i], PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4));
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

/* One statement, so the figures are of one snapshot. */
int pg_stats(struct store_be *be, struct store_stats *out, struct err *err)
{
	PGresult *r =
	    pg_be_exec(be, "stats",
	               "SELECT NULL, (SELECT count(*) FROM pipelines),"
	               " (SELECT coalesce(sum(log_bytes), 0) FROM jobs), (SELECT count(*) FROM blobs),"
	               " (SELECT coalesce(sum(size), 0) FROM blobs)"
	               " UNION ALL SELECT state, count(*), 0, 0, 0 FROM jobs GROUP BY state",
	               NULL, err);

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		enum job_state js;
		if (pg_null(r, i, 0)) {
			out->pipelines = pg_i64(r, i, 1);
			out->log_bytes = pg_i64(r, i, 2);
			out->blobs = pg_i64(r, i, 3);
			out->blob_bytes = pg_i64(r, i, 4);
		} else if (jobstate_parse(PQgetvalue(r, i, 0), &js) == 0) {
			out->jobs_by_state[js] = pg_i64(r, i, 1);
		}
	}
	PQclear(r);
	return 0;
}
