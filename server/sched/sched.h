#ifndef ANVIL_SCHED_H
#define ANVIL_SCHED_H

#include <stdint.h>

#include "common/err.h"
#include "server/store/store.h"

/* The scheduler's waiting side: long polls (agents claiming jobs, followers
 * of a live log) sleep on a generation counter and wake the moment something
 * changes, never on a fixed poll interval; and the lease reaper, a thread that
 * requeues jobs whose lease ran out. The state machine itself is jobstate.c;
 * the transitions are made by the store. */

struct sched;

enum sched_topic { SCHED_JOBS = 0, SCHED_LOGS = 1 };

/* Starts the reaper thread (checks every reap_interval_ms). Its first pass
 * waits start_grace_ms (the lease): after a server restart the agents of
 * running jobs get one lease to heartbeat again before those jobs are
 * requeued, so a restart slower than a lease does not run them twice. */
int sched_new(struct store *st, int reap_interval_ms, int start_grace_ms, struct sched **out,
              struct err *err);
/* Wakes every waiter for good (shutdown): long polls answer at once. */
void sched_stop(struct sched *s);
/* True once sched_stop ran: long polls stop waiting. */
int sched_stopping(struct sched *s);
/* Stops the reaper and frees; NULL-safe. */
void sched_free(struct sched *s);

/* The current generation of a topic: read it before checking, then wait on it. */
uint64_t sched_gen(struct sched *s, enum sched_topic t);
/* Wakes every waiter of a topic. */
void sched_notify(struct sched *s, enum sched_topic t);
/* Sleeps until the topic's generation differs from seen or deadline_ms
 * (CLOCK_MONOTONIC milliseconds) passes. Returns the generation then. */
uint64_t sched_wait(struct sched *s, enum sched_topic t, uint64_t seen, int64_t deadline_ms);
/* One job's log followers (a long poll on /jobs/ID/log, a UI event stream):
 * they wait on the job's own generation, so a chunk of one job wakes only
 * its followers. The generation also moves with every sched_notify of
 * SCHED_LOGS (a job state changed, the reaper requeued), so a follower never
 * misses a state change. A follow is held for the whole request and freed on
 * the request's thread; any thread may notify. */
struct sched_follow;
/* Registers interest in job_id's log (never fails; OOM aborts). */
struct sched_follow *sched_follow_new(struct sched *s, int64_t job_id);
/* NULL-safe. */
void sched_follow_free(struct sched_follow *f);
/* The job's generation: read it before reading the log, then wait on it. */
uint64_t sched_follow_gen(struct sched_follow *f);
/* Sleeps until the job's generation differs from seen, the deadline
 * (CLOCK_MONOTONIC ms) passes or the scheduler stops; returns the generation. */
uint64_t sched_follow_wait(struct sched_follow *f, uint64_t seen, int64_t deadline_ms);
/* A chunk of job_id's log was stored: wakes that job's followers only. */
void sched_log_notify(struct sched *s, int64_t job_id);

/* Monotonic milliseconds, the clock of deadlines. */
int64_t sched_mono_ms(void);

#endif
