#ifndef ANVIL_RUNNER_H
#define ANVIL_RUNNER_H

#include "common/err.h"
#include "common/proc.h"

#include <stdint.h>
#include <sys/types.h>

/* The runner: "run this step in this environment, stream its output". One
 * backend per file: agent/runner_host.c (plain processes on the host, the
 * walking skeleton), qemu/runner_bwrap.c (bubblewrap over a target rootfs),
 * and optionally a Docker backend. The agent's job loop only sees this. */

struct step_spec {
	const char *name;
	const char *run;        /* shell text; handed to /bin/sh -c as ONE argument, never spliced */
	const char *workspace;  /* host path of the checked-out tree; the step's cwd */
	const char *const *env; /* NULL-terminated "KEY=VALUE" list the step sees (plus runner's own) */
	int has_log_fd;         /* 1: the output goes to log_fd (borrowed; a file), not to a pipe:
	                           out->out_fd is then -1 (a service, which nobody reads live) */
	int log_fd;
	/* Optional, borrowed: a sandbox this runner's standby op started ahead
	 * of the step. start runs the step in it when it is still exactly what
	 * the step would get, else starts a new one; the caller frees it after
	 * either way (runner_standby_free). */
	struct runner_standby *standby;
};

struct runner;

/* A step's sandbox started before the step is known (runner_ops.standby):
 * what a backend embeds first. free kills it unless a step took it over. */
struct runner_standby {
	void (*free)(struct runner_standby *s);
	pid_t pid; /* the sandbox's first process (logs and tests) */
};

/* NULL-safe. */
static inline void runner_standby_free(struct runner_standby *s)
{
	if (s != NULL)
		s->free(s);
}

struct runner_sandbox;

struct runner_ops {
	const char *name;
	/* Starts the step; out->out_fd carries merged stdout+stderr. */
	int (*start)(struct runner *r, const struct step_spec *step, struct proc *out, struct err *err);
	/* Kills the step's whole process tree (SIGTERM, grace_ms, SIGKILL). */
	int (*cancel)(struct runner *r, struct proc *p, int grace_ms, struct err *err);
	void (*free)(struct runner *r);
	/* Optional (NULL: the backend has none). Starts now, within sb (the
	 * cgroup and user the next job's steps get), the sandbox a step in
	 * workspace would get from this runner, waiting to be told the step's
	 * environment and command; NULL with err when it cannot. */
	struct runner_standby *(*standby)(struct runner *r, const char *workspace,
	                                  const struct runner_sandbox *sb, struct err *err);
};

/* Backends embed this as their first member. */
struct runner {
	const struct runner_ops *ops;
};

/* NULL-safe. */
static inline void runner_free(struct runner *r)
{
	if (r != NULL)
		r->ops->free(r);
}

/* Who and within what a sandboxed step runs (the agent's policy; all zero:
 * no drop, no limits): a non-root host uid, the job's cgroup, a capped /tmp
 * and a cap on any one file written. Borrowed by the runners' configs: the
 * cgroup fds must stay open while the runner starts steps. */
struct runner_sandbox {
	int drop_ids; /* 1: the step runs as uid:gid on the host (the agent is root) */
	uid_t uid;
	gid_t gid;
	const int *cgroup_fds; /* the job cgroup's cgroup.procs files (common/cgroup.h) */
	size_t n_cgroup_fds;
	int has_cgroup_dir; /* 1: cgroup_dir_fd is the job's v2 directory (cgroup_job_dir_fd) */
	int cgroup_dir_fd;
	int64_t memory_bytes; /* what the cgroup holds it to (for a container runner); 0: none */
	int64_t pids;         /* likewise */
	int64_t tmp_bytes;    /* size of the step's /tmp tmpfs; 0: the kernel's default */
	int64_t file_bytes;   /* RLIMIT_FSIZE; 0: none */
	/* 1: seccomp_fd (borrowed) is the step filter seccomp_step_filter_fd
	 * built once for the agent; each bwrap run reads its own reopening of it
	 * (seccomp_filter_reopen). 0: a filter is built for each step. */
	int has_seccomp_fd;
	int seccomp_fd;
};

/* The checks every backend makes of its configuration: */
/* "KEY=VALUE" with a non-empty key (the value may be empty or hold '='). */
int runner_env_ok(const char *kv);
/* A cache bind's path inside the sandbox: under /cache/, at most 256 bytes,
 * no "." or ".." component and no empty one. */
int runner_cache_path_ok(const char *p);

/* The host backend: /bin/sh -c RUN in the workspace with env = a minimal
 * PATH/HOME/LANG plus step->env. Defined in agent/runner_host.c. */
struct runner *runner_host_new(void);

#endif
