#ifndef ANVIL_SQLITE_INT_H
#define ANVIL_SQLITE_INT_H

/* What the files of the SQLite backend (server/store/sqlite*.c) share, and
 * nothing else includes: the backend's state, the statement ids (each
 * file's SQL sits in its own table beside its code; sqlite.c prepares them
 * all once at open, SQLITE_PREPARE_PERSISTENT), the bind/step/row helpers
 * written once, and the functions the ops table in sqlite.c names.
 *
 * Locking: one connection, one mutex. A whole operation takes be->mu for
 * its duration; a transaction of server/sched/jobstate.c holds it from
 * tx_begin to tx_commit/tx_rollback. Helpers are called with it held. */

#include "common/log.h"
#include "server/store/store_be.h"
#include "server/store/store_failpoint.h"

#include <pthread.h>

#include <sqlite3.h>

enum sq_stmt_id {
	/* sqlite.c */
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	/* sqlite_jobs.c */
	SQ_PIPE_BY_DELIVERY,
	SQ_PIPE_BY_REPO_DELIVERY,
	SQ_PIPE_INSERT,
	SQ_JOB_INSERT,
	SQ_PIPE_GET,
	SQ_PIPE_LIST,
	SQ_PIPE_LIST_REPO,
	SQ_PIPE_JOBS,
	SQ_PIPE_CURRENT_STATES,
	SQ_PIPE_SET_STATE,
	SQ_JOB_GET,
	SQ_JOB_STATE,
	SQ_JOB_QUEUED,
	SQ_JOB_LEASE,
	SQ_JOB_EXPIRED,
	SQ_JOB_OWNER,
	SQ_UI_PIPE_LATEST_REFS,
	SQ_UI_PIPE_LATEST_REF,
	SQ_JOBS_UNSUCCEEDED,
	SQ_PIPE_PAGE,
	SQ_JOB_PAGE,
	SQ_TX_JOB_LOCK,
	SQ_TX_JOB_WRITE,
	SQ_TX_PIPE_FACTS,
	SQ_NEED_INSERT,
	SQ_NEEDS_OF_JOB,
	SQ_JOBS_NEEDING,
	SQ_PIPE_CURRENT_JOBS,
	SQ_PIPES_SUPERSEDED,
	SQ_JOB_APPROVE,
	SQ_PIPE_SET_MESSAGE,
	SQ_JOB_INPUTS,
	/* sqlite_logs.c */
	SQ_LOG_INSERT,
	SQ_LOG_ADD_BYTES,
	SQ_LOG_READ,
	SQ_RET_LOG_JOBS,
	SQ_RET_LOG_DELETE,
	SQ_RET_LOG_MARK,
	SQ_STEP_START,
	SQ_STEP_END,
	SQ_TIMES_INSERT,
	SQ_STEPS_READ,
	SQ_TIMES_READ,
	SQ_RET_TIMES_DELETE,
	/* sqlite_artifacts.c */
	SQ_BLOB_INSERT,
	SQ_ARTIFACT_UPSERT,
	SQ_ARTIFACT_LIST,
	SQ_ARTIFACT_GET,
	SQ_RET_ART_JOBS,
	SQ_RET_ART_DELETE,
	SQ_RET_ART_MARK,
	SQ_RET_BLOB_UNREF,
	SQ_RET_BLOB_DELETE,
	SQ_RET_BLOB_EXISTS,
	/* sqlite_agents.c */
	SQ_TOKEN_SET,
	SQ_TOKEN_GET,
	SQ_AGENT_UPSERT,
	SQ_AGENT_ID,
	SQ_AGENT_LABELS,
	SQ_AGENT_TOUCH,
	SQ_AGENT_LIST,
	SQ_AGENT_BY_TOKEN,
	SQ_AGENT_REMOVE,
	SQ_AGENT_RUNNING,
	SQ_STATS_JOBS,
	SQ_STATS_PIPES,
	SQ_STATS_LOG,
	SQ_STATS_BLOBS,
	/* sqlite_forges.c */
	SQ_TX_STATUS_QUEUE,
	SQ_REPO_UPSERT,
	SQ_REPO_ID,
	SQ_REPO_LIST,
	SQ_FORGE_REPO_SET,
	SQ_FORGE_REPO_GET,
	SQ_FORGE_REPO_LIST,
	SQ_FORGE_SECRET_SET,
	SQ_FORGE_SECRET_DELETE,
	SQ_FORGE_SECRET_LIST,
	SQ_FORGE_HEADS,
	SQ_FORGE_HEAD_SET,
	SQ_FORGE_HEAD_DELETE,
	SQ_FORGE_STATUS_DUE,
	SQ_FORGE_STATUS_DELETE,
	SQ_FORGE_STATUS_RETRY,
	SQ_FORGE_STATUS_COUNT,
	SQ_FORGE_STATUS_PRUNE,
	/* sqlite_deploys.c */
	SQ_TX_DEPLOY_PLANS_PENDING,
	SQ_DEPLOY_PLAN_INSERT,
	SQ_DEPLOY_PLAN_GET,
	SQ_BOARD_INSERT,
	SQ_BOARD_DELETE,
	SQ_BOARD_LIST,
	SQ_DEPLOY_ACTIVE,
	SQ_DEPLOY_LAST,
	SQ_DEPLOY_REPORT,
	SQ_DEPLOY_BOARD_CURRENT,
	SQ_DEPLOY_BOARDS,
	SQ_DEPLOY_LIST,
	SQ_DEPLOY_COUNTS,
	SQ_DEPLOY_PREVIOUS,
	SQ_BOARD_DEPLOYS,
	/* sqlite_releases.c */
	SQ_TX_RELEASE_RECORD,
	SQ_REL_PATTERN_SET,
	SQ_REL_PATTERN_GET,
	SQ_REL_KEY_RETIRE,
	SQ_REL_KEY_ADD,
	SQ_REL_KEY_LIST,
	SQ_REL_UNSIGNED,
	SQ_REL_FILES,
	SQ_REL_SIGN,
	SQ_REL_GET,
	SQ_REL_LIST,
	SQ_REL_LIST_REPO,
	SQ_REL_DEPLOYS_ORPHANED,
	SQ_REL_DEPLOYS_WAITING,
	SQ_REL_BOARDS,
	/* sqlite_sessions.c */
	SQ_SESSION_ADD,
	SQ_SESSION_CHECK,
	SQ_SESSION_DELETE,
	SQ_SESSION_DELETE_ALL,
	SQ_SESSION_EXPIRE,
	/* sqlite_schedules.c */
	SQ_SCHED_ADD,
	SQ_SCHED_LIST,
	SQ_SCHED_LIST_REPO,
	SQ_SCHED_DELETE,
	SQ_SCHED_CLAIM,
	SQ_COUNT
};

