#ifndef ANVIL_PG_INT_H
#define ANVIL_PG_INT_H

/* The PostgreSQL backend's own header: shared by pg.c (connections,
 * migrations, transactions, watch) and the pg_*.c files of each aggregate.
 * Nothing outside server/store/pg*.c includes it; only these files include
 * <libpq-fe.h>.
 *
 * Every statement runs through pg_exec: parameters are bound (never
 * spliced into the text), integers and text go as text, log data as
 * binary. A failure fills err once, by SQLSTATE: class 23 (constraint) →
 * ERR_CONFLICT, 40001/40P01 (serialization, deadlock) and a lost connection
 * → ERR_UNAVAIL, anything else ERR_SYS. */

#include <stdint.h>

#include "server/store/pqbind.h"

#include "server/store/store_be.h"

/* A transaction: one pooled connection from tx_begin to tx_commit or
 * tx_rollback. Whole operations use one too (pg_tx_begin). */
struct store_tx {
	struct pg_be *be;
	PGconn *conn;
	/* pg_notify's notifications, sent with the COMMIT */
	struct buf notify_sql;
	size_t n_notify;
	char notified[4][64]; /* the first topics, not to send one twice */
};

/* Transactions (the store_ops tx_* members; whole operations use them
 * too). A connection that broke is closed when its transaction ends and a
 * new one opened on the next use. */
int pg_tx_begin(struct store_be *be, struct store_tx **out, struct err *err);
/* Tells the other server processes of topic ("jobs", "log:ID") when tx
 * commits (store_be.h watch). */
int pg_notify(struct store_tx *tx, const char *topic, struct err *err);
int pg_tx_commit(struct store_tx *tx, struct err *err);
void pg_tx_rollback(struct store_tx *tx);

/* ---- statement parameters ---- */

#define PG_ARGS_MAX 32

struct pg_args {
	int n;
	const char *v[PG_ARGS_MAX];
	int len[PG_ARGS_MAX];
	int fmt[PG_ARGS_MAX]; /* 0 text, 1 binary */
	char num[PG_ARGS_MAX][24];
};

/* s NULL binds SQL NULL; s is borrowed until pg_exec returns. */
void pg_arg_text(struct pg_args *a, const char *s);
void pg_arg_i64(struct pg_args *a, int64_t v);
/* 0 binds NULL (the store's "0 stands for NULL"). */
void pg_arg_i64_null0(struct pg_args *a, int64_t v);
void pg_arg_bin(struct pg_args *a, const void *data, size_t len);

/* ---- running statements ---- */

/* Runs sql with args (NULL: none) on conn; results in text, or binary when
 * binary is 1. NULL on failure, err filled ("what: message"). The result
 * is the caller's (PQclear). */
PGresult *pg_exec(PGconn *conn, const char *what, const char *sql, const struct pg_args *args, int binary,
                  struct err *err);
/* A statement without rows: *changed_out (may be NULL) = rows it changed. */
int pg_cmd(PGconn *conn, const char *what, const char *sql, const struct pg_args *args, int64_t *changed_out,
           struct err *err);
/* One bigint in one row; ERR_NOTFOUND "what: not found" when no row. */
int pg_scalar(PGconn *conn, const char *what, const char *sql, const struct pg_args *args, int64_t *out,
              struct err *err);
/* The first column of every row, as bigints (*ids_out owned, NULL when
 * none). */
int pg_ids(PGconn *conn, const char *what, const char *sql, const struct pg_args *args, int64_t **ids_out,
           size_t *n_out, struct err *err);
/* Fills err from a failed result (res may be NULL: the connection's
 * message); returns -1. */
int pg_fail(PGconn *conn, const PGresult *res, const char *what, struct err *err);

/* The same, each on a connection of its own taken from be's pool for the
 * one statement (a statement outside BEGIN is its own transaction). */
PGresult *pg_be_exec(struct store_be *be, const char *what, const char *sql, const struct pg_args *args,
                     struct err *err);
