/* PostgreSQL: releases (a tag pipeline's signed manifest), their signing
 * keys, a repository's tag pattern, the deploys that wait on a release. */
#include "server/store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_REL_COLS                                                                                          \
	"SELECT x.id, x.repo_id, r.name, r.url, x.version, x.pipeline_id, x.commit_sha, x.created_unix_ms,"  \
	" x.manifest, x.signature, x.keynum FROM releases x JOIN repos r ON r.id = x.repo_id "

static void pg_release_row_read(const PGresult *r, int i, struct release_row *out)
{
	memset(out, 0, sizeof(*out));
	out->id = pg_i64(r, i, 0);
	out->repo_id = pg_i64(r, i, 1);
	out->repo_name = pg_dup0(r, i, 2);
	out->repo_url = pg_dup0(r, i, 3);
	out->version = pg_dup0(r, i, 4);
	out->pipeline_id = pg_i64(r, i, 5);
	out->commit_sha = pg_dup0(r, i, 6);
	out->created_ms = pg_i64(r, i, 7);
	out->manifest = pg_dup(r, i, 8);
	out->signature = pg_dup(r, i, 9);
	out->keynum = pg_dup(r, i, 10);
}

/* ---- primitives ---- */

int pg_tx_release_record(struct store_tx *tx, int64_t repo_id, const char *version, int64_t pipeline_id,
                         const char *commit_sha, int64_t now_ms, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, repo_id);
	pg_arg_text(&a, version);
	pg_arg_i64(&a, pipeline_id);
	pg_arg_text(&a, commit_sha);
	pg_arg_i64(&a, now_ms);
	return pg_cmd(tx->conn, "release record",
	              "INSERT INTO releases(repo_id, version, pipeline_id, commit_sha, created_unix_ms)"
	              " VALUES($1, $2, $3, $4, $5) ON CONFLICT(repo_id, version) DO NOTHING",
	              &a, NULL, err);
}

int pg_tx_release_orphan_deploys(struct store_tx *tx, struct orphan_deploy_row **out, size_t *n_out,
                                 struct err *err)
{
	PGresult *r;
	int n;

