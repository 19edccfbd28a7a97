#ifndef ANVIL_JOBSTATE_H
#define ANVIL_JOBSTATE_H

/* The job state machine: the one place that says which transitions exist.
 *   queued  → running (claim) | canceled (cancel)
 *   running → success | failed | canceled | error (finish)
 *           → queued (lease ran out, attempts left) | error (no attempts left)
 * Final states never change; a retry is a new job. */

enum job_state { JOB_QUEUED = 0, JOB_RUNNING, JOB_SUCCESS, JOB_FAILED, JOB_CANCELED, JOB_ERROR };

const char *jobstate_name(enum job_state s);
/* Returns 0 and sets *out for a known name, -1 otherwise. */
int jobstate_parse(const char *name, enum job_state *out);
int jobstate_is_final(enum job_state s);
int jobstate_can_move(enum job_state from, enum job_state to);

/* A pipeline's state from its current jobs (see docs/api.md). n == 0 → success. */
enum job_state jobstate_aggregate(const enum job_state *states, int n);

/* ---- the transitions (jobstate.c), each one transaction of the store's
 * backend, with the rules that ride on them ---- */
#include <stddef.h>
#include <stdint.h>

struct strv;

struct err;
struct store;
struct job_row;
struct job_new;
struct pipeline_new;

/* Creates the pipeline and its jobs (queued) in one transaction; with
 * p->auto_cancel, a push to a branch (refs/heads/) also stops, in it, the
 * older queued or running push pipelines of that repository and branch:
 * their queued jobs end canceled and running ones are asked to stop, but
 * for running deploy jobs ("superseded by pipeline N (auto_cancel)"). When the
 * delivery id was seen before for the same repository, nothing is created, *existed_out = 1 and
 * *id_out is the earlier pipeline. */
int jobstate_pipeline_create(struct store *st, const struct pipeline_new *p, const struct job_new *jobs,
                             size_t n_jobs, int64_t now_ms, int64_t *id_out, int *existed_out,
                             struct err *err);
/* Claims the oldest queued job the agent's labels (n_labels "k=v" strings)
 * satisfy (the job's own and its repository's agent pool) for agent_id: running, attempt + 1, lease until now
 * + lease_ms. *found_out = 0 when none matches. The matching rule lives in one place, jobstate_labels_match.
 */
int jobstate_claim(struct store *st, int64_t agent_id, const char *const *labels, size_t n_labels,
                   int64_t now_ms, int64_t lease_ms, struct job_row *out, int *found_out, struct err *err);
/* A claim's preference (docs/architecture.md "Warm agents"): each queued
 * job the agent could take has a key (its repository, kind, target, labels
 * and pool: jobs that need the same mirror and rootfs); leave (when not NULL)
 * says 1 to leave that job for another agent, counted in left. picked_key
 * is the claimed job's key. */
struct jobstate_pref {
	int (*leave)(void *cls, uint64_t key);
	void *cls;
	size_t left;         /* out */
	uint64_t picked_key; /* out */
};
/* jobstate_claim with a preference (pref may be NULL). */
int jobstate_claim_pref(struct store *st, int64_t agent_id, const char *const *labels, size_t n_labels,
                        int64_t now_ms, int64_t lease_ms, struct jobstate_pref *pref, struct job_row *out,
                        int *found_out, struct err *err);
/* 1 when agent labels satisfy a job: a build job needs "target=<target>",
 * every job needs each label of required ("k=v,k=v", may be "" or NULL). */
int jobstate_labels_match(const char *kind, const char *target, const char *required,
                          const char *const *labels, size_t n_labels);
/* 1 when labels hold each label of required ("k=v,k=v", "" or NULL: 1). A
 * repository's agent pool is checked with it at claim time. */
int jobstate_labels_have(const char *required, const char *const *labels, size_t n_labels);

/* How a queued job's message (and its pipeline's, "job NAME: ...") starts
 * while no registered agent could claim it. */
#define JOBSTATE_NO_AGENT "no agent "
/* For each claimable queued job (needs met; at most 500): when none of the
 * registered agents (agents[i]: one agent's labels, n_agents) could claim
 * it, its message says why ("no agent offers target T", "no agent offers
 * target T with labels k=v", "no agent has labels k=v" for a deploy) and so
 * does its pipeline's; once one could, the messages go. Only such messages
 * are touched. *changed_out: how many jobs' messages changed. */
int jobstate_unrunnable_scan(struct store *st, const struct strv *agents, size_t n_agents, int64_t now_ms,
                             int *changed_out, struct err *err);
