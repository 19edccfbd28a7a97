#ifndef ANVIL_STORE_H
#define ANVIL_STORE_H

#include "common/logframe.h"
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"
#include "server/sched/jobstate.h"

/* The store: the only SQL, the only file that includes <sqlite3.h>. One
 * SQLite connection (WAL, foreign keys, busy timeout) guarded by a mutex, so
 * every function may be called from any request thread. Each state change is
 * one transaction. Rows returned through out-parameters belong to the caller
 * (release with the matching *_release). SQLITE_CONSTRAINT → ERR_CONFLICT. */

struct store;

/* path may be ":memory:". Creates or migrates the schema (user_version). */
int store_open(const char *path, struct store **out, struct err *err);
/* Tests only (common/failpoint.h): as store_open, the database's writes and
 * syncs going through the FAILPOINT_DBWRITE / FAILPOINT_DBSYNC sites of fp,
 * which must outlive the store. fp NULL is store_open. */
struct failpoints;
int store_open_failpoints(const char *path, struct failpoints *fp, struct store **out, struct err *err);
void store_free(struct store *st);
/* 1 when path is a postgresql:// or postgres:// URL rather than an SQLite file. */
int store_is_url(const char *path);
/* Changes other server processes sharing the store made: fn(arg, topic) is
 * called from a backend thread for each, topic "jobs" (job states, new
 * jobs) or "log:ID" (a chunk of job ID's log). A no-op (0) for a store only
 * one process uses (SQLite). */
int store_watch(struct store *st, void (*fn)(void *arg, const char *topic), void *arg, struct err *err);
/* The backend's name: "sqlite" or "postgresql". */
const char *store_backend_name(const struct store *st);

/* Offline copy (anvil-server --migrate-to): every row of from into to, which
 * must be migrated and empty, in one transaction of to; then every table is
 * read back from to and its row count and checksum (order-independent, over
 * each row's columns by name) compared with what was read from from. out has
 * store_table_count() entries, filled either way. */
struct store_copy_table {
	const char *table;
	int64_t rows;
	char sha256_hex[65];
};
size_t store_table_count(void);
int store_copy(struct store *from, struct store *to, struct store_copy_table *out, struct err *err);
int store_integrity_check(struct store *st, struct err *err);

/* Tokens: only their sha256 hex is kept. */
int store_token_set(struct store *st, const char *kind, const char *sha256_hex, struct err *err);
/* ERR_NOTFOUND when no token of that kind exists. */
int store_token_get(struct store *st, const char *kind, char out_hex[65], struct err *err);

struct repo_row {
	int64_t id;
	char *name;
	char *url;
};
void repo_row_release(struct repo_row *r);
void repo_rows_free(struct repo_row *rows, size_t n);
int store_repo_upsert(struct store *st, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                      struct err *err);
int store_repo_list(struct store *st, struct repo_row **out, size_t *n_out, struct err *err);

struct job_row {
	int64_t id;
	int64_t pipeline_id;
	char *name;
	char *target;
	enum job_state state;
	int attempt;
	int max_attempts;
	int has_exit_code;
	int exit_code;
	char *agent_name; /* NULL when never claimed */
	char *message;
	int64_t retry_of; /* 0 when none */
	char *spec;       /* JSON text of the job's run spec (steps, env, artifacts, ...) */
	int cancel_requested;
	int64_t lease_until_ms;
	int64_t log_bytes;
	int log_truncated;
	int64_t created_ms, started_ms, finished_ms; /* 0 = not yet */
	/* of its pipeline, filled by store_job_get/claim */
	char *repo_name, *repo_url, *ref, *commit_sha;
	char *kind;   /* "build" or "deploy" */
	char *labels; /* labels an agent must carry besides target=<target> of a build: "k=v,k=v" or "" */
	int approve;  /* 1: waits for an approval (approve: true) */
	char *approved_by;   /* who approved it; NULL while not approved */
	int64_t approved_ms; /* when; 0 while not approved */
};
void job_row_release(struct job_row *j);
void job_rows_free(struct job_row *rows, size_t n);

