#ifndef ANVIL_AGENT_SANDBOX_H
#define ANVIL_AGENT_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "common/cgroup.h"
#include "common/err.h"
#include "common/runner.h"

/* The agent's containment policy (docs/security.md): which host uid a
 * step runs as, and the per-job limits. A job gets a sandbox_job: its
 * cgroup, the ownership of its workspace and caches, the disk check, and
 * the message naming a limit it ran into. One thread (the agent's main
 * thread) owns both. */

struct sandbox_opts {
	const char *build_user; /* "NAME" or "UID:GID"; NULL: "anvil-build" (for a root agent) */
	int64_t memory_bytes;   /* per job; 0: none */
	int64_t pids;           /* per job; 0: none */
	int cpu_weight;         /* 1..10000; 0: 100 */
	int64_t tmp_bytes;      /* the step's /tmp; 0: none */
	int64_t disk_bytes;     /* the job's workspace, and any one file a step writes; 0: none */
};

/* Defaults (docs/agent.md). */
#define SANDBOX_DEFAULT_MEMORY (INT64_C(4) << 30)
#define SANDBOX_DEFAULT_PIDS   4096
#define SANDBOX_DEFAULT_TMP    (INT64_C(1) << 30)
#define SANDBOX_DEFAULT_DISK   (INT64_C(20) << 30)
#define SANDBOX_BUILD_USER     "anvil-build"

struct sandbox {
	struct sandbox_opts opt; /* build_user borrowed */
	int drop_ids;            /* 1: the agent is root and steps run as uid:gid */
	uid_t uid;
	gid_t gid;
	int seccomp_fd; /* owned; the steps' seccomp filter, compiled once (sealed memfd); -1: none,
	                   each step compiles its own */
};

/* Resolves the build user. A root agent needs one that is not root
 * (ERR_INVAL naming how to create it); an agent that is not root runs
 * steps as itself (build_user must then be unset or itself). */
int sandbox_init(struct sandbox *sb, const struct sandbox_opts *o, struct err *err);

/* Closes what sandbox_init opened; safe after a failed sandbox_init. */
void sandbox_release(struct sandbox *sb);

/* Checks that the build user can reach dir (search permission on every
 * component): bubblewrap, run as that user, binds the workspaces under it.
 * ERR_INVAL naming the fix otherwise. */
int sandbox_check_reach(const struct sandbox *sb, const char *dir, struct err *err);

struct sandbox_job;

/* Creates job_id's cgroup with the limits ("job-<id>", or "job-<id>-<part>"
 * when part is not NULL: the job's services, which the kill after each
 * step must not reach, get their own with the same limits). When the host
 * has no usable cgroup, the job goes on without memory/pids/cpu limits and
 * *warning_out (owned) says so for the job log. */
int sandbox_job_begin(const struct sandbox *sb, int64_t job_id, const char *part, struct sandbox_job **out,
                      char **warning_out, struct err *err);

/* sandbox_job_begin for a cgroup named name (a standby sandbox's, before
 * its job is known). */
int sandbox_job_begin_named(const struct sandbox *sb, const char *name, struct sandbox_job **out,
                            char **warning_out, struct err *err);

/* The runners' view (borrowed from job). */
const struct runner_sandbox *sandbox_job_runner(const struct sandbox_job *job);

/* Gives the tree at path to the build user (the checked-out workspace, a
 * cache directory), links not followed. */
int sandbox_job_own(const struct sandbox_job *job, const char *path, struct err *err);

/* Checks the workspace's disk use, at most every 2 s unless now: 1 with msg
 * set when it is over the cap, 0 when not (or not checked now). A tree that
 * cannot be measured counts as over, with the reason. */
int sandbox_job_disk_over(struct sandbox_job *job, const char *workspace, int now, char *msg, size_t size);

/* The limit the job ran into ("memory limit 4 GiB reached"), or 0 when none. */
int sandbox_job_limit_hit(const struct sandbox_job *job, char *msg, size_t size);

/* Kills whatever the job left running (its whole cgroup). */
void sandbox_job_kill_all(struct sandbox_job *job);

/* Kills what is left, removes the cgroup, frees. NULL is a no-op. */
void sandbox_job_end(struct sandbox_job *job);

#endif
