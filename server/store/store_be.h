#ifndef ANVIL_STORE_BE_H
#define ANVIL_STORE_BE_H

#include "common/xalloc.h"
#include "server/store/store.h"

/* The store's backends and the interface between them and the rest of the
 * server (the shape of git's ref_storage_be). server/store/store.c holds the
 * public store_* functions, each calling one member of struct store_ops;
 * server/sched/jobstate.c makes every job transition from the tx_*
 * primitives. Nothing else includes this header.
 *
 * Two kinds of members:
 * - whole operations (reads, and changes that are not job transitions):
 *   each has the contract written beside the public function of the same
 *   name in store.h and runs in one transaction of its own: same arguments,
 *   same errors;
 * - transaction primitives (tx_*): jobstate opens a transaction with
 *   tx_begin and makes each transition from them, so the state machine and
 *   its rules (deploy after the last build, release after a tag build,
 *   commit status queueing) are C in one file and the same on every
 *   backend. A primitive never commits; tx_commit or tx_rollback ends the
 *   transaction and frees tx, whatever happened (tx_commit frees it on
 *   failure too, after rolling back).
 *
 * A backend keeps its migrations numbered like the others
 * (STORE_SCHEMA_VERSION) and maps a constraint violation to ERR_CONFLICT, a
 * busy or serialization failure to ERR_UNAVAIL, a missing row to
 * ERR_NOTFOUND. Times are Unix milliseconds; 0 stands for NULL.
 *
 * Backends: SQLite (sqlite*.c: a file path, the embedded default; one
 * connection under a mutex) and PostgreSQL (pg*.c: a postgresql:// or
 * postgres:// URL; claims with FOR UPDATE SKIP LOCKED, wake-ups across
 * server processes with LISTEN/NOTIFY). */

struct store_be; /* a backend's state, cast by the backend; opaque here */
struct store_tx; /* an open transaction of a backend */

/* The public handle: which backend, and its state. */
struct store {
	const struct store_ops *ops;
	struct store_be *be;
};

/* The mutable columns of a job, as tx_job_lock reads them and tx_job_write
 * writes them back, plus what a transition needs to know of the job.
 * Strings owned (job_state_row_release). */
struct job_state_row {
	int64_t id, pipeline_id;
	char *kind; /* build, deploy */
	char *name; /* build, deploy, rollback, ... */
	enum job_state state;
	int attempt, max_attempts;
	int64_t agent_id;                                /* 0: none */
	int64_t lease_until_ms, started_ms, finished_ms; /* 0: NULL */
	int has_exit_code, exit_code;
	char *message;
	int cancel_requested;
	int64_t log_bytes; /* read only: tx_log_mark maintains it */
	int log_truncated; /* read only */
};
void job_state_row_release(struct job_state_row *r);

/* A queued job a claim may take: what the label match needs. */
struct job_claimable {
	int64_t id, pipeline_id;
	int64_t repo_id;              /* its pipeline's repository */
	char *kind, *target, *labels; /* labels: the job's required labels "k=v,k=v" */
	char *pool;                   /* its repository's agent pool "k=v,k=v" or "" */
	char *name, *message;         /* for the unrunnable-job scan */
	char *pipeline_message;       /* its pipeline's */
};
void job_claimables_free(struct job_claimable *rows, size_t n);

/* A new job row, queued. */
struct job_insert {
	int64_t pipeline_id;
	const char *name, *target, *kind, *labels, *spec;
	int max_attempts;
	int64_t retry_of; /* 0: none */
	int approve;      /* 1: waits for tx_job_approve before a claim may take it */
};

/* What the rules need to know of a job's pipeline. Strings owned
 * (pipeline_facts_release). */
struct pipeline_facts {
	int64_t repo_id;
	char *repo_name, *ref, *commit_sha;
	char *release_pattern; /* the repository's tag glob */
	int statuses;          /* 1: the repository sends commit statuses (a
	                          non-empty status token and a github, gitea or
	                          gitlab forge) */
};
void pipeline_facts_release(struct pipeline_facts *f);

/* An automatic deploy entry of a pipeline that has no deploy job yet. */
struct deploy_plan_row {
	char *group, *spec, *labels;
	int approve; /* the deploy job waits for an approval */
};
void deploy_plan_rows_free(struct deploy_plan_row *rows, size_t n);