struct pipeline_row {
	int64_t id;
	int64_t repo_id;
	char *repo_name;
	char *ref;
	char *commit_sha;
	char *event;
	char *delivery; /* NULL when none */
	enum job_state state;
	char *message;        /* why it errored, else "" */
	char *commit_message; /* subject + body of the commit */
	char *author;
	int64_t created_ms, finished_ms;
	char *variables; /* a manual trigger's, JSON object {"KEY":"VALUE"}; "" for none */
};
void pipeline_row_release(struct pipeline_row *p);
void pipeline_rows_free(struct pipeline_row *rows, size_t n);

struct job_new {
	const char *name;
	const char *target;
	const char *spec;   /* JSON text */
	const char *labels; /* required agent labels "k=v,k=v"; NULL: none */
	int max_attempts;
	const size_t *needs; /* indexes into the jobs array of the jobs this one waits for */
	size_t n_needs;
	int approve; /* 1: not handed out before an approval (approve: true) */
};

/* A deploy entry of the pipeline file, kept with its pipeline: a deploy job
 * is made from it when every build job has succeeded (auto_deploy, by an SQL
 * trigger in the transaction of the last build's finish) or by hand. */
struct deploy_plan_new {
	const char *group;
	const char *spec;   /* JSON text: the deploy job's run spec */
	const char *labels; /* required agent labels "k=v,k=v" */
	int auto_deploy;    /* the entry's `on:` matched the pipeline's ref */
	int approve;        /* its automatic deploy job waits for an approval (approve: true) */
};

struct pipeline_new {
	int64_t repo_id;
	const char *ref;
	const char *commit_sha;
	const char *event;
	const char *delivery; /* may be NULL */
	const char *commit_message;
	const char *author;
	const char *error_message; /* non-NULL: the pipeline is created in state error with no jobs */
	const struct deploy_plan_new *plans; /* the pipeline file's deploy entries, n_plans (may be 0) */
	size_t n_plans;
	const char *variables; /* JSON object {"KEY":"VALUE"} (validated), or NULL */
	int auto_cancel;       /* 1: the older queued or running push pipelines of repo_id and ref
	                          are canceled when this one is created (auto_cancel: true) */
};

/* Looks a delivery up without creating anything; ERR_NOTFOUND when unknown.
 * Delivery ids are unique per repository (repo: its name). */
int store_pipeline_by_delivery(struct store *st, const char *repo, const char *delivery, int64_t *id_out,
                               struct err *err);
int store_pipeline_get(struct store *st, int64_t id, struct pipeline_row *out, struct err *err);
/* Newest first; repo may be NULL for all. */
int store_pipeline_list(struct store *st, const char *repo, int limit, struct pipeline_row **out,
                        size_t *n_out, struct err *err);
/* All jobs of a pipeline, in id order, including retried ones. */
int store_pipeline_jobs(struct store *st, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                        struct err *err);

int store_job_get(struct store *st, int64_t id, struct job_row *out, struct err *err);

/* Extends the lease; ERR_CONFLICT when the job is not running at that attempt. */
int store_job_heartbeat(struct store *st, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                        int *cancel_out, struct err *err);

/* Appends a log chunk at the job's current end. Ignored (accepted 0) when
 * (job, attempt, seq) is stored already. Past cap_bytes the chunk is cut,
 * one truncation marker stored and later chunks dropped (*truncated_out 1).
 * ERR_CONFLICT when the job is not running at that attempt. */
int store_log_append(struct store *st, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                     int64_t cap_bytes, int *accepted_out, int *truncated_out, struct err *err);
/* The same for a framed chunk (common/logframe.h): its log bytes as above
 * and, in the same transaction (so a resent chunk adds nothing), its step
 * events and time marks at their offsets in the job's log (an event past a
 * cut lands at the cut). A step start is kept once per (attempt, index); an
 * end closes a started step once. */
int store_log_append_frame(struct store *st, int64_t job_id, int attempt, int64_t seq,
                           const struct logframe *f, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                           struct err *err);

