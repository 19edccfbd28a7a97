#include "server/store/store.h"
#include "common/log.h"
#include "server/store/store_failpoint.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <zlib.h>

/* Ordered migrations: user_version N means migrations[0..N-1] ran. */
static const char *const store_migrations[] = {
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
};

#define JOB_COLS                                                                                             \
	"j.id, j.pipeline_id, j.name, j.target, j.state, j.attempt, j.max_attempts, j.exit_code, a.name,"    \
	" j.message, j.retry_of, j.spec, j.cancel_requested, j.lease_until_unix_ms, j.log_bytes,"            \
	" j.log_truncated, j.created_unix_ms, j.started_unix_ms, j.finished_unix_ms, r.name, r.url, p.ref,"  \
	" p.commit_sha, j.kind, j.labels FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id"               \
	" JOIN repos r ON r.id = p.repo_id"                                                                  \
	" LEFT JOIN agents a ON a.id = j.agent_id "

#define PIPE_COLS                                                                                            \
	"p.id, p.repo_id, r.name, p.ref, p.commit_sha, p.event, p.delivery, p.state, p.message,"             \
	" p.commit_message, p.author, p.created_unix_ms, p.finished_unix_ms FROM pipelines p"                \
	" JOIN repos r ON r.id = p.repo_id "

#define REL_COLS                                                                                             \
	"x.id, x.repo_id, r.name, r.url, x.version, x.pipeline_id, x.commit_sha, x.created_unix_ms, "        \
	"x.manifest,"                                                                                        \
	" x.signature, x.keynum FROM releases x JOIN repos r ON r.id = x.repo_id "

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_TOKEN_SET,
	S_TOKEN_GET,
	S_REPO_UPSERT,
	S_REPO_ID,
	S_REPO_LIST,
	S_PIPE_BY_DELIVERY,
	S_PIPE_BY_REPO_DELIVERY,
	S_PIPE_INSERT,
	S_JOB_INSERT,
	S_PIPE_GET,
	S_PIPE_LIST,
	S_PIPE_LIST_REPO,
	S_PIPE_JOBS,
	S_PIPE_CURRENT_STATES,
	S_PIPE_SET_STATE,
	S_JOB_GET,
	S_JOB_STATE,
	S_JOB_QUEUED,
	S_JOB_CLAIM,
	S_JOB_LEASE,
	S_JOB_FINISH,
	S_JOB_CANCEL_QUEUED,
	S_JOB_CANCEL_REQ,
	S_JOB_RETRY_INSERT,
	S_JOB_EXPIRED,
	S_JOB_REQUEUE,
	S_JOB_EXPIRE_FINAL,
	S_LOG_INSERT,
	S_LOG_ADD_BYTES,
	S_LOG_READ,
	S_BLOB_INSERT,
	S_ARTIFACT_UPSERT,
	S_ARTIFACT_LIST,
	S_ARTIFACT_GET,
	S_AGENT_UPSERT,
	S_AGENT_ID,
	S_AGENT_TOUCH,
	S_AGENT_LABELS,
	S_AGENT_LIST,
	S_AGENT_BY_TOKEN,
	S_AGENT_REMOVE,
	S_AGENT_RUNNING,
	S_JOB_OWNER,
	S_STATS_JOBS,
	S_STATS_PIPES,
	S_STATS_LOG,
	S_STATS_BLOBS,
	/* forges */
	S_FORGE_REPO_SET,
	S_FORGE_REPO_GET,
	S_FORGE_REPO_LIST,
	S_FORGE_SECRET_SET,
	S_FORGE_SECRET_DELETE,
	S_FORGE_SECRET_LIST,
	S_FORGE_HEADS,
	S_FORGE_HEAD_SET,
	S_FORGE_HEAD_DELETE,
	S_FORGE_STATUS_DUE,
	S_FORGE_STATUS_DELETE,
	S_FORGE_STATUS_RETRY,
	S_FORGE_STATUS_COUNT,
	S_FORGE_STATUS_PRUNE,
	/* releases */
	S_REL_PATTERN_SET,
	S_REL_PATTERN_GET,
	S_REL_KEY_RETIRE,
	S_REL_KEY_ADD,
	S_REL_KEY_LIST,
	S_REL_UNSIGNED,
	S_REL_FILES,
	S_REL_SIGN,
	S_REL_GET,
	S_REL_LIST,
	S_REL_LIST_REPO,
	S_REL_DEPLOYS_ORPHANED,
	S_REL_DEPLOYS_WAITING,
	S_REL_DEPLOY_CANCEL,
	S_REL_BOARDS,
	/* ui reads */
	S_UI_PIPE_LATEST_REFS,
	S_UI_PIPE_LATEST_REF,
	/* boards and deployments */
	S_DEPLOY_PLAN_INSERT,
	S_DEPLOY_PLAN_GET,
	S_BOARD_INSERT,
	S_BOARD_DELETE,
	S_BOARD_LIST,
	S_DEPLOY_PIPE_EXISTS,
	S_DEPLOY_BUILDS_PENDING,
	S_DEPLOY_ACTIVE,
	S_DEPLOY_JOB_INSERT,
	S_DEPLOY_LAST,
	S_DEPLOY_REPORT,
	S_DEPLOY_BOARD_CURRENT,
	S_DEPLOY_BOARDS,
	S_DEPLOY_LIST,
	S_DEPLOY_COUNTS,
	S_DEPLOY_PREVIOUS,
	S_RET_LOG_JOBS,
	S_RET_LOG_DELETE,
	S_RET_LOG_MARK,
	S_RET_ART_JOBS,
	S_RET_ART_DELETE,
	S_RET_ART_MARK,
	S_RET_BLOB_UNREF,
	S_RET_BLOB_DELETE,
	S_RET_BLOB_EXISTS,
	S_SESSION_ADD,
	S_SESSION_CHECK,
	S_SESSION_DELETE,
	S_SESSION_DELETE_ALL,
	S_SESSION_EXPIRE,
	S_PIPE_PAGE, /* store_pipeline_page, at the end of this file */
	S_COUNT
};