/* pg_be_exec with results in binary (pg_bin_i64, bytea as is). */
PGresult *pg_be_exec_binary(struct store_be *be, const char *what, const char *sql,
                            const struct pg_args *args, struct err *err);
int pg_be_cmd(struct store_be *be, const char *what, const char *sql, const struct pg_args *args,
              int64_t *changed_out, struct err *err);
int pg_be_scalar(struct store_be *be, const char *what, const char *sql, const struct pg_args *args,
                 int64_t *out, struct err *err);
int pg_be_ids(struct store_be *be, const char *what, const char *sql, const struct pg_args *args,
              int64_t **ids_out, size_t *n_out, struct err *err);

/* ---- column readers (text results) ---- */

int pg_null(const PGresult *r, int row, int col);
int64_t pg_i64(const PGresult *r, int row, int col); /* NULL → 0 */
int pg_int(const PGresult *r, int row, int col);     /* NULL → 0 */
char *pg_dup(const PGresult *r, int row, int col);   /* NULL → NULL; owned */
char *pg_dup0(const PGresult *r, int row, int col);  /* NULL → ""; owned */
/* Binary results (pg_exec with binary 1): an int8 column. */
int64_t pg_bin_i64(const PGresult *r, int row, int col);

/* ---- row readers shared by the aggregates ---- */

/* SELECT PG_JOB_COLS WHERE ...: the whole job row as store_job_get answers. */
#define PG_JOB_LIST                                                                                          \
	" j.id, j.pipeline_id, j.name, j.target, j.state, j.attempt, j.max_attempts, j.exit_code, a.name,"   \
	" j.message, j.retry_of, j.spec, j.cancel_requested, j.lease_until_unix_ms, j.log_bytes,"            \
	" j.log_truncated, j.created_unix_ms, j.started_unix_ms, j.finished_unix_ms, r.name, r.url, p.ref,"  \
	" p.commit_sha, j.kind, j.labels, j.approve, j.approved_by, j.approved_unix_ms"
#define PG_JOB_NCOLS 28 /* the columns of PG_JOB_LIST: a query's own columns come after them */
#define PG_JOB_FROM                                                                                          \
	" FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id JOIN repos r ON r.id = p.repo_id"             \
	" LEFT JOIN agents a ON a.id = j.agent_id "
#define PG_JOB_COLS PG_JOB_LIST PG_JOB_FROM
void pg_job_row_read(const PGresult *r, int row, struct job_row *out);

#define PG_PIPE_COLS                                                                                         \
	" p.id, p.repo_id, r.name, p.ref, p.commit_sha, p.event, p.delivery, p.state, p.message,"            \
	" p.commit_message, p.author, p.created_unix_ms, p.finished_unix_ms, p.variables FROM pipelines p"   \
	" JOIN repos r ON r.id = p.repo_id "
void pg_pipeline_row_read(const PGresult *r, int row, struct pipeline_row *out);

/* The job's state columns, locked FOR UPDATE until the transaction ends;
 * ERR_CONFLICT unless it is running at attempt. */
int pg_job_check_attempt(struct store_tx *tx, int64_t job_id, int attempt, struct job_state_row *out,
                         struct err *err);

/* Stores a log chunk of len bytes at off (deflated when that saves space);
 * *inserted_out 0 when (job, attempt, seq) was stored already. */
int pg_log_put(struct store_tx *tx, int64_t job_id, int attempt, int64_t seq, int64_t off, const void *data,
               size_t len, int *inserted_out, struct err *err);

/* ---- the operations, one file per aggregate (store_pg_ops in pg.c) ---- */

/* pg_jobs.c: the job and pipeline primitives jobstate builds on, and the
 * pipeline and job reads. */
