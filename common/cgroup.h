#ifndef ANVIL_CGROUP_H
#define ANVIL_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A per-job cgroup: memory, process-count and CPU-weight limits on a job's
 * whole process tree, what it ran into, and a kill that leaves nothing
 * behind (double-forked setsid daemons included).
 *
 * Both cgroup versions, detected at run time under root_hint (NULL means
 * /sys/fs/cgroup): cgroup2 when root_hint itself is a cgroup2 mount, else
 * one v1 hierarchy per controller (root_hint/memory, /pids, /cpu).
 *
 * Where the job goes: under the calling process's own cgroup O (read from
 * /proc/self/cgroup, mapped to a directory through /proc/self/mountinfo),
 * as O/anvil-<pid>/<name>.
 * - v1: one such directory in each hierarchy used (memory, pids, cpu); a
 *   hierarchy whose limit is 0 is used when present, to track the tree.
 * - v2: the "no internal processes" rule forbids enabling controllers in
 *   O's subtree while O holds processes. When O does not already delegate
 *   memory/pids/cpu to its children, the agent moves itself into the leaf
 *   O/anvil-<pid>/agent and then writes "+memory +pids +cpu" into
 *   O/cgroup.subtree_control and O/anvil-<pid>/cgroup.subtree_control. Later
 *   calls see /proc/self/cgroup end in anvil-<pid>/agent and use O again.
 *   If O holds processes other than the agent (not a delegated cgroup: run
 *   the agent with systemd's Delegate=yes), this fails with ERR_UNAVAIL and
 *   the agent stays in the leaf, which is harmless.
 * Failures are ERR_UNAVAIL (no cgroup filesystem, controller missing or not
 * delegated, hierarchy read-only: the caller may go on without limits and
 * log a warning), ERR_INVAL (bad name or limits) or ERR_SYS.
 *
 * Threads: a struct cgroup_job belongs to one thread at a time; jobs created
 * concurrently by several threads of one process are fine. */

struct cgroup_limits {
	int64_t memory_bytes; /* 0: no limit; swap is not allowed past it */
	int64_t pids;         /* 0: no limit; processes and threads */
	int cpu_weight;       /* 0: default (100); else 1..10000 */
};

/* What the job ran into, read by cgroup_job_events. */
struct cgroup_events {
	/* Processes the kernel's OOM killer killed for the memory limit. On v1
	 * kernels without an oom_kill count (before 4.13) this is the number of
	 * times the limit was hit (memory.failcnt) instead. */
	int64_t oom_kills;
	int64_t pids_max_hits; /* forks refused by the pids limit (pids.events max) */
};

struct cgroup_job;

#define CGROUP_ENTER_FDS_MAX 3 /* v1: memory, pids, cpu; v2: 1 */

/* Creates the job's cgroup(s) and sets lim (see above). name: [A-Za-z0-9._-],
 * 1..64 characters, unique among the calling process's live jobs (EEXIST is
 * ERR_CONFLICT). *out is the caller's, released with cgroup_job_free. */
int cgroup_job_create(const char *root_hint, const char *name, const struct cgroup_limits *lim,
                      struct cgroup_job **out, struct err *err);

/* Fills fds (up to max) with the files a child enters the job through
 * (cgroup.procs on v2, tasks on v1), opened O_WRONLY|O_CLOEXEC and owned by
 * the job; returns how many (at most CGROUP_ENTER_FDS_MAX). A forked child
 * enters the job before exec by writing "0" to each (write(2) only:
 * async-signal-safe); it must treat a failed write as a failed spawn. On v1
 * that moves the writing thread only: the child must have one thread (a
 * fork or vfork child has). */
size_t cgroup_job_enter_fds(const struct cgroup_job *job, int *fds, size_t max);

/* v2: the job's directory, opened O_RDONLY|O_DIRECTORY and owned by the job,
 * for a child to start in it (clone3's CLONE_INTO_CGROUP, Linux 5.7): no move,
 * so none of the kernel's threadgroup lock and its RCU wait that writing
 * cgroup.procs takes (5-20 ms). v1: -1 (no such clone there). */
int cgroup_job_dir_fd(const struct cgroup_job *job);

/* The job's directory (v2), or its directory in the first v1 hierarchy used
 * (pids, else memory, else cpu): for log lines and tests. Borrowed. */
const char *cgroup_job_path(const struct cgroup_job *job);

/* Reads what the job ran into so far. 0, or -1 with ERR_SYS. */
int cgroup_job_events(const struct cgroup_job *job, struct cgroup_events *out, struct err *err);

/* SIGKILLs every process in the job and waits (at most 2 s) until it is
 * empty. v2 with cgroup.kill: one write. Else the procs are signalled
 * through pidfds checked to be still in the job (no pid-reuse race), in a
 * loop until none is left, so forks racing with the kill are caught too.
 * Zombies are not listed and do not keep the job busy: the caller reaps its
 * own children as usual. 0, or -1 with ERR_SYS (ERR_LIMIT: processes left
 * after the wait, e.g. stuck in uninterruptible sleep). */
int cgroup_job_kill_all(struct cgroup_job *job, struct err *err);

/* Kills what is left, removes the job's directories (retrying briefly while
 * zombies are being released) and O/anvil-<pid> when that is empty, and
 * frees job. A directory that cannot be removed is logged. NULL is a no-op. */
void cgroup_job_free(struct cgroup_job *job);

/* Writes "memory limit 4 GiB reached", "process limit 512 reached" or both
 * ("; "-joined) into buf for the limits ev shows were hit; "" when none.
 * Returns the length snprintf would have written. */
int cgroup_limit_message(char *buf, size_t size, const struct cgroup_limits *lim,
                         const struct cgroup_events *ev);

#endif