struct sq_sql {
	enum sq_stmt_id id;
	const char *sql;
};
extern const struct sq_sql sq_main_sql[], sq_jobs_sql[], sq_logs_sql[], sq_artifacts_sql[], sq_agents_sql[],
    sq_forges_sql[], sq_deploys_sql[], sq_releases_sql[], sq_sessions_sql[], sq_schedules_sql[];
extern const size_t sq_main_sql_n, sq_jobs_sql_n, sq_logs_sql_n, sq_artifacts_sql_n, sq_agents_sql_n,
    sq_forges_sql_n, sq_deploys_sql_n, sq_releases_sql_n, sq_sessions_sql_n, sq_schedules_sql_n;

/* The SQLite backend's state (struct store_be is opaque outside it). */
struct store_be {
	sqlite3 *db;
	/* A statement is prepared when first used (sq_stmt) and kept: a
	 * server that never deploys or releases holds none of those (129
	 * statements held 640 KB). Every text is compiled once at open, so a
	 * bad one still fails the open. */
	sqlite3_stmt *stmt[SQ_COUNT];
	const char *sql[SQ_COUNT]; /* static texts, from the files' tables */
	pthread_mutex_t mu;
	struct store_vfs *vfs; /* owned; NULL unless opened with failpoints */
	int lock_fd;           /* PATH.lock, flock'ed while open; -1 for :memory: */
};

