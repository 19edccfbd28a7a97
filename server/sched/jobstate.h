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

#endif