static const char *const store_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_TOKEN_SET] = "INSERT INTO tokens(kind, sha256) VALUES(?1, ?2)"
                    " ON CONFLICT(kind) DO UPDATE SET sha256 = excluded.sha256",
    [S_TOKEN_GET] = "SELECT sha256 FROM tokens WHERE kind = ?1",
    [S_REPO_UPSERT] = "INSERT INTO repos(name, url, created_unix_ms) VALUES(?1, ?2, ?3)"
                      " ON CONFLICT(name) DO UPDATE SET url = excluded.url",
    [S_REPO_ID] = "SELECT id FROM repos WHERE name = ?1",
    [S_REPO_LIST] = "SELECT id, name, url FROM repos ORDER BY name",
    [S_PIPE_BY_DELIVERY] = "SELECT id FROM pipelines WHERE repo_id = ?1 AND delivery = ?2",
    [S_PIPE_BY_REPO_DELIVERY] = "SELECT p.id FROM pipelines p JOIN repos r ON r.id = p.repo_id"
                                " WHERE r.name = ?1 AND p.delivery = ?2",
    [S_PIPE_INSERT] = "INSERT INTO pipelines(repo_id, ref, commit_sha, event, delivery, state, message,"
                      " commit_message, author, created_unix_ms, finished_unix_ms)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_JOB_INSERT] = "INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, retry_of,"
                     " created_unix_ms) VALUES(?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7)",
    [S_PIPE_GET] = "SELECT " PIPE_COLS "WHERE p.id = ?1",
    [S_PIPE_LIST] = "SELECT " PIPE_COLS "ORDER BY p.id DESC LIMIT ?1",
    [S_PIPE_LIST_REPO] = "SELECT " PIPE_COLS "WHERE r.name = ?2 ORDER BY p.id DESC LIMIT ?1",
    [S_PIPE_JOBS] = "SELECT " JOB_COLS "WHERE j.pipeline_id = ?1 ORDER BY j.id",
    [S_PIPE_CURRENT_STATES] = "SELECT state FROM jobs j WHERE pipeline_id = ?1"
                              " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)",
    [S_PIPE_SET_STATE] = "UPDATE pipelines SET state = ?2, finished_unix_ms = ?3 WHERE id = ?1",
    [S_JOB_GET] = "SELECT " JOB_COLS "WHERE j.id = ?1",
    [S_JOB_STATE] = "SELECT state, attempt, max_attempts, cancel_requested, pipeline_id, log_bytes,"
                    " log_truncated FROM jobs WHERE id = ?1",
    /* A deploy job of a pipeline that records a release is handed out only
     * once that release is signed (its claim carries the signed manifest);
     * when another pipeline recorded that version it never is (the release
     * thread ends it). */
    [S_JOB_QUEUED] = "SELECT j.id, j.target, j.kind, j.labels, (SELECT r.agent_labels FROM pipelines p"
                     " JOIN repos r ON r.id = p.repo_id WHERE p.id = j.pipeline_id) FROM jobs j"
                     " WHERE j.state = 'queued'"
                     " AND NOT (j.kind = 'deploy' AND j.name = 'deploy' AND EXISTS (SELECT 1 FROM pipelines p"
                     " JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"
                     " WHERE p.id = j.pipeline_id AND substr(p.ref, 1, 10) = 'refs/tags/'"
                     " AND (x.pipeline_id <> p.id OR x.signature IS NULL))) ORDER BY j.id LIMIT 500",
    [S_JOB_CLAIM] = "UPDATE jobs SET state = 'running', attempt = attempt + 1, agent_id = ?2,"
                    " lease_until_unix_ms = ?3, started_unix_ms = ?4 WHERE id = ?1 AND state = 'queued'",
    [S_JOB_LEASE] = "UPDATE jobs SET lease_until_unix_ms = ?2 WHERE id = ?1",
    [S_JOB_FINISH] = "UPDATE jobs SET state = ?2, exit_code = ?3, message = ?4, finished_unix_ms = ?5,"
                     " lease_until_unix_ms = NULL WHERE id = ?1",
    [S_JOB_CANCEL_QUEUED] = "UPDATE jobs SET state = 'canceled', finished_unix_ms = ?2,"
                            " message = 'canceled before it started' WHERE id = ?1",
    [S_JOB_CANCEL_REQ] = "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1",
    [S_JOB_RETRY_INSERT] =
        "INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, retry_of,"
        " created_unix_ms, kind, labels) SELECT pipeline_id, name, target, 'queued', max_attempts,"
        " spec, id, ?2, kind, labels FROM jobs WHERE id = ?1",
    [S_JOB_EXPIRED] = "SELECT id FROM jobs WHERE state = 'running' AND lease_until_unix_ms < ?1",
    [S_JOB_REQUEUE] = "UPDATE jobs SET state = 'queued', agent_id = NULL, lease_until_unix_ms = NULL"
                      " WHERE id = ?1",
    [S_JOB_EXPIRE_FINAL] = "UPDATE jobs SET state = ?2, message = ?3, finished_unix_ms = ?4,"
                           " lease_until_unix_ms = NULL WHERE id = ?1",
    [S_LOG_INSERT] = "INSERT OR IGNORE INTO log_chunks(job_id, attempt, seq, off, data, raw_len)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [S_LOG_ADD_BYTES] = "UPDATE jobs SET log_bytes = log_bytes + ?2, log_truncated = ?3 WHERE id = ?1",
    [S_LOG_READ] = "SELECT off, data, raw_len FROM log_chunks WHERE job_id = ?1"
                   " AND off + coalesce(raw_len, length(data)) > ?2 ORDER BY off LIMIT 256",
    [S_BLOB_INSERT] = "INSERT OR IGNORE INTO blobs(sha256, size, created_unix_ms) VALUES(?1, ?2, ?3)",
    [S_ARTIFACT_UPSERT] = "INSERT INTO artifacts(job_id, name, sha256, size, mode) VALUES(?1, ?2, ?3, ?4, ?5)"
                          " ON CONFLICT(job_id, name) DO UPDATE SET sha256 = excluded.sha256,"
                          " size = excluded.size, mode = excluded.mode",
    [S_ARTIFACT_LIST] = "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = ?1 ORDER BY name",
    [S_ARTIFACT_GET] = "SELECT name, sha256, size, mode FROM artifacts WHERE job_id = ?1 AND name = ?2",
    [S_AGENT_UPSERT] = "INSERT INTO agents(name, labels, last_seen_unix_ms, token_sha256)"
                       " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET labels = excluded.labels,"
                       " last_seen_unix_ms = excluded.last_seen_unix_ms,"
                       " token_sha256 = excluded.token_sha256, removed_unix_ms = NULL",
    [S_AGENT_ID] = "SELECT id FROM agents WHERE name = ?1",
    [S_AGENT_LABELS] = "SELECT labels FROM agents WHERE id = ?1",
    [S_AGENT_TOUCH] = "UPDATE agents SET last_seen_unix_ms = ?2 WHERE id = ?1",
    [S_AGENT_LIST] = "SELECT a.id, a.name, a.labels, a.last_seen_unix_ms,"
                     " (SELECT j.id FROM jobs j WHERE j.agent_id = a.id AND j.state = 'running' LIMIT 1)"
                     " FROM agents a WHERE a.removed_unix_ms IS NULL ORDER BY a.name",
    [S_AGENT_BY_TOKEN] = "SELECT id FROM agents WHERE token_sha256 = ?1 AND removed_unix_ms IS NULL",
    [S_AGENT_REMOVE] = "UPDATE agents SET token_sha256 = NULL, removed_unix_ms = ?2 WHERE id = ?1",
    [S_AGENT_RUNNING] = "SELECT id FROM jobs WHERE agent_id = ?1 AND state = 'running' ORDER BY id",
    [S_JOB_OWNER] = "SELECT coalesce(agent_id, 0) FROM jobs WHERE id = ?1",
    [S_STATS_JOBS] = "SELECT state, count(*) FROM jobs GROUP BY state",
    [S_STATS_PIPES] = "SELECT count(*) FROM pipelines",
    [S_STATS_LOG] = "SELECT coalesce(sum(log_bytes), 0) FROM jobs",
    [S_STATS_BLOBS] = "SELECT count(*), coalesce(sum(size), 0) FROM blobs",
    /* forges */
    [S_FORGE_REPO_SET] =
        "INSERT INTO repos(name, url, created_unix_ms, forge, hook_secret, status_token, api_url,"
        " poll_s, agent_labels) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, ''))"
        " ON CONFLICT(name) DO UPDATE SET"
        " url = excluded.url, forge = excluded.forge, hook_secret = excluded.hook_secret,"
        " status_token = excluded.status_token, api_url = excluded.api_url,"
        " poll_s = excluded.poll_s, agent_labels = coalesce(?9, agent_labels)",
    [S_FORGE_REPO_GET] = "SELECT id, name, url, forge, hook_secret, status_token, api_url, poll_s,"
                         " agent_labels FROM repos WHERE name = ?1",
    [S_FORGE_REPO_LIST] = "SELECT id, name, url, forge, hook_secret, status_token, api_url, poll_s,"
                          " agent_labels FROM repos ORDER BY name",
    [S_FORGE_SECRET_SET] = "INSERT INTO repo_secrets(repo_id, name, value, updated_unix_ms)"
                           " SELECT id, ?2, ?3, ?4 FROM repos WHERE name = ?1 AND true"
                           " ON CONFLICT(repo_id, name) DO UPDATE SET value = excluded.value,"
                           " updated_unix_ms = excluded.updated_unix_ms",
    [S_FORGE_SECRET_DELETE] = "DELETE FROM repo_secrets WHERE name = ?2"
                              " AND repo_id = (SELECT id FROM repos WHERE name = ?1)",
    [S_FORGE_SECRET_LIST] = "SELECT s.name, s.value FROM repo_secrets s JOIN repos r ON r.id = s.repo_id"
                            " WHERE r.name = ?1 ORDER BY s.name",
    [S_FORGE_HEADS] = "SELECT ref, sha FROM poll_heads WHERE repo_id = ?1 ORDER BY ref",
    [S_FORGE_HEAD_SET] = "INSERT INTO poll_heads(repo_id, ref, sha) VALUES(?1, ?2, ?3)"
                         " ON CONFLICT(repo_id, ref) DO UPDATE SET sha = excluded.sha",
    [S_FORGE_HEAD_DELETE] = "DELETE FROM poll_heads WHERE repo_id = ?1 AND ref = ?2",
    /* A job's statuses go out in order: a row waits while an older one of
     * its job is still queued (being retried). */
    [S_FORGE_STATUS_DUE] =
        "SELECT q.id, q.job_id, q.state, q.description, q.attempts, r.forge, r.api_url,"
        " r.status_token, r.url, p.commit_sha, j.target FROM status_queue q"
        " JOIN jobs j ON j.id = q.job_id JOIN pipelines p ON p.id = j.pipeline_id"
        " JOIN repos r ON r.id = p.repo_id WHERE q.gave_up = 0 AND q.next_attempt_unix_ms <= ?1"
        " AND NOT EXISTS (SELECT 1 FROM status_queue o WHERE o.job_id = q.job_id"
        " AND o.gave_up = 0 AND o.id < q.id) ORDER BY q.id LIMIT ?2",
    [S_FORGE_STATUS_DELETE] = "DELETE FROM status_queue WHERE id = ?1",
    [S_FORGE_STATUS_RETRY] = "UPDATE status_queue SET attempts = ?2, next_attempt_unix_ms = ?3,"
                             " last_error = ?4, gave_up = ?5 WHERE id = ?1",
    [S_FORGE_STATUS_COUNT] = "SELECT count(*) FROM status_queue WHERE gave_up = 0",
    [S_FORGE_STATUS_PRUNE] = "DELETE FROM status_queue WHERE id IN (SELECT id FROM status_queue"
                             " WHERE gave_up = 1 AND created_unix_ms < ?1 ORDER BY id LIMIT ?2)",
    /* releases */
    [S_REL_PATTERN_SET] = "UPDATE repos SET release_pattern = ?2 WHERE name = ?1",
    [S_REL_PATTERN_GET] = "SELECT release_pattern FROM repos WHERE name = ?1",
    [S_REL_KEY_RETIRE] = "UPDATE release_keys SET retired_unix_ms = ?1 WHERE retired_unix_ms IS NULL",
    [S_REL_KEY_ADD] = "INSERT INTO release_keys(keynum, pubkey, created_unix_ms) VALUES(?1, ?2, ?3)",
    [S_REL_KEY_LIST] = "SELECT keynum, pubkey, created_unix_ms, retired_unix_ms FROM release_keys"
                       " ORDER BY created_unix_ms DESC, rowid DESC",
    [S_REL_UNSIGNED] = "SELECT id FROM releases WHERE signature IS NULL ORDER BY id LIMIT 64",
    /* The files of a release: the artifacts of its pipeline's current
     * successful build jobs. */
    [S_REL_FILES] =
        "SELECT j.target, a.name, a.size, a.sha256 FROM jobs j JOIN artifacts a ON a.job_id = j.id"
        " WHERE j.pipeline_id = ?1 AND j.name = 'build' AND j.state = 'success'"
        " AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id) ORDER BY j.target, a.name",
    [S_REL_SIGN] = "UPDATE releases SET manifest = ?2, signature = ?3, keynum = ?4 WHERE id = ?1"
                   " AND signature IS NULL",
    [S_REL_GET] =
        "SELECT " REL_COLS "WHERE (?1 > 0 AND x.id = ?1) OR (?1 = 0 AND r.name = ?2 AND x.version = ?3)",
    [S_REL_LIST] = "SELECT " REL_COLS "ORDER BY x.id DESC LIMIT ?1",
    [S_REL_LIST_REPO] = "SELECT " REL_COLS "WHERE r.name = ?2 ORDER BY x.id DESC LIMIT ?1",
    [S_REL_DEPLOYS_ORPHANED] =
        "SELECT j.id, j.pipeline_id, x.version, r.name, x.pipeline_id FROM jobs j"
        " JOIN pipelines p ON p.id = j.pipeline_id JOIN repos r ON r.id = p.repo_id"
        " JOIN releases x ON x.repo_id = p.repo_id AND x.version = substr(p.ref, 11)"
        " WHERE j.state = 'queued' AND j.kind = 'deploy' AND j.name = 'deploy'"
        " AND substr(p.ref, 1, 10) = 'refs/tags/' AND x.pipeline_id <> p.id ORDER BY j.id LIMIT 64",
    [S_REL_DEPLOYS_WAITING] = "SELECT id FROM jobs WHERE pipeline_id = ?1 AND state = 'queued'"
                              " AND kind = 'deploy' AND name = 'deploy' ORDER BY id",
    [S_REL_DEPLOY_CANCEL] = "UPDATE jobs SET state = 'canceled', finished_unix_ms = ?2, message = ?3"
                            " WHERE id = ?1 AND state = 'queued'",
    /* Where a release is live: the boards whose current release directory
     * is the version, switched to it by a deploy of that repository. */
    [S_REL_BOARDS] =
        "SELECT b.name, b.grp, max(d.updated_unix_ms) FROM boards b JOIN deployment_boards d"
        " ON d.board = b.name AND d.current = b.current_release JOIN jobs j ON j.id = d.job_id"
        " JOIN pipelines p ON p.id = j.pipeline_id WHERE b.current_release = 'releases/' || ?2"
        " AND p.repo_id = ?1 AND d.state IN ('healthy', 'rolled_back') GROUP BY b.name ORDER BY b.name",
    /* ui reads */
    [S_UI_PIPE_LATEST_REFS] = "SELECT " PIPE_COLS "WHERE p.id IN (SELECT max(id) FROM pipelines"
                              " GROUP BY repo_id, ref) ORDER BY r.name, p.ref LIMIT ?1",
    [S_UI_PIPE_LATEST_REF] =
        "SELECT " PIPE_COLS "WHERE r.name = ?1 AND p.ref = ?2 ORDER BY p.id DESC LIMIT 1",
    /* boards and deployments */
    [S_DEPLOY_PLAN_INSERT] =
        "INSERT INTO deploy_plans(pipeline_id, grp, spec, labels, auto) VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_DEPLOY_PLAN_GET] = "SELECT spec, labels FROM deploy_plans WHERE pipeline_id = ?1 AND grp = ?2",
    [S_BOARD_INSERT] = "INSERT INTO boards(name, host, port, user, arch, grp, labels, host_key, private_key,"
                       " created_unix_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_BOARD_DELETE] = "DELETE FROM boards WHERE name = ?1",
    [S_BOARD_LIST] = "SELECT id, name, host, port, user, arch, grp, labels, host_key,"
                     " CASE WHEN ?2 THEN private_key END, current_release, created_unix_ms FROM boards"
                     " WHERE ?1 IS NULL OR grp = ?1 ORDER BY name",
    [S_DEPLOY_PIPE_EXISTS] = "SELECT id FROM pipelines WHERE id = ?1",
    [S_DEPLOY_BUILDS_PENDING] =
        "SELECT count(*) FROM jobs j WHERE pipeline_id = ?1 AND kind = 'build'"
        " AND state <> 'success' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.retry_of = j.id)",
    [S_DEPLOY_ACTIVE] = "SELECT count(*) FROM jobs WHERE kind = 'deploy' AND target = ?1"
                        " AND state IN ('queued', 'running')",
    [S_DEPLOY_JOB_INSERT] =
        "INSERT INTO jobs(pipeline_id, name, target, state, max_attempts, spec, created_unix_ms,"
        " kind, labels) VALUES(?1, ?2, ?3, 'queued', ?4, ?5, ?6, 'deploy', ?7)",
    [S_DEPLOY_LAST] = "SELECT id FROM jobs WHERE kind = 'deploy' AND name = 'deploy' AND target = ?1"
                      " ORDER BY id DESC LIMIT 1",
    [S_DEPLOY_REPORT] =
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
        " duration_ms = excluded.duration_ms",
    [S_DEPLOY_BOARD_CURRENT] = "UPDATE boards SET current_release = ?2 WHERE name = ?1",
    [S_DEPLOY_BOARDS] =
        "SELECT board, attempt, release, previous, current, state, message, bytes_sent,"
        " files_uploaded, files_skipped, restart_exit, restart_output, health_exit, health_output,"
        " started_unix_ms, updated_unix_ms, duration_ms FROM deployment_boards WHERE job_id = ?1"
        " ORDER BY board",
    [S_DEPLOY_LIST] = "SELECT " JOB_COLS "WHERE j.kind = 'deploy' AND (?2 IS NULL OR j.target = ?2)"
                      " ORDER BY j.id DESC LIMIT ?1",
    [S_DEPLOY_COUNTS] =
        "SELECT count(*), coalesce(sum(state = 'healthy'), 0), coalesce(sum(state = 'failed'), 0),"
        " coalesce(sum(state = 'rolled_back'), 0), coalesce(sum(state = 'skipped'), 0),"
        " coalesce(sum(state = 'refused'), 0) FROM deployment_boards WHERE job_id = ?1",
    [S_DEPLOY_PREVIOUS] =
        "SELECT current FROM deployment_boards WHERE board = ?1 AND state = 'healthy'"
        " AND current <> '' AND current <> ?2 ORDER BY updated_unix_ms DESC, job_id DESC LIMIT 1",
    /* retention: finished jobs older than a time, a batch at a time */
    [S_RET_LOG_JOBS] =
        "SELECT id, attempt, log_bytes FROM jobs WHERE finished_unix_ms < ?1"
        " AND log_expired_unix_ms IS NULL AND state IN ('success', 'failed', 'canceled', 'error')"
        " ORDER BY finished_unix_ms LIMIT ?2",
    [S_RET_LOG_DELETE] = "DELETE FROM log_chunks WHERE job_id = ?1",
    [S_RET_LOG_MARK] = "UPDATE jobs SET log_bytes = ?2, log_expired_unix_ms = ?3 WHERE id = ?1",
    /* a release's files are its pipeline's artifacts: those stay */
    [S_RET_ART_JOBS] = "SELECT j.id FROM jobs j WHERE j.finished_unix_ms < ?1"
                       " AND j.artifacts_expired_unix_ms IS NULL"
                       " AND j.state IN ('success', 'failed', 'canceled', 'error')"
                       " AND NOT EXISTS (SELECT 1 FROM releases x WHERE x.pipeline_id = j.pipeline_id)"
                       " ORDER BY j.finished_unix_ms LIMIT ?2",
    [S_RET_ART_DELETE] = "DELETE FROM artifacts WHERE job_id = ?1",
    [S_RET_ART_MARK] = "UPDATE jobs SET artifacts_expired_unix_ms = ?2 WHERE id = ?1",
    [S_RET_BLOB_UNREF] = "SELECT b.sha256 FROM blobs b WHERE NOT EXISTS"
                         " (SELECT 1 FROM artifacts a WHERE a.sha256 = b.sha256) LIMIT ?1",
    [S_RET_BLOB_DELETE] = "DELETE FROM blobs WHERE sha256 = ?1"
                          " AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.sha256 = ?1)",
    [S_RET_BLOB_EXISTS] = "SELECT count(*) FROM blobs WHERE sha256 = ?1",
    /* web UI sessions */
    [S_SESSION_ADD] = "INSERT INTO ui_sessions(id_sha256, admin_sha256, created_unix_ms, expires_unix_ms)"
                      " VALUES(?1, ?2, ?3, ?4)",
    [S_SESSION_CHECK] = "SELECT count(*) FROM ui_sessions WHERE id_sha256 = ?1 AND admin_sha256 = ?2"
                        " AND expires_unix_ms > ?3",
    [S_SESSION_DELETE] = "DELETE FROM ui_sessions WHERE id_sha256 = ?1",
    [S_SESSION_DELETE_ALL] = "DELETE FROM ui_sessions",
    [S_SESSION_EXPIRE] = "DELETE FROM ui_sessions WHERE id_sha256 IN (SELECT id_sha256 FROM ui_sessions"
                         " WHERE expires_unix_ms <= ?1 LIMIT ?2)",
    /* NULL filters match everything; ref matches a full ref or a branch or
     * tag name; before pages by id (newest first). */
    [S_PIPE_PAGE] = "SELECT " PIPE_COLS "WHERE (?2 IS NULL OR r.name = ?2)"
                    " AND (?3 IS NULL OR p.ref = ?3 OR p.ref = 'refs/heads/' || ?3"
                    " OR p.ref = 'refs/tags/' || ?3) AND (?4 IS NULL OR p.state = ?4)"
                    " AND (?5 IS NULL OR p.event = ?5) AND (?6 <= 0 OR p.id < ?6)"
                    " ORDER BY p.id DESC LIMIT ?1",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	pthread_mutex_t mu;
	struct store_vfs *vfs; /* owned; NULL unless opened with failpoints */
};

