/* The SQLite backend of the store (server/store/store_be.h): opening and
 * migrating the database, the statement table, the helpers every sqlite_*.c
 * file shares (sqlite_int.h), transactions, and the ops table. */

#include "server/store/sqlite_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* Ordered migrations: user_version N means migrations[0..N-1] ran. */
static const char *const sq_migrations[] = {
    /* 1: the walking skeleton */
    "CREATE TABLE tokens(kind TEXT PRIMARY KEY, sha256 TEXT NOT NULL);"
    "CREATE TABLE repos(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL,"
    " created_unix_ms INTEGER NOT NULL);"
    "CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, labels TEXT NOT NULL,"
    " last_seen_unix_ms INTEGER NOT NULL);"
    "CREATE TABLE pipelines(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id),"
    " ref TEXT NOT NULL, commit_sha TEXT NOT NULL, event TEXT NOT NULL, delivery TEXT UNIQUE,"
    " state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', commit_message TEXT NOT NULL DEFAULT '',"
    " author TEXT NOT NULL DEFAULT '', created_unix_ms INTEGER NOT NULL, finished_unix_ms INTEGER);"
    "CREATE INDEX pipelines_repo ON pipelines(repo_id, id);"
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),"
    " name TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL, exit_code INTEGER, agent_id INTEGER REFERENCES agents(id),"
    " message TEXT NOT NULL DEFAULT '', retry_of INTEGER UNIQUE REFERENCES jobs(id), spec TEXT NOT NULL,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0, lease_until_unix_ms INTEGER,"
    " log_bytes INTEGER NOT NULL DEFAULT 0, log_truncated INTEGER NOT NULL DEFAULT 0,"
    " created_unix_ms INTEGER NOT NULL, started_unix_ms INTEGER, finished_unix_ms INTEGER);"
    "CREATE INDEX jobs_state ON jobs(state, id);"
    "CREATE INDEX jobs_pipeline ON jobs(pipeline_id, id);"
    "CREATE TABLE log_chunks(job_id INTEGER NOT NULL REFERENCES jobs(id), attempt INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(job_id, attempt, seq));"
    "CREATE INDEX log_chunks_off ON log_chunks(job_id, off);"
    "CREATE TABLE blobs(sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, created_unix_ms INTEGER NOT NULL);"
    "CREATE TABLE artifacts(job_id INTEGER NOT NULL REFERENCES jobs(id), name TEXT NOT NULL,"
    " sha256 TEXT NOT NULL REFERENCES blobs(sha256), size INTEGER NOT NULL, PRIMARY KEY(job_id, name));",
    /* 2: OTA deploy: a job kind and required labels; boards (their private
     * key is a secret, kept in this file like repository secrets); a
     * pipeline's deploy entries (plans); what each board of a deploy job went
     * through. A deploy job is created by a trigger in the very transaction
     * that finishes the pipeline's last build job successfully. */
    "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'build';"
    "ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE boards(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, host TEXT NOT NULL,"
    " port INTEGER NOT NULL, user TEXT NOT NULL, arch TEXT NOT NULL, grp TEXT NOT NULL,"
    " labels TEXT NOT NULL DEFAULT '', host_key TEXT NOT NULL, private_key TEXT NOT NULL,"
    " current_release TEXT, created_unix_ms INTEGER NOT NULL);"
    "CREATE INDEX boards_grp ON boards(grp, name);"
    "CREATE TABLE deploy_plans(pipeline_id INTEGER NOT NULL REFERENCES pipelines(id), grp TEXT NOT NULL,"
    " spec TEXT NOT NULL, labels TEXT NOT NULL, auto INTEGER NOT NULL, PRIMARY KEY(pipeline_id, grp));"
    "CREATE TABLE deployment_boards(job_id INTEGER NOT NULL REFERENCES jobs(id), board TEXT NOT NULL,"
    " attempt INTEGER NOT NULL, release TEXT NOT NULL, previous TEXT NOT NULL, current TEXT NOT NULL,"
    " state TEXT NOT NULL, message TEXT NOT NULL, bytes_sent INTEGER NOT NULL, files_uploaded INTEGER NOT "
    "NULL,"
    " files_skipped INTEGER NOT NULL, restart_exit INTEGER NOT NULL, restart_output TEXT NOT NULL,"
    " health_exit INTEGER NOT NULL, health_output TEXT NOT NULL, started_unix_ms INTEGER NOT NULL,"
    " updated_unix_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL, PRIMARY KEY(job_id, board));"
    "CREATE INDEX jobs_kind ON jobs(kind, target, id);"
    "CREATE TRIGGER jobs_deploy_after_build AFTER UPDATE OF state ON jobs"
    " WHEN NEW.state = 'success' AND OLD.state <> 'success' AND NEW.kind = 'build'"
    " AND NOT EXISTS (SELECT 1 FROM jobs b WHERE b.pipeline_id = NEW.pipeline_id AND b.kind = 'build'"
    " AND b.state <> 'success' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = b.id))"
    " BEGIN INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, created_unix_ms, kind, "
    "labels)"
    " SELECT d.pipeline_id, 'deploy', d.grp, 'queued', NEW.max_attempts, d.spec,"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'deploy', d.labels FROM deploy_plans d"
    " WHERE d.pipeline_id = NEW.pipeline_id AND d.auto = 1 AND NOT EXISTS (SELECT 1 FROM jobs x"
    " WHERE x.pipeline_id = d.pipeline_id AND x.kind = 'deploy' AND x.target = d.grp) ORDER BY d.grp; END;",
    /* 3: forges: a repository's forge settings, its secrets, the heads the
     * poller saw, and the commit status queue. The queue is filled by
     * triggers on jobs, so a status is queued in the very transaction that
     * changes the job's state, whichever store function made the change. */
    "ALTER TABLE repos ADD COLUMN forge TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE repos ADD COLUMN hook_secret TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE repos ADD COLUMN status_token TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE repos ADD COLUMN api_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE repos ADD COLUMN poll_s INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE repo_secrets(repo_id INTEGER NOT NULL REFERENCES repos(id), name TEXT NOT NULL,"
    " value TEXT NOT NULL, updated_unix_ms INTEGER NOT NULL, PRIMARY KEY(repo_id, name));"
    "CREATE TABLE poll_heads(repo_id INTEGER NOT NULL REFERENCES repos(id), ref TEXT NOT NULL,"
    " sha TEXT NOT NULL, PRIMARY KEY(repo_id, ref));"
    "CREATE TABLE status_queue(id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id),"
    " state TEXT NOT NULL, description TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_unix_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',"
    " gave_up INTEGER NOT NULL DEFAULT 0, created_unix_ms INTEGER NOT NULL);"
    "CREATE INDEX status_queue_due ON status_queue(gave_up, next_attempt_unix_ms);"
    "CREATE INDEX status_queue_job ON status_queue(job_id, id);"
    "CREATE TRIGGER jobs_status_insert AFTER INSERT ON jobs"
    " WHEN (SELECT r.status_token <> '' AND r.forge IN ('github', 'gitea', 'gitlab') FROM pipelines p"
    " JOIN repos r ON r.id = p.repo_id WHERE p.id = NEW.pipeline_id)"
    " BEGIN INSERT INTO status_queue(job_id, state, description, next_attempt_unix_ms, created_unix_ms)"
    " VALUES(NEW.id, 'pending', 'queued', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;"
    "CREATE TRIGGER jobs_status_update AFTER UPDATE OF state ON jobs"
    " WHEN OLD.state <> NEW.state AND (SELECT r.status_token <> '' AND r.forge IN ('github', 'gitea', "
    "'gitlab')"
    " FROM pipelines p JOIN repos r ON r.id = p.repo_id WHERE p.id = NEW.pipeline_id)"
    " BEGIN INSERT INTO status_queue(job_id, state, description, next_attempt_unix_ms, created_unix_ms)"
    " VALUES(NEW.id, CASE NEW.state WHEN 'queued' THEN 'pending' WHEN 'running' THEN 'pending'"
    " WHEN 'success' THEN 'success' WHEN 'failed' THEN 'failure' ELSE 'error' END, NEW.state,"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;",
    /* 4: releases. A repository's release tag pattern; the release signing
     * keys' public halves (old ones stay so old releases still verify); a
     * release per (repo, version), recorded by a trigger in the very
     * transaction that finishes a tag pipeline's last build job successfully,
     * then signed by the server (server/release.c fills manifest, signature,
     * keynum; an unsigned row is picked up again after a crash). */
    "ALTER TABLE repos ADD COLUMN release_pattern TEXT NOT NULL DEFAULT 'v*';"
    "CREATE TABLE release_keys(keynum TEXT PRIMARY KEY, pubkey TEXT NOT NULL, created_unix_ms INTEGER NOT "
    "NULL,"
    " retired_unix_ms INTEGER);"
    "CREATE TABLE releases(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id),"
    " version TEXT NOT NULL, pipeline_id INTEGER NOT NULL REFERENCES pipelines(id), commit_sha TEXT NOT NULL,"
    " created_unix_ms INTEGER NOT NULL, manifest TEXT, signature TEXT, keynum TEXT, UNIQUE(repo_id, "
    "version));"
    "CREATE TRIGGER jobs_release_after_build AFTER UPDATE OF state ON jobs"
    " WHEN NEW.state = 'success' AND OLD.state <> 'success' AND NEW.name = 'build'"
    " AND NOT EXISTS (SELECT 1 FROM jobs b WHERE b.pipeline_id = NEW.pipeline_id AND b.name = 'build'"
    " AND b.state <> 'success' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = b.id))"
    " BEGIN INSERT OR IGNORE INTO releases(repo_id, version, pipeline_id, commit_sha, created_unix_ms)"
    " SELECT p.repo_id, substr(p.ref, 11), p.id, p.commit_sha,"
    " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM pipelines p JOIN repos r ON r.id = "
    "p.repo_id"
    " WHERE p.id = NEW.pipeline_id AND substr(p.ref, 1, 10) = 'refs/tags/' AND length(p.ref) > 10"
    " AND substr(p.ref, 11) GLOB r.release_pattern; END;",
    /* 5: retention: when a finished job's log chunks and artifact rows were
     * removed by the housekeeping pass (server/retention.c), so it passes
     * over a job once; jobs are found by their finish time. */
    "ALTER TABLE jobs ADD COLUMN log_expired_unix_ms INTEGER;"
    "ALTER TABLE jobs ADD COLUMN artifacts_expired_unix_ms INTEGER;"
    "CREATE INDEX jobs_finished ON jobs(finished_unix_ms);"
    "CREATE INDEX artifacts_sha ON artifacts(sha256);",
    /* 6: compressed log chunks: raw_len NULL means data is stored as is;
     * else data is zlib (deflate) and raw_len its uncompressed length. off
     * stays in uncompressed bytes. */
    "ALTER TABLE log_chunks ADD COLUMN raw_len INTEGER;",
    /* Per-agent identity and agent pools: each agent holds its own token
     * (sha256 here, issued by register, NULL once revoked); a removed agent
     * keeps its row (jobs name it) with removed_unix_ms set; a repository's
     * agent_labels ("k=v,k=v", "" = any agent) is what an agent must carry to
     * claim its jobs and so receive its secrets. */
    "ALTER TABLE agents ADD COLUMN token_sha256 TEXT;"
    "ALTER TABLE agents ADD COLUMN removed_unix_ms INTEGER;"
    "CREATE UNIQUE INDEX agents_token ON agents(token_sha256);"
    "ALTER TABLE repos ADD COLUMN agent_labels TEXT NOT NULL DEFAULT '';",
    /* Delivery ids are unique per repository, not across them: a forge's
     * delivery id says nothing about another repository's hooks. SQLite
     * cannot drop a column's UNIQUE in place, so the table is rebuilt (its
     * rows, ids and index kept); store_migrate runs migrations with foreign
     * keys off and checks them before committing, as SQLite's own procedure
     * for a rebuild asks. legacy_alter_table: the rename must not rewrite
     * the triggers on jobs that name pipelines. */
    "CREATE TABLE pipelines_new(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id),"
    " ref TEXT NOT NULL, commit_sha TEXT NOT NULL, event TEXT NOT NULL, delivery TEXT,"
    " state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', commit_message TEXT NOT NULL DEFAULT '',"
    " author TEXT NOT NULL DEFAULT '', created_unix_ms INTEGER NOT NULL, finished_unix_ms INTEGER,"
    " UNIQUE(repo_id, delivery));"
    "INSERT INTO pipelines_new(id, repo_id, ref, commit_sha, event, delivery, state, message,"
    " commit_message, author, created_unix_ms, finished_unix_ms) SELECT id, repo_id, ref, commit_sha,"
    " event, delivery, state, message, commit_message, author, created_unix_ms, finished_unix_ms"
    " FROM pipelines;"
    "DROP TABLE pipelines;"
    "PRAGMA legacy_alter_table = ON;"
    "ALTER TABLE pipelines_new RENAME TO pipelines;"
    "PRAGMA legacy_alter_table = OFF;"
    "CREATE INDEX pipelines_repo ON pipelines(repo_id, id);",
    /* Web UI sessions, server-side: the sha256 of the random cookie value
     * (never the value), bound to the admin token's hash (a new admin token
     * ends every session), with its expiry; logout deletes the row, an
     * admin can delete them all, retention removes expired ones. */
    "CREATE TABLE ui_sessions(id_sha256 TEXT PRIMARY KEY, admin_sha256 TEXT NOT NULL,"
    " created_unix_ms INTEGER NOT NULL, expires_unix_ms INTEGER NOT NULL);"
    "CREATE INDEX ui_sessions_expires ON ui_sessions(expires_unix_ms);",
    /* An artifact's permission bits as its agent found them in the
     * workspace (0755 or 0644), kept through downloads and deploys; 0 for
     * rows stored before (a deploy then falls back to 0755 for ELF files). */
    "ALTER TABLE artifacts ADD COLUMN mode INTEGER NOT NULL DEFAULT 0;",
    /* 11: the rules the triggers of migrations 2, 3 and 4 made (a deploy job
     * after a pipeline's last build, a release after a tag pipeline's last
     * build, a commit status per job state) are C in
     * server/sched/jobstate.c, in the same transaction, the same on every
     * backend: the triggers go. */
    "DROP TRIGGER jobs_deploy_after_build;"
    "DROP TRIGGER jobs_status_insert;"
    "DROP TRIGGER jobs_status_update;"
    "DROP TRIGGER jobs_release_after_build;",
    /* 12: pipelines as graphs: a job waits for the current (not retried)
     * job of its pipeline named name for target (.anvil.yml needs:). By
     * name and target, not id, so a retried job is waited for as itself. */
    ("CREATE TABLE job_needs(job_id INTEGER NOT NULL REFERENCES jobs(id), name TEXT NOT NULL,"
     " target TEXT NOT NULL, PRIMARY KEY(job_id, name, target));"),
    /* 13: variables of a manual trigger (anvil trigger -e KEY=VAL): a JSON
     * array of "KEY=VALUE" strings, '' for none. */
    ("ALTER TABLE pipelines ADD COLUMN variables TEXT NOT NULL DEFAULT '';"
     /* and approval gates (approve: true): a job with approve = 1 is not
      * handed out until approved_unix_ms is set, by approved_by. */
     "ALTER TABLE jobs ADD COLUMN approve INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE jobs ADD COLUMN approved_by TEXT;"
     "ALTER TABLE jobs ADD COLUMN approved_unix_ms INTEGER;"
     "ALTER TABLE deploy_plans ADD COLUMN approve INTEGER NOT NULL DEFAULT 0;"),
    /* 14: cron schedules: a repository's ref built at each due time
     * (server/sched/cronsched.c). next_unix_s is the claim: a server fires
     * a due time only when it moved next_unix_s on from it itself. */
    ("CREATE TABLE schedules(id INTEGER PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repos(id),"
     " name TEXT NOT NULL, ref TEXT NOT NULL, cron TEXT NOT NULL, next_unix_s INTEGER NOT NULL,"
     " last_unix_s INTEGER NOT NULL DEFAULT 0, created_unix_ms INTEGER NOT NULL,"
     " UNIQUE(repo_id, name));"
     /* a secret that pull requests from forks get too (default: not) */
     "ALTER TABLE repo_secrets ADD COLUMN pull_requests INTEGER NOT NULL DEFAULT 0;"),
    /* 15: steps are first-class: each attempt's steps with their state,
     * times and the log bytes they span (from the agent's framed chunks),
     * and the time marks of each chunk (logframe_times_pack) beside it. */
    ("CREATE TABLE job_steps(job_id INTEGER NOT NULL REFERENCES jobs(id), attempt INTEGER NOT NULL,"
     " idx INTEGER NOT NULL, name TEXT NOT NULL, command TEXT NOT NULL, state TEXT NOT NULL,"
     " exit_code INTEGER, started_unix_ms INTEGER NOT NULL, finished_unix_ms INTEGER,"
     " start_off INTEGER NOT NULL, end_off INTEGER, lines INTEGER, PRIMARY KEY(job_id, attempt, idx));"
     "CREATE TABLE log_times(job_id INTEGER NOT NULL REFERENCES jobs(id), attempt INTEGER NOT NULL,"
     " seq INTEGER NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(job_id, attempt, seq));"
     "CREATE INDEX log_times_off ON log_times(job_id, off);"),
};