int pg_tx_job_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
int pg_tx_job_claim_lock(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
int pg_tx_job_write(struct store_tx *tx, const struct job_state_row *r, struct err *err);
int pg_tx_job_insert(struct store_tx *tx, const struct job_insert *in, int64_t now_ms, int64_t *id_out,
                     struct err *err);
int pg_tx_job_get(struct store_tx *tx, int64_t id, struct job_row *out, struct err *err);
int pg_tx_jobs_claimable(struct store_tx *tx, int limit, struct job_claimable **out, size_t *n_out,
                         struct err *err);
int pg_tx_job_need_insert(struct store_tx *tx, int64_t job_id, const char *name, const char *target,
                          struct err *err);
int pg_tx_job_needs(struct store_tx *tx, int64_t job_id, struct strv *names, struct strv *targets,
                    struct err *err);
int pg_tx_pipeline_current_jobs(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                struct err *err);
int pg_tx_pipelines_superseded(struct store_tx *tx, int64_t repo_id, const char *ref, int64_t before_id,
                               int64_t **ids_out, size_t *n_out, struct err *err);
int pg_tx_job_approve(struct store_tx *tx, int64_t id, const char *by, int64_t now_ms, struct err *err);
int pg_tx_jobs_needing(struct store_tx *tx, int64_t job_id, int64_t **ids_out, size_t *n_out,
                       struct err *err);
int pg_tx_pipeline_set_message(struct store_tx *tx, int64_t pipeline_id, const char *message,
                               struct err *err);
int pg_job_inputs(struct store_be *be, int64_t job_id, struct job_input **out, size_t *n_out,
                  struct err *err);
int pg_tx_jobs_expired(struct store_tx *tx, int64_t now_ms, int64_t **ids_out, size_t *n_out,
                       struct err *err);
int pg_tx_jobs_of_agent(struct store_tx *tx, int64_t agent_id, int64_t **ids_out, size_t *n_out,
                        struct err *err);
int pg_tx_pipeline_insert(struct store_tx *tx, const struct pipeline_new *p, enum job_state state,
                          int64_t now_ms, int64_t finished_ms, int64_t *id_out, struct err *err);
int pg_tx_pipeline_by_delivery(struct store_tx *tx, int64_t repo_id, const char *delivery, int64_t *id_out,
                               struct err *err);
int pg_tx_pipeline_facts(struct store_tx *tx, int64_t pipeline_id, struct pipeline_facts *out,
                         struct err *err);
int pg_tx_pipeline_states(struct store_tx *tx, int64_t pipeline_id, enum job_state **out, size_t *n_out,
                          struct err *err);
int pg_tx_pipeline_set_state(struct store_tx *tx, int64_t pipeline_id, enum job_state state,
                             int64_t finished_ms, struct err *err);
int pg_tx_jobs_unsucceeded(struct store_tx *tx, int64_t pipeline_id, const char *kind, const char *name,
                           int64_t *n_out, struct err *err);
int pg_repo_upsert(struct store_be *be, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                   struct err *err);
int pg_repo_list(struct store_be *be, struct repo_row **out, size_t *n_out, struct err *err);
int pg_pipeline_by_delivery(struct store_be *be, const char *repo, const char *delivery, int64_t *id_out,
                            struct err *err);
int pg_pipeline_get(struct store_be *be, int64_t id, struct pipeline_row *out, struct err *err);
int pg_pipeline_list(struct store_be *be, const char *repo, int limit, struct pipeline_row **out,
                     size_t *n_out, struct err *err);
int pg_pipeline_jobs(struct store_be *be, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                     struct err *err);
int pg_job_get(struct store_be *be, int64_t id, struct job_row *out, struct err *err);
int pg_job_heartbeat(struct store_be *be, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                     int *cancel_out, struct err *err);
int pg_job_page(struct store_be *be, const struct job_filter *f, int limit, struct job_row **out,
                size_t *n_out, struct err *err);
int pg_board_deploys(struct store_be *be, const char *board, int limit, struct board_deploy_row **out,
                     size_t *n_out, struct err *err);
int pg_pipeline_page(struct store_be *be, const struct pipeline_filter *f, int limit,
                     struct pipeline_row **out, size_t *n_out, struct err *err);
int pg_pipeline_latest_refs(struct store_be *be, int limit, struct pipeline_row **out, size_t *n_out,
                            struct err *err);
int pg_pipeline_latest_ref(struct store_be *be, const char *repo, const char *ref, struct pipeline_row *out,
                           struct err *err);

/* pg_logs.c */
int pg_tx_log_mark(struct store_tx *tx, int64_t job_id, int attempt, const char *text, struct err *err);
int pg_job_steps(struct store_be *be, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err);
int pg_log_times(struct store_be *be, int64_t job_id, int64_t from_off, int64_t to_off,
                 struct logframe_time **out, size_t *n_out, struct err *err);
int pg_log_append(struct store_be *be, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                  const struct logframe *meta, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                  struct err *err);
int pg_log_read(struct store_be *be, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                int64_t *next_out, struct err *err);
int pg_log_expire(struct store_be *be, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                  int *n_out, struct err *err);

/* pg_artifacts.c: artifacts, blobs, artifact retention */
int pg_artifact_add(struct store_be *be, int64_t job_id, int attempt, const char *name,
                    const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err);
int pg_artifact_list(struct store_be *be, int64_t job_id, struct artifact_row **out, size_t *n_out,
                     struct err *err);
int pg_artifact_get(struct store_be *be, int64_t job_id, const char *name, struct artifact_row *out,
                    struct err *err);
int pg_artifact_expire(struct store_be *be, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                       struct err *err);
int pg_blob_collect(struct store_be *be, int limit, struct strv *shas_out, struct err *err);
int pg_blob_exists(struct store_be *be, const char *sha256_hex, int *exists_out, struct err *err);

/* pg_forges.c: repository forge settings, secrets, poll heads, statuses */
int pg_tx_status_queue(struct store_tx *tx, int64_t job_id, const char *state, const char *description,
                       int64_t now_ms, struct err *err);
int pg_repo_configure(struct store_be *be, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                      struct err *err);
int pg_repo_cfg_get(struct store_be *be, const char *name, struct repo_cfg *out, struct err *err);
int pg_repo_cfg_list(struct store_be *be, struct repo_cfg **out, size_t *n_out, struct err *err);
/* pg_schedules.c */
int pg_schedule_add(struct store_be *be, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err);
int pg_schedule_list(struct store_be *be, const char *repo, struct schedule_row **out, size_t *n_out,
                     struct err *err);
int pg_schedule_delete(struct store_be *be, const char *repo, const char *name, struct err *err);
int pg_schedule_claim(struct store_be *be, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                      int *claimed_out, struct err *err);
int pg_secret_set(struct store_be *be, const char *repo, const char *name, const char *value,
                  int pull_requests, int64_t now_ms, struct err *err);
int pg_secret_delete(struct store_be *be, const char *repo, const char *name, struct err *err);
int pg_secret_list(struct store_be *be, const char *repo, int pull_requests_only, struct strv *names,
                   struct strv *values, struct err *err);
int pg_poll_heads(struct store_be *be, int64_t repo_id, struct strv *refs, struct strv *shas,
                  struct err *err);
int pg_poll_head_set(struct store_be *be, int64_t repo_id, const char *ref, const char *sha, struct err *err);
int pg_status_due(struct store_be *be, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                  struct err *err);
int pg_status_sent(struct store_be *be, int64_t id, struct err *err);
int pg_status_retry(struct store_be *be, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                    int gave_up, struct err *err);
int pg_status_pending(struct store_be *be, int64_t *n_out, struct err *err);
int pg_status_prune(struct store_be *be, int64_t before_ms, int limit, int *n_out, struct err *err);

/* pg_deploys.c: boards, deploy plans, deploy reports */
int pg_tx_deploy_plan_insert(struct store_tx *tx, int64_t pipeline_id, const struct deploy_plan_new *d,
                             struct err *err);
int pg_tx_deploys_active(struct store_tx *tx, const char *group, int64_t *n_out, struct err *err);
int pg_tx_deploy_plans_pending(struct store_tx *tx, int64_t pipeline_id, struct deploy_plan_row **out,
                               size_t *n_out, struct err *err);
int pg_board_add(struct store_be *be, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                 struct err *err);
int pg_board_delete(struct store_be *be, const char *name, struct err *err);
int pg_board_list(struct store_be *be, const char *group, int with_keys, struct board_row **out,
                  size_t *n_out, struct err *err);
int pg_deploy_plan_get(struct store_be *be, int64_t pipeline_id, const char *group, char **spec_out,
                       char **labels_out, struct err *err);
int pg_deploy_last(struct store_be *be, const char *group, int64_t *job_id_out, struct err *err);
int pg_deploy_report(struct store_be *be, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                     struct err *err);
int pg_board_previous_release(struct store_be *be, const char *board, const char *current, char **out,
                              struct err *err);
int pg_deploy_boards(struct store_be *be, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                     struct err *err);
int pg_deployment_list(struct store_be *be, const char *group, int limit, struct deployment_row **out,
                       size_t *n_out, struct err *err);

/* pg_releases.c */
int pg_tx_release_record(struct store_tx *tx, int64_t repo_id, const char *version, int64_t pipeline_id,
                         const char *commit_sha, int64_t now_ms, struct err *err);
int pg_tx_release_orphan_deploys(struct store_tx *tx, struct orphan_deploy_row **out, size_t *n_out,
                                 struct err *err);
int pg_tx_release_waiting_deploys(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out, size_t *n_out,
                                  struct err *err);
int pg_release_pattern_set(struct store_be *be, const char *repo, const char *pattern, struct err *err);
int pg_release_pattern_get(struct store_be *be, const char *repo, char **out, struct err *err);
int pg_release_key_add(struct store_be *be, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                       struct err *err);
int pg_release_key_list(struct store_be *be, struct release_key_row **out, size_t *n_out, struct err *err);
int pg_release_unsigned(struct store_be *be, int64_t **ids_out, size_t *n_out, struct err *err);
int pg_release_files(struct store_be *be, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                     struct err *err);
int pg_release_sign(struct store_be *be, int64_t id, const char *manifest, const char *signature,
                    const char *keynum_hex, struct err *err);
int pg_release_get(struct store_be *be, int64_t id, const char *repo, const char *version,
                   struct release_row *out, struct err *err);
int pg_release_list(struct store_be *be, const char *repo, int limit, struct release_row **out, size_t *n_out,
                    struct err *err);
int pg_release_boards(struct store_be *be, int64_t repo_id, const char *version,
                      struct release_board_row **out, size_t *n_out, struct err *err);

/* pg_agents.c: agents, tokens, stats */
int pg_tx_agent_upsert(struct store_tx *tx, const char *name, const char *labels_json,
                       const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, struct err *err);
int pg_tx_agent_remove(struct store_tx *tx, const char *name, int64_t now_ms, int64_t *id_out,
                       struct err *err);
int pg_token_set(struct store_be *be, const char *kind, const char *sha256_hex, struct err *err);
int pg_token_get(struct store_be *be, const char *kind, char out_hex[65], struct err *err);
int pg_agent_by_token(struct store_be *be, const char *token_sha256_hex, int64_t *id_out, struct err *err);
int pg_job_owner_check(struct store_be *be, int64_t job_id, int64_t agent_id, struct err *err);
int pg_agent_labels(struct store_be *be, int64_t id, char **labels_out, struct err *err);
int pg_agent_touch(struct store_be *be, int64_t id, int64_t now_ms, struct err *err);
int pg_agent_list(struct store_be *be, struct agent_row **out, size_t *n_out, struct err *err);
int pg_stats(struct store_be *be, struct store_stats *out, struct err *err);

/* pg_sessions.c */
int pg_session_add(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                   int64_t expires_ms, struct err *err);
int pg_session_check(struct store_be *be, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                     struct err *err);
int pg_session_delete(struct store_be *be, const char *id_sha256, struct err *err);
int pg_session_delete_all(struct store_be *be, int *n_out, struct err *err);
int pg_session_expire(struct store_be *be, int64_t now_ms, int limit, int *n_out, struct err *err);

#endif