/* ---- small helpers, all called with st->mu held ---- */

static int store_fail(struct store *st, struct err *err, int rc, const char *what)
{
	if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
		return err_set(err, ERR_CONFLICT, "%s: %s", what, sqlite3_errmsg(st->db));
	if ((rc & 0xff) == SQLITE_BUSY)
		return err_set(err, ERR_UNAVAIL, "%s: database busy", what);
	return err_set(err, ERR_SYS, "%s: %s", what, sqlite3_errmsg(st->db));
}

static sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id)
{
	return st->stmt[id];
}

static void store_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps s to its end, collecting its first column (ids) into *ids_out
 * (owned, NULL when none); the statement is reset either way. */
static int store_ids(struct store *st, sqlite3_stmt *s, const char *what, int64_t **ids_out, size_t *n_out,
                     struct err *err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n++] = sqlite3_column_int64(s, 0);
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		free(ids);
		*ids_out = NULL;
		*n_out = 0;
		return store_fail(st, err, step, what);
	}
	*ids_out = ids;
	*n_out = n;
	return 0;
}

/* SQLITE_STATIC: no copy, so no allocation that can fail. A failed bind
 * leaves NULL in its place and the statement still runs: a lost delivery id
 * or an out-of-memory reported as a NOT NULL conflict (found by
 * test_torture). Every caller's text outlives the statement's use, which
 * ends in store_done (reset and clear_bindings) before it returns. */
static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void bind_i64(sqlite3_stmt *s, int i, int64_t v)
{
	sqlite3_bind_int64(s, i, v);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static char *col_dup_empty(sqlite3_stmt *s, int i)
{
	char *t = col_dup(s, i);

	return t ? t : xstrdup("");
}

/* Steps a statement that returns no rows. */
static int store_exec_stmt(struct store *st, sqlite3_stmt *s, const char *what, struct err *err)
{
	int rc = sqlite3_step(s);

	store_done(s);
	if (rc != SQLITE_DONE)
		return store_fail(st, err, rc, what);
	return 0;
}

static int store_begin(struct store *st, struct err *err)
{
	return store_exec_stmt(st, store_stmt(st, S_BEGIN), "begin", err);
}

static int store_commit(struct store *st, struct err *err)
{
	return store_exec_stmt(st, store_stmt(st, S_COMMIT), "commit", err);
}

static void store_rollback(struct store *st)
{
	sqlite3_stmt *s = store_stmt(st, S_ROLLBACK);

	if (sqlite3_get_autocommit(st->db))
		return;
	sqlite3_step(s);
	store_done(s);
}

/* Runs a statement expected to return one int64 column in one row. */
static int store_scalar(struct store *st, sqlite3_stmt *s, const char *what, int64_t *out, struct err *err)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		store_done(s);
		return 0;
	}
	store_done(s);
	if (rc == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "%s: not found", what);
	return store_fail(st, err, rc, what);
}

static int store_exec_script(struct store *st, const char *sql, struct err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, ERR_SYS, "sql: %s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* -1 when a row refers to a missing one (foreign_key_check finds any). */
static int store_fk_check(struct store *st, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA foreign_key_check", -1, &s, NULL) != SQLITE_OK)
		return store_fail(st, err, SQLITE_ERROR, "foreign_key_check");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		err_set(err, ERR_SYS, "a row of %s refers to a missing %s row", sqlite3_column_text(s, 0),
		        sqlite3_column_text(s, 2));
	else if (rc != SQLITE_DONE)
		store_fail(st, err, rc, "foreign_key_check");
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int store_migrate(struct store *st, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int version = 0, n = (int)(sizeof(store_migrations) / sizeof(store_migrations[0]));
	char sql[64];

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return store_fail(st, err, SQLITE_ERROR, "user_version");
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > n)
		return err_set(err, ERR_INVAL, "database schema version %d is newer than this anvil (%d)",
		               version, n);
	/* Off outside the transactions (a no-op inside one): a migration may
	 * rebuild a table others refer to; store_fk_check stands in. */
	if (version < n && store_exec_script(st, "PRAGMA foreign_keys = OFF", err) < 0)
		return -1;
	for (int v = version; v < n; v++) {
		if (store_exec_script(st, "BEGIN IMMEDIATE", err) < 0)
			return -1;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec_script(st, store_migrations[v], err) < 0 || store_fk_check(st, err) < 0 ||
		    store_exec_script(st, sql, err) < 0) {
			store_exec_script(st, "ROLLBACK", NULL);
			store_exec_script(st, "PRAGMA foreign_keys = ON", NULL);
			return err_wrap(err, "migration %d", v + 1);
		}
		if (store_exec_script(st, "COMMIT", err) < 0)
			return -1;
		log_info("event=store_migrated version=%d", v + 1);
	}
	return store_exec_script(st, "PRAGMA foreign_keys = ON", err);
}

int store_open(const char *path, struct store **out, struct err *err)
{
	return store_open_failpoints(path, NULL, out, err);
}