const struct sq_sql sq_main_sql[] = {
    {SQ_BEGIN, "BEGIN IMMEDIATE"},
    {SQ_COMMIT, "COMMIT"},
    {SQ_ROLLBACK, "ROLLBACK"},
};
const size_t sq_main_sql_n = sizeof(sq_main_sql) / sizeof(sq_main_sql[0]);

int sq_fail(struct store_be *be, struct err *err, int rc, const char *what)
{
	if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
		return err_set(err, ERR_CONFLICT, "%s: %s", what, sqlite3_errmsg(be->db));
	if ((rc & 0xff) == SQLITE_BUSY)
		return err_set(err, ERR_UNAVAIL, "%s: database busy", what);
	return err_set(err, ERR_SYS, "%s: %s", what, sqlite3_errmsg(be->db));
}

void sq_done(sqlite3_stmt *s)
{
	if (s == NULL) /* its prepare failed: sqlite3_clear_bindings needs a statement */
		return;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps s to its end, collecting its first column (ids) into *ids_out
 * (owned, NULL when none); the statement is reset either way. */
int sq_ids(struct store_be *be, sqlite3_stmt *s, const char *what, int64_t **ids_out, size_t *n_out,
           struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	sq_done(s);
	if (step != SQLITE_DONE) {
		free(ids);
		*ids_out = NULL;
		*n_out = 0;
		return sq_fail(be, err, step, what);
	}
	*ids_out = ids;
	*n_out = n;
	return 0;
}

int sq_rows(struct store_be *be, sqlite3_stmt *s, const char *what, size_t row_size,
            void (*read)(sqlite3_stmt *s, void *row), void **rows_out, size_t *n_out, struct err *err)
{
	char *rows = NULL;
	size_t n = 0, cap = 0;
	int step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			rows = xrealloc(rows, cap * row_size);
		}
		memset(rows + n * row_size, 0, row_size);
		read(s, rows + n * row_size);
		n++;
	}
	if (step != SQLITE_DONE)
		sq_fail(be, err, step, what);
	sq_done(s);
	*rows_out = rows;
	*n_out = n;
	return step == SQLITE_DONE ? 0 : -1;
}

