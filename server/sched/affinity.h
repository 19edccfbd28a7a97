#ifndef ANVIL_AFFINITY_H
#define ANVIL_AFFINITY_H

#include <stdint.h>

/* Warm agents (docs/architecture.md "Warm agents"): a queued job goes to
 * the agent that last claimed a job of the same key (repository, kind,
 * target, labels, pool: its mirror of the repository, its rootfs and
 * libgit2 are warm there) when that agent is idle in a claim right now;
 * another agent leaves it for up to AFFINITY_GRACE_MS, then takes it. Like
 * Jenkins' preference for the node a job last ran on. Per server process,
 * in memory: a hint, never a reservation (an agent waiting on another
 * server is not seen idle here). Thread-safe. */

/* How long an agent leaves a job for its warm agent (which claims within a
 * millisecond when it is idle; the allowance is for a busy machine). */
#define AFFINITY_GRACE_MS 1000

struct affinity;

struct affinity *affinity_new(void);
void affinity_free(struct affinity *a);

/* agent_id claimed a job of key. */
void affinity_claimed(struct affinity *a, uint64_t key, int64_t agent_id);
/* agent_id starts or ends waiting in a claim (an agent with --jobs N may
 * wait in several). affinity_idle_leave returns 1 when some agent is
 * leaving a job for another right now: the caller wakes the claims so they
 * look again. */
void affinity_idle_enter(struct affinity *a, int64_t agent_id);
int affinity_idle_leave(struct affinity *a, int64_t agent_id);
/* 1 when a job of key should be left by agent_id: its warm agent is
 * another one, idle now. */
int affinity_leave(struct affinity *a, uint64_t key, int64_t agent_id);
/* 1 when agent_id waits in a claim on this server now (GET /api/v1/agents
 * "waiting"). */
int affinity_waiting(struct affinity *a, int64_t agent_id);
/* A claim starts (+1) or stops (-1) leaving jobs for others. */
void affinity_graced(struct affinity *a, int delta);

#endif