	*out = NULL;
	*n_out = 0;
	r = pg_exec(
	    tx->conn, "orphaned release deploys",
	    "SELECT j.id, j.pipeline_id, x.version, r.name, x.pipeline_id FROM jobs j"
	    " JOIN pipelines p ON p.id = j.pipeline_id JOIN repos r ON r.id = p.repo_id"
	    " JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"
	    " WHERE j.state = 'queued' AND j.kind = 'deploy' AND j.name = 'deploy'"
	    " AND substr(p.ref, 1, 10) = 'refs/tags/' AND x.pipeline_id <> p.id ORDER BY j.id LIMIT 64",
	    NULL, 0, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0)
		*out = xcalloc((size_t)n, sizeof(**out));
	for (int i = 0; i < n; i++) {
		struct orphan_deploy_row *o = &(*out)[i];
		o->job_id = pg_i64(r, i, 0);
		o->pipeline_id = pg_i64(r, i, 1);
		o->version = pg_dup0(r, i, 2);
		o->repo_name = pg_dup0(r, i, 3);
		o->release_pipeline_id = pg_i64(r, i, 4);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_tx_release_waiting_deploys(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                  struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, pipeline_id);
	return pg_ids(tx->conn, "waiting release deploys",
	              "SELECT id FROM jobs WHERE pipeline_id = $1 AND state = 'queued'"
	              " AND kind = 'deploy' AND name = 'deploy' ORDER BY id",
	              &a, ids_out, n_out, err);
}

/* ---- whole operations ---- */

int pg_release_pattern_set(struct store_be *be, const char *repo, const char *pattern, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_text(&a, repo);
	pg_arg_text(&a, pattern);
	if (pg_be_cmd(be, "release pattern", "UPDATE repos SET release_pattern = $2 WHERE name = $1", &a,
	              &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	return 0;
}

int pg_release_pattern_get(struct store_be *be, const char *repo, char **out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_text(&a, repo);
	if ((r = pg_be_exec(be, "release pattern", "SELECT release_pattern FROM repos WHERE name = $1", &a,
	                    err)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	}
	*out = pg_dup0(r, 0, 0);
	PQclear(r);
	return 0;
}

int pg_release_key_add(struct store_be *be, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                       struct err *err)
{
	struct store_tx *tx = NULL;
	struct pg_args a = {0}, b = {0};
	int rc = -1;

	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	pg_arg_i64(&a, now_ms);
	if (pg_cmd(tx->conn, "retire release keys",
	           "UPDATE release_keys SET retired_unix_ms = $1 WHERE retired_unix_ms IS NULL", &a, NULL,
	           err) < 0)
		goto out;
	pg_arg_text(&b, keynum_hex);
	pg_arg_text(&b, pubkey);
	pg_arg_i64(&b, now_ms);
	if (pg_cmd(tx->conn, "add release key",
	           "INSERT INTO release_keys(keynum, pubkey, created_unix_ms) VALUES($1, $2, $3)", &b, NULL,
	           err) < 0)
		goto out;
	rc = pg_tx_commit(tx, err);
	tx = NULL;
out:
	pg_tx_rollback(tx);
	return rc;
}

int pg_release_key_list(struct store_be *be, struct release_key_row **out, size_t *n_out, struct err *err)
{
	PGresult *r = pg_be_exec(be, "release keys",
	                         "SELECT keynum, pubkey, created_unix_ms, retired_unix_ms FROM release_keys"
	                         " ORDER BY created_unix_ms DESC, rowid DESC",
	                         NULL, err);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].keynum = pg_dup0(r, i, 0);
		(*out)[i].pubkey = pg_dup0(r, i, 1);
		(*out)[i].created_ms = pg_i64(r, i, 2);
		(*out)[i].retired_ms = pg_i64(r, i, 3);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_release_unsigned(struct store_be *be, int64_t **ids_out, size_t *n_out, struct err *err)
{
	return pg_be_ids(be, "unsigned releases",
	                 "SELECT id FROM releases WHERE signature IS NULL ORDER BY id LIMIT 64", NULL,
	                 ids_out, n_out, err);
}

/* The files of a release: the artifacts of its pipeline's current
 * successful build jobs. */
int pg_release_files(struct store_be *be, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                     struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, pipeline_id);
	r = pg_be_exec(
	    be, "release files",
	    "SELECT j.target, a.name, a.size, a.sha256 FROM jobs j JOIN artifacts a ON a.job_id = j.id"
	    " WHERE j.pipeline_id = $1 AND j.name = 'build' AND j.state = 'success'"
	    " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)"
	    " ORDER BY j.target COLLATE \"C\", a.name COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].target = pg_dup0(r, i, 0);
		(*out)[i].name = pg_dup0(r, i, 1);
		(*out)[i].size = pg_i64(r, i, 2);
		snprintf((*out)[i].sha256, sizeof((*out)[i].sha256), "%s", PQgetvalue(r, i, 3));
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

int pg_release_sign(struct store_be *be, int64_t id, const char *manifest, const char *signature,
                    const char *keynum_hex, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_i64(&a, id);
	pg_arg_text(&a, manifest);
	pg_arg_text(&a, signature);
	pg_arg_text(&a, keynum_hex);
	if (pg_be_cmd(be, "release sign",
	              "UPDATE releases SET manifest = $2, signature = $3, keynum = $4 WHERE id = $1"
	              " AND signature IS NULL",
	              &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_CONFLICT, "release %lld is signed already", (long long)id);
	return 0;
}

int pg_release_get(struct store_be *be, int64_t id, const char *repo, const char *version,
                   struct release_row *out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;

	pg_arg_i64(&a, id);
	pg_arg_text(&a, repo);
	pg_arg_text(&a, version);
	r = pg_be_exec(be, "release get",
	               PG_REL_COLS "WHERE ($1::bigint > 0 AND x.id = $1) OR ($1::bigint = 0 AND r.name = $2"
	                           " AND x.version = $3)",
	               &a, err);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return err_set(err, ERR_NOTFOUND, "no such release");
	}
	pg_release_row_read(r, 0, out);
	PQclear(r);
	return 0;
}

int pg_release_list(struct store_be *be, const char *repo, int limit, struct release_row **out, size_t *n_out,
                    struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, limit);
	pg_arg_text(&a, repo);
	r = pg_be_exec(be, "release list",
	               PG_REL_COLS "WHERE ($2::text IS NULL OR r.name = $2) ORDER BY x.id DESC LIMIT $1", &a,
	               err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++)
		pg_release_row_read(r, i, &(*out)[i]);
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}

/* Where a release is live: the boards whose current release directory is
 * the version, switched to it by a deploy of that repository. */
int pg_release_boards(struct store_be *be, int64_t repo_id, const char *version,
                      struct release_board_row **out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n;

	pg_arg_i64(&a, repo_id);
	pg_arg_text(&a, version);
	r = pg_be_exec(
	    be, "release boards",
	    "SELECT b.name, min(b.grp), max(d.updated_unix_ms) FROM boards b JOIN deployment_boards d"
	    " ON d.board = b.name AND d.current = b.current_release JOIN jobs j ON j.id = d.job_id"
	    " JOIN pipelines p ON p.id = j.pipeline_id WHERE b.current_release = 'releases/' || $2::text"
	    " AND p.repo_id = $1 AND d.state IN ('healthy', 'rolled_back') GROUP BY b.name"
	    " ORDER BY b.name COLLATE \"C\"",
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*out = n > 0 ? xcalloc((size_t)n, sizeof(**out)) : NULL;
	for (int i = 0; i < n; i++) {
		(*out)[i].board = pg_dup0(r, i, 0);
		(*out)[i].group = pg_dup0(r, i, 1);
		(*out)[i].since_ms = pg_i64(r, i, 2);
	}
	*n_out = (size_t)n;
	PQclear(r);
	return 0;
}