sqlite3_stmt *sq_prepare_lazy(struct store_be *be, enum sq_stmt_id id);

/* The statement for id, prepared on first use; be->mu held. NULL when that
 * prepare failed (logged): SQLite answers a bind or step on NULL with
 * SQLITE_MISUSE, reset and column reads with nothing, so the caller's
 * error path reports it (sqlite3_errmsg keeps the prepare's message). */
static inline sqlite3_stmt *sq_stmt(struct store_be *be, enum sq_stmt_id id)
{
	return be->stmt[id] != NULL ? be->stmt[id] : sq_prepare_lazy(be, id);
}

/* A transaction is the backend itself, its mutex held. */
static inline struct store_be *sq_tx_be(struct store_tx *tx)
{
	return (struct store_be *)tx;
}

/* ---- helpers (sqlite.c) and the operations of each file ---- */
int sq_fail(struct store_be *be, struct err *err, int rc, const char *what);
void sq_done(sqlite3_stmt *s);
int sq_ids(struct store_be *be, sqlite3_stmt *s, const char *what, int64_t **ids_out, size_t *n_out,
           struct err *err);
/* Steps s to its end, reading each row with read(s, row) into *rows_out, an
 * array of row_size-byte rows, each zeroed before it is read (owned, NULL
 * when none), and resets s. On failure err is filled and *rows_out holds the
 * rows read so far, for the caller's own free. */
int sq_rows(struct store_be *be, sqlite3_stmt *s, const char *what, size_t row_size,
            void (*read)(sqlite3_stmt *s, void *row), void **rows_out, size_t *n_out, struct err *err);
void sq_bind_text(sqlite3_stmt *s, int i, const char *v);
void sq_bind_i64(sqlite3_stmt *s, int i, int64_t v);
char *sq_col_dup(sqlite3_stmt *s, int i);
char *sq_col_dup_empty(sqlite3_stmt *s, int i);
int sq_exec(struct store_be *be, sqlite3_stmt *s, const char *what, struct err *err);
int sq_begin(struct store_be *be, struct err *err);
int sq_commit(struct store_be *be, struct err *err);
void sq_rollback(struct store_be *be);
int sq_scalar(struct store_be *be, sqlite3_stmt *s, const char *what, int64_t *out, struct err *err);
int sq_integrity_check(struct store_be *be, struct err *err);
/* The columns sq_job_row_read reads, of jobs j, pipelines p, repos r and
 * agents a; a query's own columns come after them, from SQ_JOB_NCOLS. */
#define SQ_JOB_LIST                                                                                          \
	"j.id, j.pipeline_id, j.name, j.target, j.state, j.attempt, j.max_attempts, j.exit_code, a.name,"    \
	" j.message, j.retry_of, j.spec, j.cancel_requested, j.lease_until_unix_ms, j.log_bytes,"            \
	" j.log_truncated, j.created_unix_ms, j.started_unix_ms, j.finished_unix_ms, r.name, r.url, p.ref,"  \
	" p.commit_sha, j.kind, j.labels, j.approve, j.approved_by, j.approved_unix_ms"
#define SQ_JOB_NCOLS 28
void sq_job_row_read(sqlite3_stmt *s, void *row); /* a struct job_row */
int sq_pipeline_by_delivery(struct store_be *be, const char *repo, const char *delivery, int64_t *id_out,
                            struct err *err);
int sq_pipeline_get(struct store_be *be, int64_t id, struct pipeline_row *out, struct err *err);
int sq_pipeline_list(struct store_be *be, const char *repo, int limit, struct pipeline_row **out,
                     size_t *n_out, struct err *err);
int sq_pipeline_jobs(struct store_be *be, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                     struct err *err);
int sq_job_get(struct store_be *be, int64_t id, struct job_row *out, struct err *err);
int sq_job_state(struct store_be *be, int64_t id, struct job_state_row *out, struct err *err);
int sq_job_check_attempt(struct store_be *be, int64_t id, int attempt, struct job_state_row *out,
                         struct err *err);