/* A step of a job's attempt, as the agent framed it. */
struct step_row {
	int attempt;
	int index;
	char *name;     /* owned */
	char *command;  /* owned */
	char state[12]; /* running, success, failed, timeout, canceled, error */
	int have_exit;
	int exit_code;
	int64_t started_unix_ms;
	int64_t finished_unix_ms; /* 0: not finished */
	int64_t start_off;        /* log offset of its first byte */
	int64_t end_off;          /* log offset after its last byte; -1: not finished */
	int64_t lines;            /* newlines in its log bytes (the agent's count); -1: unknown */
};
void step_rows_free(struct step_row *rows, size_t n);
/* Every attempt's steps of a job, by attempt then index. */
int store_job_steps(struct store *st, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err);
/* The time marks of a job's log from the last one at or before from_off up
 * to (not including) to_off, by offset (absolute offsets). */
int store_log_times(struct store *st, int64_t job_id, int64_t from_off, int64_t to_off,
                    struct logframe_time **out, size_t *n_out, struct err *err);
/* Log bytes from offset, at most max_bytes, appended to out; *next_out is
 * the offset after the last byte returned (== offset when none). */
int store_log_read(struct store *st, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                   int64_t *next_out, struct err *err);

struct artifact_row {
	char *name;
	char sha256[65];
	int64_t size;
	int mode; /* permission bits (0755, 0644); 0: stored before modes were kept */
};
void artifact_rows_free(struct artifact_row *rows, size_t n);
/* An artifact handed to a job by a job it needs (needs:). */
struct job_input {
	int64_t job_id; /* the needed job (its current, successful incarnation) */
	char *job_name; /* its name and target */
	char *job_target;
	struct artifact_row a;
};
void job_inputs_free(struct job_input *rows, size_t n);
/* The artifacts of the successful jobs job_id waits for, all of its own
 * pipeline, by job id then name: what its claim hands the agent, and the
 * only other jobs' artifacts that agent may download. */
int store_job_inputs(struct store *st, int64_t job_id, struct job_input **out, size_t *n_out,
                     struct err *err);
/* Records blob (once per sha256) and (job, name) → blob with its permission
 * bits (mode ≤ 0777; 0: unknown). ERR_CONFLICT when the job is not running
 * at that attempt. Re-uploading the same name replaces it. */
int store_artifact_add(struct store *st, int64_t job_id, int attempt, const char *name,
                       const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err);
int store_artifact_list(struct store *st, int64_t job_id, struct artifact_row **out, size_t *n_out,
                        struct err *err);
int store_artifact_get(struct store *st, int64_t job_id, const char *name, struct artifact_row *out,
                       struct err *err);

/* Retention (server/retention.c calls these a batch at a time). Each is one
 * transaction over at most limit finished jobs whose finish is before
 * before_ms and that were not expired yet; *n_out = jobs handled (< limit:
 * nothing left). Log: the job's chunks go, one chunk with marker (when it
 * had logged anything) takes their place at offset 0, log_bytes follows.
 * Artifacts: the job's artifact rows go (not of a pipeline with a release:
 * those are the release's files); blobs stay for store_blob_collect. */
int store_log_expire(struct store *st, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                     int *n_out, struct err *err);
int store_artifact_expire(struct store *st, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                          struct err *err);
/* Deletes up to limit blob rows no artifact references, in one transaction,
 * and pushes their sha256 onto shas_out: the caller removes the files after
 * (a crash in between leaves files without a row, swept at start). */
int store_blob_collect(struct store *st, int limit, struct strv *shas_out, struct err *err);
int store_blob_exists(struct store *st, const char *sha256_hex, int *exists_out, struct err *err);

struct agent_row {
	int64_t id;
	char *name;
	char *labels; /* JSON array text */
	int64_t last_seen_ms;
	int64_t job_id;   /* its lowest running job, 0 when idle */
	int64_t *job_ids; /* owned; all its running jobs (anvil-agent --jobs N), ascending */
	size_t n_jobs;
};
void agent_rows_free(struct agent_row *rows, size_t n);
/* Fills r->job_ids, n_jobs and job_id from "id,id,..." (NULL or "": idle),
 * as the backends' agent list queries give them. */