int store_open_failpoints(const char *path, struct failpoints *fp, struct store **out, struct err *err)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc;

	pthread_mutex_init(&st->mu, NULL);
	if (fp != NULL && store_vfs_new(fp, &st->vfs, err) < 0)
		goto fail;
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     st->vfs ? store_vfs_name(st->vfs) : NULL);
	if (rc != SQLITE_OK) {
		err_set(err, ERR_SYS, "open database %s: %s", path,
		        st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if (store_exec_script(
	        st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
	        err) < 0)
		goto fail;
	if (store_migrate(st, err) < 0)
		goto fail;
	for (int i = 0; i < S_COUNT; i++) {
		rc = sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			err_set(err, ERR_SYS, "prepare statement %d: %s", i, sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	*out = st;
	return 0;
fail:
	store_free(st);
	return -1;
}

void store_free(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	store_vfs_free(st->vfs);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

int store_integrity_check(struct store *st, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK) {
		store_fail(st, err, SQLITE_ERROR, "integrity_check");
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_fail(st, err, SQLITE_ERROR, "integrity_check");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
		err_set(err, ERR_SYS, "integrity_check: %s", sqlite3_column_text(s, 0));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- tokens ---- */

int store_token_set(struct store *st, const char *kind, const char *sha256_hex, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_TOKEN_SET);
	bind_text(s, 1, kind);
	bind_text(s, 2, sha256_hex);
	rc = store_exec_stmt(st, s, "token set", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_token_get(struct store *st, const char *kind, char out_hex[65], struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_TOKEN_GET);
	bind_text(s, 1, kind);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		snprintf(out_hex, 65, "%s", (const char *)sqlite3_column_text(s, 0));
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no %s token", kind);
	} else {
		store_fail(st, err, step, "token get");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- repos ---- */

void repo_row_release(struct repo_row *r)
{
	free(r->name);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

int store_repo_upsert(struct store *st, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                      struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REPO_UPSERT);
	bind_text(s, 1, name);
	bind_text(s, 2, url);
	bind_i64(s, 3, now_ms);
	if (store_exec_stmt(st, s, "repo upsert", err) < 0)
		goto out;
	s = store_stmt(st, S_REPO_ID);
	bind_text(s, 1, name);
	rc = store_scalar(st, s, "repo", id_out, err);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_repo_list(struct store *st, struct repo_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct repo_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REPO_LIST);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n].id = sqlite3_column_int64(s, 0);
		rows[n].name = col_dup_empty(s, 1);
		rows[n].url = col_dup_empty(s, 2);
		n++;
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			repo_row_release(&rows[i]);
		free(rows);
		return err_set(err, ERR_SYS, "repo list failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- rows ---- */

void job_row_release(struct job_row *j)
{
	if (j == NULL)
		return;
	free(j->name);
	free(j->target);
	free(j->agent_name);
	free(j->message);
	free(j->spec);
	free(j->repo_name);
	free(j->repo_url);
	free(j->ref);
	free(j->commit_sha);
	free(j->kind);
	free(j->labels);
	memset(j, 0, sizeof(*j));
}

void job_rows_free(struct job_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_row_release(&rows[i]);
	free(rows);
}

static void job_row_read(sqlite3_stmt *s, struct job_row *j)
{
	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(s, 0);
	j->pipeline_id = sqlite3_column_int64(s, 1);
	j->name = col_dup_empty(s, 2);
	j->target = col_dup_empty(s, 3);
	if (jobstate_parse((const char *)sqlite3_column_text(s, 4), &j->state) < 0)
		j->state = JOB_ERROR;
	j->attempt = sqlite3_column_int(s, 5);
	j->max_attempts = sqlite3_column_int(s, 6);
	j->has_exit_code = sqlite3_column_type(s, 7) != SQLITE_NULL;
	j->exit_code = sqlite3_column_int(s, 7);
	j->agent_name = col_dup(s, 8);
	j->message = col_dup_empty(s, 9);
	j->retry_of = sqlite3_column_int64(s, 10);
	j->spec = col_dup_empty(s, 11);
	j->cancel_requested = sqlite3_column_int(s, 12);
	j->lease_until_ms = sqlite3_column_int64(s, 13);
	j->log_bytes = sqlite3_column_int64(s, 14);
	j->log_truncated = sqlite3_column_int(s, 15);
	j->created_ms = sqlite3_column_int64(s, 16);
	j->started_ms = sqlite3_column_int64(s, 17);
	j->finished_ms = sqlite3_column_int64(s, 18);
	j->repo_name = col_dup_empty(s, 19);
	j->repo_url = col_dup_empty(s, 20);
	j->ref = col_dup_empty(s, 21);
	j->commit_sha = col_dup_empty(s, 22);
	j->kind = col_dup_empty(s, 23);
	j->labels = col_dup_empty(s, 24);
}

void pipeline_row_release(struct pipeline_row *p)
{
	if (p == NULL)
		return;
	free(p->repo_name);
	free(p->ref);
	free(p->commit_sha);
	free(p->event);
	free(p->delivery);
	free(p->message);
	free(p->commit_message);
	free(p->author);
	memset(p, 0, sizeof(*p));
}

void pipeline_rows_free(struct pipeline_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pipeline_row_release(&rows[i]);
	free(rows);
}

static void pipeline_row_read(sqlite3_stmt *s, struct pipeline_row *p)
{
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(s, 0);
	p->repo_id = sqlite3_column_int64(s, 1);
	p->repo_name = col_dup_empty(s, 2);
	p->ref = col_dup_empty(s, 3);
	p->commit_sha = col_dup_empty(s, 4);
	p->event = col_dup_empty(s, 5);
	p->delivery = col_dup(s, 6);
	if (jobstate_parse((const char *)sqlite3_column_text(s, 7), &p->state) < 0)
		p->state = JOB_ERROR;
	p->message = col_dup_empty(s, 8);
	p->commit_message = col_dup_empty(s, 9);
	p->author = col_dup_empty(s, 10);
	p->created_ms = sqlite3_column_int64(s, 11);
	p->finished_ms = sqlite3_column_int64(s, 12);
}

/* ---- pipelines ---- */

/* Recomputes a pipeline's state from its current jobs. Inside a transaction. */
static int store_pipeline_refresh(struct store *st, int64_t pipeline_id, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_PIPE_CURRENT_STATES);
	enum job_state *states = NULL, agg;
	int n = 0, step;

	bind_i64(s, 1, pipeline_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		states = xrealloc(states, (size_t)(n + 1) * sizeof(*states));
		if (jobstate_parse((const char *)sqlite3_column_text(s, 0), &states[n]) < 0)
			states[n] = JOB_ERROR;
		n++;
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		free(states);
		return store_fail(st, err, step, "pipeline states");
	}
	agg = jobstate_aggregate(states, n);
	free(states);
	s = store_stmt(st, S_PIPE_SET_STATE);
	bind_i64(s, 1, pipeline_id);
	bind_text(s, 2, jobstate_name(agg));
	if (jobstate_is_final(agg))
		bind_i64(s, 3, now_ms);
	else
		sqlite3_bind_null(s, 3);
	return store_exec_stmt(st, s, "pipeline state", err);
}

static int store_delivery_lookup(struct store *st, int64_t repo_id, const char *delivery, int64_t *id_out,
                                 struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_PIPE_BY_DELIVERY);

	bind_i64(s, 1, repo_id);
	bind_text(s, 2, delivery);
	return store_scalar(st, s, "delivery", id_out, err);
}

int store_pipeline_by_delivery(struct store *st, const char *repo, const char *delivery, int64_t *id_out,
                               struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_PIPE_BY_REPO_DELIVERY);
	bind_text(s, 1, repo);
	bind_text(s, 2, delivery);
	rc = store_scalar(st, s, "delivery", id_out, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_pipeline_create(struct store *st, const struct pipeline_new *p, const struct job_new *jobs,
                          size_t n_jobs, int64_t now_ms, int64_t *id_out, int *existed_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t pid;
	int rc = -1;
	struct err lookup = {0};

	*existed_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (p->delivery != NULL && store_delivery_lookup(st, p->repo_id, p->delivery, id_out, &lookup) == 0) {
		*existed_out = 1;
		store_rollback(st);
		rc = 0;
		goto out;
	}
	/* A failed lookup is not "unknown": after an out-of-memory SQLite may
	 * have rolled the transaction back, and the inserts would each commit
	 * on their own (found by test_torture). */
	if (p->delivery != NULL && lookup.code != ERR_NOTFOUND) {
		err_set(err, lookup.code, "%s", lookup.msg);
		goto fail;
	}
	s = store_stmt(st, S_PIPE_INSERT);
	bind_i64(s, 1, p->repo_id);
	bind_text(s, 2, p->ref);
	bind_text(s, 3, p->commit_sha);
	bind_text(s, 4, p->event);
	bind_text(s, 5, p->delivery);
	bind_text(s, 6, p->error_message ? "error" : (n_jobs ? "queued" : "success"));
	bind_text(s, 7, p->error_message ? p->error_message : "");
	bind_text(s, 8, p->commit_message ? p->commit_message : "");
	bind_text(s, 9, p->author ? p->author : "");
	bind_i64(s, 10, now_ms);
	if (p->error_message || n_jobs == 0)
		bind_i64(s, 11, now_ms);
	else
		sqlite3_bind_null(s, 11);
	if (store_exec_stmt(st, s, "pipeline insert", err) < 0)
		goto fail;
	pid = sqlite3_last_insert_rowid(st->db);
	for (size_t i = 0; p->error_message == NULL && i < n_jobs; i++) {
		s = store_stmt(st, S_JOB_INSERT);
		bind_i64(s, 1, pid);
		bind_text(s, 2, jobs[i].name);
		bind_text(s, 3, jobs[i].target);
		bind_i64(s, 4, jobs[i].max_attempts);
		bind_text(s, 5, jobs[i].spec);
		sqlite3_bind_null(s, 6);
		bind_i64(s, 7, now_ms);
		if (store_exec_stmt(st, s, "job insert", err) < 0)
			goto fail;
	}
	for (size_t i = 0; p->error_message == NULL && i < p->n_plans; i++) {
		s = store_stmt(st, S_DEPLOY_PLAN_INSERT);
		bind_i64(s, 1, pid);
		bind_text(s, 2, p->plans[i].group);
		bind_text(s, 3, p->plans[i].spec);
		bind_text(s, 4, p->plans[i].labels ? p->plans[i].labels : "");
		bind_i64(s, 5, p->plans[i].auto_deploy ? 1 : 0);
		if (store_exec_stmt(st, s, "deploy plan insert", err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	*id_out = pid;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_pipeline_get(struct store *st, int64_t id, struct pipeline_row *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_PIPE_GET);
	bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		pipeline_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)id);
	} else {
		store_fail(st, err, step, "pipeline get");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_pipeline_list(struct store *st, const char *repo, int limit, struct pipeline_row **out,
                        size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct pipeline_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, repo ? S_PIPE_LIST_REPO : S_PIPE_LIST);
	bind_i64(s, 1, limit);
	if (repo)
		bind_text(s, 2, repo);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		pipeline_row_read(s, &rows[n++]);
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		pipeline_rows_free(rows, n);
		return err_set(err, ERR_SYS, "pipeline list failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_pipeline_jobs(struct store *st, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                        struct err *err)
{
	sqlite3_stmt *s;
	struct job_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_PIPE_JOBS);
	bind_i64(s, 1, pipeline_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		job_row_read(s, &rows[n++]);
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		job_rows_free(rows, n);
		return err_set(err, ERR_SYS, "pipeline jobs failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- jobs ---- */

static int store_job_get_locked(struct store *st, int64_t id, struct job_row *out, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_JOB_GET);
	int step;

	bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		job_row_read(s, out);
	store_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	return store_fail(st, err, step, "job get");
}

int store_job_get(struct store *st, int64_t id, struct job_row *out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = store_job_get_locked(st, id, out, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

struct job_state_row {
	enum job_state state;
	int attempt, max_attempts, cancel_requested, log_truncated;
	int64_t pipeline_id, log_bytes;
};

static int store_job_state(struct store *st, int64_t id, struct job_state_row *out, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_JOB_STATE);
	int step;

	bind_i64(s, 1, id);
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
	store_done(s);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)id);
	return store_fail(st, err, step, "job state");
}

/* The job must be running at exactly this attempt. */
static int store_job_check_attempt(struct store *st, int64_t id, int attempt, struct job_state_row *out,
                                   struct err *err)
{
	if (store_job_state(st, id, out, err) < 0)
		return -1;
	if (out->state != JOB_RUNNING || out->attempt != attempt)
		return err_set(err, ERR_CONFLICT, "job %lld is %s at attempt %d, not running at attempt %d",
		               (long long)id, jobstate_name(out->state), out->attempt, attempt);
	return 0;
}

/* Log chunks shorter than this are stored as they are. */
#define STORE_LOG_DEFLATE_MIN 128

/* Deflates len bytes into *out (xmalloc'd, *zlen_out bytes) when that
 * saves space; else *out = NULL. Needs no lock. */
static void store_log_deflate(const void *data, size_t len, unsigned char **out, size_t *zlen_out)
{
	uLongf zlen;
	unsigned char *z;

	*out = NULL;
	*zlen_out = 0;
	if (len < STORE_LOG_DEFLATE_MIN || len > (size_t)UINT32_MAX)
		return;
	zlen = compressBound((uLong)len);
	z = xmalloc(zlen);
	if (compress2(z, &zlen, data, (uLong)len, Z_DEFAULT_COMPRESSION) != Z_OK || zlen >= len) {
		free(z);
		return;
	}
	*out = z;
	*zlen_out = zlen;
}

/* Stores a chunk of len log bytes: z (zlen bytes) deflated, or data as is
 * when z is NULL. */
static int store_log_put(struct store *st, int64_t job_id, int attempt, int64_t seq, int64_t off,
                         const void *data, size_t len, const unsigned char *z, size_t zlen, int *inserted,
                         struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_LOG_INSERT);

	bind_i64(s, 1, job_id);
	bind_i64(s, 2, attempt);
	bind_i64(s, 3, seq);
	bind_i64(s, 4, off);
	if (z != NULL) {
		sqlite3_bind_blob64(s, 5, z, zlen, SQLITE_STATIC);
		bind_i64(s, 6, (int64_t)len);
	} else {
		sqlite3_bind_blob64(s, 5, len ? data : "", len, SQLITE_STATIC);
		sqlite3_bind_null(s, 6);
	}
	if (store_exec_stmt(st, s, "log insert", err) < 0)
		return -1;
	*inserted = sqlite3_changes(st->db) > 0;
	return 0;
}

static int store_log_insert(struct store *st, int64_t job_id, int attempt, int64_t seq, int64_t off,
                            const void *data, size_t len, int *inserted, struct err *err)
{
	unsigned char *z = NULL;
	size_t zlen = 0;
	int rc;

	store_log_deflate(data, len, &z, &zlen);
	rc = store_log_put(st, job_id, attempt, seq, off, data, len, z, zlen, inserted, err);
	free(z);
	return rc;
}

static int store_log_add_bytes(struct store *st, int64_t job_id, int64_t n, int truncated, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_LOG_ADD_BYTES);

	bind_i64(s, 1, job_id);
	bind_i64(s, 2, n);
	bind_i64(s, 3, truncated);
	return store_exec_stmt(st, s, "log bytes", err);
}

int store_job_claim(struct store *st, int64_t agent_id, const char *const *labels, size_t n_labels,
                    int64_t now_ms, int64_t lease_ms, struct job_row *out, int *found_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t pick = 0;
	int step, rc = -1, inserted;
	struct job_state_row js;

	*found_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_JOB_QUEUED);
	while (pick == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		/* A repository bound to a pool: only its agents get its jobs
		 * (and so its secrets), builds and deploys alike. */
		if (store_labels_match((const char *)sqlite3_column_text(s, 2),
		                       (const char *)sqlite3_column_text(s, 1),
		                       (const char *)sqlite3_column_text(s, 3), labels, n_labels) &&
		    store_labels_have((const char *)sqlite3_column_text(s, 4), labels, n_labels))
			pick = sqlite3_column_int64(s, 0);
	}
	store_done(s);
	if (pick == 0) {
		store_rollback(st);
		rc = 0;
		goto out;
	}
	s = store_stmt(st, S_JOB_CLAIM);
	bind_i64(s, 1, pick);
	bind_i64(s, 2, agent_id);
	bind_i64(s, 3, now_ms + lease_ms);
	bind_i64(s, 4, now_ms);
	if (store_exec_stmt(st, s, "job claim", err) < 0)
		goto fail;
	if (store_job_state(st, pick, &js, err) < 0)
		goto fail;
	if (js.attempt > 1) {
		/* Mark the retry in the log, so a reader sees where the lost attempt stopped. */
		char *line = xasprintf("\n[anvil] attempt %d of %d (the previous agent stopped answering)\n",
		                       js.attempt, js.max_attempts);
		int r = store_log_insert(st, pick, js.attempt, -1, js.log_bytes, line, strlen(line),
		                         &inserted, err);
		if (r == 0 && inserted)
			r = store_log_add_bytes(st, pick, (int64_t)strlen(line), js.log_truncated, err);
		free(line);
		if (r < 0)
			goto fail;
	}
	if (store_pipeline_refresh(st, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	/* Read before the commit: a claim that fails must leave the job
	 * queued, not running for an agent that was told it failed (found by
	 * test_torture). */
	if (store_job_get_locked(st, pick, out, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0) {
		job_row_release(out);
		goto fail;
	}
	*found_out = 1;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_heartbeat(struct store *st, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                        int *cancel_out, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_job_check_attempt(st, id, attempt, &js, err) < 0)
		goto out;
	s = store_stmt(st, S_JOB_LEASE);
	bind_i64(s, 1, id);
	bind_i64(s, 2, now_ms + lease_ms);
	if (store_exec_stmt(st, s, "job lease", err) < 0)
		goto out;
	*cancel_out = js.cancel_requested;
	rc = 0;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_finish(struct store *st, int64_t id, int attempt, enum job_state state, int has_exit_code,
                     int exit_code, const char *message, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_check_attempt(st, id, attempt, &js, err) < 0)
		goto fail;
	if (!jobstate_is_final(state) || !jobstate_can_move(js.state, state)) {
		err_set(err, ERR_INVAL, "cannot finish job as %s", jobstate_name(state));
		goto fail;
	}
	s = store_stmt(st, S_JOB_FINISH);
	bind_i64(s, 1, id);
	bind_text(s, 2, jobstate_name(state));
	if (has_exit_code)
		bind_i64(s, 3, exit_code);
	else
		sqlite3_bind_null(s, 3);
	bind_text(s, 4, message ? message : "");
	bind_i64(s, 5, now_ms);
	if (store_exec_stmt(st, s, "job finish", err) < 0)
		goto fail;
	if (store_pipeline_refresh(st, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_cancel(struct store *st, int64_t id, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_state(st, id, &js, err) < 0)
		goto fail;
	if (js.state == JOB_QUEUED) {
		s = store_stmt(st, S_JOB_CANCEL_QUEUED);
		bind_i64(s, 1, id);
		bind_i64(s, 2, now_ms);
	} else if (js.state == JOB_RUNNING) {
		s = store_stmt(st, S_JOB_CANCEL_REQ);
		bind_i64(s, 1, id);
	} else {
		err_set(err, ERR_CONFLICT, "job %lld has already finished (%s)", (long long)id,
		        jobstate_name(js.state));
		goto fail;
	}
	if (store_exec_stmt(st, s, "job cancel", err) < 0)
		goto fail;
	if (store_pipeline_refresh(st, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_retry(struct store *st, int64_t id, int64_t now_ms, int64_t *new_id_out, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_state(st, id, &js, err) < 0)
		goto fail;
	if (!jobstate_is_final(js.state)) {
		err_set(err, ERR_CONFLICT, "job %lld is still %s", (long long)id, jobstate_name(js.state));
		goto fail;
	}
	s = store_stmt(st, S_JOB_RETRY_INSERT);
	bind_i64(s, 1, id);
	bind_i64(s, 2, now_ms);
	if (store_exec_stmt(st, s, "job retry", err) < 0) {
		if (err && err->code == ERR_CONFLICT)
			err_set(err, ERR_CONFLICT, "job %lld was already retried", (long long)id);
		goto fail;
	}
	*new_id_out = sqlite3_last_insert_rowid(st->db);
	if (store_pipeline_refresh(st, js.pipeline_id, now_ms, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* A running job whose agent is gone (lease expired, agent removed or
 * registered again): back to the queue, so the next claim makes attempt + 1;
 * canceled when a cancel was pending, error after max_attempts. Inside the
 * caller's transaction. */
static int store_job_requeue_locked(struct store *st, int64_t id, const char *why, int64_t now_ms,
                                    struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	char msg[160]; /* bound without a copy: lives until the step below */

	if (store_job_state(st, id, &js, err) < 0)
		return -1;
	if (js.cancel_requested || js.attempt >= js.max_attempts) {
		enum job_state to = js.cancel_requested ? JOB_CANCELED : JOB_ERROR;
		if (js.cancel_requested)
			snprintf(msg, sizeof(msg), "canceled (%s)", why);
		else
			snprintf(msg, sizeof(msg), "%s on attempt %d of %d", why, js.attempt,
			         js.max_attempts);
		s = store_stmt(st, S_JOB_EXPIRE_FINAL);
		bind_i64(s, 1, id);
		bind_text(s, 2, jobstate_name(to));
		bind_text(s, 3, msg);
		bind_i64(s, 4, now_ms);
	} else {
		s = store_stmt(st, S_JOB_REQUEUE);
		bind_i64(s, 1, id);
	}
	if (store_exec_stmt(st, s, "job requeue", err) < 0)
		return -1;
	if (store_pipeline_refresh(st, js.pipeline_id, now_ms, err) < 0)
		return -1;
	log_info("event=job_requeued job=%lld attempt=%d why=\"%s\"", (long long)id, js.attempt, why);
	return 0;
}

int store_requeue_expired(struct store *st, int64_t now_ms, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	*n_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_JOB_EXPIRED);
	bind_i64(s, 1, now_ms);
	if (store_ids(st, s, "expired jobs", &ids, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (store_job_requeue_locked(st, ids[i], "lease expired", now_ms, err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	*n_out = (int)n;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(ids);
	return rc;
}

/* ---- logs ---- */

int store_log_append(struct store *st, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                     int64_t cap_bytes, int *accepted_out, int *truncated_out, struct err *err)
{
	struct job_state_row js;
	int rc = -1, inserted = 0;
	size_t keep = len, zlen = 0;
	unsigned char *z = NULL;

	*accepted_out = 0;
	*truncated_out = 0;
	if (seq < 0)
		return err_set(err, ERR_INVAL, "seq must be >= 0");
	/* Compressed before the lock: the common case keeps the whole chunk. */
	store_log_deflate(data, len, &z, &zlen);
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_check_attempt(st, job_id, attempt, &js, err) < 0)
		goto fail;
	if (js.log_truncated) {
		*truncated_out = 1;
		store_rollback(st);
		rc = 0;
		goto out;
	}
	if (js.log_bytes + (int64_t)len > cap_bytes)
		keep = js.log_bytes >= cap_bytes ? 0 : (size_t)(cap_bytes - js.log_bytes);
	if ((keep == len
	         ? store_log_put(st, job_id, attempt, seq, js.log_bytes, data, len, z, zlen, &inserted, err)
	         : store_log_insert(st, job_id, attempt, seq, js.log_bytes, data, keep, &inserted, err)) < 0)
		goto fail;
	if (!inserted) {
		store_rollback(st);
		rc = 0;
		goto out;
	}
	if (keep < len) {
		char marker[96];
		int ins2 = 0;
		snprintf(marker, sizeof(marker), "\n[anvil: log truncated at %lld bytes]\n",
		         (long long)cap_bytes);
		if (store_log_insert(st, job_id, attempt, -2, js.log_bytes + (int64_t)keep, marker,
		                     strlen(marker), &ins2, err) < 0)
			goto fail;
		if (store_log_add_bytes(st, job_id, (int64_t)(keep + (ins2 ? strlen(marker) : 0)), 1, err) <
		    0)
			goto fail;
		*truncated_out = 1;
	} else if (store_log_add_bytes(st, job_id, (int64_t)keep, 0, err) < 0) {
		goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	*accepted_out = 1;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(z);
	return rc;
}

int store_log_read(struct store *st, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                   int64_t *next_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t next = offset;
	int step, bad = 0;
	unsigned char *raw = NULL; /* an inflated chunk */

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_LOG_READ);
	bind_i64(s, 1, job_id);
	bind_i64(s, 2, offset);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t off = sqlite3_column_int64(s, 0);
		const char *data = sqlite3_column_blob(s, 1);
		int64_t len = sqlite3_column_bytes(s, 1);
		int64_t skip = next > off ? next - off : 0;
		if (off > next) /* a hole cannot happen: chunks are contiguous */
			break;
		if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
			int64_t raw_len = sqlite3_column_int64(s, 2);
			uLongf got = (uLongf)raw_len;
			if (skip >= raw_len)
				continue;
			raw = xrealloc(raw, raw_len > 0 ? (size_t)raw_len : 1);
			if (uncompress(raw, &got, (const Bytef *)data, (uLong)len) != Z_OK ||
			    (int64_t)got != raw_len) {
				bad = 1;
				break;
			}
			data = (const char *)raw;
			len = raw_len;
		}
		if (skip >= len)
			continue;
		buf_append(out, data + skip, (size_t)(len - skip));
		next = off + len;
		if (out->len >= max_bytes)
			break;
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	free(raw);
	if (bad)
		return err_set(err, ERR_SYS,
		               "log of job %lld: a compressed chunk at offset %lld does not inflate",
		               (long long)job_id, (long long)next);
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		return err_set(err, ERR_SYS, "log read failed");
	*next_out = next;
	return 0;
}

/* ---- artifacts ---- */

void artifact_rows_free(struct artifact_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}

int store_artifact_add(struct store *st, int64_t job_id, int attempt, const char *name,
                       const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_check_attempt(st, job_id, attempt, &js, err) < 0)
		goto fail;
	s = store_stmt(st, S_BLOB_INSERT);
	bind_text(s, 1, sha256_hex);
	bind_i64(s, 2, size);
	bind_i64(s, 3, now_ms);
	if (store_exec_stmt(st, s, "blob insert", err) < 0)
		goto fail;
	s = store_stmt(st, S_ARTIFACT_UPSERT);
	bind_i64(s, 1, job_id);
	bind_text(s, 2, name);
	bind_text(s, 3, sha256_hex);
	bind_i64(s, 4, size);
	bind_i64(s, 5, mode);
	if (store_exec_stmt(st, s, "artifact insert", err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static void artifact_row_read(sqlite3_stmt *s, struct artifact_row *a)
{
	a->name = col_dup_empty(s, 0);
	snprintf(a->sha256, sizeof(a->sha256), "%s", (const char *)sqlite3_column_text(s, 1));
	a->size = sqlite3_column_int64(s, 2);
	a->mode = sqlite3_column_int(s, 3);
}

int store_artifact_list(struct store *st, int64_t job_id, struct artifact_row **out, size_t *n_out,
                        struct err *err)
{
	sqlite3_stmt *s;
	struct artifact_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_ARTIFACT_LIST);
	bind_i64(s, 1, job_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		artifact_row_read(s, &rows[n++]);
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		artifact_rows_free(rows, n);
		return err_set(err, ERR_SYS, "artifact list failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_artifact_get(struct store *st, int64_t job_id, const char *name, struct artifact_row *out,
                       struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_ARTIFACT_GET);
	bind_i64(s, 1, job_id);
	bind_text(s, 2, name);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		artifact_row_read(s, out);
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "job %lld has no artifact named that", (long long)job_id);
	return err_set(err, ERR_SYS, "artifact get failed");
}

/* ---- retention ---- */

/* Up to limit ids (and, with extra, two more columns each) from a retention
 * selection; called with st->mu held inside a transaction. */
static int store_ret_jobs(struct store *st, enum stmt_id id, int64_t before_ms, int limit, int64_t *ids,
                          int *attempts, int64_t *bytes, int *n_out, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, id);
	int step, n = 0;

	bind_i64(s, 1, before_ms);
	bind_i64(s, 2, limit);
	while (n < limit && (step = sqlite3_step(s)) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(s, 0);
		if (attempts)
			attempts[n] = sqlite3_column_int(s, 1);
		if (bytes)
			bytes[n] = sqlite3_column_int64(s, 2);
		n++;
	}
	store_done(s);
	if (n < limit && step != SQLITE_DONE)
		return store_fail(st, err, step, "retention select");
	*n_out = n;
	return 0;
}

int store_log_expire(struct store *st, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                     int *n_out, struct err *err)
{
	int64_t *ids = xcalloc((size_t)limit, sizeof(*ids)), *bytes = xcalloc((size_t)limit, sizeof(*bytes));
	int *attempts = xcalloc((size_t)limit, sizeof(*attempts));
	int n = 0, rc = -1, ins;
	size_t mlen = strlen(marker);
	sqlite3_stmt *s;

	*n_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_ret_jobs(st, S_RET_LOG_JOBS, before_ms, limit, ids, attempts, bytes, &n, err) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		s = store_stmt(st, S_RET_LOG_DELETE);
		bind_i64(s, 1, ids[i]);
		if (store_exec_stmt(st, s, "log delete", err) < 0)
			goto fail;
		/* A job that logged nothing gets no marker. */
		ins = 0;
		if (bytes[i] > 0 &&
		    store_log_insert(st, ids[i], attempts[i], -3, 0, marker, mlen, &ins, err) < 0)
			goto fail;
		s = store_stmt(st, S_RET_LOG_MARK);
		bind_i64(s, 1, ids[i]);
		bind_i64(s, 2, ins ? (int64_t)mlen : 0);
		bind_i64(s, 3, now_ms);
		if (store_exec_stmt(st, s, "log mark", err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	*n_out = n;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(ids);
	free(bytes);
	free(attempts);
	return rc;
}

int store_artifact_expire(struct store *st, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                          struct err *err)
{
	int64_t *ids = xcalloc((size_t)limit, sizeof(*ids));
	int n = 0, rc = -1;
	sqlite3_stmt *s;

	*n_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_ret_jobs(st, S_RET_ART_JOBS, before_ms, limit, ids, NULL, NULL, &n, err) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		s = store_stmt(st, S_RET_ART_DELETE);
		bind_i64(s, 1, ids[i]);
		if (store_exec_stmt(st, s, "artifact delete", err) < 0)
			goto fail;
		s = store_stmt(st, S_RET_ART_MARK);
		bind_i64(s, 1, ids[i]);
		bind_i64(s, 2, now_ms);
		if (store_exec_stmt(st, s, "artifact mark", err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	*n_out = n;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(ids);
	return rc;
}

int store_blob_collect(struct store *st, int limit, struct strv *shas_out, struct err *err)
{
	struct strv found = {0};
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_RET_BLOB_UNREF);
	bind_i64(s, 1, limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		strv_push(&found, (const char *)sqlite3_column_text(s, 0));
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "blob select");
		goto fail;
	}
	for (size_t i = 0; i < found.n; i++) {
		s = store_stmt(st, S_RET_BLOB_DELETE);
		bind_text(s, 1, found.v[i]);
		if (store_exec_stmt(st, s, "blob delete", err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	for (size_t i = 0; i < found.n; i++)
		strv_push(shas_out, found.v[i]);
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	strv_release(&found);
	return rc;
}

int store_blob_exists(struct store *st, const char *sha256_hex, int *exists_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_RET_BLOB_EXISTS);
	bind_text(s, 1, sha256_hex);
	rc = store_scalar(st, s, "blob exists", &n, err);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		*exists_out = n > 0;
	return rc;
}

/* ---- agents ---- */

void agent_rows_free(struct agent_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].labels);
	}
	free(rows);
}

/* Requeues the running jobs of agent id (why: for the log line and a
 * final message); *n_out of them. Inside the caller's transaction. */
static int store_agent_requeue_locked(struct store *st, int64_t id, const char *why, int64_t now_ms,
                                      int *n_out, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_AGENT_RUNNING);
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	bind_i64(s, 1, id);
	if (store_ids(st, s, "agent jobs", &ids, &n, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (store_job_requeue_locked(st, ids[i], why, now_ms, err) < 0)
			goto out;
	*n_out = (int)n;
	rc = 0;
out:
	free(ids);
	return rc;
}

int store_agent_register(struct store *st, const char *name, const char *labels_json,
                         const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, int *requeued_out,
                         struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	*requeued_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_AGENT_UPSERT);
	bind_text(s, 1, name);
	bind_text(s, 2, labels_json);
	bind_i64(s, 3, now_ms);
	bind_text(s, 4, token_sha256_hex);
	if (store_exec_stmt(st, s, "agent register", err) < 0)
		goto fail;
	s = store_stmt(st, S_AGENT_ID);
	bind_text(s, 1, name);
	if (store_scalar(st, s, "agent", id_out, err) < 0)
		goto fail;
	/* The name's previous process (restarted, or an impostor the operator
	 * will notice) holds no job any more: its token is gone with the row's
	 * old hash, so its attempt can never finish. */
	if (store_agent_requeue_locked(st, *id_out, "agent registered again", now_ms, requeued_out, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_agent_by_token(struct store *st, const char *token_sha256_hex, int64_t *id_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_AGENT_BY_TOKEN);
	bind_text(s, 1, token_sha256_hex);
	rc = store_scalar(st, s, "agent token", id_out, err);
	pthread_mutex_unlock(&st->mu);
	if (rc < 0 && err && err->code == ERR_NOTFOUND)
		err_set(err, ERR_AUTH, "unknown or revoked agent token");
	return rc;
}

int store_agent_remove(struct store *st, const char *name, int64_t now_ms, int64_t *id_out, int *requeued_out,
                       struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	*requeued_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_AGENT_ID);
	bind_text(s, 1, name);
	if (store_scalar(st, s, "agent", id_out, err) < 0) {
		if (err && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "no agent named '%s'", name);
		goto fail;
	}
	s = store_stmt(st, S_AGENT_REMOVE);
	bind_i64(s, 1, *id_out);
	bind_i64(s, 2, now_ms);
	if (store_exec_stmt(st, s, "agent remove", err) < 0)
		goto fail;
	if (store_agent_requeue_locked(st, *id_out, "agent removed", now_ms, requeued_out, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_job_owner_check(struct store *st, int64_t job_id, int64_t agent_id, struct err *err)
{
	sqlite3_stmt *s;
	int64_t owner = 0;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_JOB_OWNER);
	bind_i64(s, 1, job_id);
	rc = store_scalar(st, s, "job owner", &owner, err);
	pthread_mutex_unlock(&st->mu);
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

int store_agent_labels(struct store *st, int64_t id, char **labels_out, struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_AGENT_LABELS);
	bind_i64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*labels_out = col_dup_empty(s, 0);
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step == SQLITE_ROW)
		return 0;
	if (step == SQLITE_DONE)
		return err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	return err_set(err, ERR_SYS, "agent labels failed");
}

int store_agent_touch(struct store *st, int64_t id, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_AGENT_TOUCH);
	bind_i64(s, 1, id);
	bind_i64(s, 2, now_ms);
	rc = store_exec_stmt(st, s, "agent touch", err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "agent %lld is not registered", (long long)id);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_agent_list(struct store *st, struct agent_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct agent_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_AGENT_LIST);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n].id = sqlite3_column_int64(s, 0);
		rows[n].name = col_dup_empty(s, 1);
		rows[n].labels = col_dup_empty(s, 2);
		rows[n].last_seen_ms = sqlite3_column_int64(s, 3);
		rows[n].job_id = sqlite3_column_int64(s, 4);
		n++;
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		agent_rows_free(rows, n);
		return err_set(err, ERR_SYS, "agent list failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_stats(struct store *st, struct store_stats *out, struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_STATS_JOBS);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		enum job_state js;
		if (jobstate_parse((const char *)sqlite3_column_text(s, 0), &js) == 0)
			out->jobs_by_state[js] = sqlite3_column_int64(s, 1);
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "stats");
		goto out;
	}
	if (store_scalar(st, store_stmt(st, S_STATS_PIPES), "stats", &out->pipelines, err) < 0 ||
	    store_scalar(st, store_stmt(st, S_STATS_LOG), "stats", &out->log_bytes, err) < 0)
		goto out;
	s = store_stmt(st, S_STATS_BLOBS);
	if ((step = sqlite3_step(s)) == SQLITE_ROW) {
		out->blobs = sqlite3_column_int64(s, 0);
		out->blob_bytes = sqlite3_column_int64(s, 1);
	}
	store_done(s);
	rc = 0;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- forges ---- */

void repo_cfg_release(struct repo_cfg *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->url);
	free(r->forge);
	free(r->hook_secret);
	free(r->status_token);
	free(r->api_url);
	free(r->agent_labels);
	memset(r, 0, sizeof(*r));
}

void repo_cfgs_free(struct repo_cfg *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		repo_cfg_release(&rows[i]);
	free(rows);
}

static void repo_cfg_read(sqlite3_stmt *s, struct repo_cfg *r)
{
	r->id = sqlite3_column_int64(s, 0);
	r->name = col_dup_empty(s, 1);
	r->url = col_dup_empty(s, 2);
	r->forge = col_dup_empty(s, 3);
	r->hook_secret = col_dup_empty(s, 4);
	r->status_token = col_dup_empty(s, 5);
	r->api_url = col_dup_empty(s, 6);
	r->poll_s = sqlite3_column_int(s, 7);
	r->agent_labels = col_dup_empty(s, 8);
}

int store_repo_configure(struct store *st, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                         struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_REPO_SET);
	bind_text(s, 1, in->name);
	bind_text(s, 2, in->url);
	bind_i64(s, 3, now_ms);
	bind_text(s, 4, in->forge ? in->forge : "");
	bind_text(s, 5, in->hook_secret ? in->hook_secret : "");
	bind_text(s, 6, in->status_token ? in->status_token : "");
	bind_text(s, 7, in->api_url ? in->api_url : "");
	bind_i64(s, 8, in->poll_s);
	bind_text(s, 9, in->agent_labels); /* NULL keeps the repository's pool */
	if (store_exec_stmt(st, s, "repo configure", err) < 0)
		goto out;
	s = store_stmt(st, S_REPO_ID);
	bind_text(s, 1, in->name);
	rc = store_scalar(st, s, "repo", id_out, err);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_repo_cfg_get(struct store *st, const char *name, struct repo_cfg *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_REPO_GET);
	bind_text(s, 1, name);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		repo_cfg_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no repository named '%s'", name);
	} else {
		store_fail(st, err, step, "repo get");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_repo_cfg_list(struct store *st, struct repo_cfg **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct repo_cfg *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_REPO_LIST);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		repo_cfg_read(s, &rows[n++]);
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "repo list");
		pthread_mutex_unlock(&st->mu);
		repo_cfgs_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

int store_secret_set(struct store *st, const char *repo, const char *name, const char *value, int64_t now_ms,
                     struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_SECRET_SET);
	bind_text(s, 1, repo);
	bind_text(s, 2, name);
	bind_text(s, 3, value);
	bind_i64(s, 4, now_ms);
	if (store_exec_stmt(st, s, "secret set", err) < 0)
		goto out;
	if (sqlite3_changes(st->db) == 0) {
		err_set(err, ERR_NOTFOUND, "no repository named '%s'", repo);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_secret_delete(struct store *st, const char *repo, const char *name, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_SECRET_DELETE);
	bind_text(s, 1, repo);
	bind_text(s, 2, name);
	if (store_exec_stmt(st, s, "secret delete", err) < 0)
		goto out;
	if (sqlite3_changes(st->db) == 0) {
		err_set(err, ERR_NOTFOUND, "repository '%s' has no secret '%s'", repo, name);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_secret_list(struct store *st, const char *repo, struct strv *names, struct strv *values,
                      struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_SECRET_LIST);
	bind_text(s, 1, repo);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(s, 1);
		strv_push(names, (const char *)sqlite3_column_text(s, 0));
		if (values != NULL)
			strv_push(values, v ? (const char *)v : "");
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "secret list");
		pthread_mutex_unlock(&st->mu);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int store_poll_heads(struct store *st, int64_t repo_id, struct strv *refs, struct strv *shas, struct err *err)
{
	sqlite3_stmt *s;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_HEADS);
	bind_i64(s, 1, repo_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		strv_push(refs, (const char *)sqlite3_column_text(s, 0));
		strv_push(shas, (const char *)sqlite3_column_text(s, 1));
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "poll heads");
		pthread_mutex_unlock(&st->mu);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int store_poll_head_set(struct store *st, int64_t repo_id, const char *ref, const char *sha, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, sha ? S_FORGE_HEAD_SET : S_FORGE_HEAD_DELETE);
	bind_i64(s, 1, repo_id);
	bind_text(s, 2, ref);
	if (sha)
		bind_text(s, 3, sha);
	rc = store_exec_stmt(st, s, "poll head", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void status_rows_free(struct status_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].state);
		free(rows[i].description);
		free(rows[i].forge);
		free(rows[i].api_url);
		free(rows[i].token);
		free(rows[i].repo_url);
		free(rows[i].commit_sha);
		free(rows[i].target);
	}
	free(rows);
}

int store_status_due(struct store *st, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                     struct err *err)
{
	sqlite3_stmt *s;
	struct status_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_STATUS_DUE);
	bind_i64(s, 1, now_ms);
	bind_i64(s, 2, limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct status_row *r;
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		r = &rows[n++];
		r->id = sqlite3_column_int64(s, 0);
		r->job_id = sqlite3_column_int64(s, 1);
		r->state = col_dup_empty(s, 2);
		r->description = col_dup_empty(s, 3);
		r->attempts = sqlite3_column_int(s, 4);
		r->forge = col_dup_empty(s, 5);
		r->api_url = col_dup_empty(s, 6);
		r->token = col_dup_empty(s, 7);
		r->repo_url = col_dup_empty(s, 8);
		r->commit_sha = col_dup_empty(s, 9);
		r->target = col_dup_empty(s, 10);
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "status due");
		pthread_mutex_unlock(&st->mu);
		status_rows_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

int store_status_sent(struct store *st, int64_t id, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_STATUS_DELETE);
	bind_i64(s, 1, id);
	rc = store_exec_stmt(st, s, "status sent", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_status_retry(struct store *st, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                       int gave_up, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_STATUS_RETRY);
	bind_i64(s, 1, id);
	bind_i64(s, 2, attempts);
	bind_i64(s, 3, next_ms);
	bind_text(s, 4, last_error ? last_error : "");
	bind_i64(s, 5, gave_up);
	rc = store_exec_stmt(st, s, "status retry", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_status_pending(struct store *st, int64_t *n_out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = store_scalar(st, store_stmt(st, S_FORGE_STATUS_COUNT), "status count", n_out, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_status_prune(struct store *st, int64_t before_ms, int limit, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_FORGE_STATUS_PRUNE);
	bind_i64(s, 1, before_ms);
	bind_i64(s, 2, limit);
	rc = store_exec_stmt(st, s, "status prune", err);
	*n_out = rc == 0 ? sqlite3_changes(st->db) : 0;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- boards and deployments ---- */

int store_labels_match(const char *kind, const char *target, const char *required, const char *const *labels,
                       size_t n_labels)
{
	int found;

	if (kind == NULL || strcmp(kind, "build") == 0) {
		found = 0;
		for (size_t i = 0; i < n_labels && !found; i++)
			found = strncmp(labels[i], "target=", 7) == 0 && target &&
			        strcmp(labels[i] + 7, target) == 0;
		if (!found)
			return 0;
	}
	return store_labels_have(required, labels, n_labels);
}

int store_labels_have(const char *required, const char *const *labels, size_t n_labels)
{
	const char *p = required ? required : "";
	int found;

	while (*p) {
		size_t len = strcspn(p, ",");
		found = len == 0;
		for (size_t i = 0; i < n_labels && !found; i++)
			found = strlen(labels[i]) == len && strncmp(labels[i], p, len) == 0;
		if (!found)
			return 0;
		p += len;
		if (*p == ',')
			p++;
	}
	return 1;
}

void board_rows_free(struct board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].host);
		free(rows[i].user);
		free(rows[i].arch);
		free(rows[i].group);
		free(rows[i].labels);
		free(rows[i].host_key);
		free(rows[i].private_key);
		free(rows[i].current_release);
	}
	free(rows);
}

int store_board_add(struct store *st, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_BOARD_INSERT);
	bind_text(s, 1, in->name);
	bind_text(s, 2, in->host);
	bind_i64(s, 3, in->port);
	bind_text(s, 4, in->user);
	bind_text(s, 5, in->arch);
	bind_text(s, 6, in->group);
	bind_text(s, 7, in->labels ? in->labels : "");
	bind_text(s, 8, in->host_key);
	bind_text(s, 9, in->private_key);
	bind_i64(s, 10, now_ms);
	rc = store_exec_stmt(st, s, "board add", err);
	if (rc < 0 && err && err->code == ERR_CONFLICT)
		err_set(err, ERR_CONFLICT, "board %s exists already", in->name);
	if (rc == 0 && id_out)
		*id_out = sqlite3_last_insert_rowid(st->db);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_board_delete(struct store *st, const char *name, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_BOARD_DELETE);
	bind_text(s, 1, name);
	rc = store_exec_stmt(st, s, "board delete", err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "no board named %s", name);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_board_list(struct store *st, const char *group, int with_keys, struct board_row **out,
                     size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct board_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_BOARD_LIST);
	bind_text(s, 1, group);
	bind_i64(s, 2, with_keys ? 1 : 0);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct board_row *b;
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		b = &rows[n++];
		b->id = sqlite3_column_int64(s, 0);
		b->name = col_dup_empty(s, 1);
		b->host = col_dup_empty(s, 2);
		b->port = sqlite3_column_int(s, 3);
		b->user = col_dup_empty(s, 4);
		b->arch = col_dup_empty(s, 5);
		b->group = col_dup_empty(s, 6);
		b->labels = col_dup_empty(s, 7);
		b->host_key = col_dup_empty(s, 8);
		b->private_key = col_dup(s, 9);
		b->current_release = col_dup(s, 10);
		b->created_ms = sqlite3_column_int64(s, 11);
	}
	if (step != SQLITE_DONE)
		store_fail(st, err, step, "board list");
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		board_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_deploy_plan_get(struct store *st, int64_t pipeline_id, const char *group, char **spec_out,
                          char **labels_out, struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_DEPLOY_PLAN_GET);
	bind_i64(s, 1, pipeline_id);
	bind_text(s, 2, group);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*spec_out = col_dup_empty(s, 0);
		*labels_out = col_dup_empty(s, 1);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "pipeline %lld has no deploy entry for group %s",
		        (long long)pipeline_id, group);
	} else {
		store_fail(st, err, step, "deploy plan");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_deploy_job_create(struct store *st, int64_t pipeline_id, const char *name, const char *group,
                            const char *spec, const char *labels, int max_attempts, int64_t now_ms,
                            int64_t *job_id_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_DEPLOY_PIPE_EXISTS);
	bind_i64(s, 1, pipeline_id);
	if (store_scalar(st, s, "pipeline", &n, err) < 0) {
		if (err && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "pipeline %lld not found", (long long)pipeline_id);
		goto fail;
	}
	if (strcmp(name, "deploy") == 0) {
		s = store_stmt(st, S_DEPLOY_BUILDS_PENDING);
		bind_i64(s, 1, pipeline_id);
		if (store_scalar(st, s, "builds", &n, err) < 0)
			goto fail;
		if (n > 0) {
			err_set(err, ERR_CONFLICT,
			        "pipeline %lld has %lld build job(s) that have not succeeded",
			        (long long)pipeline_id, (long long)n);
			goto fail;
		}
	}
	s = store_stmt(st, S_DEPLOY_ACTIVE);
	bind_text(s, 1, group);
	if (store_scalar(st, s, "active deploys", &n, err) < 0)
		goto fail;
	if (n > 0) {
		err_set(err, ERR_CONFLICT, "a deploy job for group %s is still queued or running", group);
		goto fail;
	}
	s = store_stmt(st, S_DEPLOY_JOB_INSERT);
	bind_i64(s, 1, pipeline_id);
	bind_text(s, 2, name);
	bind_text(s, 3, group);
	bind_i64(s, 4, max_attempts);
	bind_text(s, 5, spec);
	bind_i64(s, 6, now_ms);
	bind_text(s, 7, labels ? labels : "");
	if (store_exec_stmt(st, s, "deploy job insert", err) < 0)
		goto fail;
	*job_id_out = sqlite3_last_insert_rowid(st->db);
	if (store_pipeline_refresh(st, pipeline_id, now_ms, err) < 0)
		goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_deploy_last(struct store *st, const char *group, int64_t *job_id_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_DEPLOY_LAST);
	bind_text(s, 1, group);
	rc = store_scalar(st, s, "last deploy", job_id_out, err);
	if (rc < 0 && err && err->code == ERR_NOTFOUND)
		err_set(err, ERR_NOTFOUND, "group %s was never deployed", group);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void deploy_board_rows_free(struct deploy_board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].board);
		free(rows[i].release);
		free(rows[i].previous);
		free(rows[i].current);
		free(rows[i].state);
		free(rows[i].message);
		free(rows[i].restart_output);
		free(rows[i].health_output);
	}
	free(rows);
}

int store_deploy_report(struct store *st, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                        struct err *err)
{
	sqlite3_stmt *s;
	struct job_state_row js;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	if (store_job_check_attempt(st, job_id, r->attempt, &js, err) < 0)
		goto fail;
	s = store_stmt(st, S_DEPLOY_REPORT);
	bind_i64(s, 1, job_id);
	bind_text(s, 2, r->board);
	bind_i64(s, 3, r->attempt);
	bind_text(s, 4, r->release ? r->release : "");
	bind_text(s, 5, r->previous ? r->previous : "");
	bind_text(s, 6, r->current ? r->current : "");
	bind_text(s, 7, r->state);
	bind_text(s, 8, r->message ? r->message : "");
	bind_i64(s, 9, r->bytes_sent);
	bind_i64(s, 10, r->files_uploaded);
	bind_i64(s, 11, r->files_skipped);
	bind_i64(s, 12, r->restart_exit);
	bind_text(s, 13, r->restart_output ? r->restart_output : "");
	bind_i64(s, 14, r->health_exit);
	bind_text(s, 15, r->health_output ? r->health_output : "");
	bind_i64(s, 16, r->started_ms);
	bind_i64(s, 17, now_ms);
	bind_i64(s, 18, r->duration_ms);
	if (store_exec_stmt(st, s, "deploy report", err) < 0)
		goto fail;
	if (r->current && r->current[0] &&
	    (strcmp(r->state, "healthy") == 0 || strcmp(r->state, "rolled_back") == 0 ||
	     strcmp(r->state, "failed") == 0)) {
		s = store_stmt(st, S_DEPLOY_BOARD_CURRENT);
		bind_text(s, 1, r->board);
		bind_text(s, 2, r->current);
		if (store_exec_stmt(st, s, "board current", err) < 0)
			goto fail;
	}
	if (store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_deploy_boards(struct store *st, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                        struct err *err)
{
	sqlite3_stmt *s;
	struct deploy_board_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_DEPLOY_BOARDS);
	bind_i64(s, 1, job_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct deploy_board_row *r;
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		r = &rows[n++];
		r->board = col_dup_empty(s, 0);
		r->attempt = sqlite3_column_int(s, 1);
		r->release = col_dup_empty(s, 2);
		r->previous = col_dup_empty(s, 3);
		r->current = col_dup_empty(s, 4);
		r->state = col_dup_empty(s, 5);
		r->message = col_dup_empty(s, 6);
		r->bytes_sent = sqlite3_column_int64(s, 7);
		r->files_uploaded = sqlite3_column_int(s, 8);
		r->files_skipped = sqlite3_column_int(s, 9);
		r->restart_exit = sqlite3_column_int(s, 10);
		r->restart_output = col_dup_empty(s, 11);
		r->health_exit = sqlite3_column_int(s, 12);
		r->health_output = col_dup_empty(s, 13);
		r->started_ms = sqlite3_column_int64(s, 14);
		r->updated_ms = sqlite3_column_int64(s, 15);
		r->duration_ms = sqlite3_column_int64(s, 16);
	}
	if (step != SQLITE_DONE)
		store_fail(st, err, step, "deploy boards");
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		deploy_board_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_board_previous_release(struct store *st, const char *board, const char *current, char **out,
                                 struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = -1;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_DEPLOY_PREVIOUS);
	bind_text(s, 1, board);
	bind_text(s, 2, current ? current : "");
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = col_dup_empty(s, 0);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "board %s was never healthy on another release", board);
	} else {
		store_fail(st, err, step, "previous release");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void deployment_rows_free(struct deployment_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_row_release(&rows[i].job);
	free(rows);
}

int store_deployment_list(struct store *st, const char *group, int limit, struct deployment_row **out,
                          size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct deployment_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_DEPLOY_LIST);
	bind_i64(s, 1, limit);
	bind_text(s, 2, group);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		memset(&rows[n], 0, sizeof(rows[n]));
		job_row_read(s, &rows[n].job);
		n++;
	}
	store_done(s);
	for (size_t i = 0; step == SQLITE_DONE && i < n; i++) {
		s = store_stmt(st, S_DEPLOY_COUNTS);
		bind_i64(s, 1, rows[i].job.id);
		if ((step = sqlite3_step(s)) == SQLITE_ROW) {
			rows[i].n_boards = sqlite3_column_int(s, 0);
			rows[i].n_healthy = sqlite3_column_int(s, 1);
			rows[i].n_failed = sqlite3_column_int(s, 2);
			rows[i].n_rolled_back = sqlite3_column_int(s, 3);
			rows[i].n_skipped = sqlite3_column_int(s, 4);
			rows[i].n_refused = sqlite3_column_int(s, 5);
			step = SQLITE_DONE;
		}
		store_done(s);
	}
	if (step != SQLITE_DONE)
		store_fail(st, err, step, "deployment list");
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		deployment_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- ui reads ---- */

int store_pipeline_latest_refs(struct store *st, int limit, struct pipeline_row **out, size_t *n_out,
                               struct err *err)
{
	sqlite3_stmt *s;
	struct pipeline_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_UI_PIPE_LATEST_REFS);
	bind_i64(s, 1, limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		pipeline_row_read(s, &rows[n++]);
	}
	if (step != SQLITE_DONE)
		store_fail(st, err, step, "latest pipelines");
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		pipeline_rows_free(rows, n);
		return -1;
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int store_pipeline_latest_ref(struct store *st, const char *repo, const char *ref, struct pipeline_row *out,
                              struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_UI_PIPE_LATEST_REF);
	bind_text(s, 1, repo);
	bind_text(s, 2, ref);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		pipeline_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no pipeline for that repository and ref");
	} else {
		store_fail(st, err, step, "latest pipeline");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- releases ---- */

int store_release_pattern_set(struct store *st, const char *repo, const char *pattern, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_PATTERN_SET);
	bind_text(s, 1, repo);
	bind_text(s, 2, pattern);
	rc = store_exec_stmt(st, s, "release pattern", err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release_pattern_get(struct store *st, const char *repo, char **out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_PATTERN_GET);
	bind_text(s, 1, repo);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*out = col_dup_empty(s, 0);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no repository named %s", repo);
	} else {
		store_fail(st, err, step, "release pattern");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

void release_key_rows_free(struct release_key_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].keynum);
		free(rows[i].pubkey);
	}
	free(rows);
}

int store_release_key_add(struct store *st, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                          struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_REL_KEY_RETIRE);
	bind_i64(s, 1, now_ms);
	if (store_exec_stmt(st, s, "retire release keys", err) < 0)
		goto fail;
	s = store_stmt(st, S_REL_KEY_ADD);
	bind_text(s, 1, keynum_hex);
	bind_text(s, 2, pubkey);
	bind_i64(s, 3, now_ms);
	if (store_exec_stmt(st, s, "add release key", err) < 0 || store_commit(st, err) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release_key_list(struct store *st, struct release_key_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct release_key_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_KEY_LIST);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n].keynum = col_dup_empty(s, 0);
		rows[n].pubkey = col_dup_empty(s, 1);
		rows[n].created_ms = sqlite3_column_int64(s, 2);
		rows[n].retired_ms = sqlite3_column_int64(s, 3);
		n++;
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "release keys");
		pthread_mutex_unlock(&st->mu);
		release_key_rows_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

void release_row_release(struct release_row *r)
{
	if (r == NULL)
		return;
	free(r->repo_name);
	free(r->repo_url);
	free(r->version);
	free(r->commit_sha);
	free(r->manifest);
	free(r->signature);
	free(r->keynum);
	memset(r, 0, sizeof(*r));
}

void release_rows_free(struct release_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		release_row_release(&rows[i]);
	free(rows);
}

void release_file_rows_free(struct release_file_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].target);
		free(rows[i].name);
	}
	free(rows);
}

static void release_row_read(sqlite3_stmt *s, struct release_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	r->repo_id = sqlite3_column_int64(s, 1);
	r->repo_name = col_dup_empty(s, 2);
	r->repo_url = col_dup_empty(s, 3);
	r->version = col_dup_empty(s, 4);
	r->pipeline_id = sqlite3_column_int64(s, 5);
	r->commit_sha = col_dup_empty(s, 6);
	r->created_ms = sqlite3_column_int64(s, 7);
	r->manifest = col_dup(s, 8);
	r->signature = col_dup(s, 9);
	r->keynum = col_dup(s, 10);
}

int store_release_unsigned(struct store *st, int64_t **ids_out, size_t *n_out, struct err *err)
{
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = store_ids(st, store_stmt(st, S_REL_UNSIGNED), "unsigned releases", ids_out, n_out, err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release_files(struct store *st, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                        struct err *err)
{
	sqlite3_stmt *s;
	struct release_file_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_FILES);
	bind_i64(s, 1, pipeline_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n].target = col_dup_empty(s, 0);
		rows[n].name = col_dup_empty(s, 1);
		rows[n].size = sqlite3_column_int64(s, 2);
		snprintf(rows[n].sha256, sizeof(rows[n].sha256), "%s",
		         (const char *)sqlite3_column_text(s, 3));
		n++;
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "release files");
		pthread_mutex_unlock(&st->mu);
		release_file_rows_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

int store_release_sign(struct store *st, int64_t id, const char *manifest, const char *signature,
                       const char *keynum_hex, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_SIGN);
	bind_i64(s, 1, id);
	bind_text(s, 2, manifest);
	bind_text(s, 3, signature);
	bind_text(s, 4, keynum_hex);
	rc = store_exec_stmt(st, s, "release sign", err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = err_set(err, ERR_CONFLICT, "release %lld is signed already", (long long)id);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release_get(struct store *st, int64_t id, const char *repo, const char *version,
                      struct release_row *out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_GET);
	bind_i64(s, 1, id);
	bind_text(s, 2, repo);
	bind_text(s, 3, version);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		release_row_read(s, out);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		err_set(err, ERR_NOTFOUND, "no such release");
	} else {
		store_fail(st, err, step, "release get");
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_release_list(struct store *st, const char *repo, int limit, struct release_row **out, size_t *n_out,
                       struct err *err)
{
	sqlite3_stmt *s;
	struct release_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, repo ? S_REL_LIST_REPO : S_REL_LIST);
	bind_i64(s, 1, limit);
	if (repo)
		bind_text(s, 2, repo);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		release_row_read(s, &rows[n++]);
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "release list");
		pthread_mutex_unlock(&st->mu);
		release_rows_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

/* Cancels one queued deploy job with message and recomputes its pipeline's
 * state. Called in a transaction with st->mu held. */
static int store_release_deploy_cancel_locked(struct store *st, int64_t job_id, int64_t pipeline_id,
                                              const char *message, int64_t now_ms, struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, S_REL_DEPLOY_CANCEL);

	bind_i64(s, 1, job_id);
	bind_i64(s, 2, now_ms);
	bind_text(s, 3, message);
	if (store_exec_stmt(st, s, "deploy cancel", err) < 0)
		return -1;
	return store_pipeline_refresh(st, pipeline_id, now_ms, err);
}

int store_release_deploys_end_orphans(struct store *st, int64_t now_ms, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t *ids = NULL, *pids = NULL;
	struct strv msgs = STRV_INIT;
	size_t n = 0;
	int step, rc = -1;

	*n_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_REL_DEPLOYS_ORPHANED);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		char *m = xasprintf(
		    "release %s of %s was recorded from pipeline %lld, not this one: this "
		    "deploy would not carry its signed manifest (deploy it with anvil deploy "
		    "--release %s)",
		    (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
		    (long long)sqlite3_column_int64(s, 4), (const char *)sqlite3_column_text(s, 2));
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		pids = xrealloc(pids, (n + 1) * sizeof(*pids));
		ids[n] = sqlite3_column_int64(s, 0);
		pids[n] = sqlite3_column_int64(s, 1);
		strv_push(&msgs, m);
		free(m);
		n++;
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "orphaned release deploys");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (store_release_deploy_cancel_locked(st, ids[i], pids[i], msgs.v[i], now_ms, err) < 0)
			goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	*n_out = (int)n;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(ids);
	free(pids);
	strv_release(&msgs);
	return rc;
}

int store_release_deploys_cancel(struct store *st, int64_t pipeline_id, const char *message, int64_t now_ms,
                                 int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;

	*n_out = 0;
	pthread_mutex_lock(&st->mu);
	if (store_begin(st, err) < 0)
		goto out;
	s = store_stmt(st, S_REL_DEPLOYS_WAITING);
	bind_i64(s, 1, pipeline_id);
	if (store_ids(st, s, "waiting release deploys", &ids, &n, err) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (store_release_deploy_cancel_locked(st, ids[i], pipeline_id, message, now_ms, err) < 0)
			goto fail;
	if (store_commit(st, err) < 0)
		goto fail;
	*n_out = (int)n;
	rc = 0;
	goto out;
fail:
	store_rollback(st);
out:
	pthread_mutex_unlock(&st->mu);
	free(ids);
	return rc;
}

void release_board_rows_free(struct release_board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].board);
		free(rows[i].group);
	}
	free(rows);
}

int store_release_boards(struct store *st, int64_t repo_id, const char *version,
                         struct release_board_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct release_board_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_REL_BOARDS);
	bind_i64(s, 1, repo_id);
	bind_text(s, 2, version);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n].board = col_dup_empty(s, 0);
		rows[n].group = col_dup_empty(s, 1);
		rows[n].since_ms = sqlite3_column_int64(s, 2);
		n++;
	}
	store_done(s);
	if (step != SQLITE_DONE) {
		store_fail(st, err, step, "release boards");
		pthread_mutex_unlock(&st->mu);
		release_board_rows_free(rows, n);
		return -1;
	}
	pthread_mutex_unlock(&st->mu);
	*out = rows;
	*n_out = n;
	return 0;
}