/* SQLITE_STATIC: no copy, so no allocation that can fail. A failed bind
 * leaves NULL in its place and the statement still runs: a lost delivery id
 * or an out-of-memory reported as a NOT NULL conflict (found by
 * test_torture). Every caller's text outlives the statement's use, which
 * ends in store_done (reset and clear_bindings) before it returns. */
void sq_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

void sq_bind_i64(sqlite3_stmt *s, int i, int64_t v)
{
	sqlite3_bind_int64(s, i, v);
}

char *sq_col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

char *sq_col_dup_empty(sqlite3_stmt *s, int i)
{
	char *t = sq_col_dup(s, i);

	return t ? t : xstrdup("");
}

/* Steps a statement that returns no rows. */
int sq_exec(struct store_be *be, sqlite3_stmt *s, const char *what, struct err *err)
{
	int rc = sqlite3_step(s);

	sq_done(s);
	if (rc != SQLITE_DONE)
		return sq_fail(be, err, rc, what);
	return 0;
}

int sq_begin(struct store_be *be, struct err *err)
{
	return sq_exec(be, sq_stmt(be, SQ_BEGIN), "begin", err);
}

int sq_commit(struct store_be *be, struct err *err)
{
	return sq_exec(be, sq_stmt(be, SQ_COMMIT), "commit", err);
}

