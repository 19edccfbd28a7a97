/* SQLite backend: release patterns, signing keys, releases and where they
 * are live. */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL_COLS                                                                                             \
	"x.id, x.repo_id, r.name, r.url, x.version, x.pipeline_id, x.commit_sha, x.created_unix_ms, "        \
	"x.manifest,"                                                                                        \
	" x.signature, x.keynum FROM releases x JOIN repos r ON r.id = x.repo_id "

const struct sq_sql sq_releases_sql[] = {
    {SQ_TX_RELEASE_RECORD, "INSERT INTO releases(repo_id, version, pipeline_id, commit_sha, created_unix_ms)"
                           " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(repo_id, version) DO NOTHING"},
    /* releases */
    {SQ_REL_PATTERN_SET, "UPDATE repos SET release_pattern = ?2 WHERE name = ?1"},
    {SQ_REL_PATTERN_GET, "SELECT release_pattern FROM repos WHERE name = ?1"},
    {SQ_REL_KEY_RETIRE, "UPDATE release_keys SET retired_unix_ms = ?1 WHERE retired_unix_ms IS NULL"},
    {SQ_REL_KEY_ADD, "INSERT INTO release_keys(keynum, pubkey, created_unix_ms) VALUES(?1, ?2, ?3)"},
    {SQ_REL_KEY_LIST, "SELECT keynum, pubkey, created_unix_ms, retired_unix_ms FROM release_keys"
                      " ORDER BY created_unix_ms DESC, rowid DESC"},
    {SQ_REL_UNSIGNED, "SELECT id FROM releases WHERE signature IS NULL ORDER BY id LIMIT 64"},
    /* The files of a release: the artifacts of its pipeline's current
     * successful build jobs. */
    {SQ_REL_FILES,
     "SELECT j.target, a.name, a.size, a.sha256 FROM jobs j JOIN artifacts a ON a.job_id = j.id"
     " WHERE j.pipeline_id = ?1 AND j.name = 'build' AND j.state = 'success'"
     " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id) ORDER BY j.target, a.name"},
    {SQ_REL_SIGN, "UPDATE releases SET manifest = ?2, signature = ?3, keynum = ?4 WHERE id = ?1"
                  " AND signature IS NULL"},
    {SQ_REL_GET,
     "SELECT " REL_COLS "WHERE (?1 > 0 AND x.id = ?1) OR (?1 = 0 AND r.name = ?2 AND x.version = ?3)"},
    {SQ_REL_LIST, "SELECT " REL_COLS "ORDER BY x.id DESC LIMIT ?1"},
    {SQ_REL_LIST_REPO, "SELECT " REL_COLS "WHERE r.name = ?2 ORDER BY x.id DESC LIMIT ?1"},
    {SQ_REL_DEPLOYS_ORPHANED,
     "SELECT j.id, j.pipeline_id, x.version, r.name, x.pipeline_id FROM jobs j"
     " JOIN pipelines p ON p.id = j.pipeline_id JOIN repos r ON r.id = p.repo_id"
     " JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"
     " WHERE j.state = 'queued' AND j.kind = 'deploy' AND j.name = 'deploy'"
     " AND substr(p.ref, 1, 10) = 'refs/tags/' AND x.pipeline_id <> p.id ORDER BY j.id LIMIT 64"},
    {SQ_REL_DEPLOYS_WAITING, "SELECT id FROM jobs WHERE pipeline_id = ?1 AND state = 'queued'"
                             " AND kind = 'deploy' AND name = 'deploy' ORDER BY id"},
    /* Where a release is live: the boards whose current release directory
     * is the version, switched to it by a deploy of that repository. */
    {SQ_REL_BOARDS,
     "SELECT b.name, b.grp, max(d.updated_unix_ms) FROM boards b JOIN deployment_boards d"
     " ON d.board = b.name AND d.current = b.current_release JOIN jobs j ON j.id = d.job_id"
     " JOIN pipelines p ON p.id = j.pipeline_id WHERE b.current_release = 'releases/' || ?2"
     " AND p.repo_id = ?1 AND d.state IN ('healthy', 'rolled_back') GROUP BY b.name ORDER BY b.name"},
};
const size_t sq_releases_sql_n = sizeof(sq_releases_sql) / sizeof(sq_releases_sql[0]);

static void sq_release_row_read(sqlite3_stmt *s, void *row)
{
	struct release_row *r = row;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	r->repo_id = sqlite3_column_int64(s, 1);
	r->repo_name = sq_col_dup_empty(s, 2);
	r->repo_url = sq_col_dup_empty(s, 3);
	r->version = sq_col_dup_empty(s, 4);
	r->pipeline_id = sqlite3_column_int64(s, 5);
	r->commit_sha = sq_col_dup_empty(s, 6);
	r->created_ms = sqlite3_column_int64(s, 7);
	r->manifest = sq_col_dup(s, 8);
	r->signature = sq_col_dup(s, 9);
	r->keynum = sq_col_dup(s, 10);
}