/* ---- web UI sessions ---- */

int store_session_add(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                      int64_t expires_ms, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_SESSION_ADD);
	bind_text(s, 1, id_sha256);
	bind_text(s, 2, admin_sha256);
	bind_i64(s, 3, now_ms);
	bind_i64(s, 4, expires_ms);
	rc = store_exec_stmt(st, s, "session add", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_session_check(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                        struct err *err)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_SESSION_CHECK);
	bind_text(s, 1, id_sha256);
	bind_text(s, 2, admin_sha256);
	bind_i64(s, 3, now_ms);
	rc = store_scalar(st, s, "session", &n, err);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0 && n == 0)
		return err_set(err, ERR_AUTH, "no such session");
	return rc;
}

int store_session_delete(struct store *st, const char *id_sha256, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_SESSION_DELETE);
	bind_text(s, 1, id_sha256);
	rc = store_exec_stmt(st, s, "session delete", err);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_session_delete_all(struct store *st, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_SESSION_DELETE_ALL);
	rc = store_exec_stmt(st, s, "session delete all", err);
	*n_out = rc == 0 ? sqlite3_changes(st->db) : 0;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int store_session_expire(struct store *st, int64_t now_ms, int limit, int *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_SESSION_EXPIRE);
	bind_i64(s, 1, now_ms);
	bind_i64(s, 2, limit);
	rc = store_exec_stmt(st, s, "session expire", err);
	*n_out = rc == 0 ? sqlite3_changes(st->db) : 0;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- pipeline history (issue 16): one page of pipelines with filters ---- */

int store_pipeline_page(struct store *st, const struct pipeline_filter *f, int limit,
                        struct pipeline_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct pipeline_row *rows = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&st->mu);
	s = store_stmt(st, S_PIPE_PAGE);
	bind_i64(s, 1, limit);
	if (f->repo != NULL)
		bind_text(s, 2, f->repo);
	if (f->ref != NULL)
		bind_text(s, 3, f->ref);
	if (f->state != NULL)
		bind_text(s, 4, f->state);
	if (f->event != NULL)
		bind_text(s, 5, f->event);
	bind_i64(s, 6, f->before_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		pipeline_row_read(s, &rows[n++]);
	}
	store_done(s);
	pthread_mutex_unlock(&st->mu);
	if (step != SQLITE_DONE) {
		pipeline_rows_free(rows, n);
		return err_set(err, ERR_SYS, "pipeline page failed");
	}
	*out = rows;
	*n_out = n;
	return 0;
}