void agent_row_set_jobs(struct agent_row *r, const char *csv);
/* The agent holding the token whose sha256 is given; ERR_AUTH when none
 * (unknown, revoked or removed). */
int store_agent_by_token(struct store *st, const char *token_sha256_hex, int64_t *id_out, struct err *err);
/* 0 when the job's current attempt was claimed by agent_id; ERR_FORBIDDEN
 * otherwise (another agent's, or requeued), ERR_NOTFOUND. Agent routes call
 * it before storing anything; the attempt check inside each store change
 * closes the window between the two (a requeue changes the attempt). */
int store_job_owner_check(struct store *st, int64_t job_id, int64_t agent_id, struct err *err);
/* The agent's labels as JSON array text (caller frees); ERR_NOTFOUND. */
int store_agent_labels(struct store *st, int64_t id, char **labels_out, struct err *err);
int store_agent_touch(struct store *st, int64_t id, int64_t now_ms, struct err *err);
int store_agent_list(struct store *st, struct agent_row **out, size_t *n_out, struct err *err);

struct store_stats {
	int64_t jobs_by_state[6];
	int64_t pipelines;
	int64_t log_bytes;
	int64_t blobs;
	int64_t blob_bytes;
	int64_t cache_bytes; /* memory the database library holds in this process (SQLite: page cache,
	                        statements, schema; PostgreSQL: 0) */
};
int store_stats(struct store *st, struct store_stats *out, struct err *err);

/* ---- forges ---- */

/* A repository with its forge settings. hook_secret and status_token are
 * secrets: they never leave the server through the API. */
struct repo_cfg {
	int64_t id;
	char *name;
	char *url;
	char *forge;        /* "" (none), github, gitea, gitlab or generic */
	char *hook_secret;  /* webhook secret, "" when none */
	char *status_token; /* token for commit statuses, "" when none */
	char *api_url;      /* forge API base, "" when none */
	int poll_s;         /* 0: not polled */
	char *agent_labels; /* agent pool "k=v,k=v", "" = any agent; NULL in
	                       store_repo_configure keeps the current one */
};
void repo_cfg_release(struct repo_cfg *r);
void repo_cfgs_free(struct repo_cfg *rows, size_t n);
/* Creates the repository or replaces its URL and forge settings (name, url,
 * forge, hook_secret, status_token, api_url, poll_s and agent_labels of in; id ignored). */
int store_repo_configure(struct store *st, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                         struct err *err);
/* ERR_NOTFOUND when no repository has that name. */
int store_repo_cfg_get(struct store *st, const char *name, struct repo_cfg *out, struct err *err);
int store_repo_cfg_list(struct store *st, struct repo_cfg **out, size_t *n_out, struct err *err);

/* Secrets of a repository (stored in clear in the database file). Set and
 * delete answer ERR_NOTFOUND for an unknown repository (delete also for an
 * unknown name). pull_requests = 1: the secret also goes to pull requests
 * from forks. list fills names (and values when values is non-NULL), only
 * of those secrets when pull_requests_only is 1. */
int store_secret_set(struct store *st, const char *repo, const char *name, const char *value,
                     int pull_requests, int64_t now_ms, struct err *err);
int store_secret_delete(struct store *st, const char *repo, const char *name, struct err *err);
int store_secret_list(struct store *st, const char *repo, int pull_requests_only, struct strv *names,
                      struct strv *values, struct err *err);

/* Branch heads the poller saw last: refs[i] → shas[i]. */
int store_poll_heads(struct store *st, int64_t repo_id, struct strv *refs, struct strv *shas,
                     struct err *err);
/* sha NULL forgets the ref. */
int store_poll_head_set(struct store *st, int64_t repo_id, const char *ref, const char *sha, struct err *err);