/* A queued deploy job of a tag pipeline whose version another pipeline of
 * its repository recorded first. */
struct orphan_deploy_row {
	int64_t job_id, pipeline_id;
	char *version, *repo_name;
	int64_t release_pipeline_id; /* the pipeline that recorded the version */
};
void orphan_deploy_rows_free(struct orphan_deploy_row *rows, size_t n);

/* Offline copy (anvil-server --migrate-to, store_copy): every table, in an
 * order where the rows a row refers to come first. */
extern const char *const store_tables[];
extern const size_t store_tables_n;
/* 1 when table is one of store_tables (a dump or load names no other). */
int store_table_known(const char *table);

/* One column of a dumped row: integers as their decimal text, text as its
 * bytes, blobs (log chunk data) as theirs. */
struct store_value {
	const void *data;
	size_t len;
	int is_null, is_blob;
};
typedef int (*store_row_fn)(void *arg, const char *const *cols, const struct store_value *vals, size_t n,
                            struct err *err);

struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*free)(struct store_be *be);

	/* ---- transactions and their primitives (for server/sched/jobstate.c) ---- */
	int (*tx_begin)(struct store_be *be, struct store_tx **out, struct err *err);
	int (*tx_commit)(struct store_tx *tx, struct err *err);
	void (*tx_rollback)(struct store_tx *tx); /* NULL-safe */
	/* Tells every server process sharing the store that topic ("jobs")
	 * changed, once the transaction commits (PostgreSQL NOTIFY; a no-op
	 * for a one-process backend). */
	int (*tx_notify)(struct store_tx *tx, const char *topic, struct err *err);

	/* Reads, and locks until the transaction ends (PostgreSQL: FOR
	 * UPDATE), a job's mutable columns. ERR_NOTFOUND. */
	int (*tx_job_lock)(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
	/* A claim's lock on queued job id: as tx_job_lock, but ERR_CONFLICT at
	 * once when another transaction holds the row (PostgreSQL: FOR UPDATE
	 * SKIP LOCKED) or the job is no longer queued, so the claim moves on
	 * to its next candidate instead of waiting. */
	int (*tx_job_claim_lock)(struct store_tx *tx, int64_t id, struct job_state_row *out, struct err *err);
	/* Writes back state, attempt, agent_id, lease_until_ms, started_ms,
	 * finished_ms, exit code (NULL unless has_exit_code), message and
	 * cancel_requested of r->id. */
	int (*tx_job_write)(struct store_tx *tx, const struct job_state_row *r, struct err *err);
	/* Inserts a queued job created at now_ms. A second retry of one job
	 * (retry_of UNIQUE) is ERR_CONFLICT. */
	int (*tx_job_insert)(struct store_tx *tx, const struct job_insert *in, int64_t now_ms,
	                     int64_t *id_out, struct err *err);
	/* Records that job id (approve = 1) was approved by by at now_ms: from
	 * then on it may be claimed. */
	int (*tx_job_approve)(struct store_tx *tx, int64_t id, const char *by, int64_t now_ms,
	                      struct err *err);
	/* The whole job row as store_job_get answers it. */
	int (*tx_job_get)(struct store_tx *tx, int64_t id, struct job_row *out, struct err *err);
	/* Queued jobs in id order (at most limit) that may be claimed now: not
	 * a deploy job named "deploy" of a tag pipeline whose release (the
	 * repository's release of version = ref without "refs/tags/") was
	 * recorded by another pipeline or is not signed yet. Not locked: a
	 * claim takes the one it picks with tx_job_claim_lock. Nor a job waiting
	 * for a job (tx_job_need_insert) whose current incarnation has not
	 * succeeded. Nor a job waiting for an approval (approve = 1, not
	 * approved yet). */
	int (*tx_jobs_claimable)(struct store_tx *tx, int limit, struct job_claimable **out, size_t *n_out,
	                         struct err *err);
	/* Records that job_id waits for the current (not retried) job of its
	 * pipeline named name for target (needs:). */
	int (*tx_job_need_insert)(struct store_tx *tx, int64_t job_id, const char *name, const char *target,
	                          struct err *err);
	/* The (name, target) pairs job_id waits for, pushed onto names and
	 * targets in (name, target) order. */
	int (*tx_job_needs)(struct store_tx *tx, int64_t job_id, struct strv *names, struct strv *targets,
	                    struct err *err);
	/* Ids of the queued jobs of job_id's pipeline that wait for its name
	 * and target, in id order. */
	int (*tx_jobs_needing)(struct store_tx *tx, int64_t job_id, int64_t **ids_out, size_t *n_out,
	                       struct err *err);
	/* Ids of the push pipelines of repo_id and ref, older than before_id
	 * and still queued or running, in id order (auto_cancel). */
	int (*tx_pipelines_superseded)(struct store_tx *tx, int64_t repo_id, const char *ref,
	                               int64_t before_id, int64_t **ids_out, size_t *n_out, struct err *err);
	/* Ids of the pipeline's current (not retried) jobs, in id order. */
	int (*tx_pipeline_current_jobs)(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out,
	                                size_t *n_out, struct err *err);
	/* Ids of running jobs whose lease ended before now_ms, in id order. */
	int (*tx_jobs_expired)(struct store_tx *tx, int64_t now_ms, int64_t **ids_out, size_t *n_out,
	                       struct err *err);
	/* Ids of the running jobs an agent holds, in id order. */
	int (*tx_jobs_of_agent)(struct store_tx *tx, int64_t agent_id, int64_t **ids_out, size_t *n_out,
	                        struct err *err);
	/* Appends text to the job's log at its end (offset log_bytes) as the
	 * chunk (attempt, seq -1), adding its length to log_bytes; a second
	 * mark of the same attempt is ignored. */
	int (*tx_log_mark)(struct store_tx *tx, int64_t job_id, int attempt, const char *text,
	                   struct err *err);

	/* Pipelines. Inserts p (without its plans: tx_deploy_plan_insert)
	 * in state, with p->error_message or "" as its message. */
	int (*tx_pipeline_insert)(struct store_tx *tx, const struct pipeline_new *p, enum job_state state,
	                          int64_t now_ms, int64_t finished_ms, int64_t *id_out, struct err *err);
	/* The earlier pipeline of (repo_id, delivery); ERR_NOTFOUND. */
	int (*tx_pipeline_by_delivery)(struct store_tx *tx, int64_t repo_id, const char *delivery,
	                               int64_t *id_out, struct err *err);
	/* ERR_NOTFOUND when the pipeline does not exist. */
	int (*tx_pipeline_facts)(struct store_tx *tx, int64_t pipeline_id, struct pipeline_facts *out,
	                         struct err *err);
	int (*tx_deploy_plan_insert)(struct store_tx *tx, int64_t pipeline_id,
	                             const struct deploy_plan_new *d, struct err *err);
	/* States of the pipeline's current jobs (those not retried). *out owned. */
	int (*tx_pipeline_states)(struct store_tx *tx, int64_t pipeline_id, enum job_state **out,
	                          size_t *n_out, struct err *err);
	int (*tx_pipeline_set_state)(struct store_tx *tx, int64_t pipeline_id, enum job_state state,
	                             int64_t finished_ms, struct err *err);
	int (*tx_pipeline_set_message)(struct store_tx *tx, int64_t pipeline_id, const char *message,
	                               struct err *err);
	/* How many current (not retried) jobs of the pipeline are not success,
	 * among those of kind (when non-NULL) and named name (when non-NULL). */
	int (*tx_jobs_unsucceeded)(struct store_tx *tx, int64_t pipeline_id, const char *kind,
	                           const char *name, int64_t *n_out, struct err *err);
	/* Queued or running deploy jobs of group, in any pipeline. */
	int (*tx_deploys_active)(struct store_tx *tx, const char *group, int64_t *n_out, struct err *err);
	/* The pipeline's automatic deploy entries without a deploy job of
	 * their group in the pipeline, by group. */
	int (*tx_deploy_plans_pending)(struct store_tx *tx, int64_t pipeline_id, struct deploy_plan_row **out,
	                               size_t *n_out, struct err *err);
	/* Records (repo_id, version) as a release of the pipeline unless that
	 * version is recorded already (then nothing changes). */
	int (*tx_release_record)(struct store_tx *tx, int64_t repo_id, const char *version,
	                         int64_t pipeline_id, const char *commit_sha, int64_t now_ms,
	                         struct err *err);
	/* At most 64 orphaned release deploys, in job id order. */
	int (*tx_release_orphan_deploys)(struct store_tx *tx, struct orphan_deploy_row **out, size_t *n_out,
	                                 struct err *err);
	/* Queued deploy jobs named "deploy" of the pipeline, in id order. */
	int (*tx_release_waiting_deploys)(struct store_tx *tx, int64_t pipeline_id, int64_t **ids_out,
	                                  size_t *n_out, struct err *err);
	/* Queues a commit status (state: pending, success, failure, error) for
	 * the job, due at now_ms. */
	int (*tx_status_queue)(struct store_tx *tx, int64_t job_id, const char *state,
	                       const char *description, int64_t now_ms, struct err *err);

	/* Agents. Inserts or updates (labels, last seen, token; no longer
	 * removed) the agent named name. */
	int (*tx_agent_upsert)(struct store_tx *tx, const char *name, const char *labels_json,
	                       const char *token_sha256_hex, int64_t now_ms, int64_t *id_out,
	                       struct err *err);
	/* Revokes its token and marks it removed; ERR_NOTFOUND "no agent named". */
	int (*tx_agent_remove)(struct store_tx *tx, const char *name, int64_t now_ms, int64_t *id_out,
	                       struct err *err);

	/* Wake-ups from other server processes: fn(arg, topic) is called (from
	 * a backend thread) for each tx_notify another process committed, and
	 * "log:ID" for each log chunk it stored (log_append); "jobs" once after
	 * a lost connection. NULL for a one-process backend. */
	int (*watch)(struct store_be *be, void (*fn)(void *arg, const char *topic), void *arg,
	             struct err *err);

	/* ---- offline copy (store_copy) ---- */
	/* Calls fn for every row of table (one of store_tables), in no
	 * particular order; stops at fn's first error. */
	int (*dump)(struct store_be *be, const char *table, store_row_fn fn, void *arg, struct err *err);
	/* Opens one transaction for load_row; ERR_CONFLICT when any table
	 * already holds a row (a copy goes into an empty, migrated store). */
	int (*load_begin)(struct store_be *be, struct err *err);
	int (*load_row)(struct store_be *be, const char *table, const char *const *cols,
	                const struct store_value *vals, size_t n, struct err *err);
	/* commit 1: makes new ids follow the copied ones, commits; 0: rolls back. */
	int (*load_end)(struct store_be *be, int commit, struct err *err);

	/* ---- whole operations (store.h) ---- */
	int (*integrity_check)(struct store_be *be, struct err *err);
	int (*token_set)(struct store_be *be, const char *kind, const char *sha256_hex, struct err *err);
	int (*token_get)(struct store_be *be, const char *kind, char out_hex[65], struct err *err);
	int (*repo_upsert)(struct store_be *be, const char *name, const char *url, int64_t now_ms,
	                   int64_t *id_out, struct err *err);
	int (*repo_list)(struct store_be *be, struct repo_row **out, size_t *n_out, struct err *err);
	int (*pipeline_by_delivery)(struct store_be *be, const char *repo, const char *delivery,
	                            int64_t *id_out, struct err *err);
	int (*pipeline_get)(struct store_be *be, int64_t id, struct pipeline_row *out, struct err *err);
	int (*pipeline_list)(struct store_be *be, const char *repo, int limit, struct pipeline_row **out,
	                     size_t *n_out, struct err *err);
	int (*pipeline_jobs)(struct store_be *be, int64_t pipeline_id, struct job_row **out, size_t *n_out,
	                     struct err *err);
	int (*job_get)(struct store_be *be, int64_t id, struct job_row *out, struct err *err);
	int (*job_heartbeat)(struct store_be *be, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
	                     int *cancel_out, struct err *err);
	/* meta: a framed chunk's events (data is its log bytes), or NULL */
	int (*log_append)(struct store_be *be, int64_t job_id, int attempt, int64_t seq, const void *data,
	                  size_t len, const struct logframe *meta, int64_t cap_bytes, int *accepted_out,
	                  int *truncated_out, struct err *err);
	int (*job_steps)(struct store_be *be, int64_t job_id, struct step_row **out, size_t *n_out,
	                 struct err *err);
	int (*log_times)(struct store_be *be, int64_t job_id, int64_t from_off, int64_t to_off,
	                 struct logframe_time **out, size_t *n_out, struct err *err);
	int (*log_read)(struct store_be *be, int64_t job_id, int64_t offset, size_t max_bytes,
	                struct buf *out, int64_t *next_out, struct err *err);
	int (*artifact_add)(struct store_be *be, int64_t job_id, int attempt, const char *name,
	                    const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err);
	int (*artifact_list)(struct store_be *be, int64_t job_id, struct artifact_row **out, size_t *n_out,
	                     struct err *err);
	int (*artifact_get)(struct store_be *be, int64_t job_id, const char *name, struct artifact_row *out,
	                    struct err *err);
	int (*job_inputs)(struct store_be *be, int64_t job_id, struct job_input **out, size_t *n_out,
	                  struct err *err);
	int (*log_expire)(struct store_be *be, int64_t before_ms, const char *marker, int limit,
	                  int64_t now_ms, int *n_out, struct err *err);
	int (*artifact_expire)(struct store_be *be, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
	                       struct err *err);
	int (*blob_collect)(struct store_be *be, int limit, struct strv *shas_out, struct err *err);
	int (*blob_exists)(struct store_be *be, const char *sha256_hex, int *exists_out, struct err *err);
	int (*agent_by_token)(struct store_be *be, const char *token_sha256_hex, int64_t *id_out,
	                      struct err *err);
	int (*job_owner_check)(struct store_be *be, int64_t job_id, int64_t agent_id, struct err *err);
	int (*agent_labels)(struct store_be *be, int64_t id, char **labels_out, struct err *err);
	int (*agent_touch)(struct store_be *be, int64_t id, int64_t now_ms, struct err *err);
	int (*agent_list)(struct store_be *be, struct agent_row **out, size_t *n_out, struct err *err);
	int (*stats)(struct store_be *be, struct store_stats *out, struct err *err);
	int (*repo_configure)(struct store_be *be, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
	                      struct err *err);
	int (*repo_cfg_get)(struct store_be *be, const char *name, struct repo_cfg *out, struct err *err);
	int (*repo_cfg_list)(struct store_be *be, struct repo_cfg **out, size_t *n_out, struct err *err);
	int (*secret_set)(struct store_be *be, const char *repo, const char *name, const char *value,
	                  int pull_requests, int64_t now_ms, struct err *err);
	int (*secret_delete)(struct store_be *be, const char *repo, const char *name, struct err *err);
	int (*secret_list)(struct store_be *be, const char *repo, int pull_requests_only, struct strv *names,
	                   struct strv *values, struct err *err);
	int (*poll_heads)(struct store_be *be, int64_t repo_id, struct strv *refs, struct strv *shas,
	                  struct err *err);
	int (*poll_head_set)(struct store_be *be, int64_t repo_id, const char *ref, const char *sha,
	                     struct err *err);
	int (*status_due)(struct store_be *be, int64_t now_ms, int limit, struct status_row **out,
	                  size_t *n_out, struct err *err);
	int (*schedule_add)(struct store_be *be, const struct schedule_row *in, int64_t now_ms,
	                    int64_t *id_out, struct err *err);
	int (*schedule_list)(struct store_be *be, const char *repo, struct schedule_row **out, size_t *n_out,
	                     struct err *err);
	int (*schedule_delete)(struct store_be *be, const char *repo, const char *name, struct err *err);
	int (*schedule_claim)(struct store_be *be, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
	                      int *claimed_out, struct err *err);
	int (*status_sent)(struct store_be *be, int64_t id, struct err *err);
	int (*status_retry)(struct store_be *be, int64_t id, int attempts, int64_t next_ms,
	                    const char *last_error, int gave_up, struct err *err);
	int (*status_pending)(struct store_be *be, int64_t *n_out, struct err *err);
	int (*status_prune)(struct store_be *be, int64_t before_ms, int limit, int *n_out, struct err *err);
	int (*board_add)(struct store_be *be, const struct board_row *in, int64_t now_ms, int64_t *id_out,
	                 struct err *err);
	int (*board_delete)(struct store_be *be, const char *name, struct err *err);
	int (*board_list)(struct store_be *be, const char *group, int with_keys, struct board_row **out,
	                  size_t *n_out, struct err *err);
	int (*deploy_plan_get)(struct store_be *be, int64_t pipeline_id, const char *group, char **spec_out,
	                       char **labels_out, struct err *err);
	int (*deploy_last)(struct store_be *be, const char *group, int64_t *job_id_out, struct err *err);
	int (*deploy_report)(struct store_be *be, int64_t job_id, const struct deploy_board_row *r,
	                     int64_t now_ms, struct err *err);
	int (*board_previous_release)(struct store_be *be, const char *board, const char *current, char **out,
	                              struct err *err);
	int (*deploy_boards)(struct store_be *be, int64_t job_id, struct deploy_board_row **out,
	                     size_t *n_out, struct err *err);
	int (*deployment_list)(struct store_be *be, const char *group, int limit, struct deployment_row **out,
	                       size_t *n_out, struct err *err);
	int (*pipeline_page)(struct store_be *be, const struct pipeline_filter *f, int limit,
	                     struct pipeline_row **out, size_t *n_out, struct err *err);
	int (*job_page)(struct store_be *be, const struct job_filter *f, int limit, struct job_row **out,
	                size_t *n_out, struct err *err);
	int (*board_deploys)(struct store_be *be, const char *board, int limit, struct board_deploy_row **out,
	                     size_t *n_out, struct err *err);
	int (*pipeline_latest_refs)(struct store_be *be, int limit, struct pipeline_row **out, size_t *n_out,
	                            struct err *err);
	int (*pipeline_latest_ref)(struct store_be *be, const char *repo, const char *ref,
	                           struct pipeline_row *out, struct err *err);
	int (*release_pattern_set)(struct store_be *be, const char *repo, const char *pattern,
	                           struct err *err);
	int (*release_pattern_get)(struct store_be *be, const char *repo, char **out, struct err *err);
	int (*release_key_add)(struct store_be *be, const char *keynum_hex, const char *pubkey,
	                       int64_t now_ms, struct err *err);
	int (*release_key_list)(struct store_be *be, struct release_key_row **out, size_t *n_out,
	                        struct err *err);
	int (*release_unsigned)(struct store_be *be, int64_t **ids_out, size_t *n_out, struct err *err);
	int (*release_files)(struct store_be *be, int64_t pipeline_id, struct release_file_row **out,
	                     size_t *n_out, struct err *err);
	int (*release_sign)(struct store_be *be, int64_t id, const char *manifest, const char *signature,
	                    const char *keynum_hex, struct err *err);
	int (*release_get)(struct store_be *be, int64_t id, const char *repo, const char *version,
	                   struct release_row *out, struct err *err);
	int (*release_list)(struct store_be *be, const char *repo, int limit, struct release_row **out,
	                    size_t *n_out, struct err *err);
	int (*release_boards)(struct store_be *be, int64_t repo_id, const char *version,
	                      struct release_board_row **out, size_t *n_out, struct err *err);
	int (*session_add)(struct store_be *be, const char *id_sha256, const char *admin_sha256,
	                   int64_t now_ms, int64_t expires_ms, struct err *err);
	int (*session_check)(struct store_be *be, const char *id_sha256, const char *admin_sha256,
	                     int64_t now_ms, struct err *err);
	int (*session_delete)(struct store_be *be, const char *id_sha256, struct err *err);
	int (*session_delete_all)(struct store_be *be, int *n_out, struct err *err);
	int (*session_expire)(struct store_be *be, int64_t now_ms, int limit, int *n_out, struct err *err);
};

/* The schema version every backend migrates to. */
#define STORE_SCHEMA_VERSION 15

/* The backends' open functions: *out is the backend's state. fp: SQLite
 * only, tests only (store_open_failpoints). */
struct failpoints;
extern const struct store_ops store_sqlite_ops;
int store_sqlite_open(const char *path, struct failpoints *fp, struct store_be **out, struct err *err);
extern const struct store_ops store_pg_ops;
int store_pg_open(const char *url, struct store_be **out, struct err *err);

#endif