int sq_job_heartbeat(struct store_be *be, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                     int *cancel_out, struct err *err);
int sq_job_owner_check(struct store_be *be, int64_t job_id, int64_t agent_id, struct err *err);
int sq_job_page(struct store_be *be, const struct job_filter *f, int limit, struct job_row **out,
                size_t *n_out, struct err *err);
int sq_board_deploys(struct store_be *be, const char *board, int limit, struct board_deploy_row **out,
                     size_t *n_out, struct err *err);
int sq_pipeline_page(struct store_be *be, const struct pipeline_filter *f, int limit,
                     struct pipeline_row **out, size_t *n_out, struct err *err);
int sq_pipeline_latest_refs(struct store_be *be, int limit, struct pipeline_row **out, size_t *n_out,
                            struct err *err);
int sq_pipeline_latest_ref(struct store_be *be, const char *repo, const char *ref, struct pipeline_row *out,
                           struct err *err);
int sq_job_steps(struct store_be *be, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err);
int sq_log_times(struct store_be *be, int64_t job_id, int64_t from_off, int64_t to_off,
                 struct logframe_time **out, size_t *n_out, struct err *err);
int sq_log_append(struct store_be *be, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                  const struct logframe *meta, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                  struct err *err);
int sq_log_read(struct store_be *be, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                int64_t *next_out, struct err *err);
int sq_ret_jobs(struct store_be *be, enum sq_stmt_id id, int64_t before_ms, int limit, int64_t *ids,
                int *attempts, int64_t *bytes, int *n_out, struct err *err);
int sq_log_expire(struct store_be *be, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                  int *n_out, struct err *err);
int sq_artifact_add(struct store_be *be, int64_t job_id, int attempt, const char *name,
                    const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err);
int sq_artifact_list(struct store_be *be, int64_t job_id, struct artifact_row **out, size_t *n_out,
                     struct err *err);
int sq_artifact_get(struct store_be *be, int64_t job_id, const char *name, struct artifact_row *out,
                    struct err *err);
int sq_artifact_expire(struct store_be *be, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                       struct err *err);
int sq_blob_collect(struct store_be *be, int limit, struct strv *shas_out, struct err *err);
int sq_blob_exists(struct store_be *be, const char *sha256_hex, int *exists_out, struct err *err);
int sq_token_set(struct store_be *be, const char *kind, const char *sha256_hex, struct err *err);
int sq_token_get(struct store_be *be, const char *kind, char out_hex[65], struct err *err);
int sq_agent_by_token(struct store_be *be, const char *token_sha256_hex, int64_t *id_out, struct err *err);
int sq_agent_labels(struct store_be *be, int64_t id, char **labels_out, struct err *err);
int sq_agent_touch(struct store_be *be, int64_t id, int64_t now_ms, struct err *err);
int sq_agent_list(struct store_be *be, struct agent_row **out, size_t *n_out, struct err *err);
int sq_stats(struct store_be *be, struct store_stats *out, struct err *err);
int sq_repo_upsert(struct store_be *be, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                   struct err *err);
int sq_repo_list(struct store_be *be, struct repo_row **out, size_t *n_out, struct err *err);
int sq_repo_configure(struct store_be *be, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                      struct err *err);
int sq_repo_cfg_get(struct store_be *be, const char *name, struct repo_cfg *out, struct err *err);
int sq_repo_cfg_list(struct store_be *be, struct repo_cfg **out, size_t *n_out, struct err *err);
/* sqlite_schedules.c */
int sq_schedule_add(struct store_be *be, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err);
int sq_schedule_list(struct store_be *be, const char *repo, struct schedule_row **out, size_t *n_out,
                     struct err *err);
int sq_schedule_delete(struct store_be *be, const char *repo, const char *name, struct err *err);
int sq_schedule_claim(struct store_be *be, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                      int *claimed_out, struct err *err);
int sq_secret_set(struct store_be *be, const char *repo, const char *name, const char *value,
                  int pull_requests, int64_t now_ms, struct err *err);