/* One queued commit status with what is needed to send it. */
struct status_row {
	int64_t id;
	int64_t job_id;
	char *state;       /* pending, success, failure, error */
	char *description; /* the job state: queued, running, success, ... */
	int attempts;
	char *forge, *api_url, *token, *repo_url, *commit_sha, *target;
};
void status_rows_free(struct status_row *rows, size_t n);
/* Statuses due at now_ms (at most limit), each job's oldest first. */
int store_status_due(struct store *st, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                     struct err *err);
/* Sent: the row goes away. */
int store_status_sent(struct store *st, int64_t id, struct err *err);
/* Not sent: attempts, the next try and why; gave_up keeps the row for
 * inspection but never sends it. */
int store_status_retry(struct store *st, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                       int gave_up, struct err *err);
/* Statuses still to send. */
int store_status_pending(struct store *st, int64_t *n_out, struct err *err);
/* Deletes up to limit statuses the sender gave up on, created before
 * before_ms (kept until then with their last error, for inspection);
 * *n_out: how many went. */
int store_status_prune(struct store *st, int64_t before_ms, int limit, int *n_out, struct err *err);

/* ---- boards and deployments ---- */

/* A board. private_key is a secret: filled only by store_board_list with
 * with_keys (for the claim of a deploy job), never answered by the API. */
struct board_row {
	int64_t id;
	char *name, *host;
	int port;
	char *user, *arch, *group;
	char *labels;          /* "k=v,k=v" or "" */
	char *host_key;        /* the pin: "SHA256:..." or an OpenSSH public key line */
	char *private_key;     /* NULL unless asked for */
	char *current_release; /* NULL when unknown */
	int64_t created_ms;
};
void board_rows_free(struct board_row *rows, size_t n);
/* ERR_CONFLICT when the name is taken. */
int store_board_add(struct store *st, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err);
/* ERR_NOTFOUND when no board has that name. */
int store_board_delete(struct store *st, const char *name, struct err *err);
/* Boards by name, of one group (NULL: all). */
int store_board_list(struct store *st, const char *group, int with_keys, struct board_row **out,
                     size_t *n_out, struct err *err);

/* The deploy entry of a pipeline for a group: *spec_out and *labels_out are
 * the caller's. ERR_NOTFOUND when the pipeline file had none. */
int store_deploy_plan_get(struct store *st, int64_t pipeline_id, const char *group, char **spec_out,
                          char **labels_out, struct err *err);
/* The newest deploy job named "deploy" for group; ERR_NOTFOUND when none. */
int store_deploy_last(struct store *st, const char *group, int64_t *job_id_out, struct err *err);

/* What one board of a deploy job went through (the agent reports each state
 * change; the row is replaced). */
struct deploy_board_row {
	char *board;
	int attempt;
	char *release;  /* the release being deployed */
	char *previous; /* current before, "" when none */
	char *current;  /* current after, "" when unknown */
	char *state;    /* pending, uploading, switching, healthy, rolled_back, failed, skipped */
	char *message;
	int64_t bytes_sent;
	int files_uploaded, files_skipped;
	int restart_exit, health_exit; /* -1: not run */
	char *restart_output, *health_output;
	int64_t started_ms, updated_ms, duration_ms;
};
void deploy_board_rows_free(struct deploy_board_row *rows, size_t n);
/* Stores r for (job, r->board); ERR_CONFLICT when the job is not running at
 * r->attempt. A healthy or rolled-back board's current release is recorded
 * on the board. */
int store_deploy_report(struct store *st, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                        struct err *err);
/* The release a board was last healthy on other than current (what a
 * rollback goes back to): *out is the caller's; ERR_NOTFOUND when none. */
int store_board_previous_release(struct store *st, const char *board, const char *current, char **out,
                                 struct err *err);
/* The boards of a deploy job, by name. */
int store_deploy_boards(struct store *st, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                        struct err *err);

/* A deployment is a deploy job: the job with its pipeline and board counts. */
struct deployment_row {
	struct job_row job; /* kind "deploy"; target is the group */
	int n_boards, n_healthy, n_failed, n_rolled_back, n_skipped, n_refused;
};
void deployment_rows_free(struct deployment_row *rows, size_t n);
/* Newest first; group may be NULL. */
int store_deployment_list(struct store *st, const char *group, int limit, struct deployment_row **out,
                          size_t *n_out, struct err *err);

