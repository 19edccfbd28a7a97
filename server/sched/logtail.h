#ifndef ANVIL_LOGTAIL_H
#define ANVIL_LOGTAIL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/logframe.h"
#include "common/xalloc.h"
#include "server/sched/jobstate.h"

struct store;

/* The live end of running jobs' logs, in memory, in front of the store.
 * Ingest stores a chunk (store_log_append) and then copies it here once;
 * every follower whose offset falls inside a job's tail is served from
 * memory without touching SQLite, however many follow. Older offsets, jobs
 * without a tail (after a restart, evicted, truncated) and anything the tail
 * cannot vouch for are read from the store, which stays the truth: the tail
 * only ever holds committed bytes, at the offsets they were committed at.
 *
 * Bounds: a job keeps its last job_cap_bytes, in a buffer sized to what it
 * holds (grown geometrically up to that cap); all tails together hold at
 * most total_cap_bytes (the least recently used job's tail goes first). A
 * final job's tail goes when it has no follower (logtail_follow) left: at
 * its finish when none is attached, else when the last one leaves, and
 * LOGTAIL_FINAL_KEEP_MS after its finish at the latest (followers still
 * catching up are served from it until then). A tail not written for
 * LOGTAIL_IDLE_MS goes too. So finished jobs cost no memory here.
 *
 * "epoch" arguments are sched_gen(srv->sched, SCHED_LOGS) read by the caller
 * before the call: every job state change that can add log bytes behind the
 * tail's back (a claim's attempt marker, the reaper's requeue) moves it, so
 * the tail says "nothing new" at a job's end only while it is unchanged.
 *
 * Thread-safe: ingest and followers call from their connection threads. */

#define LOGTAIL_JOB_CAP_BYTES ((size_t)16 << 20)
/* A job nobody follows keeps at most this much (a follower arriving reads
 * older bytes from the store, and the tail grows to the job cap while
 * followed): a 100 MB log no longer costs the server 16 MiB of tail. */
#define LOGTAIL_UNFOLLOWED_CAP_BYTES ((size_t)1 << 20)
#define LOGTAIL_TOTAL_CAP_BYTES      ((size_t)64 << 20)
#define LOGTAIL_FINAL_KEEP_MS        30000
#define LOGTAIL_IDLE_MS              600000
/* Chunks this close together: the producer streams as fast as it can. */
#define LOGTAIL_BUSY_MS 10

struct logtail;

/* job_cap_bytes <= total_cap_bytes. OOM aborts. */
struct logtail *logtail_new(size_t job_cap_bytes, size_t total_cap_bytes);
/* NULL-safe; no call may be running. */
void logtail_free(struct logtail *t);

/* store_log_append (same arguments and outputs), then the stored bytes into
 * the job's tail. One job's appends are serialised from the store commit to
 * the tail update, so the tail sees them in store order; a resent chunk
 * (not accepted) adds nothing; a truncated one drops the job's tail. The
 * caller wakes the job's followers (sched_log_notify) when accepted. */
int logtail_append(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int attempt,
                   int64_t seq, const void *data, size_t len, int64_t cap_bytes, int *accepted_out,
                   int *truncated_out, struct err *err);
/* The same for a framed chunk: store_log_append_frame, its log bytes into
 * the tail. */
int logtail_append_frame(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int attempt,
                         int64_t seq, const struct logframe *f, int64_t cap_bytes, int *accepted_out,
                         int *truncated_out, struct err *err);

/* The job reached final `state` with log_bytes stored (read from the store
 * after the change): its followers stop at its end without the store. A
 * tail that does not end there is dropped. */
void logtail_finish(struct logtail *t, int64_t job_id, enum job_state state, int64_t log_bytes);

/* A follower (a long poll or an event stream waiting on job_id's log)
 * attaches before its first read and leaves after its last; a final job's
 * tail stays while one is attached. A reader between two long polls is not
 * attached: after the job's end it may be answered by the store. */
void logtail_follow(struct logtail *t, int64_t job_id);
void logtail_unfollow(struct logtail *t, int64_t job_id);

/* Drops the tails of finished jobs: retention replaced some logs of finished
 * jobs by a marker in the store, and a tail must never outlive its bytes. */
void logtail_forget_finished(struct logtail *t);

/* Drops job_id's tail: another server process stored bytes of it (a store
 * shared by several servers), so this one's tail no longer ends where the
 * log does. */
void logtail_forget(struct logtail *t, int64_t job_id);

struct logtail_read {
	enum job_state state; /* the job's state */
	int64_t log_bytes;    /* the log's length known with that state */
	int64_t next;         /* offset after the bytes returned (== offset when none) */
	int from_store;       /* 1 when the store answered */
	int busy;             /* the job's last chunk came LOGTAIL_BUSY_MS or less after the one before */
};

/* About max_bytes of job_id's log from offset appended to out (none at the
 * end), with the job's state: from the tail when it holds offset, else from
 * the store (store_job_get, store_log_read). Once state is final and next ==
 * log_bytes, the whole log was returned. ERR_NOTFOUND when no such job. */
int logtail_read(struct logtail *t, struct store *st, uint64_t epoch, int64_t job_id, int64_t offset,
                 size_t max_bytes, struct buf *out, struct logtail_read *r, struct err *err);

struct logtail_stats {
	size_t jobs;          /* tails held */
	size_t bytes;         /* memory they take */
	uint64_t tail_reads;  /* reads answered from memory */
	uint64_t store_reads; /* reads that went to the store */
};
void logtail_stats(struct logtail *t, struct logtail_stats *out);

#endif