int sq_secret_delete(struct store_be *be, const char *repo, const char *name, struct err *err);
int sq_secret_list(struct store_be *be, const char *repo, int pull_requests_only, struct strv *names,
                   struct strv *values, struct err *err);
int sq_poll_heads(struct store_be *be, int64_t repo_id, struct strv *refs, struct strv *shas,
                  struct err *err);
int sq_poll_head_set(struct store_be *be, int64_t repo_id, const char *ref, const char *sha, struct err *err);
int sq_status_due(struct store_be *be, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                  struct err *err);
int sq_status_sent(struct store_be *be, int64_t id, struct err *err);
int sq_status_retry(struct store_be *be, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                    int gave_up, struct err *err);
int sq_status_pending(struct store_be *be, int64_t *n_out, struct err *err);
int sq_status_prune(struct store_be *be, int64_t before_ms, int limit, int *n_out, struct err *err);
int sq_board_add(struct store_be *be, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                 struct err *err);
int sq_board_delete(struct store_be *be, const char *name, struct err *err);
int sq_board_list(struct store_be *be, const char *group, int with_keys, struct board_row **out,
                  size_t *n_out, struct err *err);
int sq_deploy_plan_get(struct store_be *be, int64_t pipeline_id, const char *group, char **spec_out,
                       char **labels_out, struct err *err);
int sq_deploy_last(struct store_be *be, const char *group, int64_t *job_id_out, struct err *err);
int sq_deploy_report(struct store_be *be, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                     struct err *err);
int sq_deploy_boards(struct store_be *be, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                     struct err *err);
int sq_board_previous_release(struct store_be *be, const char *board, const char *current, char **out,
                              struct err *err);
int sq_deployment_list(struct store_be *be, const char *group, int limit, struct deployment_row **out,
                       size_t *n_out, struct err *err);
int sq_release_pattern_set(struct store_be *be, const char *repo, const char *pattern, struct err *err);
int sq_release_pattern_get(struct store_be *be, const char *repo, char **out, struct err *err);
int sq_release_key_add(struct store_be *be, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                       struct err *err);
int sq_release_key_list(struct store_be *be, struct release_key_row **out, size_t *n_out, struct err *err);
int sq_release_unsigned(struct store_be *be, int64_t **ids_out, size_t *n_out, struct err *err);
int sq_release_files(struct store_be *be, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                     struct err *err);
int sq_release_sign(struct store_be *be, int64_t id, const char *manifest, const char *signature,
                    const char *keynum_hex, struct err *err);
int sq_release_get(struct store_be *be, int64_t id, const char *repo, const char *version,
                   struct release_row *out, struct err *err);
int sq_release_list(struct store_be *be, const char *repo, int limit, struct release_row **out, size_t *n_out,
                    struct err *err);
int sq_release_boards(struct store_be *be, int64_t repo_id, const char *version,
                      struct release_board_row **out, size_t *n_out, struct err *err);
int sq_session_add(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                   int64_t expires_ms, struct err *err);
int sq_session_check(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                     struct err *err);
int sq_session_delete(struct store_be *be, const char *id_sha256, struct err *err);
int sq_session_delete_all(struct store_be *be, int *n_out, struct err *err);
int sq_session_expire(struct store_be *be, int64_t now_ms, int limit, int *n_out, struct err *err);

/* ---- transaction primitives ---- */
int sq_tx_begin(struct store_be *be, struct store_tx **out, struct err *err);
int sq_tx_commit(struct store_tx *tx, struct err *err);
void sq_tx_rollback(struct store_tx *tx);
int sq_tx_notify(struct store_tx *tx, const char *topic, struct err *err);
int sq_tx_job_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
int sq_tx_job_claim_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
int sq_tx_job_write(struct store_tx *tx, const struct job_state_row *r, struct err *err);
int sq_tx_job_insert(struct store_tx *tx, const struct job_insert *in, int64_t now_ms, int64_t *id_out,
                     struct err *err);