int sq_release_pattern_set(struct store_be *be, const char *repo, const char *pattern, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_PATTERN_SET);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, pattern);
	rc = sq_exec(be, s, "release pattern", err);
	if (rc == 0 && sqlite3_changes(be->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_release_pattern_get(struct store_be *be, const char *repo, char **out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_PATTERN_GET);
	sq_bind_text(s, 1, repo);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = sq_col_dup_empty(s, 0);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	} else {
		sq_fail(be, err, step, "release pattern");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_release_key_add(struct store_be *be, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                       struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	s = sq_stmt(be, SQ_REL_KEY_RETIRE);
	sq_bind_i64(s, 1, now_ms);
	if (sq_exec(be, s, "retire release keys", err) < 0)
		goto fail;
	s = sq_stmt(be, SQ_REL_KEY_ADD);
	sq_bind_text(s, 1, keynum_hex);
	sq_bind_text(s, 2, pubkey);
	sq_bind_i64(s, 3, now_ms);
	if (sq_exec(be, s, "add release key", err) < 0 || sq_commit(be, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_release_key_row_read(sqlite3_stmt *s, void *row)
{
	struct release_key_row *r = row;

	r->keynum = sq_col_dup_empty(s, 0);
	r->pubkey = sq_col_dup_empty(s, 1);
	r->created_ms = sqlite3_column_int64(s, 2);
	r->retired_ms = sqlite3_column_int64(s, 3);
}

int sq_release_key_list(struct store_be *be, struct release_key_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_KEY_LIST);
	rc = sq_rows(be, s, "release keys", sizeof(struct release_key_row), sq_release_key_row_read, &rows,
	             &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		release_key_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_release_unsigned(struct store_be *be, int64_t **ids_out, size_t *n_out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&be->mu);
	rc = sq_ids(be, sq_stmt(be, SQ_REL_UNSIGNED), "unsigned releases", ids_out, n_out, err);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static void sq_release_file_row_read(sqlite3_stmt *s, void *row)
{
	struct release_file_row *r = row;

	r->target = sq_col_dup_empty(s, 0);
	r->name = sq_col_dup_empty(s, 1);
	r->size = sqlite3_column_int64(s, 2);
	snprintf(r->sha256, sizeof(r->sha256), "%s", (const char *)sqlite3_column_text(s, 3));
}

int sq_release_files(struct store_be *be, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                     struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_FILES);
	sq_bind_i64(s, 1, pipeline_id);
	rc = sq_rows(be, s, "release files", sizeof(struct release_file_row), sq_release_file_row_read, &rows,
	             &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		release_file_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_release_sign(struct store_be *be, int64_t id, const char *manifest, const char *signature,
                    const char *keynum_hex, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_SIGN);
	sq_bind_i64(s, 1, id);
	sq_bind_text(s, 2, manifest);
	sq_bind_text(s, 3, signature);
	sq_bind_text(s, 4, keynum_hex);
	rc = sq_exec(be, s, "release sign", err);
	if (rc == 0 && sqlite3_changes(be->db) == 0)
		rc = err_set(err, ERR_CONFLICT, "release %lld is signed already", (long long)id);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_release_get(struct store_be *be, int64_t id, const char *repo, const char *version,
                   struct release_row *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_GET);
	sq_bind_i64(s, 1, id);
	sq_bind_text(s, 2, repo);
	sq_bind_text(s, 3, version);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		sq_release_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no such release");
	} else {
		sq_fail(be, err, step, "release get");
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_release_list(struct store_be *be, const char *repo, int limit, struct release_row **out, size_t *n_out,
                    struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, repo ? SQ_REL_LIST_REPO : SQ_REL_LIST);
	sq_bind_i64(s, 1, limit);
	if (repo)
		sq_bind_text(s, 2, repo);
	rc = sq_rows(be, s, "release list", sizeof(struct release_row), sq_release_row_read, &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		release_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

static void sq_release_board_row_read(sqlite3_stmt *s, void *row)
{
	struct release_board_row *r = row;

	r->board = sq_col_dup_empty(s, 0);
	r->group = sq_col_dup_empty(s, 1);
	r->since_ms = sqlite3_column_int64(s, 2);
}

int sq_release_boards(struct store_be *be, int64_t repo_id, const char *version,
                      struct release_board_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	void *rows;
	size_t n;
	int rc;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_REL_BOARDS);
	sq_bind_i64(s, 1, repo_id);
	sq_bind_text(s, 2, version);
	rc = sq_rows(be, s, "release boards", sizeof(struct release_board_row), sq_release_board_row_read,
	             &rows, &n, err);
	pthread_mutex_unlock(&be->mu);
	if (rc < 0) {
		release_board_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- transaction primitives ---- */

int sq_tx_release_record(struct store_tx *tx, int64_t repo_id, const char *version, int64_t pipeline_id,
                         const char *commit_sha, int64_t now_ms, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_TX_RELEASE_RECORD);

	sq_bind_i64(s, 1, repo_id);
	sq_bind_text(s, 2, version);
	sq_bind_i64(s, 3, pipeline_id);
	sq_bind_text(s, 4, commit_sha);
	sq_bind_i64(s, 5, now_ms);
	return sq_exec(be, s, "release record", err);
}

static void sq_orphan_deploy_row_read(sqlite3_stmt *s, void *row)
{
	struct orphan_deploy_row *r = row;

	r->job_id = sqlite3_column_int64(s, 0);
	r->pipeline_id = sqlite3_column_int64(s, 1);
	r->version = sq_col_dup_empty(s, 2);
	r->repo_name = sq_col_dup_empty(s, 3);
	r->release_pipeline_id = sqlite3_column_int64(s, 4);
}

int sq_tx_release_orphan_deploys(struct store_tx *tx, struct orphan_deploy_row **out, size_t *n_out,
                                 struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_REL_DEPLOYS_ORPHANED);
	void *rows;
	size_t n;

	if (sq_rows(be, s, "orphaned release deploys", sizeof(struct orphan_deploy_row),
	            sq_orphan_deploy_row_read, &rows, &n, err) < 0) {
		orphan_deploy_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_tx_release_waiting_deploys(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                  struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	sqlite3_stmt *s = sq_stmt(be, SQ_REL_DEPLOYS_WAITING);

	sq_bind_i64(s, 1, pipeline_id);
	return sq_ids(be, s, "waiting release deploys", ids_out, n_out, err);
}