void sq_rollback(struct store_be *be)
{
	sqlite3_stmt *s = sq_stmt(be, SQ_ROLLBACK);

	if (sqlite3_get_autocommit(be->db))
		return;
	sqlite3_step(s);
	sq_done(s);
}

/* Runs a statement expected to return one int64 column in one row. */
int sq_scalar(struct store_be *be, sqlite3_stmt *s, const char *what, int64_t *out, struct err *err)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		sq_done(s);
		return 0;
	}
	sq_done(s);
	if (rc == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "%s: not found", what);
	return sq_fail(be, err, rc, what);
}

static int sq_exec_script(struct store_be *be, const char *sql, struct err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(be->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, ERR_SYS, "sql: %s", msg ? msg : sqlite3_errmsg(be->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* -1 when a row refers to a missing one (foreign_key_check finds any). */
static int sq_fk_check(struct store_be *be, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(be->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
		return sq_fail(be, err, SQLITE_ERROR, "foreign_key_check");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		err_set(err, ERR_SYS, "a row of %s refers to a missing %s row", sqlite3_column_text(s, 0),
		        sqlite3_column_text(s, 2));
	else if (rc != SQLITE_DONE)
		sq_fail(be, err, rc, "foreign_key_check");
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_migrate(struct store_be *be, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int version = 0, n = (int)(sizeof(sq_migrations) / sizeof(sq_migrations[0]));
	char sql[64];

	if (sqlite3_prepare_v2(be->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return sq_fail(be, err, SQLITE_ERROR, "user_version");
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > n)
		return err_set(err, ERR_INVAL, "database schema version %d is newer than this anvil (%d)",
		               version, n);
	/* Off outside the transactions (a no-op inside one): a migration may
	 * rebuild a table others refer to; store_fk_check stands in. */
	if (version < n && sq_exec_script(be, "PRAGMA foreign_keys = OFF", err) < 0)
		return -1;
	for (int v = version; v < n; v++) {
		if (sq_exec_script(be, "BEGIN IMMEDIATE", err) < 0)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sq_exec_script(be, sq_migrations[v], err) < 0 || sq_fk_check(be, err) < 0 ||
		    sq_exec_script(be, sql, err) < 0) {
			sq_exec_script(be, "ROLLBACK", NULL);
			sq_exec_script(be, "PRAGMA foreign_keys = ON", NULL);
			return err_wrap(err, "migration %d", v + 1);
		}
		if (sq_exec_script(be, "COMMIT", err) < 0)
			return -1;
		log_info("event=store_migrated version=%d", v + 1);
	}
	return sq_exec_script(be, "PRAGMA foreign_keys = ON", err);
}

int sq_integrity_check(struct store_be *be, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	if (sqlite3_prepare_v2(be->db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK) {
		sq_fail(be, err, SQLITE_ERROR, "integrity_check");
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(be, err, SQLITE_ERROR, "integrity_check");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
		err_set(err, ERR_SYS, "integrity_check: %s", sqlite3_column_text(s, 0));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

static const struct {
	const struct sq_sql *sql;
	const size_t *n;
} sq_tables[] = {
    {sq_main_sql, &sq_main_sql_n},         {sq_jobs_sql, &sq_jobs_sql_n},
    {sq_logs_sql, &sq_logs_sql_n},         {sq_artifacts_sql, &sq_artifacts_sql_n},
    {sq_agents_sql, &sq_agents_sql_n},     {sq_forges_sql, &sq_forges_sql_n},
    {sq_deploys_sql, &sq_deploys_sql_n},   {sq_releases_sql, &sq_releases_sql_n},
    {sq_sessions_sql, &sq_sessions_sql_n}, {sq_schedules_sql, &sq_schedules_sql_n},
};

/* Takes every file's statement texts (each id must have exactly one) and
 * compiles each once against the schema, keeping none: they are prepared
 * again when first used (sq_stmt). */
static int sq_check_all(struct store_be *be, struct err *err)
{
	for (size_t t = 0; t < sizeof(sq_tables) / sizeof(sq_tables[0]); t++) {
		for (size_t i = 0; i < *sq_tables[t].n; i++) {
			const struct sq_sql *q = &sq_tables[t].sql[i];
			sqlite3_stmt *s = NULL;
			int rc;

			if (be->sql[q->id] != NULL)
				return err_set(err, ERR_SYS, "statement %d has two texts", (int)q->id);
			be->sql[q->id] = q->sql;
			rc = sqlite3_prepare_v2(be->db, q->sql, -1, &s, NULL);
			sqlite3_finalize(s);
			if (rc != SQLITE_OK)
				return err_set(err, ERR_SYS, "prepare statement %d: %s", (int)q->id,
				               sqlite3_errmsg(be->db));
		}
	}
	for (int i = 0; i < SQ_COUNT; i++)
		if (be->sql[i] == NULL)
			return err_set(err, ERR_SYS, "statement %d has no text", i);
	/* The transaction's own statements are held from the start: a rollback
	 * runs on error paths, where a first prepare could fail too (out of
	 * memory) and leave the transaction open (test_torture). */
	if (sq_prepare_lazy(be, SQ_BEGIN) == NULL || sq_prepare_lazy(be, SQ_COMMIT) == NULL ||
	    sq_prepare_lazy(be, SQ_ROLLBACK) == NULL)
		return err_set(err, ERR_SYS, "prepare the transaction statements: %s",
		               sqlite3_errmsg(be->db));
	return 0;
}

sqlite3_stmt *sq_prepare_lazy(struct store_be *be, enum sq_stmt_id id)
{
	int rc = sqlite3_prepare_v3(be->db, be->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &be->stmt[id], NULL);

	/* A failed prepare leaves be->stmt[id] NULL. */
	if (rc != SQLITE_OK)
		log_warnx("event=store_prepare_failed statement=%d error=\"%s\"", (int)id,
		          sqlite3_errmsg(be->db));
	return be->stmt[id];
}

/* An SQLite store serves one server process (its wake-ups, log tails and
 * lease reaper are in that process): a POSIX write lock on PATH.lock, held
 * for the store's life, turns a second process away (F_GETLK names it).
 * The lock goes with the process, so a kill -9 leaves nothing to clean; a
 * process may open its own store twice (tests do). */
static int sq_lock(struct store_be *be, const char *path, struct err *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char *lock_path;

	if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
		return 0;
	lock_path = xasprintf("%s.lock", path);
	be->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (be->lock_fd < 0) {
		err_errno(err, "open %s", lock_path);
		free(lock_path);
		return -1;
	}
	free(lock_path);
	if (fcntl(be->lock_fd, F_SETLK, &fl) < 0) {
		struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

		if (fcntl(be->lock_fd, F_GETLK, &who) < 0 || who.l_type == F_UNLCK)
			who.l_pid = 0;
		return err_set(err, ERR_CONFLICT,
		               "%s is in use by another anvil-server (pid %ld): an SQLite store serves one "
		               "server process; servers that share a store use PostgreSQL (docs/install.md)",
		               path, (long)who.l_pid);
	}
	return 0;
}

static void sq_free(struct store_be *be)
{
	if (be == NULL)
		return;
	for (int i = 0; i < SQ_COUNT; i++)
		sqlite3_finalize(be->stmt[i]);
	sqlite3_close(be->db);
	if (be->lock_fd >= 0)
		close(be->lock_fd);
	store_vfs_free(be->vfs);
	pthread_mutex_destroy(&be->mu);
	free(be);
}

#define SQ_CACHE_KIB "512"

int store_sqlite_open(const char *path, struct failpoints *fp, struct store_be **out, struct err *err)
{
	struct store_be *be = xcalloc(1, sizeof(*be));
	int rc;

	be->lock_fd = -1;
	pthread_mutex_init(&be->mu, NULL);
	if (sq_lock(be, path, err) < 0)
		goto fail;
	if (fp != NULL && store_vfs_new(fp, &be->vfs, err) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &be->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     be->vfs ? store_vfs_name(be->vfs) : NULL);
	if (rc != SQLITE_OK) {
		err_set(err, ERR_SYS, "open database %s: %s", path,
		        be->db ? sqlite3_errmsg(be->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(be->db, 5000);
	/* cache_size: SQLite's default page cache is up to 2 MB per
	 * connection, which a server fills as its database grows past that
	 * (issue 17: +1.2 MB between 1,000 and 3,000 jobs). The pages the
	 * scheduler and the API touch per job (the queued and running jobs'
	 * index pages, the newest rows) fit in 512 KiB; the rest is read back
	 * from the kernel's page cache. */
	if (sq_exec_script(be,
	                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
	                   " PRAGMA cache_size = -" SQ_CACHE_KIB ";",
	                   err) < 0)
		goto fail;
	if (sq_migrate(be, err) < 0)
		goto fail;
	if (sq_check_all(be, err) < 0)
		goto fail;
	*out = be;
	return 0;
fail:
	sq_free(be);
	return -1;
}

/* ---- transactions: the mutex is held from begin to commit or rollback ---- */

int sq_tx_begin(struct store_be *be, struct store_tx **out, struct err *err)
{
	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0) {
		pthread_mutex_unlock(&be->mu);
		return -1;
	}
	*out = (struct store_tx *)be;
	return 0;
}

int sq_tx_commit(struct store_tx *tx, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	int rc = sq_commit(be, err);

	if (rc < 0)
		sq_rollback(be);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

void sq_tx_rollback(struct store_tx *tx)
{
	struct store_be *be = sq_tx_be(tx);

	if (be == NULL)
		return;
	sq_rollback(be);
	pthread_mutex_unlock(&be->mu);
}

/* One process owns an SQLite store: nobody else to tell. */
int sq_tx_notify(struct store_tx *tx, const char *topic, struct err *err)
{
	(void)tx;
	(void)topic;
	(void)err;
	return 0;
}

/* ---- offline copy ---- */

/* Rows in rowid order, so a row referring to an earlier one of its table
 * (a retry to its job) comes after it. */
static int sq_dump(struct store_be *be, const char *table, store_row_fn fn, void *arg, struct err *err)
{
	sqlite3_stmt *s = NULL;
	char *sql;
	const char **cols = NULL;
	struct store_value *vals = NULL;
	char(*num)[24] = NULL;
	int n, step, rc = -1;

	if (!store_table_known(table))
		return err_set(err, ERR_INVAL, "no table %s", table);
	sql = xasprintf("SELECT * FROM %s ORDER BY rowid", table);
	pthread_mutex_lock(&be->mu);
	if (sqlite3_prepare_v2(be->db, sql, -1, &s, NULL) != SQLITE_OK) {
		sq_fail(be, err, SQLITE_ERROR, table);
		goto out;
	}
	n = sqlite3_column_count(s);
	cols = xcalloc((size_t)n, sizeof(*cols));
	vals = xcalloc((size_t)n, sizeof(*vals));
	num = xcalloc((size_t)n, sizeof(*num));
	for (int i = 0; i < n; i++)
		cols[i] = sqlite3_column_name(s, i);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < n; i++) {
			struct store_value *v = &vals[i];

			memset(v, 0, sizeof(*v));
			switch (sqlite3_column_type(s, i)) {
			case SQLITE_NULL:
				v->is_null = 1;
				break;
			case SQLITE_INTEGER:
				snprintf(num[i], sizeof(num[i]), "%lld",
				         (long long)sqlite3_column_int64(s, i));
				v->data = num[i];
				v->len = strlen(num[i]);
				break;
			case SQLITE_BLOB:
				v->data = sqlite3_column_blob(s, i);
				v->len = (size_t)sqlite3_column_bytes(s, i);
				v->is_blob = 1;
				break;
			default:
				v->data = sqlite3_column_text(s, i);
				v->len = (size_t)sqlite3_column_bytes(s, i);
				break;
			}
			if (!v->is_null && v->data == NULL)
				v->data = "";
		}
		if (fn(arg, cols, vals, (size_t)n, err) < 0)
			goto out;
	}
	if (step != SQLITE_DONE) {
		sq_fail(be, err, step, table);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&be->mu);
	free(sql);
	free(cols);
	free(vals);
	free(num);
	return rc;
}

/* The mutex is held from load_begin to load_end. */
static int sq_load_begin(struct store_be *be, struct err *err)
{
	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto fail;
	for (size_t i = 0; i < store_tables_n; i++) {
		sqlite3_stmt *s = NULL;
		char *sql = xasprintf("SELECT count(*) FROM %s", store_tables[i]);
		int64_t n = 0;
		int rc = sqlite3_prepare_v2(be->db, sql, -1, &s, NULL);

		free(sql);
		if (rc != SQLITE_OK) {
			sq_fail(be, err, rc, store_tables[i]);
			goto fail_tx;
		}
		rc = sq_scalar(be, s, store_tables[i], &n, err);
		sqlite3_finalize(s);
		if (rc < 0)
			goto fail_tx;
		if (n > 0) {
			err_set(err, ERR_CONFLICT, "the destination store is not empty (%s holds %lld rows)",
			        store_tables[i], (long long)n);
			goto fail_tx;
		}
	}
	return 0;
fail_tx:
	sq_rollback(be);
fail:
	pthread_mutex_unlock(&be->mu);
	return -1;
}

static int sq_load_row(struct store_be *be, const char *table, const char *const *cols,
                       const struct store_value *vals, size_t n, struct err *err)
{
	struct buf sql = BUF_INIT;
	sqlite3_stmt *s = NULL;
	int rc;

	if (!store_table_known(table))
		return err_set(err, ERR_INVAL, "no table %s", table);
	buf_appendf(&sql, "INSERT INTO %s(", table);
	for (size_t i = 0; i < n; i++)
		buf_appendf(&sql, "%s\"%s\"", i ? ", " : "", cols[i]);
	buf_appendf(&sql, ") VALUES(");
	for (size_t i = 0; i < n; i++)
		buf_appendf(&sql, "%s?", i ? ", " : "");
	buf_appendf(&sql, ")");
	rc = sqlite3_prepare_v2(be->db, sql.data, -1, &s, NULL);
	buf_release(&sql);
	if (rc != SQLITE_OK)
		return sq_fail(be, err, rc, table);
	for (size_t i = 0; i < n; i++) {
		if (vals[i].is_null)
			sqlite3_bind_null(s, (int)i + 1);
		else if (vals[i].is_blob)
			sqlite3_bind_blob64(s, (int)i + 1, vals[i].data, vals[i].len, SQLITE_STATIC);
		else
			sqlite3_bind_text64(s, (int)i + 1, vals[i].data, vals[i].len, SQLITE_STATIC,
			                    SQLITE_UTF8);
	}
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sq_fail(be, err, rc, table);
	return 0;
}

static int sq_load_end(struct store_be *be, int commit, struct err *err)
{
	int rc = 0;

	if (commit && sq_fk_check(be, err) < 0)
		commit = 0, rc = -1;
	if (commit)
		rc = sq_commit(be, err);
	if (!commit || rc < 0)
		sq_rollback(be);
	pthread_mutex_unlock(&be->mu);
	return rc;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .free = sq_free,
    .tx_begin = sq_tx_begin,
    .tx_commit = sq_tx_commit,
    .tx_rollback = sq_tx_rollback,
    .tx_notify = sq_tx_notify,
    .tx_job_lock = sq_tx_job_lock,
    .tx_job_claim_lock = sq_tx_job_claim_lock,
    .tx_job_write = sq_tx_job_write,
    .tx_job_insert = sq_tx_job_insert,
    .tx_job_get = sq_tx_job_get,
    .tx_jobs_claimable = sq_tx_jobs_claimable,
    .tx_job_need_insert = sq_tx_job_need_insert,
    .tx_job_needs = sq_tx_job_needs,
    .tx_jobs_needing = sq_tx_jobs_needing,
    .tx_pipeline_current_jobs = sq_tx_pipeline_current_jobs,
    .tx_pipelines_superseded = sq_tx_pipelines_superseded,
    .tx_job_approve = sq_tx_job_approve,
    .tx_pipeline_set_message = sq_tx_pipeline_set_message,
    .tx_jobs_expired = sq_tx_jobs_expired,
    .tx_jobs_of_agent = sq_tx_jobs_of_agent,
    .tx_log_mark = sq_tx_log_mark,
    .tx_pipeline_insert = sq_tx_pipeline_insert,
    .tx_pipeline_by_delivery = sq_tx_pipeline_by_delivery,
    .tx_pipeline_facts = sq_tx_pipeline_facts,
    .tx_deploy_plan_insert = sq_tx_deploy_plan_insert,
    .tx_pipeline_states = sq_tx_pipeline_states,
    .tx_pipeline_set_state = sq_tx_pipeline_set_state,
    .tx_jobs_unsucceeded = sq_tx_jobs_unsucceeded,
    .tx_deploys_active = sq_tx_deploys_active,
    .tx_deploy_plans_pending = sq_tx_deploy_plans_pending,
    .tx_release_record = sq_tx_release_record,
    .tx_release_orphan_deploys = sq_tx_release_orphan_deploys,
    .tx_release_waiting_deploys = sq_tx_release_waiting_deploys,
    .tx_status_queue = sq_tx_status_queue,
    .tx_agent_upsert = sq_tx_agent_upsert,
    .tx_agent_remove = sq_tx_agent_remove,
    .watch = NULL,
    .dump = sq_dump,
    .load_begin = sq_load_begin,
    .load_row = sq_load_row,
    .load_end = sq_load_end,
    .integrity_check = sq_integrity_check,
    .token_set = sq_token_set,
    .token_get = sq_token_get,
    .repo_upsert = sq_repo_upsert,
    .repo_list = sq_repo_list,
    .pipeline_by_delivery = sq_pipeline_by_delivery,
    .pipeline_get = sq_pipeline_get,
    .pipeline_list = sq_pipeline_list,
    .pipeline_jobs = sq_pipeline_jobs,
    .job_get = sq_job_get,
    .job_heartbeat = sq_job_heartbeat,
    .log_append = sq_log_append,
    .log_read = sq_log_read,
    .job_steps = sq_job_steps,
    .log_times = sq_log_times,
    .artifact_add = sq_artifact_add,
    .artifact_list = sq_artifact_list,
    .artifact_get = sq_artifact_get,
    .job_inputs = sq_job_inputs,
    .log_expire = sq_log_expire,
    .artifact_expire = sq_artifact_expire,
    .blob_collect = sq_blob_collect,
    .blob_exists = sq_blob_exists,
    .agent_by_token = sq_agent_by_token,
    .job_owner_check = sq_job_owner_check,
    .agent_labels = sq_agent_labels,
    .agent_touch = sq_agent_touch,
    .agent_list = sq_agent_list,
    .stats = sq_stats,
    .repo_configure = sq_repo_configure,
    .repo_cfg_get = sq_repo_cfg_get,
    .repo_cfg_list = sq_repo_cfg_list,
    .secret_set = sq_secret_set,
    .secret_delete = sq_secret_delete,
    .secret_list = sq_secret_list,
    .poll_heads = sq_poll_heads,
    .poll_head_set = sq_poll_head_set,
    .status_due = sq_status_due,
    .status_sent = sq_status_sent,
    .status_retry = sq_status_retry,
    .status_pending = sq_status_pending,
    .status_prune = sq_status_prune,
    .board_add = sq_board_add,
    .board_delete = sq_board_delete,
    .board_list = sq_board_list,
    .deploy_plan_get = sq_deploy_plan_get,
    .deploy_last = sq_deploy_last,
    .deploy_report = sq_deploy_report,
    .board_previous_release = sq_board_previous_release,
    .deploy_boards = sq_deploy_boards,
    .deployment_list = sq_deployment_list,
    .pipeline_page = sq_pipeline_page,
    .job_page = sq_job_page,
    .board_deploys = sq_board_deploys,
    .pipeline_latest_refs = sq_pipeline_latest_refs,
    .pipeline_latest_ref = sq_pipeline_latest_ref,
    .release_pattern_set = sq_release_pattern_set,
    .release_pattern_get = sq_release_pattern_get,
    .release_key_add = sq_release_key_add,
    .release_key_list = sq_release_key_list,
    .release_unsigned = sq_release_unsigned,
    .release_files = sq_release_files,
    .release_sign = sq_release_sign,
    .release_get = sq_release_get,
    .release_list = sq_release_list,
    .release_boards = sq_release_boards,
    .session_add = sq_session_add,
    .session_check = sq_session_check,
    .session_delete = sq_session_delete,
    .session_delete_all = sq_session_delete_all,
    .session_expire = sq_session_expire,
    .schedule_add = sq_schedule_add,
    .schedule_list = sq_schedule_list,
    .schedule_delete = sq_schedule_delete,
    .schedule_claim = sq_schedule_claim,
};