int sq_tx_job_get(struct store_tx *tx, int64_t id, struct job_row *out, struct err *err);
int sq_tx_jobs_claimable(struct store_tx *tx, int limit, struct job_claimable **out, size_t *n_out,
                         struct err *err);
int sq_tx_job_need_insert(struct store_tx *tx, int64_t job_id, const char *name, const char *target,
                          struct err *err);
int sq_tx_job_needs(struct store_tx *tx, int64_t job_id, struct strv *names, struct strv *targets,
                    struct err *err);
int sq_tx_pipeline_current_jobs(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                struct err *err);
int sq_tx_pipelines_superseded(struct store_tx *tx, int64_t repo_id, const char *ref, int64_t before_id,
                               int64_t **ids_out, size_t *n_out, struct err *err);
int sq_tx_job_approve(struct store_tx *tx, int64_t id, const char *by, int64_t now_ms, struct err *err);
int sq_tx_jobs_needing(struct store_tx *tx, int64_t job_id, int64_t **ids_out, size_t *n_out,
                       struct err *err);
int sq_tx_pipeline_set_message(struct store_tx *tx, int64_t pipeline_id, const char *message,
                               struct err *err);
int sq_job_inputs(struct store_be *be, int64_t job_id, struct job_input **out, size_t *n_out,
                  struct err *err);
int sq_tx_jobs_expired(struct store_tx *tx, int64_t now_ms, int64_t **ids_out, size_t *n_out,
                       struct err *err);
int sq_tx_jobs_of_agent(struct store_tx *tx, int64_t agent_id, int64_t **ids_out, size_t *n_out,
                        struct err *err);
int sq_tx_log_mark(struct store_tx *tx, int64_t job_id, int attempt, const char *text, struct err *err);
int sq_tx_pipeline_insert(struct store_tx *tx, const struct pipeline_new *p, enum job_state state,
                          int64_t now_ms, int64_t finished_ms, int64_t *id_out, struct err *err);
int sq_tx_pipeline_by_delivery(struct store_tx *tx, int64_t repo_id, const char *delivery, int64_t *id_out,
                               struct err *err);
int sq_tx_pipeline_facts(struct store_tx *tx, int64_t pipeline_id, struct pipeline_facts *out,
                         struct err *err);
int sq_tx_deploy_plan_insert(struct store_tx *tx, int64_t pipeline_id, const struct deploy_plan_new *d,
                             struct err *err);
int sq_tx_pipeline_states(struct store_tx *tx, int64_t pipeline_id, enum job_state **out, size_t *n_out,
                          struct err *err);
int sq_tx_pipeline_set_state(struct store_tx *tx, int64_t pipeline_id, enum job_state state,
                             int64_t finished_ms, struct err *err);
int sq_tx_jobs_unsucceeded(struct store_tx *tx, int64_t pipeline_id, const char *kind, const char *name,
                           int64_t *n_out, struct err *err);
int sq_tx_deploys_active(struct store_tx *tx, const char *group, int64_t *n_out, struct err *err);
int sq_tx_deploy_plans_pending(struct store_tx *tx, int64_t pipeline_id, struct deploy_plan_row **out,
                               size_t *n_out, struct err *err);
int sq_tx_release_record(struct store_tx *tx, int64_t repo_id, const char *version, int64_t pipeline_id,
                         const char *commit_sha, int64_t now_ms, struct err *err);
int sq_tx_release_orphan_deploys(struct store_tx *tx, struct orphan_deploy_row **out, size_t *n_out,
                                 struct err *err);
int sq_tx_release_waiting_deploys(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                  struct err *err);
int sq_tx_status_queue(struct store_tx *tx, int64_t job_id, const char *state, const char *description,
                       int64_t now_ms, struct err *err);
int sq_tx_agent_upsert(struct store_tx *tx, const char *name, const char *labels_json,
                       const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, struct err *err);
int sq_tx_agent_remove(struct store_tx *tx, const char *name, int64_t now_ms, int64_t *id_out,
                       struct err *err);

#endif