/* ---- ui reads ---- */

/* The newest pipeline of every (repo, ref), ordered by repo name then ref,
 * at most limit rows. */
int store_pipeline_latest_refs(struct store *st, int limit, struct pipeline_row **out, size_t *n_out,
                               struct err *err);
/* The newest pipeline of repo (by name) on ref; ERR_NOTFOUND when none. */
int store_pipeline_latest_ref(struct store *st, const char *repo, const char *ref, struct pipeline_row *out,
                              struct err *err);

/* ---- releases ---- */

/* A repository's release tag pattern (a glob over the tag name, default
 * "v*"). ERR_NOTFOUND for an unknown repository. */
int store_release_pattern_set(struct store *st, const char *repo, const char *pattern, struct err *err);
/* *out owned by the caller. */
int store_release_pattern_get(struct store *st, const char *repo, char **out, struct err *err);

struct release_key_row {
	char *keynum; /* 16 hex */
	char *pubkey; /* the signify public key file text */
	int64_t created_ms;
	int64_t retired_ms; /* 0 while current */
};
void release_key_rows_free(struct release_key_row *rows, size_t n);
/* Adds a public key as the current one; earlier keys are retired (kept). */
int store_release_key_add(struct store *st, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                          struct err *err);
/* Newest first. */
int store_release_key_list(struct store *st, struct release_key_row **out, size_t *n_out, struct err *err);

struct release_row {
	int64_t id;
	int64_t repo_id;
	char *repo_name, *repo_url;
	char *version; /* the tag name */
	int64_t pipeline_id;
	char *commit_sha;
	int64_t created_ms;
	char *manifest;  /* NULL until signed */
	char *signature; /* signify signature file text, NULL until signed */
	char *keynum;    /* NULL until signed */
};
void release_row_release(struct release_row *r);
void release_rows_free(struct release_row *rows, size_t n);

struct release_file_row {
	char *target;
	char *name;
	int64_t size;
	char sha256[65];
};
void release_file_rows_free(struct release_file_row *rows, size_t n);

/* Ids of releases recorded but not signed yet (at most 64), oldest first. */
int store_release_unsigned(struct store *st, int64_t **ids_out, size_t *n_out, struct err *err);
/* The artifacts of a pipeline's current successful build jobs, by target
 * then name. */
int store_release_files(struct store *st, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                        struct err *err);
/* Stores the signed manifest once; ERR_CONFLICT when it was signed already. */
int store_release_sign(struct store *st, int64_t id, const char *manifest, const char *signature,
                       const char *keynum_hex, struct err *err);
/* By id (> 0), or by repo name and version when id is 0. ERR_NOTFOUND. */
int store_release_get(struct store *st, int64_t id, const char *repo, const char *version,
                      struct release_row *out, struct err *err);
/* Newest first; repo may be NULL for all. */
int store_release_list(struct store *st, const char *repo, int limit, struct release_row **out, size_t *n_out,
                       struct err *err);

/* A tag pipeline's deploy job (name "deploy") waits, queued, until the
 * pipeline's release is signed (jobstate_claim skips it until then). These
 * end the ones that never will be: */

/* A board whose current release is a release's version (switched to it by a
 * deploy of the release's repository). */
struct release_board_row {
	char *board, *group;
	int64_t since_ms; /* when the board reported it live */
};
void release_board_rows_free(struct release_board_row *rows, size_t n);
/* The boards where version of repository repo_id is live, by name. */
int store_release_boards(struct store *st, int64_t repo_id, const char *version,
                         struct release_board_row **out, size_t *n_out, struct err *err);

/* Web UI sessions (server/ui_auth.h): rows keyed by the sha256 of the cookie
 * value, bound to the admin token's hash. check: 0 when the session exists,
 * belongs to admin_sha256 and expires after now_ms; ERR_AUTH otherwise.
 * delete of an unknown session is not an error. delete_all, expire:
 * *n_out = rows removed (expire: at most limit, expired by now_ms). */