/* Moves a running job at attempt to a final state. ERR_CONFLICT when stale. */
int jobstate_finish(struct store *st, int64_t id, int attempt, enum job_state state, int has_exit_code,
                    int exit_code, const char *message, int64_t now_ms, struct err *err);
/* A running job at attempt back to the queue now, as after a lost lease
 * (its agent is stopping): attempt + 1 at its next claim, error past
 * max_attempts, canceled when a cancel was asked. ERR_CONFLICT when stale. */
int jobstate_give_back(struct store *st, int64_t id, int attempt, int64_t now_ms, struct err *err);
/* queued → canceled now; running → cancel requested (the agent is told on its
 * next heartbeat). ERR_CONFLICT when already final. */
int jobstate_cancel(struct store *st, int64_t id, int64_t now_ms, struct err *err);
/* New queued job copying a final job. ERR_CONFLICT when the job is not final
 * or was already retried. */
int jobstate_retry(struct store *st, int64_t id, int64_t now_ms, int64_t *new_id_out, struct err *err);
/* Retrying a job also retries, in the same transaction, the canceled jobs
 * that never started and need it (needs:), down the graph. */
/* Pipeline cancel: its queued jobs end canceled ("canceled with its
 * pipeline"), its running ones are asked to stop, in one transaction.
 * *n_out: how many. ERR_CONFLICT when none is queued or running,
 * ERR_NOTFOUND for an unknown pipeline. */
int jobstate_pipeline_cancel(struct store *st, int64_t pipeline_id, int64_t now_ms, int *n_out,
                             struct err *err);
/* Retry failed: a retry of each current failed, canceled or error job of
 * the pipeline (with the canceled jobs needing them), in one transaction.
 * *n_out: how many jobs were retried. ERR_CONFLICT when there is none. */
int jobstate_pipeline_retry_failed(struct store *st, int64_t pipeline_id, int64_t now_ms, int *n_out,
                                   struct err *err);
/* Approval gates (approve: true): the current jobs of the pipeline (named
 * name, or all when NULL) that are queued and wait for an approval are
 * approved by by (recorded with the time; a claim may take them from now
 * on), or with reject canceled ("rejected by BY"), in one transaction.
 * *n_out: how many. ERR_CONFLICT when none waits. */
int jobstate_approve(struct store *st, int64_t pipeline_id, const char *name, const char *by, int reject,
                     int64_t now_ms, int *n_out, struct err *err);
/* Running jobs whose lease ran out: back to queued, or error when out of
 * attempts, or canceled when a cancel was requested. *n_out = jobs moved. */
int jobstate_requeue_expired(struct store *st, int64_t now_ms, int *n_out, struct err *err);
/* Creates the agent or renews it by name, in one transaction: labels,
 * token_sha256_hex (the sha256 of its fresh token; the previous one stops
 * working), not removed any more; the name's running jobs are requeued
 * (*requeued_out of them) like a lost lease, since the previous token can no
 * longer finish them. */
int jobstate_agent_register(struct store *st, const char *name, const char *labels_json,
                            const char *token_sha256_hex, int64_t now_ms, int64_t *id_out, int *requeued_out,
                            struct err *err);
/* agent rm: revokes the agent's token and hides it from the list, in one
 * transaction requeueing its running jobs (*requeued_out). ERR_NOTFOUND. */
int jobstate_agent_remove(struct store *st, const char *name, int64_t now_ms, int64_t *id_out,
                          int *requeued_out, struct err *err);
/* A queued deploy job (name "deploy" or "rollback", target = group) in a
 * pipeline. ERR_CONFLICT when a build job of the pipeline has not succeeded
 * (deploy only) or a deploy job of that group is still queued or running;
 * ERR_NOTFOUND for an unknown pipeline. */
int jobstate_deploy_create(struct store *st, int64_t pipeline_id, const char *name, const char *group,
                           const char *spec, const char *labels, int max_attempts, int64_t now_ms,
                           int64_t *job_id_out, struct err *err);
/* Cancels, with a message naming the release and what to run instead, the
 * queued deploy jobs of tag pipelines whose version another pipeline of the
 * repository recorded first. *n_out: how many. */
int jobstate_release_deploys_end_orphans(struct store *st, int64_t now_ms, int *n_out, struct err *err);
/* Cancels the queued deploy jobs of a pipeline with message (its release
 * cannot be signed). *n_out: how many. */
int jobstate_release_deploys_cancel(struct store *st, int64_t pipeline_id, const char *message,
                                    int64_t now_ms, int *n_out, struct err *err);

#endif