int store_session_add(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                      int64_t expires_ms, struct err *err);
int store_session_check(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                        struct err *err);
int store_session_delete(struct store *st, const char *id_sha256, struct err *err);
int store_session_delete_all(struct store *st, int *n_out, struct err *err);
int store_session_expire(struct store *st, int64_t now_ms, int limit, int *n_out, struct err *err);

/* ---- pipeline history (issue 16) ---- */

/* Filters of store_pipeline_page; NULL (or before_id <= 0) matches all.
 * ref is a full ref ("refs/tags/v1") or a branch or tag name ("main"). */
struct pipeline_filter {
	const char *repo; /* repository name */
	const char *ref;
	const char *state; /* a job state's name: the pipeline's state */
	const char *event; /* push, tag, manual, ... */
	int64_t before_id; /* only pipelines with a smaller id: the next page */
};
/* Up to limit pipelines matching f, newest (highest id) first; *out is the
 * caller's (pipeline_rows_free). */
int store_pipeline_page(struct store *st, const struct pipeline_filter *f, int limit,
                        struct pipeline_row **out, size_t *n_out, struct err *err);

/* ---- cron schedules (issue 15) ---- */

/* A repository's ref built at every due time of a cron expression
 * (common/cron.h, UTC). */
struct schedule_row {
	int64_t id;
	char *repo; /* the repository's name */
	char *name; /* unique per repository */
	char *ref;  /* refs/heads/main */
	char *cron;
	int64_t next_unix_s; /* the due time it fires at next */
	int64_t last_unix_s; /* the due time it fired at last; 0: never */
	int64_t created_unix_ms;
};
void schedule_rows_free(struct schedule_row *rows, size_t n);
/* Adds in (repo, name, ref, cron, next_unix_s; id and last ignored).
 * ERR_NOTFOUND for an unknown repository, ERR_CONFLICT when the repository
 * has a schedule of that name. */
int store_schedule_add(struct store *st, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                       struct err *err);
/* The schedules of repo (NULL: all), by repository and name; *out is the
 * caller's (schedule_rows_free). */
int store_schedule_list(struct store *st, const char *repo, struct schedule_row **out, size_t *n_out,
                        struct err *err);
/* ERR_NOTFOUND when repo has no schedule name. */
int store_schedule_delete(struct store *st, const char *repo, const char *name, struct err *err);
/* The claim of one firing: moves the schedule from due_unix_s on to
 * next_unix_s (last = due) in one statement, only when its next_unix_s is
 * still due_unix_s. *claimed_out = 1 for the one caller (of any server on
 * the store) that moved it; 0 when another did, or it was deleted. */
int store_schedule_claim(struct store *st, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                         int *claimed_out, struct err *err);
/* ---- cross-links (issue 16) ---- */

/* Filters of store_job_page; NULL (or before_id <= 0) matches all. */
struct job_filter {
	const char *agent;  /* name of the agent that claimed the job (its last attempt) */
	const char *repo;   /* repository name */
	const char *ref;    /* full ref of the job's pipeline */
	const char *name;   /* job name */
	const char *target; /* job target (a deploy job's group) */
	const char *state;  /* a job state's name */
	int64_t before_id;  /* only jobs with a smaller id: the next page */
};
/* Up to limit jobs matching f, newest (highest id) first, as store_job_get
 * fills them; *out is the caller's (job_rows_free). */
int store_job_page(struct store *st, const struct job_filter *f, int limit, struct job_row **out,
                   size_t *n_out, struct err *err);

/* What one board went through in one deploy job: a board's history. */
struct board_deploy_row {
	struct job_row job;        /* the deploy job (target: the group), with its pipeline's ref */
	struct deploy_board_row b; /* the board's row of it */
};
void board_deploy_rows_free(struct board_deploy_row *rows, size_t n);
/* The deploy jobs that reported on board, newest first, at most limit. */
int store_board_deploys(struct store *st, const char *board, int limit, struct board_deploy_row **out,
                        size_t *n_out, struct err *err);

#endif
